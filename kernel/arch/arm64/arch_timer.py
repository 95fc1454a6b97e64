"""The host's view of the generic timer (drivers/clocksource/arm_arch_timer.c's counter read).

The SoC has one system counter (hyp.hw.timer's virtual clock, which only
EL2 advances); the host reads it as CNTVCT_EL0 with a virtual offset of
0, the value ktime_get_snapshot() records as ``cycles``.
"""

from __future__ import annotations


def arch_timer_read_counter(firmware) -> int:
    return firmware.el2.clock.now
