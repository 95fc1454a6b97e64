"""``gunyah-sim abi-check`` as a user runs it: the installed command."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HEADER = str(ROOT / "uapi" / "linux" / "gunyah.h")


def gunyah_sim(*args):
    exe = shutil.which("gunyah-sim", path=str(Path(sys.executable).parent))
    assert exe, "gunyah-sim is not installed next to this Python (pip install .)"
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=ROOT)


def test_v16_header_against_v16_exits_0():
    res = gunyah_sim("abi-check", "uapi/linux/gunyah.h", "--profile", "v16")
    assert res.returncode == 0, res.stderr
    assert "OK: the header agrees with the profile." in res.stdout
    assert "Closest profile: v16" in res.stdout


def test_v16_header_against_ack_exits_1_and_names_the_flag_conflict():
    res = gunyah_sim("abi-check", HEADER, "--profile", "ack")
    assert res.returncode == 1
    assert "GUNYAH_MEM_ALLOW_READ is 0x10 here and 0x1 in ack" in res.stdout
    assert "asks an ack kernel for GUNYAH_MEM_FORCE_LEND when it means" in res.stdout


def test_json_is_one_machine_readable_object():
    res = gunyah_sim("abi-check", HEADER, "--profile", "ack", "--json")
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert (out["profile"], out["closest"], out["ok"]) == ("ack", "v16", False)
    assert out["counts"]["differ"] == 7
    read = next(f for f in out["findings"] if f["name"] == "GUNYAH_MEM_ALLOW_READ")
    assert (read["status"], read["here"], read["profile"]) == ("differ", 0x10, 0x1)


def test_v17_is_accepted_and_checked_as_v16():
    res = gunyah_sim("abi-check", HEADER, "--profile", "v17")
    assert res.returncode == 0, res.stderr
    assert "against profile v16" in res.stdout


def test_a_header_of_no_known_generation_lists_its_names(tmp_path):
    header = tmp_path / "qcom.h"
    header.write_text("#include <linux/ioctl.h>\n#define QC_CREATE_VM _IO(0xB2, 0x1)\n")
    res = gunyah_sim("abi-check", str(header))
    assert res.returncode == 1
    assert "Known to no profile (1):\n  QC_CREATE_VM\n" in res.stdout
    assert "Closest profile: no known generation (" in res.stdout
    assert "Not declared here" not in res.stdout


def test_a_directory_is_named_as_one():
    res = gunyah_sim("abi-check", "uapi/linux")
    assert res.stderr == "gunyah-sim abi-check: uapi/linux: is a directory\n"


@pytest.mark.parametrize(
    "args",
    [
        ["abi-check", "no/such/header.h"],
        ["abi-check", "README.md"],
        ["abi-check", "pyproject.toml", "--json"],
        ["abi-check", "uapi/linux"],
        ["abi-check", HEADER, "--cc", "no-such-compiler"],
        ["abi-check", HEADER, "--cc", ""],
        ["abi-check", HEADER, "--target", "no-such-arch-linux"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args):
    res = gunyah_sim(*args)
    assert res.returncode == 2
    assert res.stdout == ""
    assert len(res.stderr.splitlines()) == 1
    assert res.stderr.startswith("gunyah-sim abi-check: ")


def test_the_issue_one_liners():
    code = (
        "from uapi.linux import gunyah as gh, gzvm;"
        "print(hex(gh.GUNYAH_VM_MAP_MEM), gh.ffi.sizeof('struct gunyah_vcpu_run'));"
        "print(hex(gzvm.GZVM_RUN), gzvm.ffi.sizeof('struct gzvm_vcpu_run'))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout == "0x40204709 40\n0x9280 264\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [(bytes(1 << 20), "not a C header (NUL bytes, or over 4 MiB)"), (None, "not a regular file")],
)
def test_what_is_no_header_is_refused_at_once(tmp_path, content, message):
    """A file of NUL bytes (or a device) is no C header: one line and exit 2, at once
    (it used to keep the compiler busy for minutes)."""
    path = "/dev/null"
    if content is not None:
        path = tmp_path / "zeros.h"
        path.write_bytes(content)
    p = gunyah_sim("abi-check", str(path))
    assert p.returncode == 2
    assert p.stderr.strip() == f"gunyah-sim abi-check: {path}: {message}"
