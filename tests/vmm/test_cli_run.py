"""``gunyah-sim run`` and ``gunyah-sim guests``: the main job and its one-line errors."""

import subprocess
import sys

import pytest

import kernel
from vmm.cli import main
from vmm.guests import GUESTS


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "vmm.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_run_with_no_arguments_says_hello_from_every_vcpu_and_exits_0():
    p = run_cli("run")
    assert p.returncode == 0, p.stderr
    for cpu in range(4):
        assert f"hello from cpu {cpu}, MPIDR 0x8000000{cpu}" in p.stdout
    assert "hello: hyp_identify: API 1, variant 0x48" in p.stdout
    assert "VM exited: platform_off" in p.stderr
    assert "vCPUs 4" in p.stderr


def test_trace_prints_ioctls_rm_calls_and_exits():
    p = run_cli("run", "hello", "--vcpus", "1", "--trace")
    assert p.returncode == 0
    assert "ioctl(" in p.stderr and "GUNYAH_VM_START, 0) = 0" in p.stderr
    assert "rm_call(VM_START{vmid=" in p.stderr
    assert "state=ADDRSPACE_VMMIO_WRITE" in p.stderr


def test_guests_lists_the_bundled_ones(capsys):
    assert main(["guests"]) == 0
    assert capsys.readouterr().out.startswith("hello ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.elf"], "missing.elf: no such file, and not a bundled guest"),
        (["pyproject.toml"], "pyproject.toml: a text file, not an ELF or raw image"),
        (["--vcpus", "65"], "--vcpus 65: between 1 and 64"),
        (["--vcpus", "0"], "--vcpus 0: between 1 and 64"),
        (["--mem", "lots"], "--mem 'lots': not a size"),
        (["--mem", "64K"], "must be a multiple of 4 KiB and at least 128K"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message, capsys):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "\n" not in err and "Traceback" not in err


