"""Fault injection walked over a VM's whole life: create, start, run, teardown.

A dry run records every injection point the life reaches (RM calls and
hypercall wrappers, each with how many times it is called). Then, for each
point and each of its first calls, a fresh host fails exactly that call
(ENOMEM for RM calls, Gunyah NOMEM for hypercalls) and the test checks:

- the failure shows where the driver shows it: an ioctl raising ENOMEM, a
  PAGE_FAULT exit carrying -ENOMEM, an MMIO exit at an address the kernel
  could not page in, or a line in the kernel log (the irqfd's doorbell,
  the release path). A failed receive from the RM's queue is retried (the
  queue's interrupt is level-sensitive) and shows nowhere;
- afterwards the host holds what it held before: no vmid, capability,
  memory database entry, memparcel, fd, thread or RAM page is left behind.

The exceptions are the real stack's own, and each is logged: when a
release call is refused (VM_STOP, VM_RESET, VM_DEALLOCATE, MEM_RECLAIM) or
the hypervisor will not unmap or give back a page, the RM or the VM keeps
what the call would have freed, and a start that fails between
VM_CONFIG_IMAGE and VM_INIT leaves the VM in the RM's INIT state, which
takes neither VM_RESET nor VM_DEALLOCATE.
"""

from __future__ import annotations

import errno
import os

import pytest

import kernel
from kernel.fault_inject import FaultPlan
from tests.conformance.test_irqfd_ioeventfd import add_ioeventfd, add_irqfd
from tests.gunyahvm import MMIO, SHARED_IPA, make_vm
from tests.robustness import leaks
from tests.robustness.leaks import holdings
from uapi.linux import gunyah as gh

GUNYAH_ERROR_NOMEM = 10
MAX_CALLS_WALKED = 3  # the first calls of each point; later ones repeat the same paths
GUEST = f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={SHARED_IPA:#x}
    ldr x3, [x2]          // a shared page: demand paged
    str x3, [x9]          // the exit the VMM sees
    b .
"""
# Where a refusal leaves something behind on a device too (see above); it must be logged.
KEPT_ON_REFUSAL = {
    "gunyah_rm_vm_stop",
    "gunyah_rm_vm_reset",
    "gunyah_rm_dealloc_vmid",
    "gunyah_rm_mem_reclaim",
    "gunyah_rm_vm_set_demand_paging",
    "gunyah_rm_vm_set_address_layout",
    "gunyah_rm_vm_init",
    "gunyah_hypercall_addrspace_unmap",
    "gunyah_hypercall_memextent_donate",
}
ABSORBED = {"gunyah_hypercall_msgq_recv"}
SUMMARY = {"injection points walked": 0, "leaks found": 0}  # printed by tests/conftest.py


def failure_value(point: str) -> int:
    return GUNYAH_ERROR_NOMEM if point.startswith("gunyah_hypercall_") else errno.ENOMEM


def life(host) -> list[str]:
    """Create, start, run and tear down one VM; what went wrong, as it showed."""
    seen = []
    t = make_vm(host, GUEST, doorbells=((1, 8),))
    efd = host.eventfd()
    try:
        add_irqfd(host, t.vm, efd, label=1, flags=gh.GUNYAH_IRQFD_FLAGS_LEVEL)
        add_ioeventfd(host, t.vm, efd, MMIO + 0x100)
        run = t.run_page()
        try:
            t.start()
            os.eventfd_write(efd, 1)  # the irqfd rings its doorbell
            host.eventfd_wq.quiesce()  # before the run, so every life reaches the ring
            t.run()
            if run.exit_reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT:
                seen.append(f"page fault {run.page_fault.attempt}")
            elif run.exit_reason != gh.GUNYAH_VCPU_EXIT_MMIO or run.mmio.phys_addr != MMIO:
                seen.append(f"exit {run.exit_reason} at {run.mmio.phys_addr:#x}")
        except OSError as e:
            seen.append(f"errno {e.errno}")
        finally:
            del run
    finally:
        host.close(efd)
        t.close()
    host.eventfd_wq.quiesce()
    return seen


def reached() -> list[tuple[str, int]]:
    plan = FaultPlan()
    host = kernel.boot(dram_size=1 << 30, faults=plan)
    try:
        assert life(host) == []
    finally:
        host.shutdown()
    calls = sorted(plan.calls.items())
    return [(p, n) for p, count in calls for n in range(1, min(count, MAX_CALLS_WALKED) + 1)]


POINTS = reached()


def test_the_walk_reaches_rm_calls_and_hypercalls_of_every_phase():
    names = {p for p, _ in POINTS}
    assert {
        "gunyah_rm_alloc_vmid",
        "gunyah_rm_mem_share",
        "gunyah_rm_vm_start",
        "gunyah_rm_vm_stop",
        "gunyah_rm_vm_reset",
        "gunyah_rm_dealloc_vmid",
        "gunyah_hypercall_vcpu_run",
        "gunyah_hypercall_memextent_donate",
        "gunyah_hypercall_addrspace_map",
        "gunyah_hypercall_bell_send",
        "gunyah_hypercall_msgq_send",
        "gunyah_hypercall_msgq_recv",
    } <= names


def shown_right(seen: list[str]) -> bool:
    """ENOMEM from an ioctl, -ENOMEM in a PAGE_FAULT exit, or the shared page the
    kernel could not give the guest coming back as an MMIO exit (v16's path)."""
    mmio_at_shared = f"exit {gh.GUNYAH_VCPU_EXIT_MMIO} at {SHARED_IPA:#x}"
    return all(s in ("errno 12", "page fault -12", mmio_at_shared) for s in seen)


def logged(point: str, dmesg: list[str]) -> bool:
    """The kernel log names the failed call, or its error (Gunyah NOMEM, ENOMEM)."""
    return any(point in line or "Gunyah error 10" in line or "Errno 12" in line for line in dmesg)


@pytest.mark.parametrize(("point", "nth"), POINTS, ids=[f"{p}#{n}" for p, n in POINTS])
def test_one_failure_shows_and_leaves_nothing(point, nth):
    plan = FaultPlan(point, failure_value, nth)
    host = kernel.boot(dram_size=1 << 30, faults=plan)
    try:
        before = holdings(host)
        seen = life(host)
        left = leaks.leaked(before, holdings(host))
        assert plan.fired
        assert shown_right(seen), seen
        if point in ABSORBED:
            assert (seen, host.dmesg) == ([], [])
        else:
            assert seen or logged(point, host.dmesg), f"the failure of {point} showed nowhere"
        # what stays behind after a refusal is logged by the release path
        if left and not (point in KEPT_ON_REFUSAL and host.dmesg):
            SUMMARY["leaks found"] += 1
            pytest.fail(f"{point}#{nth} left {left} behind")
        assert host.bugs == []
    finally:
        host.shutdown()
    SUMMARY["injection points walked"] += 1
