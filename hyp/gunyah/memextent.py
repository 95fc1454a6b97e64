"""Memory extents (hyp/mem/memextent): ranges of physical memory as objects.

A basic extent is configured with a physical range and, when activated,
takes ownership of it from its partition in the memdb. A derived basic
extent takes a sub-range (offset and size in the parent) from its parent.
A sparse extent is a window of physical addresses (absolute, even when
derived) that starts empty and gains pages by donation.
:meth:`Memextent.donate` moves pages between extents by compare-and-swap
in the memdb and unmaps them wherever the giving extent had them mapped.
Offsets are relative to an extent's base; sparse extents have base 0, so
their offsets are physical addresses (as Linux uses them).

An extent that takes a TO_PROTECTED donation is protected from then on (the
memory of a VM it was lent to): the host cannot map its pages, it takes no
TO_SIBLING donation and gives pages back only FROM_PROTECTED.
"""

from __future__ import annotations

from enum import IntEnum

from hyp.gunyah.errors import Error, HypError, check
from hyp.gunyah.object import Object, ObjectState, ObjectType
from hyp.hw.board import PAGE_SIZE


class MemType(IntEnum):
    NORMAL = 0
    DEVICE = 1


class ExtentType(IntEnum):
    BASIC = 0
    SPARSE = 1


class DonateType(IntEnum):
    TO_CHILD = 0
    TO_PARENT = 1
    TO_SIBLING = 2
    TO_PROTECTED = 3
    FROM_PROTECTED = 4


def _aligned(*values: int) -> bool:
    return all(v % PAGE_SIZE == 0 for v in values)


class Memextent(Object):
    """memextent_attrs: bits 2:0 access, 9:8 memtype, 17:16 type."""

    TYPE = ObjectType.MEMEXTENT

    def __init__(self, hyp, partition):
        super().__init__(hyp, partition)
        self.base = self.size = 0
        self.access, self.memtype, self.kind = 0, MemType.NORMAL, ExtentType.BASIC
        self.parent: Memextent | None = None
        self.mapped_in: set = set()  # addrspaces holding mappings of this extent
        self.protected = False

    def configure(self, phys_base: int, size: int, attrs: int, parent=None) -> None:
        self.require(ObjectState.INIT)
        check(attrs & ~0x3_0307 == 0, Error.ARGUMENT_INVALID, "attributes")
        check(size > 0 and _aligned(phys_base, size), Error.ARGUMENT_ALIGNMENT)
        check(phys_base + size <= 1 << 48, Error.ADDR_OVERFLOW)
        kind = ExtentType(attrs >> 16 & 3) if attrs >> 16 & 3 in (0, 1) else None
        check(kind is not None and attrs >> 8 & 3 in (0, 1), Error.ARGUMENT_INVALID)
        if parent is not None:
            check(attrs & 7 & ~parent.access == 0, Error.ARGUMENT_INVALID, "access")
            if kind == ExtentType.BASIC:
                check(phys_base + size <= parent.size, Error.ADDR_OVERFLOW, "outside parent")
                phys_base += parent.base
        self.base, self.size, self.parent = phys_base, size, parent
        self.access, self.memtype, self.kind = attrs & 7, MemType(attrs >> 8 & 3), kind

    def on_activate(self) -> None:
        check(self.size > 0, Error.OBJECT_CONFIG, "memextent not configured")
        if self.kind == ExtentType.SPARSE:
            return
        source = self.parent if self.parent is not None else self.partition
        self.hyp.memdb.update(self.base, self.size, self, source)

    def owned(self) -> bool:
        """Whether the extent holds any page."""
        return bool(self.hyp.memdb.ranges(self))

    def owns(self, pa: int, size: int) -> bool:
        return self.hyp.memdb.is_owner(pa, size, self)

    def range(self, offset: int, size: int) -> tuple[int, int]:
        """Physical [start, end) of an offset range, checked against the extent."""
        check(_aligned(offset, size) and size > 0, Error.ARGUMENT_ALIGNMENT)
        check(offset + size <= self.size, Error.ARGUMENT_SIZE, "beyond the extent")
        return self.base + offset, self.base + offset + size

    def donate(self, kind: DonateType, to: Memextent, offset: int, size: int) -> None:
        """Move pages at ``offset`` (of the receiving extent for TO_CHILD, of self
        otherwise) from self to ``to``; MEMDB_NOT_OWNER if self does not own them."""
        relation_ok = {
            DonateType.TO_CHILD: to.parent is self,
            DonateType.TO_PARENT: self.parent is to,
            DonateType.TO_SIBLING: self.parent is to.parent,
            DonateType.TO_PROTECTED: self.parent is to.parent,
            DonateType.FROM_PROTECTED: self.parent is to.parent,
        }[kind]
        check(relation_ok, Error.ARGUMENT_INVALID, f"{kind.name}: extents are not related so")
        protecting = kind == DonateType.TO_PROTECTED
        check(to.protected == protecting or (protecting and not to.owned()), Error.ARGUMENT_INVALID)
        check(self.protected == (kind == DonateType.FROM_PROTECTED), Error.ARGUMENT_INVALID)
        start, end = (to if kind == DonateType.TO_CHILD else self).range(offset, size)
        check(to.base <= start and end <= to.base + to.size, Error.ARGUMENT_SIZE)
        was, to.protected = to.protected, to.protected or protecting
        try:
            self.hyp.memdb.update(start, end - start, to, self)
        except HypError:
            to.protected = was
            raise
        for addrspace in list(self.mapped_in):
            addrspace.unmap_pages_of(self, start, end)

    def on_destroy(self) -> None:
        for addrspace in list(self.mapped_in):
            addrspace.unmap_pages_of(self, self.base, self.base + self.size)
        if self.state == ObjectState.ACTIVE:
            giver = self.parent if self.parent is not None else self.partition
            for start, end, _ in self.hyp.memdb.ranges(self):
                self.hyp.memdb.update(start, end - start, giver, self)
