"""irqfd (drivers/virt/geniezone/gzvm_irqfd.c): an eventfd that raises an SPI of the guest.

GZVM_IRQFD (struct gzvm_irqfd): flags other than DEASSIGN | RESAMPLE, or a
non-zero pad, are EINVAL. Assign takes a reference on the eventfd (EBADF
if ``fd`` is not open, EINVAL if it is not an eventfd) and is EBUSY if
that eventfd is already bound in this VM. Every write to it, from any
thread or process, injects ``gsi`` as an SPI number on vCPU 0 with level
1 (IRQ_LINE; never lowered); an eventfd already readable at assign
injects at once. RESAMPLE is accepted and ``resamplefd`` never used.
Deassign (the eventfd looked up the same way) unbinds what has the same
eventfd and gsi, and is 0 even if nothing matched. The VM's release
unbinds all.
"""

from __future__ import annotations

import errno

from kernel.arch.arm64.geniezone.vgic import gzvm_vgic_inject_irq
from kernel.eventfd import eventfd_ctx_fdget
from kernel.geniezone import gzvm_main
from uapi.linux import gzvm as gz

VALID_FLAGS = gz.GZVM_IRQFD_FLAG_DEASSIGN | gz.GZVM_IRQFD_FLAG_RESAMPLE


class GzvmKernelIrqfd:
    """struct gzvm_kernel_irqfd."""

    def __init__(self, gzvm, gsi: int, ctx):
        self.gzvm, self.gsi, self.ctx = gzvm, gsi, ctx
        self.eventfd_id = ctx.id

    def inject(self) -> None:
        """The eventfd's wait-queue entry: raise the SPI (errors are logged)."""
        try:
            gzvm_vgic_inject_irq(self.gzvm.hvc, self.gzvm.vm_id, 0, self.gsi, True)
            self.gzvm.host.trace_irq(
                f"irqfd(gsi={self.gsi}) -> irq_line(SPI {self.gsi}, 1)", "irqfd"
            )
        except OSError as e:
            self.gzvm.host.printk(f"gzvm irqfd: SPI {self.gsi}: {e.strerror}")

    def shutdown(self) -> None:
        self.gzvm.host.eventfd_wq.remove(self.ctx)
        self.ctx.put()


def gzvm_irqfd(gzvm, args) -> int:
    if args.flags & ~VALID_FLAGS or any(args.pad):
        raise gzvm_main.errno_error(errno.EINVAL, "irqfd flags or pad")
    if args.flags & gz.GZVM_IRQFD_FLAG_DEASSIGN:
        return gzvm_irqfd_deassign(gzvm, args)
    return gzvm_irqfd_assign(gzvm, args)


def gzvm_irqfd_assign(gzvm, args) -> int:
    ctx = eventfd_ctx_fdget(gzvm.host, args.fd)
    irqfd = GzvmKernelIrqfd(gzvm, args.gsi, ctx)
    with gzvm.irqfds_lock:
        if any(other.eventfd_id == irqfd.eventfd_id for other in gzvm.irqfds):
            ctx.put()
            raise gzvm_main.errno_error(errno.EBUSY, "the eventfd is bound in this VM")
        gzvm.irqfds.append(irqfd)
        gzvm.host.eventfd_wq.add(ctx, irqfd.inject)
    if ctx.readable():
        irqfd.inject()
    return 0


def gzvm_irqfd_deassign(gzvm, args) -> int:
    ctx = eventfd_ctx_fdget(gzvm.host, args.fd)
    try:
        eventfd_id = ctx.id
    finally:
        ctx.put()
    with gzvm.irqfds_lock:
        gone = [i for i in gzvm.irqfds if i.eventfd_id == eventfd_id and i.gsi == args.gsi]
        for irqfd in gone:
            gzvm.irqfds.remove(irqfd)
            irqfd.shutdown()
    gzvm.host.eventfd_wq.quiesce()  # flush: no injection of it runs after we return
    return 0


def gzvm_vm_irqfd_release(gzvm) -> None:
    with gzvm.irqfds_lock:
        irqfds, gzvm.irqfds = gzvm.irqfds, []
    for irqfd in irqfds:
        irqfd.shutdown()
    gzvm.host.eventfd_wq.quiesce()
