"""User-memory bindings of the android15-6.6 driver (its drivers/virt/gunyah/vm_mgr_mem.c).

GH_VM_SET_USER_MEM_REGION (shared) and GH_VM_ANDROID_LEND_USER_MEM (lent)
only record a binding {gpa, size, userspace_addr, flags, label}: nothing
is pinned and the RM is not told. Checks, in order: flags other than
R/W/X (EINVAL), size 0 or an unaligned size or address (EINVAL), a guest
range that wraps (EOVERFLOW), a range overlapping any binding (EEXIST).
Labels are not checked.

A page is given to the guest at its first touch (demand paging, inside
VCPU_RUN): the user page at ``userspace_addr + (gpa - binding gpa)`` is
pinned (EFAULT: not mapped or not anonymous memory), a lent page leaves the
host's stage 2 (the VMM's mapping reads zeros there from then on), and it is
donated and mapped with the rights of the table below (EXEC is ignored). A
write to a binding without WRITE is EPERM, an address with no binding
ENOENT. Reclaim (GH_VM_RECLAIM_REGION, teardown) unmaps, takes the page
back, gives a lent one back to the host's stage 2 (the VMM's mapping shows
the page again) and unpins it; the binding stays, so a later touch faults
in the page the host has then.

=========  ===========  ===========
binding    WRITE set    WRITE clear
=========  ===========  ===========
share      RW           R
lend       RWX          RX
=========  ===========  ===========

At VM_START the DTB pages (and a protected VM's firmware) are pinned whole
and handed over as parcels (:func:`gunyah_share_parcel`); afterwards those
pages are tracked one by one like demand-paged ones.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah import vm_mgr_mem
from kernel.gunyah.rsc_mgr_h import GunyahRmAcl
from kernel.gunyah.vm_mgr_mm import acl_rights, check_region, page_runs
from kernel.include.linux.gunyah import GunyahPagetableAccess as Access
from kernel.mm import PAGE_SIZE
from uapi.linux import gunyah_ack as ack


@dataclass(eq=False)
class GunyahVmBinding:
    """struct gunyah_vm_binding of user memory."""

    gfn: int
    nr: int
    uaddr: int
    flags: int
    lend: bool
    label: int

    @property
    def end(self) -> int:
        return self.gfn + self.nr

    @property
    def share(self) -> bool:
        return not self.lend

    @property
    def writable(self) -> bool:
        return bool(self.flags & ack.GH_MEM_ALLOW_WRITE)

    def uaddr_of(self, gfn: int) -> int:
        return self.uaddr + (gfn - self.gfn) * PAGE_SIZE

    def access(self) -> int:
        if self.share:
            return Access.RW if self.writable else Access.R
        return Access.RWX if self.writable else Access.RX


@dataclass(eq=False)
class PinnedUserPages:
    """The owner of demand-paged user pages: reclaim gives a lent page back to
    the host's stage 2 (the VMM's mapping is the page again) and unpins it;
    pages the hypervisor will not give back stay pinned (leaked)."""

    mm: object
    firmware: object
    pa: int = 0  # user pages are addressed by physical address, not by offset
    leaked: list = field(default_factory=list)

    def reclaimed(self, pa: int, length: int) -> None:
        self.firmware.restore_host_access(pa, length)
        for page in range(pa, pa + length, PAGE_SIZE):
            self.mm.unpin_user_page(page)

    def leak(self, offset: int, length: int) -> None:
        self.leaked.append((offset, length))


def gunyah_vm_binding_alloc(vm, region, lend: bool) -> int:
    """SET_USER_MEM_REGION / LEND_USER_MEM on android15-6.6 (checks: module doc)."""
    check_region(region)
    gfn, nr = region.guest_phys_addr // PAGE_SIZE, region.memory_size // PAGE_SIZE
    with vm.bindings_lock:
        if any(gfn < b.end and b.gfn < gfn + nr for b in vm.user_bindings):
            raise OSError(errno.EEXIST, "guest range overlaps a binding")
        binding = GunyahVmBinding(gfn, nr, region.userspace_addr, region.flags, lend, region.label)
        vm.user_bindings.append(binding)
    # Not the driver's (it looks at nothing here), and without effect on what the
    # ioctl returns: the range, looked up whole, is what an mm fault hook (a native
    # program's server) adopts at once rather than page by page at first touch.
    vm.host.mm.vma_lookup(region.userspace_addr, region.memory_size)
    return 0


def find_binding(vm, gfn: int) -> GunyahVmBinding | None:
    return next((b for b in vm.user_bindings if b.gfn <= gfn < b.end), None)


def gunyah_demand_page(vm, gpa: int, write: bool) -> int:
    """The user page behind ``gpa`` goes to the guest: 0, or a negative errno
    (ENOENT: no binding; EPERM: a write to a binding without WRITE; EFAULT: the
    user page cannot be pinned; EAGAIN: already provided)."""
    gfn = gpa // PAGE_SIZE
    with vm.bindings_lock:
        b = find_binding(vm, gfn)
        if b is None:
            return -errno.ENOENT
        if write and not b.writable:
            return -errno.EPERM
        if gfn in vm.provided:
            return -errno.EAGAIN
        try:
            (pa,) = vm.host.mm.pin_user_pages(b.uaddr_of(gfn), 1, b.writable)
        except OSError as e:
            return -e.errno
        if b.lend:
            vm.host.gunyah.firmware.revoke_host_access(pa, PAGE_SIZE)
        ret = vm_mgr_mem.gunyah_vm_provide_folio(vm, gfn, 1, pa, b.share, b.access(), vm.user_pages)
        if ret:
            vm.host.mm.unpin_user_page(pa)
        return ret


def gunyah_vm_reclaim_range(vm, gpa: int, size: int) -> int:
    """GH_VM_RECLAIM_REGION: every page of [gpa, gpa+size) given to the guest comes
    back and is unpinned (0 when none was); EINVAL for an unaligned range."""
    if (gpa | size) % PAGE_SIZE:
        raise OSError(errno.EINVAL, "range not page aligned")
    with vm.bindings_lock:
        if vm.tickets.get(vm_mgr_mem.ADDR_SPACE) is not None:
            vm_mgr_mem.reclaim_range(vm, gpa // PAGE_SIZE, (gpa + size) // PAGE_SIZE)
    return 0


@dataclass(eq=False)
class UserParcel:
    """A parcel of pinned user pages handed to the RM at VM_START."""

    binding: GunyahVmBinding
    gfn: int
    pages: list[int]
    parcel: rpc.GunyahRmMemParcel
    taken: bool = False  # the VM took it (CONFIG_IMAGE): its reset gives the pages back


def gunyah_share_parcel(vm, gpa: int, size: int) -> UserParcel:
    """The pages of [gpa, gpa+size) as an RM parcel: EINVAL under a page, ENOENT
    without a binding at the first page, EFAULT if a page cannot be pinned. Lent
    (MEM_LEND, the host's stage 2 loses them first) when the ACL has one entry,
    shared (with the binding's label) otherwise."""
    gfn, nr = gpa // PAGE_SIZE, size // PAGE_SIZE
    if nr == 0:
        raise OSError(errno.EINVAL, "parcel smaller than a page")
    b = find_binding(vm, gfn)
    if b is None:
        raise OSError(errno.ENOENT, "no binding at the parcel's first page")
    pages = vm.host.mm.pin_user_pages(b.uaddr_of(gfn), nr, b.writable)
    acl = [(vm.vmid, acl_rights(b.flags))]
    if b.share:
        acl.append((rpc.gunyah_rm_get_vmid(vm.rm), GunyahRmAcl.RWX))
    user = UserParcel(b, gfn, pages, rpc.GunyahRmMemParcel(acl, page_runs(pages)))
    if b.share:
        user.parcel.label = b.label
    else:
        for pa, length in user.parcel.mem_entries:
            vm.host.gunyah.firmware.revoke_host_access(pa, length)
    try:
        rpc.gunyah_rm_mem_share(vm.rm, user.parcel)
    except OSError:
        unpin(vm, user)
        raise
    return user


def unpin(vm, user: UserParcel) -> None:
    for pa in user.pages:
        vm.host.mm.unpin_user_page(pa)
    user.pages = []


def gunyah_parcel_to_paged(vm, user: UserParcel) -> None:
    """After VM_START a parcel's pages are tracked one by one, as demand-paged
    pages (their pins go with them): reclaim takes them back by hypercall."""
    b = user.binding
    with vm.bindings_lock:
        for i, pa in enumerate(user.pages):
            vm.provided[user.gfn + i] = vm_mgr_mem.Folio(pa, b.share, 1, b.access(), vm.user_pages)
    user.pages = []
