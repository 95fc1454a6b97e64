"""The server side of preload.c: a native program's device calls, made on a Host.

:class:`Server` owns a booted Host and serves one program (and the
children it forks). Each program thread's channel gets a Python thread
that makes its calls (``Host.serve``: user memory and user descriptors are
the program's), so to the model that thread *is* the program's thread:
VCPU_RUN blocks it, a signal interrupts it. A model file is a socket pair:
the program holds one end as its descriptor, the server watches the other
and closes the file when it hangs up (the last close, exec with CLOEXEC,
death). Every model mapping is a memfd the program maps itself; memory the
program allocated on its own and names in an ioctl is adopted (the model
maps its anonymous memory there, contents kept).
"""

from __future__ import annotations

import array
import contextlib
import errno
import mmap
import os
import select
import signal
import socket
import threading
from dataclasses import dataclass, field

from vmm.native import preload as wire

PAGE_SIZE = mmap.PAGESIZE
INTERRUPT_SIGNAL = signal.SIGUSR1  # what the model is told; the program's own signal ran already


def _send(sock: socket.socket, data: bytes, fd: int | None = None) -> None:
    fds = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
    with contextlib.suppress(OSError):  # the program is gone: its teardown follows
        sock.sendmsg([data], fds, socket.MSG_NOSIGNAL)


def _recv(sock: socket.socket, size: int) -> tuple[bytes, int | None]:
    """One message and the descriptor it carries (or None); b"" at hang-up."""
    try:
        data, anc, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
    except OSError:
        return b"", None
    fd = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fd = array.array("i", payload[:4])[0]
    return data, fd


def _reply(ret: int = 0, err: int = 0, values=(0, 0, 0, 0), kind=wire.REPLY_DONE) -> bytes:
    return wire.REPLY.pack(ret, err, kind, *values)


@dataclass(eq=False)
class ModelFile:
    """A kernel file (our ``fd``) and the socket end we watch for its hang-up."""

    fd: int
    sock: socket.socket
    key: tuple[int, int]  # (st_dev, st_ino) of the program's end


@dataclass(eq=False)
class Channel:
    """One program thread's connection, served by one of our threads."""

    pid: int
    tid: int
    sock: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    inflight: int | None = None  # lock: the seq of the request being served
    ident: int | None = None  # our serving thread
    thread: threading.Thread | None = None


