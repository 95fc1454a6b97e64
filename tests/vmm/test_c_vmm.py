"""The native sample VMMs of vmm/c/ (gunyah-vmm, gzvm-vmm), built with the bundled compiler,
on their own (usage and input errors) and through ``gunyah-sim exec`` with the bundled guests.

The build follows vmm/c/Makefile's variables (CPPFLAGS, CFLAGS, COMMON) and
its two recipes, run without make: a machine with only Python has none.
"""

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.aarch64 import assemble
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


# Through ``gunyah-sim exec``: the VMM's own open/ioctl/mmap of the device reach the model.
HYPERVISORS = {"gunyah": "gunyah-vmm", "geniezone": "gzvm-vmm"}
# The guests, and what each reads on standard input (the virtio console echoes it).
GUEST_INPUT = {"hello": "", "holding-cell": "", "virtio-console": "echo me\n"}


def gunyah_sim(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmm.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_native(vmms, hypervisor: str, guest, vcpus: int, tmp_path, stdin: str = ""):
    """``gunyah-sim exec`` of the hypervisor's C VMM booting ``guest`` (a bundled name or
    an ELF path) with ``gunyah-sim dtb``'s DTB."""
    dtb = tmp_path / "vm.dtb"
    dtb_args = ["--hypervisor", hypervisor, "--vcpus", str(vcpus), str(guest), "-o", str(dtb)]
    assert main(["dtb", *dtb_args]) == 0
    elf = GUESTS_DIR / f"{guest}.elf" if isinstance(guest, str) else guest
    vmm = [str(vmms[HYPERVISORS[hypervisor]]), "--vcpus", str(vcpus), "--dtb", str(dtb), str(elf)]
    return gunyah_sim("exec", "--hypervisor", hypervisor, "--", *vmm, stdin=stdin)


@pytest.mark.parametrize("hypervisor", HYPERVISORS)
@pytest.mark.parametrize("guest", GUEST_INPUT)
def test_a_bundled_guest_prints_what_it_prints_under_run_and_powers_off_with_exit_0(
    vmms, hypervisor, guest, tmp_path
):
    stdin = GUEST_INPUT[guest]
    native = run_native(vmms, hypervisor, guest, 4, tmp_path, stdin)
    assert (native.returncode, native.stderr) == (0, "")
    python = gunyah_sim("run", "--hypervisor", hypervisor, "--vcpus", "4", guest, stdin=stdin)
    assert python.returncode == 0, python.stderr
    assert native.stdout == python.stdout
    hyp_name = {"gunyah": "Gunyah", "geniezone": "GenieZone"}[hypervisor]
    assert f"{guest}: running on {hyp_name}\n" in native.stdout


def test_hello_says_hello_from_each_of_4_vcpus(vmms, tmp_path):
    p = run_native(vmms, "gunyah", "hello", 4, tmp_path)
    assert p.returncode == 0
    for cpu in range(4):
        assert f"hello from cpu {cpu}, MPIDR 0x8000000{cpu}\n" in p.stdout
    assert p.stdout.endswith("hello: every cpu said hello; PSCI SYSTEM_OFF\n")


def test_the_virtio_console_echoes_its_input_and_ends_at_its_end(vmms, tmp_path):
    p = run_native(vmms, "geniezone", "virtio-console", 2, tmp_path, "one\ntwo\n")
    assert p.returncode == 0
    assert "one\ntwo\n" in p.stdout
    assert p.stdout.endswith("virtio-console: bye\n")


def elf64(code: bytes, entry: int) -> bytes:
    """An AArch64 ELF64 executable of one PT_LOAD segment: ``code`` at ``entry``."""
    ehdr_size, phdr_size = 64, 56
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)  # ELF64, little-endian, version 1
    ehdr = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 183, 1, entry, ehdr_size, 0, 0, ehdr_size, phdr_size, 1, 0, 0, 0
    )
    offset = ehdr_size + phdr_size
    phdr = struct.pack("<IIQQQQQQ", 1, 5, offset, entry, entry, len(code), len(code), 4096)
    return ehdr + phdr + code


@pytest.mark.parametrize(
    ("hypervisor", "problem"),
    [
        ("gunyah", "guest address 0x40000000 cannot be paged in (No such file or directory)"),
        ("geniezone", "exception 1 at guest address 0x40000000"),
    ],
)
def test_a_guest_that_jumps_out_of_its_memory_is_one_line_and_exit_1_on_4_vcpus(
    vmms, hypervisor, problem, tmp_path
):
    crash = tmp_path / "crash.elf"
    crash.write_bytes(elf64(assemble("movz x1, #0x4000, lsl #16\nbr x1"), 0x8000_0000))
    p = run_native(vmms, hypervisor, crash, 4, tmp_path)  # the other 3 are kicked
    assert p.returncode == 1
    assert p.stderr == f"{HYPERVISORS[hypervisor]}: vCPU 0: {problem}\n"
