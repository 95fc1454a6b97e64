"""The memory GenieZone shares with the host driver, at physical addresses the
driver allocated (spec §1.2, §2): layouts of include/uapi/linux/gzvm.h
(``struct gzvm_vcpu_run``, ``struct gzvm_create_device``) and
include/linux/soc/mediatek/gzvm_drv.h (``struct gzvm_vcpu_hwstate``,
``struct gzvm_memory_region_ranges``), as EL2 reads and writes them in DRAM.

``hyp`` never imports ``uapi``: the offsets are restated here, and the
conformance tests compare both sides through the ioctl ABI.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hyp.hw.board import PAGE_SIZE

# struct gzvm_vcpu_run: exit_reason u32 @0, immediate_exit u8 @4, the union @8.
RUN_EXIT_REASON = 0
RUN_UNION, RUN_UNION_SIZE = 8, 256
RUN_SIZE = RUN_UNION + RUN_UNION_SIZE
# union arms (offsets from the start of the run struct)
MMIO_PHYS_ADDR, MMIO_DATA, MMIO_SIZE, MMIO_REG_NR, MMIO_IS_WRITE = 8, 16, 24, 32, 36
EXC_EXCEPTION, EXC_ERROR_CODE, EXC_FAULT_GPA = 8, 12, 16
HYPERCALL_ARGS, HYPERCALL_NARGS = 8, 8
EVENT_TYPE, EVENT_NDATA, EVENT_DATA = 8, 12, 16
INTERNAL_SUBERROR, INTERNAL_NDATA = 8, 12

# struct gzvm_vcpu_hwstate, the page after the run page.
HWSTATE_NR_LRS, HWSTATE_LR, HWSTATE_VTIMER_OFFSET = 0, 8, 136
HWSTATE_VTIMER_DELAY, HWSTATE_VTIMER_MIGRATE = 144, 152
GIC_V3_NR_LRS = 16
VCPU_AREA_PAGES = 2  # run page + hwstate page

# struct gzvm_memory_region_ranges and its 16-byte constituents.
RANGES_HEADER = struct.Struct("<IIQQ")  # slot, constituent_cnt, total_pages, gpa
CONSTITUENT = struct.Struct("<QII")  # address (PA), pg_cnt, reserved

# struct gzvm_create_device
CREATE_DEVICE = struct.Struct("<IIQQQQQ")  # type, id, flags, addr, reg_size, attr_addr, attr_size

PFN_BUFFER_SIZE = PAGE_SIZE  # the block demand-paging PFN array: 512 u64


@dataclass(frozen=True)
class MemoryRegionRanges:
    slot: int
    total_pages: int
    gpa: int
    constituents: tuple[tuple[int, int], ...]  # (PA, pages)

    @classmethod
    def parse(cls, data: bytes) -> MemoryRegionRanges | None:
        """The buffer's contents, or None if the count runs past its end."""
        slot, count, total_pages, gpa = RANGES_HEADER.unpack_from(data)
        if RANGES_HEADER.size + count * CONSTITUENT.size > len(data):
            return None
        runs = tuple(
            CONSTITUENT.unpack_from(data, RANGES_HEADER.size + i * CONSTITUENT.size)[:2]
            for i in range(count)
        )
        return cls(slot, total_pages, gpa, runs)


@dataclass(frozen=True)
class CreateDevice:
    dev_type: int
    id: int
    flags: int
    dev_addr: int
    dev_reg_size: int
    attr_addr: int
    attr_size: int

    @classmethod
    def parse(cls, data: bytes) -> CreateDevice:
        return cls(*CREATE_DEVICE.unpack_from(data))