class Server:
    """Serves the program at the other end of :attr:`program_end` (its control
    socket) against ``host``, whose device is ``device``. :meth:`start`, then
    :meth:`stop` once the program is gone."""

    def __init__(self, host, device: str):
        self.host, self.device = host, device
        self.control, self.program_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.files: dict[int, ModelFile] = {}  # lock: by our fd
        self.by_key: dict[tuple[int, int], int] = {}  # lock: program end -> our fd
        self.mappings: dict[int, object] = {}  # lock: program address -> Host mapping
        self.channels: dict[tuple[int, int], Channel] = {}  # lock: by (pid, tid)
        self.lock = threading.RLock()
        self.adopt_lock = threading.Lock()  # one adoption at a time (see _adopt)
        self.local = threading.local()  # .channel: the one the calling thread serves
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.stopping = False
        self.refused: str | None = None  # why the program's memory is out of our reach
        self.watcher = threading.Thread(target=self._watch, name="native-watch", daemon=True)
        host.mm.fault = self._adopt
        if host.gunyah is not None:
            host.drivers.firmware.revoked = self._revoke

    def start(self) -> None:
        self.program_end.close()  # the program has its copy
        self.watcher.start()

    # ---------------------------------------------------------------- watcher

    def _watch(self) -> None:
        """Control messages, and hang-ups of model files, until :meth:`stop`."""
        while not self.stopping:
            poller = select.poll()
            poller.register(self.control, select.POLLIN)
            poller.register(self.wake_r, select.POLLIN)
            with self.lock:
                for file in self.files.values():
                    poller.register(file.sock, select.POLLIN)
            for fd, _ in poller.poll():
                if fd == self.wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 512)
                elif fd == self.control.fileno():
                    self._control()
            self.reap()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self.wake_w, b"w")

    def _control(self) -> None:
        data, fd = _recv(self.control, wire.CTL.size)
        if len(data) != wire.CTL.size:
            if fd is not None:
                os.close(fd)
            if not data:  # every program process is gone
                self.stopping = True
            return
        op, _, pid, tid, seq = wire.CTL.unpack(data)
        if op == wire.CTL_HELLO and fd is not None:
            self._connect(pid, tid, socket.socket(fileno=fd))
        elif op == wire.CTL_INTR:
            with self.lock:
                channel = self.channels.get((pid, tid))
            if channel is not None:
                self._interrupt(channel, seq)
        elif fd is not None:
            os.close(fd)

    def _connect(self, pid: int, tid: int, sock: socket.socket) -> None:
        channel = Channel(pid, tid, sock)
        channel.thread = threading.Thread(
            target=self._serve, args=(channel,), name=f"native-{pid}-{tid}", daemon=True
        )
        with self.lock:
            old = self.channels.pop((pid, tid), None)
            self.channels[(pid, tid)] = channel
        if old is not None:  # the thread forked, or its id was reused
            old.sock.close()
        channel.thread.start()

    def _interrupt(self, channel: Channel, seq: int) -> None:
        """The program's thread took a signal during request ``seq``: if the model
        still serves it, the serving thread gets a signal too."""
        with channel.lock:
            if channel.inflight == seq and channel.ident is not None:
                self.host.pthread_kill(channel.ident, INTERRUPT_SIGNAL)

    def reap(self) -> None:
        """Close every model file whose program end is gone (its last descriptor)."""
        with self.lock:
            files = list(self.files.values())
        if not files:
            return
        poller = select.poll()
        for file in files:
            poller.register(file.sock, select.POLLIN)
        ready = dict(poller.poll(0))
        for file in files:
            events = ready.get(file.sock.fileno(), 0)
            if events & (select.POLLHUP | select.POLLERR):
                self._release(file)
            elif events & select.POLLIN:  # a raw write(2) the preload never saw: dropped
                with contextlib.suppress(OSError):
                    file.sock.recv(65536, socket.MSG_DONTWAIT)

    def _release(self, file: ModelFile) -> None:
        with self.lock:
            if self.files.pop(file.fd, None) is None:
                return
            del self.by_key[file.key]
        file.sock.close()
        with contextlib.suppress(OSError):
            self.host.close(file.fd)

    # ---------------------------------------------------------------- serving

    def _serve(self, channel: Channel) -> None:
        channel.ident = threading.get_ident()
        self.local.channel = channel
        try:
            with self.host.serve(channel.pid, self._file_of):
                while True:
                    data, fd = _recv(channel.sock, wire.REQUEST.size + wire.DATA_MAX)
                    if fd is not None:
                        os.close(fd)
                    if len(data) < wire.REQUEST.size:
                        return
                    op, seq, *args = wire.REQUEST.unpack_from(data)
                    self.reap()
                    reply, fd = self._request(channel, op, seq, args, data)
                    _send(channel.sock, reply, fd)
                    if isinstance(fd, _Closing):
                        os.close(fd)
        except PermissionError as e:
            self.refused = e.strerror
            with contextlib.suppress(OSError):
                os.kill(channel.pid, signal.SIGKILL)  # it cannot be served at all
        except ProcessLookupError:
            return
        finally:
            channel.sock.close()
            with self.lock:
                if self.channels.get((channel.pid, channel.tid)) is channel:
                    del self.channels[(channel.pid, channel.tid)]

    def _request(self, channel: Channel, op: int, seq: int, args, data: bytes):
        """(reply, descriptor to send or None) for one request."""
        with channel.lock:
            channel.inflight = seq
        try:
            return self._call(op, args, data[wire.REQUEST.size :])
        except OSError as e:
            return _reply(-1, e.errno or errno.EIO), None
        finally:
            with channel.lock:
                channel.inflight = None
                if self.host.signals.pending():  # no stale signal outlives its request
                    self.host.signals.deliver()

    def _call(self, op: int, args, data: bytes):
        if op == wire.OP_OPEN:
            return self._new_file(self.host.open(self.device, args[0]), True)
        if op == wire.OP_CLOSE:
            return _reply(), None
        if op == wire.OP_LOOKUP:
            return _reply(self._received(args[0], args[1])), None
        if op == wire.OP_MUNMAP:
            self._munmap(args[0])
            return _reply(), None
        fd = self._model_fd(args[0])
        if op == wire.OP_IOCTL:
            return self._ioctl(fd, args[1], args[2], args[3])
        if op == wire.OP_MMAP:
            return self._mmap(fd, *args[1:])
        if op == wire.OP_READ:
            text = self.host.read(fd, args[1])
            return _reply(len(text)) + text, None
        if op == wire.OP_WRITE:
            return _reply(self.host.write(fd, data[: args[1]])), None
        if op == wire.OP_FALLOCATE:
            self.host.fallocate(fd, *args[1:4])
            return _reply(), None
        if op == wire.OP_POLL:
            ready = self.host.poll([(fd, args[1])], 0)
            return _reply(ready[0][1] if ready else 0), None
        raise OSError(errno.EINVAL, "unknown request")

    def _model_fd(self, fd: int) -> int:
        with self.lock:
            if fd not in self.files:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return fd

    def _received(self, dev: int, ino: int) -> int:
        """Our fd for the program's socket (``dev``, ``ino``) (a model fd it got
        over a unix socket); ENOENT if it is none of ours."""
        fd = self._file_of((dev & (1 << 64) - 1, ino & (1 << 64) - 1))
        if fd is None:
            raise OSError(errno.ENOENT, "not a model file")
        return fd

    def _file_of(self, key: tuple[int, int]) -> int | None:
        with self.lock:
            return self.by_key.get(key)

    def _new_file(self, fd: int, cloexec: bool):
        """A socket pair for our new kernel file ``fd``: (reply, the program's end)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        st = os.fstat(theirs.fileno())
        file = ModelFile(fd, ours, (st.st_dev, st.st_ino))
        with self.lock:
            self.files[fd] = file
            self.by_key[file.key] = fd
        self._wake()
        return _reply(fd, 0, (0, int(cloexec), 0, 0)), _Closing(theirs.detach())

    def _ioctl(self, fd: int, request: int, arg: int, user_fd: int):
        with self.host.installs() as new:
            ret = self.host.ioctl(fd, request, arg, shown_fd=user_fd)
        installed = dict(new)
        if ret in installed:
            return self._new_file(ret, installed[ret])
        return _reply(ret), None

    def _mmap(self, fd: int, where: int, length: int, prot: int, flags: int, offset: int):
        mapping = self.host.mmap(fd, length, prot, flags, offset, at=where)
        try:
            memfd, moffset = self.host.backing(mapping)
        except OSError:
            self.host.munmap(mapping)
            raise
        with self.lock:
            self.mappings[where] = mapping
        return _reply(0, 0, (moffset, 0, 0, 0)), memfd

    def _munmap(self, where: int) -> None:
        with self.lock:
            mapping = self.mappings.pop(where, None)
        if mapping is not None:
            self.host.munmap(mapping)

    def _adopt(self, addr: int, length: int) -> bool:
        """The model found no mapping at ``addr`` (of the ``length`` bytes a driver
        wants): make the program's own VMAs there the model's, each whole, with its
        protection (anonymous memory of the model, with the program's bytes, mapped
        shared over the same range), so a driver sees the VMA the program's kernel
        has. Only anonymous, accessible VMAs are adopted, from the one holding
        ``addr`` up to the first gap or other VMA; False if not even that one (no
        VMA there, a file's mapping, PROT_NONE), or if this thread serves no program."""
        channel = getattr(self.local, "channel", None)
        if channel is None or length <= 0:
            return False
        # One adoption at a time: two threads naming neighbouring ranges of one
        # merged VMA would each adopt it, and the later finds its range taken.
        with self.adopt_lock:
            if self.host.mm.holes(addr, addr + 1) != [(addr, 1)]:
                return True  # another thread adopted it while this one waited
            return self._adopt_run(channel, addr, length)

    def _adopt_run(self, channel: Channel, addr: int, length: int) -> bool:
        adopted = addr
        for start, end, prot in _anonymous_vmas(channel.pid, addr, addr + length):
            if start > adopted or self.host.mm.holes(start, end) != [(start, end - start)]:
                break
            if not self._adopt_vma(channel, start, end - start, prot):
                break
            adopted = end
        return adopted > addr

    def _adopt_vma(self, channel: Channel, start: int, length: int, prot: int) -> bool:
        try:
            mapping = self.host.mmap(-1, length, prot, mmap.MAP_SHARED | 0x20, 0, at=start)
        except OSError:
            return False
        memfd, offset = self.host.backing(mapping)
        _send(channel.sock, _reply(0, 0, (prot, start, length, offset), wire.REPLY_MAPFIX), memfd)
        data, fd = _recv(channel.sock, wire.REQUEST.size)
        if fd is not None:
            os.close(fd)
        if len(data) != wire.REQUEST.size or wire.REQUEST.unpack(data)[2] != 0:
            self.host.munmap(mapping)
            return False
        with self.lock:
            self.mappings[start] = mapping
        return True

    def _revoke(self, mapping, offset: int, length: int) -> None:
        """The host lost [offset, offset+length) of ``mapping`` (lent to a VM; the
        model's view reads zeros): if it is memory we adopted, the program's view
        becomes zeroed private pages too, before the call that lent it returns.
        Only a thread serving the program can tell it; the program's own failure
        to remap leaves nothing for us to undo."""
        channel = getattr(self.local, "channel", None)
        with self.lock:
            addr = next((a for a, m in self.mappings.items() if m is mapping), None)
        if channel is None or addr is None:
            return
        reply = _reply(0, 0, (0, addr + offset, length, 0), wire.REPLY_REVOKE)
        _send(channel.sock, reply)
        _, fd = _recv(channel.sock, wire.REQUEST.size)
        if fd is not None:
            os.close(fd)

    # ---------------------------------------------------------------- teardown

    def stop(self, timeout: float = 10.0) -> None:
        """The program is gone: end every serving thread (a VCPU_RUN still in the
        model is interrupted), then unmap and close all it left."""
        with self.lock:
            channels = list(self.channels.values())
        for channel in channels:
            with contextlib.suppress(OSError):
                channel.sock.shutdown(socket.SHUT_RDWR)
            while channel.thread.is_alive():
                with channel.lock, contextlib.suppress(OSError):
                    if channel.inflight is not None and channel.ident is not None:
                        self.host.pthread_kill(channel.ident, INTERRUPT_SIGNAL)
                channel.thread.join(0.05)
        self.stopping = True
        self._wake()
        self.program_end.close()  # if the program never started
        if self.watcher.ident is not None:
            self.watcher.join(timeout)
        with self.lock:
            mappings, self.mappings = list(self.mappings.values()), {}
            files = list(self.files.values())
        for mapping in mappings:
            with contextlib.suppress(OSError):
                self.host.munmap(mapping)
        for file in files:
            self._release(file)
        self.host.mm.fault = None
        if self.host.gunyah is not None:
            self.host.drivers.firmware.revoked = None
        self.control.close()
        os.close(self.wake_r)
        os.close(self.wake_w)


def _anonymous_vmas(pid: int, addr: int, end: int) -> list[tuple[int, int, int]]:
    """(start, end, prot) of each VMA of process ``pid`` that overlaps [addr, end),
    in order, up to the first that is neither anonymous memory nor a shared
    mapping of shared memory (a memfd, SysV or POSIX shm) or has no access: a
    file's mapping, the stack, the vDSO."""
    vmas = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, stop = (int(x, 16) for x in fields[0].split("-"))
            if stop <= addr or start >= end:
                continue
            path = fields[5].strip() if len(fields) > 5 else ""
            perms = fields[1]
            prot = sum(bit for flag, bit in zip(perms[:3], _PROT_BITS, strict=True) if flag != "-")
            anonymous = not int(fields[4]) and (path in ("", "[heap]") or path.startswith("[anon:"))
            shared_memory = perms[3] == "s" and path.startswith(_SHARED_MEMORY)
            if not prot or not (anonymous or shared_memory):
                break
            vmas.append((start, stop, prot))
    return vmas


_PROT_BITS = (mmap.PROT_READ, mmap.PROT_WRITE, mmap.PROT_EXEC)
_SHARED_MEMORY = ("/dev/zero", "/memfd:", "/SYSV", "/dev/shm/")  # as /proc/PID/maps names them


class _Closing(int):
    """A descriptor to send that we close after sending (the program keeps its own)."""
