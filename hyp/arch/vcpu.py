"""The vCPU run loop over a core (Gunyah hyp/vm/vcpu_run, hyp/vm/vcpu/aarch64
{context_switch,wfi}.c; Linux arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl_run).

A vCPU runs on its own core (a unicorn instance sharing the SoC's DRAM)
behind its VM's stage-2 tables, proxy-scheduled: :meth:`ArchVcpu.run_loop`
runs it in the calling host thread, taking turns with the other vCPUs of
its run group (:mod:`hyp.arch.scheduler`), until something needs the
host, and returns what the hypervisor's ``host_exit`` hook makes of it. Inside a run the vCPU
is the EL2 trap handler of its core (:mod:`hyp.arch.traps`). Other threads
never touch the core: they change the vCPU's state and kick it, and the
change is applied between two runs of its core.

A hypervisor's vCPU subclasses :class:`ArchVcpu` and supplies:

- ``host_exit(reason, *data)``: what the host sees for an :class:`Exit`;
  it returns a tuple whose first item is an IntEnum (traced by name), the
  rest its data. Data per reason: POWERED_OFF (exited), SYSTEM_RESET
  (kind, cookie), MMIO_READ (ipa, size), MMIO_WRITE (ipa, size, value),
  PAGE_FAULT (ipa, write), HYPERCALL (X0..X7 of the guest's call), none
  for the others;
- ``wake_host()``: the vCPU told the host it expects a wakeup (IDLE) and
  can now run again;
- ``siblings()``: the vCPUs of its VM (PSCI);
- ``vgic``: its VM's :class:`~hyp.arch.vgic.Vgic`;
- ``translate(ipa)``, ``demand_paged(ipa)``: its stage 2 and the IPAs the
  host pages in on demand;
- ``trace_name``: how traces name it.

The EL2 object (``hyp``) supplies ``lock``, ``dram``, ``cores``, ``clock``, ``cntfrq``,
``scheduler``, ``pending_ipis`` and ``trace`` (:class:`~hyp.arch.el2.El2`).
"""

from __future__ import annotations

import threading
from enum import IntEnum, auto

