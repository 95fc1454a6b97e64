"""The bare-unicorn baselines the ratios are taken against, measured in the same run."""

from __future__ import annotations

import time

from unicorn import UC_ARCH_ARM64, UC_HOOK_MEM_WRITE, UC_MODE_ARM, Uc
from unicorn import arm64_const as arm64

CODE_BASE, DEVICE = 0x1000, 0x10_0000
# str x1, [x9]; b .-4 (x9 = DEVICE): a store per iteration, forever
STORE_LOOP = bytes.fromhex("210100f9ffffff17")


def _core() -> Uc:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.ctl_set_cpu_model(arm64.UC_CPU_ARM64_MAX)
    uc.mem_map(0, 0x20_0000)
    uc.mem_write(CODE_BASE, STORE_LOOP)
    uc.reg_write(arm64.UC_ARM64_REG_X9, DEVICE)
    return uc


def stop_and_restart_us(count: int) -> float:
    """A store whose hook stops the core, and a restart after it: a bare 'exit'."""
    uc = _core()
    uc.hook_add(UC_HOOK_MEM_WRITE, lambda uc, *a: uc.emu_stop(), begin=DEVICE, end=DEVICE + 7)
    start = time.perf_counter()
    for _ in range(count):
        uc.emu_start(CODE_BASE, 0)
    return (time.perf_counter() - start) / count * 1e6


def memory_hook_us(count: int) -> float:
    """A store seen by a Python memory hook, the core running on."""
    uc = _core()
    seen = [0]

    def hook(uc, *args):
        seen[0] += 1
        if seen[0] >= count:
            uc.emu_stop()

    uc.hook_add(UC_HOOK_MEM_WRITE, hook, begin=DEVICE, end=DEVICE + 7)
    start = time.perf_counter()
    uc.emu_start(CODE_BASE, 0)
    return (time.perf_counter() - start) / count * 1e6


def new_uc_ms(count: int = 50) -> float:
    start = time.perf_counter()
    for _ in range(count):
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.ctl_set_cpu_model(arm64.UC_CPU_ARM64_MAX)
        del uc
    return (time.perf_counter() - start) / count * 1e3
