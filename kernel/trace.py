"""The trace of one booted machine, strace-style and on a timeline (kernel/trace/).

A :class:`Tracer` is what ``kernel.boot(trace=...)`` installs. Every ioctl
(its struct decoded by field, see uapi/decode.py), every RM call (by name,
its payload decoded, see kernel/gunyah/rsc_mgr_rpc.py), every vCPU exit and
guest PSCI call of the hypervisor, and the interrupt path (irqfd
injections, ioeventfd signals, doorbells rung) is one event. ``lines`` (a
callable taking one line, or None) gets each as an strace-style line, in
the order they happen. With ``timeline=True`` they are also kept as Chrome
trace-event records (:meth:`Tracer.chrome_trace`, which Perfetto and
chrome://tracing open): one track per host thread (the process's main
thread is "host", any other keeps its name, e.g. the VMM's "vcpu0") and
one "RM" track for Resource Manager round trips. ioctls and RM calls are
spans (phase "X"), exits and interrupts instants (phase "i"); timestamps
are microseconds since the tracer was made. Thread-safe.
"""

from __future__ import annotations

import threading
import time

from kernel.gunyah.rsc_mgr_rpc import (
    gunyah_rm_describe,
    gunyah_rm_describe_reply,
    gunyah_rm_msg_name,
)

PID = 1  # the one traced process
RM_TRACK = "RM"


def _thread_track() -> str:
    thread = threading.current_thread()
    return "host" if thread is threading.main_thread() else thread.name


class Tracer:
    def __init__(self, lines=None, timeline: bool = False):
        self.lines = lines
        self.events: list[dict] | None = [] if timeline else None
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._tracks: dict[str, int] = {}

    @staticmethod
    def start() -> float:
        """The start of a span, for :meth:`emit`'s ``start``."""
        return time.perf_counter()

    def emit(self, text: str, name: str, cat: str, start: float | None = None, track=None):
        """One event: ``text`` is its strace-style line, ``name`` its timeline label,
        ``cat`` its category (ioctl, rm, hyp, irq); a span from ``start`` to now
        if ``start`` is given, else an instant. ``track``: default the calling
        thread's."""
        end = time.perf_counter()
        with self._lock:
            if self.lines is not None:
                self.lines(text)
            if self.events is None:
                return
            event = {
                "name": name,
                "cat": cat,
                "pid": PID,
                "tid": self._track(track or _thread_track()),
                "args": {"detail": text},
            }
            if start is None:
                event.update(ph="i", s="t", ts=self._us(end))
            else:
                event.update(ph="X", ts=self._us(start), dur=self._us(end) - self._us(start))
            self.events.append(event)

    def rm_call(self, msg_id: int, req: bytes, outcome, start: float) -> None:
        """One RM round trip on the RM track: ``outcome`` is the reply's data
        (bytes) or what went wrong (text)."""
        if isinstance(outcome, bytes):
            outcome = gunyah_rm_describe_reply(msg_id, outcome)
        text = f"rm_call({gunyah_rm_describe(msg_id, req)}) = {outcome}"
        self.emit(text, gunyah_rm_msg_name(msg_id), "rm", start, RM_TRACK)

    def hyp_line(self, line: str) -> None:
        """A hypervisor trace line (``event(field=...)``), on the calling thread's track."""
        self.emit(line, line.partition("(")[0], "hyp")

    def chrome_trace(self) -> dict:
        """The JSON object format of the trace-event spec; ValueError without a timeline."""
        if self.events is None:
            raise ValueError("this tracer keeps no timeline")
        with self._lock:
            return {"traceEvents": list(self.events), "displayTimeUnit": "ms"}

    def _us(self, t: float) -> int:
        return round((t - self._t0) * 1e6)

    def _track(self, name: str) -> int:
        tid = self._tracks.get(name)
        if tid is None:
            tid = self._tracks[name] = len(self._tracks) + 1
            meta = {"ph": "M", "pid": PID, "tid": tid, "name": "thread_name"}
            self.events.append(meta | {"args": {"name": name}})
        return tid
