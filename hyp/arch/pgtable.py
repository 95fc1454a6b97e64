"""ARMv8 stage-2 translation tables, written into DRAM (Gunyah hyp/mem/pgtable/armv8,
Linux arch/arm64/kvm/hyp/pgtable.c).

4 KiB granule, 40-bit IPA, walks starting at level 1 with two concatenated
level-1 tables (VTCR_EL2.T0SZ=24, SL0=1), so the MMU of every core running
the VM enforces what is written here. Aligned ranges use 1 GiB and 2 MiB
blocks; unmapping part of a block splits it. Table pages come from the
hypervisor's own page pool. Any EL2 of this SoC uses these tables as they
are; which IPAs it maps, and when, is its own policy.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

from hyp.hw.board import PAGE_SIZE
from hyp.hw.memory import Dram

IPA_BITS = 40
_PAGE_SHIFT = 12
_CACHED_PAGES = 4096  # walks remembered per VM before the cache starts over
_MISS = object()
_SHIFT = {1: 30, 2: 21, 3: 12}
_ROOT_ENTRIES = 1 << (IPA_BITS - _SHIFT[1])
_OA_MASK = ((1 << 48) - 1) & ~(PAGE_SIZE - 1)

_VALID, _TABLE_OR_PAGE = 1 << 0, 1 << 1
_S2AP_R, _S2AP_W, _AF, _XN = 1 << 6, 1 << 7, 1 << 10, 1 << 54
_SH_INNER = 3 << 8

# VTCR_EL2: T0SZ=24, SL0=1 (level 1), IRGN0/ORGN0 WBWA, SH0 inner, TG0 4K, PS 40 bits.
VTCR = (1 << 31) | (2 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | (64 - IPA_BITS)

ACCESS_X, ACCESS_W, ACCESS_R = 1, 2, 4
MEMATTR_NORMAL_WB, MEMATTR_DEVICE_NGNRE = 0xF, 0x1


@dataclass(frozen=True)
class S2Attrs:
    """What a leaf grants: access bits (R 4, W 2, X 1) and stage-2 MemAttr."""

    access: int
    memattr: int = MEMATTR_NORMAL_WB

    def descriptor(self, pa: int, level: int) -> int:
        d = pa | _VALID | _AF | _SH_INNER | self.memattr << 2
        d |= _TABLE_OR_PAGE if level == 3 else 0
        d |= _S2AP_R if self.access & ACCESS_R else 0
        d |= _S2AP_W if self.access & ACCESS_W else 0
        d |= 0 if self.access & ACCESS_X else _XN
        return d

    @classmethod
    def of(cls, desc: int) -> S2Attrs:
        access = (ACCESS_R if desc & _S2AP_R else 0) | (ACCESS_W if desc & _S2AP_W else 0)
        access |= 0 if desc & _XN else ACCESS_X
        return cls(access, desc >> 2 & 0xF)


class PagePool:
    """The hypervisor's private pages: a bump allocator with a free list."""

    def __init__(self, dram: Dram, base: int, size: int):
        self.dram, self.base, self.end = dram, base, base + size
        self._next, self._free = base, []

    def alloc(self, pages: int = 1) -> int:
        """``pages`` zeroed, contiguous, naturally aligned pages."""
        if pages == 1 and self._free:
            pa = self._free.pop()
        else:
            align = pages * PAGE_SIZE
            pa = -(-self._next // align) * align
            if pa + align > self.end:
                raise MemoryError("hypervisor page pool exhausted")
            self._free += range(self._next, pa, PAGE_SIZE)
            self._next = pa + align
        self.dram.zero(pa, pages * PAGE_SIZE)
        return pa

    def free(self, pa: int, pages: int = 1) -> None:
        self._free += range(pa, pa + pages * PAGE_SIZE, PAGE_SIZE)

    @property
    def used(self) -> int:
        return (self._next - self.base) // PAGE_SIZE - len(self._free)


class Stage2:
    """One VM's stage-2 tables; ``root`` goes in VTTBR_EL2 with the VMID.

    :meth:`lookup` remembers its walks per page (a hit or a miss), the way a
    TLB does; every change here forgets them all, so a lookup never answers
    from tables that have changed since.
    """

    def __init__(self, pool: PagePool):
        self.pool, self.dram = pool, pool.dram
        self.root = pool.alloc(2)
        self._walks: dict[int, tuple[int, S2Attrs] | None] = {}  # IPA page -> PA page
        self._generation = 0  # changes made so far
        self._walks_lock = threading.Lock()  # lookups run outside the EL2 lock too

    def _changed(self) -> None:
        with self._walks_lock:
            self._generation += 1
            self._walks.clear()

    def vttbr(self, vmid: int) -> int:
        return (vmid & 0xFFFF) << 48 | self.root

    # walking
    def _entry_pa(self, table: int, level: int, ipa: int) -> int:
        mask = _ROOT_ENTRIES - 1 if level == 1 else 511
        return table + ((ipa >> _SHIFT[level]) & mask) * 8

    def lookup(self, ipa: int) -> tuple[int, S2Attrs] | None:
        """(PA, attrs) for ``ipa`` by the tables in DRAM, or None."""
        page = ipa >> _PAGE_SHIFT
        hit = self._walks.get(page, _MISS)
        if hit is _MISS:
            generation = self._generation
            hit = self._walk(page << _PAGE_SHIFT)
            with self._walks_lock:
                if generation == self._generation:  # no change since the walk began
                    if len(self._walks) >= _CACHED_PAGES:
                        self._walks.clear()
                    self._walks[page] = hit
        if hit is None:
            return None
        return hit[0] | (ipa & (PAGE_SIZE - 1)), hit[1]

    def _walk(self, ipa: int) -> tuple[int, S2Attrs] | None:
        if ipa >> IPA_BITS:
            return None
        table = self.root
        for level in (1, 2, 3):
            desc = self.dram.read_u64(self._entry_pa(table, level, ipa))
            if not desc & _VALID:
                return None
            if level < 3 and desc & _TABLE_OR_PAGE:
                table = desc & _OA_MASK
                continue
            size = 1 << _SHIFT[level]
            return (desc & _OA_MASK & ~(size - 1)) | (ipa & (size - 1)), S2Attrs.of(desc)
        return None

    # changing
    def map(self, ipa: int, pa: int, size: int, attrs: S2Attrs) -> None:
        """Map [ipa, ipa+size) to pa; the range must be unmapped."""
        try:
            while size:
                level = self._level_for(ipa, pa, size)
                entry = self._entry(ipa, level, create=True)
                self._drop_table(entry, level)
                self.dram.write_u64(entry, attrs.descriptor(pa, level))
                step = 1 << _SHIFT[level]
                ipa, pa, size = ipa + step, pa + step, size - step
        finally:
            self._changed()  # after the writes: a walk racing with them is not kept

    def map_pages(self, ipa: int, pas: list[int], attrs: S2Attrs) -> None:
        """Map the 4 KiB pages at ``pas`` one after another from ``ipa`` (each
        gfn unmapped): each level-3 table on the way is found once and its
        descriptors written in one go, not one walk per page."""
        template = attrs.descriptor(0, 3)
        done = 0
        try:
            while done < len(pas):
                at = ipa + done * PAGE_SIZE
                n = min(len(pas) - done, 512 - (at >> _SHIFT[3] & 511))
                descriptors = [pa | template for pa in pas[done : done + n]]
                entry = self._entry(at, 3, create=True)
                self.dram.write(entry, struct.pack(f"<{n}Q", *descriptors))
                done += n
        finally:
            self._changed()  # map_pages fills empty entries only, but a miss may be cached

    def unmap(self, ipa: int, size: int) -> None:
        """Invalidate [ipa, ipa+size), splitting blocks at the edges."""
        end = ipa + size
        try:
            while ipa < end:
                level, entry = self._leaf(ipa)
                step = 1 << _SHIFT[level]
                if entry is None:
                    ipa = (ipa | (step - 1)) + 1
                    continue
                if ipa & (step - 1) or ipa + step > end:
                    self._split(entry, level)
                    continue
                # pages: the rest of the range in this level-3 table at once
                n = (
                    min((end - ipa) >> _SHIFT[3], 512 - (ipa >> _SHIFT[3] & 511))
                    if level == 3
                    else 1
                )
                self.dram.write(entry, bytes(8 * n))
                ipa += step * n
        finally:
            self._changed()

    def _level_for(self, ipa: int, pa: int, size: int) -> int:
        for level in (1, 2):
            block = 1 << _SHIFT[level]
            if not (ipa | pa) & (block - 1) and size >= block:
                return level
        return 3

    def _entry(self, ipa: int, level: int, create: bool) -> int | None:
        """PA of the descriptor for ``ipa`` at ``level``, making tables on the way."""
        table = self.root
        for lvl in range(1, level):
            entry = self._entry_pa(table, lvl, ipa)
            desc = self.dram.read_u64(entry)
            if not desc & _VALID:
                if not create:
                    return None
                desc = self.pool.alloc() | _VALID | _TABLE_OR_PAGE
                self.dram.write_u64(entry, desc)
            elif not desc & _TABLE_OR_PAGE:
                raise ValueError(f"IPA {ipa:#x} is inside a block mapping")
            table = desc & _OA_MASK
        return self._entry_pa(table, level, ipa)

    def _leaf(self, ipa: int) -> tuple[int, int | None]:
        """(level, descriptor PA) of the valid leaf covering ``ipa``, else (level, None)."""
        table = self.root
        for level in (1, 2, 3):
            entry = self._entry_pa(table, level, ipa)
            desc = self.dram.read_u64(entry)
            if not desc & _VALID:
                return level, None
            if level == 3 or not desc & _TABLE_OR_PAGE:
                return level, entry
            table = desc & _OA_MASK
        raise AssertionError("unreachable")

    def _drop_table(self, entry: int, level: int) -> None:
        """Free the (empty) table a block is about to replace."""
        desc = self.dram.read_u64(entry)
        if level < 3 and desc & _VALID and desc & _TABLE_OR_PAGE:
            self._free_tables(desc & _OA_MASK, level + 1)
            self.pool.free(desc & _OA_MASK)

    def _split(self, entry: int, level: int) -> None:
        """Replace a block by a table of the next level mapping the same range."""
        desc = self.dram.read_u64(entry)
        child, step = level + 1, 1 << _SHIFT[level + 1]
        attrs, base = S2Attrs.of(desc), desc & _OA_MASK
        table = self.pool.alloc()
        for i in range(512):
            self.dram.write_u64(table + i * 8, attrs.descriptor(base + i * step, child))
        self.dram.write_u64(entry, table | _VALID | _TABLE_OR_PAGE)

    def table_pages(self) -> int:
        """How many pool pages the tables use, the two-page root included."""
        return 2 + self._count_tables(self.root, 1)

    def _count_tables(self, table: int, level: int) -> int:
        count = 0
        for i in range(_ROOT_ENTRIES if level == 1 else 512):
            desc = self.dram.read_u64(table + i * 8)
            if level < 3 and desc & _VALID and desc & _TABLE_OR_PAGE:
                count += 1 + self._count_tables(desc & _OA_MASK, level + 1)
        return count

    def destroy(self) -> None:
        """Free every table page, the root included."""
        self._free_tables(self.root, 1)
        self.pool.free(self.root, 2)
        self._changed()

    def _free_tables(self, table: int, level: int) -> None:
        """Free the tables below ``table`` (a level-3 table holds only pages); the
        table is read whole, it is the VM's teardown."""
        if level == 3:
            return
        entries = _ROOT_ENTRIES if level == 1 else 512
        for desc in struct.unpack(f"<{entries}Q", self.dram.read(table, entries * 8)):
            if desc & _VALID and desc & _TABLE_OR_PAGE:
                sub = desc & _OA_MASK
                self._free_tables(sub, level + 1)
                self.pool.free(sub)
