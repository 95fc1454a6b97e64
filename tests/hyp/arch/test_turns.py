"""When a vCPU's access to its GIC CPU interface passes the turn to another vCPU of
its VM: at an SGI, which may give the other something to do, and at no other
(a peer spinning with its interrupts masked would otherwise hold the turn a
quantum for every register the first one touches)."""

import threading

from hyp.gunyah.hypervisor import Gunyah
from tests.aarch64 import assemble
from tests.hyp.arch.test_scheduler import drive
from tests.hyp.gunyah.vmhelper import MMIO_IPA, RAM_IPA, build_vm

REPORT = MMIO_IPA + 0x8000
COUNTER = RAM_IPA + 0x10000

# CPU 1 counts in memory for ever; CPU 0 reports how far it counted across an
# ICC_PMR_EL1 write, then across an ICC_SGI1R_EL1 write (SGI 3 to CPU 1).
GUEST = f"""
    ldr x9, ={REPORT:#x}
    ldr x20, ={COUNTER:#x}
    mrs x19, mpidr_el1
    and x19, x19, #0xff
    cbnz x19, secondary
    ldr x0, =0xC4000003             // PSCI CPU_ON
    mov x1, #1
    adr x2, secondary
    mov x3, #0
    hvc #0
    ldr x4, [x20]
    mov x1, #0xf0
    msr S3_0_C4_C6_0, x1            // ICC_PMR_EL1
    ldr x5, [x20]
    sub x5, x5, x4
    str x5, [x9]
    ldr x4, [x20]
    mov x1, #(1 << 1)
    orr x1, x1, #(3 << 24)
    msr S3_0_C12_C11_5, x1          // ICC_SGI1R_EL1
    ldr x5, [x20]
    sub x5, x5, x4
    str x5, [x9, #8]
    ldr x0, =0x84000008             // PSCI SYSTEM_OFF
    hvc #0
    b .

secondary:
    ldr x20, ={COUNTER:#x}
1:  ldr x1, [x20]
    add x1, x1, #1
    str x1, [x20]
    b 1b
"""


def test_an_sgi_passes_the_turn_and_a_priority_mask_write_does_not():
    gunyah = Gunyah(dram_size=1 << 30)
    try:
        vm = build_vm(gunyah, assemble(GUEST), vcpus=2)
        woken = [threading.Event(), threading.Event()]
        for virq, index in vm.wakeups.items():
            gunyah.host_vic.handlers[virq] = lambda _v, i=index: woken[i].set()
        log: list = []  # (vCPU, IPA, value) of each MMIO write
        threads = [threading.Thread(target=drive, args=(vm, i, woken, log)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
    finally:
        gunyah.close()
    reports = {ipa: value for _, ipa, value in log}
    assert reports[REPORT] == 0  # CPU 1 did not run across the PMR write
    assert reports[REPORT + 8] > 0  # it did across the SGI
