"""The system-call surface of one host process (the Host).

``open``, ``close``, ``dup``, ``ioctl``, ``mmap``, ``munmap``,
``fallocate``, ``read``, ``write``, ``poll``, ``eventfd`` and
``pthread_kill`` behave as on Linux. The process's descriptor table is the
real one: kernel files (/dev/gunyah, VMs, vCPUs, guest_memfds, sysfs
attributes) sit behind real placeholder descriptors, and eventfds are real
eventfds, so numbers never collide and ``os.fstat`` works on all of them.
A request goes to the file's operations; a descriptor that is open but not
a kernel file (an eventfd, a pipe) gets ENOTTY for any ioctl, one that is
not open EBADF, and so does a number no C ``int`` descriptor can hold. A
Python value where C takes an integer is a TypeError, as in the os module.
Otherwise the only exception that escapes is OSError with the driver's errno. Anything
else raised inside the kernel model is a bug; it is reported as EIO and
kept in ``Host.bugs`` for tests to fail on.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import threading

from kernel import uaccess
from kernel.eventfd import EventfdWaitQueue
from kernel.fs import FdTable, File, FileOperations, vfs_fallocate
from kernel.gunyah.sysfs import ATTRIBUTES, sysfs_open
from kernel.mmap import (
    MAP_ANONYMOUS,
    AnonMemory,
    MmStruct,
    Vma,
    check_mmap,
    user_address,
    writable,
)
from kernel.signal import Signals
from kernel.uaccess import copy_from_user, reserve_machine_memory
from uapi import decode
from uapi.linux import gunyah as gh
from uapi.linux import gzvm as gz

IOCTL_NAMES = {number: name for name, number in (gh.IOCTLS | gz.IOCTLS).items()}
_NOT_OURS = FileOperations()  # an open fd the kernel model has no file for: an eventfd, a pipe
INT_MAX = (1 << 31) - 1
READ_MAX = 1 << 20  # bytes one read of a non-kernel file returns at most
EFD_FLAGS = os.EFD_CLOEXEC | os.EFD_NONBLOCK | os.EFD_SEMAPHORE
PAGE_SIZE = 4096


def _error(err: int, why: str = "") -> OSError:
    return OSError(err, f"{os.strerror(err)}: {why}" if why else os.strerror(err))


def _ebadf() -> OSError:
    return _error(errno.EBADF)


def _ints(*values) -> None:
    """A Python value where C takes an integer is the caller's TypeError, raised
    here as the os module does, before anything reaches the kernel model."""
    for value in values:
        if not isinstance(value, int):
            raise TypeError(f"an integer is required, not {type(value).__name__}")


def _shown(request, arg, name: str):
    """The struct at ``arg`` by field; else an int as it is, a pointer's address."""
    text = decode.describe(request, arg, copy_from_user)
    if text is not None:
        return text.removeprefix(name)
    if isinstance(arg, int):
        return arg
    try:
        return f"{uaccess.user_address(arg):#x}"
    except OSError:
        return "?"


def _fd(fd) -> int:
    """``fd`` as the C int a syscall takes: EBADF for what is no descriptor."""
    if not isinstance(fd, int) or not 0 <= fd <= INT_MAX:
        raise _ebadf()
    return fd


