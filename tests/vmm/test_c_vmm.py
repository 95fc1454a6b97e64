"""The native sample VMMs of vmm/c/ (gunyah-vmm, gunyah-ack-vmm, gzvm-vmm), built with the
bundled compiler, on their own (usage and input errors) and through ``gunyah-sim exec``
with the bundled guests, on each /dev/gunyah driver generation they speak.

The build follows vmm/c/Makefile's variables (CPPFLAGS, CFLAGS, COMMON) and
its recipes, run without make: a machine with only Python has none.
"""

import errno
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import kernel
from tests.aarch64 import assemble
from tests.kernel.gunyah.rmhelper import vm_config_dtb
from tests.native import Session, driver
from tests.native import build as build_test_program
from uapi import toolchain
from uapi.linux import gunyah_ack as ack
from vmm.cli import main

SOURCE = Path(__file__).resolve().parents[2] / "vmm" / "c"
GUESTS_DIR = SOURCE.parent / "guests"
PROGRAMS = ("gunyah-vmm", "gunyah-ack-vmm", "gzvm-vmm")


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


@pytest.mark.parametrize(
    ("program", "vcpus"), [("gunyah-vmm", 64), ("gunyah-ack-vmm", 64), ("gzvm-vmm", 8)]
)
def test_the_most_vcpus_is_the_drivers(vmms, program, vcpus):
    p = run(vmms[program], "--vcpus", str(vcpus + 1), "--dtb", "vm.dtb", "guest.elf")
    assert p.returncode == 2
    assert f"--vcpus {vcpus + 1}: between 1 and {vcpus}" in p.stderr


@pytest.mark.parametrize(
    ("program", "device"),
    [("gunyah-vmm", "gunyah"), ("gunyah-ack-vmm", "gunyah"), ("gzvm-vmm", "gzvm")],
)
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


# The Android drivers (uapi/linux/gunyah_ack.h), through gunyah-ack-vmm: its memory is its own mmap.
ANDROID = ("ack-6.1", "ack-6.6")


def run_android(vmms, uapi: str, guest, vcpus: int, tmp_path, stdin: str = ""):
    """``gunyah-sim exec --uapi UAPI`` of gunyah-ack-vmm booting ``guest`` (a bundled name or
    an ELF path) with ``gunyah-sim dtb --uapi UAPI``'s DTB."""
    dtb = tmp_path / "vm.dtb"
    assert main(["dtb", "--uapi", uapi, "--vcpus", str(vcpus), str(guest), "-o", str(dtb)]) == 0
    elf = GUESTS_DIR / f"{guest}.elf" if isinstance(guest, str) else guest
    vmm = [str(vmms["gunyah-ack-vmm"]), "--vcpus", str(vcpus), "--dtb", str(dtb), str(elf)]
    return gunyah_sim("exec", "--uapi", uapi, "--", *vmm, stdin=stdin)


@pytest.mark.parametrize("uapi", ANDROID)
@pytest.mark.parametrize("guest", GUEST_INPUT)
def test_a_bundled_guest_on_an_android_driver_prints_what_run_prints(vmms, uapi, guest, tmp_path):
    stdin = GUEST_INPUT[guest]
    native = run_android(vmms, uapi, guest, 4, tmp_path, stdin)
    assert (native.returncode, native.stderr) == (0, "")
    python = gunyah_sim("run", "--uapi", uapi, "--vcpus", "4", guest, stdin=stdin)
    assert python.returncode == 0, python.stderr
    assert native.stdout == python.stdout
    assert f"{guest}: running on Gunyah\n" in native.stdout


def test_android_dtb_names_the_shared_window_as_an_shm_vdevice(tmp_path):
    """android14-6.1's RM places only the DTB's region itself: the shared window
    (label 1) is an shm vdevice of the VM config DT, which v16's DT has not."""
    v16, android = tmp_path / "v16.dtb", tmp_path / "ack.dtb"
    assert main(["dtb", "hello", "-o", str(v16)]) == 0
    assert main(["dtb", "--uapi", "ack-6.1", "hello", "-o", str(android)]) == 0
    assert b"shm-1" in android.read_bytes() and b"shm-1" not in v16.read_bytes()
    assert main(["dtb", "--uapi", "ack-6.1", "--hypervisor", "geniezone", "hello", "-o", "-"]) == 2


