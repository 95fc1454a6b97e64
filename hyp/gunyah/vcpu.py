"""Virtual CPUs (hyp/vm/vcpu, hyp/vm/vcpu_run): thread objects that run guest code.

A vCPU runs on its own core (a unicorn instance sharing the SoC's DRAM)
behind its address space's stage-2 tables. ``vcpu_run`` (the proxy
scheduling call the host makes) runs it in the caller's thread until
something needs the host, and returns one of the :class:`VcpuState` states
with its three data words.

Inside a run the vCPU is the EL2 trap handler of its core: it dispatches
guest hypercalls and PSCI calls, emulates the vGIC (MMIO and ICC_*) and
the virtual timer registers, decodes stage-2 data aborts into VMMIO or
page-fault exits, and injects the guest's own exceptions back into EL1.
Other threads never touch the core: they change hypervisor state and kick
the vCPU, which applies the change between two runs of its core.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import IntEnum, auto

from hyp.arch.pgtable import ACCESS_X, VTCR
from hyp.gunyah.errors import Error, HypError, check
from hyp.gunyah.object import Object, ObjectState, ObjectType
from hyp.gunyah.vgic import VirqSource
from hyp.hw import a64
from hyp.hw.board import GICD_BASE, GICR_BASE, GICR_STRIDE, PPI_VTIMER
from hyp.hw.cpu import (
    HPFAR_EL2,
    PSTATE_EL1H_MASKED,
    SPSR_EL1,
    VMPIDR_EL2,
    Core,
    CoreError,
    Excp,
    Stop,
    SysReg,
    Trap,
)
from hyp.hw.gicv3 import is_icc
from hyp.hw.timer import EVENT_TICKS, QUANTUM_TICKS, READ_TICKS, VirtualTimer


class VcpuState(IntEnum):
    READY = 0
    EXPECTS_WAKEUP = 1
    POWERED_OFF = 2
    BLOCKED = 3
    ADDRSPACE_VMMIO_READ = 4
    ADDRSPACE_VMMIO_WRITE = 5
    FAULT = 6
    ADDRSPACE_PAGE_FAULT = 7
    PSCI_SYSTEM_RESET = 0x100


class ResumeAction(IntEnum):
    """resume_data_1 after a VMMIO exit."""

    EMULATE = 0
    RETRY = 1
    FAULT = 2


class RegisterSet(IntEnum):
    X = 0
    PC = 1
    SP_EL = 2


# The highest index of each register set a vCPU has.
REGISTERS = {RegisterSet.X: 30, RegisterSet.PC: 0, RegisterSet.SP_EL: 1}


VIRQ_TYPE_RUN_WAKEUP = 1
POWEROFF_EXITED = 1

# Exception classes and fault codes of the aborts injected into the guest.
EC_IABT_LOWER, EC_IABT_CUR, EC_DABT_LOWER, EC_DABT_CUR = 0x20, 0x21, 0x24, 0x25
EC_SVC64, EC_BRK = 0x15, 0x3C
FSC_EXTERNAL, FSC_PERMISSION_L3 = 0x10, 0x0F  # data and instruction fault status codes
ISS_WNR = 1 << 6
ESR_EC_SHIFT, ESR_IL = 26, 1 << 25  # IL: a 32-bit instruction
IMM16 = 0xFFFF  # the immediate of HVC/SVC, at bit 5 of the instruction
PSTATE_EL_MASK, PSTATE_SP = 0xC, 1  # exception level, SP_ELx selected
PSTATE_NZCV = 0xF000_0000
# VBAR_EL1 offsets of the synchronous vectors
VECTOR_CUR_SP0, VECTOR_CUR_SPX, VECTOR_LOWER_A64 = 0, 0x200, 0x400


class RunStop(IntEnum):
    """Why the vCPU stopped its core, when nothing more needs saying."""

    KICK = auto()  # the vCPU's state changed: look at it before running on
    PREEMPT = auto()  # the turn is over
    SYNC = auto()  # a handler changed state the core must pick up (IRQ line)
    FLUSH = auto()  # the stage-2 tables changed
    HVC = auto()  # a guest call was handled


@dataclass(frozen=True)
class VmmioExit:
    """An access to an unmapped IPA outside the demand-paging ranges."""

    access: a64.Access
    ipa: int


@dataclass(frozen=True)
class PageFaultExit:
    """An access to an unmapped IPA inside a demand-paging range."""

    ipa: int
    write: bool
    fetch: bool


CNTFRQ_EL0 = SysReg(3, 3, 14, 0, 0)
CNTPCT_EL0 = SysReg(3, 3, 14, 0, 1)
CNTVCT_EL0 = SysReg(3, 3, 14, 0, 2)
CNTV_TVAL_EL0 = SysReg(3, 3, 14, 3, 0)
CNTV_CTL_EL0 = SysReg(3, 3, 14, 3, 1)
CNTV_CVAL_EL0 = SysReg(3, 3, 14, 3, 2)


class Vcpu(Object, Trap):
    TYPE = ObjectType.THREAD

    def __init__(self, hyp, partition):
        super().__init__(hyp, partition)
        self.addrspace = self.vic = self.cspace = None
        self.vic_index, self.gic_cpu, self.affinity, self.options = 0, 0, 0, 0
        self.core: Core | None = None
        self.timer = VirtualTimer(hyp.clock)
        self.powered = self.exited = self.waiting = self.sleeping = self.faulted = False
        self.pending_entry: tuple[int, int] | None = None
        self.pending_regs: dict[tuple[int, int], int] = {}
        self.wakeup = VirqSource(lambda: self.runnable)
        self.mmio: tuple[a64.Access, int] | None = None
        self.page_fault: tuple[int, bool, bool] | None = None  # ipa, write, fetch
        self.reset_request: tuple[int, int] | None = None
        self._run_lock = threading.Lock()
        self.proxy_thread: int | None = None  # the host thread inside vcpu_run
        self._kicked = self._needs_flush = False

    # configuration (INIT)
    def configure(self, options: int) -> None:
        self.require(ObjectState.INIT)
        check(options & ~(1 | 1 << 8 | 0x3E | 1 << 63) == 0, Error.ARGUMENT_INVALID, "options")
        self.options = options

    def set_affinity(self, affinity: int) -> None:
        self.affinity = affinity

    def on_activate(self) -> None:
        check(self.addrspace is not None, Error.OBJECT_CONFIG, "no address space")
        check(self.addrspace.state == ObjectState.ACTIVE, Error.OBJECT_STATE, "address space")
        check(self.vic is not None and self.vic.gic is not None, Error.OBJECT_CONFIG, "no vic")
        core = Core(self.hyp.dram, self)
        core.set_stage2(self.addrspace.stage2.vttbr(self.addrspace.vmid), VTCR)
        mpidr = 1 << 31 | (self.affinity & 0xFF_FFFF) | (self.affinity >> 24 & 0xFF) << 32
        core.set_sysreg(VMPIDR_EL2, mpidr)
        core.set_reg("pstate", PSTATE_EL1H_MASKED)
        self.core = core
        self.gic_cpu = self.vic.add_cpu(self)
        self.addrspace.vcpus.append(self)
        self.hyp.scheduler.add(self)

    def on_destroy(self) -> None:
        self.powered = False
        if self.wakeup.vic is not None:
            self.wakeup.unbind()
        self.hyp.scheduler.remove(self)
        if self.core is not None:
            self.addrspace.vcpus.remove(self)
            self.core.close()
            self.core = None

    # power
    @property
    def runnable(self) -> bool:
        return self.powered and not self.sleeping and not self.exited and not self.faulted

    def poweron(self, entry: int, context: int) -> None:
        """Power on at ``entry`` with X0=``context``; BUSY if already on."""
        self.require(ObjectState.ACTIVE)
        check(not self.powered, Error.BUSY, "vcpu is on")
        self.pending_entry = (entry, context)
        self.powered, self.exited, self.waiting, self._kicked = True, False, False, False
        self.faulted = False
        self._wake()

    def poweroff(self, exited: bool = False) -> None:
        """Power off; ``exited`` (the VM is down) also wakes a sleeping host thread."""
        self.powered, self.waiting = False, False
        self.exited = self.exited or exited
        self.kick()
        if exited:
            self._wake()
        self.hyp.scheduler.poke()

    def register_write(self, reg_set: int, index: int, value: int) -> None:
        """vcpu_register_write: OBJECT_STATE once powered on, ARGUMENT_INVALID for a
        register the vCPU does not have (X0-X30, PC, SP_EL0-SP_EL1)."""
        check(not self.powered, Error.OBJECT_STATE, "vcpu is on")
        top = REGISTERS.get(reg_set)
        check(top is not None and 0 <= index <= top, Error.ARGUMENT_INVALID, "register")
        self.pending_regs[(reg_set, index)] = value

    # cross-thread notifications
    def kick(self) -> None:
        """Make the vCPU look at its state again (stops its core if it runs)."""
        self._kicked = True
        if self.core is not None:
            self.core.stop(RunStop.KICK)

    def preempt(self) -> None:
        if self.core is not None:
            self.core.stop(RunStop.PREEMPT)

    def interrupts_changed(self) -> None:
        """The vGIC changed: update the IRQ line now or wake the vCPU."""
        if self.core is None:
            return
        if self.hyp.scheduler.holder is self:
            self.core.stop(RunStop.SYNC)
        elif self.waiting and self._wakes():
            self._wake()

    def _wakes(self) -> bool:
        return self.vic.gic.wakes(self.gic_cpu) or self.timer.firing

    def _wake(self) -> None:
        self.waiting = False
        if self.sleeping:
            self.sleeping = False
            self.wakeup.assert_virq(edge_only=True)
        self.hyp.scheduler.poke()

    def flush_translations(self) -> None:
        if self.core is not None:
            self._needs_flush = True  # before the stop: the run it ends must see it
            self.core.stop(RunStop.FLUSH)

    # vcpu_run
    def run(self, resume0: int, resume1: int, resume2: int) -> tuple[int, int, int, int]:
        """The vcpu_run hypercall; BUSY if another thread runs this vCPU."""
        self.require(ObjectState.ACTIVE)
        check(self.wakeup.vic is not None, Error.BUSY, "no VCPU_RUN_WAKEUP virq bound")
        if not self._run_lock.acquire(blocking=False):
            raise HypError(Error.BUSY, "vcpu is running")
        try:
            with self.hyp.lock:
                self._take_host_ipi(threading.get_ident())
                self._resume(resume0, resume1)
            return self._run_loop()
        finally:
            self.proxy_thread = None
            self._run_lock.release()

    def _take_host_ipi(self, thread: int) -> None:
        """The calling thread's CPU had an IPI pending: return to the host at once."""
        self.proxy_thread = thread
        if thread in self.hyp.pending_ipis:
            self.hyp.pending_ipis.discard(thread)
            self._kicked = True

    def _resume(self, data: int, action: int) -> None:
        if self.page_fault is not None:
            self._resume_page_fault(action)
        if self.mmio is None:
            return
        access, _ = self.mmio
        self.mmio = None
        if action == ResumeAction.FAULT:
            self.inject_abort(access.address, access.is_write, FSC_EXTERNAL)
        elif action == ResumeAction.EMULATE:
            self.complete(access, data)
        elif action != ResumeAction.RETRY:
            raise HypError(Error.ARGUMENT_INVALID, "resume action")

    def _resume_page_fault(self, action: int) -> None:
        """After ADDRSPACE_PAGE_FAULT: FAULT gives the guest the abort, else the access reruns."""
        ipa, write, fetch = self.page_fault
        self.page_fault = None
        if action != ResumeAction.FAULT:
            return
        if fetch:
            self.inject_prefetch_abort(ipa, FSC_EXTERNAL)
        else:
            self.inject_abort(ipa, write, FSC_EXTERNAL)

    def _run_loop(self) -> tuple[int, int, int, int]:
        while True:
            with self.hyp.lock:
                result = self._before_run()
            if result is not None:
                return result
            self.hyp.scheduler.enter(self)
            try:
                reason = self.core.run()
                with self.hyp.lock:
                    result = self._after_run(reason)
                    if result is not None:
                        # Traced inside the turn, so the order is the same every run.
                        self.hyp.trace(
                            "vcpu_run", vcpu=self.trace_name, state=result[0].name, data=result[1:]
                        )
            finally:
                self.hyp.scheduler.leave(self)
            if result is not None:
                return result

    def _before_run(self):
        """Apply what other threads asked for; a state to return, or None to run."""
        if self.reset_request is not None:
            kind, cookie = self.reset_request
            return VcpuState.PSCI_SYSTEM_RESET, kind, cookie, 0
        if not self.powered:
            self.sleeping = not self.exited
            return VcpuState.POWERED_OFF, POWEROFF_EXITED if self.exited else 0, 0, 0
        if self.faulted:
            return VcpuState.FAULT, 0, 0, 0
        if self._kicked:
            self._kicked = False
            return VcpuState.READY, 0, 0, 0
        self._apply_pending()
        result = self._sleep_or_wake()
        if result is None:
            self.core.set_virq_line(self.vic.gic.signalled(self.gic_cpu))
        return result

    def _sleep_or_wake(self):
        """A waiting vCPU either wakes (or skips idle time) or expects a wakeup."""
        self._update_timer()
        if not self.waiting:
            return None
        if self._wakes() or self._skip_idle_time():
            self.waiting = False
            return None
        self.sleeping = True
        self.hyp.scheduler.poke()
        return VcpuState.EXPECTS_WAKEUP, 0, 0, 0

    def _after_run(self, reason):
        self.hyp.clock.advance(QUANTUM_TICKS if reason == RunStop.PREEMPT else EVENT_TICKS)
        if self._needs_flush:
            self._needs_flush = False
            self.core.flush()
        if self.reset_request is not None or not self.powered:
            return self._before_run()
        if reason == Stop.HALTED or self.waiting:
            self.waiting = True
            return self._sleep_or_wake()
        match reason:
            case VmmioExit(access, ipa):
                self.mmio = (access, ipa)
                if access.is_write:
                    value = self.core.x(access.rt) & ((1 << access.size * 8) - 1)
                    return VcpuState.ADDRSPACE_VMMIO_WRITE, ipa, access.size, value
                return VcpuState.ADDRSPACE_VMMIO_READ, ipa, access.size, 0
            case PageFaultExit(ipa, write, fetch):
                self.page_fault = (ipa, write, fetch)
                return VcpuState.ADDRSPACE_PAGE_FAULT, ipa, int(write), 0
            case CoreError(error):
                return self._fault(error)
        return None

    def _fault(self, error: Exception) -> tuple[int, int, int, int]:
        """Unicorn cannot go on with the guest: the vCPU stays in FAULT (never
        rerun) until it is powered on again."""
        self.faulted = True
        self.hyp.trace("vcpu_fault", vcpu=self.trace_name, pc=self.core.pc, error=str(error))
        self.hyp.scheduler.poke()
        return VcpuState.FAULT, 0, 0, 0

    def _skip_idle_time(self) -> bool:
        """Nothing else can run: jump the clock to the next timer deadline."""
        if self.hyp.scheduler.others_runnable(self):
            return False
        deadlines = [v.timer.deadline for v in self.hyp.scheduler.order]
        deadlines = [d for d in deadlines if d is not None]
        if not deadlines:
            return False
        self.hyp.clock.advance_to(min(deadlines))
        for vcpu in self.hyp.scheduler.order:
            vcpu._update_timer()
        return self._wakes()

    def _apply_pending(self) -> None:
        """Power-on state first (EL1h, X0, PC), then the registers written before it."""
        core = self.core
        if self.pending_entry is not None:
            entry, context = self.pending_entry
            self.pending_entry = None
            core.set_reg("pstate", PSTATE_EL1H_MASKED)
            core.set_x(0, context)
            core.pc = entry
        for (reg_set, index), value in sorted(self.pending_regs.items()):
            if reg_set == RegisterSet.X:
                core.set_x(index, value)
            elif reg_set == RegisterSet.PC:
                core.pc = value
            else:
                self._set_sp_el(index, value)
        self.pending_regs.clear()

    def _set_sp_el(self, index: int, value: int) -> None:
        """SP_ELn; the core keeps the selected one live apart from its bank, so that
        one (SP_EL1 at EL1h, SP_EL0 at EL1t) is written as SP too."""
        core = self.core
        core.set_reg(f"sp_el{index}", value)
        selected = 1 if core.reg("pstate") & PSTATE_SP else 0
        if index == selected:
            core.set_sp(value)

    def _update_timer(self) -> None:
        gic = self.vic.gic
        if self.timer.firing:
            gic.assert_irq(PPI_VTIMER, self.gic_cpu, edge_only=False)
        else:
            gic.clear_irq(PPI_VTIMER, self.gic_cpu)

    @property
    def trace_name(self) -> str:
        return f"vm{self.addrspace.vmid}.cpu{self.vic_index}"

    # guest memory
    def translate(self, va: int) -> tuple[int, object] | None:
        """IPA -> (PA, attrs); guests run with their stage-1 MMU off (VA = IPA)."""
        return self.addrspace.translate(va)

    def fetch_insn(self, va: int) -> int | None:
        hit = self.translate(va)
        if hit is None or not hit[1].access & ACCESS_X:
            return None
        return self.core.read_insn(hit[0])

    # EL2 trap handlers, called on this vCPU's thread while its core runs
    def exception(self, core: Core, excp: int) -> None:
        with self.hyp.lock:
            if excp in (Excp.HVC, Excp.SMC):
                self._hvc(excp)
            elif excp == Excp.DATA_ABORT:
                self._data_abort()
            elif excp == Excp.PREFETCH_ABORT:
                self._prefetch_abort()
            else:
                self.inject_guest_exception(excp)

    def _hvc(self, excp: int) -> None:
        core = self.core
        insn = self.fetch_insn(core.pc - 4)
        imm = (insn or 0) >> 5 & IMM16
        regs = [core.x(n) for n in range(8)]
        out = self.hyp.guest_call(self, excp == Excp.SMC, imm, regs)
        for n, value in enumerate(out):
            core.set_x(n, value)
        core.stop(RunStop.HVC)

    def _data_abort(self) -> None:
        core = self.core
        insn = self.fetch_insn(core.pc)
        access = None if insn is None else a64.decode(insn, core.x, core.sp)
        va = access.address if access is not None else 0
        ipa = (core.sysreg(HPFAR_EL2) >> 4) << 12 | (va & 0xFFF)
        hit = self.translate(ipa)
        if hit is not None:
            # Mapped: a permission fault the guest must see.
            self.inject_abort(va, access is not None and access.is_write, FSC_PERMISSION_L3)
        elif self.addrspace.in_demand_range(ipa):
            write = access.is_write if access is not None else a64.writes(insn or 0)
            core.stop(PageFaultExit(ipa, write, False))
        elif access is None:
            self.hyp.trace("unsupported_mmio", vcpu=self.trace_name, ipa=ipa, insn=insn)
            self.inject_abort(ipa, False, FSC_EXTERNAL)
        elif self._vgic_range(ipa):
            self._vgic_mmio(access, ipa)
        else:
            core.stop(VmmioExit(access, ipa))

    def _prefetch_abort(self) -> None:
        """A fetch from a mapped IPA the stage 2 forbids executing (shared memory
        is never executable) is the guest's permission fault; from an unmapped
        IPA it cannot be MMIO, and the host may page it in."""
        pc = self.core.pc
        ipa = (self.core.sysreg(HPFAR_EL2) >> 4) << 12 | (pc & 0xFFF)
        if self.translate(ipa) is not None:
            self.inject_prefetch_abort(pc, FSC_PERMISSION_L3)
        else:
            self.core.stop(PageFaultExit(ipa, False, True))

    @staticmethod
    def _vgic_range(ipa: int) -> bool:
        return GICD_BASE <= ipa < GICR_BASE + 64 * GICR_STRIDE

    def _vgic_mmio(self, access: a64.Access, ipa: int) -> None:
        value = self.core.x(access.rt) if access.is_write else None
        result = self.vic.mmio(self, ipa, access.size, value)
        if result is None:
            self.core.stop(VmmioExit(access, ipa))
            return
        self.complete(access, result)
        self.core.stop(RunStop.SYNC)

    def complete(self, access: a64.Access, data: int) -> None:
        """Finish an emulated access: load result, base writeback, next instruction."""
        core = self.core
        if not access.is_write:
            core.set_x(access.rt, a64.load_result(access, data))
        if access.writeback is not None:
            if access.rn == a64.ZR_OR_SP:
                core.set_sp(access.writeback)
            else:
                core.set_x(access.rn, access.writeback)
        core.pc = core.pc + 4

    def sysreg(self, core: Core, reg: SysReg, write: bool, rt: int) -> bool:
        if is_icc(reg.op0, reg.op1, reg.crn, reg.crm):
            with self.hyp.lock:
                result = self.vic.sysreg(
                    self, (reg.crn, reg.crm, reg.op2), core.x(rt) if write else None
                )
            if not write:
                core.set_x(rt, result)
            core.pc = core.pc + 4  # unicorn does not step over registers it does not know
            core.stop(RunStop.SYNC)
            return True
        return self._timer_sysreg(core, reg, write, rt)

    def _timer_sysreg(self, core: Core, reg: SysReg, write: bool, rt: int) -> bool:
        timer, clock = self.timer, self.hyp.clock
        if not write:
            reads = {
                CNTVCT_EL0: lambda: clock.advance(READ_TICKS),
                CNTPCT_EL0: lambda: clock.advance(READ_TICKS),
                CNTFRQ_EL0: lambda: self.hyp.cntfrq,
                CNTV_CTL_EL0: timer.read_ctl,
                CNTV_CVAL_EL0: lambda: timer.cval,
                CNTV_TVAL_EL0: timer.read_tval,
            }
            if reg not in reads:
                return False
            core.set_x(rt, reads[reg]())
            return True
        writes = {
            CNTV_CTL_EL0: timer.write_ctl,
            CNTV_CVAL_EL0: lambda v: setattr(timer, "cval", v),
            CNTV_TVAL_EL0: timer.write_tval,
        }
        if reg not in writes:
            return False
        writes[reg](core.x(rt))
        core.stop(RunStop.SYNC)
        return True

    def inject_guest_exception(self, excp: int) -> None:
        """The guest's own synchronous exception (SVC, undefined...) goes to its EL1."""
        ec = {Excp.SWI: EC_SVC64, Excp.BKPT: EC_BRK}.get(excp, 0)
        pc = self.core.pc
        if excp == Excp.SWI:
            insn = self.fetch_insn(pc - 4) or 0
            self._enter_el1(ec << ESR_EC_SHIFT | ESR_IL | (insn >> 5 & IMM16), elr=pc, far=None)
        else:
            self._enter_el1(ec << ESR_EC_SHIFT | ESR_IL, elr=pc, far=None)

    def inject_abort(self, far: int, write: bool, dfsc: int) -> None:
        """A synchronous data abort at EL1 for the instruction at PC."""
        el0 = self.core.reg("pstate") & PSTATE_EL_MASK == 0
        ec = EC_DABT_LOWER if el0 else EC_DABT_CUR
        iss = dfsc | (ISS_WNR if write else 0)
        self._enter_el1(ec << ESR_EC_SHIFT | ESR_IL | iss, elr=self.core.pc, far=far)

    def inject_prefetch_abort(self, far: int, ifsc: int) -> None:
        """A synchronous instruction abort at EL1 for the instruction at PC."""
        el0 = self.core.reg("pstate") & PSTATE_EL_MASK == 0
        ec = EC_IABT_LOWER if el0 else EC_IABT_CUR
        self._enter_el1(ec << ESR_EC_SHIFT | ESR_IL | ifsc, elr=self.core.pc, far=far)

    def _enter_el1(self, esr: int, elr: int, far: int | None) -> None:
        core = self.core
        pstate = core.reg("pstate")
        if pstate & PSTATE_EL_MASK == 0:
            vector = VECTOR_LOWER_A64
        else:
            vector = VECTOR_CUR_SPX if pstate & PSTATE_SP else VECTOR_CUR_SP0
        core.set_reg("esr_el1", esr)
        if far is not None:
            core.set_reg("far_el1", far)
        core.set_reg("elr_el1", elr)
        core.set_sysreg(SPSR_EL1, pstate)
        core.set_reg("pstate", PSTATE_EL1H_MASKED | (pstate & PSTATE_NZCV))
        core.pc = core.reg("vbar_el1") + vector
        core.stop(RunStop.SYNC)
