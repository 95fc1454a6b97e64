"""Debian's arm64 cloud kernel boots through /dev/gunyah to busybox's /init and powers off.

Marked ``linux`` and deselected by default (pyproject.toml): it needs
``gunyah-sim fetch-linux`` first and minutes of CPU. Run it with
``pytest -m linux tests/linux``; without a fetched kernel it fails, saying so.
"""

import subprocess
import sys

import pytest

from vmm import fetch_linux

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
