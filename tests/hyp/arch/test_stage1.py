"""The stage-1 walk against the architecture's descriptor rules (Arm ARM D8:
VMSAv8-64 translation), with tables written by hand into a dict of IPAs."""

import pytest

from hyp.arch import stage1
from hyp.arch.stage1 import FAULT_STAGE2, Fault, Leaf, Regime, permits

VALID, TABLE, AF = 1, 2, 1 << 10
AP_USER, AP_RO, PXN, UXN = 1 << 6, 1 << 7, 1 << 53, 1 << 54
AP_TABLE_NO_EL0, UXN_TABLE = 1 << 61, 1 << 60
PAGE = VALID | TABLE | AF  # a level-3 page
BLOCK = VALID | AF  # a level-1/2 block
# TCR_EL1: T0SZ [5:0], EPD0 7, TG0 [15:14] (0: 4K, 1: 64K), T1SZ [21:16], EPD1 23,
# TG1 [31:30] (2: 4K), TBI0 37, TBI1 38
TG1_4K = 2 << 30
SCTLR_M = 1


def tcr(t0sz=16, t1sz=16, tg0=0, tg1=TG1_4K, extra=0):
    return t0sz | tg0 << 14 | t1sz << 16 | tg1 | extra


class Tables:
    """Descriptors by IPA; walk() reads through it."""

    def __init__(self):
        self.mem = {}

    def put(self, table, index, desc):
        self.mem[table + 8 * index] = desc

    def walk(self, va, regime):
        return stage1.walk(va, regime, self.mem.get)


def test_with_the_mmu_off_a_va_is_its_ipa():
    leaf = Tables().walk(0x8123_4567, Regime(0, 0, 0, 0))
    assert isinstance(leaf, Leaf) and leaf.ipa == 0x8123_4567


def test_a_4k_page_through_four_levels_of_ttbr1():
    va = 0xFFFF_8000_1234_5678
    t = Tables()
    l0, l1, l2, l3 = 0x1000, 0x2000, 0x3000, 0x4000
    t.put(l0, va >> 39 & 511, l1 | VALID | TABLE)
    t.put(l1, va >> 30 & 511, l2 | VALID | TABLE)
    t.put(l2, va >> 21 & 511, l3 | VALID | TABLE)
    t.put(l3, va >> 12 & 511, 0x9_8765_4000 | PAGE | PXN | UXN)
    leaf = t.walk(va, Regime(SCTLR_M, tcr(), 0, l0 | 1))  # CnP set in TTBR1
    assert leaf == Leaf(0x9_8765_4678, 3, el0=False, read_only=False, uxn=True, pxn=True)


def test_a_2m_block_from_a_39_bit_ttbr0_starting_at_level_1():
    t = Tables()
    va = 0x40_2345_6789 & ((1 << 39) - 1)
    t.put(0x1000, va >> 30 & 511, 0x2000 | VALID | TABLE)
    t.put(0x2000, va >> 21 & 511, 0x8040_0000 | BLOCK | AP_USER | AP_RO)
    leaf = t.walk(va, Regime(SCTLR_M, tcr(t0sz=25), 0x1000, 0))
    assert leaf.ipa == 0x8040_0000 | (va & 0x1F_FFFF) and leaf.level == 2
    assert leaf.el0 and leaf.read_only


def test_a_64k_granule_with_42_bits_starts_at_level_2():
    t = Tables()
    va = 0x123_4567_89AB
    t.put(0x10000, va >> 29 & 0x1FFF, 0x20000 | VALID | TABLE)
    t.put(0x20000, va >> 16 & 0x1FFF, 0x7_0000 | PAGE)
    leaf = t.walk(va, Regime(SCTLR_M, tcr(t0sz=22, tg0=1), 0x10000, 0))
    assert leaf.ipa == 0x7_0000 | (va & 0xFFFF) and leaf.level == 3


def ttbr0_39():
    return Regime(SCTLR_M, tcr(t0sz=25), 0x1000, 0)


