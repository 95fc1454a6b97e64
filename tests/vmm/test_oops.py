"""vmm/oops.py: a guest's oops under ``gunyah-sim run``, and its ESR decoding."""

import pytest

from tests.aarch64 import assemble
from vmm.cli import main
from vmm.oops import Oops, decode_esr, disassemble

# X1 and X2 hold markers the register dump must show; the third instruction dies.
PROLOGUE = "mov x1, #0x1234\nmov x2, #0x5678\n"
PC = 0x8000_0008  # the image is loaded at the start of RAM


def run_image(tmp_path, capfd, code: str, *args: str) -> list[str]:
    raw = tmp_path / "crash.bin"
    raw.write_bytes(assemble(PROLOGUE + code))
    assert main(["run", str(raw), "--vcpus", "1", *args]) == 1
    return [line.removeprefix("gunyah-sim: ") for line in capfd.readouterr().err.splitlines()]


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
@pytest.mark.parametrize(
    ("code", "esr", "insn"),
    [
        (".inst 0x00000017", "EC 0x00 unknown reason (an undefined instruction)", "udf #0x17"),
        ("svc #0x99", "EC 0x15 SVC (AArch64), IL 32-bit, ISS 0x99: imm16 0x99", "svc #0x99"),
    ],
)
def test_an_unexpected_exception_prints_esr_pc_instruction_and_registers(
    tmp_path, capfd, hypervisor, code, esr, insn
):
    err = run_image(tmp_path, capfd, code, "--hypervisor", hypervisor)
    oops = err[err.index(next(x for x in err if x.startswith("guest oops: "))) :]
    assert oops[0].endswith("took a synchronous exception to its EL1"), oops
    assert esr in oops[1]
    assert oops[2].startswith(f"  PC  {PC:#018x}: ") and oops[2].endswith(insn), oops
    assert "x1  0000000000001234  x2  0000000000005678" in "\n".join(oops)
    assert oops[-1].endswith(f"sp  {0:016x}")


def test_a_data_abort_prints_far_and_the_access_that_faulted(tmp_path, capfd):
    # Gunyah: an IPA that is no memory and no device's is an external abort.
    err = run_image(tmp_path, capfd, "ldr x0, [x1]")
    assert "  ESR 0x96000010: EC 0x25 data abort, same EL" in "\n".join(err)
    assert "WnR 0, FSC 0x10 synchronous external abort" in "\n".join(err)
    assert f"  FAR {0x1234:#018x}" in err
    assert f"  PC  {PC:#018x}: f9400020  ldr x0, [x1]" in err


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
def test_a_fault_with_no_exception_prints_the_state_the_vcpu_stopped_in(
    tmp_path, capfd, hypervisor
):
    err = run_image(tmp_path, capfd, "mov x0, #0x1000\nbr x0", "--hypervisor", hypervisor)
    start = err.index(next(x for x in err if x.startswith("guest fault: ")))
    oops = err[start:]
    assert oops[0].endswith("stopped on a page fault at IPA 0x1000, fetch (it took no exception)")
    assert oops[1] == f"  PC  {0x1000:#018x}: (not executable: no instruction there)"
    assert "x0  0000000000001000  x1  0000000000001234  x2  0000000000005678" in oops[3]


def test_a_clean_run_prints_no_oops(capfd):
    assert main(["run", "hello", "--vcpus", "1"]) == 0
    assert "oops" not in capfd.readouterr().err


def test_esr_fields_of_a_write_permission_fault():
    esr = 0x25 << 26 | 1 << 25 | 1 << 6 | 0x0F
    assert decode_esr(esr) == (
        "EC 0x25 data abort, same EL, IL 32-bit, ISS 0x4f: ISV 0, FnV 0, EA 0, S1PTW 0, "
        "CM 0, WnR 1, FSC 0x0f permission fault, level 3"
    )
    assert decode_esr(0x21 << 26 | 1 << 25 | 0x05).endswith("FSC 0x05 translation fault, level 1")
    assert decode_esr(0x3F << 26).startswith("EC 0x3f reserved, IL 16-bit")


def test_an_instruction_that_cannot_be_fetched_says_so():
    assert disassemble(None, 0x1000) == "(not executable: no instruction there)"
    assert disassemble(0xD503201F, 0x1000) == "d503201f  nop"


def test_only_the_first_entry_is_printed_and_the_rest_counted():
    oops = Oops()
    for pc in (0x10, 0x200):
        entry = dict(event="guest_exception", vcpu="vm1.cpu0", esr=0, far=None, elr=pc, pc=pc)
        entry |= dict(insn=0, spsr=0x3C5)
        oops(entry | dict(vector=0x200, regs=(0,) * 31, sp=0))
    lines = oops.lines()
    assert lines[0].endswith("took a synchronous exception to its EL1 (1 more after it)")
    assert lines[2].startswith(f"  PC  {0x10:#018x}")
    assert Oops().lines() == []
