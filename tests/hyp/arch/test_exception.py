"""What the guest sees when an access cannot be done: a data abort at its EL1.

A store to a read-only mapping is a permission fault; a pair, exclusive or
atomic access to MMIO cannot be emulated and is an external abort. The
guest's own vector reports ESR_EL1 and FAR_EL1 over MMIO.
"""

import pytest
from unicorn import UcError
from unicorn.unicorn_const import UC_ERR_FETCH_UNMAPPED

from hyp.gunyah.vcpu import VcpuState
from tests.aarch64 import assemble
from tests.hyp.gunyah.vmhelper import GUEST_PA, MAP_PARTIAL, MMIO_IPA, RAM_IPA, Hv, build_vm

RO_IPA = RAM_IPA + 0x20_0000
RO_PA = GUEST_PA + 0x40_0000
REPORT = MMIO_IPA + 0x8000
ATTRS_R_WB = 4 | 4 << 4 | 0xF << 16


def program(body: str) -> str:
    return f"""
    adr x8, vectors
    msr vbar_el1, x8
    isb
    ldr x9, ={REPORT:#x}
    ldr x0, ={MMIO_IPA:#x}
    ldr x1, ={RO_IPA:#x}
    {body}
    b .
    .balign 0x800
vectors:
    .skip 0x200
    mrs x10, esr_el1
    mrs x11, far_el1
    str x10, [x9]
    str x11, [x9, #8]
    b .
"""


def map_read_only(gunyah, vm):
    hv = Hv(gunyah)
    extent = hv.create("memextent")
    hv.ok("memextent_configure", extent, RO_PA, 0x1000, 7, 0)
    hv.ok("object_activate", extent, 0)
    hv.ok("addrspace_map", vm.addrspace, extent, RO_IPA, ATTRS_R_WB, MAP_PARTIAL, 0, 0x1000)
    gunyah.dram.write(RO_PA, (0xCAFE).to_bytes(8, "little"))


def reported_abort(vm):
    state, ipa, _, esr = vm.run()
    assert (VcpuState(state), ipa) == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT)
    state, ipa, _, far = vm.run()
    assert ipa == REPORT + 8
    return esr, far


def test_store_to_a_read_only_mapping_is_a_permission_fault(gunyah):
    vm = build_vm(gunyah, assemble(program("ldr x2, [x1]\n str x2, [x0]\n str x2, [x1, #8]")))
    map_read_only(gunyah, vm)
    assert vm.run() == (VcpuState.ADDRSPACE_VMMIO_WRITE, MMIO_IPA, 8, 0xCAFE)
    esr, far = reported_abort(vm)
    assert esr >> 26 == 0x25 and esr & 0x3F == 0x0F and esr >> 6 & 1 == 1
    assert far == RO_IPA + 8
    assert gunyah.dram.read(RO_PA + 8, 8) == bytes(8)


@pytest.mark.parametrize(
    "insn",
    [
        "ldp x2, x3, [x0]",
        "stp x2, x3, [x0]",
        "ldxr x2, [x0]",
        "ldaxr w2, [x0]",
        "ldadd x2, x3, [x0]",
        "ldr q0, [x0]",
    ],
)
def test_accesses_that_cannot_be_emulated_abort_the_guest(gunyah, insn):
    vm = build_vm(gunyah, assemble(program(insn)))
    esr, far = reported_abort(vm)
    assert esr >> 26 == 0x25 and esr & 0x3F == 0x10
    assert far == MMIO_IPA
    assert (
        "unsupported_mmio",
        (("insn", vm_insn(gunyah)), ("ipa", MMIO_IPA), ("vcpu", "vm1.cpu0")),
    ) in gunyah.events


def vm_insn(gunyah):
    record = next(e for e in gunyah.events if e[0] == "unsupported_mmio")
    return dict(record[1])["insn"]


class GivingUp:
    """Unicorn failing every run, as when it cannot fetch (the fault injected)."""

    def __init__(self, uc):
        self.uc, self.starts = uc, 0

    def emu_start(self, *args, **kwargs):
        self.starts += 1
        if self.starts > 3:  # bounds the old endless rerun
            raise RuntimeError("the core was rerun after unicorn gave up")
        raise UcError(UC_ERR_FETCH_UNMAPPED)

    def __getattr__(self, name):
        return getattr(self.uc, name)


