"""SMCCC dispatch of a guest's HVC and SMC (Gunyah hyp/vm/smccc/src/smccc.c,
Linux arch/arm64/kvm/hypercalls.c).

Function ids: bit 31 fast call, bit 30 SMC64, bits 29:24 owner, 15:0
function. The architecture's own calls are answered here (SMCCC_VERSION,
PSCI through :mod:`hyp.arch.psci`); everything else belongs to the
hypervisor, which supplies two hooks on its :class:`~hyp.arch.el2.El2`:

- ``immediate_call(vcpu, is_smc, imm, regs)`` for an HVC or SMC with a
  non-zero immediate (SMCCC uses only #0);
- ``vendor_call(vcpu, fid, regs)`` for an SMCCC function id that is
  neither PSCI nor the architecture's.

Each returns the X0.. values to write back, or None if the call is not
its own, which the guest sees as SMCCC_UNKNOWN (-1), or :data:`FORWARD`:
the host answers it (the run ends in a HYPERCALL exit carrying X0..X7, and
the guest resumes with the X0..X3 the hypervisor gives
:meth:`~hyp.arch.vcpu.ArchVcpu.complete_hypercall`).
"""

from __future__ import annotations

from hyp.arch import psci

FAST, SMC64 = 1 << 31, 1 << 30
SMCCC_UNKNOWN = 0xFFFF_FFFF_FFFF_FFFF
SMCCC_VERSION = 0x8000_0000
SMCCC_VERSION_1_1 = 0x10001
MASK64 = (1 << 64) - 1
FORWARD = "forward"  # a hook's answer: the host's to serve


def owner(fid: int) -> int:
    return fid >> 24 & 0x3F


def guest_call(el2, vcpu, is_smc: bool, imm: int, regs: list[int]) -> list[int] | str:
    """An HVC (or SMC if ``is_smc``) #``imm`` of ``vcpu`` with X0..X7 = ``regs``;
    returns X0.. to write back, or FORWARD. Called with the EL2 lock held."""
    if imm != 0:
        out = el2.immediate_call(vcpu, is_smc, imm, regs)
        return [SMCCC_UNKNOWN] if out is None else out
    fid = regs[0] & 0xFFFF_FFFF
    if psci.is_psci(fid):
        return [psci.call(el2, vcpu, fid, regs[1:]) & MASK64]
    if fid == SMCCC_VERSION:
        return [SMCCC_VERSION_1_1]
    out = el2.vendor_call(vcpu, fid, regs)
    return [SMCCC_UNKNOWN] if out is None else out
