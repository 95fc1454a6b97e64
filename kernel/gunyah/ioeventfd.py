"""ioeventfd (drivers/virt/gunyah/gunyah_ioeventfd.c): guest MMIO writes that signal an eventfd.

GUNYAH_FN_IOEVENTFD's bind (arg: struct gunyah_fn_ioeventfd_arg, exactly 32
bytes, else EINVAL) checks flags (only DATAMATCH), ``len`` (0, 1, 2, 4 or
8), that ``addr + len`` does not wrap, and that DATAMATCH has a length
(all EINVAL), then takes a reference on the eventfd (EBADF, EINVAL) and
registers an IO handler of the VM (EEXIST if it collides with one).

Without DATAMATCH the length is stored as 0, which matches a write of any
length at exactly ``addr``; with DATAMATCH only a write of that length and
value matches. Two handlers collide at the same address when either has
length 0, or when their lengths are equal and their values are or one of
them has no DATAMATCH. A matching
write adds 1 to the eventfd and the vCPU goes on with no exit to
userspace; reads never match. REMOVE_FUNCTION compares addr, len and
flags as given to ADD (not the stored length) and, with DATAMATCH, the value;
android14-6.1 compares the address alone.
"""

from __future__ import annotations

import errno

from kernel.eventfd import eventfd_ctx_fdget
from uapi.linux import gunyah as gh

ARG = "struct gunyah_fn_ioeventfd_arg"
DATAMATCH = gh.GUNYAH_IOEVENTFD_FLAGS_DATAMATCH


def _arg(arg: bytes):
    if len(arg) != gh.ffi.sizeof(ARG):
        raise OSError(errno.EINVAL, "gunyah_fn_ioeventfd_arg is 32 bytes")
    return gh.ffi.from_buffer(f"{ARG} *", bytearray(arg))


class GunyahIoeventfd:
    def __init__(self, vm, args, ctx):
        self.vm, self.ctx = vm, ctx
        self.datamatch = bool(args.flags & DATAMATCH)
        self.addr, self.flags, self.data = args.addr, args.flags, args.datamatch
        self.arg_len = args.len  # as given, for REMOVE_FUNCTION
        self.len = args.len if self.datamatch else 0  # 0 matches a write of any length
        if not self.datamatch:
            self.data = 0

    def collides(self, other: GunyahIoeventfd) -> bool:
        """The handler tree's equality: the same address and either length 0 (any
        length), or the same length and either one without DATAMATCH or the
        same value."""
        if self.addr != other.addr:
            return False
        if not self.len or not other.len:
            return True
        if self.len != other.len:
            return False
        return self.datamatch != other.datamatch or self.data == other.data

    def matches(self, addr: int, size: int, value: int) -> bool:
        if addr != self.addr:
            return False
        if not self.datamatch:
            return self.len == 0 or self.len == size
        return size == self.len and value == self.data

    def write(self, addr: int, size: int, value: int) -> None:
        self.ctx.signal(1)
        self.vm.host.trace_irq(
            f"ioeventfd(addr={addr:#x}, len={size}, value={value:#x}) -> eventfd signalled",
            "ioeventfd",
        )

    def unbind(self) -> None:
        with self.vm.mmio_handler_lock:
            self.vm.io_handler_list.remove(self)
        self.ctx.put()


def bind(vm, arg: bytes) -> tuple[int, GunyahIoeventfd]:
    args = _arg(arg)
    if args.flags & ~DATAMATCH:
        raise OSError(errno.EINVAL, "ioeventfd flags")
    if args.len not in (0, 1, 2, 4, 8):
        raise OSError(errno.EINVAL, "ioeventfd len")
    if args.addr + args.len >= 1 << 64:
        raise OSError(errno.EINVAL, "ioeventfd range wraps")
    if args.flags & DATAMATCH and args.len == 0:
        raise OSError(errno.EINVAL, "DATAMATCH needs a length")
    ctx = eventfd_ctx_fdget(vm.host, args.fd)
    handler = GunyahIoeventfd(vm, args, ctx)
    with vm.mmio_handler_lock:
        if not any(h.collides(handler) for h in vm.io_handler_list):
            vm.io_handler_list.append(handler)
            return 0, handler
    ctx.put()
    raise OSError(errno.EEXIST, "an ioeventfd with that key exists")


def compare(handler: GunyahIoeventfd, arg: bytes, profile=None) -> bool:
    """REMOVE_FUNCTION's match; android14-6.1 (``profile.ioeventfd_key_addr``)
    compares the address alone."""
    if len(arg) != gh.ffi.sizeof(ARG):
        return False
    args = _arg(arg)
    if profile is not None and profile.ioeventfd_key_addr:
        return args.addr == handler.addr
    if (args.addr, args.len, args.flags) != (handler.addr, handler.arg_len, handler.flags):
        return False
    return not handler.datamatch or args.datamatch == handler.data