@pytest.mark.parametrize(
    "l1, l2, fault",
    [
        (0, None, Fault(stage1.FSC_TRANSLATION | 1, 1)),  # invalid at level 1
        (0x2000 | VALID | TABLE, 0, Fault(0x06, 2)),  # invalid at level 2
        (0x2000 | VALID | TABLE, 0x8000_0000 | VALID, Fault(0x0A, 2)),  # AF clear: 0b001010
        (0x2000 | VALID | TABLE, 0x3000 | VALID | TABLE, Fault(0x07, 3)),  # level 3 empty
    ],
)
def test_invalid_and_access_flag_faults_carry_their_level(l1, l2, fault):
    t = Tables()
    t.put(0x1000, 0, l1)
    if l2 is not None:
        t.put(0x2000, 0, l2)
    t.put(0x3000, 1, 0)  # an empty level-3 entry (0x1234 is page 1)
    assert t.walk(0x1234, ttbr0_39()) == fault


def test_a_block_descriptor_at_level_3_is_a_translation_fault():
    t = Tables()
    t.put(0x1000, 0, 0x2000 | VALID | TABLE)
    t.put(0x2000, 0, 0x3000 | VALID | TABLE)
    t.put(0x3000, 1, 0x5000 | VALID | AF)  # bit 1 clear: reserved at level 3
    assert t.walk(0x1000, ttbr0_39()) == Fault(0x07, 3)


def test_a_va_outside_both_regions_or_in_a_disabled_one_faults_at_level_0():
    t = Tables()
    t.put(0x1000, 0, 0x8000_0000 | BLOCK)
    assert t.walk(1 << 39, ttbr0_39()) == Fault(0x04, 0)  # above the 39-bit region
    # TBI0: the top byte is ignored, so a tagged pointer translates
    tagged = Regime(SCTLR_M, tcr(t0sz=25, extra=1 << 37), 0x1000, 0)
    assert t.walk(0x5A00_0000_0000_1000, tagged).ipa == 0x8000_1000
    assert t.walk(0x5A00_0000_0000_1000, ttbr0_39()) == Fault(0x04, 0)
    epd0 = Regime(SCTLR_M, tcr(t0sz=25, extra=1 << 7), 0x1000, 0)
    assert t.walk(0x1000, epd0) == Fault(0x04, 0)


def test_a_table_the_stage_2_does_not_map_is_a_stage_2_fault():
    t = Tables()
    t.put(0x1000, 0, 0x9999_0000 | VALID | TABLE)  # nothing at 0x99990000
    assert t.walk(0x1000, ttbr0_39()) == Fault(FAULT_STAGE2, 2)


def test_table_attributes_restrict_the_leaf():
    t = Tables()
    t.put(0x1000, 0, 0x2000 | VALID | TABLE | AP_TABLE_NO_EL0 | UXN_TABLE)
    t.put(0x2000, 0, 0x8000_0000 | BLOCK | AP_USER)
    leaf = t.walk(0x1000, ttbr0_39())
    assert not leaf.el0 and leaf.uxn and not leaf.pxn


def leaf(el0=False, read_only=False, uxn=False, pxn=False):
    return Leaf(0, 3, el0, read_only, uxn, pxn)


def test_permissions_by_exception_level_pan_and_execute_never():
    kernel_rw, user_rw, user_ro = leaf(), leaf(el0=True), leaf(el0=True, read_only=True)
    assert permits(kernel_rw, el0=False, write=True, fetch=False)
    assert not permits(kernel_rw, el0=True, write=False, fetch=False)
    assert permits(user_rw, el0=True, write=True, fetch=False)
    assert not permits(user_ro, el0=True, write=True, fetch=False)
    assert permits(user_rw, el0=False, write=True, fetch=False)
    assert not permits(user_rw, el0=False, write=False, fetch=False, pan=True)
    # EL1 never executes what EL0 can write; EL0 executes only what UXN allows
    assert not permits(user_rw, el0=False, write=False, fetch=True)
    assert permits(user_ro, el0=False, write=False, fetch=True)
    assert not permits(leaf(el0=True, uxn=True), el0=True, write=False, fetch=True)
    assert not permits(leaf(pxn=True), el0=False, write=False, fetch=True)
