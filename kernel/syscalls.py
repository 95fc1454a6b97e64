"""The system-call surface of one host process (the Host).

``open``, ``close``, ``dup``, ``ioctl``, ``mmap`` and ``fallocate`` behave
as on Linux: every fd is a real descriptor, a request is dispatched to the
file's operations, and the only exception that escapes is OSError with
the driver's errno (ENOTTY for an unknown request, EBADF for a closed or
foreign fd, EFAULT for a bad pointer). Anything else raised inside the kernel model is a bug; it is
reported as EIO and kept in ``Host.bugs`` for tests to fail on.
"""

from __future__ import annotations

import errno
import os

from kernel.fs import FdTable, File
from kernel.gunyah.vm_mgr import GUNYAH_DEV_FOPS

DEVICES = {"/dev/gunyah": GUNYAH_DEV_FOPS}


class Host:
    def __init__(self, gunyah):
        self.gunyah = gunyah  # the drivers' state: hypercalls, RM link, firmware
        self.fdtable = FdTable()
        self._mappings: dict[int, File] = {}
        self.bugs: list[BaseException] = []

    def open(self, path: str, flags: int = os.O_RDWR) -> int:
        fops = DEVICES.get(path)
        if fops is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return self.fdtable.install(File(fops, self, path), cloexec=bool(flags & os.O_CLOEXEC))

    def close(self, fd: int) -> None:
        self._call(self.fdtable.close, fd)

    def dup(self, fd: int) -> int:
        return self._call(self.fdtable.dup, fd)

    def ioctl(self, fd: int, request: int, arg=0) -> int:
        """``ioctl(fd, request, arg)``: arg is an int or a pointer, as in C."""
        file = self._call(self.fdtable.get, fd)
        try:
            return self._call(file.fops.ioctl, file, request & 0xFFFF_FFFF, arg)
        finally:
            file.put()

    def mmap(self, fd: int, length: int, prot: int = 3, flags: int = 1, offset: int = 0):
        """Map a file; returns an object with the buffer protocol (like mmap.mmap)."""
        file = self._call(self.fdtable.get, fd)
        try:
            mapping = self._call(file.fops.mmap, file, length, offset, prot)
        except BaseException:
            file.put()
            raise
        self._mappings[id(mapping)] = file  # the mapping holds the file, as a VMA does
        return mapping

    def munmap(self, mapping) -> None:
        """Unmap what ``mmap`` returned (the file learns of it, then is released)."""
        file = self._mappings.pop(id(mapping), None)
        mapping.close()
        if file is not None:
            unmap = getattr(file.fops, "munmap", None)
            if unmap is not None:
                unmap(file, mapping)
            file.put()

    def fallocate(self, fd: int, mode: int, offset: int, length: int) -> None:
        file = self._call(self.fdtable.get, fd)
        try:
            fallocate = getattr(file.fops, "fallocate", None)
            if fallocate is None:
                raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
            self._call(fallocate, file, mode, offset, length)
        finally:
            file.put()

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except OSError:
            raise
        except Exception as e:
            self.bugs.append(e)
            raise OSError(errno.EIO, f"kernel model bug: {e!r}") from None

    def shutdown(self) -> None:
        """Close every descriptor, then power the machine off."""
        for fd in self.fdtable.fds():
            self.close(fd)
        self.gunyah.shutdown()
