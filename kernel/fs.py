"""Files and file descriptors (fs/file.c, fs/anon_inodes.c, vfs_fallocate of fs/open.c).

Every fd a Host returns is a real descriptor of the process: a placeholder
opened on /dev/null where no OS object fits, so numbers never collide with
eventfds or other files and ``os.fstat`` works. A :class:`File` is the
kernel object behind it; ``dup`` shares it, and its ``release`` runs when
the last descriptor referring to it is closed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading

from kernel import uaccess
from kernel.kref import Kref

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE = 0x01, 0x02, 0x08
FALLOC_FL_ZERO_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_UNSHARE_RANGE = 0x10, 0x20, 0x40
FALLOC_FL_SUPPORTED_MASK = 0x7B
MAX_LFS_FILESIZE = (1 << 63) - 1


class FileOperations:
    """What a file can do; the defaults are the kernel's for a missing handler.
    A file with ``fallocate`` is a regular file (guest_memfd's inode is S_IFREG)."""

    def ioctl(self, file: File, cmd: int, arg) -> int:
        raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))

    def mmap(self, file: File, length: int, offset: int, prot: int, flags: int):
        """A mapping (buffer protocol); ``prot`` and ``flags`` as mmap(2) checked them."""
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    def read(self, file: File, size: int) -> bytes:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    def write(self, file: File, data: bytes) -> int:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    def release(self, file: File) -> None:
        """The last reference is gone."""


class File:
    """An open file: its operations, its private data and its references."""

    def __init__(self, fops: FileOperations, private, name: str):
        self.fops, self.private, self.name = fops, private, name
        self._kref = Kref(lambda: fops.release(self))

    def get(self) -> File:
        self._kref.get()
        return self

    def put(self) -> None:
        self._kref.put()


class FdTable:
    """The process's descriptors that refer to kernel files."""

    def __init__(self):
        self._files: dict[int, File] = {}
        self._lock = threading.Lock()
        self._installing = threading.local()  # .fds: the list installs() yielded

    def install(self, file: File, cloexec: bool = True) -> int:
        """A new real descriptor for ``file`` (which the table now holds)."""
        fd = os.open(os.devnull, os.O_RDWR)
        os.set_inheritable(fd, not cloexec)  # Python opens close-on-exec by default
        with self._lock:
            self._files[fd] = file
        installed = getattr(self._installing, "fds", None)
        if installed is not None:
            installed.append((fd, cloexec))
        return fd

    @contextlib.contextmanager
    def installs(self):
        """Yield a list of (fd, cloexec) that the calling thread's syscalls
        install while inside (a syscall's new descriptors, whatever its result)."""
        self._installing.fds = []
        try:
            yield self._installing.fds
        finally:
            self._installing.fds = None

    def get(self, fd: int) -> File:
        """The file behind ``fd`` with a reference taken; EBADF if none."""
        with self._lock:
            file = self._files.get(fd)
            if file is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            return file.get()

    def lookup(self, fd: int) -> File | None:
        """The file behind ``fd`` with a reference taken, or None if ``fd`` is no
        kernel file (one look under the lock: every syscall starts here)."""
        with self._lock:
            file = self._files.get(fd)
            return None if file is None else file.get()

    def get_user(self, fd: int) -> File:
        """:meth:`get` for a descriptor named inside an ioctl's argument: the
        calling thread's process's (kernel.uaccess.use_process), whose sockets
        stand for our files. EBADF if it is no open kernel file."""
        if uaccess.foreign():
            fd = uaccess.user_file(fd)
            if fd is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return self.get(fd)

    def holds(self, fd: int) -> bool:
        with self._lock:
            return fd in self._files

    def dup(self, fd: int) -> int:
        file = self.get(fd)
        new = os.dup(fd)
        with self._lock:
            self._files[new] = file
        return new

    def close(self, fd: int) -> None:
        with self._lock:
            file = self._files.pop(fd, None)
        if file is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        os.close(fd)
        file.put()

    def fds(self) -> list[int]:
        with self._lock:
            return list(self._files)


def vfs_fallocate(file: File, mode: int, offset: int, length: int) -> None:
    """fallocate(2): the generic checks, in the kernel's order, then the file's own.

    EINVAL for a negative offset or a length under 1; EOPNOTSUPP for an unknown
    mode bit, PUNCH_HOLE with ZERO_RANGE or without KEEP_SIZE; EINVAL for
    COLLAPSE_RANGE or INSERT_RANGE with any other bit, UNSHARE_RANGE with
    another than KEEP_SIZE; ENODEV for a file that is not regular; EFBIG past
    the largest file size.
    """

    def fail(err: int):
        raise OSError(err, os.strerror(err))

    if offset < 0 or length <= 0:
        fail(errno.EINVAL)
    if mode & ~FALLOC_FL_SUPPORTED_MASK:
        fail(errno.EOPNOTSUPP)
    punch, zero = mode & FALLOC_FL_PUNCH_HOLE, mode & FALLOC_FL_ZERO_RANGE
    if (punch and zero) or (punch and not mode & FALLOC_FL_KEEP_SIZE):
        fail(errno.EOPNOTSUPP)
    for exclusive, allowed in (
        (FALLOC_FL_COLLAPSE_RANGE, 0),
        (FALLOC_FL_INSERT_RANGE, 0),
        (FALLOC_FL_UNSHARE_RANGE, FALLOC_FL_KEEP_SIZE),
    ):
        if mode & exclusive and mode & ~(exclusive | allowed):
            fail(errno.EINVAL)
    fallocate = getattr(file.fops, "fallocate", None)
    if fallocate is None:
        fail(errno.ENODEV)
    if offset + length > MAX_LFS_FILESIZE:
        fail(errno.EFBIG)
    fallocate(file, mode, offset, length)
