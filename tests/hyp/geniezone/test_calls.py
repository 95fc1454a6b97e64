"""Each host call's happy path and its errors, through raw registers."""

import struct
import threading

import pytest

from hyp.geniezone import shared
from hyp.geniezone.errors import Error
from hyp.geniezone.vm import Cap
from hyp.hw.board import DRAM_BASE, PAGE_SIZE
from tests.aarch64 import assemble
from tests.hyp.geniezone.gzhelper import GICD_IPA, RAM_IPA, REG_PC, build_vm, reg_x

INVALID, BUSY = Error.ERR_INVALID_ARGS, Error.ERR_BUSY


@pytest.fixture
def vm(door):
    return build_vm(door, assemble("b ."), ram=16 * PAGE_SIZE, demand=True)


def test_set_memregion_checks(door, vm):
    v = vm.vm_id
    assert door.memregion(v, 10, 0x1_0000_0000, 1) == INVALID  # slot >= 10
    assert door.memregion(v, 1, 0x1_0000_0800, 1) == INVALID  # unaligned
    assert door.memregion(v, 1, 1 << 40, 1) == INVALID  # beyond the IPA space
    assert door.memregion(v, 1, RAM_IPA + PAGE_SIZE, 1) == INVALID  # overlaps slot 0
    assert door.memregion(v, 1, 0x1_0000_0000, 0) == INVALID
    assert door.memregion(v, 0, RAM_IPA, 32) == BUSY  # slot 0 has pages mapped
    assert door.memregion(v, 1, 0x1_0000_0000, 4) == 0
    assert door.memregion(v, 1, 0x1_0000_0000, 8) == 0  # nothing mapped: may change
    assert door.memregion(99, 1, 0x1_0000_0000, 4) == INVALID
    # the buffer: its size and where it is
    assert door.err("SET_MEMREGION", v, 8, door.pages()) == INVALID
    assert door.err("SET_MEMREGION", v, 2 * PAGE_SIZE, DRAM_BASE - PAGE_SIZE) == INVALID
    pool_page = door.gz.pool.base
    assert door.err("SET_MEMREGION", v, 2 * PAGE_SIZE, pool_page) == INVALID  # EL2's own
    over = shared.RANGES_HEADER.pack(1, 600, 1, 0x1_0000_0000)
    assert door.err("SET_MEMREGION", v, 2 * PAGE_SIZE, door.buffer(over)) == INVALID


def test_fully_populated_constituents_map_in_order(gz, door, vm):
    a, b = door.pages(2), door.pages(1)
    assert door.memregion(vm.vm_id, 1, 0x1_0000_0000, 3) == 0
    assert door.memregion(vm.vm_id, 1, 0x1_0000_0000, 3, [(a, 2), (b, 1)]) == 0
    mapped = gz.vms[vm.vm_id].mapped
    base = 0x1_0000_0000 >> 12
    assert [mapped[base + i] for i in range(3)] == [a >> 12, (a >> 12) + 1, b >> 12]
    assert door.memregion(vm.vm_id, 1, 0x1_0000_0000, 3, [(door.pages(4), 4)]) == INVALID


def test_map_guest_refuses_pages_that_are_not_the_host_s_to_give(gz, door, vm):
    v, gfn = vm.vm_id, (RAM_IPA >> 12) + 2
    other = build_vm(door, assemble("b ."))
    checks = {
        "outside DRAM": DRAM_BASE - PAGE_SIZE,
        "EL2's pool": gz.pool.base,
        "a table page of EL2": gz.vms[v].stage2.root,
        "another VM's page": other.ram_pa,
        "a vCPU area": vm.areas[0],
        "a vCPU area's hwstate page": vm.areas[0] + PAGE_SIZE,
    }
    for why, pa in checks.items():
        assert door.err("MAP_GUEST", v, 0, pa >> 12, gfn, 1) == INVALID, why
    pfn = door.pages() >> 12
    assert door.err("MAP_GUEST", v, 1, pfn, gfn, 1) == INVALID  # no slot 1
    assert door.err("MAP_GUEST", v, 0, pfn, 0x1000, 1) == INVALID  # outside slot 0
    assert door.err("MAP_GUEST", v, 0, pfn, gfn, 0) == INVALID
    door.ok("MAP_GUEST", v, 0, pfn, gfn, 1)
    door.ok("MAP_GUEST", v, 0, pfn, gfn, 1)  # the same again: two vCPUs faulted at once
    assert door.err("MAP_GUEST", v, 0, door.pages() >> 12, gfn, 1) == INVALID  # gfn taken
    assert door.err("MAP_GUEST", v, 0, pfn, gfn + 1, 1) == INVALID  # the PFN is mapped
    assert door.err("MAP_GUEST", 99, 0, pfn, gfn, 1) == INVALID


