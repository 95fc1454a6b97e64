"""Guest code behind real stage-2 tables: RAM lands in DRAM, holes are VMMIO."""

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
    from hyp.gunyah.object import ObjectType

    vm = build_vm(gunyah, assemble(PROGRAM.replace(f"={MMIO_IPA:#x}", "=0x90000000")))
    space = gunyah.root.cspace.lookup(vm.addrspace, ObjectType.ADDRSPACE)
    space.demand_ranges.append((0x9000_0000, 0x10_0000))  # as the RM registers lent memory
    assert vm.run() == (VcpuState.ADDRSPACE_PAGE_FAULT, 0x9000_0000, 1, 0)
