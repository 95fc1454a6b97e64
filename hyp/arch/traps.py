"""Trap dispatch of a running vCPU (Gunyah hyp/vm/vcpu/aarch64/src/trap_dispatch.c,
sysreg_traps.c and hyp/mem/addrspace/armv8/src/abort.c; Linux
arch/arm64/kvm/handle_exit.c and mmio.c).

Called on the vCPU's own thread while its core runs, with the EL2 lock
held. HVC and SMC go to :func:`hyp.arch.smccc.guest_call`; a stage-2 data
abort is decoded (:mod:`hyp.hw.a64`) into a permission fault for the guest,
a page-fault exit (inside a range the hypervisor pages on demand), a vGIC
access emulated here, or an MMIO exit to the host; a stage-2 instruction
abort is a permission fault or a page-fault exit; ICC_* and timer system
registers are emulated; the guest's own exceptions go back to its EL1.
An ICC_* access or a timer register write changes what the core must pick
up before the next instruction; the vCPU applies it without ending the run
when nothing else needs the run loop (:meth:`ArchVcpu.sync_in_trap`).

What ends a run is said by what the core is stopped with: a
:class:`RunStop` when nothing more needs saying, or a :class:`VmmioExit`,
:class:`PageFaultExit` or :class:`HypercallExit` for the run loop to hand
to the host.

Hooks the vCPU supplies: ``translate(ipa)`` (its stage 2: (PA, attrs) or
None), ``demand_paged(ipa)`` (is an unmapped ``ipa`` the host's to page
in), ``vgic`` (its :class:`~hyp.arch.vgic.Vgic`) and ``trace_name``.
"""

from __future__ import annotations

from enum import IntEnum, auto
from typing import NamedTuple

from hyp.arch import smccc, stage1, vtimer
from hyp.arch.exception import FSC_EXTERNAL, FSC_PERMISSION_L3, IMM16, PSTATE_EL_MASK
from hyp.hw import a64
from hyp.hw.cpu import HPFAR_EL2, Core, Excp, SysReg
from hyp.hw.gicv3 import ICC_ASGI1R, ICC_SGI0R, ICC_SGI1R, is_icc

PSTATE_PAN = 1 << 22
ICC_SGI_REGS = (ICC_SGI1R, ICC_ASGI1R, ICC_SGI0R)  # writes that may wake another vCPU


class RunStop(IntEnum):
    """Why the vCPU stopped its core, when nothing more needs saying."""

    KICK = auto()  # the vCPU's state changed: look at it before running on
    PREEMPT = auto()  # the turn is over
    SYNC = auto()  # a handler changed state the core must pick up (IRQ line)
    FLUSH = auto()  # the stage-2 tables changed
    HVC = auto()  # a guest call was handled


class VmmioExit(NamedTuple):
    """An access to an unmapped IPA outside the demand-paging ranges."""

    access: a64.Access
    ipa: int


class PageFaultExit(NamedTuple):
    """An access to an unmapped IPA inside a demand-paging range."""

    ipa: int
    write: bool
    fetch: bool


class HypercallExit(NamedTuple):
    """A guest call the hypervisor forwards to the host: X0..X7 as the guest
    made it (the PC is already past the HVC)."""

    args: tuple[int, ...]


def exception(vcpu, excp: int) -> None:
    """A synchronous exception the core took to EL2."""
    if excp == Excp.DATA_ABORT:
        _data_abort(vcpu)
    elif excp in (Excp.HVC, Excp.SMC):
        _hvc(vcpu, excp)
    elif excp == Excp.PREFETCH_ABORT:
        _prefetch_abort(vcpu)
    else:
        vcpu.inject_guest_exception(excp)


def _hvc(vcpu, excp: int) -> None:
    core = vcpu.core
    insn = vcpu.fetch_insn(core.pc - 4)
    imm = (insn or 0) >> 5 & IMM16
    regs = list(core.xs(8))
    out = smccc.guest_call(vcpu.hyp, vcpu, excp == Excp.SMC, imm, regs)
    if out is smccc.FORWARD:
        core.stop(HypercallExit(tuple(regs)))
        return
    for n, value in enumerate(out):
        core.set_x(n, value)
    core.stop(RunStop.HVC)


def _fault_ipa(core: Core, va: int) -> int:
    """HPFAR_EL2 gives the faulting IPA's page; the offset is the VA's."""
    return (core.sysreg(HPFAR_EL2) >> 4) << 12 | (va & 0xFFF)


