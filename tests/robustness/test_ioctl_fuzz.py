"""Fuzzing: the /dev/gunyah ioctl state machine (vmm/fuzz/gunyah.py) in CI.

The machine and its properties are the ones ``gunyah-sim fuzz`` runs as a
campaign (vmm/fuzz/check.py): after every step only OSError escapes, with
an errno the spec allows for that ioctl, no VM's state goes backwards and
the kernel model hit no bug; after every example, with everything closed,
the host holds what it held before.

CI runs ``EXAMPLES`` examples (GUNYAH_SIM_FUZZ_EXAMPLES sets another
number); a long campaign is ``gunyah-sim fuzz`` (Documentation/robustness.rst).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, settings

from vmm.fuzz import reproducer
from vmm.fuzz.gunyah import GunyahMachine, new_struct

EXAMPLES = int(os.environ.get("GUNYAH_SIM_FUZZ_EXAMPLES", "2000"))
SUMMARY = {"fuzz examples run": 0}


class CountedMachine(GunyahMachine):
    def teardown(self):
        super().teardown()
        SUMMARY["fuzz examples run"] += 1


TestIoctls = CountedMachine.TestCase
TestIoctls.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module", autouse=True)
def _shutdown():
    yield
    GunyahMachine.shutdown()


def test_the_machine_may_close_its_own_device_fd_and_goes_on(tmp_path):
    """The device fd closed, a guest_memfd made through another /dev/gunyah gets
    its number: the next CREATE_VM opens the device again instead of hitting
    the guest_memfd (which answers ENOTTY), and the example ends clean."""
    m = GunyahMachine()
    m.build_vm()
    old = m.dev
    m.close(old)
    _, vm0 = m.vms[0]
    args, text = new_struct("struct gunyah_create_mem_args *", {"size": 0x1000, "flags": 0})
    gmem = m.do_ioctl(vm0.dev, "GUNYAH_CREATE_GUEST_MEM", args, text)
    assert gmem == old and m.check.state(old) == "[gh-gmem]"
    m.create_vm()
    vm = max(m.open)
    assert m.check.state(vm) == "gunyah-vm:NO_STATE"
    assert m.dev not in (None, old) and m.check.state(m.dev) == "/dev/gunyah"
    m.properties_of_the_step()
    m.teardown()
    script = tmp_path / "clean.py"
    script.write_text(reproducer.script("gunyah", m.script, "none", 0, script.name))
    res = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "ran clean" in res.stderr
