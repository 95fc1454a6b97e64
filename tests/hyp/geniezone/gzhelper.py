"""Driving GenieZone through the host's door with raw registers, as the gzvm
driver's arch code would: calls by name, host pages, and whole VMs built from
hypercalls alone (:func:`build_vm`)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from hyp.geniezone import shared
from hyp.geniezone.errors import Error
from hyp.geniezone.hypercalls import hypercall_id
from hyp.hw.board import DRAM_BASE, PAGE_SIZE

RAM_IPA = 0x8000_0000
MMIO_IPA = 0x1000_0000
GICD_IPA = 0x3FFF_0000
GICR_STRIDE = 0x2_0000
HOST_PAGES = DRAM_BASE + 0x100_0000  # where the test's "driver" allocates
PSTATE_EL1H_MASKED = 0x3C5
REG_PC = 0x6030_0000_0010_0040
REG_PSTATE = 0x6030_0000_0010_0042


def reg_x(n: int) -> int:
    return 0x6030_0000_0010_0000 + 2 * n


def signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


class Door:
    """Calls by name through :meth:`GenieZone.hvc`, and the host's page allocator."""

    def __init__(self, gz, smc32: bool = False):
        self.gz, self.smc32 = gz, smc32
        self._next = HOST_PAGES

    def raw(self, name: str, *args: int) -> list[int]:
        regs = [hypercall_id(name, self.smc32), *args]
        return self.gz.hvc(regs + [0] * (8 - len(regs)))

    def err(self, name: str, *args: int) -> int:
        return signed(self.raw(name, *args)[0])

    def ok(self, name: str, *args: int) -> list[int]:
        out = self.raw(name, *args)
        assert out[0] == 0, f"{name}: {Error(signed(out[0]))!r}"
        return out[1:]

    def pages(self, count: int = 1) -> int:
        """``count`` zeroed pages of host RAM; returns their PA."""
        pa, self._next = self._next, self._next + count * PAGE_SIZE
        self.gz.dram.zero(pa, count * PAGE_SIZE)
        return pa

    def buffer(self, data: bytes) -> int:
        pa = self.pages(-(-max(len(data), 1) // PAGE_SIZE))
        self.gz.dram.write(pa, data)
        return pa

    def memregion(self, vm_id, slot, gpa, total_pages, constituents=()) -> int:
        """SET_MEMREGION with a fresh buffer; returns the status."""
        data = shared.RANGES_HEADER.pack(slot, len(constituents), total_pages, gpa)
        data += b"".join(shared.CONSTITUENT.pack(pa, n, 0) for pa, n in constituents)
        return self.err("SET_MEMREGION", vm_id, 2 * PAGE_SIZE, self.buffer(data))

    def device(self, vm_id, dev_type, addr, size) -> int:
        data = shared.CREATE_DEVICE.pack(dev_type, 0, 0, addr, size, 0, 0)
        return self.err("CREATE_DEVICE", vm_id, self.buffer(data))


@dataclass
class Vm:
    door: Door
    vm_id: int
    ram_pa: int
    areas: dict[int, int] = field(default_factory=dict)  # vcpu id -> area PA

    def run(self, vcpu: int = 0) -> int:
        return self.door.ok("RUN", self.vm_id << 16 | vcpu)[0]

    def run_page(self, vcpu: int = 0, size: int = shared.RUN_SIZE) -> bytes:
        return self.door.gz.dram.read(self.areas[vcpu], size)

    def mmio(self, vcpu: int = 0) -> tuple[int, int, int, int, int]:
        """(phys_addr, data, size, reg_nr, is_write) of the last MMIO exit."""
        page = self.run_page(vcpu)
        addr, data, size, reg, write = struct.unpack_from("<QQQIB", page, 8)
        return addr, data, size, reg, write

    def answer_mmio(self, value: int, vcpu: int = 0) -> None:
        self.door.gz.dram.write(self.areas[vcpu] + shared.MMIO_DATA, struct.pack("<Q", value))

    def u32(self, offset: int, vcpu: int = 0) -> int:
        return struct.unpack_from("<I", self.run_page(vcpu), offset)[0]

    def u64(self, offset: int, vcpu: int = 0) -> int:
        return struct.unpack_from("<Q", self.run_page(vcpu), offset)[0]

    def set_reg(self, reg_id: int, value: int, vcpu: int = 0) -> None:
        self.door.ok("SET_ONE_REG", self.vm_id << 16 | vcpu, reg_id, value)

    def add_vcpu(self, vcpu: int) -> None:
        self.areas[vcpu] = self.door.pages(2)
        self.door.ok("CREATE_VCPU", self.vm_id << 16 | vcpu, self.areas[vcpu])


def build_vm(
    door: Door, code: bytes, vcpus: int = 1, ram: int = 1 << 20, demand: bool = False
) -> Vm:
    """A VM whose RAM (slot 0 at RAM_IPA) holds ``code`` at its start and is
    mapped in full at registration (or, with ``demand``, only the code's page),
    with ``vcpus`` vCPUs and vCPU 0 starting at the code."""
    vm_id = door.ok("CREATE_VM", 0)[0]
    pages = ram // PAGE_SIZE
    ram_pa = door.pages(pages)
    door.gz.dram.write(ram_pa, code)
    vm = Vm(door, vm_id, ram_pa)
    assert door.memregion(vm_id, 0, RAM_IPA, pages) == 0
    mapped = 1 if demand else pages
    assert door.memregion(vm_id, 0, RAM_IPA, pages, [(ram_pa, mapped)]) == 0
    for i in range(vcpus):
        vm.add_vcpu(i)
    vm.set_reg(REG_PC, RAM_IPA)
    return vm
