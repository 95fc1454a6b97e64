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

Each has a ``gz_`` twin measured the same way on GenieZone through
/dev/gzvm (GZVM_RUN, GZVM_IOEVENTFD, GZVM_IRQFD on SPI 8), in the same
run and against the same baselines. The guests are the same code but for
where their GIC frames are (the board's on Gunyah, where CREATE_DEVICE put
them on GenieZone), assembled from source (tests/aarch64.py, the bundled
toolchain), like the test suite's.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import kernel
from bench import GZ, Sizes, baselines
from tests import gunyahvm, gzvmvm
from tests.aarch64 import IRQ_COUNTER, gic_enable
from tests.conformance.test_irqfd_ioeventfd import LABEL, SPI, add_ioeventfd, add_irqfd
from uapi.linux import gzvm as gz

MMIO = gunyahvm.MMIO
STORE = MMIO + 0x100
assert gzvmvm.MMIO == MMIO


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


def _counter(gicd: int | None = None, gicr: int | None = None) -> str:
    """Sets up its GIC, reports ready at MMIO+8, then sleeps in WFI; each SPI's
    vector stores the count so far at MMIO."""
    return (
        f"""
    adr x8, vectors
    msr vbar_el1, x8
    ldr x9, ={MMIO:#x}
{gic_enable(32 + SPI, gicd=gicd, gicr=gicr)}
"""
        + IRQ_COUNTER
    )


class GunyahGuest:
    """A started VM of tests/gunyahvm.py with one vCPU, its run page mapped."""

    hypervisor = "gunyah"

    def __init__(self, host, source: str, irq: bool = False):
        self.host = host
        self.t = gunyahvm.make_vm(host, source, doorbells=((LABEL, SPI),) if irq else ())
        self.page = self.t.run_page()
        self.t.start()

    @staticmethod
    def counter() -> str:
        return _counter()

    def run(self) -> int:
        """VCPU_RUN once; the address of the MMIO exit it ended with."""
        self.t.run()
        return self.page.mmio.phys_addr

    def ioeventfd(self, efd: int, addr: int) -> None:
        add_ioeventfd(self.host, self.t.vm, efd, addr)

    def irqfd(self, efd: int) -> None:
        add_irqfd(self.host, self.t.vm, efd)

    def close(self) -> None:
        del self.page
        self.t.close()


class GzvmGuest:
    """A VM of tests/gzvmvm.py with one vCPU and its GIC."""

    hypervisor = "geniezone"

    def __init__(self, host, source: str, irq: bool = False):
        self.host = host
        self.t = gzvmvm.make_vm(host, source)  # with its GIC: ``irq`` needs nothing more

    @staticmethod
    def counter() -> str:
        return _counter(gzvmvm.GICD, gzvmvm.GICD - gzvmvm.GICR_SIZE)

    def run(self) -> int:
        """GZVM_RUN once; the address of the MMIO exit it ended with."""
        assert self.t.go(self.host) == gz.GZVM_EXIT_MMIO
        return self.t.run.mmio.phys_addr

    def ioeventfd(self, efd: int, addr: int) -> None:
        args = gz.ffi.new("struct gzvm_ioeventfd *", {"addr": addr, "len": 0, "fd": efd})
        self.host.ioctl(self.t.vm, gz.GZVM_IOEVENTFD, args)

    def irqfd(self, efd: int) -> None:
        args = gz.ffi.new("struct gzvm_irqfd *", {"fd": efd, "gsi": SPI})
        self.host.ioctl(self.t.vm, gz.GZVM_IRQFD, args)

    def close(self) -> None:
        self.t.close(self.host)


def _stores_seconds(host, guest, count: int, ioeventfd: bool) -> float:
    vm = guest(host, _store_loop(count))
    efd = host.eventfd()
    if ioeventfd:
        vm.ioeventfd(efd, STORE)
    start = time.perf_counter()
    while vm.run() != MMIO:
        pass
    elapsed = time.perf_counter() - start
    host.close(efd)
    vm.close()
    return elapsed


def _ring(efd: int, sent: list) -> None:
    sent.append(time.perf_counter())
    os.eventfd_write(efd, 1)


def _irqfd_latencies(host, guest, count: int) -> list[float]:
    vm = guest(host, guest.counter(), irq=True)
    efd = host.eventfd()
    vm.irqfd(efd)
    assert vm.run() == MMIO + 8  # the guest has set up its GIC
    latencies = []
    for _ in range(count):
        sent = []
        writer = threading.Timer(0.002, _ring, (efd, sent))
        writer.start()
        vm.run()
        latencies.append(time.perf_counter() - sent[0])
        writer.join()
    host.close(efd)
    vm.close()
    return latencies


def _exit_paths(guest, sizes: Sizes) -> tuple[float, float, float]:
    """Seconds of an MMIO round trip, of an ioeventfd store, of an irqfd delivery."""
    host = kernel.boot(dram_size=1 << 30, hypervisor=guest.hypervisor)
    try:
        n = sizes.stores
        mmio = min(_stores_seconds(host, guest, n, False) for _ in range(sizes.samples)) / n
        ioevent = min(_stores_seconds(host, guest, n, True) for _ in range(sizes.samples)) / n
        irqfd = statistics.median(_irqfd_latencies(host, guest, sizes.irqs))
    finally:
        host.shutdown()
    return mmio, ioevent, irqfd


def exit_paths(sizes: Sizes) -> dict:
    measured = [
        (prefix, _exit_paths(guest, sizes))
        for prefix, guest in (("", GunyahGuest), (GZ, GzvmGuest))
    ]
    count = max(sizes.stores, 1000)  # fewer bare stores take too little time to measure
    bare_exit = min(baselines.stop_and_restart_us(count) for _ in range(sizes.samples))
    bare_hook = min(baselines.memory_hook_us(count * 10) for _ in range(sizes.samples))
    results = {}
    for prefix, (mmio, ioevent, irqfd) in measured:
        results |= {
            f"{prefix}mmio_exit_us": round(mmio * 1e6, 1),
            f"{prefix}mmio_exit_ratio": round(mmio * 1e6 / bare_exit, 1),
            f"{prefix}ioeventfd_write_us": round(ioevent * 1e6, 1),
            f"{prefix}ioeventfd_ratio": round(ioevent * 1e6 / bare_hook, 1),
            f"{prefix}ioeventfd_vs_mmio": round(ioevent / mmio, 3),
            f"{prefix}irqfd_latency_us": round(irqfd * 1e6, 1),
            f"{prefix}irqfd_to_mmio_ratio": round(irqfd / mmio, 2),
        }
    return results


FIGURES = [exit_paths]
