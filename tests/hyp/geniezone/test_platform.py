"""Power-on and what the host kernel's arch code is given: the DT node, its RAM,
host mappings, IPIs, traces, and protected VMs' pages leaving the host."""

import threading

import fdt
import pytest

from hyp.geniezone.errors import Error
from hyp.geniezone.platform import boot_firmware
from hyp.geniezone.vcpu import GzvmExit
from hyp.geniezone.vm import Cap
from hyp.hw.board import DRAM_BASE, PAGE_SIZE
from tests.aarch64 import assemble
from tests.hyp.geniezone.gzhelper import MMIO_IPA, RAM_IPA, Door, build_vm


@pytest.fixture
def fw():
    firmware = boot_firmware(1 << 30)
    yield firmware
    firmware.shutdown()


@pytest.fixture
def fdoor(fw):
    return Door(fw.geniezone)


def test_the_host_dt_names_geniezone_and_the_door_answers(fw):
    tree = fdt.parse_dtb(fw.host_dt)
    node = tree.get_node("hypervisor")
    assert node.get_property("compatible").value == "mediatek,geniezone"
    assert fw.hvc([0xFB00_100C, 16, 0, 0, 0, 0, 0, 0]) == [0, 16, 0, 0]
    assert fw.memory == (DRAM_BASE, fw.geniezone.pool.base - DRAM_BASE)


def test_map_ram_and_discard_ram(fw, fdoor):
    gz = fw.geniezone
    assert fw.map_ram(gz.pool.base, PAGE_SIZE)[0] == Error.ERR_INVALID_ARGS
    vm = build_vm(fdoor, assemble("b ."))
    err, mapping = fw.map_ram(vm.ram_pa, PAGE_SIZE)  # an unprotected guest's page
    assert err == 0 and mapping[:4] == assemble("b .")
    mapping.close()
    fw.unmap_ram(mapping)
    assert fw.discard_ram(vm.ram_pa, PAGE_SIZE) == Error.ERR_BUSY  # still the VM's
    assert fw.discard_ram(vm.areas[0], PAGE_SIZE) == Error.ERR_BUSY  # still EL2's
    assert gz.dram.read(vm.ram_pa, 4) == assemble("b .")
    fdoor.ok("DESTROY_VM", vm.vm_id, 0)
    assert fw.discard_ram(vm.ram_pa, PAGE_SIZE) == 0
    assert gz.dram.read(vm.ram_pa, 4) == bytes(4)


def test_send_ipi_and_the_trace(fw, fdoor):
    lines = []
    fw.trace_guest_exits(lines.append)
    vm = build_vm(fdoor, assemble("b ."))
    fw.send_ipi(threading.get_ident())
    assert vm.run() == GzvmExit.IRQ
    assert lines == ["gzvm_exit(exit=IRQ, vcpu=vm1.cpu0)"]


SECRET = 0x5EC2E7


def test_a_protected_vm_s_pages_leave_the_host(fw, fdoor):
    gz = fw.geniezone
    guest = assemble(
        f"ldr x9, ={MMIO_IPA:#x}\nldr x1, [x9, #0]\nldr x2, ={RAM_IPA + 0x1000:#x}\n"
        "str x1, [x2]\nldr x3, [x2]\nstr x3, [x9]\nb ."
    )
    vm = build_vm(fdoor, guest, ram=4 * PAGE_SIZE)
    page = vm.ram_pa + PAGE_SIZE
    err, before = fw.map_ram(page, PAGE_SIZE)
    assert err == 0
    fdoor.ok("ENABLE_CAP", vm.vm_id, Cap.PROTECTED_VM, 2)  # SET_PROTECTED_VM
    assert fw.map_ram(page, PAGE_SIZE) == (Error.ERR_FAULT, None)
    assert vm.run() == GzvmExit.MMIO
    vm.answer_mmio(SECRET)
    assert vm.run() == GzvmExit.MMIO and vm.mmio()[1] == SECRET  # the guest has it
    assert gz.dram.read_u64(page) == SECRET
    assert before[:8] == bytes(8)  # the old host mapping shows none of it
    before.close()
    fw.unmap_ram(before)
    fdoor.ok("DESTROY_VM", vm.vm_id, 0)
    assert gz.dram.read_u64(page) == 0  # scrubbed before the host has it back
    err, after = fw.map_ram(page, PAGE_SIZE)
    assert err == 0
    after.close()
