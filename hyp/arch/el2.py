"""What every EL2 hypervisor of the SoC owns (Gunyah hyp/core/boot, Linux
arch/arm64/kvm/arm.c): DRAM, its private page pool, the virtual clock, the
vCPU scheduler, the VMIDs in use, the trace, and the host's IPIs.

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
"""

from __future__ import annotations

import threading
from collections import deque

from hyp.arch.pgtable import PagePool
from hyp.arch.scheduler import Scheduler
from hyp.hw.board import CNTFRQ, DRAM_BASE, HYP_POOL_SIZE
from hyp.hw.cpu import running_core
from hyp.hw.memory import Dram
from hyp.hw.timer import VirtualClock

FLUSH_TIMEOUT = 30.0  # seconds; one slice of a core runs in milliseconds


class _Holding(threading.local):
    """A thread's hold of the EL2 lock: its depth and the cores it flushed."""

    depth = 0

    def __init__(self):
        self.flushed = []


class El2Lock:
    """The EL2 lock (re-entrant). Leaving it for good, a thread first waits for
    the cores whose translations it flushed (:meth:`flushed`) to end the runs
    they were in, unless the thread is itself inside a core's run (a guest's
    trap), where waiting could deadlock two cores."""

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
        waits = ()
        if mine.depth == 0 and mine.flushed:
            waits, mine.flushed = mine.flushed, []
        self._lock.release()
        for core, token in waits:
            if not core.wait_run_end(token, FLUSH_TIMEOUT):
                raise RuntimeError("a core never ended its run after a stage-2 flush")

    def flushed(self, core) -> None:
        """The caller (holding the lock) changed translations ``core`` may be using."""
        token = core.run_token()
        if token is not None and running_core() is None:
            self._local.flushed.append((core, token))


class El2:
    """The EL2 of a SoC with ``dram_size`` bytes of DRAM; the top
    ``HYP_POOL_SIZE`` bytes are its page pool (stage-2 tables)."""

    def __init__(self, dram_size: int, trace_limit: int):
        self.lock = El2Lock()
        self.dram = Dram(DRAM_BASE, dram_size)
        self.pool = PagePool(self.dram, self.dram.end - HYP_POOL_SIZE, HYP_POOL_SIZE)
        self.clock = VirtualClock()
        self.cntfrq = CNTFRQ
        self.scheduler = Scheduler()
        self.vmids: set[int] = set()  # the VMIDs of VTTBR_EL2 in use
        self.events: deque = deque(maxlen=trace_limit)
        self.trace_sinks: list = []
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
        record = (event, tuple(sorted(fields.items())))
        self.events.append(record)
        for sink in self.trace_sinks:
            sink(record)

    def trace_lines(self, events: tuple[str, ...], sink) -> None:
        """Give ``sink`` an strace-style line for every trace record of ``events``."""

        def line(record) -> None:
            event, fields = record
            if event in events:
                sink(f"{event}(" + ", ".join(f"{k}={_shown(v)}" for k, v in fields) + ")")

        self.trace_sinks.append(line)

    def trace_fields(self, events: tuple[str, ...], sink) -> None:
        """Give ``sink`` the fields (a dict, with ``event``: its name) of every
        trace record of ``events``, in the thread that traced it, under the
        EL2 lock: it must be quick and call nothing of the hypervisor's."""

        def fields(record) -> None:
            if record[0] in events:
                sink(dict(record[1], event=record[0]))

        self.trace_sinks.append(fields)

    def vm_event(self, vcpu, kind: str, a: int, b: int) -> None:
        """A VM-wide event of ``vcpu``'s VM (PSCI system_off, system_reset)."""
        self.trace("vm_event", vcpu=vcpu.trace_name, kind=kind)
        for listener in self.vm_listeners:
            listener(vcpu, kind, a, b)

    def close(self) -> None:
        self.scheduler.close()
        self.dram.close()


def _shown(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    return hex(value) if isinstance(value, int) else str(value)
