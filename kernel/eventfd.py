"""eventfd contexts and their wait queues (fs/eventfd.c) over real eventfds.

The eventfds are the process's own (``os.eventfd`` or ``Host.eventfd``),
so any thread, or any process holding the fd, can write them.
``eventfd_ctx_fdget`` takes a reference the way the kernel does: a
duplicate of the descriptor, so the user may close theirs (EBADF for a
descriptor that is not open, EINVAL for a file that is not an eventfd).

:class:`EventfdWaitQueue` is where drivers hook a callback on EPOLLIN: one
thread of the kernel waits on every registered eventfd and calls the
callback once per write (edge-triggered, like a wait-queue entry), without
consuming the counter.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading

from kernel import uaccess

EVENTFD_LINK = "anon_inode:[eventfd]"


def eventfd_ctx_fdget(host, fd: int) -> EventfdCtx:
    """A reference to the eventfd behind the user's ``fd`` (the calling thread's
    process's, see kernel.uaccess); EBADF if not open, EINVAL if not an eventfd."""
    if not uaccess.foreign() and host.fdtable.holds(fd):
        raise OSError(errno.EINVAL, "not an eventfd")
    local = uaccess.fdget_user(fd)
    if os.readlink(f"/proc/self/fd/{local}") != EVENTFD_LINK:
        os.close(local)
        raise OSError(errno.EINVAL, "not an eventfd")
    return EventfdCtx(local)


class EventfdCtx:
    def __init__(self, fd: int):
        self.fd = fd

    @property
    def id(self) -> int:
        """Which eventfd this is (the kernel compares eventfd_ctx pointers): equal for
        every descriptor of the same eventfd, as /proc's fdinfo says."""
        with open(f"/proc/self/fdinfo/{self.fd}") as info:
            for line in info:
                if line.startswith("eventfd-id:"):
                    return int(line.split()[1])
        raise OSError(errno.EINVAL, "no eventfd-id in fdinfo")

    def signal(self, n: int = 1) -> None:
        """eventfd_signal: add ``n`` to the counter (and wake its readers)."""
        os.eventfd_write(self.fd, n)

    def readable(self) -> bool:
        poller = select.poll()  # not select(): descriptors may be above FD_SETSIZE
        poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(0))

    def put(self) -> None:
        os.close(self.fd)


class EventfdWaitQueue:
    """One kernel thread calling ``callback()`` on every write to a registered eventfd.

    Only writes made after ``add`` call back: the readiness an eventfd already
    has then is no wakeup (epoll reports it once at registration; it is
    dropped), as a wait-queue entry added to a readable eventfd sees nothing.
    """

    def __init__(self):
        self._epoll = select.epoll()
        self._callbacks: dict[int, object] = {}
        self._stale: set[int] = set()  # readable at add: epoll's first report is no write
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._sync_r, self._sync_w = os.pipe()
        self._epoll.register(self._sync_r, select.EPOLLIN)
        self._synced = threading.Condition()
        self._sync_count = 0
        self._thread: threading.Thread | None = None

    def add(self, ctx: EventfdCtx, callback) -> None:
        with self._lock:
            self._callbacks[ctx.fd] = callback
            if ctx.readable():
                self._stale.add(ctx.fd)
            self._epoll.register(ctx.fd, select.EPOLLIN | select.EPOLLET)
            if self._thread is None:
                self._thread = threading.Thread(target=self._wait, name="eventfd-wq", daemon=True)
                self._thread.start()

    def remove(self, ctx: EventfdCtx) -> None:
        with self._lock:
            if self._callbacks.pop(ctx.fd, None) is not None:
                self._epoll.unregister(ctx.fd)
                self._stale.discard(ctx.fd)

    def quiesce(self) -> None:
        """Return once every write made before the call has had its callback."""
        if self._thread is None:
            return
        with self._synced:
            target = self._sync_count + 1
            os.write(self._sync_w, b"s")
            self._synced.wait_for(lambda: self._sync_count >= target, timeout=10)

    def _wait(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                if fd == self._wake_r:
                    return
                if fd == self._sync_r:
                    with self._synced:
                        self._sync_count += len(os.read(self._sync_r, 64))
                        self._synced.notify_all()
                    continue
                with self._lock:
                    callback = self._callbacks.get(fd)
                    if fd in self._stale:
                        self._stale.discard(fd)
                        continue
                if callback is not None:
                    callback()

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join()
        for fd in (self._wake_r, self._wake_w, self._sync_r, self._sync_w):
            os.close(fd)
        with contextlib.suppress(OSError):
            self._epoll.close()
