"""Who runs what on the RM link: an idle RM serves the host's request in the sender's
thread, a busy one in its own; a VM's start runs the RM's reports itself; a waiter
never strands a report the worker missed.

Each test bounds its waits, so a hang fails it.
"""

import contextlib
import errno
import threading

from kernel.gunyah import rsc_mgr_rpc as rpc
from tests.gunyahvm import make_vm, outcome

BOUND = 20  # seconds; every wait below ends well before
UNKNOWN = 0x5600_00FD  # a message id the RM answers UNIMPLEMENTED


def serving_threads(firmware_rm) -> list[int]:
    """The thread that handles each request the RM takes from now on."""
    served, handle = [], firmware_rm.handle

    def recorded(link, message):
        served.append(threading.get_ident())
        handle(link, message)

    firmware_rm.handle = recorded
    return served


def test_an_idle_rm_answers_in_the_senders_thread(host):
    rm, firmware_rm = host.gunyah.rm, host.gunyah.firmware.rm
    served = []
    handle = firmware_rm.handle
    firmware_rm.handle = lambda link, message: (
        served.append(threading.get_ident()),
        handle(link, message),
    )
    assert outcome(rm.gunyah_rm_call, UNKNOWN, b"") == errno.EOPNOTSUPP
    assert served == [threading.get_ident()]


def test_a_busy_rm_answers_from_its_own_thread_once_free(host):
    """While another thread runs the RM, a request waits for the RM's own thread."""
    rm, firmware_rm = host.gunyah.rm, host.gunyah.firmware.rm
    served, results = [], []
    handle = firmware_rm.handle
    firmware_rm.handle = lambda link, message: (
        served.append(threading.get_ident()),
        handle(link, message),
    )
    caller = threading.Thread(target=lambda: results.append(outcome(rpc.gunyah_rm_get_vmid, rm)))
    with firmware_rm._running:  # the RM is busy: the request only wakes its thread
        caller.start()
        caller.join(0.2)
        assert caller.is_alive() and served == []
    caller.join(BOUND)
    assert not caller.is_alive() and results == [0]
    assert served == [firmware_rm._thread.ident]


def test_a_vm_start_runs_the_rms_reports_itself(host):
    """The status reports the RM sends during VM_START went through the notifier
    chain, in the starting thread, by the time START returns."""
    rm, seen = host.gunyah.rm, []
    rm.gunyah_rm_notifier_register(lambda m, p: seen.append((m, threading.get_ident())))
    t = make_vm(host, "b .")
    t.start()
    assert (rpc.NOTIFY_VM_STATUS, threading.get_ident()) in seen
    t.close()


def test_a_report_deferred_while_the_worker_runs_is_not_stranded(host):
    """A report queued inside a deferring block while the worker holds the queue
    is still run: the waiter that cannot run it makes the worker look again."""
    rm, ran = host.gunyah.rm, threading.Event()
    with contextlib.ExitStack() as stack:
        stack.enter_context(rm._notif_running)  # the worker is busy with earlier work
        with rm.notifs_deferred():
            rm._queue_notif(ran.set)
            rm.run_notifs()  # cannot run it: it asks the worker to look again
    assert ran.wait(BOUND)
