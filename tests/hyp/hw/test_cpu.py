"""Cores: a core given back to the SoC's pool and taken again is a new core to the guest."""

import pytest
from unicorn import UcError
from unicorn import arm64_const as arm64

from hyp.arch.pgtable import ACCESS_R, ACCESS_W, ACCESS_X, VTCR, PagePool, S2Attrs, Stage2
from hyp.hw.cpu import SPSR_EL1, VTCR_EL2, VTTBR_EL2, Core, CorePool, Excp, SysReg, Trap
from hyp.hw.memory import Dram
from tests.aarch64 import assemble

DRAM_BASE, CODE_IPA, CODE_PA = 0x4000_0000, 0x8000_0000, 0x4010_0000
RWX = S2Attrs(ACCESS_R | ACCESS_W | ACCESS_X)
VTTBR_VMID = 5

# What a guest can leave behind: every register bank, the flags, interrupt
# masks unmasked, and the EL1 system registers an OS sets up.
DIRTY = """
    mov x0, #0x1234
    mov x1, #0x5678
    mov x17, #1
    mov x29, #29
    mov x30, #30
    fmov d3, x0
    dup v31.2d, x1
    mov x2, #0x3000000
    msr fpcr, x2
    mov x2, #0x9f
    msr fpsr, x2
    msr sp_el0, x0
    msr tpidr_el0, x0
    msr tpidrro_el0, x1
    msr tpidr_el1, x1
    msr vbar_el1, x0
    msr mair_el1, x1
    msr tcr_el1, x0
    msr ttbr0_el1, x0
    msr ttbr1_el1, x1
    msr contextidr_el1, x1
    msr elr_el1, x0
    msr far_el1, x1
    msr cpacr_el1, x2
    msr cntkctl_el1, x2
    mov sp, x1
    cmp x0, x0
    msr daifclr, #0xf
    hvc #0
"""

# Named registers the binding reads without an argument: everything a guest
# has (x, v, sp, pstate, fp status) and what unicorn exposes of EL1..EL3.
NAMED = sorted(
    value
    for name, value in vars(arm64).items()
    if name.startswith("UC_ARM64_REG_")
    and name not in ("UC_ARM64_REG_INVALID", "UC_ARM64_REG_ENDING", "UC_ARM64_REG_CP_REG")
)
# System registers read by encoding (op0, op1, CRn, CRm, op2), EL2's included.
SYSREGS = [
    SysReg(*enc)
    for enc in (
        (3, 0, 1, 0, 0),  # SCTLR_EL1
        (3, 0, 2, 0, 2),  # TCR_EL1
        (3, 0, 10, 2, 0),  # MAIR_EL1
        (3, 0, 13, 0, 1),  # CONTEXTIDR_EL1
        (3, 0, 14, 1, 0),  # CNTKCTL_EL1
        (3, 0, 1, 0, 2),  # CPACR_EL1
        (3, 0, 5, 2, 0),  # ESR_EL1
        (3, 0, 6, 0, 0),  # FAR_EL1
        (3, 0, 7, 4, 0),  # PAR_EL1
        (3, 4, 1, 1, 0),  # HCR_EL2
        (3, 4, 2, 1, 0),  # VTTBR_EL2
        (3, 4, 2, 1, 2),  # VTCR_EL2
        (3, 4, 0, 0, 5),  # VMPIDR_EL2
        (3, 4, 6, 0, 4),  # HPFAR_EL2
        (3, 6, 1, 1, 0),  # SCR_EL3
    )
] + [SPSR_EL1]


class Recorder(Trap):
    """Stops the core at every exception and keeps (exception, x0)."""

    def __init__(self):
        self.seen = []

    def exception(self, core, excp):
        self.seen.append((excp, core.x(0)))
        core.stop()


def dump(core: Core) -> dict:
    state = {}
    for reg in NAMED:
        try:
            state[reg] = core.uc.reg_read(reg)
        except (UcError, ValueError, TypeError):
            state[reg] = "unreadable"
    for reg in SYSREGS:
        state[reg] = core.sysreg(reg)
    return state


@pytest.fixture
def soc():
    dram = Dram(DRAM_BASE, 64 << 20)
    stage2 = Stage2(PagePool(dram, DRAM_BASE + (48 << 20), 16 << 20))
    stage2.map(CODE_IPA, CODE_PA, 0x1000, RWX)
    pool = CorePool(dram)
    yield dram, stage2, pool
    pool.close()
    dram.close()


def run(core: Core, stage2: Stage2, dram: Dram, source: str) -> None:
    """Run ``source`` at CODE_IPA; the stage 2 is set by register, with no flush
    of the core's own (what a reset leaves cached stays)."""
    dram.write(CODE_PA, assemble(source))
    core.set_sysreg(VTCR_EL2, VTCR)
    core.set_sysreg(VTTBR_EL2, stage2.vttbr(VTTBR_VMID))
    core.pc = CODE_IPA
    core.run()


def test_a_reused_core_reads_as_a_new_one(soc):
    dram, stage2, pool = soc
    used = pool.take(Recorder())
    run(used, stage2, dram, DIRTY)
    assert used.trap.seen == [(Excp.HVC, 0x1234)]
    used.set_virq_line(True)
    before = dump(used)
    pool.give(used)
    again = pool.take(Recorder())
    assert again is used
    new = Core(dram, Recorder())
    try:
        assert dump(again) == dump(new)
        assert dump(again) != before  # the dump sees what the guest left
    finally:
        new.close()


def test_a_reused_core_runs_new_code_and_no_old_interrupt(soc):
    """The last guest's translated code at the same address and its raised
    virtual IRQ line are gone: the next guest, IRQs unmasked, runs its own code
    and takes no interrupt (one would go to VBAR_EL1 0, which nothing maps)."""
    dram, stage2, pool = soc
    old = pool.take(Recorder())
    run(old, stage2, dram, "mov x0, #1\nhvc #0")
    old.set_virq_line(True)
    pool.give(old)
    core = pool.take(Recorder())
    run(core, stage2, dram, "msr daifclr, #2\nisb\nnop\nmov x0, #2\nhvc #0")
    assert core.trap.seen == [(Excp.HVC, 2)]


def test_the_pool_keeps_at_most_its_limit(soc):
    dram, _, _ = soc
    pool = CorePool(dram, limit=1)
    first, second = pool.take(Recorder()), pool.take(Recorder())
    pool.give(first)
    pool.give(second)
    assert second.uc is None  # closed: the pool was full
    assert pool.take(Recorder()) is first
    assert pool.take(Recorder()) is not second
    pool.close()
