"""The vCPU scheduler (Gunyah hyp/core/scheduler_fprr): run groups take turns, in parallel.

A run group is the set of vCPUs that must never execute guest code at the
same instant: one VM's, or those of VMs whose address spaces share memory
(unicorn's atomics are not atomic across cores running in parallel
threads). The hypervisor gives each VM a group (:meth:`Scheduler.group`)
and joins the groups of VMs that come to share memory
(:meth:`Scheduler.join`); a join is never undone. Different groups run at
the same time, each on the host core of the thread that runs its vCPU
(unicorn releases the GIL while guest code runs).

vCPUs are proxy-scheduled: each runs in the host thread that called
vcpu_run for it. Within a group at most one executes guest code at any
instant; the turn passes, at every guest event that ends a run (a trap
the vCPU's own trap handler finishes in place, an ICC_* or timer register
other than an SGI, keeps it), to the group's next
runnable vCPU in activation order, so a set of vCPUs driven by responsive
threads always interleaves the same way. A vCPU whose thread does not come
back for its turn within ``PATIENCE`` seconds is passed over, so a stalled
VMM cannot stop the others. A turn that lasts ``QUANTUM`` slices of guest
instructions (:data:`hyp.hw.cpu.SLICE` each) without an event ends there
when another vCPU of its group is runnable or a timer of its group is
armed (:meth:`Scheduler.slice_ended`), so guests that compute without
trapping still share their group and see their timers fire, and where a
guest is preempted depends on what it executes, never on host time. Each
waiting vCPU sleeps on its own condition, and only the one whose turn it
is gets woken.

Each group has its own virtual clock (:class:`GroupClock`): its time
advances only by its own vCPUs' events, preemptions and idle skips, so a
VM's times do not depend on how far VMs running beside it have got, and a
group whose vCPUs are all idle skips to its own next deadline while
others compute. The SoC's counter (what the host reads) is never behind
any group's clock; a new group starts from it.

A vCPU here is any object with ``runnable`` (may it take a turn),
``preempt()`` (end its turn: at once from its core's own thread, at the
next slice boundary from another) and ``timer`` (its virtual timer:
``deadline``, its armed one or None, and ``clock``, which
:meth:`Scheduler.add` sets to its group's): the arch
:class:`~hyp.arch.vcpu.ArchVcpu` has them. Its thread calls
:meth:`Scheduler.slice_ended` after each full slice of its turn.
"""

from __future__ import annotations

import threading
import time

from hyp.hw.timer import VirtualClock

PATIENCE = 0.25
QUANTUM = 8  # full slices a turn may run while others need the group (~1M instructions)


class GroupClock(VirtualClock):
    """A run group's virtual time, started at the SoC counter's, which it
    pushes forward as it advances."""

    def __init__(self, soc: VirtualClock):
        super().__init__()
        self.soc = soc
        self._now = soc.now

    def advance(self, ticks: int) -> int:
        now = super().advance(ticks)
        self.soc.advance_to(now)
        return now

    def advance_to(self, when: int) -> int:
        now = super().advance_to(when)
        self.soc.advance_to(now)
        return now


class RunGroup:
    """The vCPUs that take turns with each other; all fields are guarded by
    the scheduler's lock. A group joined into another forwards to it
    (:meth:`root`)."""

    def __init__(self, clock: GroupClock):
        self.clock = clock
        self.order: list = []  # activation order
        self.holder = None  # the vCPU whose turn it is
        self.draining: set = set()  # holders of groups joined into this one, still in their turn
        self.waiting: set = set()
        self.into: RunGroup | None = None
        self._last = -1
        self._designated = None
        self._since = time.monotonic()
        self.slices = 0  # full slices the holder has run in its turn

    def root(self) -> RunGroup:
        group = self
        while group.into is not None:
            group = group.into
        return group

    def _designate(self):
        n = len(self.order)
        for step in range(1, n + 1):
            vcpu = self.order[(self._last + step) % n]
            if vcpu.runnable:
                return vcpu
        return None

    def _may_enter(self, vcpu) -> bool:
        if self.holder is not None or self.draining:
            return False
        designated = self._designate()
        if designated is not self._designated:
            self._designated, self._since = designated, time.monotonic()
        if designated is vcpu or designated is None:
            return True
        stalled = designated not in self.waiting
        return stalled and time.monotonic() - self._since > PATIENCE

    def _preemption_matters(self, vcpu) -> bool:
        """Another vCPU than ``vcpu`` may run, or a timer waits for time to
        pass. Runnable, not waiting in :meth:`Scheduler.enter`: whether its
        thread has got there yet is host timing."""
        return any(v is not vcpu and v.runnable for v in self.order) or any(
            v.timer.deadline is not None for v in self.order
        )