def test_map_guest_block_reads_the_registered_pfn_buffer(gz, door, vm):
    v = vm.vm_id
    assert door.err("MAP_GUEST_BLOCK", v, 0, RAM_IPA >> 12, 4) == INVALID  # no buffer yet
    buffer = door.pages()
    assert door.err("ENABLE_CAP", v, Cap.BLOCK_BASED_DEMAND_PAGING, 4096, buffer) == INVALID
    door.ok("ENABLE_CAP", v, Cap.ENABLE_DEMAND_PAGING)
    door.ok("ENABLE_CAP", v, Cap.BLOCK_BASED_DEMAND_PAGING, 2 << 20, buffer)
    assert door.err("ENABLE_CAP", v, Cap.BLOCK_BASED_DEMAND_PAGING, 2 << 20, buffer) == BUSY
    pages = door.pages(4)
    gz.dram.write(buffer, struct.pack("<4Q", *range(pages >> 12, (pages >> 12) + 4)))
    door.ok("MAP_GUEST_BLOCK", v, 0, (RAM_IPA >> 12) + 4, 4)
    assert [gz.vms[v].mapped[(RAM_IPA >> 12) + 4 + i] for i in range(4)] == [
        (pages >> 12) + i for i in range(4)
    ]
    assert door.err("MAP_GUEST_BLOCK", v, 0, (RAM_IPA >> 12) + 14, 4) == INVALID  # past slot
    assert door.err("MAP_GUEST_BLOCK", v, 0, (RAM_IPA >> 12) + 8, 513) == INVALID
    assert door.err("MAP_GUEST", v, 0, buffer >> 12, (RAM_IPA >> 12) + 9, 1) == INVALID


def test_enable_cap(door, vm):
    v = vm.vm_id
    assert door.ok("ENABLE_CAP", 0, Cap.QUERY_HYP_BATCH_PAGES)[0] == 512
    assert door.ok("ENABLE_CAP", 0, Cap.QUERY_DESTROY_BATCH_PAGES)[0] == 128
    assert door.err("ENABLE_CAP", 0, Cap.ENABLE_IDLE) == INVALID  # needs a VM
    assert door.err("ENABLE_CAP", v, 0) == Error.ERR_NOT_SUPPORTED  # MTE, cap 0
    assert door.err("ENABLE_CAP", 99, Cap.ENABLE_IDLE) == INVALID
    door.ok("ENABLE_CAP", v, Cap.ENABLE_IDLE)
    assert door.ok("ENABLE_CAP", v, Cap.PROTECTED_VM, 1)[0] == 0  # GET_PVMFW_SIZE: none
    assert door.err("ENABLE_CAP", v, Cap.PROTECTED_VM, 3) == INVALID
    assert door.err("ENABLE_CAP", v, Cap.PROTECTED_VM, 0, 0x7FC0_0800) == INVALID
    door.ok("ENABLE_CAP", v, Cap.PROTECTED_VM, 0, 0x7FC0_0000)
    assert door.gz.vms[v].protected and door.gz.vms[v].pvmfw_gpa == 0x7FC0_0000


def test_the_memory_mode_and_protection_are_fixed_once_the_vm_ran(door, vm):
    door.gz.ipi(threading.get_ident())  # the RUN returns at once
    vm.run()
    assert door.err("ENABLE_CAP", vm.vm_id, Cap.ENABLE_DEMAND_PAGING) == BUSY
    assert door.err("ENABLE_CAP", vm.vm_id, Cap.PROTECTED_VM, 2) == BUSY


