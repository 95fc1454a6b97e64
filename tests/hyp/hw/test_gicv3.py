"""The GICv3 keeps each CPU's highest pending interrupt between changes: after
any sequence of accesses the kept answer is the one a fresh scan gives."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hyp.hw.board import SPI_BASE
from hyp.hw.gicv3 import (
    GICD_CTLR,
    GICD_ICENABLER,
    GICD_ICFGR,
    GICD_ICPENDR,
    GICD_IPRIORITYR,
    GICD_IROUTER,
    GICD_ISENABLER,
    GICD_ISPENDR,
    GICR_SGI_BASE,
    ICC_CTLR,
    ICC_DIR,
    ICC_EOIR1,
    ICC_IAR1,
    ICC_IGRPEN1,
    ICC_PMR,
    ICC_SGI1R,
    Gicv3,
)

# Few interrupts and all-or-nothing words, so that interrupts often become
# deliverable and stop being so.
NSPIS, CPUS = 4, 2
intid = st.sampled_from([0, 1, 16, 27, 31, SPI_BASE, SPI_BASE + 1, SPI_BASE + 3])
cpu = st.integers(0, CPUS - 1)
word = st.sampled_from([0, 0xFFFF_FFFF, 0x5555_5555]) | st.integers(0, 0xFFFF_FFFF)
bank = st.sampled_from([GICD_ISENABLER, GICD_ICENABLER, GICD_ISPENDR, GICD_ICPENDR])

operations = st.one_of(
    st.tuples(st.just("assert"), intid, cpu, st.booleans()),
    st.tuples(st.just("clear"), intid, cpu),
    st.tuples(st.just("dist"), bank, st.integers(1, 1), word),  # the SPI word
    st.tuples(st.just("redist"), cpu, bank, word),  # SGIs and PPIs
    st.tuples(st.just("priority"), st.integers(0, SPI_BASE + NSPIS - 1), st.integers(0, 255)),
    st.tuples(st.just("config"), st.just(2), word),
    st.tuples(st.just("route"), st.integers(0, NSPIS - 1), st.integers(0, 1)),
    st.tuples(st.just("ctlr"), st.sampled_from([0, 2])),
    st.tuples(st.just("iar"), cpu),
    st.tuples(st.just("eoi"), cpu, intid),
    st.tuples(st.just("dir"), cpu, intid),
    st.tuples(st.just("sgi"), cpu, st.integers(0, 15), st.integers(0, 3)),
    st.tuples(st.just("icc"), cpu, st.sampled_from([ICC_PMR, ICC_CTLR, ICC_IGRPEN1]), word),
)


def _apply(gic: Gicv3, op: tuple) -> None:
    match op:
        case ("assert", n, c, edge_only):
            gic.assert_irq(n, c, edge_only)
        case ("clear", n, c):
            gic.clear_irq(n, c)
        case ("dist", base, index, value):
            gic.dist_access(base + 4 * index, 4, value)
        case ("redist", c, base, value):
            gic.redist_access(c, GICR_SGI_BASE + base, 4, value)
        case ("priority", n, value):
            if n < SPI_BASE:
                gic.redist_access(0, GICR_SGI_BASE + GICD_IPRIORITYR + n, 1, value)
            else:
                gic.dist_access(GICD_IPRIORITYR + n, 1, value)
        case ("config", index, value):
            gic.dist_access(GICD_ICFGR + 4 * index, 4, value)
        case ("route", n, c):
            gic.dist_access(GICD_IROUTER + 8 * (SPI_BASE + n), 8, gic.cpus[c].affinity)
        case ("ctlr", value):
            gic.dist_access(GICD_CTLR, 4, value)
        case ("iar", c):
            gic.sysreg_read(c, ICC_IAR1)
        case ("eoi", c, n):
            gic.sysreg_write(c, ICC_EOIR1, n)
        case ("dir", c, n):
            gic.sysreg_write(c, ICC_DIR, n)
        case ("sgi", c, n, targets):
            gic.sysreg_write(c, ICC_SGI1R, n << 24 | targets)
        case ("icc", c, reg, value):
            gic.sysreg_write(c, reg, value)


# From open CPU interfaces: an SPI made deliverable by GICD writes alone.
ENABLED_THEN_ON = [
    ("ctlr", 0),
    ("assert", SPI_BASE, 0, True),
    ("dist", GICD_ISENABLER, 1, 1),
    ("ctlr", 2),
]

ASSERT_THEN_CLEAR = [("assert", SPI_BASE, 0, True), ("clear", SPI_BASE, 0)]


@settings(max_examples=300, deadline=None)
@given(st.lists(operations, max_size=30))
@example(ENABLED_THEN_ON)
@example([("ctlr", 2), ("dist", GICD_ISENABLER, 1, 1), *ASSERT_THEN_CLEAR])
@example([*ENABLED_THEN_ON, ("iar", 0), ("clear", SPI_BASE, 0), ("eoi", 0, SPI_BASE)])
def test_the_kept_highest_pending_interrupt_is_a_fresh_scans(ops):
    gic = Gicv3(NSPIS)
    for affinity in range(CPUS):
        gic.add_cpu(affinity)
        gic.sysreg_write(affinity, ICC_PMR, 0xFF)
        gic.sysreg_write(affinity, ICC_IGRPEN1, 1)
    for op in ops:
        _apply(gic, op)
        for c in range(CPUS):
            assert gic.highest_pending(c) == gic._scan(c), op
