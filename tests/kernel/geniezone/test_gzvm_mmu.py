"""Memory of GenieZone VMs (kernel/geniezone/gzvm_mmu.py): the three allocation modes,
pinning, 2 MiB blocks clipped to their slot, EL2 refusing a mapping, and pins
outliving the VMM's mapping until the VM is destroyed."""

import errno

import pytest

from kernel.fault_inject import FaultPlan
from kernel.geniezone.gzvm_mmu import gzvm_handle_page_fault
from kernel.include.linux.gzvm_drv import GzvmDemandPagingMode
from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ
from tests.gzvmvm import MMIO, RAM_IPA, RAM_SIZE, make_vm, set_region, user_address
from uapi.linux import gzvm as gz

TOUCH = f"""
    ldr x9, ={MMIO:#x}
    ldr x1, ={RAM_IPA + (3 << 20):#x}
    ldr x2, [x1]                    // the second 2 MiB block
    str x2, [x9]
    b .
"""


def gzvm_of(host, t):
    file = host.fdtable.get(t.vm)
    file.put()
    return file.private


def finish(host, t, free):
    t.close(host)
    assert host.mm.pinned == {} and host.gzvm.mm.free_bytes == free
    assert host.gzvm.firmware.geniezone.vms == {}


@pytest.mark.parametrize(
    ("plan", "mode", "pinned"),
    [
        (None, GzvmDemandPagingMode.GZVM_DEMAND_PAGING, 2 * 512),  # two 2 MiB blocks
        (FaultPlan("ENABLE_CAP", -24, nth=2), GzvmDemandPagingMode.GZVM_DEMAND_PAGING, 2),
        (FaultPlan("ENABLE_CAP", -24, nth=1), GzvmDemandPagingMode.GZVM_FULLY_POPULATED, 1024),
    ],
    ids=["2MiB-blocks", "4KiB-pages", "fully-populated"],
)
def test_allocation_modes(gzhost, plan, mode, pinned):
    free = gzhost.gzvm.mm.free_bytes
    gzhost.gzvm.hvc.faults = plan or {}
    t = make_vm(gzhost, TOUCH)
    gzhost.gzvm.hvc.faults = {}
    vm = gzvm_of(gzhost, t)
    assert vm.mem_alloc_mode == mode
    t.ram[3 << 20 : (3 << 20) + 8] = b"pinned!!"
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO
    assert bytes(t.run.mmio.data) == b"pinned!!"
    assert len(vm.pinned_pages) == pinned == len(gzhost.mm.pinned)
    finish(gzhost, t, free)