def test_geniezone_takes_at_most_8_vcpus(capsys):
    assert main(["run", "--hypervisor", "geniezone", "--vcpus", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gunyah-sim run: --vcpus 9: between 1 and 8 on geniezone"


def test_hypervisor_gunyah_is_what_runs_by_default():
    p = run_cli("run", "hello", "--vcpus", "1", "--hypervisor", "gunyah")
    assert p.returncode == 0, p.stderr
    assert "hello: hyp_identify: API 1, variant 0x48" in p.stdout


def test_memory_too_small_for_the_image(tmp_path, capsys):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 1024)  # 256 KiB
    assert main(["run", str(big), "--mem", "256K"]) == 2
    err = capsys.readouterr().err.strip()
    assert "big.bin: 0x80000000+0x40000 does not fit in RAM" in err and "\n" not in err


def test_a_crashing_guest_is_non_zero(tmp_path, capfd):
    raw = tmp_path / "crash.bin"
    raw.write_bytes(bytes.fromhex("00 00 80 d2 00 00 40 f9"))  # mov x0, #0; ldr x0, [x0]
    assert main(["run", str(raw), "--vcpus", "1"]) == 1
    assert "problem:" in capfd.readouterr().err


# movz w0, #8; movk w0, #0x8400, lsl #16 (PSCI SYSTEM_OFF); hvc #0
SYSTEM_OFF = (0x52800100).to_bytes(4, "little") + (0x72B08000).to_bytes(4, "little")
SYSTEM_OFF += (0xD4000002).to_bytes(4, "little")


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
@pytest.mark.parametrize("mem", ["1025M", "2G", "4G", "8064M"])
def test_mem_up_to_the_largest_the_board_allows(hypervisor, mem):
    """RAM grows up from 0x8000_0000; the shared window sits below it, so no size meets it."""
    p = run_cli("run", "--vcpus", "1", "--mem", mem, "--hypervisor", hypervisor)
    assert p.returncode == 0, p.stderr
    assert "hello from cpu 0" in p.stdout


def test_mem_at_the_smallest_runs_a_small_image(tmp_path):
    raw = tmp_path / "off.bin"
    raw.write_bytes(SYSTEM_OFF)
    p = run_cli("run", str(raw), "--vcpus", "1", "--mem", "128K")
    assert p.returncode == 0, p.stderr
    assert "VM exited: platform_off" in p.stderr


@pytest.mark.parametrize(
    ("mem", "message"),
    [
        ("8258564K", "--mem 8258564K: at most 8064M on this board"),  # 8064M + 4K
        ("16G", "--mem 16G: at most 8064M on this board"),
        ("124K", "must be a multiple of 4 KiB and at least 128K"),
    ],
)
def test_mem_one_over_the_limits_is_one_line(mem, message, capsys):
    assert main(["run", "--mem", mem]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_virtio_console_runs_with_more_than_1g():
    p = subprocess.run(
        [sys.executable, "-m", "vmm.cli", "run", "virtio-console", "--vcpus", "1", "--mem", "2G"],
        input="ping\n\x04",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "ping" in p.stdout


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
def test_hello_prints_the_cmdline_from_chosen(hypervisor):
    p = run_cli(
        "run", "--vcpus", "1", "--hypervisor", hypervisor, "--cmdline", "console=ttyAMA0 rw"
    )
    assert p.returncode == 0, p.stderr
    assert "hello: bootargs: console=ttyAMA0 rw\n" in p.stdout


def test_hello_prints_no_bootargs_line_without_a_cmdline():
    p = run_cli("run", "--vcpus", "1")
    assert p.returncode == 0, p.stderr
    assert "bootargs" not in p.stdout


def test_version_is_the_distributions(capsys):
    import importlib.metadata

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"gunyah-sim {importlib.metadata.version('gunyah-sim')}\n"


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
@pytest.mark.parametrize("guest", list(GUESTS))
def test_every_listed_guest_shows_something_under_run(guest, hypervisor):
    """What ``gunyah-sim guests`` lists, ``gunyah-sim run`` shows (a Ctrl-D ends the console)."""
    p = subprocess.run(
        [sys.executable, "-m", "vmm.cli", "run", guest, "--vcpus", "1", "--hypervisor", hypervisor],
        input="\x04",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{guest}: ")


def test_kernel_warnings_are_printed_once_each(monkeypatch, capfd):
    """What the kernel warns of (an irqfd whose label no doorbell has) reaches the user."""
    booted = []
    real_boot = kernel.boot

    def boot(**kwargs):
        booted.append(kwargs["warn"])
        return real_boot(**kwargs)

    monkeypatch.setattr(kernel, "boot", boot)
    assert main(["run", "hello", "--vcpus", "1"]) == 0
    for _ in range(2):
        booted[0]("irqfd 9: Premature injection of interrupt")
    err = capfd.readouterr().err
    assert err.count("gunyah-sim: warning: irqfd 9: Premature injection of interrupt\n") == 1


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
@pytest.mark.parametrize("vcpus", ["1", "4"])
def test_a_reader_that_goes_away_ends_the_run_quietly(hypervisor, vcpus):
    """``gunyah-sim run | head -1``: once the console's reader is gone the VM stops as
    for a signal and the program exits 141 (SIGPIPE's status) with nothing on stderr:
    no traceback, no hang, no report blaming the guest."""
    cli = [sys.executable, "-m", "vmm.cli", "run", "--vcpus", vcpus, "--hypervisor", hypervisor]
    p = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()  # the reader goes away, as head does
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141, err
    assert err == b""


def test_guests_into_a_closed_pipe_is_quiet():
    p = subprocess.Popen(
        [sys.executable, "-m", "vmm.cli", "guests"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    p.stdout.close()  # before the program has written anything
    assert p.wait(timeout=60) == 141  # not 120: the flush at exit would fail so
    assert p.stderr.read() == b""


def test_an_endless_image_is_refused_without_reading_it_all():
    p = run_cli("run", "/dev/zero", "--mem", "1M")
    assert p.returncode == 2
    assert (
        p.stderr == "gunyah-sim run: /dev/zero: larger than 65536K, more than the image may hold\n"
    )
