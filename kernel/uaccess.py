"""copy_from_user and copy_to_user (arch/arm64/include/asm/uaccess.h, lib/usercopy.c).

ioctl arguments are what a C program passes: an address in the calling
process, or a cffi pointer. User memory is read and written by address with
process_vm_readv/process_vm_writev on the calling thread's process, so a
bad pointer is EFAULT, never a crash. That process is our own, unless the
thread serves another one (:func:`use_process`: a native program whose
syscalls a server thread makes for it); then its addresses are the user's and
the descriptors its ioctl arguments name are its own (:func:`fdget_user`).
Our own process also holds the simulated machine's memory (its DRAM:
guests', EL2's and the kernel's pages); an address in it is no user address
(access_ok), so it is EFAULT too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
import weakref

import cffi

_libc = ctypes.CDLL(None, use_errno=True)


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


for _name in ("process_vm_readv", "process_vm_writev"):
    _fn = getattr(_libc, _name)
    _fn.restype = ctypes.c_ssize_t
    _fn.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(_Iovec),
        ctypes.c_ulong,
        ctypes.POINTER(_Iovec),
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]


SYS_pidfd_getfd = 438  # one number on every architecture (syscalls added since 5.1 share it)
_libc.syscall.restype = ctypes.c_long


class _Current(threading.local):
    """The process the calling thread's syscalls are for: None is our own."""

    pid: int | None = None
    pidfd: int = -1
    files = None  # (st_dev, st_ino) of a socket the process holds -> our kernel file's fd


_current = _Current()


@contextlib.contextmanager
def use_process(pid: int, files):
    """While inside, the calling thread's syscalls are process ``pid``'s: user
    memory is its memory, user descriptors are its descriptors, and ``files``
    maps the (st_dev, st_ino) of a socket it holds to the kernel file (our fd)
    the socket stands for. OSError from pidfd_open (ESRCH: no such process)."""
    pidfd = os.pidfd_open(pid)
    _current.pid, _current.pidfd, _current.files = pid, pidfd, files
    try:
        yield
    finally:
        _current.pid, _current.pidfd, _current.files = None, -1, None
        os.close(pidfd)


def foreign() -> bool:
    """The calling thread serves another process than our own."""
    return _current.pid is not None


def fdget_user(fd: int) -> int:
    """Our own new descriptor for the open file behind the user's descriptor
    ``fd`` (pidfd_getfd when serving another process; the caller closes it).
    EBADF if ``fd`` is not open."""
    if not foreign():
        try:
            return os.dup(fd)
        except (OSError, OverflowError):
            raise OSError(errno.EBADF, os.strerror(errno.EBADF)) from None
    if not 0 <= fd < 1 << 31:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    local = _libc.syscall(SYS_pidfd_getfd, _current.pidfd, fd, 0)
    if local < 0:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    return local


def user_file(fd: int) -> int | None:
    """Our fd of the kernel file behind the user's descriptor ``fd`` when serving
    another process (it holds a socket standing for the file), else None.
    EBADF if ``fd`` is not open there."""
    local = fdget_user(fd)
    try:
        st = os.fstat(local)
    finally:
        os.close(local)
    return _current.files((st.st_dev, st.st_ino))


# mappings of machines' memory in this process: .address, .size, and .mapped (False
# once the range is unmapped, when the OS may hand it to anything else)
_MACHINE = weakref.WeakSet()


class KernelMemory:
    """A range of this process that is the kernel's, not the user's, while this lives."""

    mapped = True  # until it is dropped

    def __init__(self, address: int, size: int):
        self.address, self.size = address, size
        _MACHINE.add(self)


def reserve_machine_memory(mapping) -> None:
    """``mapping`` (``.address``, ``.size``, ``.mapped``) is no user memory while mapped."""
    _MACHINE.add(mapping)


def access_ok(address: int, size: int) -> bool:
    """[address, address+size) is user memory: not null, no wrap, no machine memory."""
    if address == 0 or address + size > 2**64:
        return False
    return not any(
        m.mapped and m.address < address + size and address < m.address + m.size
        for m in list(_MACHINE)
    )


_FFI = cffi.FFI()  # any FFI casts any cffi pointer: the backend is shared
_UINTPTR = _FFI.typeof("uintptr_t")


def user_address(arg) -> int:
    """The address an ioctl argument stands for: an int, or a cffi pointer."""
    if isinstance(arg, int):
        return arg & (2**64 - 1)
    try:
        return int(_FFI.cast(_UINTPTR, arg))
    except (TypeError, cffi.FFIError):
        raise OSError(errno.EFAULT, "not a pointer") from None


def _transfer(fn, local: ctypes.Array, address: int, size: int) -> None:
    if size == 0:
        return
    pid = _current.pid
    if pid is None and not access_ok(address, size):
        raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
    if address == 0 or address + size > 2**64:  # another process: no machine memory in it
        raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
    mine = _Iovec(ctypes.addressof(local), size)
    theirs = _Iovec(address, size)
    done = fn(pid or os.getpid(), ctypes.byref(mine), 1, ctypes.byref(theirs), 1, 0)
    if done != size:
        raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))


def copy_from_user(arg, size: int) -> bytes:
    """``size`` bytes at the user address ``arg``; OSError(EFAULT) if unreadable."""
    buf = ctypes.create_string_buffer(size)
    _transfer(_libc.process_vm_readv, buf, user_address(arg), size)
    return buf.raw


def copy_to_user(arg, data: bytes) -> None:
    """Write ``data`` at the user address ``arg``; OSError(EFAULT) if unwritable."""
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    _transfer(_libc.process_vm_writev, buf, user_address(arg), len(data))
