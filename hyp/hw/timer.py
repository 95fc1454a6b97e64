"""The generic timer: one virtual counter for the SoC and each core's EL1 virtual timer.

Time is virtual and deterministic. The counter advances only when the
hypervisor says so: by a fixed amount per guest event and per counter
read, by a quantum when a core is preempted, and straight to the next
deadline when every vCPU is idle. The same inputs give the same times.
"""

from __future__ import annotations

import threading

from hyp.hw.board import CNTFRQ

EVENT_TICKS = 20  # about 1 us at CNTFRQ
READ_TICKS = 20
QUANTUM_TICKS = CNTFRQ // 100  # 10 ms

CTL_ENABLE, CTL_IMASK, CTL_ISTATUS = 1, 2, 4


class VirtualClock:
    def __init__(self):
        self._now = 0
        self._lock = threading.Lock()

    @property
    def now(self) -> int:
        return self._now

    def advance(self, ticks: int) -> int:
        with self._lock:
            self._now += ticks
            return self._now

    def advance_to(self, when: int) -> int:
        with self._lock:
            self._now = max(self._now, when)
            return self._now


class VirtualTimer:
    """CNTV_CTL_EL0 and CNTV_CVAL_EL0 of one core; fires a level PPI."""

    def __init__(self, clock: VirtualClock):
        self.clock = clock
        self.ctl = 0
        self.cval = 0

    @property
    def istatus(self) -> bool:
        return bool(self.ctl & CTL_ENABLE) and self.clock.now >= self.cval

    @property
    def firing(self) -> bool:
        """The timer's interrupt line: condition met and not masked."""
        return self.istatus and not self.ctl & CTL_IMASK

    @property
    def deadline(self) -> int | None:
        """When an armed, unmasked timer will fire."""
        armed = self.ctl & CTL_ENABLE and not self.ctl & CTL_IMASK
        return self.cval if armed else None

    def read_ctl(self) -> int:
        return (self.ctl & (CTL_ENABLE | CTL_IMASK)) | (CTL_ISTATUS if self.istatus else 0)

    def write_ctl(self, value: int) -> None:
        self.ctl = value & (CTL_ENABLE | CTL_IMASK)

    def read_tval(self) -> int:
        return (self.cval - self.clock.now) & 0xFFFF_FFFF

    def write_tval(self, value: int) -> None:
        signed = value - (1 << 32) if value & 1 << 31 else value
        self.cval = (self.clock.now + signed) & (2**64 - 1)
