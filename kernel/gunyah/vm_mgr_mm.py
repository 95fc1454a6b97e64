"""User memory regions of the android14-6.1 driver (drivers/virt/gunyah/vm_mgr_mm.c).

GH_VM_SET_USER_MEM_REGION and GH_VM_ANDROID_LEND_USER_MEM (one handler;
LEND only marks the region lent) take the VMM's own memory at
``userspace_addr``: every page is pinned at once and a parcel is described
(runs of physically contiguous pages; ACL entry 0 the guest with the
region's rights, filled with its VMID at start; a shared region adds the
host with RWX). Nothing reaches the RM before VM_START, which lends or
shares every region, newest first. A lent region leaves the host's stage 2
then: its pages read as zeros through the VMM's mapping from that moment.
At teardown each parcel is reclaimed (MEM_RECLAIM) and unpinned; a parcel
the RM will not give back stays pinned for good.

Checks, in the driver's order: flags other than R/W/X (EINVAL), a size of 0
or an unaligned size, user or guest address (EINVAL), a guest range that
wraps (EOVERFLOW), a label in use (EEXIST), a guest range overlapping a
region (EEXIST), then the pin (EFAULT: a page not mapped, not anonymous
memory, or read-only for a writable region). No VM state is checked: a
region added after start is pinned and never given to the guest.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah.rsc_mgr_h import GunyahRmAcl
from kernel.mm import PAGE_SIZE
from uapi.linux import gunyah_ack as ack

RWX = ack.GH_MEM_ALLOW_READ | ack.GH_MEM_ALLOW_WRITE | ack.GH_MEM_ALLOW_EXEC


def acl_rights(flags: int) -> int:
    """GH_MEM_ALLOW_READ/WRITE/EXEC as the RM's ACL rights (R 4, W 2, X 1)."""
    return (
        (GunyahRmAcl.R if flags & ack.GH_MEM_ALLOW_READ else 0)
        | (GunyahRmAcl.W if flags & ack.GH_MEM_ALLOW_WRITE else 0)
        | (GunyahRmAcl.X if flags & ack.GH_MEM_ALLOW_EXEC else 0)
    )


def check_region(region) -> None:
    """The checks both Android generations make before looking at other regions."""
    if region.flags & ~RWX:
        raise OSError(errno.EINVAL, "memory flags other than READ, WRITE, EXEC")
    size, gpa, uaddr = region.memory_size, region.guest_phys_addr, region.userspace_addr
    if not size or (size | gpa | uaddr) % PAGE_SIZE:
        raise OSError(errno.EINVAL, "size 0, or size or address not page aligned")
    if gpa + size >= 1 << 64:  # the u64 sum wraps, to 0 at worst
        raise OSError(errno.EOVERFLOW, "guest range wraps")


def page_runs(pages: list[int]) -> list[tuple[int, int]]:
    """Pinned pages as the (phys, size) runs of contiguous memory a parcel lists."""
    runs: list[list[int]] = []
    for pa in pages:
        if runs and runs[-1][0] + runs[-1][1] == pa:
            runs[-1][1] += PAGE_SIZE
        else:
            runs.append([pa, PAGE_SIZE])
    return [(pa, size) for pa, size in runs]


@dataclass(eq=False)
class GhVmMem:
    """struct gh_vm_mem: one region, its pinned pages and its parcel."""

    label: int
    flags: int
    gpa: int
    size: int
    lend: bool
    pages: list[int] = field(default_factory=list)  # physical address of each pinned page
    parcel: rpc.GunyahRmMemParcel | None = None

    @property
    def end(self) -> int:
        return self.gpa + self.size


def gh_vm_mem_alloc(vm, region, lend: bool) -> int:
    """SET_USER_MEM_REGION / LEND_USER_MEM on android14-6.1 (checks: module doc)."""
    check_region(region)
    with vm.bindings_lock:
        if any(m.label == region.label for m in vm.mem_regions):
            raise OSError(errno.EEXIST, f"memory label {region.label} in use")
        gpa, size = region.guest_phys_addr, region.memory_size
        if any(gpa < m.end and m.gpa < gpa + size for m in vm.mem_regions):
            raise OSError(errno.EEXIST, "guest range overlaps a region")
        write = bool(region.flags & ack.GH_MEM_ALLOW_WRITE)
        pages = vm.host.mm.pin_user_pages(region.userspace_addr, size // PAGE_SIZE, write)
        mem = GhVmMem(region.label, region.flags, gpa, size, lend, pages)
        mem.parcel = rpc.GunyahRmMemParcel(acl=[], mem_entries=page_runs(pages), label=region.label)
        vm.mem_regions.insert(0, mem)  # the driver adds at the list's head
    return 0


def gh_vm_mem_share_all(vm) -> None:
    """VM_START's step 3: every region lent or shared with the VM, newest first. A
    lent region leaves the host's stage 2 before MEM_LEND returns."""
    for mem in vm.mem_regions:
        acl = [(vm.vmid, acl_rights(mem.flags))]
        if not mem.lend:
            acl.append((rpc.gunyah_rm_get_vmid(vm.rm), GunyahRmAcl.RWX))
        mem.parcel.acl = acl
        if mem.lend:
            for pa, size in mem.parcel.mem_entries:
                vm.host.gunyah.firmware.revoke_host_access(pa, size)
        rpc.gunyah_rm_mem_share(vm.rm, mem.parcel)


def gh_vm_mem_reclaim_all(vm, logged) -> None:
    """Teardown: each parcel the RM holds is reclaimed, then its pages unpinned;
    one the RM keeps (``logged`` reports the failure) stays pinned for good."""
    for mem in vm.mem_regions:
        given = mem.parcel.mem_handle != rpc.GUNYAH_MEM_HANDLE_INVAL
        if given and not logged(vm, rpc.gunyah_rm_mem_reclaim, vm.rm, mem.parcel):
            continue
        for pa in mem.pages:
            vm.host.mm.unpin_user_page(pa)
        mem.pages = []
    vm.mem_regions = []
