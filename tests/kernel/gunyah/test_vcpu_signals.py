"""A signal to a vCPU thread ends VCPU_RUN with EINTR wherever the thread is.

This is how a VMM kicks a vCPU from another thread: it sets immediate_exit
and signals the thread (``Host.pthread_kill``, as ``signal.pthread_kill``).
"""

import errno
import signal
import threading

import pytest

from tests.gunyahvm import MMIO, make_vm
from uapi.linux import gunyah as gh

SPIN = "b ."
SLEEP = """
1:  wfi
    b 1b
"""


def run_in_thread(t):
    """VCPU_RUN in a new thread; returns (thread, outcome) with outcome filled on return."""
    outcome = {}
    started = threading.Event()

    def body():
        outcome["tid"] = threading.get_ident()
        started.set()
        try:
            outcome["ret"] = t.run()
        except OSError as e:
            outcome["errno"] = e.errno

    thread = threading.Thread(target=body)
    thread.start()
    started.wait()
    return thread, outcome


def wait_until_inside(host, t, state):
    """Until the vCPU thread is in the hypervisor (spin) or asleep in the kernel (wfi)."""
    gunyah = host.gunyah.firmware.gunyah
    vcpu = host.fdtable.get(t.vcpus[0])
    try:
        for _ in range(2000):
            hv = next(iter(gunyah.scheduler.order), None)
            if state == "running" and hv is not None and hv.proxy_thread is not None:
                return
            if state == "sleeping" and hv is not None and hv.sleeping and hv.proxy_thread is None:
                return
            threading.Event().wait(0.005)
        raise AssertionError(f"vCPU never got {state}")
    finally:
        vcpu.put()


@pytest.mark.parametrize(("source", "state"), [(SPIN, "running"), (SLEEP, "sleeping")])
def test_signal_ends_vcpu_run_with_eintr(host, source, state):
    t = make_vm(host, source)
    run = t.run_page()
    t.start()
    thread, outcome = run_in_thread(t)
    wait_until_inside(host, t, state)
    run.immediate_exit = 1
    host.pthread_kill(outcome["tid"], signal.SIGUSR1)
    thread.join(10)
    assert not thread.is_alive()
    assert outcome.get("errno") == errno.EINTR
    # immediate_exit still set: the next VCPU_RUN returns EINTR without running
    with pytest.raises(OSError) as e:
        t.run()
    assert e.value.errno == errno.EINTR
    run.immediate_exit = 0
    del run
    t.close()


def test_a_signal_is_delivered_once(host):
    """The signal is consumed by the EINTR; the thread then runs the guest again."""
    t = make_vm(host, f"ldr x9, ={MMIO:#x}\nstr x0, [x9]\nb .")
    run = t.run_page()
    t.start()
    host.pthread_kill(threading.get_ident(), signal.SIGUSR1)
    with pytest.raises(OSError) as e:
        t.run()
    assert e.value.errno == errno.EINTR
    assert t.run() == 0  # no signal left: the guest runs to its MMIO write
    assert (run.exit_reason, run.mmio.phys_addr) == (gh.GUNYAH_VCPU_EXIT_MMIO, MMIO)
    del run
    t.close()


def test_signal_while_another_thread_runs_the_vcpu(host):
    """The second VCPU_RUN waits for run_lock; a signal ends that wait with EINTR."""
    t = make_vm(host, SPIN)
    run = t.run_page()
    t.start()
    first, _ = run_in_thread(t)
    wait_until_inside(host, t, "running")
    second, outcome = run_in_thread(t)
    host.pthread_kill(outcome["tid"], signal.SIGUSR1)
    second.join(10)
    assert outcome.get("errno") == errno.EINTR
    assert first.is_alive()  # the first runner is untouched
    run.immediate_exit = 1
    runner = next(iter(host.gunyah.firmware.gunyah.scheduler.order)).proxy_thread
    host.pthread_kill(runner, signal.SIGUSR1)
    first.join(10)
    assert not first.is_alive()
    del run
    t.close()


def test_signal_zero_only_asks_whether_the_thread_exists(host):
    """pthread_kill(thread, 0) delivers nothing: the thread's VCPU_RUN goes on. A thread
    that has ended is ESRCH, a signal number that does not exist EINVAL."""
    t = make_vm(host, SPIN)
    run = t.run_page()
    t.start()
    thread, outcome = run_in_thread(t)
    wait_until_inside(host, t, "running")
    host.pthread_kill(outcome["tid"], 0)
    thread.join(0.5)
    assert thread.is_alive() and outcome.keys() == {"tid"}
    assert err(host.pthread_kill, outcome["tid"], signal.NSIG) == errno.EINVAL
    run.immediate_exit = 1
    host.pthread_kill(outcome["tid"], signal.SIGUSR1)
    thread.join(10)
    assert outcome.get("errno") == errno.EINTR
    assert err(host.pthread_kill, outcome["tid"], 0) == errno.ESRCH
    assert err(host.pthread_kill, outcome["tid"], signal.SIGUSR1) == errno.ESRCH
    del run
    t.close()


def err(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno
