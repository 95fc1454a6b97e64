"""Two vCPUs of one VM, each run by its own host thread, interleave the same way
every time: PSCI CPU_ON, prints from both, an SGI, CPU_OFF and SYSTEM_OFF."""

import threading

from hyp.gunyah.hypervisor import Gunyah
from hyp.gunyah.vcpu import POWEROFF_EXITED, ResumeAction, VcpuState
from hyp.hw.board import GICR_BASE
from tests.aarch64 import assemble
from tests.hyp.gunyah.vmhelper import MMIO_IPA, build_vm

REPORT = MMIO_IPA + 0x8000

SMP_GUEST = f"""
    ldr x9, ={REPORT:#x}
    mrs x19, mpidr_el1
    and x19, x19, #0xff
    cbnz x19, secondary
    ldr x0, =0xC4000003             // PSCI CPU_ON
    mov x1, #1
    adr x2, secondary
    mov x3, #0x77
    hvc #0
    str x0, [x9, #8]                // CPU_ON result
    bl print
    bl wait_for_sgi
    ldr x0, =0x84000008             // PSCI SYSTEM_OFF
    hvc #0
    b .

secondary:
    ldr x9, ={REPORT:#x}
    str x0, [x9, #16]               // context from CPU_ON
    mrs x19, mpidr_el1
    and x19, x19, #0xff
    bl print
    mov x1, #1                      // SGI 3 to CPU 0 (target list bit 0)
    orr x1, x1, #(3 << 24)
    msr S3_0_C12_C11_5, x1          // ICC_SGI1R_EL1
    ldr x0, =0x84000002             // PSCI CPU_OFF
    hvc #0
    b .

print:                              // four lines: cpu << 8 | i
    mov x2, #0
1:  add x3, x2, x19, lsl #8
    str x3, [x9]
    add x2, x2, #1
    cmp x2, #4
    b.lt 1b
    ret

wait_for_sgi:
    ldr x3, ={GICR_BASE + 0x10000:#x}
    mov w1, #(1 << 3)
    str w1, [x3, #0x100]            // GICR_ISENABLER0: SGI 3
    mov x1, #0xff
    msr S3_0_C4_C6_0, x1
    mov x1, #1
    msr S3_0_C12_C12_7, x1
    isb
1:  wfi
    mrs x1, S3_0_C12_C12_0          // ICC_IAR1_EL1 (interrupts stay masked)
    cmp x1, #3
    b.ne 1b
    msr S3_0_C12_C12_1, x1
    ret
"""


def drive(vm, index, woken, log):
    while True:
        state, a, _, c = vm.run(index, 0, ResumeAction.EMULATE)
        if state == VcpuState.ADDRSPACE_VMMIO_WRITE:
            log.append((index, a, c))
            continue
        if state == VcpuState.POWERED_OFF and a & POWEROFF_EXITED:
            return
        woken[index].wait(10)
        woken[index].clear()


def run_once():
    gunyah = Gunyah(dram_size=1 << 30)
    try:
        vm = build_vm(gunyah, assemble(SMP_GUEST), vcpus=2)
        woken = [threading.Event(), threading.Event()]
        for virq, index in vm.wakeups.items():
            gunyah.host_vic.handlers[virq] = lambda _v, i=index: woken[i].set()
        log: list = []
        threads = [threading.Thread(target=drive, args=(vm, i, woken, log)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        return list(gunyah.events), log
    finally:
        gunyah.close()


def test_smp_guest_runs_and_its_trace_is_the_same_every_time():
    trace, log = run_once()
    prints = sorted(v for _, ipa, v in log if ipa == REPORT)
    assert prints == [0, 1, 2, 3, 0x100, 0x101, 0x102, 0x103]
    assert (0, REPORT + 8, 0) in log  # CPU_ON returned PSCI SUCCESS
    assert (1, REPORT + 16, 0x77) in log  # the secondary got its context in X0
    assert ("vm_event", (("kind", "system_off"), ("vcpu", "vm1.cpu0"))) in trace
    for _ in range(3):
        assert run_once() == (trace, log)
