"""A GenieZone vCPU at EL2 (answers arch/arm64/geniezone/vcpu.c of the Linux
driver: CREATE_VCPU, DESTROY_VCPU, GET/SET_ONE_REG, RUN; spec §2, §3.7).

Built on :class:`~hyp.arch.vcpu.ArchVcpu`. CREATE_VCPU gives it a 2-page
area of host RAM: the run page (``struct gzvm_vcpu_run``), where every RUN
leaves its exit, and the hwstate page (``struct gzvm_vcpu_hwstate``). RUN
runs the vCPU in the calling host thread (the host thread is the physical
CPU) until the host is needed and returns the exit reason in x1:

========================  ===================================================
GZVM_EXIT_MMIO            an access outside every memory slot and vGIC frame:
                          phys_addr, data (a write's), size, reg_nr, is_write;
                          the next RUN completes a load with ``mmio.data``
GZVM_EXIT_EXCEPTION       an unmapped IPA inside a memory slot:
                          GZVM_EXCEPTION_PAGE_FAULT, fault_gpa; the next RUN
                          retries the access
GZVM_EXIT_HYPERCALL       a guest SMCCC call EL2 does not serve: args[0..7]
                          = x0..x7; the next RUN gives the guest x0..x3 =
                          args[0..3] of the run page (MEM_RELINQUISH, which
                          EL2 serves and only reports, resumes with x0 = 0)
GZVM_EXIT_SYSTEM_EVENT    PSCI SYSTEM_OFF (SHUTDOWN) or SYSTEM_RESET(2)
                          (RESET); every later RUN says so again
GZVM_EXIT_IRQ             the host interrupted the CPU (a kick, an IPI)
GZVM_EXIT_IDLE            WFI with nothing pending, only once ENABLE_IDLE
                          was set; otherwise RUN sleeps in EL2 until the vCPU
                          can run or the CPU is interrupted (IRQ)
GZVM_EXIT_INTERNAL_ERROR  the core cannot go on (suberror 1); sticky
========================  ===================================================

A powered-off vCPU (a secondary before PSCI CPU_ON, or after CPU_OFF)
sleeps in RUN the same way. vCPU 0 is powered on at creation, at PC 0 in
EL1h with DAIF masked, until SET_ONE_REG says otherwise.
"""

from __future__ import annotations

import itertools
import operator
import struct
import threading
from enum import IntEnum

from hyp.arch.pgtable import IPA_BITS
from hyp.arch.vcpu import ArchVcpu, Exit
from hyp.geniezone import shared
from hyp.geniezone.errors import Error, GzError, check
from hyp.hw.board import PAGE_SIZE, SPI_BASE

SMCCC_SUCCESS = 0
SLEEP_POLL = 0.25  # seconds between looks at a sleeping vCPU's state


class GzvmExit(IntEnum):
    UNKNOWN = 0x92920000
    MMIO = 0x92920001
    HYPERCALL = 0x92920002
    IRQ = 0x92920003
    EXCEPTION = 0x92920004
    DEBUG = 0x92920005
    FAIL_ENTRY = 0x92920006
    INTERNAL_ERROR = 0x92920007
    SYSTEM_EVENT = 0x92920008
    SHUTDOWN = 0x92920009
    GZ = 0x9292000A
    IDLE = 0x9292000B
    IPI = 0x9292000D


GZVM_EXCEPTION_PAGE_FAULT = 1
SYSTEM_EVENT_SHUTDOWN, SYSTEM_EVENT_RESET = 1, 2
INTERNAL_ERROR_EMULATION = 1

# KVM arm64 core register ids (spec §1.3): 0x6000.. arch, size at 52, 0x10 << 16
# core, the offset in struct kvm_regs in 32-bit words.
REG_ARM64, REG_CORE = 0x6000_0000_0000_0000, 0x0010_0000
REG_U32, REG_U64 = 0x0020_0000_0000_0000, 0x0030_0000_0000_0000
CORE_REGISTERS = {
    **{REG_ARM64 | REG_U64 | REG_CORE | 2 * n: f"x{n}" for n in range(31)},
    REG_ARM64 | REG_U64 | REG_CORE | 0x3E: "sp_el0",
    REG_ARM64 | REG_U64 | REG_CORE | 0x40: "pc",
    REG_ARM64 | REG_U64 | REG_CORE | 0x42: "pstate",
    REG_ARM64 | REG_U64 | REG_CORE | 0x44: "sp_el1",
    REG_ARM64 | REG_U64 | REG_CORE | 0x46: "elr_el1",
    REG_ARM64 | REG_U64 | REG_CORE | 0x48: "spsr_el1",
    REG_ARM64 | REG_U32 | REG_CORE | 0xD4: "fpsr",
    REG_ARM64 | REG_U32 | REG_CORE | 0xD5: "fpcr",
}
MASK64 = (1 << 64) - 1
_ENABLED, _ACTIVE = operator.attrgetter("enabled"), operator.attrgetter("active")


