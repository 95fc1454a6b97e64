"""An AArch64 core: unicorn running guest code at EL1 behind stage 2.

EL2 is Python. The core is set up the way EL2 would leave it before
entering a guest (SCR_EL3 with EL2 enabled and AArch64 below, HCR_EL2 with
stage 2 and virtual interrupts routed), and everything the guest does that
an EL2 would see arrives at the core's :class:`Trap` handler:

- HVC and SMC (unicorn reports them with the PC already past the
  instruction and ESR_EL2 empty, so the immediate is read from memory);
- stage-2 data aborts (HPFAR_EL2 holds the IPA page, the PC is on the
  faulting instruction, ESR_EL2 is empty: see hyp.hw.a64);
- system register accesses the hypervisor emulates (the GIC CPU interface
  and the virtual timer);
- WFI, which halts unicorn: :meth:`Core.run` returns ``Stop.HALTED``;
- every other synchronous exception, which the hypervisor injects into EL1.

Virtual IRQs are delivered by unicorn itself from HCR_EL2.VI. A handler
ends a run with :meth:`Core.stop`, which is also safe from another thread.

A run never stops inside an instruction. Unicorn looks for an exit request
after every guest memory access and, if one is pending, rolls the PC back
to that access, which has already happened: an ``emu_stop`` from another
thread (or a timeout) would make the instruction run twice. So no other
thread calls ``emu_stop``: it leaves a request that :meth:`Core.run` looks
at between slices of ``SLICE`` instructions (unicorn's instruction count,
which ends a slice before an instruction starts). The count also puts an
exit check in front of every instruction, so a stop from a handler takes
effect before the next instruction begins, never after its first access.

A core caches translations, so a stage-2 change reaches a core running in
another thread only when its slice ends: :meth:`Core.run_token` and
:meth:`Core.wait_run_end` let the changing thread wait for that (the
DSB after a broadcast TLBI).
"""

from __future__ import annotations

import ctypes
import struct
import threading
from dataclasses import dataclass
from enum import IntEnum, auto

from unicorn import UC_ARCH_ARM64, UC_HOOK_INSN, UC_HOOK_INTR, UC_MODE_ARM, UC_PROT_ALL, Uc, UcError
from unicorn import arm64_const as arm64
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH
from unicorn.unicorn_py3.arch.arm64 import UcRegCP64
from unicorn.unicorn_py3.unicorn import HOOK_INTR_CFUNC, uc_hook_h, uclib

from hyp.hw.memory import Dram

_TCG_BUFFER = 64 << 20
_NEVER = 0xFFFF_FFFF_FFFF_FFFC
SLICE = 1 << 17  # instructions between two looks at a stop requested by another thread
INSN_WFI = 0xD503207F

SCR_EL3_NS, SCR_EL3_HCE, SCR_EL3_RW = 1 << 0, 1 << 8, 1 << 10
# Pointer authentication's keys and instructions are the guest's (as under KVM and
# Gunyah), not trapped to EL3; nor is SVE (CPTR_EL3.EZ).
SCR_EL3_APK, SCR_EL3_API = 1 << 16, 1 << 17
CPTR_EL3_EZ = 1 << 8

HCR_VM, HCR_FMO, HCR_IMO, HCR_AMO, HCR_VI, HCR_RW = 1, 1 << 3, 1 << 4, 1 << 5, 1 << 7, 1 << 31
HCR_APK, HCR_API = 1 << 40, 1 << 41
HCR_GUEST = HCR_VM | HCR_FMO | HCR_IMO | HCR_AMO | HCR_RW | HCR_APK | HCR_API

PSTATE_EL1H_MASKED = 0x3C5


class Excp(IntEnum):
    """Exception numbers unicorn passes to its interrupt hook (QEMU's EXCP_*)."""

    UDEF = 1
    SWI = 2
    PREFETCH_ABORT = 3
    DATA_ABORT = 4
    IRQ = 5
    FIQ = 6
    BKPT = 7
    HVC = 11
    HYP_TRAP = 12
    SMC = 13
    VIRQ = 14
    VFIQ = 15


