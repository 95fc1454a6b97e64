"""Races on GenieZone: GZVM_RUN against a second runner, the VM fd's release,
ioeventfd and irqfd changes, signals, and memslot changes and munmap while the
guest faults.

Every thread is joined with a time limit, so a deadlock fails the test
instead of hanging CI; afterwards no thread met an unexpected error,
nothing is in ``Host.bugs`` (the gzhost fixture) and, with everything
closed, the host and EL2 hold what they held before.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time

import pytest

from kernel.fault_inject import FaultPlan
from tests.gzvmvm import MMIO, RAM_IPA, RAM_SIZE, make_vm, set_region, user_address
from tests.robustness.leaks import gz_holdings, gz_leaked
from uapi.linux import gzvm as gz

JOIN = 20.0  # seconds: far beyond any of these runs
ERR_NOT_SUPPORTED = -24
COUNTER = 0x800  # offset in the code page where guests keep a count
EXITS = f"""
    ldr x9, ={MMIO:#x}
1:  str x1, [x9]
    add x1, x1, #1
    b 1b
    .ltorg
"""
# writes x1 = 0, 1, 2... to the ioeventfd's address, the count of those done in RAM
DOORBELL = f"""
    ldr x9, ={MMIO + 0x100:#x}
    ldr x10, ={RAM_IPA + COUNTER:#x}
1:  str x1, [x9]
    add x1, x1, #1
    str x1, [x10]
    b 1b
    .ltorg
"""
SPIN_COUNTING = f"""
    ldr x10, ={RAM_IPA + COUNTER:#x}
1:  add x1, x1, #1
    str x1, [x10]
    b 1b
    .ltorg
"""


def start(target, *args) -> tuple[threading.Thread, dict]:
    """``target(*args)`` in a thread; its result, errno or exception in the dict."""
    out: dict = {}

    def body():
        out["tid"] = threading.get_ident()
        try:
            out["result"] = target(*args)
        except OSError as e:
            out["errno"] = e.errno
        except BaseException as e:  # reported by the test, never lost in the thread
            out["exception"] = e

    thread = threading.Thread(target=body)
    thread.start()
    while "tid" not in out:
        time.sleep(0.001)
    return thread, out


def joined(thread: threading.Thread) -> None:
    thread.join(JOIN)
    assert not thread.is_alive(), "a thread never came back: deadlock"


def inside_el2(host, out: dict) -> None:
    """Wait until the thread of ``out`` runs its vCPU in EL2."""
    el2 = host.gzvm.firmware.geniezone
    for _ in range(2000):
        if any(v.proxy_thread == out["tid"] for v in el2.scheduler.order):
            return
        time.sleep(0.002)
    raise AssertionError("the vCPU never ran")


def run_until_signalled(host, t) -> int:
    """GZVM_RUN over and over (each MMIO exit counted) until a signal's EINTR."""
    exits = 0
    run = gz.ffi.new("struct gzvm_vcpu_run *")
    while True:
        try:
            host.ioctl(t.vcpus[0], gz.GZVM_RUN, run)
        except InterruptedError:
            return exits
        assert run.exit_reason == gz.GZVM_EXIT_MMIO, hex(run.exit_reason)
        exits += 1


def counter(t) -> int:
    return int.from_bytes(t.ram[COUNTER : COUNTER + 8], "little")


def test_two_threads_run_one_vcpu_in_turn(gzhost):
    """Runs are serialised: every guest write exits exactly once, to one thread."""
    before = gz_holdings(gzhost)
    t = make_vm(gzhost, EXITS)
    seen: list[int] = []

    def runs():
        run = gz.ffi.new("struct gzvm_vcpu_run *")
        for _ in range(40):
            gzhost.ioctl(t.vcpus[0], gz.GZVM_RUN, run)
            assert run.exit_reason == gz.GZVM_EXIT_MMIO
            seen.append(int.from_bytes(bytes(run.mmio.data), "little"))

    threads = [start(runs) for _ in range(2)]
    for thread, out in threads:
        joined(thread)
        assert set(out) == {"tid", "result"}, out
    assert sorted(seen) == list(range(80))
    t.close(gzhost)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


@pytest.mark.parametrize("closing", ["vm", "every fd"])
def test_closing_the_vm_fd_during_gzvm_run(gzhost, closing):
    """The run in progress is brought out of EL2 and ends with ENODEV; the VM is
    gone at once, whatever else is still open."""
    before = gz_holdings(gzhost)
    t = make_vm(gzhost, "b .")
    thread, out = start(gzhost.ioctl, t.vcpus[0], gz.GZVM_RUN, t.run)
    inside_el2(gzhost, out)
    fds = [t.vm] if closing == "vm" else [*t.vcpus, t.dev, t.vm]
    for fd in fds:
        gzhost.close(fd)
    joined(thread)
    assert out.get("errno") == errno.ENODEV, out
    assert gzhost.gzvm.firmware.geniezone.vms == {}
    for fd in {*t.vcpus, t.dev} - set(fds):
        gzhost.close(fd)
    gzhost.munmap(t.ram)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


def test_ioeventfd_added_and_removed_under_a_guests_writes(gzhost):
    """Each guest write is given to the eventfd or to the VMM, never both or
    neither; once REMOVE returns, no write signals the eventfd."""
    before = gz_holdings(gzhost)
    t = make_vm(gzhost, DOORBELL)
    efd = gzhost.eventfd(0, os.EFD_NONBLOCK)
    ioevent = gz.ffi.new("struct gzvm_ioeventfd *", [0, MMIO + 0x100, 8, efd, 0])
    deassign = gz.ffi.new(
        "struct gzvm_ioeventfd *", [0, MMIO + 0x100, 8, efd, gz.GZVM_IOEVENTFD_FLAG_DEASSIGN]
    )
    runner, out = start(run_until_signalled, gzhost, t)

    def toggle():
        for _ in range(150):
            gzhost.ioctl(t.vm, gz.GZVM_IOEVENTFD, ioevent)
            time.sleep(0.0005)
            gzhost.ioctl(t.vm, gz.GZVM_IOEVENTFD, deassign)

    toggler, toggled = start(toggle)
    joined(toggler)
    assert set(toggled) == {"tid", "result"}, toggled
    signalled_before_stop = os.eventfd_read(efd)
    time.sleep(0.05)  # writes after the last REMOVE: all exits now
    gzhost.pthread_kill(out["tid"], signal.SIGUSR1)
    joined(runner)
    assert "result" in out, out
    with pytest.raises(BlockingIOError):
        os.eventfd_read(efd)  # nothing signalled it after the last REMOVE
    writes = counter(t)
    assert writes <= signalled_before_stop + out["result"] <= writes + 1
    assert signalled_before_stop > 0 and out["result"] > 0  # both paths were taken
    gzhost.close(efd)
    t.close(gzhost)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


def test_irqfd_assigned_and_deassigned_under_eventfd_writes(gzhost):
    """Writers keep ringing the eventfd while another thread binds and unbinds
    it; once DEASSIGN returns no injection of it runs (no IRQ_LINE call)."""
    before = gz_holdings(gzhost)
    plan = gzhost.gzvm.hvc.faults = FaultPlan()  # counts the hypercalls
    t = make_vm(gzhost, "b .")
    efd = gzhost.eventfd()
    assign = gz.ffi.new("struct gzvm_irqfd *", {"fd": efd, "gsi": 5})
    deassign = gz.ffi.new(
        "struct gzvm_irqfd *", {"fd": efd, "gsi": 5, "flags": gz.GZVM_IRQFD_FLAG_DEASSIGN}
    )
    stop = threading.Event()

    def ring():
        while not stop.is_set():
            os.eventfd_write(efd, 1)
            time.sleep(0.0002)

    def toggle():
        for _ in range(100):
            gzhost.ioctl(t.vm, gz.GZVM_IRQFD, assign)
            gzhost.ioctl(t.vm, gz.GZVM_IRQFD, deassign)

    runner, ran = start(run_until_signalled, gzhost, t)
    writers = [start(ring) for _ in range(2)]
    toggler, toggled = start(toggle)
    joined(toggler)
    injected = plan.calls["IRQ_LINE"]
    time.sleep(0.05)  # the writers go on ringing an eventfd bound nowhere
    assert plan.calls["IRQ_LINE"] == injected > 0
    stop.set()
    for thread, _ in writers:
        joined(thread)
    gzhost.pthread_kill(ran["tid"], signal.SIGUSR1)
    joined(runner)
    assert set(toggled) == {"tid", "result"} and ran.get("result") == 0, (toggled, ran)
    gzhost.gzvm.hvc.faults = {}
    gzhost.close(efd)
    t.close(gzhost)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


def test_signals_during_gzvm_run(gzhost):
    """Each signal ends the run in progress with EINTR (INFORM_EXIT sent) and the
    guest goes on where it was at the next GZVM_RUN."""
    before = gz_holdings(gzhost)
    plan = gzhost.gzvm.hvc.faults = FaultPlan()
    t = make_vm(gzhost, SPIN_COUNTING)
    counts: list[int] = []

    def runs():
        for _ in range(15):
            with pytest.raises(InterruptedError):
                gzhost.ioctl(t.vcpus[0], gz.GZVM_RUN, t.run)
            counts.append(counter(t))

    runner, out = start(runs)
    deadline = time.monotonic() + JOIN
    for n in range(15):
        while counter(t) <= (counts[-1] if counts else 0):  # the guest runs again
            assert time.monotonic() < deadline, (n, counts, counter(t), out)
            time.sleep(0.001)
        gzhost.pthread_kill(out["tid"], signal.SIGUSR1)
        while len(counts) == n and runner.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.001)
    joined(runner)
    assert set(out) == {"tid", "result"}, out
    assert counts == sorted(set(counts)) and counts[0] > 0  # on, never back
    assert plan.calls["INFORM_EXIT"] == 15
    gzhost.gzvm.hvc.faults = {}
    t.close(gzhost)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


TOUCH_ALL = f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={RAM_IPA + 0x1000:#x}
    ldr x4, ={RAM_IPA + RAM_SIZE:#x}
1:  ldr x3, [x2]                // one page fault a page (4 KiB paging)
    add x2, x2, #0x1000
    cmp x2, x4
    b.ne 1b
    str x2, [x9]                // all of them
    b .
    .ltorg
"""


@pytest.mark.parametrize("change", ["set_user_memory_region", "munmap"])
def test_memslot_changes_while_the_guest_faults(gzhost, change):
    """Re-registering the slot (same range, then another one), or unmapping its
    memory, while the guest faults page after page: the same range is taken,
    the move refused (EFAULT) and the guest finishes all the same; after
    munmap it stops at an unserved page fault exit (or finishes, if it was
    faster). Every mapped page is pinned; destroy gives everything back."""
    before = gz_holdings(gzhost)
    gzhost.gzvm.hvc.faults = FaultPlan("ENABLE_CAP", ERR_NOT_SUPPORTED, nth=2)  # 4 KiB pages
    t = make_vm(gzhost, TOUCH_ALL)
    gzhost.gzvm.hvc.faults = {}
    file = gzhost.fdtable.get(t.vm)
    vm = file.private
    file.put()
    runner, out = start(gzhost.ioctl, t.vcpus[0], gz.GZVM_RUN, t.run)
    while len(vm.pinned_pages) < 2:  # the guest is faulting page after page
        time.sleep(0.001)
    answers = []
    if change == "munmap":
        ram, t.ram = t.ram, None
        gzhost.munmap(ram)
    else:
        uaddr = user_address(t.ram)
        for gpa in (RAM_IPA, RAM_IPA, RAM_IPA + RAM_SIZE):
            try:
                answers.append(set_region(gzhost, t.vm, 0, gpa, RAM_SIZE, uaddr))
            except OSError as e:
                answers.append(e.errno)
    joined(runner)
    assert out.get("result") == 0, out
    assert answers in ([], [0, 0, errno.EFAULT])  # EL2 moves no slot with pages mapped
    exit_reason = t.run.exit_reason
    if exit_reason == gz.GZVM_EXIT_EXCEPTION:  # its memory went away under it
        assert change == "munmap" and "page fault" in gzhost.dmesg[-1], (answers, gzhost.dmesg)
    else:
        assert exit_reason == gz.GZVM_EXIT_MMIO and t.run.mmio.phys_addr == MMIO
    el2 = gzhost.gzvm.firmware.geniezone
    mapped = [pfn << 12 for vm in el2.vms.values() for pfn in vm.mapped.values()]
    assert all(pa in gzhost.mm.pinned for pa in mapped)
    for fd in (t.vm, *t.vcpus, t.dev):
        gzhost.close(fd)
    if t.ram is not None:
        gzhost.munmap(t.ram)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}
