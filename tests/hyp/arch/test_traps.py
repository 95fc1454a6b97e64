"""An access to an unmapped IPA is a VMMIO exit with the exact IPA, size and value.

Each case runs one load or store against MMIO_IPA + 0x100 (x0), then the
guest reports the register the load filled and its base register (which
pre/post-indexed forms update) by storing both to a second MMIO address.
Reads are completed with resume data, sign- or zero-extended as the
instruction says.
"""

import pytest

from hyp.gunyah.vcpu import ResumeAction, VcpuState
from tests.aarch64 import assemble
from tests.hyp.gunyah.vmhelper import MMIO_IPA, build_vm

BASE = MMIO_IPA + 0x100
REPORT = MMIO_IPA + 0x8000
PATTERN = 0x1122_3344_5566_7788
READ_DATA = 0xF1E2_D3C4_B5A6_9788


def program(insn: str) -> str:
    return f"""
    ldr x0, ={BASE:#x}
    ldr x1, ={PATTERN:#x}
    mov x2, #0x10
    mov x3, #4
    ldr x5, =0xdeadbeefdeadbeef
    ldr x9, ={REPORT:#x}
    {insn}
    str x5, [x9]
    str x0, [x9, #8]
    b .
"""


def sext(value: int, bits: int, to: int) -> int:
    value &= (1 << bits) - 1
    if value >> (bits - 1):
        value -= 1 << bits
    return value & ((1 << to) - 1)


STORES = [
    ("strb w1, [x0]", BASE, 1, PATTERN & 0xFF, BASE),
    ("strh w1, [x0, #2]", BASE + 2, 2, PATTERN & 0xFFFF, BASE),
    ("str w1, [x0, #4]", BASE + 4, 4, PATTERN & 0xFFFF_FFFF, BASE),
    ("str x1, [x0, #8]", BASE + 8, 8, PATTERN, BASE),
    ("stur x1, [x0, #-8]", BASE - 8, 8, PATTERN, BASE),
    ("str x1, [x0, #16]!", BASE + 16, 8, PATTERN, BASE + 16),
    ("str x1, [x0], #16", BASE, 8, PATTERN, BASE + 16),
    ("strb w1, [x0, #-1]!", BASE - 1, 1, 0x88, BASE - 1),
    ("str x1, [x0, x2]", BASE + 0x10, 8, PATTERN, BASE),
    ("str w1, [x0, x3, lsl #2]", BASE + 16, 4, PATTERN & 0xFFFF_FFFF, BASE),
    ("strh w1, [x0, w3, uxtw]", BASE + 4, 2, 0x7788, BASE),
    ("stlr x1, [x0]", BASE, 8, PATTERN, BASE),
    ("str xzr, [x0]", BASE, 8, 0, BASE),
]

LOADS = [
    ("ldrb w5, [x0]", BASE, 1, READ_DATA & 0xFF, BASE),
    ("ldrsb x5, [x0]", BASE, 1, sext(READ_DATA, 8, 64), BASE),
    ("ldrsb w5, [x0]", BASE, 1, sext(READ_DATA, 8, 32), BASE),
    ("ldrh w5, [x0, #2]", BASE + 2, 2, READ_DATA & 0xFFFF, BASE),
    ("ldrsh x5, [x0]", BASE, 2, sext(READ_DATA, 16, 64), BASE),
    ("ldrsh w5, [x0]", BASE, 2, sext(READ_DATA, 16, 32), BASE),
    ("ldr w5, [x0, #4]", BASE + 4, 4, READ_DATA & 0xFFFF_FFFF, BASE),
    ("ldrsw x5, [x0]", BASE, 4, sext(READ_DATA, 32, 64), BASE),
    ("ldr x5, [x0]", BASE, 8, READ_DATA, BASE),
    ("ldur w5, [x0, #-4]", BASE - 4, 4, READ_DATA & 0xFFFF_FFFF, BASE),
    ("ldr x5, [x0, #8]!", BASE + 8, 8, READ_DATA, BASE + 8),
    ("ldr x5, [x0], #-8", BASE, 8, READ_DATA, BASE - 8),
    ("ldr x5, [x0, x2]", BASE + 0x10, 8, READ_DATA, BASE),
    ("ldar w5, [x0]", BASE, 4, READ_DATA & 0xFFFF_FFFF, BASE),
]


def run_to_report(vm):
    state, ipa, size, value = vm.run(0, 0, ResumeAction.EMULATE)
    assert (VcpuState(state), ipa, size) == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT, 8)
    loaded = value
    state, ipa, size, value = vm.run(0, 0, ResumeAction.EMULATE)
    assert (VcpuState(state), ipa) == (VcpuState.ADDRSPACE_VMMIO_WRITE, REPORT + 8)
    return loaded, value


@pytest.mark.parametrize(
    ("insn", "ipa", "size", "value", "base"), STORES, ids=[s[0] for s in STORES]
)
def test_store_forms(gunyah, insn, ipa, size, value, base):
    vm = build_vm(gunyah, assemble(program(insn)))
    assert vm.run() == (VcpuState.ADDRSPACE_VMMIO_WRITE, ipa, size, value)
    loaded, new_base = run_to_report(vm)
    assert (loaded, new_base) == (0xDEAD_BEEF_DEAD_BEEF, base)


@pytest.mark.parametrize(
    ("insn", "ipa", "size", "result", "base"), LOADS, ids=[s[0] for s in LOADS]
)
def test_load_forms_complete_with_resume_data(gunyah, insn, ipa, size, result, base):
    vm = build_vm(gunyah, assemble(program(insn)))
    assert vm.run() == (VcpuState.ADDRSPACE_VMMIO_READ, ipa, size, 0)
    state, _, _, loaded = vm.run(0, READ_DATA, ResumeAction.EMULATE)
    assert VcpuState(state) == VcpuState.ADDRSPACE_VMMIO_WRITE
    assert loaded == result
    state, report, _, new_base = vm.run(0, 0, ResumeAction.EMULATE)
    assert (report, new_base) == (REPORT + 8, base)


def test_retry_runs_the_access_again(gunyah):
    vm = build_vm(gunyah, assemble(program("ldr x5, [x0]")))
    first = vm.run()
    assert vm.run(0, 0, ResumeAction.RETRY) == first
