"""The EL1 virtual timer of a vCPU (Gunyah hyp/vm/arm_vm_timer, Linux
arch/arm64/kvm/arch_timer.c).

Each vCPU has a :class:`~hyp.hw.timer.VirtualTimer` on its run group's
virtual clock (:mod:`hyp.arch.scheduler`). Its CNTV_* registers,
CNTVCT/CNTPCT and CNTFRQ are trapped and emulated here; a counter read
advances the clock by ``READ_TICKS`` so a guest polling the counter sees
time pass. The timer's line is PPI 27 of the vCPU's vGIC, as a level:
:func:`update_irq` asserts or clears it and is called before each entry
and when idle time is skipped.

Needs of the vCPU: ``timer`` (with its ``clock``), ``vgic`` (with
``gic``), ``gic_cpu`` and ``hyp`` (with ``cntfrq``).
"""

from __future__ import annotations

from hyp.hw.board import PPI_VTIMER
from hyp.hw.cpu import Core, SysReg
from hyp.hw.timer import READ_TICKS

CNTFRQ_EL0 = SysReg(3, 3, 14, 0, 0)
CNTPCT_EL0 = SysReg(3, 3, 14, 0, 1)
CNTVCT_EL0 = SysReg(3, 3, 14, 0, 2)
CNTV_TVAL_EL0 = SysReg(3, 3, 14, 3, 0)
CNTV_CTL_EL0 = SysReg(3, 3, 14, 3, 1)
CNTV_CVAL_EL0 = SysReg(3, 3, 14, 3, 2)


def sysreg(vcpu, core: Core, reg: SysReg, write: bool, rt: int) -> bool:
    """Emulate a timer register access by Xrt; False if ``reg`` is not one.

    A write changes when the line fires: the caller stops the core so that
    the line is re-evaluated before the next instruction.
    """
    timer, clock = vcpu.timer, vcpu.timer.clock
    if not write:
        reads = {
            CNTVCT_EL0: lambda: clock.advance(READ_TICKS),
            CNTPCT_EL0: lambda: clock.advance(READ_TICKS),
            CNTFRQ_EL0: lambda: vcpu.hyp.cntfrq,
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
    return True


def update_irq(vcpu) -> None:
    """Drive PPI 27 of ``vcpu`` from its timer's line."""
    gic = vcpu.vgic.gic
    if vcpu.timer.firing:
        gic.assert_irq(PPI_VTIMER, vcpu.gic_cpu, edge_only=False)
    else:
        gic.clear_irq(PPI_VTIMER, vcpu.gic_cpu)
