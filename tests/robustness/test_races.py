"""Races: VCPU_RUN against close, REMOVE_FUNCTION, a second runner, and punch-hole.

Each test carries its own timeouts (joins with a limit): a deadlock fails
it instead of hanging CI. Afterwards nothing is left behind and no thread
met an exception.
"""

import errno
import signal
import threading

from kernel.fs import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from tests.gunyahvm import MMIO, SHARED_IPA, fn_desc, make_vm, outcome
from tests.robustness.leaks import holdings, leaked
from uapi.linux import gunyah as gh

SPIN = "b ."
EXITS = f"""
    ldr x9, ={MMIO:#x}
1:  str x1, [x9]
    add x1, x1, #1
    b 1b
"""


def runner(t, index=0):
    ended = []
    thread = threading.Thread(target=lambda: ended.append(outcome(t.run, index)))
    thread.start()
    return thread, ended


def wait_inside(host, thread):
    gunyah = host.gunyah.firmware.gunyah
    for _ in range(1000):
        if any(v.proxy_thread == thread.ident for v in gunyah.scheduler.order):
            return
        threading.Event().wait(0.002)
    raise AssertionError("the vCPU never ran")


def test_closing_every_fd_while_vcpu_run_runs(host):
    before = holdings(host)
    t = make_vm(host, SPIN)
    t.start()
    thread, ended = runner(t)
    wait_inside(host, thread)
    for fd in (t.vm, t.ram, t.shared, t.dev, *t.vcpus):  # the ioctl holds its file
        host.close(fd)
    assert thread.is_alive()
    host.pthread_kill(thread.ident, signal.SIGUSR1)
    thread.join(10)
    assert ended == [errno.EINTR]
    assert leaked(before, holdings(host)) == {}


def test_remove_function_while_vcpu_run_runs(host):
    t = make_vm(host, SPIN)
    t.start()
    thread, ended = runner(t)
    wait_inside(host, thread)
    desc, _keep = fn_desc(gh.GUNYAH_FN_VCPU, gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": 0}))
    host.ioctl(t.vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc)
    thread.join(10)
    assert ended == [errno.EINTR]  # unpopulate set immediate_exit and kicked it
    assert outcome(t.run) == errno.ENODEV
    t.close()


def test_two_threads_run_the_same_vcpu(host):
    t = make_vm(host, EXITS)
    run = t.run_page()
    t.start()
    seen = []
    lock = threading.Lock()

    def loop():
        for _ in range(50):
            t.run()
            with lock:
                seen.append(int.from_bytes(bytes(run.mmio.data), "little"))

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)
    assert len(seen) == 100 and len(set(seen)) >= 50  # each exit handled once, in turn
    run = None  # the view goes before its page
    t.close()


def test_punch_hole_while_the_guest_reads(host):
    source = f"""
        ldr x9, ={MMIO:#x}
        ldr x2, ={SHARED_IPA:#x}
        mov x3, #2000
    1:  ldr x4, [x2]
        subs x3, x3, #1
        b.ne 1b
        str x4, [x9]
        b .
    """
    t = make_vm(host, source, shared_word=7)
    run = t.run_page()
    t.start()
    stop = threading.Event()

    def punch():
        while not stop.wait(0.0005):
            host.fallocate(t.shared, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 0x1000)

    puncher = threading.Thread(target=punch)
    puncher.start()
    try:
        assert t.run() == 0
    finally:
        stop.set()
        puncher.join(10)
    assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_MMIO and run.mmio.phys_addr == MMIO
    del run
    t.close()
    assert host.bugs == []
