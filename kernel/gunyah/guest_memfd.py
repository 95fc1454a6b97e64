"""guest_memfd (drivers/virt/gunyah/guest_memfd.c): memory for guests as a file.

GUNYAH_CREATE_GUEST_MEM: the argument is copied (EFAULT), the size must be
page aligned (EINVAL; 0 is accepted), flags other than GHMF_CLOEXEC and
GHMF_ALLOW_HUGEPAGE are EINVAL, ``reserved`` is not checked (as in v16).
The fd is close-on-exec only with GHMF_CLOEXEC. Its size never changes.

Each file is backed by one contiguous range of host RAM (2 MiB aligned with
GHMF_ALLOW_HUGEPAGE), so ``mmap`` gives the VMM the very pages the guest
will see. A host mapping first takes back every page of its range that is
lent to a VM, and while it exists those pages cannot be lent again (the
guest's access is a PAGE_FAULT exit with -EPERM): host and guest never hold
a lent page at once. ``fallocate`` needs FALLOC_FL_KEEP_SIZE (else EOPNOTSUPP), takes
only KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE (else EOPNOTSUPP), page-aligned
offset and length (EINVAL), and, to allocate, a range inside the file
(EINVAL); PUNCH_HOLE gives the pages back (they read as zero; past the
file's end there is nothing to punch, no error), ZERO_RANGE allocates (it
does not zero pages already there).
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass, field

from kernel.fs import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE,
    File,
    FileOperations,
)
from kernel.include.linux.gunyah import gunyah_error_remap
from kernel.mm import HPAGE_PMD_SIZE, PAGE_SIZE
from kernel.mmap import private, writable
from kernel.uaccess import copy_from_user
from uapi.linux import gunyah as gh


@dataclass
class GuestMem:
    gunyah: object
    size: int
    flags: int
    pa: int
    vms: set = field(default_factory=set)  # VMs with bindings of this file
    bindings: list = field(default_factory=list)  # every VM's bindings of it, under lock
    lock: threading.Lock = field(default_factory=threading.Lock)  # taken inside a VM's
    # filemap_invalidate_lock: held across "take pages back, then use them" (host
    # mmap, punch-hole) and by demand paging of this file, before a VM's lock, so
    # a guest cannot be given a page between the reclaim and its use.
    invalidate_lock: threading.Lock = field(default_factory=threading.Lock)
    host_maps: dict = field(default_factory=dict)  # id(mapping) -> (offset, length)
    leaked: list = field(default_factory=list)  # (offset, length) a VM never gave back

    def add_binding(self, binding) -> None:
        """A binding of this file, by any VM; EEXIST if its file range overlaps another
        (v17's rule over the file's whole binding list; v16's check is inverted)."""
        with self.lock:
            for b in self.bindings:
                if binding.i_off < b.i_off + b.nr and b.i_off < binding.i_off + binding.nr:
                    raise OSError(errno.EEXIST, "file range already bound")
            self.bindings.append(binding)

    def remove_binding(self, binding) -> None:
        with self.lock:
            self.bindings.remove(binding)

    def leak(self, offset: int, length: int) -> None:
        """Pages the RM would not give back: never reused, as the driver leaks the folios."""
        self.leaked.append((offset, length))

    def reclaimed(self, pa: int, length: int) -> None:
        """A VM gave pages back; the file keeps them (nothing to undo)."""

    def host_mapped(self, offset: int, length: int) -> bool:
        return any(o < offset + length and offset < o + n for o, n in self.host_maps.values())

    def reclaim(self, offset: int, length: int, lent_only: bool) -> None:
        """Take pages in [offset, offset+length) of the file back from every VM
        (the caller holds ``invalidate_lock``)."""
        for vm in list(self.vms):
            vm.reclaim_file(self, offset, length, lent_only)

    def kept(self, offset: int, end: int):
        """The (offset, length) parts of [offset, end) that are not leaked."""
        for o, n in sorted(self.leaked):
            if offset < min(o, end):
                yield offset, min(o, end) - offset
            offset = max(offset, o + n)
        if offset < end:
            yield offset, end - offset

    @property
    def huge(self) -> bool:
        return bool(self.flags & gh.GHMF_ALLOW_HUGEPAGE)

    @property
    def allocated(self) -> int:
        """The RAM behind the file: whole folios (a 2 MiB folio may end past i_size)."""
        return _backing(self.size, self.flags)


class GuestMemFops(FileOperations):
    def mmap(self, file: File, length: int, offset: int, prot: int, flags: int):
        """EINVAL for a range that is not inside the file, else the file's pages,
        taken back from every VM first (EACCES if the hypervisor finds one still lent)."""
        gmem: GuestMem = file.private
        if offset < 0 or offset % PAGE_SIZE or length <= 0 or offset + length > gmem.size:
            raise OSError(errno.EINVAL, "mapping outside the guest_memfd")
        length = -(-length // PAGE_SIZE) * PAGE_SIZE
        with gmem.invalidate_lock:
            gmem.reclaim(offset, length, lent_only=True)  # lent pages come back first
            err, mapping = gmem.gunyah.firmware.map_ram(
                gmem.pa + offset, length, writable(prot), private(flags)
            )
            if err:  # the hypervisor refuses a page still lent to a VM
                raise OSError(gunyah_error_remap(err), f"host mapping: Gunyah error {err}")
            gmem.host_maps[id(mapping)] = (offset, length)
        return mapping

    def munmap(self, file: File, mapping) -> None:
        gmem: GuestMem = file.private
        with gmem.invalidate_lock:
            gmem.host_maps.pop(id(mapping), None)
            gmem.gunyah.firmware.unmap_ram(mapping)

    def fallocate(self, file: File, mode: int, offset: int, length: int) -> None:
        gmem: GuestMem = file.private
        if not mode & FALLOC_FL_KEEP_SIZE:
            raise OSError(errno.EOPNOTSUPP, "guest_memfd size is immutable")
        if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        if offset % PAGE_SIZE or length % PAGE_SIZE:
            raise OSError(errno.EINVAL, "unaligned range")
        if mode & FALLOC_FL_PUNCH_HOLE:
            # no i_size check: a hole past the end punches nothing there (v16)
            end = min(offset + length, gmem.size)
            if offset < end:
                with gmem.invalidate_lock:
                    gmem.reclaim(offset, end - offset, lent_only=False)
                    for start, size in gmem.kept(offset, end):
                        _discard(gmem, start, size)
        elif offset + length > gmem.size:
            raise OSError(errno.EINVAL, "range beyond the guest_memfd")

    def release(self, file: File) -> None:
        gmem: GuestMem = file.private
        for offset, length in gmem.kept(0, gmem.allocated):
            gmem.gunyah.mm.free(gmem.pa + offset, length)


GMEM_FOPS = GuestMemFops()


def _discard(gmem: GuestMem, offset: int, length: int) -> None:
    """Zero pages every VM gave back; the hypervisor refusing (a page still lent)
    is a bug of the driver, never a silent write into a guest's memory."""
    err = gmem.gunyah.firmware.discard_ram(gmem.pa + offset, length)
    if err:
        raise RuntimeError(f"discard of lent pages at {offset:#x}: Gunyah error {err}")


def _backing(size: int, flags: int) -> int:
    """Bytes of RAM for a file of ``size``: whole folios, and a page when empty."""
    folio = HPAGE_PMD_SIZE if flags & gh.GHMF_ALLOW_HUGEPAGE else PAGE_SIZE
    return max(-(-size // folio) * folio, PAGE_SIZE)


def gunyah_guest_mem_create(host, arg) -> int:
    data = copy_from_user(arg, gh.ffi.sizeof("struct gunyah_create_mem_args"))
    args = gh.ffi.from_buffer("struct gunyah_create_mem_args *", bytearray(data))
    if args.size % PAGE_SIZE:
        raise OSError(errno.EINVAL, "guest_memfd size is not page aligned")
    if args.flags & ~(gh.GHMF_CLOEXEC | gh.GHMF_ALLOW_HUGEPAGE):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    align = HPAGE_PMD_SIZE if args.flags & gh.GHMF_ALLOW_HUGEPAGE else PAGE_SIZE
    pa = host.gunyah.mm.alloc(_backing(args.size, args.flags), align)
    file = File(GMEM_FOPS, GuestMem(host.gunyah, args.size, args.flags, pa), "[gh-gmem]")
    return host.fdtable.install(file, cloexec=bool(args.flags & gh.GHMF_CLOEXEC))
