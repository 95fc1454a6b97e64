"""The process's mappings and anonymous memory (mm/mmap.c's vma_lookup, mm/gup.c's
pin_user_pages and unpin_user_page), much simplified.

Every mapping ``Host.mmap`` returns is a VMA of the process at the address
of its first byte, so a driver given a user address (GenieZone's memslots
take ``userspace_addr``) finds it as the kernel does. An anonymous mapping
(``MAP_ANONYMOUS``, fd -1) is host RAM from the page allocator, mapped
through the hypervisor like any other host mapping of RAM, so its pages
have physical addresses a driver can hand to EL2. A pinned page keeps its
memory: the mapping's pages go back to the allocator only when it is
unmapped and no page of it is pinned.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from dataclasses import dataclass, field

import cffi
from sortedcontainers import SortedDict

from kernel.kref import Kref
from kernel.mm import PAGE_SIZE

MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE = 0x01, 0x02, 0x03, 0x0F
MAP_ANONYMOUS = 0x20
PROT_READ, PROT_WRITE, PROT_EXEC = 0x1, 0x2, 0x4
_FFI = cffi.FFI()


def check_mmap(prot: int, flags: int) -> None:
    """mmap(2)'s checks of ``prot`` and ``flags``: EINVAL for a mapping type other
    than shared or private, and for PROT_NONE (a deviation: a Python buffer
    cannot fault on access, so no access must mean no mapping)."""
    if flags & MAP_TYPE not in (MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE):
        raise OSError(errno.EINVAL, "mmap: neither MAP_SHARED nor MAP_PRIVATE")
    if not prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
        raise OSError(errno.EINVAL, "mmap: PROT_NONE cannot be modelled")


def writable(prot: int) -> bool:
    return bool(prot & PROT_WRITE)


def private(flags: int) -> bool:
    return flags & MAP_TYPE == MAP_PRIVATE


def os_mmap(prot: int, flags: int) -> dict:
    """``mmap.mmap`` keywords for a mapping with ``prot`` and ``flags`` (read access
    always: arm64 has no write-only pages)."""
    return {
        "flags": mmap.MAP_PRIVATE if private(flags) else mmap.MAP_SHARED,
        "prot": mmap.PROT_READ | (mmap.PROT_WRITE if writable(prot) else 0),
    }


def user_address(mapping) -> int:
    """The address of a mapping's first byte."""
    return int(_FFI.cast("uintptr_t", _FFI.from_buffer(mapping)))


@dataclass(eq=False)
class AnonMemory:
    """The RAM behind one anonymous mapping; one reference for the mapping and
    one per pinned page."""

    free: object  # PageAllocator.free
    pa: int
    size: int
    kref: Kref = field(init=False)

    def __post_init__(self):
        self.kref = Kref(lambda: self.free(self.pa, self.size))

    def get(self) -> None:
        self.kref.get()

    def put(self) -> None:
        self.kref.put()


@dataclass(eq=False)
class Vma:
    start: int
    length: int
    mapping: object
    anon: AnonMemory | None = None  # None: a file's mapping, which no driver pins
    writable: bool = True

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass
class MmStruct:
    """The process's VMAs by start address, and the pages drivers have pinned."""

    vmas: SortedDict = field(default_factory=SortedDict)  # lock
    pinned: dict = field(default_factory=dict)  # lock: pa -> (AnonMemory, pins)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # None, or fault(addr, length) -> bool, called (without the lock) when a lookup
    # finds nothing at addr: it may map [addr, addr+length) and say so (True), as a
    # server does when a native program names memory the model never mapped.
    fault: object = None

    def insert(self, vma: Vma) -> None:
        with self.lock:
            self.vmas[vma.start] = vma

    def remove(self, vma: Vma) -> None:
        with self.lock:
            del self.vmas[vma.start]

    def vma_lookup(self, addr: int, length: int = PAGE_SIZE) -> Vma | None:
        """The VMA holding ``addr``, or None; ``length``: the bytes from ``addr`` the
        caller wants, which :attr:`fault` maps if nothing is there."""
        with self.lock:
            vma = self._lookup(addr)
        if vma is None and self.fault is not None and self.fault(addr, length):
            with self.lock:
                vma = self._lookup(addr)
        return vma

    def _lookup(self, addr: int) -> Vma | None:
        i = self.vmas.bisect_right(addr) - 1
        if i < 0:
            return None
        vma = self.vmas.values()[i]
        return vma if addr < vma.end else None

    def holes(self, addr: int, end: int) -> list[tuple[int, int]]:
        """The (start, length) runs of [addr, end) that no VMA covers."""
        holes = []
        with self.lock:
            while addr < end:
                vma = self._lookup(addr)
                if vma is not None:
                    addr = vma.end
                    continue
                i = self.vmas.bisect_right(addr)
                stop = min(self.vmas.keys()[i], end) if i < len(self.vmas) else end
                holes.append((addr, stop - addr))
                addr = stop
        return holes

    def pin_user_pages(self, addr: int, nr: int, write: bool = True) -> list[int]:
        """Pin ``nr`` pages from page-aligned user address ``addr``: their physical
        addresses. EFAULT (nothing pinned) if a page is unmapped, is not anonymous
        memory, or (``write``: FOLL_WRITE) is mapped without PROT_WRITE. Each
        unmapped run of the range goes to :attr:`fault` first, whole (one call
        per run, not per page)."""
        if self.fault is not None:
            for start, length in self.holes(addr, addr + nr * PAGE_SIZE):
                self.fault(start, length)
        with self.lock:
            pages = []
            for va in range(addr, addr + nr * PAGE_SIZE, PAGE_SIZE):
                vma = self._lookup(va)
                if vma is None or vma.anon is None or (write and not vma.writable):
                    raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
                pages.append((vma.anon, vma.anon.pa + va - vma.start))
            for anon, pa in pages:
                anon.get()
                self.pinned[pa] = (anon, self.pinned.get(pa, (anon, 0))[1] + 1)
            return [pa for _, pa in pages]

    def unpin_user_page(self, pa: int) -> None:
        """Drop one pin of the page at ``pa`` (a bug of the caller if it holds none)."""
        with self.lock:
            anon, pins = self.pinned.pop(pa)
            if pins > 1:
                self.pinned[pa] = (anon, pins - 1)
        anon.put()
