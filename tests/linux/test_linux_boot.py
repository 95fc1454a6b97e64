"""Debian's arm64 cloud kernel boots through /dev/gunyah to busybox's /init and powers off.

Marked ``linux`` and deselected by default (pyproject.toml): it needs
``gunyah-sim fetch-linux`` first and minutes of CPU. Run it with
``pytest -m linux tests/linux``; without a fetched kernel it fails, saying so.
"""

import re
import subprocess
import sys

import pytest

from vmm import fetch_linux
from vmm.cli import LINUX_CMDLINE

pytestmark = [pytest.mark.linux, pytest.mark.timeout(900)]

# The gunyah-sim executable's entry point (pyproject.toml), run by this Python.
GUNYAH_SIM = "import sys; from vmm.launch import main; sys.exit(main())"


@pytest.mark.parametrize("vcpus", [1, 2])
def test_linux_boots_to_init_and_powers_off(vcpus):
    fetch_linux.fetched()  # FetchError: run gunyah-sim fetch-linux
    res = subprocess.run(
        [sys.executable, "-c", GUNYAH_SIM, "run", "linux", "--vcpus", str(vcpus)],
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert "Linux version 6." in res.stdout, res.stdout[-3000:] + res.stderr
    assert "gunyah-sim: init: Linux 6." in res.stdout, res.stdout[-3000:]
    assert f", {vcpus} CPUs" in res.stdout, res.stdout[-3000:]
    assert res.returncode == 0, res.stderr


def test_user_programs_take_faults_and_calls_and_see_the_timer_tick():
    """``rdinit=/interrupts``: busybox's ``ls`` and ``cat`` run at EL0 (page
    faults, system calls), and /proc/interrupts, read twice 0.1 s apart,
    shows the timer's count grown."""
    fetch_linux.fetched()
    cmdline = f"{LINUX_CMDLINE} rdinit=/interrupts"
    res = subprocess.run(
        [sys.executable, "-c", GUNYAH_SIM, "run", "linux", "--vcpus", "1", "--cmdline", cmdline],
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert {"cpuinfo", "self", "uptime"} <= set(res.stdout.split())  # ls /proc
    ticks = [int(n) for n in re.findall(r"^\s*\d+:\s+(\d+)\s.*arch_timer", res.stdout, re.M)]
    assert len(ticks) == 2, res.stdout[-3000:]
    assert ticks[1] > ticks[0]
