"""Stories: interrupts into a guest through irqfd, guest writes out through ioeventfd.

A guest programs its GIC (distributor, redistributor, ICC_* registers),
unmasks interrupts and sleeps in WFI; another thread writes an irqfd's
eventfd and the guest takes the doorbell's SPI. A guest writing to an
ioeventfd address signals the eventfd without any exit to the VMM.
"""

import errno
import os
import threading

import pytest

from kernel.trace import Tracer
from tests.aarch64 import IRQ_COUNTER, gic_enable
from tests.gunyahvm import MMIO, fn_desc, make_vm, outcome
from uapi.linux import gunyah as gh

LABEL, SPI = 3, 8
INTID = 32 + SPI
BIT = 1 << (INTID % 32)
ISPENDR, ICPENDR = 0x200 + INTID // 32 * 4, 0x280 + INTID // 32 * 4


def gic_setup(edge: bool) -> str:
    return f"""
    adr x8, vectors
    msr vbar_el1, x8
    ldr x9, ={MMIO:#x}
""" + gic_enable(INTID, edge)


COUNTER = gic_setup(edge=True) + IRQ_COUNTER


def level_probe(edge: bool) -> str:
    """With IRQs masked: wait for the SPI, clear its pending bit, then acknowledge it."""
    return (
        gic_setup(edge)
        + f"""
    msr daifset, #2
    str xzr, [x9, #8]               // ready: the GIC is set up
1:  wfi
    ldr w1, [x0, #{ISPENDR}]
    tst w1, #{BIT}
    b.eq 1b
    mov w2, #{BIT}
    str w2, [x0, #{ICPENDR}]        // GICD_ICPENDR: clear it
    ldr w1, [x0, #{ISPENDR}]
    and w1, w1, #{BIT}
    str x1, [x9]                    // still pending?
    mrs x21, S3_0_C12_C12_0         // ICC_IAR1_EL1
    str x21, [x9, #8]
    msr S3_0_C12_C12_1, x21         // ICC_EOIR1_EL1 (and deactivate)
    ldr w1, [x0, #{ISPENDR}]
    and w1, w1, #{BIT}
    str x1, [x9, #16]               // pending after the ack?
    b .
    .ltorg
    .balign 0x800
vectors:
    b .
"""
    )


def add_irqfd(host, vm, efd, label=LABEL, flags=0):
    arg = gh.ffi.new("struct gunyah_fn_irqfd_arg *", {"fd": efd, "label": label, "flags": flags})
    desc, _keep = fn_desc(gh.GUNYAH_FN_IRQFD, arg)
    return host.ioctl(vm, gh.GUNYAH_VM_ADD_FUNCTION, desc)


def add_ioeventfd(host, vm, efd, addr, length=0, datamatch=None):
    flags = gh.GUNYAH_IOEVENTFD_FLAGS_DATAMATCH if datamatch is not None else 0
    fields = {"fd": efd, "addr": addr, "len": length, "flags": flags, "datamatch": datamatch or 0}
    desc, _keep = fn_desc(
        gh.GUNYAH_FN_IOEVENTFD, gh.ffi.new("struct gunyah_fn_ioeventfd_arg *", fields)
    )
    return host.ioctl(vm, gh.GUNYAH_VM_ADD_FUNCTION, desc)


def mmio_value(run) -> int:
    assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_MMIO and run.mmio.is_write
    return int.from_bytes(bytes(run.mmio.data), "little")


def test_n_irqfd_writes_from_another_thread_wake_the_guest_n_times(host):
    n = 20
    t = make_vm(host, COUNTER, doorbells=((LABEL, SPI),))
    efd = host.eventfd()
    assert add_irqfd(host, t.vm, efd) == 0
    run = t.run_page()
    t.start()
    assert t.run() == 0 and run.mmio.phys_addr == MMIO + 8  # ready
    sleeping = host.gunyah.firmware.gunyah.scheduler
    for i in range(1, n + 1):
        writer = threading.Timer(0.01, os.eventfd_write, (efd, 1))
        writer.start()  # while this thread sleeps in VCPU_RUN (the guest is in WFI)
        assert t.run() == 0
        writer.join()
        assert (run.mmio.phys_addr, mmio_value(run)) == (MMIO, i)
    assert next(iter(sleeping.order)).proxy_thread is None
    # no write, no interrupt: the guest sleeps until a signal ends VCPU_RUN
    events = host.gunyah.firmware.gunyah.events
    ended = []
    runner = threading.Thread(target=lambda: ended.append(outcome(t.run)))
    runner.start()
    runner.join(0.1)
    returns = sum(1 for event, _ in events if event == "vcpu_run")
    runner.join(0.3)
    assert runner.is_alive()
    assert sum(1 for event, _ in events if event == "vcpu_run") == returns  # no spinning
    run.immediate_exit = 1
    host.pthread_kill(runner.ident, 10)
    runner.join(10)
    assert ended == [errno.EINTR]
    assert os.eventfd_read(efd) == n  # the driver never consumed the counter
    del run
    host.close(efd)
    t.close()


