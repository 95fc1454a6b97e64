"""Virtual interrupts: a doorbell wakes a guest in WFI and runs its IRQ vector; the
virtual timer fires after the programmed virtual time."""

from hyp.gunyah.vcpu import VcpuState
from hyp.hw.board import GICD_BASE, GICR_BASE
from tests.aarch64 import assemble
from tests.hyp.gunyah.vmhelper import MMIO_IPA, Hv, build_vm

REPORT = MMIO_IPA + 0x8000
SPI = 40

GIC_SETUP = f"""
    adr x8, vectors
    msr vbar_el1, x8
    ldr x9, ={REPORT:#x}
    ldr x0, ={GICD_BASE:#x}
    mov w1, #2
    str w1, [x0]                    // GICD_CTLR.EnableGrp1
    ldr x2, ={0x6000 + SPI * 8:#x}
    str xzr, [x0, x2]               // GICD_IROUTER{SPI}: this CPU
    mov w1, #{1 << (SPI % 32)}
    str w1, [x0, #{0x100 + SPI // 32 * 4}]   // GICD_ISENABLER
    mov w1, #{2 << (2 * (SPI % 16))}
    str w1, [x0, #{0xC00 + SPI // 16 * 4}]   // GICD_ICFGR: edge
    ldr x3, ={GICR_BASE:#x}
    str wzr, [x3, #0x14]            // GICR_WAKER: awake
    mov w1, #{1 << 27}
    add x4, x3, #0x10000
    str w1, [x4, #0x100]            // GICR_ISENABLER0: PPI 27
    mov x1, #0xff
    msr S3_0_C4_C6_0, x1            // ICC_PMR_EL1
    mov x1, #1
    msr S3_0_C12_C12_7, x1          // ICC_IGRPEN1_EL1
    isb
"""

DOORBELL_GUEST = (
    GIC_SETUP
    + """
    mov x20, #0
    msr daifclr, #2
1:  wfi
    b 1b
    .balign 0x800
vectors:
    .skip 0x280
    mrs x21, S3_0_C12_C12_0         // ICC_IAR1_EL1
    add x20, x20, #1
    str x20, [x9]
    str x21, [x9, #8]
    msr S3_0_C12_C12_1, x21         // ICC_EOIR1_EL1
    eret
"""
)

TIMER_GUEST = (
    GIC_SETUP
    + """
    mrs x1, cntvct_el0
    str x1, [x9, #16]
    mov x2, #5000
    msr cntv_tval_el0, x2
    mov x2, #1
    msr cntv_ctl_el0, x2
    msr daifclr, #2
1:  wfi
    b 1b
    .balign 0x800
vectors:
    .skip 0x280
    mrs x21, S3_0_C12_C12_0
    mrs x22, cntvct_el0
    str x21, [x9, #8]
    str x22, [x9, #24]
    mov x2, #2
    msr cntv_ctl_el0, x2            // mask it
    msr S3_0_C12_C12_1, x21
    eret
"""
)


def test_doorbell_wakes_the_guest_and_its_irq_vector_runs(gunyah):
    vm = build_vm(gunyah, assemble(DOORBELL_GUEST))
    hv = Hv(gunyah)
    woken = []
    for virq in vm.wakeups:
        gunyah.host_vic.handlers[virq] = woken.append
    doorbell = hv.create("doorbell")
    hv.ok("object_activate", doorbell, 0)
    hv.ok("doorbell_bind_virq", doorbell, vm.vic, SPI, 0)
    assert vm.run()[0] == VcpuState.EXPECTS_WAKEUP
    for n in range(1, 4):
        hv.ok("doorbell_send", doorbell, 1, 0)
        assert woken == list(vm.wakeups)[:1] * n
        assert vm.run() == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT, 8, n)
        assert vm.run() == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT + 8, 8, SPI)
        assert vm.run()[0] == VcpuState.EXPECTS_WAKEUP


def test_virtual_timer_fires_after_the_programmed_time(gunyah):
    vm = build_vm(gunyah, assemble(TIMER_GUEST))
    state, ipa, _, start = vm.run()
    assert (state, ipa) == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT + 16)
    assert vm.run() == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT + 8, 8, 27)
    state, ipa, _, now = vm.run()
    assert ipa == REPORT + 24
    assert now >= start + 5000
    assert now < start + 5000 + 1000  # the clock jumped to the deadline, not far past it
    assert vm.run()[0] == VcpuState.EXPECTS_WAKEUP
