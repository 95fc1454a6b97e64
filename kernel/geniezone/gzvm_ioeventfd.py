"""ioeventfd (drivers/virt/geniezone/gzvm_ioeventfd.c): a guest MMIO write that signals an eventfd.

GZVM_IOEVENTFD (struct gzvm_ioeventfd) is EINVAL unless len is 0, 1, 2, 4
or 8, addr + len does not overflow, flags are within DATAMATCH | PIO |
DEASSIGN, DATAMATCH comes with a length, and PIO is not set. The eventfd
is looked up (EBADF if not open, EINVAL if not an eventfd). Assign is
EEXIST if an entry has the same addr and either has len 0, or the same
len and either is a wildcard or the datamatch values are equal, or if
addr falls inside an entry's range. Deassign needs the same eventfd,
addr, len, wildcard-ness and (for DATAMATCH) datamatch, else ENOENT.

Only guest MMIO writes are matched, inside GZVM_RUN: the exact address,
any length for len 0, else the same length and, with DATAMATCH, the same
value; a match signals the eventfd and the guest goes on without an exit
to userspace.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from kernel.eventfd import eventfd_ctx_fdget
from kernel.geniezone import gzvm_main
from uapi.linux import gzvm as gz


@dataclass(eq=False)
class GzvmIoevent:
    """struct gzvm_ioevent."""

    addr: int
    len: int
    datamatch: int
    wildcard: bool
    ctx: object

    def in_range(self, addr: int, size: int, value: int) -> bool:
        if addr != self.addr:
            return False
        if not self.len:
            return True
        if size != self.len:
            return False
        return self.wildcard or value == self.datamatch

    def collides(self, other: GzvmIoevent) -> bool:
        if other.addr == self.addr and (
            not other.len
            or not self.len
            or (
                other.len == self.len
                and (other.wildcard or self.wildcard or other.datamatch == self.datamatch)
            )
        ):
            return True
        return other.addr <= self.addr < other.addr + other.len


def gzvm_ioeventfd_check_valid(args) -> None:
    if args.len not in (0, 1, 2, 4, 8):
        raise gzvm_main.errno_error(errno.EINVAL, "ioeventfd len")
    if args.addr + args.len >= 1 << 64:
        raise gzvm_main.errno_error(errno.EINVAL, "ioeventfd range wraps")
    if args.flags & ~gz.GZVM_IOEVENTFD_VALID_FLAG_MASK:
        raise gzvm_main.errno_error(errno.EINVAL, "ioeventfd flags")
    if args.flags & gz.GZVM_IOEVENTFD_FLAG_DATAMATCH and not args.len:
        raise gzvm_main.errno_error(errno.EINVAL, "DATAMATCH needs a length")
    if args.flags & gz.GZVM_IOEVENTFD_FLAG_PIO:
        raise gzvm_main.errno_error(errno.EINVAL, "no port I/O on arm64")


def gzvm_ioeventfd(gzvm, args) -> int:
    gzvm_ioeventfd_check_valid(args)
    if args.flags & gz.GZVM_IOEVENTFD_FLAG_DEASSIGN:
        return gzvm_ioeventfd_deassign(gzvm, args)
    return gzvm_ioeventfd_assign(gzvm, args)


def _ioevent(args, ctx) -> GzvmIoevent:
    wildcard = not args.flags & gz.GZVM_IOEVENTFD_FLAG_DATAMATCH
    return GzvmIoevent(args.addr, args.len, 0 if wildcard else args.datamatch, wildcard, ctx)


def gzvm_ioeventfd_assign(gzvm, args) -> int:
    ioevent = _ioevent(args, eventfd_ctx_fdget(gzvm.host, args.fd))
    with gzvm.ioevent_lock:
        if not any(ioevent.collides(other) for other in gzvm.ioevents):
            gzvm.ioevents.append(ioevent)
            return 0
    ioevent.ctx.put()
    raise gzvm_main.errno_error(errno.EEXIST, "an ioeventfd there exists")


def gzvm_ioeventfd_deassign(gzvm, args) -> int:
    wanted = _ioevent(args, eventfd_ctx_fdget(gzvm.host, args.fd))
    try:
        eventfd_id = wanted.ctx.id
    finally:
        wanted.ctx.put()
    with gzvm.ioevent_lock:
        for ioevent in gzvm.ioevents:
            if (ioevent.ctx.id, ioevent.addr, ioevent.len, ioevent.wildcard) != (
                eventfd_id,
                wanted.addr,
                wanted.len,
                wanted.wildcard,
            ):
                continue
            if not ioevent.wildcard and ioevent.datamatch != wanted.datamatch:
                continue
            gzvm.ioevents.remove(ioevent)
            ioevent.ctx.put()  # under the lock: no write signals it any more
            return 0
    raise gzvm_main.errno_error(errno.ENOENT, "no such ioeventfd")


def gzvm_ioevent_write(gzvm, addr: int, size: int, value: int) -> bool:
    """Signal the eventfd of the first entry matching a guest write; False if none."""
    with gzvm.ioevent_lock:
        for ioevent in gzvm.ioevents:
            if ioevent.in_range(addr, size, value):
                ioevent.ctx.signal(1)
                gzvm.host.trace_irq(
                    f"ioeventfd(addr={addr:#x}, len={size}, value={value:#x}) -> eventfd signalled",
                    "ioeventfd",
                )
                return True
    return False


def gzvm_vm_ioeventfd_release(gzvm) -> None:
    with gzvm.ioevent_lock:
        ioevents, gzvm.ioevents = gzvm.ioevents, []
    for ioevent in ioevents:
        ioevent.ctx.put()
