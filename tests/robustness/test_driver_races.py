"""Races inside the driver: concurrent RM requests, VCPU_RUN against VM_START, guest
faults against the host taking pages back, ioeventfd removal against a guest write.

Each test bounds its waits (joins with a limit), so a hang fails it.
"""

import errno
import os
import sys
import threading

import pytest

from kernel.eventfd import EventfdCtx
from kernel.fs import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from kernel.gunyah import rsc_mgr
from kernel.gunyah import rsc_mgr_rpc as rpc
from tests.conformance.test_irqfd_ioeventfd import add_ioeventfd
from tests.gunyahvm import MMIO, RAM_IPA, fn_desc, make_vm, outcome
from tests.holdingcell import READ, RESULT, STATUS, WRITE, HoldingCell
from uapi.linux import gunyah as gh

REMOVE = gh.GUNYAH_VM_REMOVE_FUNCTION
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


WINDOW = 0.3  # seconds a guest's fault gets inside the driver's window


def _guest_in_the_window(monkeypatch, cell, window, command, *args):
    """Make ``window`` (a hypervisor call the driver makes after taking pages back)
    first run ``command`` of the holding cell on another thread, as a vCPU faulting
    at that moment would, and give it WINDOW seconds. Returns (what the command
    wrote, [whether it was done before the call went on], the thread)."""
    firmware = cell.vm.host.gunyah.firmware
    call = getattr(firmware, window)
    results, done_in_window = [], []
    guest = threading.Thread(target=lambda: results.append(cell.command(command, *args)))

    def in_window(*args_):
        guest.start()
        guest.join(WINDOW)
        done_in_window.append(not guest.is_alive())
        return call(*args_)

    monkeypatch.setattr(firmware, window, in_window)
    return results, done_in_window, guest


def test_a_guest_fault_waits_for_a_host_mmap_of_its_page(host, monkeypatch):
    """A host mmap takes the file's lent pages back, then maps them. A guest touching
    one of them in between waits (the file's invalidate_lock) instead of being lent it
    again, so the mapping succeeds; the guest's access then is a PAGE_FAULT exit with
    -EPERM (the host maps it), and the host sees what the guest wrote before."""
    cell = HoldingCell(host)
    page = RAM_IPA + 0x4000
    assert cell.command(WRITE, page, 0x600D) == {STATUS: 0}
    results, done_in_window, guest = _guest_in_the_window(monkeypatch, cell, "map_ram", READ, page)
    view = host.mmap(cell.vm.ram, 0x1000, offset=0x4000)
    guest.join(BOUND)
    assert done_in_window == [False] and results == [{}]
    assert cell.run.page_fault.attempt == -errno.EPERM
    assert int.from_bytes(view[0:8], "little") == 0x600D
    host.munmap(view)
    cell.close()


def test_a_guest_fault_waits_for_a_punch_hole_of_its_page(host, monkeypatch):
    """PUNCH_HOLE takes the page back from the guest, then zeroes it. A guest storing
    to it in between waits, then gets the fresh page: its store survives, and the
    zeroing never lands in a page lent to it (which the hypervisor would refuse)."""
    cell = HoldingCell(host)
    page = RAM_IPA + 0x4000
    assert cell.command(WRITE, page, 0x1111) == {STATUS: 0}
    results, done_in_window, guest = _guest_in_the_window(
        monkeypatch, cell, "discard_ram", WRITE, page, 0x600D
    )
    punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    host.fallocate(cell.vm.ram, punch, 0x4000, 0x1000)
    guest.join(BOUND)
    assert done_in_window == [False] and results == [{STATUS: 0}]
    monkeypatch.undo()
    assert cell.command(READ, page) == {RESULT: 0x600D}
    cell.close()


def test_ioeventfd_remove_waits_for_a_guest_write_in_progress(host, monkeypatch):
    """REMOVE_FUNCTION of an ioeventfd while a guest's write is being given to it waits
    for that write: the write signals the eventfd it matched (never a descriptor the
    removal already closed, whose number may be another file's by then), and the
    guest's next write to the address is an MMIO exit."""
    cell = HoldingCell(host)
    addr, efd = 0x0A00_0000, host.eventfd()
    assert add_ioeventfd(host, cell.vm.vm, efd, addr) == 0
    arg = gh.ffi.new("struct gunyah_fn_ioeventfd_arg *", {"fd": efd, "addr": addr})
    desc, _keep = fn_desc(gh.GUNYAH_FN_IOEVENTFD, arg)
    removed = []
    remover = threading.Thread(
        target=lambda: removed.append(outcome(host.ioctl, cell.vm.vm, REMOVE, desc))
    )
    signal = EventfdCtx.signal

    def signal_while_removing(ctx, n=1):
        remover.start()
        remover.join(WINDOW)
        return signal(ctx, n)

    monkeypatch.setattr(EventfdCtx, "signal", signal_while_removing)
    assert cell.command(WRITE, addr, 1) == {STATUS: 0}
    remover.join(BOUND)
    assert removed == [0] and os.eventfd_read(efd) == 1
    assert cell.command(WRITE, addr, 1)[STATUS] == 3  # nothing there any more
    os.close(efd)
    cell.close()
