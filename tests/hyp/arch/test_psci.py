"""PSCI and hypercalls from guest code: the SMCCC and native conduits, VERSION,
FEATURES, SYSTEM_RESET2, and what vcpu_run says about them."""

from hyp.gunyah.errors import Error
from hyp.gunyah.vcpu import POWEROFF_EXITED, ResumeAction, VcpuState
from tests.aarch64 import assemble
from tests.hyp.gunyah.vmhelper import MMIO_IPA, build_vm

REPORT = MMIO_IPA + 0x8000


def calls(body: str) -> str:
    return f"""
    ldr x9, ={REPORT:#x}
    {body}
    b .
"""


def reports(vm, count):
    out = []
    for _ in range(count):
        state, ipa, _, value = vm.run(0, 0, ResumeAction.EMULATE)
        assert (state, ipa) == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT), state
        out.append(value)
    return out


def test_version_features_and_smccc(gunyah):
    guest = calls("""
    ldr x0, =0x84000000
    hvc #0
    str x0, [x9]                  // PSCI_VERSION
    ldr x0, =0x8400000a
    ldr x1, =0xc4000003
    hvc #0
    str x0, [x9]                  // FEATURES(CPU_ON64)
    ldr x0, =0x8400000a
    ldr x1, =0x8400001f
    hvc #0
    str x0, [x9]                  // FEATURES(unknown)
    ldr x0, =0x80000000
    hvc #0
    str x0, [x9]                  // SMCCC_VERSION
    ldr x0, =0x8600ff01
    hvc #0
    str x0, [x9]                  // vendor UID word 0
    ldr x0, =0x84000000
    smc #0
    str x0, [x9]                  // PSCI over SMC
    """)
    vm = build_vm(gunyah, assemble(guest))
    minus_one = (1 << 64) - 1
    assert reports(vm, 6) == [0x10001, 0, minus_one, 0x10001, 0xCD8FD5C1, 0x10001]


def test_native_and_smccc_hypercall_conduits(gunyah):
    guest = calls("""
    hvc #0x6000                   // native hypervisor_identify
    str x0, [x9]
    ldr x0, =0xc6008000           // SMCCC hypervisor_identify
    hvc #0
    str x0, [x9]
    ldr x0, =0xc6008012           // doorbell_send with a forged capability
    ldr x1, =0x12345678
    mov x2, #1
    mov x3, #0
    hvc #0
    str x0, [x9]
    """)
    vm = build_vm(gunyah, assemble(guest))
    api = reports(vm, 2)
    assert api[0] == api[1] and api[0] & 0x3FFF == 1
    assert reports(vm, 1) == [50]  # CSPACE_CAP_NULL, and nothing else happened


def test_system_off_powers_the_vm_off_for_good(gunyah):
    vm = build_vm(gunyah, assemble(calls("ldr x0, =0x84000008\n hvc #0")))
    assert vm.run() == (VcpuState.POWERED_OFF, POWEROFF_EXITED, 0, 0)
    assert vm.run() == (VcpuState.POWERED_OFF, POWEROFF_EXITED, 0, 0)


def test_system_reset2_is_a_vcpu_run_state(gunyah):
    guest = calls("ldr x0, =0xc4000012\n mov x1, #0x5\n mov x2, #0xc0\n hvc #0")
    vm = build_vm(gunyah, assemble(guest))
    state, kind, cookie, _ = vm.run()
    assert state == VcpuState.PSCI_SYSTEM_RESET
    assert (kind & 0xFFFF_FFFF, kind >> 62, cookie) == (5, 1, 0xC0)
    events = [e for e in gunyah.events if e[0] == "vm_event"]
    assert events == [("vm_event", (("kind", "system_reset"), ("vcpu", "vm1.cpu0")))]


def test_resume_fault_injects_an_abort(gunyah):
    guest = f"""
    adr x8, vectors
    msr vbar_el1, x8
    ldr x9, ={REPORT:#x}
    ldr x0, ={MMIO_IPA:#x}
    ldr x1, [x0]
    b .
    .balign 0x800
vectors:
    .skip 0x200
    mrs x10, esr_el1
    str x10, [x9]
    b .
"""
    vm = build_vm(gunyah, assemble(guest))
    assert vm.run()[:2] == (VcpuState.ADDRSPACE_VMMIO_READ, MMIO_IPA)
    state, ipa, _, esr = vm.run(0, 0, ResumeAction.FAULT)
    assert (state, ipa) == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT)
    assert esr >> 26 == 0x25 and esr & 0x3F == 0x10


def test_vcpu_run_needs_a_wakeup_virq(gunyah):
    vm = build_vm(gunyah, assemble(calls("wfi")))
    vm.hv.ok("vcpu_unbind_virq", vm.vcpus[0], 1, 0)
    assert vm.hv.err("vcpu_run", vm.vcpus[0], 0, 0, 0, 0) == Error.BUSY
