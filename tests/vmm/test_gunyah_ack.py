"""The sample VMM on an Android /dev/gunyah: ``gunyah-sim run --uapi ack-6.1|ack-6.6``.

Every bundled guest boots to its PSCI SYSTEM_OFF with guest RAM lent from the
VMM's own anonymous mapping and the shared window shared from another. On
ack-6.1 there is no boot context: the guest enters at its RAM's first byte
with X0 the DTB and X1 0, so ``hello`` greets from its first vCPU alone (it
takes the vCPU count from X1). A uapi that is not a profile, or an Android
one with GenieZone, is one line and exit 2.
"""

import subprocess
import sys

import pytest

from vmm.cli import main
from vmm.guests import GUESTS


@pytest.mark.parametrize("uapi", ["ack-6.1", "ack-6.6"])
@pytest.mark.parametrize("guest", list(GUESTS))
def test_every_bundled_guest_boots_on_both_android_profiles(guest, uapi):
    p = subprocess.run(
        [sys.executable, "-m", "vmm.cli", "run", guest, "--vcpus", "2", "--uapi", uapi],
        input="\x04",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{guest}: ")
    assert "VM exited: platform_off" in p.stderr
    if guest == "hello":
        cpus = [line for line in p.stdout.splitlines() if line.startswith("hello from cpu")]
        assert len(cpus) == (1 if uapi == "ack-6.1" else 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uapi", "ack-7"], "--uapi ack-7: one of v16, ack-6.1, ack-6.6"),
        (
            ["--uapi", "ack-6.6", "--hypervisor", "geniezone"],
            "--uapi ack-6.6 is a /dev/gunyah driver: only with --hypervisor gunyah",
        ),
    ],
)
def test_bad_uapi_is_one_line_and_exit_2(args, message, capsys):
    assert main(["run", *args]) == 2
    assert capsys.readouterr().err == f"gunyah-sim run: {message}\n"
