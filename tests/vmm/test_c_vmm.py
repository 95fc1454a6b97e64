"""The native sample VMMs of vmm/c/ (gunyah-vmm, gzvm-vmm), built with the bundled compiler.

The build follows vmm/c/Makefile's variables (CPPFLAGS, CFLAGS, COMMON) and
its two recipes, run without make: a machine with only Python has none.
"""

import re
import subprocess
from pathlib import Path

import pytest

from uapi import toolchain
from vmm.cli import main

SOURCE = Path(__file__).resolve().parents[2] / "vmm" / "c"
GUESTS_DIR = SOURCE.parent / "guests"
PROGRAMS = ("gunyah-vmm", "gzvm-vmm")


def makefile_variable(name: str) -> list[str]:
    text = (SOURCE / "Makefile").read_text()
    return re.search(rf"^{name} = (.*)$", text, re.MULTILINE).group(1).split()


def build(program: str, out: Path) -> Path:
    """``program`` as the Makefile builds it (sources named relative to vmm/c/), into ``out``."""
    common = makefile_variable("COMMON")
    flags = [*makefile_variable("CPPFLAGS"), *makefile_variable("CFLAGS")]
    binary = out / program
    toolchain.run(
        [toolchain.zig(), "cc", *flags, "-o", str(binary), f"{program}.c", *common], SOURCE
    )
    return binary


@pytest.fixture(scope="module")
def vmms(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("vmm-c")
    return {program: build(program, out) for program in PROGRAMS}


@pytest.fixture
def hello_dtb(tmp_path) -> Path:
    dtb = tmp_path / "hello.dtb"
    assert main(["dtb", "hello", "-o", str(dtb)]) == 0
    return dtb


def run(binary: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one guest image"),
        (["--dtb", "vm.dtb"], "one guest image"),
        (["guest.elf"], "--dtb is required (gunyah-sim dtb writes one)"),
        (["--vcpus", "0", "--dtb", "vm.dtb", "guest.elf"], "--vcpus 0: between 1 and"),
        (["--mem", "100", "--dtb", "vm.dtb", "guest.elf"], "--mem: a multiple of 4K"),
        (["--bogus", "guest.elf"], "bad option"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(vmms, program, args, message):
    p = run(vmms[program], *args)
    assert p.returncode == 2
    assert p.stderr.splitlines()[-1].startswith(f"{program}: {message}")


@pytest.mark.parametrize(("program", "vcpus"), [("gunyah-vmm", 64), ("gzvm-vmm", 8)])
def test_the_most_vcpus_is_the_drivers(vmms, program, vcpus):
    p = run(vmms[program], "--vcpus", str(vcpus + 1), "--dtb", "vm.dtb", "guest.elf")
    assert p.returncode == 2
    assert f"--vcpus {vcpus + 1}: between 1 and {vcpus}" in p.stderr


@pytest.mark.parametrize(("program", "device"), [("gunyah-vmm", "gunyah"), ("gzvm-vmm", "gzvm")])
def test_without_the_device_it_says_so_and_exits_1(vmms, program, device, hello_dtb):
    # The running kernel has no /dev/gunyah nor /dev/gzvm: the VMM's own open() fails.
    p = run(vmms[program], "--dtb", str(hello_dtb), str(GUESTS_DIR / "hello.elf"))
    assert p.returncode == 1
    assert p.stderr == f"{program}: /dev/{device}: No such file or directory\n"


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_bad_image_or_dtb_is_one_line_and_exit_2_before_the_device_is_opened(
    vmms, program, hello_dtb, tmp_path
):
    hello = str(GUESTS_DIR / "hello.elf")
    text = tmp_path / "notes.txt"
    text.write_text("not a guest\n")
    big = tmp_path / "big.dtb"
    big.write_bytes(hello_dtb.read_bytes() + bytes(64 << 10))
    cases = [
        ([str(text)], f"{text}: not an ELF file"),
        ([str(vmms[program])], f"{vmms[program]}: not an AArch64 ELF64"),
        (["missing.elf"], "missing.elf: No such file or directory"),
        (["--mem", "256K", hello], f"{hello}: 0x80000dc0+0x40000 does not fit in RAM"),
        (["--dtb", str(text), hello], f"{text}: not a devicetree blob"),
        (["--dtb", str(big), hello], f"{big}: larger than 65536 bytes"),
        (["--dtb", "missing.dtb", hello], "missing.dtb: No such file or directory"),
    ]
    for args, message in cases:
        p = run(vmms[program], "--dtb", str(hello_dtb), *args)
        assert p.returncode == 2, args
        assert p.stderr.count("\n") == 1 and p.stderr.startswith(f"{program}: {message}")