class GzVcpu(ArchVcpu):
    def __init__(self, vm, vcpu_id: int, area: int):
        super().__init__(vm.hyp)
        self.vm, self.vcpu_id, self.area = vm, vcpu_id, area
        self.affinity = vcpu_id
        self.destroyed = False
        self.interrupted = False  # the host interrupted the CPU running it
        self.served_call = False  # the forwarded call was EL2's: a report only
        self._woken = threading.Event()
        vm.vgic.vcpus[vcpu_id] = self
        self.attach_core(vm.stage2.vttbr(vm.vm_id), vm.run_group)
        if vcpu_id == 0:
            self.power_on(0, 0)

    def destroy(self) -> None:
        """Leave the VM (no thread runs the vCPU any more)."""
        self.powered = False
        self.vm.vgic.vcpus.pop(self.vcpu_id, None)
        self.detach_core()

    # registers
    def one_reg(self, reg_id: int, value: int | None = None) -> int:
        """GET_ONE_REG (``value`` None) or SET_ONE_REG of a core register id:
        ERR_INVALID_ARGS for an id that is not one, ERR_BUSY while a RUN is in
        progress; a U32 register takes the low 32 bits."""
        name = CORE_REGISTERS.get(reg_id)
        check(name is not None, why=f"register id {reg_id:#x}")
        if not self.run_lock.acquire(blocking=False):
            raise GzError(Error.ERR_BUSY, "the vCPU is running")
        try:
            if value is None:
                return self.register(name)
            mask = 0xFFFF_FFFF if reg_id & REG_U64 == REG_U32 else MASK64
            self.set_register(name, value & mask)
            return 0
        finally:
            self.run_lock.release()

    # RUN
    def run(self) -> int:
        """The RUN call in the calling thread; returns the exit reason (also in
        the run page). ERR_BUSY while another thread runs this vCPU."""
        if not self.run_lock.acquire(blocking=False):
            raise GzError(Error.ERR_BUSY, "the vCPU is running")
        try:
            with self.hyp.lock:
                self.vm.started = True
                self.take_host_ipi(threading.get_ident())
                self._resume()
            while True:
                self._woken.clear()
                result = self.run_loop()
                exit_reason = self._report(*result)
                if exit_reason is not None:
                    return exit_reason
                self._woken.wait(SLEEP_POLL)
        finally:
            self.proxy_thread = None
            self.run_lock.release()

    def _resume(self) -> None:
        """Apply the host's answer to the last exit, from the run page."""
        if self.mmio is not None:
            access, _ = self.mmio
            self.mmio = None
            data = 0
            if not access.is_write:
                data = self.hyp.dram.read_u64(self.area + shared.MMIO_DATA)
            self.complete(access, data)
        self.page_fault = None  # the access runs again
        if self.hypercall is not None and self.served_call:
            self.served_call = False
            self.complete_hypercall([SMCCC_SUCCESS])
        elif self.hypercall is not None:
            args = self.hyp.dram.read(self.area + shared.HYPERCALL_ARGS, 4 * 8)
            self.complete_hypercall(struct.unpack("<4Q", args))

    def _report(self, reason: Exit, *data: int) -> int | None:
        """Write the exit to the run and hwstate pages; None to sleep in EL2."""
        with self.hyp.lock:
            sleeps = reason == Exit.IDLE and not self.vm.idle
            sleeps = sleeps or (reason == Exit.POWERED_OFF and not data[0])
            if sleeps and not (self.interrupted or self.destroyed):
                return None
            if sleeps:
                self._kicked = False
                reason = Exit.READY
            self.interrupted = False
            exit_reason, fields = self._exit_fields(reason, data)
            union = bytearray(shared.RUN_UNION_SIZE)
            for offset, fmt, value in fields:
                struct.pack_into(fmt, union, offset - shared.RUN_UNION, value)
            dram = self.hyp.dram
            dram.write(self.area + shared.RUN_EXIT_REASON, struct.pack("<I", exit_reason))
            dram.write(self.area + shared.RUN_UNION, bytes(union))
            self._write_hwstate()
            mmio = {"arch": reason.name, "data": data} if exit_reason == GzvmExit.MMIO else {}
            self.hyp.trace(
                "gzvm_exit", vcpu=self.trace_name, exit=GzvmExit(exit_reason).name, **mmio
            )
            return exit_reason

    def _exit_fields(self, reason: Exit, data: tuple[int, ...]):
        """(GZVM_EXIT_*, [(offset, struct format, value)]) of an arch exit."""
        if reason in (Exit.MMIO_READ, Exit.MMIO_WRITE):
            access, ipa = self.mmio
            write = reason == Exit.MMIO_WRITE
            return GzvmExit.MMIO, [
                (shared.MMIO_PHYS_ADDR, "<Q", ipa),
                (shared.MMIO_DATA, "<Q", data[2] if write else 0),
                (shared.MMIO_SIZE, "<Q", access.size),
                (shared.MMIO_REG_NR, "<I", access.rt),
                (shared.MMIO_IS_WRITE, "<B", int(write)),
            ]
        if reason == Exit.PAGE_FAULT:
            return GzvmExit.EXCEPTION, [
                (shared.EXC_EXCEPTION, "<I", GZVM_EXCEPTION_PAGE_FAULT),
                (shared.EXC_FAULT_GPA, "<Q", data[0]),
            ]
        if reason == Exit.HYPERCALL:
            return GzvmExit.HYPERCALL, [
                (shared.HYPERCALL_ARGS + 8 * n, "<Q", v) for n, v in enumerate(data[:8])
            ]
        if reason in (Exit.POWERED_OFF, Exit.SYSTEM_RESET):
            kind = SYSTEM_EVENT_SHUTDOWN if reason == Exit.POWERED_OFF else SYSTEM_EVENT_RESET
            return GzvmExit.SYSTEM_EVENT, [(shared.EVENT_TYPE, "<I", kind)]
        if reason == Exit.FAULT:
            return GzvmExit.INTERNAL_ERROR, [
                (shared.INTERNAL_SUBERROR, "<I", INTERNAL_ERROR_EMULATION)
            ]
        if reason == Exit.IDLE:
            return GzvmExit.IDLE, []
        return GzvmExit.IRQ, []  # READY: the host asked for its CPU back

    def _write_hwstate(self) -> None:
        """nr_lrs and lr[]: the vCPU's pending or active interrupts as the
        ICH_LR<n>_EL2 values EL2 would load, best priority first; the vtimer
        fields from its virtual timer."""
        gic, cpu = self.vgic.gic, self.gic_cpu
        lrs = []
        # Every exit writes this page: the 256 interrupts are sifted in C for
        # the few enabled or active ones, which alone are looked at here.
        irqs = (*gic.cpus[cpu].private, *gic.spis[: gic.nspis])
        maybe = map(operator.or_, map(_ENABLED, irqs), map(_ACTIVE, irqs))
        for intid, irq in itertools.compress(enumerate(irqs), maybe):
            pending = irq.pending or (not irq.edge and irq.line)
            listed = (pending and irq.enabled) or irq.active
            if not listed or (intid >= SPI_BASE and gic.target(intid) != cpu):
                continue
            state = (1 if pending else 0) | (2 if irq.active else 0)
            lrs.append((irq.priority, intid, state << 62 | 1 << 60 | irq.priority << 48 | intid))
        lrs = [lr for _, _, lr in sorted(lrs)][: shared.GIC_V3_NR_LRS]
        page = bytearray(PAGE_SIZE // 16)
        struct.pack_into("<I", page, shared.HWSTATE_NR_LRS, len(lrs))
        struct.pack_into(f"<{len(lrs)}Q", page, shared.HWSTATE_LR, *lrs)
        struct.pack_into("<Q", page, shared.HWSTATE_VTIMER_OFFSET, self.vm.vtimer_offset)
        deadline = self.timer.deadline
        delay = max(0, deadline - self.timer.clock.now) if deadline is not None else 0
        struct.pack_into("<Q", page, shared.HWSTATE_VTIMER_DELAY, delay)
        struct.pack_into("<I", page, shared.HWSTATE_VTIMER_MIGRATE, int(deadline is not None))
        self.hyp.dram.write(self.area + PAGE_SIZE, bytes(page))

    # hooks of ArchVcpu
    def host_exit(self, reason: Exit, *data: int):
        return (reason, *data)

    def wake_host(self) -> None:
        self._woken.set()

    def kick(self) -> None:
        super().kick()
        self._woken.set()

    def interrupt(self) -> None:
        """The host's IPI for the CPU running this vCPU: the RUN returns IRQ,
        even from a sleep in EL2."""
        self.interrupted = True
        self.kick()

    def take_host_ipi(self, thread: int) -> None:
        if thread in self.hyp.pending_ipis:
            self.interrupted = True
        super().take_host_ipi(thread)

    def siblings(self) -> list:
        return list(self.vm.vcpus.values())

    @property
    def vgic(self):
        return self.vm.vgic

    def translate(self, ipa: int):
        return self.vm.stage2.lookup(ipa) if ipa < 1 << IPA_BITS else None

    def demand_paged(self, ipa: int) -> bool:
        return self.vm.memslot_at(ipa) is not None

    @property
    def trace_name(self) -> str:
        return f"vm{self.vm.vm_id}.cpu{self.vcpu_id}"
