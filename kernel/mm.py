"""Host physical memory (mm/page_alloc.c, much simplified): contiguous ranges of RAM.

guest_memfd backs each file with one contiguous range of host RAM, so the
VMM's mmap of the file and the guest's view are the same physical pages.
RAM is sparse: a reserved range costs nothing until written, and freed
ranges are zeroed and given back.
"""

from __future__ import annotations

import errno
import os
import threading

from sortedcontainers import SortedDict

PAGE_SIZE = 4096
HPAGE_PMD_SIZE = 2 << 20


class PageAllocator:
    def __init__(self, base: int, size: int, discard):
        """``discard(pa, size)`` zeroes pages and returns non-zero if it may not."""
        self._free = SortedDict({base: base + size})
        self._discard = discard
        self._lock = threading.Lock()

    def alloc(self, size: int, align: int = PAGE_SIZE) -> int:
        """A free range of ``size`` bytes aligned to ``align``; ENOMEM if none."""
        size = max(size, PAGE_SIZE)
        with self._lock:
            for start, end in self._free.items():
                pa = -(-start // align) * align
                if pa + size <= end:
                    del self._free[start]
                    if start < pa:
                        self._free[start] = pa
                    if pa + size < end:
                        self._free[pa + size] = end
                    return pa
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

    def free(self, pa: int, size: int) -> None:
        size = max(size, PAGE_SIZE)
        if self._discard(pa, size):  # the hypervisor says a page is still lent
            raise RuntimeError(f"freeing {pa:#x}+{size:#x}, which a VM still holds")
        with self._lock:
            end = pa + size
            nxt = self._free.get(end)
            if nxt is not None:
                del self._free[end]
                end = nxt
            i = self._free.bisect_left(pa) - 1
            if i >= 0:
                prev = self._free.keys()[i]
                if self._free[prev] == pa:
                    pa = prev
            self._free[pa] = end

    @property
    def free_bytes(self) -> int:
        with self._lock:
            return sum(end - start for start, end in self._free.items())
