"""The guest's stage-1 translation, walked by EL2 (Linux arch/arm64/kvm/at.c, the
Arm ARM's AArch64.TranslationTableWalk).

The hypervisor reads guest instructions and memory by virtual address:
to decode the access of a trapped instruction, and to enter an exception
with the right syndrome. With the guest's MMU off (SCTLR_EL1.M clear) a
VA is the IPA; with it on, :func:`walk` follows the EL1&0 regime's tables
as the hardware does:

- TTBR0_EL1 or TTBR1_EL1 by VA bit 55; the bits above the region
  (64 - TnSZ) must all equal it, except the top byte when TCR_EL1.TBIn
  ignores it; a VA outside both regions, or a region disabled by
  TCR_EL1.EPDn, is a level-0 translation fault;
- 4K, 16K or 64K granules (TG0/TG1), the start level from TnSZ;
- invalid descriptors are translation faults at their level, a block
  where none may be (level 3, or level 0/1 where the granule has no such
  block) too; AF clear is an access flag fault (no hardware AF update);
- the leaf's permissions (AP[2:1], UXN, PXN, with the tables' APTable,
  UXNTable, PXNTable) are returned for the caller to check
  (:func:`permits`).

Descriptor and table addresses are IPAs: ``read(ipa)`` reads a 64-bit
descriptor through the stage 2, or returns None (a stage-2 fault on the
walk, :data:`FAULT_STAGE2`). 52-bit addresses (FEAT_LPA) are not modelled.

Fault status codes are the ESR's DFSC/IFSC: translation 0b0001LL, access
flag 0b0010LL, permission 0b0011LL (LL the level).
"""

from __future__ import annotations

from dataclasses import dataclass

from hyp.hw.cpu import Core, SysReg

SCTLR_EL1 = SysReg(3, 0, 1, 0, 0)
TTBR0_EL1 = SysReg(3, 0, 2, 0, 0)
TTBR1_EL1 = SysReg(3, 0, 2, 0, 1)
TCR_EL1 = SysReg(3, 0, 2, 0, 2)
SCTLR_M = 1

FSC_TRANSLATION, FSC_ACCESS, FSC_PERMISSION = 0x04, 0x08, 0x0C
FAULT_STAGE2 = -1  # the walk itself read an IPA the stage 2 does not map

_VALID, _TABLE = 1 << 0, 1 << 1
_AF = 1 << 10
_AP_USER, _AP_RO = 1 << 6, 1 << 7
_PXN, _UXN = 1 << 53, 1 << 54
_PXN_TABLE, _UXN_TABLE, _AP_TABLE_NO_EL0, _AP_TABLE_RO = 1 << 59, 1 << 60, 1 << 61, 1 << 62
_ADDR_MASK = (1 << 48) - 1
_TTBR_BADDR = _ADDR_MASK & ~1  # CnP is bit 0
MASK64 = (1 << 64) - 1

# TCR_EL1 fields of each half: (TnSZ shift, EPDn bit, TGn shift, TBIn bit, granule by TGn)
_HALVES = {
    0: (0, 7, 14, 37, {0b00: 12, 0b01: 16, 0b10: 14}),
    1: (16, 23, 30, 38, {0b10: 12, 0b11: 16, 0b01: 14}),
}


@dataclass(frozen=True)
class Regime:
    """The EL1&0 translation registers of a vCPU."""

    sctlr: int
    tcr: int
    ttbr0: int
    ttbr1: int

    @classmethod
    def of(cls, core: Core) -> Regime:
        return cls(*(core.sysreg(r) for r in (SCTLR_EL1, TCR_EL1, TTBR0_EL1, TTBR1_EL1)))

    @property
    def mmu_on(self) -> bool:
        return bool(self.sctlr & SCTLR_M)


