"""Figures of whole VMs: lifecycle, RM round trips, scale, memory, the CLI.

- ``vm_lifecycle_ms``: CREATE_VM -> START -> the first guest instruction ->
  PSCI SYSTEM_OFF -> every fd closed, through the Host; its ratio to
  creating a bare ``unicorn.Uc``.
- ``gz_vm_lifecycle_ms`` and its ratio: the same on GenieZone through
  /dev/gzvm: CREATE_VM, a memslot over an anonymous mapping, CREATE_VCPU
  and its PC, CREATE_DEVICE (GICv3 distributor and redistributor),
  SET_DTB_CONFIG, GZVM_RUN to the SYSTEM_EVENT, every fd closed and the
  mapping unmapped. GenieZone has no RM, so nothing else has a ``gz_`` twin.
- ``rm_rpc_small_us`` and ``rm_rpc_14k_us``: round trips of an empty request
  and of a 14 KiB one (61 fragments), which the RM reassembles and answers.
- ``scale_vms`` x ``scale_vcpus``: that many VMs booting ``hello`` at once,
  each on its own VMM thread, every vCPU brought up; ``scale_s`` the time.
- ``rss_ratio``: RSS growth for a VM with a 4 GiB guest_memfd whose guest
  touches 16 MiB, over 16 MiB (a fixed 4 to 5 MiB of it is the VM's own, so
  the figure means something only at this size; each page is a fault the
  hypervisor serves, 4 to 5 ms, the longest figure of ``--quick``).
- ``cli_run_s``: ``gunyah-sim run`` from start to exit, in a new process.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time

import kernel
from bench import GZ, Sizes, baselines, native_bench
from tests import gzvmvm
from tests.gunyahvm import MMIO, RWX_LEND, guest_mem, make_vm, map_mem
from uapi.linux import gzvm as gz
from vmm.guests import image
from vmm.vmm import Vmm, VmmConfig

UNKNOWN_MESSAGE = 0x5600_00FD
OFF = "ldr x0, =0x84000008\nhvc #0\nb ."


def _touch(pages: int) -> str:
    """Stores to each of the first ``pages`` pages of the 4 GiB guest_memfd, then exits."""
    return f"""
    ldr x9, ={MMIO:#x}
    ldr x2, =0x100000000          // the 4 GiB guest_memfd
    ldr x3, ={pages}
    mov x4, #4096
1:  str x3, [x2]
    add x2, x2, x4
    subs x3, x3, #1
    b.ne 1b
    str xzr, [x9]
    b .
"""


def _lifecycle_ms(host) -> float:
    start = time.perf_counter()
    t = make_vm(host, OFF)
    t.start()
    t.run()
    t.close()
    return (time.perf_counter() - start) * 1e3


def _gz_lifecycle_ms(host) -> float:
    start = time.perf_counter()
    t = gzvmvm.make_vm(host, OFF)
    dtb = gz.ffi.new(
        "struct gzvm_dtb_config *", [gzvmvm.RAM_IPA + gzvmvm.RAM_SIZE - 0x1000, 0x1000]
    )
    host.ioctl(t.vm, gz.GZVM_SET_DTB_CONFIG, dtb)
    assert t.go(host) == gz.GZVM_EXIT_SYSTEM_EVENT
    t.close(host)
    return (time.perf_counter() - start) * 1e3


def _lifecycle_best_ms(hypervisor: str, lifecycle, count: int) -> float:
    host = kernel.boot(dram_size=1 << 30, hypervisor=hypervisor)
    try:
        lifecycle(host)  # warm: the guest's assembly is cached
        return min(lifecycle(host) for _ in range(count))
    finally:
        host.shutdown()


def _rm_us(host, count: int, size: int) -> float:
    """Round trips of a ``size``-byte payload the RM reassembles, then answers
    UNIMPLEMENTED (an id it does not know): the transport alone."""
    rm = host.gunyah.rm
    start = time.perf_counter()
    for _ in range(count):
        with contextlib.suppress(OSError):
            rm.gunyah_rm_call(UNKNOWN_MESSAGE, bytes(size))
    return (time.perf_counter() - start) / count * 1e6


def _scale_s(vms: int, vcpus: int) -> float:
    host = kernel.boot()
    try:
        reports = []
        threads = [
            threading.Thread(
                target=lambda: reports.append(
                    Vmm(host, VmmConfig(image("hello"), "hello", vcpus, 16 << 20)).run()
                )
            )
            for _ in range(vms)
        ]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    finally:
        host.shutdown()
    if len(reports) != vms or not all(r.clean for r in reports):
        raise RuntimeError(f"scale: {sum(r.clean for r in reports)} of {vms} VMs ran clean")
    return elapsed


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _rss_ratio(pages: int) -> float:
    host = kernel.boot()
    try:
        before = _rss()
        t = make_vm(host, _touch(pages))
        big = guest_mem(host, t.dev, 4 << 30)
        map_mem(host, t.vm, big, 1 << 32, 4 << 30, RWX_LEND)
        run = t.run_page()
        t.start()
        t.run()
        assert run.mmio.phys_addr == MMIO
        grown = _rss() - before
        del run
        host.close(big)
        t.close()
    finally:
        host.shutdown()
    return grown / (pages * 4096)


def _in_new_process(figure: str, *args: int) -> float:
    """A figure measured in a fresh interpreter, so nothing measured before counts."""
    code = f"from bench.vmm_bench import {figure}; print({figure}{args!r})"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=300
    )
    return float(out.stdout.split()[-1])


def _cli_s() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "vmm.cli", "run"], check=True, capture_output=True, timeout=300
    )
    return time.perf_counter() - start


def whole_vms(sizes: Sizes) -> dict:
    lifecycle = _lifecycle_best_ms("gunyah", _lifecycle_ms, sizes.lifecycles)
    gz_lifecycle = _lifecycle_best_ms("geniezone", _gz_lifecycle_ms, sizes.lifecycles)
    new_uc = baselines.new_uc_ms()
    host = kernel.boot(dram_size=1 << 30)
    try:
        small = _rm_us(host, sizes.rm_small, 4)
        large = _rm_us(host, sizes.rm_large, 14 * 1024 - 4)
    finally:
        host.shutdown()
    return {
        "vm_lifecycle_ms": round(lifecycle, 2),
        "vm_lifecycle_ratio": round(lifecycle / new_uc, 1),
        f"{GZ}vm_lifecycle_ms": round(gz_lifecycle, 2),
        f"{GZ}vm_lifecycle_ratio": round(gz_lifecycle / new_uc, 1),
        "rm_rpc_small_us": round(small, 1),
        "rm_rpc_14k_us": round(large, 1),
    }


def scale(sizes: Sizes) -> dict:
    return {
        "scale_vms": sizes.scale_vms,
        "scale_vcpus": 4,
        "scale_s": round(_scale_s(sizes.scale_vms, 4), 2),
    }


def new_processes(sizes: Sizes) -> dict:
    return {
        "rss_ratio": round(_in_new_process("_rss_ratio", sizes.rss_pages), 2),
        "cli_run_s": round(_cli_s(), 2),
    }


FIGURES = [whole_vms, scale, new_processes, native_bench.native_ioctl]
