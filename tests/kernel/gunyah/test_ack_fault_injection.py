"""Every RM call of an Android VM's life, failed once, on both profiles.

A dry run records the RM calls a life reaches (create, lend or bind user
memory, start, run to the guest's exit, teardown). Then a fresh host fails
each one on its first call (ENOMEM) and the test checks that the failure
shows (START's ENOMEM, or the release path's log line) and that afterwards
the host holds what it held before: no VMID, parcel, capability, pinned
page, fd or RAM page left. The exceptions are the ones the drivers share
with v16 (tests/robustness/test_fault_injection.py): a refused release call
keeps what it would have freed, and a start that fails between
VM_CONFIG_IMAGE and VM_INIT leaves the VM in the RM's INIT state, where the
parcel it took stays pinned for good; each is logged.
"""

import errno

import pytest

import kernel
from kernel.fault_inject import FaultPlan
from tests.kernel.gunyah.ackvm import PROFILES, SYSTEM_OFF, make_vm
from tests.robustness import leaks
from tests.robustness.leaks import holdings
from tests.robustness.test_fault_injection import KEPT_ON_REFUSAL


def life(host) -> list[int]:
    """One VM from creation to teardown; the errnos its ioctls raised."""
    seen = []
    vm = make_vm(host, SYSTEM_OFF)
    try:
        vm.start()
        vm.run()
    except OSError as e:
        seen.append(e.errno)
    finally:
        vm.close()
    return seen


def reached(uapi: str) -> list[str]:
    plan = FaultPlan()
    host = kernel.boot(dram_size=1 << 30, faults=plan, uapi=uapi)
    try:
        assert life(host) == []
    finally:
        host.shutdown()
    return sorted(p for p in plan.calls if p.startswith("gunyah_rm_"))


POINTS = [(uapi, point) for uapi in PROFILES for point in reached(uapi)]


def test_the_walk_reaches_every_phase():
    for uapi in PROFILES:
        names = {p for u, p in POINTS if u == uapi}
        assert {
            "gunyah_rm_alloc_vmid",
            "gunyah_rm_mem_share",
            "gunyah_rm_vm_configure",
            "gunyah_rm_vm_init",
            "gunyah_rm_vm_start",
            "gunyah_rm_vm_reset",
            "gunyah_rm_dealloc_vmid",
        } <= names, uapi
    assert ("ack-6.1", "gunyah_rm_mem_reclaim") in POINTS  # 6.6 reclaims by hypercall


@pytest.mark.parametrize(("uapi", "point"), POINTS, ids=[f"{u}-{p}" for u, p in POINTS])
def test_one_failed_rm_call_shows_and_leaves_nothing(uapi, point):
    plan = FaultPlan(point, errno.ENOMEM)
    host = kernel.boot(dram_size=1 << 30, faults=plan, uapi=uapi)
    try:
        before = holdings(host)
        seen = life(host)
        left = leaks.leaked(before, holdings(host))
        assert plan.fired
        assert seen in ([], [errno.ENOMEM]), seen
        assert seen or any("Errno 12" in line for line in host.dmesg), host.dmesg
        if left:
            assert point in KEPT_ON_REFUSAL and host.dmesg, f"{point} left {left} behind"
        else:
            assert host.mm.pinned == {}
        assert host.bugs == []
    finally:
        host.shutdown()
