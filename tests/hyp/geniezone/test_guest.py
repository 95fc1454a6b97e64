"""Real guest code on GenieZone: demand paging, forwarded and served guest
calls, PSCI on 4 vCPUs, interrupts at CREATE_DEVICE addresses, WFI and kicks."""

import struct
import threading
import time

from hyp.geniezone import shared
from hyp.geniezone.hypervisor import GZVM_UID
from hyp.geniezone.vcpu import GZVM_EXCEPTION_PAGE_FAULT, GzvmExit
from hyp.hw.board import PAGE_SIZE
from tests.aarch64 import assemble, gic_enable
from tests.hyp.geniezone.gzhelper import GICD_IPA, GICR_STRIDE, MMIO_IPA, RAM_IPA, build_vm

REPORT = f"ldr x9, ={MMIO_IPA:#x}\n"


def reports(vm, count, vcpu=0):
    out = []
    for _ in range(count):
        assert vm.run(vcpu) == GzvmExit.MMIO
        out.append(vm.mmio(vcpu)[1])
    return out


def wait_for(condition, timeout=10.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.001)


def test_page_fault_then_map_guest_then_retry(gz, door):
    target = RAM_IPA + 5 * PAGE_SIZE
    guest = assemble(
        REPORT
        + f"ldr x1, ={target:#x}\nldr x2, =0xabcdef\nstr x2, [x1]\nldr x3, [x1]\nstr x3, [x9]\nb ."
    )
    vm = build_vm(door, guest, demand=True)
    assert vm.run() == GzvmExit.EXCEPTION
    assert vm.u32(shared.EXC_EXCEPTION) == GZVM_EXCEPTION_PAGE_FAULT
    assert vm.u64(shared.EXC_FAULT_GPA) == target
    assert vm.run_page()[24:264] == bytes(240)  # reserved[] zero: the driver handles it
    assert vm.run() == GzvmExit.EXCEPTION  # nothing mapped: the same fault again
    pfn = (vm.ram_pa >> 12) + 5
    door.ok("MAP_GUEST", vm.vm_id, 0, pfn, target >> 12, 1)
    assert reports(vm, 1) == [0xABCDEF]
    assert gz.dram.read_u64(pfn << 12) == 0xABCDEF


def test_unmapped_ipa_outside_every_slot_is_mmio(door):
    vm = build_vm(door, assemble(REPORT + "ldr x1, [x9, #0x40]\nb ."), demand=True)
    assert vm.run() == GzvmExit.MMIO
    assert vm.mmio() == (MMIO_IPA + 0x40, 0, 8, 1, 0)


def test_a_vendor_call_is_forwarded_and_answered_by_the_host(door):
    guest = assemble(
        REPORT
        + """
    ldr x0, =0xc6000020
    mov x1, #1
    mov x2, #2
    mov x3, #3
    mov x7, #7
    hvc #0
    str x0, [x9]
    str x1, [x9]
    str x2, [x9]
    str x3, [x9]
    b ."""
    )
    vm = build_vm(door, guest)
    assert vm.run() == GzvmExit.HYPERCALL
    args = struct.unpack_from("<8Q", vm.run_page(), shared.HYPERCALL_ARGS)
    assert args == (0xC600_0020, 1, 2, 3, 0, 0, 0, 7)
    door.gz.dram.write(vm.areas[0] + shared.HYPERCALL_ARGS, struct.pack("<4Q", 0, 10, 20, 30))
    assert reports(vm, 4) == [0, 10, 20, 30]


def test_vendor_uid_is_the_model_s_own_and_arch_calls_are_unknown(door):
    guest = assemble(
        REPORT
        + """
    ldr x0, =0x8600ff01
    hvc #0
    str x0, [x9]
    str x1, [x9]
    str x2, [x9]
    str x3, [x9]
    ldr x0, =0x80000001
    hvc #0
    str x0, [x9]
    b ."""
    )
    vm = build_vm(door, guest)
    assert reports(vm, 5) == [*GZVM_UID, (1 << 64) - 1]


def test_relinquish_unmaps_the_page_before_the_host_unpins_it(gz, door):
    page = RAM_IPA + 3 * PAGE_SIZE
    guest = assemble(
        REPORT + f"ldr x0, =0xc6000009\nldr x1, ={page:#x}\nhvc #0\nstr x0, [x9]\nldr x2, [x1]\nb ."
    )
    vm = build_vm(door, guest, ram=8 * PAGE_SIZE)
    pfn = (vm.ram_pa >> 12) + 3
    assert pfn in gz.owners
    assert vm.run() == GzvmExit.HYPERCALL
    assert vm.u64(shared.HYPERCALL_ARGS + 8) == page
    assert pfn not in gz.owners and (page >> 12) not in gz.vms[vm.vm_id].mapped
    assert reports(vm, 1) == [0]  # success, whatever the host left in args[]
    assert vm.run() == GzvmExit.EXCEPTION  # touching it again faults it in
    assert vm.u64(shared.EXC_FAULT_GPA) == page