class Scheduler:
    """The SoC's scheduler: its run groups and the SoC counter ``clock`` new
    groups start from."""

    def __init__(self, clock: VirtualClock):
        self.clock = clock
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._turns: dict = {}  # vcpu -> its own condition on the same lock
        self._member: dict = {}  # vcpu -> its group, in activation order
        self._holding: dict = {}  # vcpu -> the group whose turn it took

    @property
    def order(self) -> list:
        """Every vCPU of the SoC, in activation order."""
        with self._cond:
            return list(self._member)

    # groups
    def group(self) -> RunGroup:
        """A new, empty run group (a VM's)."""
        with self._cond:
            return RunGroup(GroupClock(self.clock))

    def join(self, a: RunGroup, b: RunGroup) -> None:
        """The vCPUs of ``a`` and ``b`` share memory from now on: one group,
        whose clock is the later of the two. A vCPU of ``b`` in its turn is
        asked to end it, and no vCPU of the joined group starts one before it
        has (the caller's stage-2 flush waits for its core's run to end)."""
        with self._cond:
            a, b = a.root(), b.root()
            if a is b:
                return
            a.clock.advance_to(b.clock.now)
            last = a.order[a._last] if 0 <= a._last < len(a.order) else None
            for vcpu in b.order:
                vcpu.timer.clock = a.clock
                self._member[vcpu] = a
            a.order = [v for v in self._member if self._member[v] is a]  # activation order
            a._last = a.order.index(last) if last is not None else -1
            a.waiting |= b.waiting
            a.draining |= b.draining
            if b.holder is not None:
                a.draining.add(b.holder)
                b.holder.preempt()
            b.into, b.order, b.waiting, b.draining, b.holder = a, [], set(), set(), None
            self._wake_next(a)

    def group_of(self, vcpu) -> RunGroup | None:
        with self._cond:
            return self._member.get(vcpu)

    def group_vcpus(self, vcpu) -> list:
        """The vCPUs of ``vcpu``'s group, in activation order."""
        with self._cond:
            group = self._member.get(vcpu)
            return list(group.order) if group is not None else [vcpu]

    # members
    def add(self, vcpu, group: RunGroup) -> None:
        """``vcpu`` joins ``group`` (its VM's) and its timer runs on the group's clock."""
        with self._cond:
            group = group.root()
            group.order.append(vcpu)
            self._member[vcpu] = group
            vcpu.timer.clock = group.clock

    def remove(self, vcpu) -> None:
        with self._cond:
            group = self._member.pop(vcpu, None)
            self._turns.pop(vcpu, None)
            if group is None:
                return
            index = group.order.index(vcpu)
            group.order.remove(vcpu)
            if index <= group._last:
                group._last -= 1
            self._wake_next(group)

    # turns
    def enter(self, vcpu) -> None:
        """Wait for ``vcpu``'s turn in its group and take it."""
        with self._cond:
            group = self._member[vcpu]
            group.waiting.add(vcpu)
            turn = self._turns.get(vcpu)
            if turn is None:
                turn = self._turns[vcpu] = threading.Condition(self._lock)
            while not group._may_enter(vcpu):
                turn.wait(PATIENCE / 2)
                group = self._member.get(vcpu, group)  # a join may have moved it
            group.waiting.discard(vcpu)
            group.holder, group.slices = vcpu, 0
            self._holding[vcpu] = group

    def leave(self, vcpu) -> None:
        """End ``vcpu``'s turn after an event; its group's next runnable vCPU goes."""
        with self._cond:
            group = self._holding.pop(vcpu).root()
            if group.holder is vcpu:
                group.holder = None
                if vcpu in group.order:
                    group._last = group.order.index(vcpu)
            group.draining.discard(vcpu)
            self._wake_next(group)

    def holds(self, vcpu) -> bool:
        """Is it ``vcpu``'s turn (it may be executing guest code)?"""
        return vcpu in self._holding

    def poke(self, vcpu) -> None:
        """Runnability changed in ``vcpu``'s group: the vCPU whose turn it is looks again."""
        with self._cond:
            group = self._member.get(vcpu)
            if group is not None:
                self._wake_next(group)

    def _wake_next(self, group: RunGroup) -> None:
        """Wake the waiter whose turn it is, not every waiter (hundreds of vCPU
        threads would all wake to find it is not theirs); with no runnable
        vCPU any waiter of the group may go, so all look. A stalled turn is
        passed over by the others' own PATIENCE timeouts."""
        designated = group._designate()
        if designated is None or designated not in group.waiting:
            for vcpu in group.waiting:
                if vcpu in self._turns:
                    self._turns[vcpu].notify()
        else:
            self._turns[designated].notify()

    def others_runnable(self, vcpu) -> bool:
        """May another vCPU of ``vcpu``'s group take a turn?"""
        with self._cond:
            group = self._member.get(vcpu)
            return group is not None and any(v is not vcpu and v.runnable for v in group.order)

    def slice_ended(self, vcpu) -> None:
        """``vcpu``'s core ran a full slice in its turn (its own thread, inside
        the run): after ``QUANTUM`` of them the turn ends if its group needs
        it (:meth:`RunGroup._preemption_matters`)."""
        with self._cond:
            group = self._holding[vcpu].root()
            group.slices += 1
            if group.slices >= QUANTUM and group._preemption_matters(vcpu):
                group.slices = 0
                vcpu.preempt()
