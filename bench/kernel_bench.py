"""Figures of the kernel's exit paths, through the Host's syscalls as a VMM sees them.

- ``mmio_exit_us``: a guest store that exits to the VMM and is resumed
  (VCPU_RUN returns MMIO, the VMM answers HANDLED, VCPU_RUN again).
- ``ioeventfd_write_us``: the same store matched by an ioeventfd: the
  kernel signals the eventfd and resumes the guest, no exit.
- ``mmio_exit_ratio``: the round trip over a bare unicorn core whose
  memory hook stops it at the same store and is started again.
- ``ioeventfd_ratio``: the ioeventfd-handled store over a bare unicorn
  memory hook that sees the store and lets the core run on;
  ``ioeventfd_vs_mmio`` relates the two kinds of store of this stack.
- ``irqfd_latency_us``: an eventfd write from another thread until the
  guest's IRQ vector has run and its report reached the VMM (the guest
  sleeps in WFI in between); ``irqfd_to_mmio_ratio`` relates it to the
  MMIO round trip.

The guests are assembled from source (tests/aarch64.py, the bundled
toolchain), like the test suite's.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import kernel
from bench import baselines
from tests.conformance.test_irqfd_ioeventfd import COUNTER, LABEL, SPI, add_ioeventfd, add_irqfd
from tests.gunyahvm import MMIO, make_vm

STORE = MMIO + 0x100


def _store_loop(count: int) -> str:
    return f"""
    ldr x9, ={MMIO:#x}
    ldr x10, ={STORE:#x}
    ldr x11, ={count}
1:  str w11, [x10]
    subs x11, x11, #1
    b.ne 1b
    str x11, [x9]
    b .
"""


def _stores_seconds(host, count: int, ioeventfd: bool) -> float:
    t = make_vm(host, _store_loop(count))
    efd = host.eventfd()
    if ioeventfd:
        add_ioeventfd(host, t.vm, efd, STORE)
    run = t.run_page()
    t.start()
    start = time.perf_counter()
    while True:
        t.run()
        if run.mmio.phys_addr == MMIO:
            break
    elapsed = time.perf_counter() - start
    del run
    host.close(efd)
    t.close()
    return elapsed


def _ring(efd: int, sent: list) -> None:
    sent.append(time.perf_counter())
    os.eventfd_write(efd, 1)


def _irqfd_latencies(host, count: int) -> list[float]:
    t = make_vm(host, COUNTER, doorbells=((LABEL, SPI),))
    efd = host.eventfd()
    add_irqfd(host, t.vm, efd)
    run = t.run_page()
    t.start()
    t.run()  # the guest has set up its GIC
    latencies = []
    for _ in range(count):
        sent = []
        writer = threading.Timer(0.002, _ring, (efd, sent))
        writer.start()
        t.run()
        latencies.append(time.perf_counter() - sent[0])
        writer.join()
    del run
    host.close(efd)
    t.close()
    return latencies


def exit_paths(quick: bool) -> dict:
    count = 2_000 if quick else 20_000
    host = kernel.boot(dram_size=1 << 30)
    try:
        mmio = min(_stores_seconds(host, count, False) for _ in range(3)) / count
        ioevent = min(_stores_seconds(host, count, True) for _ in range(3)) / count
        irqfd = statistics.median(_irqfd_latencies(host, 50 if quick else 500))
    finally:
        host.shutdown()
    bare_exit = min(baselines.stop_and_restart_us(count) for _ in range(3))
    bare_hook = min(baselines.memory_hook_us(count * 10) for _ in range(3))
    return {
        "mmio_exit_us": round(mmio * 1e6, 1),
        "mmio_exit_ratio": round(mmio * 1e6 / bare_exit, 1),
        "ioeventfd_write_us": round(ioevent * 1e6, 1),
        "ioeventfd_ratio": round(ioevent * 1e6 / bare_hook, 1),
        "ioeventfd_vs_mmio": round(ioevent / mmio, 3),
        "irqfd_latency_us": round(irqfd * 1e6, 1),
        "irqfd_to_mmio_ratio": round(irqfd / mmio, 2),
    }


FIGURES = [exit_paths]
