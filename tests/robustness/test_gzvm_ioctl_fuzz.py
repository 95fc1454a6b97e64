"""Fuzzing on GenieZone: the /dev/gzvm ioctl state machine (vmm/fuzz/gzvm.py) in CI.

The machine and its properties are the ones ``gunyah-sim fuzz --target
gzvm`` runs as a campaign (vmm/fuzz/check.py): after every step only
OSError escapes, with an errno the spec gives that ioctl (EL2's forwarded
errnos included where the driver forwards them), and ``Host.bugs`` is
empty; after every example, with everything closed and unmapped, the host
and EL2 hold what they held before. GZVM_RUN is bounded by a signal.

CI runs ``EXAMPLES`` examples (GUNYAH_SIM_FUZZ_EXAMPLES sets another
number); a long campaign is ``gunyah-sim fuzz --target gzvm``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from vmm.fuzz.gzvm import GzvmMachine, new_struct

# a fuzz example runs fewer, slower steps than Gunyah's (runs of real guests); see Documentation
EXAMPLES = int(os.environ.get("GUNYAH_SIM_FUZZ_EXAMPLES", "200"))
SUMMARY = {"fuzz examples run": 0}


class CountedMachine(GzvmMachine):
    def teardown(self):
        super().teardown()
        SUMMARY["fuzz examples run"] += 1


TestGzvmIoctls = CountedMachine.TestCase
TestGzvmIoctls.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module", autouse=True)
def _shutdown():
    yield
    GzvmMachine.shutdown()


def test_the_machine_may_close_its_own_device_fd_and_goes_on():
    """/dev/gzvm closed (its number may come back as any file, here a VM made
    through another /dev/gzvm): the next CREATE_VM opens the device again."""
    m = GzvmMachine()
    m.a_vm_built_right()
    old = m.dev
    m.close(old)
    _, vm0 = m.vms[0]
    assert m.do_ioctl(vm0.dev, "GZVM_CREATE_VM", 0) is not None
    m.create_vm()
    assert m.dev not in (None, old) and m.check.state(m.dev) == "/dev/gzvm"
    assert m.check.state(max(m.open)) == "gzvm-vm"
    arg, text = new_struct("uint64_t *", 0x9204)
    m.do_ioctl(m.dev, "GZVM_CHECK_EXTENSION", arg, text)
    m.properties_of_the_step()
    m.teardown()