@dataclass(frozen=True)
class SysReg:
    """A system register encoding, as in ``S<op0>_<op1>_C<crn>_C<crm>_<op2>``."""

    op0: int
    op1: int
    crn: int
    crm: int
    op2: int

    def cp(self, *value: int) -> tuple[int, ...]:
        return (self.crn, self.crm, self.op0, self.op1, self.op2, *value)


SCR_EL3 = SysReg(3, 6, 1, 1, 0)
CPTR_EL3 = SysReg(3, 6, 1, 1, 2)
HCR_EL2 = SysReg(3, 4, 1, 1, 0)
VTTBR_EL2 = SysReg(3, 4, 2, 1, 0)
VTCR_EL2 = SysReg(3, 4, 2, 1, 2)
HPFAR_EL2 = SysReg(3, 4, 6, 0, 4)
VMPIDR_EL2 = SysReg(3, 4, 0, 0, 5)
MPIDR_EL1 = SysReg(3, 0, 0, 0, 5)
SPSR_EL1 = SysReg(3, 0, 4, 0, 0)
SCTLR_EL1 = SysReg(3, 0, 1, 0, 0)


class Stop(IntEnum):
    """Why a run ended, when the reason carries no data."""

    HALTED = auto()  # the guest executed WFI
    STOPPED = auto()  # stopped with no reason of its own
    EXCEPTION = auto()  # an exception the trap handler did not take


@dataclass(frozen=True)
class CoreError:
    """Unicorn gave up on the guest (e.g. a fetch from a physical address nothing backs)."""

    error: UcError


class Trap:
    """What a core asks of its hypervisor; subclasses override what they handle."""

    def exception(self, core: Core, excp: int) -> None:
        core.stop(Stop.EXCEPTION)

    def sysreg(self, core: Core, sysreg: SysReg, write: bool, rt: int) -> bool:
        """Emulate an access; True if handled (the core skips the instruction)."""
        return False

    def fetch_insn(self, va: int) -> int | None:
        """The instruction word at guest address ``va``, if it can be fetched."""
        return None


_RUNNING = threading.local()  # core: the one whose run this thread is in


def running_core() -> Core | None:
    """The core whose :meth:`Core.run` the calling thread is inside (its handlers)."""
    return getattr(_RUNNING, "core", None)


def _holding_gil(name: str, *argtypes):
    """The library's ``name`` called without releasing the GIL (PyDLL): a register
    access or a stop takes well under a microsecond, and a release lets any
    other thread in, for as long as it wants, on each of the several an exit
    makes. ``Uc.reg_read`` also picks a value type and builds a ctypes object
    per call."""
    fn = getattr(ctypes.PyDLL(uclib._name, handle=uclib._handle), name)
    fn.argtypes, fn.restype = argtypes, ctypes.c_int
    return fn


