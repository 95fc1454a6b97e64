"""A GenieZone VM at EL2: its stage 2, memory slots, capabilities and teardown.
It answers the calls of the Linux driver's arch/arm64/geniezone/vm.c and
drivers/virt/geniezone/{gzvm_vm,gzvm_mmu}.c (spec §2, §3.3-3.6, §3.11).

How EL2 keeps a VM is not public (spec §5); what follows is the model's
own, documented in Documentation/geniezone.rst ("inferred"):

- memory slots (``GZVM_MAX_MEM_REGION`` = 10) are IPA ranges the host
  registered with SET_MEMREGION; an access to an unmapped IPA inside one
  is a page fault for the host, outside every one it is MMIO;
- a guest page is a host RAM page (below EL2's pool), 4 KiB, mapped RWX at
  one gfn of one VM; the hypervisor records who holds each PFN and refuses
  a PFN another VM (or the same VM at another gfn) or EL2 itself holds;
- a protected VM's pages are zeroed before the host gets them back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum

from hyp.arch.pgtable import ACCESS_R, ACCESS_W, ACCESS_X, IPA_BITS, S2Attrs, Stage2
from hyp.geniezone.errors import Error, GzError, check
from hyp.geniezone.vgic import GzVgic
from hyp.hw.board import PAGE_SHIFT, PAGE_SIZE

GZVM_MAX_VCPUS = 8
GZVM_MAX_MEM_REGION = 10
BLOCK_SIZE = 2 << 20  # GZVM_BLOCK_BASED_DEMAND_PAGE_SIZE
BLOCK_PAGES = BLOCK_SIZE // PAGE_SIZE
HYP_BATCH_PAGES = BLOCK_PAGES  # what QUERY_HYP_BATCH_PAGES answers
DESTROY_BATCH_PAGES = 128  # what QUERY_DESTROY_BATCH_PAGES answers
PVMFW_SIZE = 0  # no pvmfw image is loaded by this model
GUEST_RAM = S2Attrs(ACCESS_R | ACCESS_W | ACCESS_X)
IPA_LIMIT = 1 << IPA_BITS

# gzvm_userspace_memory_region.flags, forwarded as MEMREGION_PURPOSE's flags
PURPOSE_FLAGS = 1 | 2 | 4  # GUEST_MEM, PROTECT_FW, STATIC_SWIOTLB


class Cap(IntEnum):
    """gzvm_enable_cap.cap values EL2 serves (spec §1.3)."""

    PROTECTED_VM = 0xFFBADAB1
    BLOCK_BASED_DEMAND_PAGING = 0x9201
    ENABLE_DEMAND_PAGING = 0x9202
    ENABLE_IDLE = 0x9203
    QUERY_HYP_BATCH_PAGES = 0x9204
    QUERY_DESTROY_BATCH_PAGES = 0x9205


class PvmCmd(IntEnum):
    SET_PVMFW_GPA = 0
    GET_PVMFW_SIZE = 1
    SET_PROTECTED_VM = 2


@dataclass
class Memslot:
    slot: int
    gpa: int
    pages: int

    @property
    def end(self) -> int:
        return self.gpa + self.pages * PAGE_SIZE

    def contains(self, ipa: int, size: int = 1) -> bool:
        return self.gpa <= ipa and ipa + size <= self.end


@dataclass
class GzVm:
    """One VM; ``hyp`` is the :class:`~hyp.geniezone.hypervisor.GenieZone`."""

    hyp: object
    vm_id: int
    stage2: Stage2
    vgic: GzVgic
    vtimer_offset: int
    run_group: object  # the scheduler's RunGroup of its vCPUs
    vcpus: dict = field(default_factory=dict)  # vcpu_id -> GzVcpu
    memslots: dict[int, Memslot] = field(default_factory=dict)
    purposes: list[tuple[int, int, int]] = field(default_factory=list)  # gpa, size, flags
    mapped: dict[int, int] = field(default_factory=dict)  # gfn -> pfn
    demand_paging: bool = False
    block_buffer: int | None = None  # PA of the PFN array of MAP_GUEST_BLOCK
    idle: bool = False
    protected: bool = False
    pvmfw_gpa: int | None = None
    dtb: tuple[int, int] | None = None
    started: bool = False  # a vCPU has run
    dying: bool = False  # DESTROY_VM has begun releasing pages

    # memory slots
    def memslot_at(self, ipa: int) -> Memslot | None:
        return next((m for m in self.memslots.values() if m.contains(ipa)), None)

    def register_memslot(self, slot: int, gpa: int, pages: int) -> None:
        """SET_MEMREGION without constituents: the slot's IPA range, page
        aligned, inside the IPA space, overlapping no other slot and no vGIC
        frame. Registering a slot again with another range is ERR_BUSY
        while pages are mapped in it (EL2 does not move mapped memory)."""
        check(slot < GZVM_MAX_MEM_REGION, why="slot")
        check(gpa % PAGE_SIZE == 0 and 0 < pages, why="range")
        new = Memslot(slot, gpa, pages)
        check(new.end <= IPA_LIMIT, why="beyond the IPA space")
        for other in self.memslots.values():
            overlap = other.gpa < new.end and new.gpa < other.end
            check(other.slot == slot or not overlap, why=f"overlaps slot {other.slot}")
        check(not self.vgic.overlaps(gpa, pages * PAGE_SIZE), why="overlaps the vGIC")
        old = self.memslots.get(slot)
        if old is not None and (old.gpa, old.pages) != (gpa, pages):
            inside = any(old.contains(gfn << PAGE_SHIFT) for gfn in self.mapped)
            check(not inside, Error.ERR_BUSY, "pages are mapped in the slot")
        self.memslots[slot] = new

    # guest pages
    def map_pages(self, slot: int, gfn: int, pfns: list[int]) -> None:
        """Map ``pfns`` at ``gfn``.. inside memory slot ``slot``; all or nothing.
        A gfn already mapped to the same PFN is left as it is (two vCPUs may
        fault on it at once); to another PFN it is ERR_INVALID_ARGS."""
        memslot = self.memslots.get(slot)
        check(memslot is not None, why=f"no memory slot {slot}")
        check(len(pfns) > 0, why="no pages")
        check(memslot.contains(gfn << PAGE_SHIFT, len(pfns) * PAGE_SIZE), why="outside the slot")
        uses = Counter(pfns)
        todo = []
        for i, pfn in enumerate(pfns):
            current = self.mapped.get(gfn + i)
            if current == pfn:
                continue
            check(current is None, why=f"gfn {gfn + i:#x} is mapped")
            check(uses[pfn] == 1, why="PFN twice")
            self.hyp.check_guest_page(pfn)
            todo.append((gfn + i, pfn))
        for run in _runs(todo):  # a block's pages go in with one table walk per table
            pas = [pfn << PAGE_SHIFT for _, pfn in run]
            self.stage2.map_pages(run[0][0] << PAGE_SHIFT, pas, GUEST_RAM)
        for page_gfn, pfn in todo:
            self.mapped[page_gfn] = pfn
            self.hyp.take_page(pfn, self)
        if todo:
            self.flush()

    def unmap_page(self, gfn: int) -> None:
        """Take ``gfn`` out of the stage 2 and give its page back to the host."""
        pfn = self.mapped.pop(gfn)
        self.stage2.unmap(gfn << PAGE_SHIFT, PAGE_SIZE)
        self.hyp.release_page(pfn, scrub=self.protected)

    def flush(self) -> None:
        for vcpu in self.vcpus.values():
            vcpu.flush_translations()

    def release(self, batch: int) -> int:
        """Unmap up to ``batch`` pages (all if 0), each run of consecutive gfns
        with one stage-2 unmap, and give them back; how many remain mapped."""
        gfns = list(self.mapped)
        gone = [(gfn, self.mapped.pop(gfn)) for gfn in (gfns if batch == 0 else gfns[:batch])]
        for run in _runs(gone):
            self.stage2.unmap(run[0][0] << PAGE_SHIFT, len(run) * PAGE_SIZE)
        for _, pfn in gone:
            self.hyp.release_page(pfn, scrub=self.protected)
        if gfns:
            self.flush()
        return len(self.mapped)

    # capabilities
    def enable_cap(self, cap: int, args: list[int]) -> int:
        """ENABLE_CAP for this VM; returns x1. ERR_NOT_SUPPORTED for a cap EL2
        does not know, ERR_INVALID_ARGS for bad arguments, ERR_BUSY for a
        memory mode or protection change after the VM first ran."""
        if cap == Cap.ENABLE_DEMAND_PAGING:
            check(not self.started, Error.ERR_BUSY, "the VM has run")
            self.demand_paging = True
        elif cap == Cap.BLOCK_BASED_DEMAND_PAGING:
            check(not self.started, Error.ERR_BUSY, "the VM has run")
            check(self.demand_paging, why="demand paging is not enabled")
            check(args[0] == BLOCK_SIZE, why="block size")
            check(self.block_buffer is None, Error.ERR_BUSY, "buffer already registered")
            self.hyp.share_pages(args[1], 1)
            self.block_buffer = args[1]
        elif cap == Cap.ENABLE_IDLE:
            self.idle = True
        elif cap == Cap.PROTECTED_VM:
            return self._protected_vm(args[0], args[1])
        elif cap in (Cap.QUERY_HYP_BATCH_PAGES, Cap.QUERY_DESTROY_BATCH_PAGES):
            return global_cap(cap)
        else:
            raise GzError(Error.ERR_NOT_SUPPORTED, f"cap {cap:#x}")
        return 0

    def _protected_vm(self, command: int, gpa: int) -> int:
        if command == PvmCmd.GET_PVMFW_SIZE:
            return PVMFW_SIZE
        check(command in (PvmCmd.SET_PVMFW_GPA, PvmCmd.SET_PROTECTED_VM), why="sub-command")
        check(not self.started, Error.ERR_BUSY, "the VM has run")
        if command == PvmCmd.SET_PVMFW_GPA:
            check(gpa % PAGE_SIZE == 0 and gpa < IPA_LIMIT, why="pvmfw GPA")
            self.pvmfw_gpa = gpa
        self.hyp.protect(self)
        return 0

    def memregion_purpose(self, gpa: int, size: int, flags: int) -> None:
        check(gpa % PAGE_SIZE == 0 and size % PAGE_SIZE == 0 and size > 0, why="range")
        check(gpa + size <= IPA_LIMIT, why="beyond the IPA space")
        check(flags & ~PURPOSE_FLAGS == 0, why="flags")
        self.purposes.append((gpa, size, flags))

    def set_dtb_config(self, addr: int, size: int) -> None:
        """The guest DTB must lie inside one memory slot."""
        memslot = self.memslot_at(addr)
        check(size > 0 and memslot is not None and memslot.contains(addr, size), why="DTB")
        self.dtb = (addr, size)

    def statistics(self) -> tuple[int, int]:
        """GET_STATISTICS: (protected_hyp_mem, protected_shared_mem) in bytes: EL2
        pages holding this VM's stage 2, and the host pages it shares with EL2
        for the VM (vCPU areas, the PFN buffer)."""
        shared = len(self.vcpus) * 2 + (1 if self.block_buffer is not None else 0)
        return self.stage2.table_pages() * PAGE_SIZE, shared * PAGE_SIZE


def global_cap(cap: int) -> int:
    """ENABLE_CAP with vm_id 0: the v13 queries; anything else ERR_INVALID_ARGS."""
    if cap == Cap.QUERY_HYP_BATCH_PAGES:
        return HYP_BATCH_PAGES
    if cap == Cap.QUERY_DESTROY_BATCH_PAGES:
        return DESTROY_BATCH_PAGES
    raise GzError(Error.ERR_INVALID_ARGS, f"cap {cap:#x} needs a VM")


def _runs(pages: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """(gfn, pfn) pairs cut into runs of consecutive gfns, in order."""
    runs: list[list[tuple[int, int]]] = []
    for page in pages:
        if runs and runs[-1][-1][0] + 1 == page[0]:
            runs[-1].append(page)
        else:
            runs.append([page])
    return runs
