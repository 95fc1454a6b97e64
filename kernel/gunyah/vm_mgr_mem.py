"""Guest memory of a VM (drivers/virt/gunyah/vm_mgr_mem.c and the bindings of guest_memfd.c).

GUNYAH_VM_MAP_MEM binds guest_memfd pages to guest addresses; nothing is
given to the VM until it touches them. Validation order is the driver's:
a bad fd or a file that is not a guest_memfd is EINVAL (not EBADF), then
unknown flags, no ALLOW_* bit, an access kind other than default, lend or
share, unaligned address/offset/size (2 MiB for hugepage files): EINVAL.
Overlapping guest addresses, and overlapping file ranges of the same file,
are EEXIST (v17's rule; v16's check is inverted). With GUNYAH_MEM_UNMAP a
whole binding, a prefix or a suffix is removed (ENOENT if no binding of the
same flags and offset holds the range, EINVAL for a middle part).

A folio is provided on the guest's first access to one of its pages
(``gunyah_gmem_demand_page``; a folio is a page, or 2 MiB in a hugepage file):
``memextent_donate`` moves it from the host's extent to the guest's (to a
sibling for share, to protected for lend) and ``addrspace_map`` maps it.
Reclaim undoes both; it runs on unmap, punch-hole and teardown.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from kernel.gunyah.guest_memfd import GMEM_FOPS
from kernel.gunyah.platform_hooks import (
    gunyah_rm_platform_pre_demand_page,
    gunyah_rm_platform_reclaim_demand_page,
)
from kernel.gunyah.vm_mgr_h import GUNYAH_VM_ADDRSPACE_LABEL, GunyahVmMemExtentLabel
from kernel.include.linux.gunyah import GunyahAddrspaceMapFlag as MapFlag
from kernel.include.linux.gunyah import GunyahMemextentDonateType as Donate
from kernel.include.linux.gunyah import GunyahPagetableAccess as Access
from kernel.include.linux.gunyah import (
    GunyahResourceType,
    gunyah_error_remap,
    gunyah_map_attrs,
)
from kernel.mm import HPAGE_PMD_SIZE, PAGE_SIZE
from uapi.linux import gunyah as gh

ACCESS_MASK = gh.GUNYAH_MEM_ACCESS_MASK
ADDR_SPACE = (GunyahResourceType.ADDR_SPACE, GUNYAH_VM_ADDRSPACE_LABEL)


@dataclass(frozen=True)
class Folio:
    """Pages provided to a VM: where they are, how, and the guest_memfd they belong to."""

    pa: int
    share: bool
    nr: int
    access: int
    gmem: object


@dataclass(eq=False)
class Binding:
    gfn: int
    nr: int
    i_off: int  # page offset in the file
    flags: int
    file: object  # the guest_memfd File, referenced while bound

    @property
    def share(self) -> bool:
        return self.flags & ACCESS_MASK == gh.GUNYAH_MEM_FORCE_SHARE

    @property
    def end(self) -> int:
        return self.gfn + self.nr

    def pa(self, gfn: int) -> int:
        return self.file.private.pa + (self.i_off + gfn - self.gfn) * PAGE_SIZE


def _einval(why: str) -> OSError:
    return OSError(errno.EINVAL, f"{os.strerror(errno.EINVAL)}: {why}")


def gunyah_vm_map_mem(vm, args) -> int:
    """GUNYAH_VM_MAP_MEM: add or (with GUNYAH_MEM_UNMAP) remove a binding.

    Adding and removing share one validation, in the driver's order, before
    any binding is looked at: a bad request is EINVAL even when no binding
    would match it. The range is counted in pages, so an address or offset
    range that wraps 2^64 is no error here (v16's maple tree holds page
    numbers); its pages fault later.
    """
    try:
        file = vm.host.fdtable.get_user(args.guest_mem_fd)
    except OSError:
        raise _einval("guest_mem_fd is not an open file") from None
    try:
        if file.fops is not GMEM_FOPS:
            raise _einval("not a guest_memfd")
        valid = gh.GUNYAH_MEM_ALLOW_RWX | gh.GUNYAH_MEM_UNMAP | ACCESS_MASK
        if args.flags & ~valid:
            raise _einval("unknown flags")
        gfn, i_off, nr = _check_range(file, args)
        if args.flags & gh.GUNYAH_MEM_UNMAP:
            return _unmap(vm, file, args.flags & ~gh.GUNYAH_MEM_UNMAP, gfn, i_off, nr)
        return _bind(vm, file, args.flags, gfn, i_off, nr)
    finally:
        file.put()


def _check_range(file, args) -> tuple[int, int, int]:
    """(gfn, file page offset, pages) of a valid request; EINVAL otherwise."""
    if not args.flags & gh.GUNYAH_MEM_ALLOW_RWX:
        raise _einval("no GUNYAH_MEM_ALLOW_* bit")
    if args.flags & ACCESS_MASK > gh.GUNYAH_MEM_FORCE_SHARE:
        raise _einval("access kind")
    align = HPAGE_PMD_SIZE if file.private.huge else PAGE_SIZE
    if (args.guest_addr | args.offset | args.size) % align or not args.size:
        raise _einval("alignment")
    return args.guest_addr // PAGE_SIZE, args.offset // PAGE_SIZE, args.size // PAGE_SIZE


def _bind(vm, file, flags: int, gfn: int, i_off: int, nr: int) -> int:
    with vm.bindings_lock:
        if any(gfn < b.end and b.gfn < gfn + nr for b in vm.bindings):
            raise OSError(errno.EEXIST, "guest addresses already bound")
        binding = Binding(gfn, nr, i_off, flags, file)
        file.private.add_binding(binding)
        file.get()  # the binding's reference
        vm.bindings.append(binding)
        file.private.vms.add(vm)
    return 0


def _unmap(vm, file, flags: int, gfn: int, i_off: int, nr: int) -> int:
    with vm.bindings_lock:
        for b in vm.bindings:
            holds = b.gfn <= gfn and gfn + nr <= b.end and b.file is file and b.flags == flags
            if holds and b.i_off + gfn - b.gfn == i_off:
                break
        else:
            raise OSError(errno.ENOENT, "no binding holds that range")
        if gfn != b.gfn and gfn + nr != b.end:
            raise _einval("cannot split a binding")
        reclaim_range(vm, gfn, gfn + nr)
        if nr == b.nr:
            vm.bindings.remove(b)
            _release_binding(vm, b)
        elif gfn == b.gfn:
            b.gfn, b.i_off, b.nr = gfn + nr, b.i_off + nr, b.nr - nr
        else:
            b.nr -= nr
    return 0


def find_binding(vm, gfn: int) -> Binding | None:
    return next((b for b in vm.bindings if b.gfn <= gfn < b.end), None)


def gunyah_gmem_demand_page(vm, gpa: int, write: bool) -> int:
    """Give the VM the folio holding ``gpa``: 0, or a negative errno (ENOENT: no
    binding, EPERM: a write to a binding without ALLOW_WRITE or a lent folio
    the host has mapped, ENOMEM: no folio, the page lies past the file's end,
    EAGAIN: already provided, or the binding changed meanwhile).

    The file's invalidate_lock is taken first, so a host mmap or punch-hole
    of the file, which take pages back and then use them, waits or is waited for.
    """
    gfn = gpa // PAGE_SIZE
    with vm.bindings_lock:
        b = find_binding(vm, gfn)
        if b is None:
            return -errno.ENOENT
        gmem = b.file.private
    with gmem.invalidate_lock, vm.bindings_lock:
        b = find_binding(vm, gfn)
        if b is None or b.file.private is not gmem:
            return -errno.EAGAIN  # unbound or rebound meanwhile: the guest faults again
        return _demand_page_locked(vm, b, gfn, write)


def _demand_page_locked(vm, b: Binding, gfn: int, write: bool) -> int:
    if write and not b.flags & gh.GUNYAH_MEM_ALLOW_WRITE:
        return -errno.EPERM
    folio = gunyah_gmem_get_folio(b, gfn)
    if folio is None:
        return -errno.ENOMEM
    start, nr = folio
    if any(start < g + f.nr and g < start + nr for g, f in vm.provided.items()):
        return -errno.EAGAIN
    offset = (b.i_off + start - b.gfn) * PAGE_SIZE
    if not b.share and b.file.private.host_mapped(offset, nr * PAGE_SIZE):
        return -errno.EPERM  # the host has it mapped: it cannot be lent
    return _provide(vm, b, start, nr)


def gunyah_gmem_get_folio(b: Binding, gfn: int) -> tuple[int, int] | None:
    """The folio holding ``gfn``: (its first gfn, pages), aligned in the file (2 MiB
    in a hugepage file, whose bindings are 2 MiB aligned, so a folio never crosses
    a binding's edge); None past the file's end, where it has no memory."""
    nr = HPAGE_PMD_SIZE // PAGE_SIZE if b.file.private.huge else 1
    index = b.i_off + gfn - b.gfn
    index -= index % nr
    if index * PAGE_SIZE >= b.file.private.size:
        return None
    return b.gfn + index - b.i_off, nr


def folio_range(b: Binding, gfn: int, pages: int) -> tuple[int, int]:
    """[gfn, gfn+pages) rounded out to whole folios: (first gfn, pages)."""
    nr = HPAGE_PMD_SIZE // PAGE_SIZE if b.file.private.huge else 1
    start = gfn - (b.i_off + gfn - b.gfn) % nr
    end = -(-(gfn + pages - start) // nr) * nr + start
    return start, end - start


def gunyah_vm_parcel_to_paged(vm, gfn: int, nr: int) -> None:
    """After VM_START the DTB parcel's folios (``nr`` pages from ``gfn``, whole
    folios) are provided memory like any other: host mmap, punch-hole, UNMAP
    and teardown take them back by hypercall, not by MEM_RECLAIM."""
    with vm.bindings_lock:
        b = find_binding(vm, gfn)
        for start in range(gfn, gfn + nr):
            folio = gunyah_gmem_get_folio(b, start)
            if folio[0] == start:
                vm.provided[start] = Folio(
                    b.pa(start), b.share, folio[1], _access(b), b.file.private
                )


def _access(b: Binding) -> int:
    write = b.flags & gh.GUNYAH_MEM_ALLOW_WRITE
    if b.share:
        return Access.RW if write else Access.R
    return Access.RWX if write else Access.RX


def _extents(vm, share: bool) -> tuple[int, int] | None:
    label = GunyahVmMemExtentLabel
    host = vm.tickets.get((GunyahResourceType.MEM_EXTENT, label.HOST_PRIVATE))
    guest_label = label.GUEST_SHARED if share else label.GUEST_PRIVATE
    guest = vm.tickets.get((GunyahResourceType.MEM_EXTENT, guest_label))
    return None if host is None or guest is None else (host, guest)


def _provide(vm, b: Binding, gfn: int, nr: int) -> int:
    """gunyah_vm_provide_folio: the folio of ``nr`` pages at ``gfn`` goes to the VM."""
    hcall, extents = vm.host.gunyah.hcall, _extents(vm, b.share)
    space = vm.tickets.get(ADDR_SPACE)
    if extents is None or space is None:
        return -errno.ENODEV
    pa, size, access = b.pa(gfn), nr * PAGE_SIZE, _access(b)
    try:
        gunyah_rm_platform_pre_demand_page(vm.rm, vm.vmid, access, pa, size)
    except OSError as e:
        return -e.errno
    donate = Donate.TO_SIBLING if b.share else Donate.TO_PROTECTED
    err = hcall.gunyah_hypercall_memextent_donate(donate, extents[0], extents[1], pa, size)
    if err:
        gunyah_rm_platform_reclaim_demand_page(vm.rm, vm.vmid, access, pa, size)
        return -gunyah_error_remap(err)
    attrs = gunyah_map_attrs(access)
    flags = MapFlag.PARTIAL | (MapFlag.VMMIO if b.share else MapFlag.PRIVATE)
    err = hcall.gunyah_hypercall_addrspace_map(
        space, extents[1], gfn * PAGE_SIZE, attrs, flags, pa, size
    )
    if err:
        back = Donate.TO_SIBLING if b.share else Donate.FROM_PROTECTED
        hcall.gunyah_hypercall_memextent_donate(back, extents[1], extents[0], pa, size)
        gunyah_rm_platform_reclaim_demand_page(vm.rm, vm.vmid, access, pa, size)
        return -gunyah_error_remap(err)
    vm.provided[gfn] = Folio(pa, b.share, nr, access, b.file.private)
    return 0


def reclaim_range(vm, start: int, end: int) -> None:
    """Take back every provided folio with a page in [start, end) (whole folios).

    A folio the hypervisor will not unmap or give back stays with the VM: it
    is logged and leaked (its pages are never reused), as the driver does.
    """
    hcall = vm.host.gunyah.hcall
    space = vm.tickets.get(ADDR_SPACE)
    for gfn in sorted(g for g, f in vm.provided.items() if start < g + f.nr and g < end):
        folio = vm.provided.pop(gfn)
        host, guest = _extents(vm, folio.share)
        flags = MapFlag.PARTIAL | (MapFlag.VMMIO if folio.share else MapFlag.PRIVATE)
        size = folio.nr * PAGE_SIZE
        err = hcall.gunyah_hypercall_addrspace_unmap(
            space, guest, gfn * PAGE_SIZE, flags, folio.pa, size
        )
        if not err:
            back = Donate.TO_SIBLING if folio.share else Donate.FROM_PROTECTED
            err = hcall.gunyah_hypercall_memextent_donate(back, guest, host, folio.pa, size)
        if err:
            vm.host.printk(f"gunyah_vm_mgr: cannot reclaim gfn {gfn:#x}: Gunyah error {err}")
            folio.gmem.leak(folio.pa - folio.gmem.pa, size)
            continue
        gunyah_rm_platform_reclaim_demand_page(vm.rm, vm.vmid, folio.access, folio.pa, size)


def reclaim_file(vm, gmem, offset: int, length: int, lent_only: bool) -> None:
    """Take back the pages of file range [offset, offset+length) ``vm`` was given."""
    first, last = offset // PAGE_SIZE, (offset + length) // PAGE_SIZE
    with vm.bindings_lock:
        for b in vm.bindings:
            if b.file.private is not gmem or (lent_only and b.share):
                continue
            lo, hi = max(b.i_off, first), min(b.i_off + b.nr, last)
            if lo < hi:
                reclaim_range(vm, b.gfn + lo - b.i_off, b.gfn + hi - b.i_off)


def remove_all_bindings(vm) -> None:
    with vm.bindings_lock:
        if vm.tickets.get(ADDR_SPACE) is not None:
            reclaim_range(vm, 0, 1 << 52)
        bindings, vm.bindings = vm.bindings, []
        for b in bindings:
            _release_binding(vm, b)


def _release_binding(vm, b: Binding) -> None:
    """A binding removed from ``vm.bindings`` leaves its file's list; its file reference goes."""
    gmem = b.file.private
    gmem.remove_binding(b)
    if not any(o.file.private is gmem for o in vm.bindings):
        gmem.vms.discard(vm)
    b.file.put()
