"""The Resource Manager RPC transport (drivers/virt/gunyah/rsc_mgr.c).

``gunyah_rm_call`` sends a request of at most 14384 bytes (62 continuation
fragments; E2BIG beyond) in 240-byte packets over the TX message queue,
the last one with PUSH, holding ``send_lock`` from the first packet to the
last so that concurrent requests never interleave their fragments; then it
waits, uninterruptibly, for the reply with the same sequence id. Sequence
ids are allocated cyclically in 16 bits. The RX interrupt drains the RX
queue: replies complete their caller, continuations extend the message they
belong to, a new message aborts a partial one (a pending reply then
completes with EIO), and each notification is queued as work for the
notifier chain (priority order), which runs in a thread of its own as
the driver's work items do: a notifier may sleep on a VM's locks without
holding up the replies a lock holder waits for. A thread about to wait
for what a notification brings (a VM's status) runs the queued work
itself first (:meth:`GunyahRm.run_notifs`) when the worker is not running
any: in order, one runner at a time, without a thread hop. Notifications a
thread receives inside :meth:`GunyahRm.notifs_deferred` (a VM's start,
which holds its status lock, and its release, which waits for the status
reports itself) do not wake the worker: the thread runs them at the end of
the block, as pending work runs on the return to user mode, unless a
waiter got to them first. RM errors become errno with
``gunyah_rm_error_remap``, unknown ones EBADMSG: where the second error
space ends.

Unlike the driver, no wait is unbounded: a queue that stays full or a reply
that does not come within ``RM_TIMEOUT`` seconds ends the call with
ETIMEDOUT (a device would hang the caller in D state).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import math
import struct
import threading
import time
from dataclasses import dataclass, field

import fdt

from kernel.include.linux.gunyah import GunyahError, gunyah_error_remap

RPC_API_VERSION, RPC_HEADER_WORDS = 1, 2
TYPE_CONTINUATION, TYPE_REQUEST, TYPE_REPLY, TYPE_NOTIF = 0, 1, 2, 3
GUNYAH_RM_MAX_MSG_SIZE = 240
HDR = struct.Struct("<BBHI")
MAX_PAYLOAD = GUNYAH_RM_MAX_MSG_SIZE - HDR.size
MAX_FRAGMENTS = 62
MAX_REQUEST = MAX_FRAGMENTS * MAX_PAYLOAD
RX_RETRIES = 100  # a receive error that persists this long is given up on
RM_TIMEOUT = 30.0  # seconds a request may wait for the TX queue or for its reply

_RM_ERRNO = {
    0x0: 0,
    0xFFFF_FFFF: errno.EOPNOTSUPP,
    0x1: errno.ENOMEM,
    0x2: errno.ENODEV,
    0x3: errno.EPERM,
    0x5: errno.EBUSY,
    **dict.fromkeys([0x4, *range(0x6, 0x12)], errno.EINVAL),
}


def gunyah_rm_error_remap(rm_error: int) -> int:
    return _RM_ERRNO.get(rm_error, errno.EBADMSG)


class RmError(OSError):
    """An RM call failed; ``errno`` as the driver returns it, ``rm_error`` the RM's word."""

    def __init__(self, err: int, rm_error: int | None = None, what: str = ""):
        super().__init__(err, f"{what}: {errno.errorcode.get(err, err)}" if what else None)
        self.rm_error = rm_error


class _Completion:
    """The driver's ``struct completion`` for one waiter: a lock held until
    :meth:`set` (cheaper than an Event: one is made per call). Completions
    come from the RX interrupt, which the EL2 lock serialises."""

    __slots__ = ("_done", "_lock")

    def __init__(self):
        self._done = False
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        if not self._done:
            self._done = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._done

    def wait(self, timeout: float) -> bool:
        return self._done or self._lock.acquire(timeout=timeout)


@dataclass
class _Call:
    msg_id: int
    done: _Completion = field(default_factory=_Completion)
    payload: bytes = b""
    error: int = 0


