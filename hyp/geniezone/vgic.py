"""A GenieZone VM's GICv3 (answers arch/arm64/geniezone/vgic.c of the Linux
driver: CREATE_DEVICE and IRQ_LINE, spec §2, §3.8).

The GIC runs in EL2 for every VM from creation (SGIs, the timer PPI); the
guest finds its distributor and redistributors only where the host placed
them with CREATE_DEVICE (``struct gzvm_create_device``):

- ``GZVM_DEV_TYPE_ARM_VGIC_V3_DIST`` (0): the 64 KiB GICD frame at
  ``dev_addr``; ``dev_reg_size`` must be 0x10000;
- ``GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST`` (1): redistributors from
  ``dev_addr``, one per vCPU every ``dev_reg_size`` bytes (crosvm passes
  0x20000, the RD_base + SGI_base frames); ``GZVM_MAX_VCPUS`` frames are
  decoded, those of vCPUs that do not exist are MMIO for the host.

Both must be 64 KiB aligned inside the IPA space, overlap no memory slot,
and be placed once (ERR_BUSY after). crosvm puts the redistributors right
below the distributor, so the window of ``GZVM_MAX_VCPUS`` frames may run
into it: where they meet, the distributor is decoded. IRQ_LINE asserts SPI
``irq`` + 32.
"""

from __future__ import annotations

from hyp.arch.pgtable import IPA_BITS
from hyp.arch.vgic import Vgic
from hyp.geniezone.errors import Error, check
from hyp.hw.board import GICD_SIZE, GICR_STRIDE, SPI_BASE

NR_SPIS = 224  # INTIDs 32..255
DEV_TYPE_VGIC_V3_DIST, DEV_TYPE_VGIC_V3_REDIST = 0, 1
FRAME_ALIGN = 0x1_0000


class GzVgic(Vgic):
    def __init__(self, frames: int):
        super().__init__(placed=False)
        self.frames = frames
        self.start(NR_SPIS)

    def overlaps(self, ipa: int, size: int) -> bool:
        """Does [ipa, ipa+size) meet a placed frame?"""
        windows = []
        if self.gicd_base is not None:
            windows.append((self.gicd_base, GICD_SIZE))
        if self.gicr_base is not None:
            windows.append((self.gicr_base, self.gicr_stride * self.gicr_frames))
        return any(base < ipa + size and ipa < base + length for base, length in windows)

    def create_device(self, dev_type: int, addr: int, size: int, memory_overlaps) -> None:
        """Place a frame; ``memory_overlaps(ipa, size)`` asks the VM's memory slots."""
        check(dev_type in (DEV_TYPE_VGIC_V3_DIST, DEV_TYPE_VGIC_V3_REDIST), Error.ERR_NOT_SUPPORTED)
        if dev_type == DEV_TYPE_VGIC_V3_DIST:
            check(self.gicd_base is None, Error.ERR_BUSY, "distributor already placed")
            check(size == GICD_SIZE, why="distributor size")
            span = size
        else:
            check(self.gicr_base is None, Error.ERR_BUSY, "redistributors already placed")
            check(size == GICR_STRIDE, why="redistributor size")
            span = size * self.frames
        check(addr % FRAME_ALIGN == 0 and addr + span <= 1 << IPA_BITS, why="address")
        check(not memory_overlaps(addr, span), why="overlaps memory")
        if dev_type == DEV_TYPE_VGIC_V3_DIST:
            self.place_dist(addr)
        else:
            self.place_redist(addr, size, self.frames)

    def irq_line(self, irq: int, level: int) -> None:
        """IRQ_LINE: level 1 makes SPI ``irq`` + 32 pending until the guest
        acknowledges it, as a write to GICD_ISPENDR would (the driver's irqfd
        injects level 1 and never lowers it); level 0 changes nothing."""
        check(irq < NR_SPIS and level in (0, 1), why="irq or level")
        if level:
            self.gic.assert_irq(SPI_BASE + irq, 0, edge_only=True)
            self.notify()
