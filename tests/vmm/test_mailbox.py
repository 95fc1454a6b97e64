"""The holding-cell guest under ``gunyah-sim run``: the VMM's mailbox asks it which
hypervisor it runs on, prints the answer and turns it off."""

import subprocess
import sys

import pytest

from vmm.devices.mailbox import COMMAND, OFF, RESULT, WHO, Mailbox


@pytest.mark.parametrize(("hypervisor", "name"), [("gunyah", "Gunyah"), ("geniezone", "GenieZone")])
def test_gunyah_sim_run_holding_cell_says_where_it_runs_and_stops(hypervisor, name):
    p = subprocess.run(
        [sys.executable, "-m", "vmm.cli", "run", "holding-cell", "--hypervisor", hypervisor],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"holding-cell: running on {name}\n"
    assert "VM exited: platform_off" in p.stderr


def test_the_script_is_who_then_off_for_good():
    out = []
    mailbox = Mailbox(out.append)
    assert mailbox.mmio_read(COMMAND, 8) == WHO
    assert mailbox.mmio_read(0x08, 8) == 0
    mailbox.mmio_write(RESULT, 8, 3)
    assert mailbox.mmio_read(COMMAND, 8) == OFF
    mailbox.mmio_write(RESULT, 8, 2)  # not WHO's answer: nothing printed
    assert [mailbox.mmio_read(COMMAND, 8) for _ in range(3)] == [OFF] * 3
    assert out == [b"holding-cell: running on another hypervisor\n"]