@dataclass
class _Partial:
    type: int
    msg_id: int
    fragments: int
    parts: list[bytes]
    call: _Call | None


def _words(node: fdt.Node, name: str, count: int) -> list[int]:
    prop = node.get_property(name)
    if not isinstance(prop, fdt.PropWords) or len(prop.data) != count:
        raise ValueError(f"{name}: not {count} cells")
    return prop.data


@dataclass(frozen=True)
class RmNode:
    """The ``gunyah-resource-manager`` DT node: message queue capids and virqs."""

    tx_capid: int
    rx_capid: int
    tx_virq: int
    rx_virq: int

    @classmethod
    def from_dt(cls, dtb: bytes) -> RmNode:
        """Read the node the RM overlaid into the host DT; ENODEV if absent."""
        try:
            node = fdt.parse_dtb(bytes(dtb)).get_node("/hypervisor/gunyah-resource-mgr@0")
            reg, irqs = _words(node, "reg", 4), _words(node, "interrupts", 6)
        except Exception as e:  # the library raises bare Exceptions
            raise OSError(errno.ENODEV, f"no gunyah-resource-manager node: {e}") from None
        return cls(reg[0] << 32 | reg[1], reg[2] << 32 | reg[3], irqs[1] + 32, irqs[4] + 32)