def _stage1_fault(vcpu, va: int, write: bool, fetch: bool) -> bool:
    """The guest's own stage 1 refuses the access at ``va``: its abort is entered at
    EL1 (True). Unicorn reports stage-1 and stage-2 aborts alike and without a
    syndrome, so the walk is redone here to tell them apart. With the MMU off
    there is no stage 1 to refuse anything."""
    if not stage1.Regime.of(vcpu.core).mmu_on:
        return False
    walked = vcpu.stage1_walk(va)
    if isinstance(walked, stage1.Fault):
        if walked.fsc == stage1.FAULT_STAGE2:
            return False
        fsc = walked.fsc
    else:
        pstate = vcpu.core.reg("pstate")
        el0 = pstate & PSTATE_EL_MASK == 0
        if stage1.permits(walked, el0, write, fetch, bool(pstate & PSTATE_PAN)):
            return False
        fsc = stage1.FSC_PERMISSION | walked.level
    if fetch:
        vcpu.inject_prefetch_abort(va, fsc)
    else:
        vcpu.inject_abort(va, write, fsc)
    return True


def _data_abort(vcpu) -> None:
    core = vcpu.core
    insn = vcpu.fetch_insn(core.pc)
    access = None if insn is None else a64.decode(insn, core.x, lambda: core.sp)
    if insn is not None and stage1.mmu_on(core):
        va = a64.address(insn, core.x, core.sp, core.pc)
        write = access.is_write if access is not None else a64.writes(insn)
        if va is not None and _stage1_fault(vcpu, va, write, False):
            return
    va = access.address if access is not None else 0
    ipa = _fault_ipa(core, va)
    hit = vcpu.translate(ipa)
    if hit is not None:
        # Mapped: a permission fault the guest must see.
        vcpu.inject_abort(va, access is not None and access.is_write, FSC_PERMISSION_L3)
    elif vcpu.demand_paged(ipa):
        # The write flag of an access a64 cannot emulate comes from its L bit:
        # unicorn leaves the syndrome empty.
        write = access.is_write if access is not None else a64.writes(insn or 0)
        core.stop(PageFaultExit(ipa, write, False))
    elif access is None:
        vcpu.hyp.trace("unsupported_mmio", vcpu=vcpu.trace_name, ipa=ipa, insn=insn)
        vcpu.inject_abort(ipa, False, FSC_EXTERNAL)
    elif vcpu.vgic.claims(ipa):
        _vgic_mmio(vcpu, access, ipa)
    else:
        core.stop(VmmioExit(access, ipa))


def _prefetch_abort(vcpu) -> None:
    """A fetch from a mapped IPA the stage 2 forbids executing (shared memory
    is never executable) is the guest's permission fault; from an unmapped
    IPA it cannot be MMIO, and the host may page it in."""
    pc = vcpu.core.pc
    if _stage1_fault(vcpu, pc, False, True):
        return
    ipa = vcpu.stage1_ipa(pc)
    if ipa is None:
        ipa = _fault_ipa(vcpu.core, pc)
    if vcpu.translate(ipa) is not None:
        vcpu.inject_prefetch_abort(pc, FSC_PERMISSION_L3)
    else:
        vcpu.core.stop(PageFaultExit(ipa, False, True))


def _vgic_mmio(vcpu, access: a64.Access, ipa: int) -> None:
    core = vcpu.core
    value = core.x(access.rt) if access.is_write else None
    result = vcpu.vgic.mmio(vcpu, ipa, access.size, value)
    if result is None:
        core.stop(VmmioExit(access, ipa))
        return
    complete(core, access, result)
    core.stop(RunStop.SYNC)


def complete(core: Core, access: a64.Access, data: int) -> None:
    """Finish an emulated access: load result, base writeback, next instruction."""
    if not access.is_write:
        core.set_x(access.rt, a64.load_result(access, data))
    if access.writeback is not None:
        if access.rn == a64.ZR_OR_SP:
            core.set_sp(access.writeback)
        else:
            core.set_x(access.rn, access.writeback)
    core.pc = core.pc + 4


def sysreg(vcpu, core: Core, reg: SysReg, write: bool, rt: int) -> bool:
    """A trapped MSR/MRS by Xrt; False if no model here knows ``reg``."""
    if is_icc(reg.op0, reg.op1, reg.crn, reg.crm):
        with vcpu.hyp.lock:
            icc = (reg.crn, reg.crm, reg.op2)
            result = vcpu.vgic.sysreg(vcpu, icc, core.x(rt) if write else None)
            if not write:
                core.set_x(rt, result)
            # Unicorn does not step over registers it does not know; the PC
            # written also makes it look at the IRQ line before going on.
            core.pc = core.pc + 4
            vcpu.sync_in_trap(others_may_go=write and icc in ICC_SGI_REGS)
        return True
    if not vtimer.sysreg(vcpu, core, reg, write, rt):
        return False
    if write:  # unicorn ends the translation block after a register write
        with vcpu.hyp.lock:
            vcpu.sync_in_trap()
    return True
