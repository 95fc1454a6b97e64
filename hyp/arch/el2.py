"""What every EL2 hypervisor of the SoC owns (Gunyah hyp/core/boot, Linux
arch/arm64/kvm/arm.c): DRAM, its private page pool, its idle cores, the SoC's
counter, the vCPU scheduler, the VMIDs in use, the trace, and the host's IPIs.

A hypervisor subclasses :class:`El2` and supplies the SMCCC hooks
:mod:`hyp.arch.smccc` calls for a guest's HVC and SMC:
``immediate_call(vcpu, is_smc, imm, regs)`` and
``vendor_call(vcpu, fid, regs)``, each returning X0.. or None (not its
own: SMCCC_UNKNOWN). Everything here is guarded by :attr:`El2.lock`,
which trap handlers and hypercalls hold; a vCPU runs guest code without it.

A stage-2 change is complete only when no core still runs guest code with
the old translation: when a thread leaves EL2 (its outermost hold of the
lock ends) it waits for the runs of the cores its changes flushed, as a
DSB after a broadcast TLBI waits for the other CPUs. So once a hypercall
that unmaps a page returns, no guest access to that page is in flight.
Cores of different run groups execute at the same time
(:mod:`hyp.arch.scheduler`), so a guest's own trap may flush a core that is
running too: that trap's thread cannot wait inside its core's run (two
cores flushing each other would each wait for the other's run to end), so
its run ends instead and the thread waits before its guest executes again
(:meth:`El2Lock.wait_flushed`).
"""

from __future__ import annotations

import threading
from collections import deque

from hyp.arch.pgtable import PagePool
from hyp.arch.scheduler import Scheduler
from hyp.hw.board import CNTFRQ, DRAM_BASE, HYP_POOL_SIZE
from hyp.hw.cpu import CorePool, running_core
from hyp.hw.memory import Dram
from hyp.hw.timer import VirtualClock

FLUSH_TIMEOUT = 30.0  # seconds; one slice of a core runs in milliseconds
TRACE_RING = 4096  # trace records kept for looking back; sinks see every one


class _Holding(threading.local):
    """A thread's hold of the EL2 lock: its depth and the cores it flushed."""

    depth = 0

    def __init__(self):
        self.flushed = []


class El2Lock:
    """The EL2 lock (re-entrant). Leaving it for good, a thread first waits for
    the cores whose translations it flushed (:meth:`flushed`) to end the runs
    they were in; a thread inside a core's run (a guest's trap) ends that run
    and waits after it (:meth:`wait_flushed`), where waiting cannot deadlock
    two cores."""

    def __init__(self):
        self._lock = threading.RLock()
        self._local = _Holding()

    def __enter__(self):
        self._lock.acquire()
        self._local.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        mine = self._local
        mine.depth -= 1
        waits = mine.depth == 0 and mine.flushed and running_core() is None
        self._lock.release()
        if waits:
            self.wait_flushed()

    def flushed(self, core) -> None:
        """The caller (holding the lock) changed translations ``core`` may be using.
        Inside a core's run, that run ends before its next instruction."""
        token = core.run_token()
        if token is None:
            return
        self._local.flushed.append((core, token))
        inside = running_core()
        if inside is not None:
            inside.stop()

    def wait_flushed(self) -> None:
        """Wait, not holding the lock and outside any core's run, for the runs of
        the cores the calling thread flushed to end."""
        mine = self._local
        if not mine.flushed:
            return
        waits, mine.flushed = mine.flushed, []
        for core, token in waits:
            if not core.wait_run_end(token, FLUSH_TIMEOUT):
                raise RuntimeError("a core never ended its run after a stage-2 flush")