def test_a_block_is_clipped_to_its_slot(gzhost):
    free = gzhost.gzvm.mm.free_bytes
    t = make_vm(gzhost, "b .")
    small = gzhost.mmap(-1, 0x3000, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    set_region(gzhost, t.vm, 1, 0x1_0020_0000 - 0x1000, 0x3000, user_address(small))
    vm = gzvm_of(gzhost, t)
    assert gzvm_handle_page_fault(vm, 0x1_0020_0000)  # the block above, two pages of it
    assert sorted(vm.pinned_pages) == [0x1_0020_0000, 0x1_0020_1000]
    gzhost.munmap(small)
    finish(gzhost, t, free)


def test_el2_refusing_the_mapping_exits_to_userspace(gzhost):
    free = gzhost.gzvm.mm.free_bytes
    gzhost.gzvm.hvc.faults = FaultPlan("ENABLE_CAP", -24, nth=2)  # 4 KiB pages
    t = make_vm(gzhost, TOUCH)
    gzhost.gzvm.hvc.faults = {"MAP_GUEST": -8}
    assert t.go(gzhost) == gz.GZVM_EXIT_EXCEPTION
    assert t.run.exception.exception == gz.GZVM_EXCEPTION_PAGE_FAULT
    assert t.run.exception.fault_gpa == RAM_IPA
    assert "page fault at 0x80000000" in gzhost.dmesg[-1]
    gzhost.gzvm.hvc.faults = {}
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO  # the retry maps it
    finish(gzhost, t, free)


def test_pins_outlive_the_vmm_mapping_until_destroy(gzhost):
    free = gzhost.gzvm.mm.free_bytes
    t = make_vm(gzhost, TOUCH)
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO
    gzhost.munmap(t.ram)  # the guest still has its pages
    assert gzhost.gzvm.mm.free_bytes < free - RAM_SIZE // 2
    for fd in (t.vm, *t.vcpus, t.dev):
        gzhost.close(fd)
    assert gzhost.mm.pinned == {} and gzhost.gzvm.mm.free_bytes == free


def test_protected_vm_with_4k_pages_populates_every_slot_first(gzhost):
    free = gzhost.gzvm.mm.free_bytes
    gzhost.gzvm.hvc.faults = FaultPlan("ENABLE_CAP", -24, nth=2)
    t = make_vm(gzhost, TOUCH)
    gzhost.gzvm.hvc.faults = {}
    cap = gz.ffi.new("struct gzvm_enable_cap *", {"cap": gz.GZVM_CAP_PROTECTED_VM})
    cap.args[0] = gz.GZVM_CAP_PVM_SET_PROTECTED_VM
    assert gzhost.ioctl(t.vm, gz.GZVM_ENABLE_CAP, cap) == 0
    assert len(gzvm_of(gzhost, t).pinned_pages) == RAM_SIZE // 4096
    finish(gzhost, t, free)


def test_a_refused_slot_move_leaves_the_slot_as_it_was(gzhost):
    """EL2 will not move a slot with pages mapped (EFAULT): the driver's record
    of the slot stays as it was too, so the guest's next fault in it is served."""
    free = gzhost.gzvm.mm.free_bytes
    t = make_vm(
        gzhost,
        f"""
    ldr x9, ={MMIO:#x}
    str xzr, [x9]                   // the code's block is mapped now
    ldr x1, ={RAM_IPA + (3 << 20):#x}
    ldr x2, [x1]                    // the second 2 MiB block, after the refused move
    str x2, [x9]
    b .
""",
    )
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO
    with pytest.raises(OSError) as refused:
        set_region(gzhost, t.vm, 0, RAM_IPA + RAM_SIZE, RAM_SIZE, user_address(t.ram))
    assert refused.value.errno == errno.EFAULT
    t.ram[3 << 20 : (3 << 20) + 8] = b"same one"
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO, hex(t.run.exit_reason)
    assert bytes(t.run.mmio.data) == b"same one"
    finish(gzhost, t, free)


READ_ONLY_IPA = 0x2100_0000
STORE_TO_READ_ONLY = f"""
    ldr x1, ={READ_ONLY_IPA + 0x1000:#x}
    mov x2, #0xBAD
    str x2, [x1]
    b .
"""


def test_a_read_only_mapping_is_no_guest_memory(gzhost):
    """Demand paging pins with FOLL_WRITE: a memslot over memory the VMM mapped
    without PROT_WRITE cannot be pinned, so the guest's store is an EXCEPTION exit
    to userspace and the VMM's read-only page keeps its contents."""
    free = gzhost.gzvm.mm.free_bytes
    t = make_vm(gzhost, STORE_TO_READ_ONLY)
    read_only = gzhost.mmap(-1, 0x10000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
    set_region(gzhost, t.vm, 2, READ_ONLY_IPA, 0x10000, user_address(read_only))
    assert t.go(gzhost) == gz.GZVM_EXIT_EXCEPTION
    assert t.run.exception.exception == gz.GZVM_EXCEPTION_PAGE_FAULT
    assert t.run.exception.fault_gpa == READ_ONLY_IPA + 0x1000
    assert bytes(read_only[0x1000:0x1008]) == bytes(8)
    gzhost.munmap(read_only)
    finish(gzhost, t, free)
