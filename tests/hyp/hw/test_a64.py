"""The access decoder against instructions encoded by the GNU assembler."""

import pytest

from hyp.hw import a64
from tests.aarch64 import assemble

REGS = {0: 0x1000, 1: 0x2222, 2: 0x10, 3: 0xFFFF_FFFF}


def xreg(n):
    return REGS.get(n, 0)


def enc(text: str) -> int:
    return int.from_bytes(assemble(text)[:4], "little")


@pytest.mark.parametrize(
    ("insn", "is_write", "size", "rt", "address", "writeback", "sext", "bits"),
    [
        ("str x1, [x0, #8]", True, 8, 1, 0x1008, None, False, 64),
        ("ldrb w5, [x0]", False, 1, 5, 0x1000, None, False, 64),
        ("ldrsb x5, [x0]", False, 1, 5, 0x1000, None, True, 64),
        ("ldrsb w5, [x0]", False, 1, 5, 0x1000, None, True, 32),
        ("ldrsw x5, [x0]", False, 4, 5, 0x1000, None, True, 64),
        ("stur x1, [x0, #-8]", True, 8, 1, 0x0FF8, None, False, 64),
        ("str x1, [x0, #16]!", True, 8, 1, 0x1010, 0x1010, False, 64),
        ("str x1, [x0], #16", True, 8, 1, 0x1000, 0x1010, False, 64),
        ("str x1, [x0, x2]", True, 8, 1, 0x1010, None, False, 64),
        ("str w1, [x0, w3, uxtw]", True, 4, 1, 0x1000 + 0xFFFF_FFFF, None, False, 64),
        ("str w1, [x0, w3, sxtw]", True, 4, 1, 0x0FFF, None, False, 64),
        ("stlr x1, [x0]", True, 8, 1, 0x1000, None, False, 64),
        ("ldar w5, [x0]", False, 4, 5, 0x1000, None, False, 64),
    ],
)
def test_decodes(insn, is_write, size, rt, address, writeback, sext, bits):
    access = a64.decode(enc(insn), xreg, sp=0x8000)
    assert (access.is_write, access.size, access.rt) == (is_write, size, rt)
    assert (access.address, access.writeback) == (address, writeback)
    assert (access.sign_extend, access.dest_bits) == (sext, bits)


@pytest.mark.parametrize(
    "insn",
    [
        "ldp x2, x3, [x0]",
        "ldxr x2, [x0]",
        "ldadd x2, x3, [x0]",
        "ldr q0, [x0]",
        "ldr x0, .",
        "prfm pldl1keep, [x0]",
        "nop",
    ],
)
def test_refuses_what_it_cannot_emulate(insn):
    assert a64.decode(enc(insn), xreg, sp=0) is a64.UNSUPPORTED


def test_base_register_31_is_sp():
    access = a64.decode(enc("str x1, [sp, #8]"), xreg, sp=0x8000)
    assert access.address == 0x8008


def test_load_result_extends():
    ldrsh_w = a64.Access(False, 2, 5, 0, sign_extend=True, dest_bits=32)
    assert a64.load_result(ldrsh_w, 0x1_8001) == 0xFFFF_8001
    ldrh = a64.Access(False, 2, 5, 0)
    assert a64.load_result(ldrh, 0x1_8001) == 0x8001


@pytest.mark.parametrize(
    ("source", "write"),
    [
        ("stp x1, x2, [x0]", True),
        ("ldp x1, x2, [x0]", False),
        ("stxr w3, x1, [x0]", True),
        ("ldaxr x1, [x0]", False),
        ("ldadd x1, x2, [x0]", True),
        ("str q0, [x0]", True),
        ("ldr q0, [x0]", False),
        (".inst 0xf8bfc001  // ldapr x1, [x0]", False),
        ("swp x1, x2, [x0]", True),
        ("ldr x1, .", False),
        ("ld1 {v0.16b}, [x0]", False),
        ("st1 {v0.16b}, [x0]", True),
        # compare-and-swap reads and writes, its L bit is acquire (Linux's
        # stage-1 write fault on a clean page must reach its EL1 as one)
        ("casa w0, w1, [x2]", True),
        ("cas x0, x1, [x2]", True),
        ("casalb w0, w1, [x2]", True),
        ("caspal x0, x1, x2, x3, [x4]", True),
        ("casp w0, w1, w2, w3, [x4]", True),
        ("ldxp x1, x2, [x0]", False),
        ("ldaxp w1, w2, [x0]", False),
        ("stlxp w3, x1, x2, [x0]", True),
    ],
)
def test_writes_of_accesses_decode_cannot_emulate(source, write):
    insn = enc(source)
    assert a64.decode(insn, xreg, 0) is None
    assert a64.writes(insn) is write


@pytest.mark.parametrize(
    ("source", "address"),
    [
        ("ldp x1, x2, [x0, #-16]!", 0x0FF0),
        ("ldp x1, x2, [x0], #16", 0x1000),
        ("stp q0, q1, [x0, #32]", 0x1020),
        ("ldpsw x1, x2, [x0, #8]", 0x1008),
        ("ldr q0, [x0, #16]", 0x1010),
        ("ldr d0, [x0, #16]", 0x1010),
        ("str w1, [x0, x2, lsl #2]", 0x1040),
        ("ldr x1, [x0], #8", 0x1000),
        ("ldur x1, [x0, #-8]", 0x0FF8),
        ("ldadd w1, w2, [x0]", 0x1000),
        ("casal x1, x2, [x0]", 0x1000),
        ("ldxr x1, [x0]", 0x1000),
        ("ld1 {v0.16b}, [x0]", 0x1000),
        ("ld1 {v0.16b}, [x0], #16", 0x1000),
        ("ld1 {v0.s}[1], [x0]", 0x1000),
        ("dc zva, x1", 0x2222),
        ("dc civac, x0", 0x1000),
        ("ldr x1, [sp, #8]", 0x8008),
    ],
)
def test_the_address_of_every_kind_of_access(source, address):
    assert a64.address(enc(source), xreg, 0x8000, 0x4000) == address


def test_a_literal_load_is_pc_relative_and_other_instructions_access_nothing():
    assert a64.address(0x5800_0040, xreg, 0, 0x4000) == 0x4008  # ldr x0, .+8
    for source in ("add x0, x1, x2", "b .", "msr tpidr_el0, x0", "svc #0"):
        assert a64.address(enc(source), xreg, 0, 0x4000) is None