def test_without_boot_context_the_entry_must_start_the_dtb_region_on_6_1(vmms, tmp_path):
    """android14-6.1 has no GH_VM_SET_BOOT_CONTEXT (ENOTTY): the RM starts the guest at
    its DTB region's first byte, so gunyah-ack-vmm refuses another entry, as crosvm
    does, in one line; android15-6.6 sets the PC and the guest runs from there."""
    elf = tmp_path / "off.elf"
    elf.write_bytes(elf64(assemble("movz x1, #0x4000, lsl #16\nbr x1"), 0x8000_1000))
    p = run_android(vmms, "ack-6.1", elf, 1, tmp_path)
    assert p.returncode == 1
    assert p.stderr == (
        "gunyah-ack-vmm: entry 0x80001000: without GH_VM_SET_BOOT_CONTEXT"
        " the guest starts at 0x80000000\n"
    )
    p = run_android(vmms, "ack-6.6", elf, 1, tmp_path)  # runs, then jumps out of its memory
    assert p.returncode == 1
    assert p.stderr == "gunyah-ack-vmm: vCPU 0: unknown exit reason 3\n"  # the page-fault exit


# The guest reads what the program put at RAM + 0x1000, writes 0x5a5a5a5a at RAM + 0x1008
# and hands what it read to an MMIO write.
LENT_GUEST = """
    ldr x9, =0x80001000
    ldr x1, [x9]
    ldr x2, =0x5a5a5a5a
    str x2, [x9, #8]
    ldr x10, =0x10000000
    str x1, [x10]
    b .
"""


def lent_script(out: Path) -> str:
    code, dtb = out / "lent-code.bin", out / "lent.dtb"
    code.write_bytes(assemble(LENT_GUEST))
    dtb.write_bytes(vm_config_dtb(1, ()))
    rwx = ack.GH_MEM_ALLOW_READ | ack.GH_MEM_ALLOW_WRITE | ack.GH_MEM_ALLOW_EXEC
    lend = f"s:4=0,4={rwx},8=0x80000000,8=0x200000,8=@ram"
    pc = f"s:4={ack.GH_VM_BOOT_CONTEXT_REG(ack.REG_SET_PC, 0):#x},4=0,8=0x80000000"
    vcpu = f"s:4={ack.GH_FN_VCPU},4=4,8=^|4=0"
    lines = [
        "open dev",
        f"ioctl dev {ack.GH_CREATE_VM:#x} 0 vm",
        "anon ram 0x200000",
        f"load ram 0 {code}",
        f"load ram 0x10000 {dtb}",
        "poke ram 0x1000 41",
        f"ioctl vm {ack.GH_VM_ANDROID_LEND_USER_MEM:#x} {lend}",
        f"ioctl vm {ack.GH_VM_SET_DTB_CONFIG:#x} s:8=0x80010000,8=0x2000",
        f"ioctl vm {ack.GH_VM_SET_BOOT_CONTEXT:#x} {pc}",
        f"ioctl vm {ack.GH_VM_ADD_FUNCTION:#x} {vcpu} vcpu",
        "mmap vcpu 0x1000 0 run",
        f"ioctl vm {ack.GH_VM_START:#x} 0",
        f"ioctl vcpu {ack.GH_VCPU_RUN:#x} 0",
        "peek run 8",  # exit_reason
        "peek run 24",  # mmio.data: what the guest read
        "peek ram 0x1000",
        "peek ram 0x1008",
        "munmap run",
        "close vcpu",
        "close vm",
        "munmap ram",
        "close dev",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("uapi", ANDROID)
def test_a_lent_page_of_the_programs_own_memory_is_not_the_guests_to_it_after(uapi, tmp_path):
    """A native program lends its plain anonymous memory (adopted whole at the ioctl):
    the guest reads what the program wrote before, and once the VM has it (6.1: at
    START; 6.6: at the guest's first touch) the program reads zeros there, not what
    the guest wrote, as the Python host does through the same calls."""
    script = lent_script(tmp_path)
    program = build_test_program("driver", tmp_path)
    host = kernel.boot(uapi=uapi)
    try:
        session = Session(host, program)
        lines = session.script(script)
        assert session.close() == 0
    finally:
        host.shutdown()
    host = kernel.boot(uapi=uapi)
    try:
        python = driver.run(host, script)
    finally:
        host.shutdown()
    peeks = [int(line.split()[1], 16) for line in lines if line.startswith("peek")]
    assert peeks == [ack.GH_VCPU_EXIT_MMIO, 41, 0, 0]
    assert peeks == [int(line.split()[1], 16) for line in python if line.startswith("peek")]
    boot_context = lines[5]  # after open, CREATE_VM, anon, LEND_USER_MEM, SET_DTB_CONFIG
    assert boot_context == (f"ioctl: -1 {errno.ENOTTY}" if uapi == "ack-6.1" else "ioctl: 0")
