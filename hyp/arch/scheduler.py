"""The vCPU scheduler (Gunyah hyp/core/scheduler_fprr): vCPUs take turns on the SoC.

vCPUs are proxy-scheduled: each runs in the host thread that called
vcpu_run for it. At most one executes guest code at any instant; the turn
passes, at every guest event, to the next runnable vCPU in activation
order, so a set of vCPUs driven by responsive threads always interleaves
the same way. A vCPU whose thread does not come back for its turn within
``PATIENCE`` seconds is passed over, so a stalled VMM cannot stop the
others. A watchdog preempts a vCPU that runs longer than ``QUANTUM``
seconds of host time without an event while another vCPU waits or a timer
is armed (the only place host time matters: guests that compute without
trapping still share the SoC and see their timers fire); the core takes
the request at its next slice boundary. Each waiting vCPU sleeps
on its own condition, and only the one whose turn it is gets woken.

A vCPU here is any object with ``runnable`` (may it take a turn),
``preempt()`` (end its turn at the next slice boundary, from another
thread) and ``timer.deadline`` (its virtual timer's, or None): the
arch :class:`~hyp.arch.vcpu.ArchVcpu` has them.
"""

from __future__ import annotations

import threading
import time

PATIENCE = 0.25
QUANTUM = 0.01


class Scheduler:
    def __init__(self):
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._turns: dict = {}  # vcpu -> its own condition on the same lock
        self.order: list = []
        self.holder = None
        self._last = -1
        self._waiting: set = set()
        self._since = time.monotonic()
        self._designated = None
        self._started = 0.0
        self._watchdog: threading.Thread | None = None
        self._closed = False

    def add(self, vcpu) -> None:
        with self._cond:
            self.order.append(vcpu)

    def remove(self, vcpu) -> None:
        with self._cond:
            if vcpu in self.order:
                index = self.order.index(vcpu)
                self.order.remove(vcpu)
                if index <= self._last:
                    self._last -= 1
            self._turns.pop(vcpu, None)
            self._wake_next()

    def _designate(self):
        n = len(self.order)
        for step in range(1, n + 1):
            vcpu = self.order[(self._last + step) % n]
            if vcpu.runnable:
                return vcpu
        return None

    def _may_enter(self, vcpu) -> bool:
        if self.holder is not None:
            return False
        designated = self._designate()
        if designated is not self._designated:
            self._designated, self._since = designated, time.monotonic()
        if designated is vcpu or designated is None:
            return True
        stalled = designated not in self._waiting
        return stalled and time.monotonic() - self._since > PATIENCE

    def enter(self, vcpu) -> None:
        """Wait for ``vcpu``'s turn and take the SoC."""
        with self._cond:
            self._waiting.add(vcpu)
            turn = self._turns.setdefault(vcpu, threading.Condition(self._lock))
            while not self._may_enter(vcpu):
                turn.wait(PATIENCE / 2)
            self._waiting.discard(vcpu)
            self.holder, self._started = vcpu, time.monotonic()
            self._ensure_watchdog()

    def leave(self, vcpu) -> None:
        """Give the SoC up after an event; the next runnable vCPU goes."""
        with self._cond:
            if self.holder is vcpu:
                self.holder = None
                if vcpu in self.order:
                    self._last = self.order.index(vcpu)
            self._wake_next()

    def poke(self) -> None:
        """Runnability changed somewhere: the vCPU whose turn it is looks again."""
        with self._cond:
            self._wake_next()

    def _wake_next(self) -> None:
        """Wake the waiter whose turn it is, not every waiter (hundreds of vCPU
        threads would all wake to find it is not theirs); with no runnable
        vCPU any waiter may go, so all look. A stalled turn is passed over by
        the others' own PATIENCE timeouts."""
        designated = self._designate()
        if designated is None or designated not in self._waiting:
            self._cond.notify_all()
            for turn in self._turns.values():
                turn.notify_all()
        else:
            self._turns[designated].notify()

    def others_runnable(self, vcpu) -> bool:
        with self._cond:
            return any(v is not vcpu and v.runnable for v in self.order)

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watch, name="gunyah-watchdog", daemon=True
            )
            self._watchdog.start()

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                self._cond.wait(QUANTUM)
                holder = self.holder
                overdue = holder is not None and time.monotonic() - self._started > QUANTUM
                if overdue and self._preemption_matters():
                    holder.preempt()
                    self._started = time.monotonic()

    def _preemption_matters(self) -> bool:
        """Someone waits for the SoC, or a timer waits for time to pass."""
        return bool(self._waiting) or any(v.timer.deadline is not None for v in self.order)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._watchdog is not None:
            self._watchdog.join()
