"""irqfd (drivers/virt/gunyah/gunyah_irqfd.c): an eventfd that rings a doorbell into the guest.

GUNYAH_FN_IRQFD's bind (arg: struct gunyah_fn_irqfd_arg, exactly 16 bytes,
else EINVAL; flags other than LEVEL: EINVAL) takes a reference on the
eventfd (EBADF if ``fd`` is not open, EINVAL if it is not an eventfd) and a
ticket for the BELL_TX resource with the irqfd's label (EEXIST if taken).
The doorbell is the vdevice of the VM config DT whose ``label`` property
is that label; the RM gives it to the host at START.

Every write to the eventfd, from any thread or process, rings the doorbell
(``bell_send`` of flag bit 0); the counter is left alone. Before the VM
has the doorbell (not started, or no vdevice with the label) the write is
dropped and logged, "Premature injection of interrupt"; an eventfd
already readable at bind is logged so too, and that readiness is never
delivered (only later writes ring). Both are warnings (pr_warn): the
host's ``warn`` hook and its trace see them. LEVEL sets the doorbell's masks to enable and
auto-ack bit 0: the guest's level interrupt stays asserted until it
deactivates it. REMOVE_FUNCTION compares the label alone.
"""

from __future__ import annotations

import errno
import threading

from kernel.eventfd import eventfd_ctx_fdget
from kernel.include.linux.gunyah import GunyahResourceType
from uapi.linux import gunyah as gh

ARG = "struct gunyah_fn_irqfd_arg"


def _arg(arg: bytes):
    if len(arg) != gh.ffi.sizeof(ARG):
        raise OSError(errno.EINVAL, "gunyah_fn_irqfd_arg is 16 bytes")
    return gh.ffi.from_buffer(f"{ARG} *", bytearray(arg))


class GunyahIrqfd:
    def __init__(self, vm, label: int, level: bool, ctx):
        self.vm, self.label, self.level, self.ctx = vm, label, level, ctx
        self.resource = None  # the doorbell's send side, once the VM has started
        self._lock = threading.Lock()

    @property
    def key(self) -> tuple[int, int]:
        return (GunyahResourceType.BELL_TX, self.label)

    @property
    def capid(self) -> int | None:
        return self.resource.cap_id if self.resource is not None else None

    # resource ticket
    def populate(self, resource) -> bool:
        with self._lock:
            if self.resource is not None:
                return False
            if self.level:
                err = self.vm.host.gunyah.hcall.gunyah_hypercall_bell_set_mask(
                    resource.cap_id, 1, 1
                )
                if err:
                    self.vm.host.printk(f"irqfd {self.label}: bell_set_mask: Gunyah error {err}")
                    return False
            self.resource = resource
        return True

    def unpopulate(self):
        with self._lock:
            resource, self.resource = self.resource, None
        return resource

    # the eventfd's wait-queue entry
    def wakeup(self) -> None:
        with self._lock:
            capid = self.capid
            if capid is None:
                self.vm.host.printk(f"irqfd {self.label}: Premature injection of interrupt", True)
                self.vm.host.trace_irq(f"irqfd(label={self.label}) = premature, dropped", "irqfd")
                return
            err, _ = self.vm.host.gunyah.hcall.gunyah_hypercall_bell_send(capid, 1)
            self.vm.host.trace_irq(
                f"irqfd(label={self.label}) -> bell_send(capid={capid:#x}) = {err}", "irqfd"
            )
        if err:
            self.vm.host.printk(f"irqfd {self.label}: bell_send: Gunyah error {err}")

    def unbind(self) -> None:
        self.vm.host.eventfd_wq.remove(self.ctx)
        self.vm.remove_ticket(self.key)
        self.ctx.put()


def bind(vm, arg: bytes) -> tuple[int, GunyahIrqfd]:
    args = _arg(arg)
    if args.flags & ~gh.GUNYAH_IRQFD_FLAGS_LEVEL:
        raise OSError(errno.EINVAL, "irqfd flags")
    ctx = eventfd_ctx_fdget(vm.host, args.fd)
    irqfd = GunyahIrqfd(vm, args.label, bool(args.flags & gh.GUNYAH_IRQFD_FLAGS_LEVEL), ctx)
    try:
        vm.add_ticket(irqfd.key, irqfd)
    except OSError:
        ctx.put()
        raise
    if ctx.readable():
        vm.host.printk(f"irqfd {args.label}: Premature injection of interrupt", True)
    vm.host.eventfd_wq.add(ctx, irqfd.wakeup)
    return 0, irqfd


def compare(irqfd: GunyahIrqfd, arg: bytes, profile=None) -> bool:
    return len(arg) == gh.ffi.sizeof(ARG) and _arg(arg).label == irqfd.label
