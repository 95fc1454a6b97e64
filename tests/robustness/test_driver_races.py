"""Races inside the driver: concurrent RM requests, and VCPU_RUN against VM_START.

Each test bounds its waits (joins with a limit), so a hang fails it.
"""

import errno
import sys
import threading

import pytest

from kernel.gunyah import rsc_mgr
from kernel.gunyah import rsc_mgr_rpc as rpc
from tests.gunyahvm import MMIO, make_vm, outcome
from uapi.linux import gunyah as gh

BOUND = 20  # seconds; every wait below ends well before
ROUNDS = 5


@pytest.fixture
def fast_switching():
    """Threads switch after every few bytecodes, so races show in a few rounds."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_concurrent_multi_fragment_requests_each_get_their_reply(host, fast_switching):
    """Four threads each send a request of nine fragments at once: ``send_lock`` keeps
    each request's fragments together, so the RM takes all four whole and every
    caller gets its own reply (here the RM's refusal of an unknown VMID)."""
    rm = host.gunyah.rm
    reassembler = host.gunyah.firmware.rm.host_link.reassembler
    dropped = reassembler.dropped
    payload = bytes([0x42, 0x01]) + bytes(8 * rsc_mgr.MAX_PAYLOAD + 100)
    together, results = threading.Barrier(4), []

    def requests():
        for _ in range(ROUNDS):
            together.wait(BOUND)
            results.append(outcome(rm.gunyah_rm_call, rpc.VM_SET_DEMAND_PAGING, payload))

    threads = [threading.Thread(target=requests) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert not any(t.is_alive() for t in threads), "an RM caller never got its reply"
    assert results == [errno.EINVAL] * 4 * ROUNDS
    assert reassembler.dropped == dropped and rm.aborted == 0


def test_an_rm_reply_that_never_comes_is_etimedout(host, monkeypatch):
    """A request whose reply never comes ends with ETIMEDOUT after ``RM_TIMEOUT``."""
    monkeypatch.setattr(rsc_mgr, "RM_TIMEOUT", 0.5)
    rm = host.gunyah.rm
    monkeypatch.setattr(rm, "_process", lambda packet: None)  # every reply is lost
    assert outcome(rpc.gunyah_rm_get_vmid, rm) == errno.ETIMEDOUT


def test_vcpu_run_during_vm_start_waits_for_it(host, fast_switching):
    """VCPU_RUN from another thread while VM_START runs: ENODEV while the vCPU has no
    resource yet; once START hands it over, VCPU_RUN waits on ``status_lock`` for
    START to finish and then runs the guest (its MMIO exit), never a STATUS exit."""
    for _ in range(ROUNDS):
        t = make_vm(host, f"ldr x9, ={MMIO:#x}\n str x9, [x9]\n b .")
        run = t.run_page()
        ran = []

        def run_until_started(t=t, ran=ran):
            while (errno_seen := outcome(t.run)) == errno.ENODEV:
                pass
            ran.append(errno_seen)

        runner = threading.Thread(target=run_until_started)
        runner.start()
        t.start()
        runner.join(BOUND)
        assert not runner.is_alive() and ran == [0]
        assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_MMIO, run.status.status
        del run
        t.close()


def test_a_page_the_hypervisor_never_maps_is_a_model_bug_not_a_spin(host, monkeypatch):
    """If the driver believes a page provided while the hypervisor keeps faulting on it
    (here ``addrspace_map`` is made to do nothing), VCPU_RUN does not spin: after
    STUCK_LIMIT "already provided" answers in a row it fails with EIO and the
    inconsistency is kept in ``Host.bugs``."""
    hcall = host.gunyah.hcall
    monkeypatch.setattr(hcall, "gunyah_hypercall_addrspace_map", lambda *args: 0)
    t = make_vm(host, "b .")
    t.start()
    done = []
    runner = threading.Thread(target=lambda: done.append(outcome(t.run)))
    runner.start()
    runner.join(BOUND)
    assert not runner.is_alive() and done == [errno.EIO]
    assert [type(bug) for bug in host.bugs] == [RuntimeError]
    host.bugs.clear()
    monkeypatch.undo()
    t.close()