SMP = (
    REPORT
    + f"""
    mrs x10, mpidr_el1
    and x10, x10, #0xff
    cbnz x10, secondary
    mov x19, #1
1:  ldr x0, =0xc4000003             // CPU_ON
    mov x1, x19
    adr x2, secondary
    mov x3, #0
    hvc #0
    add x19, x19, #1
    cmp x19, #4
    b.ne 1b
2:  mov x19, #1
3:  ldr x0, =0xc4000004             // AFFINITY_INFO
    mov x1, x19
    mov x2, #0
    hvc #0
    cmp x0, #1                      // OFF
    b.ne 2b
    add x19, x19, #1
    cmp x19, #4
    b.ne 3b
    str x19, [x9]
    ldr x0, =0x84000008             // SYSTEM_OFF
    hvc #0
    b .
secondary:
    ldr x9, ={MMIO_IPA:#x}
    mrs x10, mpidr_el1
    and x10, x10, #0xff
    str x10, [x9, #8]
    ldr x0, =0x84000002             // CPU_OFF
    hvc #0
    b .
"""
)


def test_relinquish_outside_guest_memory_is_refused_without_an_exit(door):
    guest = assemble(REPORT + "ldr x0, =0xc6000009\nmov x1, #0x1000\nhvc #0\nstr x0, [x9]\nb .")
    vm = build_vm(door, guest)
    assert reports(vm, 1) == [(1 << 64) - 3]


def test_psci_cpu_on_brings_up_four_vcpus(door):
    vm = build_vm(door, assemble(SMP), vcpus=4)
    seen, results = {}, {}

    def vcpu_thread(i):
        values = []
        while (reason := vm.run(i)) == GzvmExit.MMIO:
            values.append(vm.mmio(i)[:2])
        results[i] = (reason, vm.u32(shared.EVENT_TYPE, i))
        seen[i] = values

    threads = [threading.Thread(target=vcpu_thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: (GzvmExit.SYSTEM_EVENT, 1) for i in range(4)}
    assert seen[0] == [(MMIO_IPA, 4)]
    assert {i: seen[i] for i in (1, 2, 3)} == {i: [(MMIO_IPA + 8, i)] for i in (1, 2, 3)}


def gic_guest(vcpus: int) -> bytes:
    gicr = GICD_IPA - GICR_STRIDE * vcpus
    return assemble(
        REPORT
        + gic_enable(32 + 5, gicd=GICD_IPA, gicr=gicr)
        + """
    wfi
    mrs x5, S3_0_C12_C12_0          // ICC_IAR1_EL1
    str x5, [x9]
    b ."""
    )


def place_gic(door, vm, vcpus: int) -> None:
    assert door.device(vm.vm_id, 0, GICD_IPA, 0x10000) == 0
    assert door.device(vm.vm_id, 1, GICD_IPA - GICR_STRIDE * vcpus, GICR_STRIDE) == 0


def test_irq_line_wakes_a_guest_in_wfi_at_create_device_addresses(gz, door):
    vm = build_vm(door, gic_guest(1))
    place_gic(door, vm, 1)
    result = []
    runner = threading.Thread(target=lambda: result.append(reports(vm, 1)))
    runner.start()
    vcpu = gz.vms[vm.vm_id].vcpus[0]
    wait_for(lambda: vcpu.sleeping)  # WFI without ENABLE_IDLE sleeps inside RUN
    door.ok("IRQ_LINE", vm.vm_id << 16, 5, 1)
    runner.join(10)
    assert result == [[37]]


def test_hwstate_lists_the_pending_interrupt(gz, door):
    vm = build_vm(door, gic_guest(1))
    place_gic(door, vm, 1)
    door.ok("ENABLE_CAP", vm.vm_id, 0x9203, 0, 0, 0, 0, 0)  # ENABLE_IDLE
    assert vm.run() == GzvmExit.IDLE
    door.ok("IRQ_LINE", vm.vm_id << 16, 5, 1)
    assert vm.run() == GzvmExit.MMIO  # the IAR read: 37 is now active
    hw = gz.dram.read(vm.areas[0] + PAGE_SIZE, 160)
    nr_lrs, lr0 = struct.unpack_from("<I", hw, 0)[0], struct.unpack_from("<Q", hw, 8)[0]
    assert (nr_lrs, lr0 & 0xFFFF_FFFF, lr0 >> 62) == (1, 37, 2)  # active


def test_without_a_gic_placed_its_frames_are_mmio(door):
    vm = build_vm(door, gic_guest(1))
    assert vm.run() == GzvmExit.MMIO
    assert vm.mmio()[0] == GICD_IPA


def test_a_kick_ends_a_run_with_an_irq_exit(gz, door):
    vm = build_vm(door, assemble("b ."))
    ident, result = [], []

    def runner():
        ident.append(threading.get_ident())
        result.append(vm.run())

    t = threading.Thread(target=runner)
    t.start()
    wait_for(lambda: ident and gz.vms[vm.vm_id].vcpus[0].proxy_thread == ident[0])
    gz.ipi(ident[0])
    t.join(10)
    assert result == [GzvmExit.IRQ]
    assert vm.u32(shared.RUN_EXIT_REASON) == GzvmExit.IRQ


def test_an_ipi_before_run_makes_the_next_run_return_at_once(gz, door):
    vm = build_vm(door, assemble("b ."))
    gz.ipi(threading.get_ident())
    assert vm.run() == GzvmExit.IRQ


def test_a_kick_ends_a_sleeping_secondary_s_run(gz, door):
    vm = build_vm(door, assemble("b ."), vcpus=2)
    ident, result = [], []

    def runner():
        ident.append(threading.get_ident())
        result.append(vm.run(1))  # powered off: sleeps in EL2

    t = threading.Thread(target=runner)
    t.start()
    wait_for(lambda: gz.vms[vm.vm_id].vcpus[1].sleeping)
    gz.ipi(ident[0])
    t.join(10)
    assert result == [GzvmExit.IRQ]