class GunyahRm:
    """One host's link to the RM."""

    def __init__(self, hcall, node: RmNode, request_irq):
        self.hcall, self.node = hcall, node
        self.faults: dict[str, int] = {}
        self.bugs: list[BaseException] = []  # notifiers that raised
        self.platform_ops = None  # see platform_hooks.py
        self.trace = None  # a kernel.trace.Tracer: every call, for gunyah-sim run --trace
        self._lock = threading.Lock()
        self.send_lock = threading.Lock()
        self._pending: dict[int, _Call] = {}
        self._next_seq = 0
        self._partial: _Partial | None = None
        self._notifiers: list[tuple[int, int, object]] = []
        self._tx_ready = threading.Condition()
        self._tx_waiters = 0  # senders waiting for room in the TX queue
        self.aborted = 0
        self._notif_work: collections.deque = collections.deque()
        self._notif_queued = threading.Event()  # the worker has work to look at
        self._notif_running = threading.Lock()  # held by whichever thread runs the work
        self._notif_stop = False
        self._deferring = threading.local()  # .depth: inside notifs_deferred
        self._notif_worker = threading.Thread(
            target=self._process_notifs, name="gunyah-rm-notif", daemon=True
        )
        self._notif_worker.start()
        request_irq(node.rx_virq, self._rx_irq)
        request_irq(node.tx_virq, self._tx_irq)

    def inject(self, name: str, err: int):
        """An injected failure of the RPC ``name``: traced on the RM track (no request
        was built, so the call shows by name), then raised."""
        if self.trace is not None:
            from kernel.trace import RM_TRACK  # kernel.trace imports this module's users

            outcome = f"-1 {errno.errorcode.get(err, err)} (injected)"
            self.trace.emit(f"rm_call({name}) = {outcome}", name, "rm", track=RM_TRACK)
        raise RmError(err, what=f"{name} (injected)")

    # notifiers
    def gunyah_rm_notifier_register(self, fn, priority: int = 0) -> None:
        """``fn(msg_id, payload)`` for every notification, highest priority first."""
        with self._lock:
            self._notifiers.append((priority, len(self._notifiers), fn))
            self._notifiers.sort(key=lambda n: (-n[0], n[1]))

    def gunyah_rm_notifier_unregister(self, fn) -> None:
        with self._lock:
            self._notifiers = [n for n in self._notifiers if n[2] is not fn]

    # calls
    def gunyah_rm_call(self, msg_id: int, req: bytes) -> bytes:
        """Send a request and wait for its reply; the reply's data, or RmError."""
        if not msg_id:
            raise RmError(errno.EINVAL, what="message id 0")
        if len(req) > MAX_REQUEST:
            raise RmError(errno.E2BIG, what=f"{len(req)}-byte request")
        call = _Call(msg_id)
        start = self.trace.start() if self.trace is not None else None
        seq = self._alloc_seq(call)
        deadline = time.monotonic() + RM_TIMEOUT
        try:
            with self.send_lock:
                self._send(TYPE_REQUEST, seq, msg_id, req, deadline)
            if not call.done.wait(max(deadline - time.monotonic(), 0)):
                call.error = errno.ETIMEDOUT
        finally:
            with self._lock:
                self._pending.pop(seq, None)
        if call.error:
            if self.trace is not None:
                outcome = f"-1 {errno.errorcode.get(call.error, call.error)}"
                self.trace.rm_call(msg_id, req, outcome, start)
            raise RmError(call.error, what=f"RM call {msg_id:#x}")
        rm_error = struct.unpack_from("<I", call.payload)[0]
        if self.trace is not None:  # the outcome is formatted only for a trace
            outcome = f"rm_error {rm_error:#x}" if rm_error else call.payload[4:]
            self.trace.rm_call(msg_id, req, outcome, start)
        if rm_error:
            raise RmError(gunyah_rm_error_remap(rm_error), rm_error, f"RM call {msg_id:#x}")
        return call.payload[4:]

    def _alloc_seq(self, call: _Call) -> int:
        with self._lock:
            for _ in range(1 << 16):
                seq, self._next_seq = self._next_seq, (self._next_seq + 1) & 0xFFFF
                if seq not in self._pending:
                    self._pending[seq] = call
                    return seq
        raise RmError(errno.EBUSY, what="no free sequence id")

    def _send(
        self, msg_type: int, seq: int, msg_id: int, payload: bytes, deadline: float = math.inf
    ) -> None:
        chunks = [payload[i : i + MAX_PAYLOAD] for i in range(0, len(payload), MAX_PAYLOAD)]
        chunks = chunks or [b""]
        frags = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            kind = msg_type if i == 0 else TYPE_CONTINUATION
            header = HDR.pack(
                RPC_API_VERSION | RPC_HEADER_WORDS << 4, kind | frags << 2, seq, msg_id
            )
            push = 1 if i == frags else 0
            self._send_packet(header + chunk, push, deadline)

    def _send_packet(self, packet: bytes, flags: int, deadline: float = math.inf) -> None:
        """One packet; waits for room while the queue is full (ETIMEDOUT at ``deadline``)."""
        while True:
            err, _ = self.hcall.gunyah_hypercall_msgq_send(self.node.tx_capid, packet, flags)
            if err != GunyahError.MSGQUEUE_FULL:
                break
            if time.monotonic() > deadline:
                raise RmError(errno.ETIMEDOUT, what="msgq_send: the queue stays full")
            with self._tx_ready:
                self._tx_waiters += 1
                self._tx_ready.wait(0.01)
                self._tx_waiters -= 1
        if err:
            raise RmError(gunyah_error_remap(err), what="msgq_send")

    # receiving
    def _tx_irq(self, _virq: int) -> None:
        """The TX queue has room (asserted at every send and receive): wake the
        senders waiting for it, if any (a sender that misses it polls)."""
        if self._tx_waiters:
            with self._tx_ready:
                self._tx_ready.notify_all()

    def _rx_irq(self, _virq: int) -> None:
        """Drain the RX queue. The queue's interrupt is level-sensitive on a device: a
        receive that fails while messages wait raises it again, modelled as a retry."""
        failures = 0
        while True:
            err, packet, ready = self.hcall.gunyah_hypercall_msgq_recv(
                self.node.rx_capid, GUNYAH_RM_MAX_MSG_SIZE
            )
            if err == GunyahError.MSGQUEUE_EMPTY:
                return
            if err:
                failures += 1
                if failures > RX_RETRIES:
                    return
                continue
            self._process(packet)
            if not ready:
                return

    def _process(self, packet: bytes) -> None:
        if len(packet) < HDR.size:
            return
        api, flags, seq, msg_id = HDR.unpack_from(packet)
        kind, frags, body = flags & 3, flags >> 2, packet[HDR.size :]
        if api != RPC_API_VERSION | RPC_HEADER_WORDS << 4 or frags > MAX_FRAGMENTS:
            return
        if kind == TYPE_CONTINUATION:
            self._continue(msg_id, frags, body)
            return
        self._abort_partial()
        call = None
        if kind == TYPE_REPLY:
            with self._lock:
                call = self._pending.get(seq)
            if call is None or call.msg_id != msg_id:
                return
        elif kind != TYPE_NOTIF:
            return
        self._partial = _Partial(kind, msg_id, frags, [body], call)
        self._complete_if_whole()

    def _continue(self, msg_id: int, frags: int, body: bytes) -> None:
        partial = self._partial
        if partial is None or (partial.msg_id, partial.fragments) != (msg_id, frags):
            self._abort_partial()
            return
        partial.parts.append(body)
        self._complete_if_whole()

    def _complete_if_whole(self) -> None:
        partial = self._partial
        if len(partial.parts) != partial.fragments + 1:
            return
        self._partial = None
        payload = b"".join(partial.parts)
        if partial.call is not None:
            if len(payload) < 4:
                partial.call.error = errno.EBADMSG
            partial.call.payload = payload
            partial.call.done.set()
            return
        self._queue_notif(lambda: self._notify(partial.msg_id, payload))

    def _notify(self, msg_id: int, payload: bytes) -> None:
        with self._lock:
            notifiers = list(self._notifiers)
        for _, _, fn in notifiers:
            fn(msg_id, payload)

    def _queue_notif(self, work) -> None:
        self._notif_work.append(work)
        if not getattr(self._deferring, "depth", 0):
            self._notif_queued.set()

    @contextlib.contextmanager
    def notifs_deferred(self):
        """Notifications this thread receives in the block wait for its end (the
        worker is not woken: it would only wait for the locks the block holds);
        there the thread runs them, or wakes the worker if it is running some."""
        local = self._deferring
        local.depth = getattr(local, "depth", 0) + 1
        try:
            yield
        finally:
            local.depth -= 1
            if not local.depth:
                self.run_notifs()

    def _process_notifs(self) -> None:
        """The worker: the queued work whenever there is some, until :meth:`close`."""
        while not self._notif_stop:
            self._notif_queued.wait()
            self._notif_queued.clear()  # work queued from now on sets it again
            with self._notif_running:
                self._run_queued()

    def _run_queued(self) -> None:
        """The notification work, in arrival order (``_notif_running`` held); a
        notifier that raises is a bug, kept in ``bugs``, and the next still runs."""
        while self._notif_work:
            work = self._notif_work.popleft()
            try:
                work()
            except Exception as e:
                self.bugs.append(e)

    def run_notifs(self) -> None:
        """Run the queued notification work in the calling thread, unless another
        thread runs some (the worker then goes on with the rest). For a thread
        about to wait for a notification's effect; it must hold no lock a
        notifier takes that another thread may hold while waiting for it."""
        if not self._notif_work:
            return
        if self._notif_running.acquire(blocking=False):
            try:
                self._run_queued()
            finally:
                self._notif_running.release()
        else:  # the runner may be past its last look at the queue: it looks again
            self._notif_queued.set()

    def flush_notifs(self) -> None:
        """Wait until every notification received so far went through the chain."""
        done = threading.Event()
        self._queue_notif(done.set)
        self.run_notifs()
        done.wait(RM_TIMEOUT)

    def close(self) -> None:
        """Stop the notification work (at power-off)."""
        self._notif_stop = True
        self._notif_queued.set()
        self._notif_worker.join(RM_TIMEOUT)

    def _abort_partial(self) -> None:
        partial, self._partial = self._partial, None
        if partial is not None:
            self.aborted += 1
            if partial.call is not None:
                partial.call.error = errno.EIO
                partial.call.done.set()
