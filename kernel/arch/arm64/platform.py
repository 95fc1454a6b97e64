"""Power-on of the machine the host kernel runs on: the firmware below EL1.

The only place the kernel model reaches the SoC, the hypervisor and the
RM: it powers them on and gets back the firmware's doors (hvc, interrupts,
the boot devicetree).
"""

from __future__ import annotations

from hyp.hw.board import DRAM_SIZE
from hyp.hw.memory import FileMapping  # the kernel maps its memfds as the hardware's DRAM is
from hyp.platform import Firmware, boot_firmware

__all__ = ["FileMapping", "power_on"]


def power_on(dram_size: int | None = None, rm_policy: str = "default") -> Firmware:
    return boot_firmware(dram_size or DRAM_SIZE, rm_policy)
