"""The Host protocol a VMM is written against, and LinuxHost: the same calls on a real kernel.

A VMM takes a host object and calls ``open, close, dup, ioctl, mmap,
munmap, fallocate, read, write, poll, eventfd, pthread_kill`` on it, with
C-style arguments (an ioctl argument is an int or a pointer), and
``user_address`` for the address C's mmap would have returned (what a
driver taking user memory by address, GenieZone's memslots, is given). The object
``kernel.boot()`` returns is one; :class:`LinuxHost` is another, over
``os``, ``fcntl`` and ``mmap``, so the very same VMM drives a real
/dev/gunyah on a device.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import signal
from typing import Protocol

import cffi

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
# fcntl.ioctl takes only a C int or a buffer; a pointer needs the whole unsigned long.
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]


class Host(Protocol):
    def open(self, path: str, flags: int = os.O_RDWR) -> int: ...
    def close(self, fd: int) -> None: ...
    def ioctl(self, fd: int, request: int, arg=0) -> int: ...
    def mmap(self, fd: int, length: int, prot: int = 3, flags: int = 1, offset: int = 0): ...
    def munmap(self, mapping) -> None: ...
    def user_address(self, mapping) -> int: ...
    def eventfd(self, initval: int = 0, flags: int = 0) -> int: ...
    def pthread_kill(self, thread: int, sig: int) -> None: ...


_FFI = cffi.FFI()  # any FFI casts any cffi pointer: the backend is shared
_UINTPTR = _FFI.typeof("uintptr_t")


def _address(arg) -> int:
    """An ioctl argument as the unsigned long C passes: an int or a cffi pointer."""
    return arg if isinstance(arg, int) else int(_FFI.cast(_UINTPTR, arg))


class LinuxHost:
    """The Host calls on the running Linux kernel."""

    def open(self, path: str, flags: int = os.O_RDWR) -> int:
        return os.open(path, flags | os.O_CLOEXEC)

    def close(self, fd: int) -> None:
        os.close(fd)

    def dup(self, fd: int) -> int:
        return os.dup(fd)

    def ioctl(self, fd: int, request: int, arg=0) -> int:
        ret = _libc.ioctl(fd, request, _address(arg) & 0xFFFF_FFFF_FFFF_FFFF)
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return ret

    def mmap(self, fd: int, length: int, prot: int = 3, flags: int = 1, offset: int = 0):
        return mmap.mmap(fd, length, flags, prot, offset=offset)

    def munmap(self, mapping) -> None:
        mapping.close()

    def user_address(self, mapping) -> int:
        """The address of the first byte of ``mapping`` (from :meth:`mmap`)."""
        return int(_FFI.cast(_UINTPTR, _FFI.from_buffer(mapping)))

    def fallocate(self, fd: int, mode: int, offset: int, length: int) -> None:
        if _libc.fallocate(fd, mode, offset, length) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def read(self, fd: int, size: int) -> bytes:
        return os.read(fd, size)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def eventfd(self, initval: int = 0, flags: int = 0) -> int:
        return os.eventfd(initval, flags)

    def poll(self, fds, timeout_ms: int | None = None) -> list[tuple[int, int]]:
        poller = select.poll()
        for fd, events in fds:
            poller.register(fd, events)
        return poller.poll(timeout_ms)

    def pthread_kill(self, thread: int, sig: int) -> None:
        signal.pthread_kill(thread, sig)
