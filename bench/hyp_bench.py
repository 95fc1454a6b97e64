"""Figures of the hypervisor layer: guest instructions per second inside a VM."""

from __future__ import annotations

import time

from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, Uc
from unicorn import arm64_const as arm64

from bench.guest_code import LOOP_END, compute_loop, to_bytes
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


def _vm_seconds(code: bytes) -> float:
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


def guest_mips_ratio(quick: bool) -> dict:
    """Instructions/s of a compute loop in a full VM / the same loop on a bare core."""
    iterations = 20_000_000 if quick else 100_000_000
    code = to_bytes(compute_loop(iterations))
    bare, vm = [], []
    for _ in range(5 if quick else 9):
        bare.append(_bare_seconds(code))
        vm.append(_vm_seconds(code))
    instructions = 4 * iterations
    bare_mips = instructions / min(bare) / 1e6
    vm_mips = instructions / min(vm) / 1e6
    return {
        "guest_mips_ratio": round(vm_mips / bare_mips, 3),
        "guest_mips": round(vm_mips, 1),
        "bare_mips": round(bare_mips, 1),
    }


FIGURES = [guest_mips_ratio]