@pytest.mark.parametrize(
    ("flags", "after_clear", "acked"),
    [
        (gh.GUNYAH_IRQFD_FLAGS_LEVEL, BIT, INTID),  # the line holds it pending until acked
        (0, 0, 1023),  # an edge is gone once its pending bit is cleared
    ],
)
def test_a_level_irqfd_stays_asserted_until_the_guest_acks(host, flags, after_clear, acked):
    edge = not flags
    t = make_vm(host, level_probe(edge), doorbells=((LABEL, SPI),))
    efd = host.eventfd()
    add_irqfd(host, t.vm, efd, flags=flags)
    run = t.run_page()
    t.start()
    assert t.run() == 0 and run.mmio.phys_addr == MMIO + 8  # ready
    writer = threading.Timer(0.01, os.eventfd_write, (efd, 1))
    writer.start()
    assert t.run() == 0
    writer.join()
    assert mmio_value(run) == after_clear
    assert t.run() == 0 and mmio_value(run) == acked
    assert t.run() == 0 and mmio_value(run) == 0  # acked: the doorbell's flag was cleared
    del run
    host.close(efd)
    t.close()


def test_an_irqfd_written_before_start_is_dropped_and_logged(host):
    t = make_vm(host, COUNTER, doorbells=((LABEL, SPI),))
    efd = host.eventfd()
    add_irqfd(host, t.vm, efd)
    os.eventfd_write(efd, 1)
    for _ in range(200):  # the kernel's eventfd wait queue runs in its own thread
        if any("Premature injection" in line for line in host.dmesg):
            break
        threading.Event().wait(0.005)
    assert any("Premature injection" in line for line in host.dmesg)
    host.close(efd)
    t.close()


def test_an_eventfd_already_readable_at_bind_rings_nothing(host):
    """The readiness an eventfd has when the irqfd is added is logged as premature,
    not delivered: the guest sleeps on until the next write."""
    t = make_vm(host, COUNTER, doorbells=((LABEL, SPI),))
    run = t.run_page()
    t.start()
    assert t.run() == 0 and run.mmio.phys_addr == MMIO + 8  # ready
    efd = host.eventfd()
    os.eventfd_write(efd, 1)
    assert add_irqfd(host, t.vm, efd) == 0
    host.eventfd_wq.quiesce()
    assert any("Premature injection" in line for line in host.dmesg)
    ended = []
    runner = threading.Thread(target=lambda: ended.append(outcome(t.run)))
    runner.start()
    runner.join(0.3)
    assert runner.is_alive(), f"the guest was woken: {mmio_value(run)}"
    run.immediate_exit = 1
    host.pthread_kill(runner.ident, 10)
    runner.join(10)
    assert ended == [errno.EINTR]
    run.immediate_exit = 0
    writer = threading.Timer(0.01, os.eventfd_write, (efd, 1))
    writer.start()
    assert t.run() == 0
    writer.join()
    assert (run.mmio.phys_addr, mmio_value(run)) == (MMIO, 1)
    del run
    host.close(efd)
    t.close()


IOEVENT = MMIO + 0x100
WRITER = f"""
    ldr x9, ={MMIO:#x}
    ldr x10, ={IOEVENT:#x}
    ldr x11, =10000
1:  str w11, [x10]                  // handled in the kernel: no exit
    subs x11, x11, #1
    b.ne 1b
    str x11, [x9]                   // the one exit: done
    b .
"""


def test_ten_thousand_ioeventfd_writes_and_no_exit(host):
    t = make_vm(host, WRITER)
    efd = host.eventfd()
    assert add_ioeventfd(host, t.vm, efd, IOEVENT) == 0
    run = t.run_page()
    t.start()
    assert t.run() == 0
    assert (run.mmio.phys_addr, mmio_value(run)) == (MMIO, 0)  # the first exit is the last
    assert os.eventfd_read(efd) == 10_000
    del run
    host.close(efd)
    t.close()


MATCHER = f"""
    ldr x9, ={MMIO:#x}
    ldr x10, ={IOEVENT:#x}
    mov w1, #5
    str w1, [x10]                   // 4 bytes, value 5: not the datamatch
    mov w1, #7
    str w1, [x10]                   // 4 bytes, value 7: the datamatch
    mov x1, #7
    str x1, [x10]                   // 8 bytes, value 7: wrong length
    str xzr, [x9]
    b .
"""


def test_a_datamatch_ioeventfd_fires_only_on_its_value(host):
    t = make_vm(host, MATCHER)
    efd = host.eventfd(0, os.EFD_NONBLOCK)
    add_ioeventfd(host, t.vm, efd, IOEVENT, 4, datamatch=7)
    run = t.run_page()
    t.start()
    seen = []
    while True:
        assert t.run() == 0
        seen.append((run.mmio.phys_addr, run.mmio.len, mmio_value(run)))
        if run.mmio.phys_addr == MMIO:
            break
    assert seen == [(IOEVENT, 4, 5), (IOEVENT, 8, 7), (MMIO, 8, 0)]
    assert os.eventfd_read(efd) == 1
    del run
    host.close(efd)
    t.close()


def test_an_irqfd_whose_label_no_doorbell_has_warns_and_traces_each_dropped_write(host):
    """After START too: the VM has no doorbell with the label, so each write is
    dropped; the dmesg line is a warning the host's ``warn`` hook and trace see."""
    warnings, trace = [], []
    host.warn, host.trace = warnings.append, Tracer(trace.append)
    t = make_vm(host, COUNTER, doorbells=((LABEL, SPI),))
    efd = host.eventfd()
    add_irqfd(host, t.vm, efd, label=LABEL + 1)
    t.start()
    os.eventfd_write(efd, 1)
    host.eventfd_wq.quiesce()
    line = f"irqfd {LABEL + 1}: Premature injection of interrupt"
    assert warnings == [line] and line in host.dmesg
    assert f"printk: {line}" in trace
    host.close(efd)
    t.close()