def test_purpose_dtb_inform_exit_statistics(door, vm):
    v = vm.vm_id
    door.ok("MEMREGION_PURPOSE", v, RAM_IPA, 16 * PAGE_SIZE, 1)
    assert door.err("MEMREGION_PURPOSE", v, RAM_IPA, 0, 1) == INVALID
    assert door.err("MEMREGION_PURPOSE", v, RAM_IPA + 1, PAGE_SIZE, 1) == INVALID
    door.ok("SET_DTB_CONFIG", v, RAM_IPA + 0x2000, 0x800)
    assert door.err("SET_DTB_CONFIG", v, RAM_IPA + 0xF000, 0x2000) == INVALID  # runs out
    assert door.err("SET_DTB_CONFIG", v, 0x1000, 0x100) == INVALID  # no memory there
    door.ok("INFORM_EXIT", v)
    assert door.err("INFORM_EXIT", 99) == INVALID
    hyp_mem, shared_mem = door.ok("GET_STATISTICS", v)[:2]
    assert hyp_mem >= 3 * PAGE_SIZE and shared_mem == 2 * PAGE_SIZE  # root + tables; 1 vCPU


def test_vcpu_calls(gz, door, vm):
    v = vm.vm_id
    assert door.err("CREATE_VCPU", v << 16 | 8, door.pages(2)) == INVALID  # ids 0..7
    assert door.err("CREATE_VCPU", v << 16, door.pages(2)) == INVALID  # exists
    assert door.err("CREATE_VCPU", v << 16 | 1, vm.ram_pa) == INVALID  # a guest page
    assert door.err("CREATE_VCPU", v << 16 | 1, door.pages() + 8) == INVALID  # unaligned
    assert door.err("CREATE_VCPU", 99 << 16 | 1, door.pages(2)) == INVALID
    vm.add_vcpu(1)
    assert door.err("SET_ONE_REG", v << 16, 0x6040_0000_0010_0054, 1) == INVALID  # V0: U128
    assert door.err("SET_ONE_REG", v << 16, 0x6030_0000_0013_0000, 1) == INVALID  # sysreg
    assert door.err("GET_ONE_REG", v << 16 | 2, REG_PC) == INVALID  # no vCPU 2
    door.ok("SET_ONE_REG", v << 16 | 1, reg_x(30), 0x1234)
    assert door.ok("GET_ONE_REG", v << 16 | 1, reg_x(30))[0] == 0x1234
    door.ok("SET_ONE_REG", v << 16 | 1, 0x6020_0000_0010_00D4, (1 << 40) | 7)  # FPSR, U32
    assert door.ok("GET_ONE_REG", v << 16 | 1, 0x6020_0000_0010_00D4)[0] == 7
    door.ok("DESTROY_VCPU", v << 16 | 1)
    assert door.err("DESTROY_VCPU", v << 16 | 1) == INVALID
    assert (vm.areas[1] >> 12) not in gz.shared


def test_create_device_and_irq_line_checks(door, vm):
    v = vm.vm_id
    assert door.err("IRQ_LINE", v << 16, 5, 1) == 0  # a GIC exists before it is placed
    assert door.err("IRQ_LINE", v << 16, 224, 1) == INVALID  # beyond the SPIs
    assert door.err("IRQ_LINE", v << 16, 5, 2) == INVALID
    assert door.err("IRQ_LINE", 99 << 16, 5, 1) == INVALID
    assert door.device(v, 2, GICD_IPA, 0x10000) == Error.ERR_NOT_SUPPORTED
    assert door.device(v, 0, GICD_IPA, 0x20000) == INVALID  # not the GICD frame size
    assert door.device(v, 0, GICD_IPA + 0x1000, 0x10000) == INVALID  # unaligned
    assert door.device(v, 0, RAM_IPA, 0x10000) == INVALID  # over guest memory
    assert door.device(v, 0, GICD_IPA, 0x10000) == 0
    assert door.device(v, 0, GICD_IPA, 0x10000) == BUSY
    assert door.device(v, 1, GICD_IPA - 0x20000, 0x10000) == INVALID
    assert door.device(v, 1, GICD_IPA - 0x20000, 0x20000) == 0
    assert door.memregion(v, 1, GICD_IPA - 0x20000, 1) == INVALID  # over the GIC
    assert door.err("CREATE_DEVICE", v, DRAM_BASE - 4096) == INVALID
