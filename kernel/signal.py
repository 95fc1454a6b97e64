"""Signals to the threads of the process (kernel/signal.c), as a syscall sees them.

``Host.pthread_kill(thread, sig)`` makes ``sig`` pending on ``thread`` (an
id from ``threading.get_ident()``, as ``signal.pthread_kill`` takes) and
wakes it wherever it sleeps in the kernel: an interruptible wait returns,
and an IPI to its CPU makes a ``vcpu_run`` in progress come back. A
syscall that finds a signal pending fails with EINTR and the signal counts
as delivered: the model's process has handlers without SA_RESTART, which
is what a VMM installs for the signal it kicks vCPU threads with.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading


class Signals:
    def __init__(self, send_ipi):
        self._send_ipi = send_ipi
        self._lock = threading.Lock()
        self._pending: dict[int, set[int]] = {}
        self._wakers: dict[int, object] = {}

    def send(self, thread: int, sig: int) -> None:
        """Make ``sig`` pending on ``thread`` and wake it (signal_wake_up)."""
        with self._lock:
            self._pending.setdefault(thread, set()).add(sig)
            waker = self._wakers.get(thread)
        if waker is not None:
            waker()
        self._send_ipi(thread)

    def pending(self) -> bool:
        """A signal is pending on the calling thread (signal_pending(current))."""
        with self._lock:
            return bool(self._pending.get(threading.get_ident()))

    def deliver(self) -> OSError:
        """Deliver the calling thread's pending signals: the syscall's EINTR."""
        with self._lock:
            self._pending.pop(threading.get_ident(), None)
        return OSError(errno.EINTR, os.strerror(errno.EINTR))

    @contextlib.contextmanager
    def interruptible(self, wake):
        """While inside, a signal to the calling thread calls ``wake()``."""
        me = threading.get_ident()
        with self._lock:
            self._wakers[me] = wake
        try:
            yield
        finally:
            with self._lock:
                self._wakers.pop(me, None)