_REG_READ = _holding_gil("uc_reg_read", ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
_REG_WRITE = _holding_gil("uc_reg_write", ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
_REG_READ_BATCH = _holding_gil(
    "uc_reg_read_batch", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int
)
_EMU_STOP = _holding_gil("uc_emu_stop", ctypes.c_void_p)  # only ever from the core's thread


def _add_intr_hook(uch, handler):
    """``handler(uch, intno, user)`` called by the library for every exception,
    directly: ``Uc.hook_add`` puts two Python frames (an exception guard
    ``handler`` has itself and an argument adapter) in front of each trap.
    Returns the callback object, which must live as long as the core."""
    callback = HOOK_INTR_CFUNC(handler)
    hook = uc_hook_h()
    status = uclib.uc_hook_add(
        uch,
        ctypes.byref(hook),
        UC_HOOK_INTR,
        callback,
        None,
        ctypes.c_uint64(1),  # begin > end: every address
        ctypes.c_uint64(0),
    )
    if status:
        raise UcError(status)
    return callback


_PC, _SP, _CP_REG = arm64.UC_ARM64_REG_PC, arm64.UC_ARM64_REG_SP, arm64.UC_ARM64_REG_CP_REG
_MASK64 = (1 << 64) - 1


class Core:
    """One core with its own unicorn instance; DRAM is shared with all cores.

    Registers go through the library's own calls with buffers the core keeps
    (a 64-bit value, one ``UcRegCP64`` per system register used), so one
    thread at a time uses them: the one running the core, or one holding its
    vCPU while no thread runs it. HCR_EL2 is shadowed: the core is its only
    writer."""

    def __init__(self, dram: Dram, trap: Trap):
        self.dram, self.trap = dram, trap
        self.uc = uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.ctl_set_cpu_model(arm64.UC_CPU_ARM64_MAX)
        uc.ctl_set_tcg_buffer_size(_TCG_BUFFER)
        uc.mem_map_ptr(dram.base, dram.size, UC_PROT_ALL, dram.address)
        self._uch = uc._uch
        self._value = ctypes.c_uint64()
        self._ref = ctypes.byref(self._value)
        self._cp: dict[SysReg, tuple[UcRegCP64, object]] = {}
        self._hcr = 0
        self._xvalues = (ctypes.c_uint64 * 31)()
        base = ctypes.addressof(self._xvalues)
        self._xpointers = (ctypes.c_void_p * 31)(*(base + 8 * n for n in range(31)))
        self.set_sysreg(SCR_EL3, SCR_EL3_NS | SCR_EL3_HCE | SCR_EL3_RW | SCR_EL3_APK | SCR_EL3_API)
        self.set_sysreg(CPTR_EL3, CPTR_EL3_EZ)
        self.set_sysreg(HCR_EL2, HCR_GUEST)
        self._fresh = uc.context_save()  # every register as set up: what reset() restores
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)  # a run ended: _runs changed
        self._runs = 0  # _lock: runs ended so far
        self._runner: int | None = None  # the thread inside run()
        self._stop = None  # a handler's reason: ends the run at once
        self._request = None  # another thread's: ends it at the next slice
        self._error: BaseException | None = None
        self._intr_hook = _add_intr_hook(self._uch, self._on_intr)
        for insn, write in ((arm64.UC_ARM64_INS_MRS, False), (arm64.UC_ARM64_INS_MSR, True)):
            uc.hook_add(UC_HOOK_INSN, self._on_sysreg, write, aux1=insn)

    # registers
    def _read(self, reg: int) -> int:
        status = _REG_READ(self._uch, reg, self._ref)
        if status:
            raise UcError(status, reg)
        return self._value.value

    def _write(self, reg: int, value: int) -> None:
        self._value.value = value
        status = _REG_WRITE(self._uch, reg, self._ref)
        if status:
            raise UcError(status, reg)

    def x(self, n: int) -> int:
        return 0 if n == 31 else self._read(_XREG[n])

    def set_x(self, n: int, value: int) -> None:
        if n != 31:
            self._write(_XREG[n], value & _MASK64)

    def xs(self, count: int = 31) -> tuple[int, ...]:
        """X0..X<count-1> in one call into the library."""
        status = _REG_READ_BATCH(self._uch, _XREGS, self._xpointers, count)
        if status:
            raise UcError(status)
        return tuple(self._xvalues[:count])

    @property
    def pc(self) -> int:
        return self._read(_PC)

    @pc.setter
    def pc(self, value: int) -> None:
        self._write(_PC, value)

    @property
    def sp(self) -> int:
        return self._read(_SP)

    def set_sp(self, value: int) -> None:
        self._write(_SP, value)

    def reg(self, name: str) -> int:
        return self.uc.reg_read(getattr(arm64, f"UC_ARM64_REG_{name.upper()}"))

    def set_reg(self, name: str, value: int) -> None:
        self.uc.reg_write(getattr(arm64, f"UC_ARM64_REG_{name.upper()}"), value)

    def _cp_reg(self, reg: SysReg) -> tuple[UcRegCP64, object]:
        cp = self._cp.get(reg)
        if cp is None:
            value = UcRegCP64(reg.crn, reg.crm, reg.op0, reg.op1, reg.op2)
            cp = self._cp[reg] = (value, ctypes.byref(value))
        return cp

    def sysreg(self, reg: SysReg) -> int:
        if reg is HCR_EL2:  # ``is``: a dataclass's == costs more than the read
            return self._hcr
        value, ref = self._cp_reg(reg)
        status = _REG_READ(self._uch, _CP_REG, ref)
        if status:
            raise UcError(status, _CP_REG)
        return value.val

    def set_sysreg(self, reg: SysReg, value: int) -> None:
        cp, ref = self._cp_reg(reg)
        cp.val = value
        status = _REG_WRITE(self._uch, _CP_REG, ref)
        if status:
            raise UcError(status, _CP_REG)
        if reg == HCR_EL2:
            self._hcr = value

    def read_insn(self, pa: int) -> int:
        return struct.unpack("<I", self.dram.read(pa, 4))[0]

    # translation
    def set_stage2(self, vttbr: int, vtcr: int) -> None:
        self.set_sysreg(VTCR_EL2, vtcr)
        self.set_sysreg(VTTBR_EL2, vttbr)
        self.flush()

    def flush(self) -> None:
        """Forget cached translations and translated code (after a table change)."""
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
        self.uc.ctl_flush_tb()

    def set_virq_line(self, asserted: bool) -> None:
        """Drive the virtual IRQ line (HCR_EL2.VI)."""
        hcr = self.sysreg(HCR_EL2)
        new = hcr | HCR_VI if asserted else hcr & ~HCR_VI
        if new != hcr:
            self.set_sysreg(HCR_EL2, new)

    # execution
    def run(self, at_slice=None):
        """Run from the current PC until a handler stops the core, it halts or
        another thread asked for a stop.

        ``at_slice()``, if given, is called in this thread after every slice
        that ran its full ``SLICE`` instructions; like a handler it may end the
        run with :meth:`stop`. So a run's length can be bounded in guest
        instructions, which the same guest executes the same way every time,
        where host time would depend on what else the host runs.

        Returns the handler's reason, else the requesting thread's, else
        ``Stop.HALTED`` after a WFI; :class:`CoreError` when unicorn itself gives
        up. An exception raised inside a handler is raised here.
        """
        with self._lock:
            self._runner = threading.get_ident()
        _RUNNING.core = self
        try:
            while self._stop is None and self._request is None:
                pc = self.pc
                self.uc.emu_start(pc, _NEVER, count=SLICE)
                if self._stop is None and self._halted(pc):
                    self._stop = Stop.HALTED
                elif self._stop is None and at_slice is not None:
                    at_slice()
        except UcError as e:
            self.stop(CoreError(e))
        finally:
            _RUNNING.core = None
            with self._lock:
                self._runner = None
                reason = self._stop if self._stop is not None else self._request
                self._stop = self._request = None
                self._runs += 1
                self._ended.notify_all()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return reason

    def el_changed(self) -> None:
        """The hypervisor moved the core to another exception level (an exception
        from EL0 entered at EL1): unicorn keeps translating with the old level's
        permissions until its cached state is rebuilt, which a write of SCTLR_EL1
        (with its own value) does."""
        self.set_sysreg(SCTLR_EL1, self.sysreg(SCTLR_EL1))

    def stop(self, reason=Stop.STOPPED) -> None:
        """End the current (or next) run with ``reason``; thread safe.

        From a handler of this core, before the next instruction; from any
        other thread, at the next slice boundary (without ever interrupting an
        instruction). The first reason of each kind wins, except that a
        handler's reason carrying data (an exit for the host) replaces a bare
        enum one (which only asks the run loop to look again)."""
        with self._lock:
            if self._runner == threading.get_ident():
                bare = isinstance(self._stop, IntEnum) and not isinstance(reason, IntEnum)
                if self._stop is None or bare:
                    self._stop = reason
                _EMU_STOP(self._uch)
            elif self._request is None:
                self._request = reason

    def run_token(self) -> int | None:
        """If another thread is inside :meth:`run`, a token for that run (for
        :meth:`wait_run_end`); None if no run is in progress or it is the caller's."""
        with self._lock:
            if self._runner is None or self._runner == threading.get_ident():
                return None
            return self._runs

    def wait_run_end(self, token: int, timeout: float) -> bool:
        """Wait until the run ``token`` names has ended; False on timeout."""
        with self._ended:
            return self._ended.wait_for(lambda: self._runs != token, timeout)

    def _halted(self, start: int) -> bool:
        """The slice ended on a WFI (the PC is past it), not at its count."""
        pc = self.pc
        return pc != start and self.trap.fetch_insn(pc - 4) == INSN_WFI

    # hooks
    # Hooks run inside unicorn: an exception must not unwind through it, so
    # it stops the core and run() raises it in the caller's frame.
    def _on_intr(self, _uch, intno, _user) -> None:
        try:
            self.trap.exception(self, intno)
        except BaseException as e:
            self._error = e
            self.stop()

    def _on_sysreg(self, uc, reg, cp, write) -> bool:
        try:
            sysreg = SysReg(cp.op0, cp.op1, cp.crn, cp.crm, cp.op2)
            return self.trap.sysreg(self, sysreg, write, _RT[reg])
        except BaseException as e:
            self._error = e
            self.stop()
            return True

    def reset(self, trap: Trap) -> None:
        """Make an idle core what ``Core(dram, trap)`` would be: every register
        and system register as set up, the virtual IRQ line low, no cached
        translation or translated code, no stop pending; hooks stay."""
        self.trap = trap
        self._stop = self._request = self._error = None
        self.uc.context_restore(self._fresh)
        # The restore copies HCR_EL2 but not the line it drives: writing it
        # again lowers a VI the last guest left raised.
        self.set_sysreg(HCR_EL2, HCR_GUEST)
        self.flush()

    def close(self) -> None:
        self.uc = None


class CorePool:
    """The idle cores of one SoC (one DRAM), handed to the next vCPU.

    Creating a core costs unicorn's machine, its translation buffer and the
    mapping of DRAM (0.3 to 1 ms); a vCPU that is destroyed gives its core
    back instead, and :meth:`take` resets it (:meth:`Core.reset`), so a
    guest cannot tell a reused core from a new one. At most ``limit`` idle
    cores are kept (about 3 MiB of RSS each once used); :meth:`close` (the
    SoC's end) drops them."""

    def __init__(self, dram: Dram, limit: int = 8):
        self.dram, self.limit = dram, limit
        self._idle: list[Core] = []

    def take(self, trap: Trap) -> Core:
        """A core for ``trap``: an idle one reset, else a new one."""
        try:
            core = self._idle.pop()
        except IndexError:
            return Core(self.dram, trap)
        core.reset(trap)
        return core

    def give(self, core: Core) -> None:
        """``core`` no longer runs for anyone: keep it idle, or close it."""
        core.trap = None  # the vCPU it ran for is gone
        if len(self._idle) < self.limit:
            self._idle.append(core)
        else:
            core.close()

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for core in idle:
            core.close()


_X29 = {29: arm64.UC_ARM64_REG_X29, 30: arm64.UC_ARM64_REG_X30}
_XREG = [arm64.UC_ARM64_REG_X0 + n for n in range(29)] + [_X29[29], _X29[30]]
_XREGS = (ctypes.c_int * 31)(*_XREG)
_RT = {arm64.UC_ARM64_REG_X0 + n: n for n in range(29)} | {
    arm64.UC_ARM64_REG_X29: 29,
    arm64.UC_ARM64_REG_X30: 30,
    arm64.UC_ARM64_REG_XZR: 31,
}