class El2:
    """The EL2 of a SoC with ``dram_size`` bytes of DRAM; the top
    ``HYP_POOL_SIZE`` bytes are its page pool (stage-2 tables)."""

    def __init__(self, dram_size: int, trace_limit: int):
        self.lock = El2Lock()
        self.dram = Dram(DRAM_BASE, dram_size)
        self.cores = CorePool(self.dram)
        self.pool = PagePool(self.dram, self.dram.end - HYP_POOL_SIZE, HYP_POOL_SIZE)
        self.clock = VirtualClock()
        self.cntfrq = CNTFRQ
        self.scheduler = Scheduler(self.clock)
        self.vmids: set[int] = set()  # the VMIDs of VTTBR_EL2 in use
        self.events = TraceRing(trace_limit)
        self._sinks: dict[str, list] = {}  # event -> the sinks that asked for it
        self.vm_listeners: list = []
        self.pending_ipis: set[int] = set()  # host threads with an IPI not yet taken

    # guest calls (hooks)
    def immediate_call(self, vcpu, is_smc: bool, imm: int, regs: list[int]) -> list[int] | None:
        """An HVC/SMC #``imm`` (not 0) of the hypervisor's own; None if not one."""
        return None

    def vendor_call(self, vcpu, fid: int, regs: list[int]) -> list[int] | None:
        """An SMCCC call ``fid`` of the hypervisor's own; None if not one."""
        return None

    # the host
    def ipi(self, thread: int) -> None:
        """An interrupt for the physical CPU host thread ``thread`` runs on: a
        vCPU run in progress there returns to the host (READY); if none is,
        the interrupt stays pending and the thread's next run returns at once."""
        with self.lock:
            for vcpu in self.scheduler.order:
                if vcpu.proxy_thread == thread:
                    vcpu.kick()
                    return
            self.pending_ipis.add(thread)

    # observation
    def trace(self, event: str, **fields) -> None:
        """Record ``event`` in the ring and give it to the sinks that asked for it
        (only those pay for shaping it)."""
        self.events.append(event, fields)
        sinks = self._sinks.get(event)
        if sinks:
            record = (event, tuple(sorted(fields.items())))
            for sink in sinks:
                sink(record)

    def _add_sink(self, events: tuple[str, ...], sink) -> None:
        for event in events:
            self._sinks.setdefault(event, []).append(sink)

    def trace_lines(self, events: tuple[str, ...], sink) -> None:
        """Give ``sink`` an strace-style line for every trace record of ``events``."""

        def line(record) -> None:
            event, fields = record
            sink(f"{event}(" + ", ".join(f"{k}={_shown(v)}" for k, v in fields) + ")")

        self._add_sink(events, line)

    def trace_fields(self, events: tuple[str, ...], sink) -> None:
        """Give ``sink`` the fields (a dict, with ``event``: its name) of every
        trace record of ``events``, in the thread that traced it, under the
        EL2 lock: it must be quick and call nothing of the hypervisor's."""
        self._add_sink(events, lambda record: sink(dict(record[1], event=record[0])))

    def vm_event(self, vcpu, kind: str, a: int, b: int) -> None:
        """A VM-wide event of ``vcpu``'s VM (PSCI system_off, system_reset)."""
        self.trace("vm_event", vcpu=vcpu.trace_name, kind=kind)
        for listener in self.vm_listeners:
            listener(vcpu, kind, a, b)

    def close(self) -> None:
        self.cores.close()
        self.dram.close()


class TraceRing:
    """The last ``limit`` trace records, oldest first, each read as ``(event,
    ((field, value), ...))`` with the fields sorted by name. Kept as they
    come and shaped only when read, so a trace nobody reads costs an append;
    a live view (iterating it sees what was traced up to then)."""

    def __init__(self, limit: int):
        self._records: deque = deque(maxlen=limit)

    def append(self, event: str, fields: dict) -> None:
        self._records.append((event, fields))

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self):
        for event, fields in list(self._records):  # a copy: other threads trace on
            yield event, tuple(sorted(fields.items()))

    def __contains__(self, record) -> bool:
        return any(mine == record for mine in self)


def _shown(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    return hex(value) if isinstance(value, int) else str(value)
