"""Power-on of a MediaTek SoC with GenieZone at EL2: the firmware below the host kernel.

The only place the GenieZone host reaches the SoC: it powers it on and
gets back the firmware's doors (hvc, host mappings of RAM, IPIs, the boot
devicetree with the "mediatek,geniezone" node).
"""

from __future__ import annotations

from hyp.geniezone.platform import boot_firmware
from hyp.hw.board import DRAM_SIZE


def power_on(dram_size: int | None = None):
    return boot_firmware(dram_size or DRAM_SIZE)


def arch_timer_read_counter(firmware) -> int:
    """CNTVCT_EL0 as the host reads it: the SoC's one system counter (which only
    EL2 advances) with a zero virtual offset, what ktime_get_snapshot() records."""
    return firmware.geniezone.clock.now
