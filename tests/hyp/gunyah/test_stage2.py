"""Guest code behind real stage-2 tables: RAM lands in DRAM, holes are VMMIO."""

from hyp.gunyah.errors import Error
from hyp.gunyah.vcpu import VcpuState
from tests.aarch64 import assemble
from tests.hyp.gunyah.vmhelper import GUEST_PA, MMIO_IPA, RAM_IPA, build_vm

PROGRAM = f"""
    ldr x0, ={RAM_IPA + 0x1000:#x}
    ldr x1, =0x1122334455667788
    str x1, [x0]
    ldr w2, [x0, #4]
    ldr x9, ={MMIO_IPA:#x}
    str w2, [x9]
    b .
"""


def test_loads_and_stores_land_in_dram_at_the_mapped_pa(gunyah):
    vm = build_vm(gunyah, assemble(PROGRAM))
    state, ipa, size, value = vm.run()
    assert VcpuState(state) == VcpuState.ADDRSPACE_VMMIO_WRITE
    assert (ipa, size, value) == (MMIO_IPA, 4, 0x11223344)
    assert gunyah.dram.read(GUEST_PA + 0x1000, 8) == bytes.fromhex("8877665544332211")


def test_unmapped_ipa_in_a_demand_paging_range_is_a_page_fault(gunyah):
    vm = build_vm(gunyah, assemble(PROGRAM.replace(f"={MMIO_IPA:#x}", "=0x90000000")))
    # as the RM registers lent memory
    vm.hv.ok("addrspace_configure_demand", vm.addrspace, 0x9000_0000, 0x10_0000, 0, 0)
    assert vm.run() == (VcpuState.ADDRSPACE_PAGE_FAULT, 0x9000_0000, 1, 0)


def test_a_pair_store_in_a_demand_range_is_a_page_fault_too(gunyah):
    """No syndrome is needed to page memory in: an STP cannot be emulated, but it can fault."""
    source = "ldr x0, =0x90000010\nstp x1, x2, [x0]\nb ."
    vm = build_vm(gunyah, assemble(source))
    vm.hv.ok("addrspace_configure_demand", vm.addrspace, 0x9000_0000, 0x10_0000, 0, 0)
    assert vm.run() == (VcpuState.ADDRSPACE_PAGE_FAULT, 0x9000_0000, 1, 0)


def test_demand_ranges_are_checked(gunyah):
    vm = build_vm(gunyah, assemble("b ."))
    hv, space = vm.hv, vm.addrspace
    hv.ok("addrspace_configure_demand", space, 0x9000_0000, 0x2000, 0, 0)
    assert (
        hv.err("addrspace_configure_demand", space, 0x9000_1000, 0x2000, 0, 0)
        == Error.ARGUMENT_INVALID
    )
    assert (
        hv.err("addrspace_configure_demand", space, 0x9000_0800, 0x1000, 0, 0)
        == Error.ARGUMENT_INVALID
    )
    assert hv.err("addrspace_configure_demand", space, 1 << 40, 0x1000, 0, 0) == Error.ADDR_INVALID
    assert (
        hv.err("addrspace_configure_demand", space, 0x9000_0000, 0x1000, 1, 0)
        == Error.ARGUMENT_INVALID
    )
    assert (
        hv.err("addrspace_configure_demand", space, 0x9000_0000, 0x2000, 2, 0)
        == Error.ARGUMENT_INVALID
    )
    hv.ok("addrspace_configure_demand", space, 0x9000_0000, 0x2000, 1, 0)
    hv.ok("addrspace_configure_demand", space, 0x9000_1000, 0x2000, 0, 0)


def test_a_donated_page_leaves_its_extents_mappings_and_only_that_page_does(gunyah):
    """A page given away (to a sparse child here; back to the host when a VM
    is torn down) is unmapped wherever its extent maps it: the one mapping
    over it is split, its neighbours stay, and a page of the split is given
    away in turn."""
    vm = build_vm(gunyah, assemble("b ."))
    hv = vm.hv
    child = hv.create("memextent")
    hv.ok("memextent_configure_derive", child, vm.extent, GUEST_PA, 1 << 21, 7 | 1 << 16)
    hv.ok("object_activate", child, 0)

    def mapped(offset):
        err = hv.err("addrspace_lookup", vm.addrspace, vm.extent, RAM_IPA + offset, 0x1000)
        assert err in (0, Error.ADDR_INVALID)
        return err == 0

    hv.ok("memextent_donate", 0, vm.extent, child, 0x5000, 0x1000)  # TO_CHILD
    assert [mapped(n * 0x1000) for n in range(3, 8)] == [True, True, False, True, True]
    hv.ok("memextent_donate", 0, vm.extent, child, 0x6000, 0x2000)
    assert [mapped(n * 0x1000) for n in range(3, 10)] == [True] * 2 + [False] * 3 + [True] * 2
    assert mapped(0) and mapped((1 << 21) - 0x1000)
