"""Virtual interrupts: a doorbell wakes a guest in WFI and runs its IRQ vector; the
virtual timer fires after the programmed virtual time."""

from hyp.gunyah.vcpu import VcpuState
from tests.aarch64 import assemble, gic_enable
from tests.hyp.gunyah.vmhelper import MMIO_IPA, Hv, build_vm

REPORT = MMIO_IPA + 0x8000
SPI = 40

GIC_SETUP = f"""
    adr x8, vectors
    msr vbar_el1, x8
    ldr x9, ={REPORT:#x}
""" + gic_enable(SPI, edge=True, ppis=(27,))  # PPI 27: the virtual timer

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
