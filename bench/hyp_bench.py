"""Figures of the hypervisor layer: guest instructions per second inside a VM.

- ``guest_mips_ratio``: a compute loop (no memory access, then one store
  that exits) run by vCPU 0 of a VM built with hypercalls alone on Gunyah
  (``vcpu_run`` until the VMMIO exit), over the same loop on a bare unicorn
  core; ``guest_mips`` and ``bare_mips`` are the rates.
- ``gz_guest_mips_ratio``, ``gz_guest_mips``: the same loop in a GenieZone
  VM (GenieZone's RUN until the MMIO exit), over the same bare rate.

The three are measured in turns, so the machine's noise falls on all alike.
"""

from __future__ import annotations

import time

from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, Uc
from unicorn import arm64_const as arm64

from bench import GZ, Sizes
from bench.guest_code import LOOP_END, compute_loop, to_bytes
from hyp.geniezone.hypervisor import GenieZone
from hyp.geniezone.vcpu import GzvmExit
from hyp.gunyah.hypervisor import Gunyah
from hyp.gunyah.vcpu import VcpuState


def _bare_seconds(code: bytes) -> float:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.ctl_set_cpu_model(arm64.UC_CPU_ARM64_MAX)
    uc.mem_map(0, 0x10_0000)
    uc.mem_write(0x1000, code)
    start = time.perf_counter()
    uc.emu_start(0x1000, 0x1000 + LOOP_END)
    return time.perf_counter() - start


def _gunyah_seconds(code: bytes) -> float:
    from tests.hyp.gunyah.vmhelper import build_vm

    gunyah = Gunyah(dram_size=1 << 30)
    try:
        vm = build_vm(gunyah, code)
        start = time.perf_counter()
        state = vm.run()[0]
        elapsed = time.perf_counter() - start
        assert state == VcpuState.ADDRSPACE_VMMIO_WRITE, state
        return elapsed
    finally:
        gunyah.close()


def _geniezone_seconds(code: bytes) -> float:
    from tests.hyp.geniezone.gzhelper import Door, build_vm

    geniezone = GenieZone(dram_size=1 << 30)
    try:
        vm = build_vm(Door(geniezone), code)
        start = time.perf_counter()
        reason = vm.run()
        elapsed = time.perf_counter() - start
        assert reason == GzvmExit.MMIO, reason
        return elapsed
    finally:
        geniezone.close()


def guest_mips_ratio(sizes: Sizes) -> dict:
    """Instructions/s of a compute loop in a full VM / the same loop on a bare core."""
    code = to_bytes(compute_loop(sizes.mips_iterations))
    bare, gunyah, geniezone = [], [], []
    for _ in range(sizes.mips_samples):
        bare.append(_bare_seconds(code))
        gunyah.append(_gunyah_seconds(code))
        geniezone.append(_geniezone_seconds(code))
    instructions = 4 * sizes.mips_iterations
    bare_mips = instructions / min(bare) / 1e6
    results = {"bare_mips": round(bare_mips, 1)}
    for prefix, seconds in (("", gunyah), (GZ, geniezone)):
        vm_mips = instructions / min(seconds) / 1e6
        results[f"{prefix}guest_mips_ratio"] = round(vm_mips / bare_mips, 3)
        results[f"{prefix}guest_mips"] = round(vm_mips, 1)
    return results


FIGURES = [guest_mips_ratio]
