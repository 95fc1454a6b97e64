"""Virtual interrupts: a doorbell wakes a guest in WFI and runs its IRQ vector; the
virtual timer fires after the programmed virtual time; acknowledging and
ending an interrupt moves the IRQ line before the guest's next instruction."""

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


def _two_spis() -> str:
    """Guest code: SPIs ``SPI`` and ``SPI + 1`` enabled, edge, both made pending."""
    return (
        gic_enable(SPI)
        + gic_enable(SPI + 1)
        + f"""
    ldr w1, ={3 << SPI % 32:#x}
    str w1, [x0, #{0x200 + SPI // 32 * 4}]     // GICD_ISPENDR: both pending
"""
    )


# The first IRQ unmasks IRQs in its handler and EOIs: the second, equal in
# priority, becomes deliverable with that EOI and must be taken before the
# next instruction (x23 still 0 in its handler), as on a GIC. Reports: the
# INTID and x23 at each entry, then x23 once the first handler goes on.
NESTED_GUEST = (
    GIC_SETUP
    + _two_spis()
    + """
    mov x20, #0
    mov x23, #0
    msr daifclr, #2
1:  wfi
    b 1b
    .balign 0x800
vectors:
    .skip 0x280
    mrs x21, S3_0_C12_C12_0         // ICC_IAR1_EL1
    add x20, x20, #1
    str x21, [x9]
    str x23, [x9, #8]
    cmp x20, #1
    b.ne 2f
    msr daifclr, #2                 // let the second one in
    msr S3_0_C12_C12_1, x21         // ICC_EOIR1_EL1: the second is taken here
    mov x23, #1
    str x23, [x9, #16]
1:  wfi
    b 1b
2:  msr S3_0_C12_C12_1, x21
    eret
"""
)

# IRQs masked, an SPI pending (the line is up): acknowledging it lowers the
# line before the next instruction, so unmasking takes no spurious IRQ.
# Reports: any IRQ taken (its IAR read), the INTID acknowledged, the IRQs taken.
ACK_MASKED_GUEST = (
    GIC_SETUP
    + gic_enable(SPI)
    + f"""
    mov w1, #{1 << SPI % 32:#x}
    str w1, [x0, #{0x200 + SPI // 32 * 4}]     // GICD_ISPENDR
    mov x20, #0
    mrs x21, S3_0_C12_C12_0         // ICC_IAR1_EL1, IRQs masked
    msr daifclr, #2
    str x21, [x9, #16]
    msr S3_0_C12_C12_1, x21
    str x20, [x9, #24]
1:  wfi
    b 1b
    .balign 0x800
vectors:
    .skip 0x280
    mrs x22, S3_0_C12_C12_0
    add x20, x20, #1
    str x22, [x9]
    eret
"""
)


def test_an_eoi_makes_the_next_irq_taken_before_the_next_instruction(gunyah):
    vm = build_vm(gunyah, assemble(NESTED_GUEST))
    write = VcpuState.ADDRSPACE_VMMIO_WRITE
    assert [vm.run() for _ in range(5)] == [
        (write, REPORT, 8, SPI),
        (write, REPORT + 8, 8, 0),
        (write, REPORT, 8, SPI + 1),
        (write, REPORT + 8, 8, 0),
        (write, REPORT + 16, 8, 1),
    ]
    assert vm.run()[0] == VcpuState.EXPECTS_WAKEUP


def test_an_acknowledge_lowers_the_line_before_the_next_instruction(gunyah):
    vm = build_vm(gunyah, assemble(ACK_MASKED_GUEST))
    write = VcpuState.ADDRSPACE_VMMIO_WRITE
    assert vm.run() == (write, REPORT + 16, 8, SPI)
    assert vm.run() == (write, REPORT + 24, 8, 0)
    assert vm.run()[0] == VcpuState.EXPECTS_WAKEUP


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
