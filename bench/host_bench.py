"""Figures of the host's resources: its cores and its memory.

- ``parallel_vms_ratio``: four VMs, each one vCPU computing the same fixed
  loop and then exiting on a store, run each on its own VMM thread at once,
  over the same four run one after another: the median of the ratios of
  ``2 * samples + 1`` pairs, each pair one run of both, back to back and in
  alternating order, so that load changing during the bench hits both
  sides of a ratio alike. Independent VMs are separate run groups
  (Documentation/hyp.rst), so on a host with two or more free cores the
  figure is about 0.5; on one core it would be 1. ``gz_parallel_vms_ratio``
  is the same on GenieZone. The figure measures the host as much as the
  model, so ``parallel_vms_cores`` (the host's cores) and
  ``parallel_vms_load`` (its one-minute load average when the pairs were
  done) say what it had to work with.
- ``exit_rss_ratio``: the process's RSS after ``rss_exits[1]`` MMIO exit
  round trips of one guest over its RSS after the first ``rss_exits[0]``,
  in a fresh interpreter: what a long run keeps per exit (the trace ring
  is bounded when nobody asked for a trace). ``FULL`` makes a
  million exits (minutes at today's cost of an exit); ``QUICK`` and
  ``TINY`` fewer, so their figure says less.

The guests are assembled from source, like kernel_bench's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time

import kernel
from bench import GZ, Sizes
from tests import gunyahvm, gzvmvm
from uapi.linux import gzvm as gz

VMS = 4
MMIO = gunyahvm.MMIO


def _loop(iterations: int) -> str:
    """Four instructions an iteration, then a store that exits."""
    return f"""
    ldr x0, ={iterations}
    ldr x9, ={MMIO:#x}
1:  add x1, x1, x0
    eor x2, x2, x1
    subs x0, x0, #1
    b.ne 1b
    str x1, [x9]
    b .
"""


class _GunyahVm:
    def __init__(self, host, source: str):
        self.host, self.t = host, gunyahvm.make_vm(host, source)
        self.page = self.t.run_page()
        self.t.start()

    def run(self) -> None:
        self.t.run()
        assert self.page.mmio.phys_addr == MMIO

    def close(self) -> None:
        del self.page
        self.t.close()


class _GzVm:
    def __init__(self, host, source: str):
        self.host, self.t = host, gzvmvm.make_vm(host, source)

    def run(self) -> None:
        assert self.t.go(self.host) == gz.GZVM_EXIT_MMIO

    def close(self) -> None:
        self.t.close(self.host)


def _seconds(host, guest, source: str, parallel: bool) -> float:
    """Seconds for ``VMS`` fresh VMs to run ``source`` to its exit, at once
    (a thread each) or one after another."""
    vms = [guest(host, source) for _ in range(VMS)]
    try:
        start = time.perf_counter()
        if parallel:
            threads = [threading.Thread(target=vm.run) for vm in vms]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for vm in vms:
                vm.run()
        return time.perf_counter() - start
    finally:
        for vm in vms:
            vm.close()


def _pair_ratio(host, guest, source: str, parallel_first: bool) -> float:
    """At once over one by one, measured back to back."""
    seconds = {}
    for parallel in (parallel_first, not parallel_first):
        seconds[parallel] = _seconds(host, guest, source, parallel)
    return seconds[True] / seconds[False]


def parallel_vms(sizes: Sizes) -> dict:
    source = _loop(sizes.parallel_iterations)
    results = {"parallel_vms_cores": os.cpu_count()}
    for prefix, guest, hypervisor in (("", _GunyahVm, "gunyah"), (GZ, _GzVm, "geniezone")):
        host = kernel.boot(dram_size=1 << 30, hypervisor=hypervisor)
        try:
            pairs = 2 * sizes.samples + 1
            ratios = [_pair_ratio(host, guest, source, n % 2 == 1) for n in range(pairs)]
        finally:
            host.shutdown()
        results[f"{prefix}parallel_vms_ratio"] = round(statistics.median(ratios), 3)
        results[f"{prefix}parallel_vms_load"] = round(os.getloadavg()[0], 2)
    return results


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _exit_rss_ratio(first: int, total: int) -> float:
    """RSS after ``total`` MMIO round trips over RSS after ``first``."""
    host = kernel.boot(dram_size=1 << 30)
    try:
        t = gunyahvm.make_vm(host, f"ldr x9, ={MMIO:#x}\n1: str x1, [x9]\nb 1b")
        page = t.run_page()
        t.start()
        for _ in range(first):
            t.run()
        early = _rss()
        for _ in range(total - first):
            t.run()
        late = _rss()
        assert page.mmio.phys_addr == MMIO
        del page
        t.close()
    finally:
        host.shutdown()
    return late / early


def exit_memory(sizes: Sizes) -> dict:
    """Measured in a fresh interpreter, so that nothing measured before counts."""
    code = (
        f"from bench.host_bench import _exit_rss_ratio; print(_exit_rss_ratio{sizes.rss_exits!r})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=3600
    )
    return {"exit_rss_ratio": round(float(out.stdout.split()[-1]), 4)}


FIGURES = [parallel_vms, exit_memory]