def mmu_on(core: Core) -> bool:
    """SCTLR_EL1.M: whether the guest's stage 1 translates at all (one register
    read: the exit paths of guests without an MMU ask this first)."""
    return bool(core.sysreg(SCTLR_EL1) & SCTLR_M)


@dataclass(frozen=True)
class Leaf:
    """A successful walk: the IPA, and what the leaf allows."""

    ipa: int
    level: int
    el0: bool  # EL0 may access
    read_only: bool
    uxn: bool
    pxn: bool


@dataclass(frozen=True)
class Fault:
    """A failed walk: the fault status code (translation or access flag, with the
    level) or :data:`FAULT_STAGE2` for a descriptor the stage 2 does not map."""

    fsc: int
    level: int


def walk(va: int, regime: Regime, read) -> Leaf | Fault:
    """Translate ``va`` by the regime; ``read(ipa)`` gives a descriptor or None."""
    if not regime.mmu_on:
        return Leaf(va, 3, True, False, False, False)
    half = va >> 55 & 1
    tsz_shift, epd_bit, tg_shift, tbi_bit, granules = _HALVES[half]
    tcr = regime.tcr
    tsz = tcr >> tsz_shift & 0x3F
    granule = granules.get(tcr >> tg_shift & 3, 12)
    ia_bits = 64 - tsz
    top = 56 if tcr >> tbi_bit & 1 else 64
    expect = (1 << (top - ia_bits)) - 1 if half else 0
    if tcr >> epd_bit & 1 or (va & ((1 << top) - 1)) >> ia_bits != expect:
        return Fault(FSC_TRANSLATION, 0)
    stride = granule - 3
    level = 4 - -(-(ia_bits - granule) // stride)
    table = (regime.ttbr1 if half else regime.ttbr0) & _TTBR_BADDR
    el0, ro, uxn, pxn = True, False, False, False
    while True:
        shift = granule + stride * (3 - level)
        width = min(stride, ia_bits - shift)
        index = va >> shift & ((1 << width) - 1)
        desc = read(table + index * 8)
        if desc is None:
            return Fault(FAULT_STAGE2, level)
        if not desc & _VALID:
            return Fault(FSC_TRANSLATION | level, level)
        if level < 3 and desc & _TABLE:
            el0 = el0 and not desc & _AP_TABLE_NO_EL0
            ro = ro or bool(desc & _AP_TABLE_RO)
            uxn, pxn = uxn or bool(desc & _UXN_TABLE), pxn or bool(desc & _PXN_TABLE)
            table = desc & _ADDR_MASK & ~((1 << granule) - 1)
            level += 1
            continue
        if (level == 3 and not desc & _TABLE) or level < _first_block_level(granule):
            return Fault(FSC_TRANSLATION | level, level)
        if not desc & _AF:
            return Fault(FSC_ACCESS | level, level)
        out = desc & _ADDR_MASK & ~((1 << shift) - 1)
        return Leaf(
            out | (va & ((1 << shift) - 1)),
            level,
            el0 and bool(desc & _AP_USER),
            ro or bool(desc & _AP_RO),
            uxn or bool(desc & _UXN),
            pxn or bool(desc & _PXN),
        )


def _first_block_level(granule: int) -> int:
    """4K: 1 GiB blocks at level 1; 16K and 64K: level 2 only (without FEAT_LPA)."""
    return 1 if granule == 12 else 2


def permits(leaf: Leaf, el0: bool, write: bool, fetch: bool, pan: bool = False) -> bool:
    """May an access of this kind at EL0 or EL1 use ``leaf``? EL1 never executes what
    EL0 may write; with PSTATE.PAN set EL1 may not read or write EL0's pages."""
    if fetch:
        if el0:
            return leaf.el0 and not leaf.uxn
        return not leaf.pxn and not (leaf.el0 and not leaf.read_only)
    if el0 and not leaf.el0:
        return False
    if not el0 and pan and leaf.el0:
        return False
    return not (write and leaf.read_only)