def test_unicorn_giving_up_is_a_fault_state_never_a_rerun(gunyah):
    vm = build_vm(gunyah, assemble("b ."))
    core = gunyah.scheduler.order[0].core
    core.uc = failing = GivingUp(core.uc)
    assert VcpuState(vm.run()[0]) == VcpuState.FAULT
    assert VcpuState(vm.run()[0]) == VcpuState.FAULT
    assert failing.starts == 1
    assert [event for event, _ in gunyah.events].count("vcpu_fault") == 1


def test_each_entry_is_traced_with_what_the_guest_reads_and_the_state_before(gunyah):
    """The ``guest_exception`` event (an oops's source) carries the ESR and FAR
    the guest's vector reads, the instruction that took it and its registers."""
    code = assemble(program("ldr x2, [x1]\n str x2, [x0]\n str x2, [x1, #8]"))
    vm = build_vm(gunyah, code)
    map_read_only(gunyah, vm)
    vm.run()
    esr, far = reported_abort(vm)
    (entry,) = [dict(f) for event, f in gunyah.events if event == "guest_exception"]
    store = code.index(assemble("str x2, [x1, #8]"))
    assert (entry["esr"], entry["far"]) == (esr, far)
    assert entry["pc"] == entry["elr"] == RAM_IPA + store
    assert entry["insn"] == int.from_bytes(code[store : store + 4], "little")
    assert entry["regs"][1:3] == (RO_IPA, 0xCAFE)
    assert entry["vector"] == RAM_IPA + code.index(assemble("mrs x10, esr_el1"))


def test_an_svc_from_el0_runs_the_vector_on_sp_el1_and_banks_the_users_sp(gunyah):
    """The entry swaps stacks as the hardware does: the vector runs on SP_EL1 and
    SP_EL0 keeps the user's SP (else the kernel would push onto the user's stack)."""
    source = f"""
    adr x8, vectors
    msr vbar_el1, x8
    ldr x9, ={REPORT:#x}
    ldr x2, ={RAM_IPA + 0x8000:#x}
    mov sp, x2
    ldr x3, ={RAM_IPA + 0x6000:#x}
    msr sp_el0, x3
    adr x4, user
    msr elr_el1, x4
    msr spsr_el1, xzr
    isb
    eret
user:
    mov x5, sp
    svc #7
    b .
    .balign 0x800
vectors:
    .skip 0x400
    mov x10, sp
    mrs x11, sp_el0
    str x10, [x9]
    str x11, [x9, #8]
    b .
"""
    vm = build_vm(gunyah, assemble(source))
    state, ipa, _, sp = vm.run()
    assert (VcpuState(state), ipa, sp) == (
        VcpuState.ADDRSPACE_VMMIO_WRITE,
        REPORT,
        RAM_IPA + 0x8000,
    )
    state, ipa, _, sp_el0 = vm.run()
    assert (ipa, sp_el0) == (REPORT + 8, RAM_IPA + 0x6000)


@pytest.mark.parametrize(("zen", "ec"), [(0, 0x19), (3, None)])
def test_an_sve_instruction_cpacr_traps_is_the_sve_access_trap(gunyah, zen, ec):
    """Linux gives a task SVE on its first SVE instruction, from the trap's EC 0x19
    (an UNDEF, EC 0, would be SIGILL); with ZEN 0b11 the instruction just runs."""
    source = program(f"""
    mov x2, #{zen << 16}
    msr cpacr_el1, x2
    isb
    .inst 0x2518e3e0  // ptrue p0.b
    str xzr, [x9, #16]
    """)
    vm = build_vm(gunyah, assemble(source))
    if ec is None:
        state, ipa, _, _ = vm.run()
        assert (VcpuState(state), ipa) == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT + 16)
        return
    esr, _ = reported_abort(vm)
    assert esr >> 26 == ec and esr >> 25 & 1
