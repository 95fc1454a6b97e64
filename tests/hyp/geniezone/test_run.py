"""RUN with real guest code: MMIO both ways, system events, and what the run page says."""

import struct

from hyp.geniezone import shared
from hyp.geniezone.vcpu import GzvmExit
from tests.aarch64 import assemble
from tests.hyp.geniezone.gzhelper import MMIO_IPA, RAM_IPA, build_vm, reg_x

ECHO = f"""
    ldr x9, ={MMIO_IPA:#x}
    ldr w2, [x9, #8]            // the host answers
    add x2, x2, #1
    str x2, [x9, #16]           // the host sees it plus one
    ldr x0, =0x84000008
    hvc #0                      // PSCI SYSTEM_OFF
    b .
"""


def test_mmio_read_then_write_round_trip(door):
    vm = build_vm(door, assemble(ECHO))
    assert vm.run() == GzvmExit.MMIO
    assert vm.mmio() == (MMIO_IPA + 8, 0, 4, 2, 0)
    vm.answer_mmio(0x1234_5678_9ABC_DEF0)  # a 4-byte load takes the low word
    assert vm.run() == GzvmExit.MMIO
    assert vm.mmio() == (MMIO_IPA + 16, 0x9ABC_DEF1, 8, 2, 1)
    assert vm.run() == GzvmExit.SYSTEM_EVENT
    assert vm.u32(shared.EVENT_TYPE) == 1  # SHUTDOWN
    assert vm.u32(shared.RUN_EXIT_REASON) == GzvmExit.SYSTEM_EVENT
    assert vm.run() == GzvmExit.SYSTEM_EVENT  # and again: the VM is off


def test_system_reset_is_a_reset_event(door):
    vm = build_vm(door, assemble("ldr x0, =0x84000009\nhvc #0\nb ."))
    assert vm.run() == GzvmExit.SYSTEM_EVENT
    assert vm.u32(shared.EVENT_TYPE) == 2


def test_set_one_reg_sets_the_entry_state(door):
    vm = build_vm(door, assemble(f"ldr x9, ={MMIO_IPA:#x}\nstr x5, [x9]\nb ."))
    vm.set_reg(reg_x(5), 0xFEED)
    assert vm.run() == GzvmExit.MMIO
    assert vm.mmio()[1] == 0xFEED
    assert struct.unpack_from("<Q", vm.run_page(), 8)[0] == MMIO_IPA
    assert door.ok("GET_ONE_REG", vm.vm_id << 16, reg_x(9))[0] == MMIO_IPA
    assert (
        door.ok("GET_ONE_REG", vm.vm_id << 16, 0x6030_0000_0010_0040)[0] == RAM_IPA + 4
    )  # on the store, not yet done
