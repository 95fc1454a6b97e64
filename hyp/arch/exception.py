"""Exceptions an EL2 injects into its guest's EL1 (Gunyah
hyp/vm/vcpu/aarch64/src/exception_inject.c, Linux arch/arm64/kvm/inject_fault.c).

Each function takes the core of a vCPU that is stopped inside a trap and
rewrites its EL1 state as the hardware's exception entry would: ESR_EL1,
FAR_EL1 (aborts only), ELR_EL1 and SPSR_EL1 saved, PSTATE EL1h with DAIF
masked (NZCV kept), PC at the right synchronous vector of VBAR_EL1. They
never stop the core: the caller does, so the new PC is picked up before
the next guest instruction. Each returns the entry it made, the fields of
the ``guest_exception`` trace event (what an oops prints): ``esr``,
``far`` (None: not an abort), ``elr``, ``pc`` (the instruction that took
it), ``spsr``, ``vector`` (the PC it goes on at), and ``regs`` (X0..X30)
and ``sp`` as they were at the exception.
"""

from __future__ import annotations

from hyp.hw.cpu import PSTATE_EL1H_MASKED, SPSR_EL1, Core, Excp

# Exception classes and fault codes of the aborts injected into the guest.
EC_IABT_LOWER, EC_IABT_CUR, EC_DABT_LOWER, EC_DABT_CUR = 0x20, 0x21, 0x24, 0x25
EC_SVC64, EC_BRK, EC_SVE = 0x15, 0x3C, 0x19
CPACR_ZEN_SHIFT = 16  # 0b11: EL0 and EL1 may use SVE; 0b01: EL1 only
FSC_EXTERNAL, FSC_PERMISSION_L3 = 0x10, 0x0F  # data and instruction fault status codes
ISS_WNR = 1 << 6
ESR_EC_SHIFT, ESR_IL = 26, 1 << 25  # IL: a 32-bit instruction
IMM16 = 0xFFFF  # the immediate of HVC/SVC, at bit 5 of the instruction
PSTATE_EL_MASK, PSTATE_SP = 0xC, 1  # exception level, SP_ELx selected
PSTATE_NZCV = 0xF000_0000
# VBAR_EL1 offsets of the synchronous vectors
VECTOR_CUR_SP0, VECTOR_CUR_SPX, VECTOR_LOWER_A64 = 0, 0x200, 0x400


def _from_el0(core: Core) -> bool:
    return core.reg("pstate") & PSTATE_EL_MASK == 0


def _sve_trapped(core: Core, insn: int) -> bool:
    """An SVE instruction (op0 0b0010) that CPACR_EL1.ZEN does not let this EL use:
    the SVE access trap (EC 0x19) Linux takes to give a task SVE on first use."""
    if insn >> 25 & 0xF != 0b0010:
        return False
    zen = core.reg("cpacr_el1") >> CPACR_ZEN_SHIFT & 3
    return zen != 3 and not (zen == 1 and not _from_el0(core))


def inject_guest_exception(core: Core, excp: int, insn: int) -> dict:
    """The guest's own synchronous exception (SVC, BRK, undefined...) at its EL1.

    ``insn`` is the instruction word: an SVC's (its immediate goes in the ISS;
    PC is already past it) or an undefined one's (an SVE instruction CPACR_EL1
    traps is the SVE access trap, EC 0x19, not EC 0).
    """
    ec = {Excp.SWI: EC_SVC64, Excp.BKPT: EC_BRK}.get(excp, 0)
    if excp == Excp.UDEF and _sve_trapped(core, insn):
        ec = EC_SVE
    iss = insn >> 5 & IMM16 if excp == Excp.SWI else 0
    pc = core.pc - 4 if excp == Excp.SWI else core.pc
    return enter_el1(core, ec << ESR_EC_SHIFT | ESR_IL | iss, elr=core.pc, far=None, pc=pc)


def inject_dabt(core: Core, far: int, write: bool, dfsc: int) -> dict:
    """A synchronous data abort at EL1 for the instruction at PC."""
    ec = EC_DABT_LOWER if _from_el0(core) else EC_DABT_CUR
    iss = dfsc | (ISS_WNR if write else 0)
    return enter_el1(core, ec << ESR_EC_SHIFT | ESR_IL | iss, elr=core.pc, far=far)


def inject_pabt(core: Core, far: int, ifsc: int) -> dict:
    """A synchronous instruction abort at EL1 for the instruction at PC."""
    ec = EC_IABT_LOWER if _from_el0(core) else EC_IABT_CUR
    return enter_el1(core, ec << ESR_EC_SHIFT | ESR_IL | ifsc, elr=core.pc, far=far)


def enter_el1(core: Core, esr: int, elr: int, far: int | None, pc: int | None = None) -> dict:
    """Take a synchronous exception to EL1: the vector depends on where it came
    from (EL0, EL1 with SP_EL0, EL1 with SP_EL1). ``pc``: the instruction
    that took it, when not ``elr``."""
    pstate = core.reg("pstate")
    regs, sp = tuple(core.x(n) for n in range(31)), core.sp
    if pstate & PSTATE_EL_MASK == 0:
        vector = VECTOR_LOWER_A64
    else:
        vector = VECTOR_CUR_SPX if pstate & PSTATE_SP else VECTOR_CUR_SP0
    core.set_reg("esr_el1", esr)
    if far is not None:
        core.set_reg("far_el1", far)
    core.set_reg("elr_el1", elr)
    core.set_sysreg(SPSR_EL1, pstate)
    _select_sp_el1(core, pstate, sp)
    core.pc = core.reg("vbar_el1") + vector
    if vector == VECTOR_LOWER_A64:
        core.el_changed()
    pc = elr if pc is None else pc
    return dict(esr=esr, far=far, elr=elr, pc=pc, spsr=pstate, vector=core.pc, regs=regs, sp=sp)


def _select_sp_el1(core: Core, pstate: int, sp: int) -> None:
    """PSTATE becomes EL1h, and SP with it: the core keeps the SP in use apart from
    its bank, and a PSTATE write moves neither, so the SP the exception came with
    goes back to its bank (SP_EL0 from EL0 or EL1t) and SP_EL1 is brought in, as
    the hardware's entry does. Without it an entry from EL0 would run the
    kernel's vector on the user's stack."""
    from_sp_el1 = pstate & PSTATE_EL_MASK and pstate & PSTATE_SP
    if not from_sp_el1:
        core.set_reg("sp_el0", sp)
    core.set_reg("pstate", PSTATE_EL1H_MASKED | (pstate & PSTATE_NZCV))
    if not from_sp_el1:
        core.set_sp(core.reg("sp_el1"))