from hyp.arch import exception, stage1, traps, vtimer
from hyp.arch.pgtable import ACCESS_R, ACCESS_X, VTCR
from hyp.arch.traps import HypercallExit, PageFaultExit, RunStop, VmmioExit
from hyp.hw import a64
from hyp.hw.cpu import (
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
from hyp.hw.timer import EVENT_TICKS, QUANTUM_TICKS, VirtualTimer


class Exit(IntEnum):
    """Why a run returns to the host."""

    READY = auto()  # the host asked for its thread back
    IDLE = auto()  # WFI or CPU_SUSPEND with nothing pending
    POWERED_OFF = auto()
    SYSTEM_RESET = auto()  # PSCI SYSTEM_RESET or SYSTEM_RESET2
    MMIO_READ = auto()
    MMIO_WRITE = auto()
    PAGE_FAULT = auto()  # an unmapped IPA the host pages in
    FAULT = auto()  # unicorn cannot go on with the guest
    HYPERCALL = auto()  # a guest call the hypervisor forwards to the host


class RegisterSet(IntEnum):
    """The register banks a host may write before power-on."""

    X = 0
    PC = 1
    SP_EL = 2


# The highest index of each register set a vCPU has.
REGISTERS = {RegisterSet.X: 30, RegisterSet.PC: 0, RegisterSet.SP_EL: 1}

# Registers a host may read and write by name on a stopped vCPU
# (:meth:`ArchVcpu.set_register`): x0..x30, sp_el0, sp_el1, pc and these.
NAMED_REGISTERS = ("pstate", "elr_el1", "spsr_el1", "fpsr", "fpcr")
_ACCESS = {(False, False): "read", (True, False): "write", (False, True): "fetch"}  # write, fetch


class ArchVcpu(Trap):
    def __init__(self, hyp):
        self.hyp = hyp
        self.gic_cpu, self.affinity = 0, 0
        self.core: Core | None = None
        self.timer = VirtualTimer(hyp.clock)
        self.powered = self.exited = self.waiting = self.sleeping = self.faulted = False
        self.pending_entry: tuple[int, int] | None = None
        self.pending_regs: dict[tuple[int, int], int] = {}
        self.mmio: tuple[a64.Access, int] | None = None
        self.page_fault: tuple[int, bool, bool] | None = None  # ipa, write, fetch
        self.hypercall: tuple[int, ...] | None = None  # X0..X7 of a forwarded call
        self.pending_named: dict[str, int] = {}  # set_register's, after pending_regs
        self.reset_request: tuple[int, int] | None = None
        self.run_lock = threading.Lock()
        self.proxy_thread: int | None = None  # the host thread inside run_loop
        self._kicked = self._needs_flush = False

    # life cycle
    def attach_core(self, vttbr: int, group) -> None:
        """Give the vCPU its core behind the stage 2 at ``vttbr``, its
        redistributor, and its place in its VM's run group of the scheduler
        (when it is activated)."""
        core = self.hyp.cores.take(self)
        core.set_stage2(vttbr, VTCR)
        mpidr = 1 << 31 | (self.affinity & 0xFF_FFFF) | (self.affinity >> 24 & 0xFF) << 32
        core.set_sysreg(VMPIDR_EL2, mpidr)
        core.set_reg("pstate", PSTATE_EL1H_MASKED)
        self.core = core
        self.gic_cpu = self.vgic.add_cpu(self)
        self.hyp.scheduler.add(self, group)

    def detach_core(self) -> None:
        """Leave the scheduler and give the core back to the SoC's idle cores,
        if it has one."""
        self.hyp.scheduler.remove(self)
        if self.core is not None:
            self.hyp.cores.give(self.core)
            self.core = None

    # power
    @property
    def runnable(self) -> bool:
        return self.powered and not self.sleeping and not self.exited and not self.faulted

    def power_on(self, entry: int, context: int) -> None:
        """Power on at ``entry`` with X0=``context`` (applied at the next run)."""
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
        self.hyp.scheduler.poke(self)

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
        if self.hyp.scheduler.holds(self):
            self.core.stop(RunStop.SYNC)
        elif self.waiting and self._wakes():
            self._wake()

    def sync_in_trap(self, others_may_go: bool = False) -> None:
        """A trap of this vCPU's own run (EL2 lock held) changed what its core
        must pick up before the next instruction: its vGIC CPU interface or
        its timer. The same as stopping with ``RunStop.SYNC`` and going round
        the run loop, whose round is done here when it would do nothing else:
        the event's ticks, the timer's PPI, HCR_EL2.VI. The trap has ended
        unicorn's translation block (a PC or register write), so a raised
        line is taken before the next instruction, as after a new run.

        The round is still taken, by a stop, when another thread changed the
        vCPU's state, and, with ``others_may_go`` (an SGI: the access may have
        given another vCPU something to do), when another vCPU of the group
        may take the turn. Other accesses keep the turn: passing it at each of
        them would let a vCPU spinning with its interrupts masked
        (stop_machine's) hold the turn a whole quantum for every register its
        peer touches, while the quantum's ticks keep the peer's timer
        interrupt pending: the peer would never get past its tick handler. A
        stage-2 flush another thread asked for is no change of state: its
        request ends the run at the next slice boundary and the turn goes on
        (:meth:`_run_turn`), wherever host timing put it."""
        if self._round_needed() or (others_may_go and self.hyp.scheduler.others_runnable(self)):
            self.core.stop(RunStop.SYNC)
            return
        self.timer.clock.advance(EVENT_TICKS)
        vtimer.update_irq(self)
        self.core.set_virq_line(self.vgic.gic.signalled(self.gic_cpu))

    def _round_needed(self) -> bool:
        return bool(
            self._kicked
            or self.reset_request is not None
            or not self.powered
            or self.faulted
            or self.waiting
            or self.pending_entry is not None
            or self.pending_regs
            or self.pending_named
        )

    def _wakes(self) -> bool:
        return self.vgic.gic.wakes(self.gic_cpu) or self.timer.firing

    def _wake(self) -> None:
        self.waiting = False
        if self.sleeping:
            self.sleeping = False
            self.wake_host()
        self.hyp.scheduler.poke(self)

    def flush_translations(self) -> None:
        """Stage 2 changed (the EL2 lock is held): the core forgets its cached
        translations before it runs guest code again, and the EL2 lock's last
        release waits for a run in progress to end."""
        if self.core is not None:
            self._needs_flush = True  # before the stop: the run it ends must see it
            self.core.stop(RunStop.FLUSH)
            self.hyp.lock.flushed(self.core)

    # the run loop
    def take_host_ipi(self, thread: int) -> None:
        """``thread`` enters the run loop; if its CPU had an IPI pending, the
        run returns to the host at once."""
        self.proxy_thread = thread
        if thread in self.hyp.pending_ipis:
            self.hyp.pending_ipis.discard(thread)
            self._kicked = True

    def run_loop(self):
        """Run until the host is needed; returns ``host_exit``'s answer.
        Called without the EL2 lock, in the host thread the vCPU runs in."""
        while True:
            with self.hyp.lock:
                result = self._before_run()
            if result is not None:
                return result
            self.hyp.scheduler.enter(self)
            try:
                reason = self._run_turn()
                self.hyp.lock.wait_flushed()
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

    def _run_turn(self):
        """Run the core until something ends the turn; the reason.

        A stage-2 flush is no guest event: the core forgets its translations
        and runs on in the same turn (unless the vCPU's state needs a look).
        Another thread's flush lands where host timing puts it, before a run
        or at a slice boundary inside one, so ending the turn there would
        change the group's turn order and clock from run to run."""
        while True:
            reason = self.core.run(self._slice_ended)
            if reason is not RunStop.FLUSH:
                return reason
            self.hyp.lock.wait_flushed()
            with self.hyp.lock:
                if self._kicked or self.reset_request is not None or not self.runnable:
                    return reason
                self._needs_flush = False
                self.core.flush()
                # An interrupt another thread raised meanwhile may have found
                # the flush's request first; the timer's line stays as the
                # turn began (its clock is the turn's).
                self.core.set_virq_line(self.vgic.gic.signalled(self.gic_cpu))

    def _slice_ended(self) -> None:
        self.hyp.scheduler.slice_ended(self)

    def _before_run(self):
        """Apply what other threads asked for; an exit, or None to run."""
        if self.reset_request is not None:
            kind, cookie = self.reset_request
            return self.host_exit(Exit.SYSTEM_RESET, kind, cookie)
        if not self.powered:
            self.sleeping = not self.exited
            return self.host_exit(Exit.POWERED_OFF, self.exited)
        if self.faulted:
            return self.host_exit(Exit.FAULT)
        if self._kicked:
            self._kicked = False
            return self.host_exit(Exit.READY)
        if self.pending_entry is not None or self.pending_regs or self.pending_named:
            self._apply_pending()
        result = self._sleep_or_wake()
        if result is None:
            self.core.set_virq_line(self.vgic.gic.signalled(self.gic_cpu))
        return result

    def _sleep_or_wake(self):
        """A waiting vCPU either wakes (or skips idle time) or expects a wakeup."""
        vtimer.update_irq(self)
        if not self.waiting:
            return None
        if self._wakes() or self._skip_idle_time():
            self.waiting = False
            return None
        self.sleeping = True
        self.hyp.scheduler.poke(self)
        return self.host_exit(Exit.IDLE)

    def _after_run(self, reason):
        # ``is``: Stop and RunStop are IntEnums whose values overlap (KICK == HALTED)
        self.timer.clock.advance(QUANTUM_TICKS if reason is RunStop.PREEMPT else EVENT_TICKS)
        if self._needs_flush:
            self._needs_flush = False
            self.core.flush()
        if self.reset_request is not None or not self.powered:
            return self._before_run()
        if reason is Stop.HALTED or self.waiting:
            self.waiting = True
            return self._sleep_or_wake()
        match reason:
            case VmmioExit(access, ipa):
                self.mmio = reason
                if access.is_write:
                    value = self.core.x(access.rt) & ((1 << access.size * 8) - 1)
                    return self.host_exit(Exit.MMIO_WRITE, ipa, access.size, value)
                return self.host_exit(Exit.MMIO_READ, ipa, access.size)
            case PageFaultExit(ipa, write, fetch):
                self.page_fault = (ipa, write, fetch)
                self._trace_fault(f"page fault at IPA {ipa:#x}, {_ACCESS[write, fetch]}")
                return self.host_exit(Exit.PAGE_FAULT, ipa, int(write))
            case HypercallExit(args):
                self.hypercall = args
                return self.host_exit(Exit.HYPERCALL, *args)
            case CoreError(error):
                return self._fault(error)
        return None

    def _fault(self, error: Exception):
        """Unicorn cannot go on with the guest: the vCPU stays faulted (never
        rerun) until it is powered on again."""
        self.faulted = True
        self.hyp.trace("vcpu_fault", vcpu=self.trace_name, pc=self.core.pc, error=str(error))
        self._trace_fault(str(error))
        self.hyp.scheduler.poke(self)
        return self.host_exit(Exit.FAULT)

    def _skip_idle_time(self) -> bool:
        """Nothing else of its run group can run: jump the group's clock to the
        group's next timer deadline (other groups keep their own time)."""
        if self.hyp.scheduler.others_runnable(self):
            return False
        group = self.hyp.scheduler.group_vcpus(self)
        deadlines = [v.timer.deadline for v in group if v.timer.deadline is not None]
        if not deadlines:
            return False
        self.timer.clock.advance_to(min(deadlines))
        for vcpu in group:
            vtimer.update_irq(vcpu)
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
        for name, value in self.pending_named.items():
            self._write_named(name, value)
        self.pending_named.clear()

    @staticmethod
    def is_register(name: str) -> bool:
        """Does :meth:`set_register` know ``name``?"""
        if name.startswith("x") and name[1:].isdigit():
            return 0 <= int(name[1:]) <= 30 and name == f"x{int(name[1:])}"
        return name in ("pc", "sp_el0", "sp_el1", *NAMED_REGISTERS)

    def set_register(self, name: str, value: int) -> None:
        """Write register ``name`` (:meth:`is_register`) of a vCPU no thread runs;
        it takes effect at the next run, after a power-on's entry state."""
        self.pending_named[name] = value

    def register(self, name: str) -> int:
        """Register ``name`` of a vCPU no thread runs, pending writes included."""
        if name in self.pending_named:
            return self.pending_named[name]
        core = self.core
        if name.startswith("x"):
            return core.x(int(name[1:]))
        if name.startswith("sp_el"):
            selected = 1 if core.reg("pstate") & exception.PSTATE_SP else 0
            return core.sp if int(name[5:]) == selected else core.reg(name)
        if name == "pc":
            return core.pc
        if name == "spsr_el1":
            return core.sysreg(SPSR_EL1)
        return core.reg(name)

    def _write_named(self, name: str, value: int) -> None:
        core = self.core
        if name.startswith("x"):
            core.set_x(int(name[1:]), value)
        elif name.startswith("sp_el"):
            self._set_sp_el(int(name[5:]), value)
        elif name == "pc":
            core.pc = value
        elif name == "spsr_el1":
            core.set_sysreg(SPSR_EL1, value)
        else:
            core.set_reg(name, value)

    def _set_sp_el(self, index: int, value: int) -> None:
        """SP_ELn; the core keeps the selected one live apart from its bank, so that
        one (SP_EL1 at EL1h, SP_EL0 at EL1t) is written as SP too."""
        core = self.core
        core.set_reg(f"sp_el{index}", value)
        selected = 1 if core.reg("pstate") & exception.PSTATE_SP else 0
        if index == selected:
            core.set_sp(value)

    # resuming after an exit
    def complete(self, access: a64.Access, data: int) -> None:
        """Finish the MMIO access the host emulated, with ``data`` for a load."""
        traps.complete(self.core, access, data)

    def complete_hypercall(self, results) -> None:
        """Finish the forwarded call: the guest resumes with X0.. = ``results``."""
        self.hypercall = None
        for n, value in enumerate(results):
            self.core.set_x(n, value)

    # guest memory
    def fetch_insn(self, va: int) -> int | None:
        """The instruction word at ``va`` if the guest's stage 1 (:mod:`hyp.arch.stage1`)
        and the stage 2 let it execute there."""
        ipa = self.stage1_ipa(va)
        hit = None if ipa is None else self.translate(ipa)
        if hit is None or not hit[1].access & ACCESS_X:
            return None
        return self.core.read_insn(hit[0])

    def stage1_walk(self, va: int) -> stage1.Leaf | stage1.Fault:
        """``va`` through the guest's stage-1 tables, read through its stage 2."""
        return stage1.walk(va, stage1.Regime.of(self.core), self._read_descriptor)

    def stage1_ipa(self, va: int) -> int | None:
        if not stage1.mmu_on(self.core):
            return va
        leaf = self.stage1_walk(va)
        return leaf.ipa if isinstance(leaf, stage1.Leaf) else None

    def _read_descriptor(self, ipa: int) -> int | None:
        hit = self.translate(ipa)
        if hit is None or not hit[1].access & ACCESS_R:
            return None
        return int.from_bytes(self.hyp.dram.read(hit[0], 8), "little")

    # EL2 trap handlers, called on this vCPU's thread while its core runs
    def exception(self, core: Core, excp: int) -> None:
        with self.hyp.lock:
            traps.exception(self, excp)

    def sysreg(self, core: Core, reg: SysReg, write: bool, rt: int) -> bool:
        return traps.sysreg(self, core, reg, write, rt)

    # exceptions into the guest; each stops the core so the vector runs next
    def inject_guest_exception(self, excp: int) -> None:
        """The guest's own synchronous exception (SVC, undefined...) goes to its EL1."""
        at = {Excp.SWI: self.core.pc - 4, Excp.UDEF: self.core.pc}.get(excp)
        insn = (self.fetch_insn(at) or 0) if at is not None else 0
        self._entered(exception.inject_guest_exception(self.core, excp, insn))
        self.core.stop(RunStop.SYNC)

    def inject_abort(self, far: int, write: bool, dfsc: int) -> None:
        """A synchronous data abort at EL1 for the instruction at PC."""
        self._entered(exception.inject_dabt(self.core, far, write, dfsc))
        self.core.stop(RunStop.SYNC)

    def inject_prefetch_abort(self, far: int, ifsc: int) -> None:
        """A synchronous instruction abort at EL1 for the instruction at PC."""
        self._entered(exception.inject_pabt(self.core, far, ifsc))
        self.core.stop(RunStop.SYNC)

    def _trace_fault(self, why: str) -> None:
        """The vCPU stops on a fault the host must resolve (a page fault) or
        that ends it: ``guest_fault``, with the state an oops prints if the
        host cannot (PC, the word there, PSTATE, X0..X30, SP)."""
        core = self.core
        regs = core.xs()
        pc, pstate, insn = core.pc, core.reg("pstate"), self.fetch_insn(core.pc)
        self.hyp.trace(
            "guest_fault",
            vcpu=self.trace_name,
            why=why,
            pc=pc,
            insn=insn,
            spsr=pstate,
            regs=regs,
            sp=core.sp,
        )

    def _entered(self, entry: dict) -> None:
        """Trace the exception entry just made, with the word at its PC (None:
        not executable there): everything a guest's oops needs."""
        insn = self.fetch_insn(entry["pc"])
        self.hyp.trace("guest_exception", vcpu=self.trace_name, insn=insn, **entry)
