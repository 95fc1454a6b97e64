"""Guest address spaces (hyp/mem/addrspace): a VMID and real stage-2 tables.

Mappings are made from memory extents with :meth:`Addrspace.map`: only
pages the extent owns in the memdb can be mapped, with at most the
extent's access. A page is owned by one extent, so address spaces share
memory exactly when they map the same extent: mapping an extent another
address space maps joins their run groups (:mod:`hyp.arch.scheduler`),
and their vCPUs take turns from then on. Every change is written to the stage-2 tables in DRAM and
then flushed from every core running a vCPU of this address space.
Demand-paging ranges (set for Linux's lent memory) turn a guest access to
an unmapped IPA inside them into ADDRSPACE_PAGE_FAULT instead of VMMIO.
"""

from __future__ import annotations

from dataclasses import dataclass

from sortedcontainers import SortedDict

from hyp.arch.pgtable import IPA_BITS, S2Attrs, Stage2
from hyp.gunyah.errors import Error, HypError, check
from hyp.gunyah.object import Object, ObjectState, ObjectType
from hyp.hw.board import PAGE_SIZE

MAP_PARTIAL, MAP_PRIVATE, MAP_VMMIO, MAP_NOSYNC = 1 << 0, 1 << 1, 1 << 2, 1 << 31
_MAP_FLAGS = MAP_PARTIAL | MAP_PRIVATE | MAP_VMMIO | MAP_NOSYNC
_ATTRS_VALID = 0x00FF_0077  # user access 2:0, kernel access 6:4, memtype 23:16
MEMTYPE_WB = 0xF


@dataclass
class Mapping:
    end: int
    extent: object
    pa: int
    attrs: S2Attrs


def mapping_attrs(map_attrs: int, extent) -> S2Attrs:
    """Stage-2 attributes of memextent_mapping_attrs; DENIED beyond the extent's access."""
    check(map_attrs & ~_ATTRS_VALID == 0, Error.ARGUMENT_INVALID, "map_attrs")
    access = (map_attrs & 7) | (map_attrs >> 4 & 7)
    check(access & ~extent.access == 0, Error.DENIED, "access beyond the memextent's")
    return S2Attrs(access, map_attrs >> 16 & 0xF)