class Host:
    """One process on a booted machine (made by :func:`kernel.boot`). ``drivers``
    is the state its hypervisor's drivers left at probe (the firmware, the RAM
    allocator ``mm``, the ``devices`` they registered); it is also ``Host.gunyah``
    or ``Host.gzvm``, whichever the machine has (the other is None).

    ``trace`` (None, or a callable taking one line) sees every ioctl; ``dmesg``
    is the kernel log (a list of lines); ``bugs`` holds every non-OSError the
    kernel model raised (each reached the caller as EIO). Descriptors are real
    ones of the Python process, so ``os.eventfd_read``/``os.eventfd_write`` work
    on the Host's eventfds."""

    def __init__(self, drivers):
        self.drivers = drivers
        self.gunyah = drivers if drivers.name == "gunyah" else None
        self.gzvm = drivers if drivers.name == "gzvm" else None
        self.fdtable = FdTable()
        self.signals = Signals(drivers.firmware.send_ipi)
        self.eventfd_wq = EventfdWaitQueue()
        self.mm = MmStruct()  # the process's mappings, by user address
        reserve_machine_memory(drivers.firmware.machine_memory)  # never a user address
        self._mappings: dict[int, tuple[Vma, File | None]] = {}  # id(mapping) -> VMA, file
        self._unmap_lock = threading.Lock()  # one munmap of a mapping at a time
        self.bugs: list[BaseException] = []
        self.dmesg: list[str] = []  # the kernel log
        self.trace = None  # a kernel.trace.Tracer: every ioctl, strace-style
        self.warn = None  # a callable taking one line: each kernel warning, as it is logged

    def printk(self, message: str, warning: bool = False) -> None:
        """Append ``message`` to the kernel log, ``Host.dmesg`` (a list of lines). A
        ``warning`` (the driver's pr_warn) also goes to :attr:`warn` and the trace,
        as a console shows it."""
        self.dmesg.append(message)
        if warning:
            if self.warn is not None:
                self.warn(message)
            if self.trace is not None:
                self.trace.emit(f"printk: {message}", "printk", "host")

    def trace_irq(self, text: str, name: str) -> None:
        """An event of the interrupt path (irqfd, ioeventfd), when tracing."""
        if self.trace is not None:
            self.trace.emit(text, name, "irq")

    def open(self, path: str, flags: int = os.O_RDWR) -> int:
        """A device of the drivers (/dev/gunyah or /dev/gzvm), or with Gunyah a
        /sys/hypervisor attribute (read-only: EACCES to write); ENOENT otherwise."""
        cloexec = bool(flags & os.O_CLOEXEC)
        if path in ATTRIBUTES and self.gunyah is not None:
            if flags & os.O_ACCMODE != os.O_RDONLY:
                raise OSError(errno.EACCES, os.strerror(errno.EACCES), path)
            return self.fdtable.install(sysfs_open(self, path), cloexec)
        fops = self.drivers.devices.get(path)
        if fops is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return self.fdtable.install(File(fops, self, path), cloexec)

    def close(self, fd: int) -> None:
        """Close ``fd``: a kernel file drops its reference (the VM, vCPU or
        guest_memfd goes when its last fd and mapping do); any other descriptor
        of the process (an eventfd) is closed with ``os.close``. EBADF for one
        that is not open."""
        if self.fdtable.holds(_fd(fd)):
            self._call(self.fdtable.close, fd)
        else:
            os.close(fd)

    def dup(self, fd: int) -> int:
        """A new descriptor for the same open file as ``fd`` (``os.dup``'s number,
        not inheritable); the file lives until both are closed. EBADF for one that
        is not open."""
        if self.fdtable.holds(_fd(fd)):
            return self._call(self.fdtable.dup, fd)
        return os.dup(fd)

    def ioctl(self, fd: int, request: int, arg=0, *, shown_fd: int | None = None) -> int:
        """``ioctl(fd, request, arg)``: ``arg`` is an int or a pointer, as in C: a
        cffi pointer (``gh.ffi.new("struct gunyah_map_mem_args *", {...})``) or a
        user address. Returns the driver's non-negative result (a new fd for the
        CREATE_* and ADD_FUNCTION(VCPU) requests). OSError with the driver's errno:
        ENOTTY for a request the file does not know, EFAULT for a bad pointer,
        EBADF for no open fd. With ``Host.trace`` set, one line per call, which
        names the descriptor ``shown_fd`` if given (a served program's number)."""
        if self.trace is None:
            return self._ioctl(fd, request, arg)
        number = request & 0xFFFF_FFFF if isinstance(request, int) else request
        name = IOCTL_NAMES.get(number, f"{number:#x}" if isinstance(number, int) else "?")
        shown = _shown(number, arg, name)
        user_fd = fd if shown_fd is None else shown_fd
        start = self.trace.start()
        try:
            ret = self._ioctl(fd, request, arg)
        except OSError as e:
            err = errno.errorcode.get(e.errno, e.errno)
            self.trace.emit(f"ioctl({user_fd}, {name}, {shown}) = -1 {err}", name, "ioctl", start)
            raise
        self.trace.emit(f"ioctl({user_fd}, {name}, {shown}) = {ret}", name, "ioctl", start)
        return ret

    def _ioctl(self, fd: int, request: int, arg) -> int:
        _ints(request)
        with self._file(fd) as file:
            return self._call(file.fops.ioctl, file, request & 0xFFFF_FFFF, arg)

    def read(self, fd: int, size: int) -> bytes:
        """At most ``size`` bytes from ``fd``: a /sys/hypervisor attribute gives its
        text, an eventfd its 8-byte count (``os.read``). EINVAL for a size no
        size_t holds. Another file than the kernel model's
        gives at most READ_MAX bytes a call (a short read, which read(2) allows)."""
        _ints(size)
        if not 0 <= size < 1 << 64:
            raise _error(errno.EINVAL, "size")
        if not self.fdtable.holds(_fd(fd)):
            return os.read(fd, min(size, READ_MAX))
        with self._file(fd) as file:
            return self._call(file.fops.read, file, size)

    def write(self, fd: int, data: bytes) -> int:
        """Write ``data`` (any bytes-like object) and return how many bytes were
        taken. Kernel files answer as their driver does (EINVAL where it has no
        write: /dev/gunyah, a VM, a vCPU); other descriptors (an eventfd: 8 bytes of a
        native-endian count) go to ``os.write``."""
        if not self.fdtable.holds(_fd(fd)):
            return os.write(fd, data)
        with self._file(fd) as file:
            return self._call(file.fops.write, file, bytes(data))

    def eventfd(self, initval: int = 0, flags: int = 0) -> int:
        """A real eventfd of the process (``os.EFD_*`` flags); EINVAL for unknown
        flags or an ``initval`` no unsigned int holds."""
        _ints(initval, flags)
        if not 0 <= initval <= 0xFFFF_FFFF or flags & ~EFD_FLAGS:
            raise _error(errno.EINVAL, "initval or flags")
        return os.eventfd(initval, flags)

    def poll(self, fds, timeout_ms: int | None = None) -> list[tuple[int, int]]:
        """``fds`` is a list of (fd, events); returns (fd, revents) pairs that are ready.
        Kernel files without a poll operation are always ready for reading and
        writing (DEFAULT_POLLMASK), as their placeholders are. Each entry gets its
        own revents, as poll(2) gives (one fd may come twice); a negative fd is
        skipped, one that is not open is POLLNVAL. EINVAL for a timeout no C int
        holds."""
        if timeout_ms is not None:
            _ints(timeout_ms)
            if not -INT_MAX - 1 <= timeout_ms <= INT_MAX:
                raise _error(errno.EINVAL, "timeout")
        entries = [(fd, events & 0xFFFF) for fd, events in fds]  # struct pollfd's short
        wanted: dict[int, int] = {}
        for fd, events in entries:
            _ints(fd, events)
            if 0 <= fd <= INT_MAX:
                wanted[fd] = wanted.get(fd, 0) | events
        poller = select.poll()
        for fd, events in wanted.items():
            poller.register(fd, events)
        invalid = any(fd > INT_MAX for fd, _ in entries)
        ready = dict(poller.poll(0 if invalid else timeout_ms))
        always = select.POLLERR | select.POLLHUP | select.POLLNVAL
        revents = [
            (fd, select.POLLNVAL if fd > INT_MAX else ready.get(fd, 0) & (events | always))
            for fd, events in entries
            if fd >= 0
        ]
        return [(fd, r) for fd, r in revents if r]

    def pthread_kill(self, thread: int, sig: int) -> None:
        """Send ``sig`` to ``thread`` (a ``threading.get_ident()`` value); see
        kernel/signal.py. ``sig`` 0 only checks that the thread exists. ESRCH for
        no such thread, EINVAL for no such signal."""
        _ints(thread, sig)
        if not 0 <= sig < signal.NSIG:
            raise _error(errno.EINVAL, "signal")
        if thread not in {t.ident for t in threading.enumerate()}:
            raise _error(errno.ESRCH)
        if sig:
            self.signals.send(thread, sig)

    def mmap(self, fd: int, length: int, prot: int = 3, flags: int = 1, offset: int = 0, at=None):
        """Map a file, or with ``MAP_ANONYMOUS`` (fd ignored) fresh zeroed memory;
        returns an object with the buffer protocol (like mmap.mmap), which is a VMA
        at ``kernel.mmap.user_address(mapping)``. Without PROT_WRITE it is read-only
        (a write raises TypeError, where C would fault); MAP_PRIVATE writes go to
        private copies. EINVAL for a length under 1, an offset that is negative or
        not page aligned, and the ``prot``/``flags`` of ``kernel.mmap.check_mmap``;
        ENOMEM when no RAM is left. ``at``: the user address of the VMA, for a
        server thread (:meth:`serve`) whose process maps :meth:`backing` there."""
        _ints(length, prot, flags, offset)
        if length <= 0 or offset < 0 or offset % PAGE_SIZE:
            raise _error(errno.EINVAL, "length or offset")
        check_mmap(prot, flags)
        if flags & MAP_ANONYMOUS:
            return self._mmap_anonymous(-(-length // PAGE_SIZE) * PAGE_SIZE, prot, at)
        file = self._get(fd)
        try:
            mapping = self._call(file.fops.mmap, file, length, offset, prot, flags)
        except BaseException:
            file.put()
            raise
        self._map(Vma(at or user_address(mapping), length, mapping), file)  # it holds the file
        return mapping

    def _mmap_anonymous(self, size: int, prot: int, at: int | None):
        """Fresh pages of host RAM; private or shared alike, as no file backs them."""
        allocator, firmware = self.drivers.mm, self.drivers.firmware
        pa = allocator.alloc(size)
        err, mapping = firmware.map_ram(pa, size, writable(prot))
        if err:
            allocator.free(pa, size)
            raise _error(errno.ENOMEM, f"host mapping: hypervisor error {err}")
        anon = AnonMemory(allocator.free, pa, size)
        self._map(Vma(at or user_address(mapping), size, mapping, anon, writable(prot)), None)
        return mapping

    @staticmethod
    def backing(mapping) -> tuple[int, int]:
        """(memfd, offset) behind a mapping :meth:`mmap` returned: another process
        mapping that memfd there (MAP_SHARED) shares its pages with the model.
        EINVAL for a mapping no memfd backs."""
        backing = getattr(mapping, "backing", None)
        if backing is None:
            raise _error(errno.EINVAL, "no memfd behind the mapping")
        return backing

    def serve(self, pid: int, files):
        """Context manager: while inside, the calling thread's syscalls are those
        of process ``pid`` (a native program of the same user; a server thread
        makes its calls). User pointers are addresses in ``pid``, descriptors
        inside ioctl arguments are its descriptors (its eventfds; a socket it
        holds for a kernel file, which ``files((st_dev, st_ino))`` names by our
        fd, or None). ESRCH if there is no such process."""
        return uaccess.use_process(pid, files)

    def installs(self):
        """Context manager yielding a list that gets (fd, cloexec) of every
        descriptor the calling thread's syscalls install while inside."""
        return self.fdtable.installs()

    def user_address(self, mapping) -> int:
        """Where ``mapping`` (from :meth:`mmap`) starts in the process: the address C's
        mmap returns. EINVAL for anything mmap did not return."""
        vma, _ = self._mappings.get(id(mapping), (None, None))
        if vma is None or vma.mapping is not mapping:
            raise _error(errno.EINVAL, "not a mapping of this process")
        return vma.start

    def _map(self, vma: Vma, file: File | None) -> None:
        self.mm.insert(vma)
        self._mappings[id(vma.mapping)] = (vma, file)

    def munmap(self, mapping) -> None:
        """Unmap what ``mmap`` returned (the file learns of it, then is released;
        anonymous memory is freed once no page of it is pinned). EINVAL for anything
        else; EBUSY, with nothing changed, while views made from it (memoryviews,
        cffi buffers) are alive, since they would outlive the memory."""
        with self._unmap_lock:
            vma, file = self._mappings.get(id(mapping), (None, None))
            if vma is None or vma.mapping is not mapping:
                raise _error(errno.EINVAL, "not a mapping of this process")
            # Out of the VMA tree before the address is free: another thread's mmap
            # may get it the moment the mapping closes.
            self.mm.remove(vma)
            try:
                mapping.close()
            except BufferError:
                self.mm.insert(vma)
                raise _error(errno.EBUSY, "views of the mapping are alive") from None
            del self._mappings[id(mapping)]
        if vma.anon is not None:
            self.drivers.firmware.unmap_ram(mapping)
            vma.anon.put()
            return
        unmap = getattr(file.fops, "munmap", None)
        if unmap is not None:
            unmap(file, mapping)
        file.put()

    def fallocate(self, fd: int, mode: int, offset: int, length: int) -> None:
        """fallocate(2): the generic checks of ``kernel.fs.vfs_fallocate``, then the
        file's own. A guest_memfd takes ``FALLOC_FL_KEEP_SIZE`` (its size is fixed:
        EOPNOTSUPP without it) with ``FALLOC_FL_PUNCH_HOLE`` (free the pages: they
        read as zeros again) or alone (allocate), on page-aligned ranges (EINVAL
        otherwise). EBADF for no open fd."""
        _ints(mode, offset, length)
        with self._file(fd) as file:
            self._call(vfs_fallocate, file, mode, offset, length)

    def _get(self, fd: int) -> File:
        """The kernel file behind ``fd`` (referenced); ENOTTY-only for other open fds."""
        file = self.fdtable.lookup(_fd(fd))
        if file is not None:
            return file
        try:
            os.fstat(fd)
        except (OSError, ValueError, OverflowError):
            raise _ebadf() from None
        return File(_NOT_OURS, None, "")

    def _file(self, fd: int):
        return _Held(self._get(fd))

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
        self.eventfd_wq.close()
        self.drivers.shutdown()


class _Held:
    """``with`` for a referenced file: the reference is dropped at the end."""

    def __init__(self, file: File):
        self.file = file

    def __enter__(self) -> File:
        return self.file

    def __exit__(self, *exc) -> None:
        self.file.put()
