"""Guest memory (drivers/virt/geniezone/gzvm_mmu.c and the memslot part of gzvm_vm.c).

GZVM_SET_USER_MEMORY_REGION checks, in this order: slot < 10, guest_phys_addr
and memory_size page aligned, no overflow of their sum, at most 2^31 - 1
pages (each EINVAL); then ``userspace_addr`` must lie in a VMA of the VM
creator's mm (EFAULT) whose whole length is ``memory_size`` (EINVAL). The
slot is overwritten unconditionally (no overlap check; size 0 fails the
lookup with EFAULT, so a slot is never removed). EL2 gets
MEMREGION_PURPOSE(gpa, size, flags), then SET_MEMREGION of the slot with
no constituents; either failing is EFAULT, and the slot stays as it was.
A fully populated VM then pins every page and hands them over in
SET_MEMREGION calls of at most 510 constituents.

Demand paging (spec §3.6): a page fault exit at ``fault_gpa`` inside a
memslot pins the backing user page (pin_user_pages of kernel.mmap),
records it by IPA in ``Gzvm.pinned_pages`` and maps it with MAP_GUEST;
with 2 MiB blocks, every page of the 2 MiB-aligned block around the fault
(clipped to the slot) is pinned, its PFNs written to the VM's buffer and
mapped with one MAP_GUEST_BLOCK. A page pinned twice keeps the first pin.
Pins are dropped when the guest relinquishes the page and when the VM is
destroyed.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

from kernel.arch.arm64.geniezone import vm as arch
from kernel.geniezone import gzvm_main
from kernel.include.linux.gzvm_drv import (
    GZVM_MAX_MEM_REGION,
    GZVM_MEM_MAX_NR_PAGES,
    MEMREGION_BUFFER_PAGES,
    GzvmDemandPagingMode,
)
from kernel.mm import PAGE_SIZE

PAGE_SHIFT = 12
REGION_HEADER = struct.Struct("<IIQQ")  # struct gzvm_memory_region_ranges without constituents
CONSTITUENT = struct.Struct("<QII")  # struct mem_region_addr_range
MAX_CONSTITUENTS = (MEMREGION_BUFFER_PAGES * PAGE_SIZE - REGION_HEADER.size) // CONSTITUENT.size


@dataclass
class GzvmMemslot:
    """struct gzvm_memslot."""

    base_gfn: int
    npages: int
    userspace_addr: int
    flags: int
    slot_id: int

    def contains(self, gfn: int) -> bool:
        return self.base_gfn <= gfn < self.base_gfn + self.npages


def gzvm_vm_ioctl_set_memory_region(vm, mem) -> int:
    if mem.slot >= GZVM_MAX_MEM_REGION:
        raise gzvm_main.errno_error(errno.EINVAL, "slot")
    if mem.guest_phys_addr % PAGE_SIZE or mem.memory_size % PAGE_SIZE:
        raise gzvm_main.errno_error(errno.EINVAL, "alignment")
    if mem.guest_phys_addr + mem.memory_size >= 1 << 64:
        raise gzvm_main.errno_error(errno.EINVAL, "guest_phys_addr + memory_size overflows")
    if mem.memory_size >> PAGE_SHIFT > GZVM_MEM_MAX_NR_PAGES:
        raise gzvm_main.errno_error(errno.EINVAL, "too many pages")
    vma = vm.mm.vma_lookup(mem.userspace_addr, mem.memory_size)
    if vma is None:
        raise gzvm_main.errno_error(errno.EFAULT, "no VMA at userspace_addr")
    if vma.length != mem.memory_size:
        raise gzvm_main.errno_error(errno.EINVAL, "the VMA's length is not memory_size")
    memslot = GzvmMemslot(
        mem.guest_phys_addr >> PAGE_SHIFT,
        mem.memory_size >> PAGE_SHIFT,
        mem.userspace_addr,
        mem.flags,
        mem.slot,
    )
    # the record changes with EL2's: a refused move must not strand the pages
    # EL2 still maps in the old range (their faults would find no slot)
    with vm.mem_lock:
        old, vm.memslot[mem.slot] = vm.memslot[mem.slot], memslot
        try:
            arch.gzvm_arch_memregion_purpose(
                vm.hvc, vm.vm_id, mem.guest_phys_addr, mem.memory_size, mem.flags
            )
            register_memslot_addr_range(vm, memslot, [])
        except OSError as e:
            vm.memslot[mem.slot] = old
            raise gzvm_main.errno_error(
                errno.EFAULT, f"EL2 refused the region: {e.strerror}"
            ) from None
    if vm.mem_alloc_mode == GzvmDemandPagingMode.GZVM_FULLY_POPULATED:
        populate_mem_region(vm, memslot)
    return 0


def register_memslot_addr_range(vm, memslot: GzvmMemslot, runs: list[tuple[int, int]]) -> None:
    """SET_MEMREGION of ``memslot`` with constituents ``runs`` of (PA, pages)."""
    buffer = gzvm_main.KernelPages.alloc(vm.drv, MEMREGION_BUFFER_PAGES * PAGE_SIZE)
    try:
        header = (memslot.slot_id, len(runs), memslot.npages, memslot.base_gfn << PAGE_SHIFT)
        data = REGION_HEADER.pack(*header)
        data += b"".join(CONSTITUENT.pack(pa, pages, 0) for pa, pages in runs)
        buffer.map[: len(data)] = data
        arch.gzvm_arch_set_memregion(vm.hvc, vm.vm_id, buffer.size, buffer.pa)
    finally:
        buffer.free()


def populate_mem_region(vm, memslot: GzvmMemslot) -> None:
    """Pin every page of ``memslot`` and hand them to EL2 as PA runs."""
    runs: list[tuple[int, int]] = []
    for i in range(memslot.npages):
        pa = gzvm_vm_allocate_guest_page(vm, memslot, memslot.base_gfn + i)
        if runs and runs[-1][0] + runs[-1][1] * PAGE_SIZE == pa:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((pa, 1))
    for start in range(0, len(runs), MAX_CONSTITUENTS):
        register_memslot_addr_range(vm, memslot, runs[start : start + MAX_CONSTITUENTS])


def gzvm_vm_populate_mem_region(vm) -> None:
    """Populate every registered memslot; errors are ignored, as the driver does."""
    with vm.mem_lock:
        memslots = [m for m in vm.memslot if m is not None]
    for memslot in memslots:
        try:
            populate_mem_region(vm, memslot)
        except OSError as e:
            vm.host.printk(f"gzvm: populating slot {memslot.slot_id}: {e.strerror}")


def gzvm_find_memslot(vm, gfn: int) -> GzvmMemslot | None:
    with vm.mem_lock:
        return next((m for m in vm.memslot if m is not None and m.contains(gfn)), None)


def gzvm_gfn_to_hva_memslot(memslot: GzvmMemslot, gfn: int) -> int:
    return memslot.userspace_addr + ((gfn - memslot.base_gfn) << PAGE_SHIFT)


def gzvm_vm_allocate_guest_page(vm, memslot: GzvmMemslot, gfn: int) -> int:
    """The PA of guest page ``gfn``, pinned once and recorded by IPA; EFAULT if the
    user page is not mapped anonymous memory. A second pin of a recorded page is
    dropped."""
    hva = gzvm_gfn_to_hva_memslot(memslot, gfn) & ~(PAGE_SIZE - 1)
    (pa,) = vm.mm.pin_user_pages(hva, 1)
    with vm.mem_lock:
        recorded = vm.pinned_pages.get(gfn << PAGE_SHIFT)
        if recorded is None:
            vm.pinned_pages[gfn << PAGE_SHIFT] = pa
            return pa
    vm.mm.unpin_user_page(pa)
    return recorded


def handle_single_demand_page(vm, memslot: GzvmMemslot, gfn: int) -> None:
    pfn = gzvm_vm_allocate_guest_page(vm, memslot, gfn) >> PAGE_SHIFT
    arch.gzvm_arch_map_guest(vm.hvc, vm.vm_id, memslot.slot_id, pfn, gfn, 1)


def handle_block_demand_page(vm, memslot: GzvmMemslot, gfn: int) -> None:
    """Map the 2 MiB block around ``gfn``, clipped to the slot, with one MAP_GUEST_BLOCK."""
    per_block = vm.demand_page_gran >> PAGE_SHIFT
    start = max(gfn - gfn % per_block, memslot.base_gfn)
    end = min(gfn - gfn % per_block + per_block, memslot.base_gfn + memslot.npages)
    with vm.mem_lock:  # one fault at a time fills the buffer
        pfns = [
            gzvm_vm_allocate_guest_page(vm, memslot, g) >> PAGE_SHIFT for g in range(start, end)
        ]
        data = struct.pack(f"<{len(pfns)}Q", *pfns)
        vm.demand_page_buffer.map[: len(data)] = data
        arch.gzvm_arch_map_guest_block(vm.hvc, vm.vm_id, memslot.slot_id, start, end - start)


def gzvm_handle_page_fault(vm, fault_gpa: int) -> bool:
    """Serve a page fault exit: True if the page is mapped now, False (the exit goes
    to userspace) for an address outside every memslot, a fully populated VM, a
    user page that cannot be pinned, or EL2 refusing the mapping."""
    gfn = fault_gpa >> PAGE_SHIFT
    memslot = gzvm_find_memslot(vm, gfn)
    if memslot is None or vm.mem_alloc_mode == GzvmDemandPagingMode.GZVM_FULLY_POPULATED:
        return False
    try:
        if vm.demand_page_gran == PAGE_SIZE:
            handle_single_demand_page(vm, memslot, gfn)
        else:
            handle_block_demand_page(vm, memslot, gfn)
    except OSError as e:
        vm.host.printk(f"gzvm: page fault at {fault_gpa:#x}: {e.strerror}")
        return False
    return True


def gzvm_handle_relinquish(vm, ipa: int) -> None:
    """The guest gave page ``ipa`` back (EL2 has unmapped it): drop its pin."""
    with vm.mem_lock:
        pa = vm.pinned_pages.pop(ipa & ~(PAGE_SIZE - 1), None)
    if pa is not None:
        vm.mm.unpin_user_page(pa)


def gzvm_vm_unpin_all(vm) -> None:
    """Drop every pin the VM holds (after DESTROY_VM)."""
    with vm.mem_lock:
        pinned, vm.pinned_pages = vm.pinned_pages, {}
    for pa in pinned.values():
        vm.mm.unpin_user_page(pa)
