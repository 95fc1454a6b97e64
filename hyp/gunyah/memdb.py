"""The memory ownership database (hyp/mem/memdb): who owns each physical page.

Ownership changes only by compare-and-swap: :meth:`MemDb.update` moves a
range to a new owner only if every byte of it is owned by the expected
owner now, else MEMDB_NOT_OWNER and nothing changes. Ranges are kept as
non-overlapping intervals, merged when neighbours have the same owner.

It also knows which pages the host maps (its stage 2): a host mapping is
refused over a page a protected owner (a VM it was lent to) holds, and a
move to a protected owner is refused (DENIED) while the host maps a page
of the range, so host and guest never hold a lent page at once. Pages the
host gives up from a mapping it keeps (:meth:`MemDb.host_revoke`: user
memory the host lends) no longer count as mapped by it.
"""

from __future__ import annotations

import threading

from sortedcontainers import SortedDict

from hyp.gunyah.errors import Error, HypError

PAGE = 0x1000


class MemDb:
    def __init__(self):
        self._ranges = SortedDict()  # start -> (end, owner)
        self._host_maps: dict[object, tuple[int, int]] = {}  # key -> [start, end) the host maps
        self._revoked: dict[object, set[int]] = {}  # key -> pages its mapping gave up
        self._lock = threading.Lock()

    def owner(self, pa: int):
        """The owner of the page at ``pa`` (None if unowned)."""
        with self._lock:
            i = self._ranges.bisect_right(pa) - 1
            if i >= 0:
                start = self._ranges.keys()[i]
                end, owner = self._ranges[start]
                if pa < end:
                    return owner
            return None

    def is_owner(self, base: int, size: int, owner) -> bool:
        with self._lock:
            return self._covered(base, base + size, owner)

    def _covered(self, start: int, end: int, owner) -> bool:
        pos = start
        i = max(self._ranges.bisect_right(start) - 1, 0)
        for key in self._ranges.keys()[i:]:
            if key >= end:
                break
            r_end, r_owner = self._ranges[key]
            if r_end <= pos:
                continue
            if key > pos or r_owner is not owner:
                return False
            pos = r_end
            if pos >= end:
                return True
        return pos >= end

    def update(self, base: int, size: int, new_owner, expected) -> None:
        """Move [base, base+size) from ``expected`` to ``new_owner`` atomically.

        ``expected=None`` claims unowned memory. MEMDB_NOT_OWNER otherwise;
        DENIED for a protected ``new_owner`` while the host maps a page of it.
        """
        end = base + size
        with self._lock:
            if getattr(new_owner, "protected", False) and self._host_mapped(base, end):
                raise HypError(Error.DENIED, f"the host maps {base:#x}+{size:#x}")
            if expected is None:
                if self._overlaps(base, end):
                    raise HypError(Error.MEMDB_NOT_OWNER, f"{base:#x} is owned")
            elif not self._covered(base, end, expected):
                raise HypError(Error.MEMDB_NOT_OWNER, f"{base:#x}+{size:#x}")
            self._carve(base, end)
            if new_owner is not None:
                self._ranges[base] = (end, new_owner)
                self._merge(base)

    def _overlaps(self, start: int, end: int) -> bool:
        i = max(self._ranges.bisect_right(start) - 1, 0)
        for key in self._ranges.keys()[i:]:
            if key >= end:
                return False
            if self._ranges[key][0] > start:
                return True
        return False

    def _carve(self, start: int, end: int) -> None:
        """Remove [start, end) from every interval, splitting at the edges."""
        i = max(self._ranges.bisect_right(start) - 1, 0)
        for key in list(self._ranges.keys()[i:]):
            if key >= end:
                break
            r_end, owner = self._ranges[key]
            if r_end <= start:
                continue
            del self._ranges[key]
            if key < start:
                self._ranges[key] = (start, owner)
            if r_end > end:
                self._ranges[end] = (r_end, owner)

    def _merge(self, start: int) -> None:
        end, owner = self._ranges[start]
        nxt = self._ranges.get(end)
        if nxt is not None and nxt[1] is owner:
            del self._ranges[end]
            self._ranges[start] = end, owner = nxt[0], owner
        i = self._ranges.index(start)
        if i > 0:
            prev = self._ranges.keys()[i - 1]
            p_end, p_owner = self._ranges[prev]
            if p_end == start and p_owner is owner:
                del self._ranges[start]
                self._ranges[prev] = (end, owner)

    def host_map(self, key, base: int, size: int) -> None:
        """Record the host's mapping ``key`` of [base, base+size); DENIED if a
        protected owner holds a page of it."""
        with self._lock:
            self._check_host_access(base, base + size)
            self._host_maps[key] = (base, base + size)

    def check_host_access(self, base: int, size: int) -> None:
        """DENIED if a protected owner holds a page of [base, base+size): the host
        may not touch it."""
        with self._lock:
            self._check_host_access(base, base + size)

    def _check_host_access(self, base: int, end: int) -> None:
        i = max(self._ranges.bisect_right(base) - 1, 0)
        for start in self._ranges.keys()[i:]:
            if start >= end:
                break
            r_end, owner = self._ranges[start]
            if r_end > base and getattr(owner, "protected", False):
                raise HypError(Error.DENIED, f"{start:#x} is lent to a VM")

    def host_unmap(self, key) -> None:
        with self._lock:
            self._host_maps.pop(key, None)
            self._revoked.pop(key, None)

    def host_revoke(self, base: int, size: int) -> list[tuple[object, int]]:
        """The host's stage 2 loses the pages of [base, base+size) in every mapping
        that holds them: (key, page address) of each page taken out of a mapping."""
        end, taken = base + size, []
        with self._lock:
            for key, (b, e) in self._host_maps.items():
                for pa in range(max(b, base), min(e, end), PAGE):
                    revoked = self._revoked.setdefault(key, set())
                    if pa not in revoked:
                        revoked.add(pa)
                        taken.append((key, pa))
        return taken

    def host_restore(self, base: int, size: int) -> list[tuple[object, int]]:
        """The host's stage 2 has the pages of [base, base+size) again: (key, page
        address) of each page given back to a mapping that had lost it."""
        end, given = base + size, []
        with self._lock:
            for key, revoked in self._revoked.items():
                pages = [pa for pa in revoked if base <= pa < end]
                revoked.difference_update(pages)
                given.extend((key, pa) for pa in pages)
        return given

    def _host_mapped(self, start: int, end: int) -> bool:
        for key, (b, e) in self._host_maps.items():
            revoked = self._revoked.get(key, ())
            lo, hi = max(b, start), min(e, end)
            if lo < hi and not revoked:
                return True
            if any(pa not in revoked for pa in range(lo - lo % PAGE, hi, PAGE)):
                return True
        return False

    def ranges(self, owner=None) -> list[tuple[int, int, object]]:
        """Every (start, end, owner), optionally only ``owner``'s."""
        with self._lock:
            return [(s, e, o) for s, (e, o) in self._ranges.items() if owner is None or o is owner]