class Addrspace(Object):
    TYPE = ObjectType.ADDRSPACE

    def __init__(self, hyp, partition):
        super().__init__(hyp, partition)
        self.vmid: int | None = None
        self.stage2: Stage2 | None = None
        self.mappings = SortedDict()
        # (PA, IPA) of every mapping, and the longest one's size: a donation
        # finds the mappings of its pages without looking at every other one.
        self._by_pa = SortedDict()
        self._longest = 0
        self.demand_ranges: list[tuple[int, int]] = []
        self.vcpus: list = []
        self.run_group = None  # the scheduler's, from activation

    def configure(self, vmid: int) -> None:
        self.require(ObjectState.INIT)
        check(0 < vmid < 0xFFFF, Error.ARGUMENT_INVALID, "vmid")
        self.vmid = vmid

    def on_activate(self) -> None:
        check(self.vmid is not None, Error.OBJECT_CONFIG, "no vmid")
        check(self.vmid not in self.hyp.vmids, Error.BUSY, f"vmid {self.vmid} in use")
        self.hyp.vmids.add(self.vmid)
        self.stage2 = Stage2(self.hyp.pool)
        self.run_group = self.hyp.scheduler.group()

    def attach_vcpu(self, vcpu) -> None:
        vcpu.require(ObjectState.INIT)
        vcpu.addrspace = self

    # mapping
    def _overlapping(self, start: int, end: int) -> list[int]:
        keys = list(self.mappings.irange(start, end - 1))
        i = self.mappings.bisect_left(start) - 1
        if i >= 0:
            k = self.mappings.keys()[i]
            if self.mappings[k].end > start:
                keys.insert(0, k)
        return keys

    def map(self, extent, vbase: int, map_attrs: int, flags: int, offset: int, size: int):
        """Map extent pages [offset, offset+size) at IPA ``vbase``."""
        check(flags & ~_MAP_FLAGS == 0, Error.ARGUMENT_INVALID, "map_flags")
        attrs = mapping_attrs(map_attrs, extent)
        pa, _ = extent.range(offset, size)
        check(vbase % PAGE_SIZE == 0, Error.ARGUMENT_ALIGNMENT)
        check(vbase + size <= 1 << IPA_BITS, Error.ADDR_OVERFLOW)
        check(extent.owns(pa, size), Error.MEMDB_NOT_OWNER, "extent does not own the pages")
        check(not self._overlapping(vbase, vbase + size), Error.EXISTING_MAPPING)
        for other in extent.mapped_in - {self}:  # the extent's pages are shared with them
            self.hyp.scheduler.join(other.run_group, self.run_group)
        self.stage2.map(vbase, pa, size, attrs)
        self._put(vbase, Mapping(vbase + size, extent, pa, attrs))
        extent.mapped_in.add(self)
        self.flush()

    def unmap(self, extent, vbase: int, flags: int, offset: int, size: int) -> None:
        """Unmap what ``extent`` maps at [vbase, vbase+size) from ``offset``."""
        check(flags & ~_MAP_FLAGS == 0, Error.ARGUMENT_INVALID, "map_flags")
        pa, _ = extent.range(offset, size)
        keys = self._overlapping(vbase, vbase + size)
        for k in keys:
            m = self.mappings[k]
            ok = m.extent is extent and m.pa - k == pa - vbase
            check(ok, Error.ARGUMENT_INVALID, "not mapped from this extent there")
        self._remove(vbase, vbase + size)
        self.flush()

    def _remove(self, start: int, end: int) -> None:
        touched = set()
        for k in self._overlapping(start, end):
            m = self._pop(k)
            touched.add(m.extent)
            lo, hi = max(k, start), min(m.end, end)
            self.stage2.unmap(lo, hi - lo)
            if k < lo:
                self._put(k, Mapping(lo, m.extent, m.pa, m.attrs))
            if hi < m.end:
                self._put(hi, Mapping(m.end, m.extent, m.pa + (hi - k), m.attrs))
        still = {m.extent for m in self.mappings.values()}
        for extent in touched - still:
            extent.mapped_in.discard(self)

    def _put(self, vbase: int, m: Mapping) -> None:
        self.mappings[vbase] = m
        self._by_pa[m.pa, vbase] = None
        self._longest = max(self._longest, m.end - vbase)

    def _pop(self, vbase: int) -> Mapping:
        m = self.mappings.pop(vbase)
        del self._by_pa[m.pa, vbase]
        return m

    def unmap_pages_of(self, extent, pa_start: int, pa_end: int) -> None:
        """Drop every mapping of ``extent``'s pages in [pa_start, pa_end); the
        tables are flushed only if one was there. A VM's teardown donates back
        its pages one demand-paged page at a time: each donation looks at the
        mappings that may hold its pages (from a PA at most the longest
        mapping below), not at every mapping of the address space."""
        found, lowest = [], (pa_start - self._longest + 1, 0)
        for pa, k in self._by_pa.irange(lowest, (pa_end, 0), inclusive=(True, False)):
            m = self.mappings[k]
            lo, hi = max(pa, pa_start), min(pa + (m.end - k), pa_end)
            if m.extent is extent and lo < hi:
                found.append((k + (lo - pa), k + (hi - pa)))
        for start, end in found:
            self._remove(start, end)
        if found:
            self.flush()

    def lookup(self, extent, vbase: int, size: int) -> tuple[int, int, S2Attrs]:
        """(offset in extent, mapped size, attrs) of the mapping at ``vbase``."""
        keys = self._overlapping(vbase, vbase + max(size, 1))
        if not keys or keys[0] > vbase or self.mappings[keys[0]].extent is not extent:
            raise HypError(Error.ADDR_INVALID, f"nothing of that extent at {vbase:#x}")
        m = self.mappings[keys[0]]
        pa = m.pa + (vbase - keys[0])
        return pa - extent.base, min(size, m.end - vbase), m.attrs

    def translate(self, ipa: int) -> tuple[int, S2Attrs] | None:
        """(PA, attrs) of ``ipa`` by walking the real tables."""
        return self.stage2.lookup(ipa) if self.stage2 else None

    def configure_demand(self, base: int, size: int, op: int) -> None:
        """Add (op 0) or remove (op 1) a demand-paged range: faults in it are
        ADDRSPACE_PAGE_FAULT for the host to serve, whatever the access."""
        check(op in (0, 1), Error.ARGUMENT_INVALID, "op")
        check(size > 0 and not (base | size) % PAGE_SIZE, Error.ARGUMENT_INVALID, "alignment")
        check(base + size <= 1 << 64, Error.ADDR_OVERFLOW)
        check(base + size <= 1 << IPA_BITS, Error.ADDR_INVALID)
        if op == 1:
            check((base, size) in self.demand_ranges, Error.ARGUMENT_INVALID, "no such range")
            self.demand_ranges.remove((base, size))
            return
        overlap = any(b < base + size and base < b + n for b, n in self.demand_ranges)
        check(not overlap, Error.ARGUMENT_INVALID, "overlaps a range")
        self.demand_ranges.append((base, size))

    def in_demand_range(self, ipa: int) -> bool:
        return any(base <= ipa < base + size for base, size in self.demand_ranges)

    def flush(self) -> None:
        for vcpu in self.vcpus:
            vcpu.flush_translations()

    def on_destroy(self) -> None:
        if self.stage2 is not None:
            for m in self.mappings.values():
                m.extent.mapped_in.discard(self)
            self.mappings.clear()
            self._by_pa.clear()
            self.stage2.destroy()
            self.stage2 = None
            self.hyp.vmids.discard(self.vmid)
