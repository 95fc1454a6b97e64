"""The virtual GICv3 of a VM (Gunyah hyp/vm/vgic/src/{distrib,sysregs,deliver}.c,
Linux arch/arm64/kvm/vgic/vgic-mmio-v3.c and vgic-sys-reg-v3.c).

:class:`Vgic` runs a :class:`~hyp.hw.gicv3.Gicv3` for one VM: its vCPUs'
GICD/GICR accesses and ICC_* system registers are emulated here and never
exit to the host. After every change each vCPU of the VM is told to
re-evaluate its virtual IRQ line (``interrupts_changed()``), which also
wakes a vCPU sleeping in WFI; after an ICC_* access, the accessing vCPU's
own trap updates its line instead.

A hypervisor builds its interrupt-controller object on it and supplies:

- ``vcpus``: the VM's vCPUs by index (filled as it attaches them);
- :meth:`Vgic.source_pending`, asked when a level interrupt is
  deactivated whether its source still asserts it (default: no source).

Where the guest finds the distributor and redistributor frames is per VM:
by default the board's fixed IPAs (``GICD_BASE``, ``GICR_BASE``, what
Gunyah gives every VM); a hypervisor whose host places them (GenieZone's
CREATE_DEVICE) calls :meth:`Vgic.place_dist` and :meth:`Vgic.place_redist`.
A frame that is not placed is not decoded: an access there is MMIO for
the host.
"""

from __future__ import annotations

from hyp.hw.board import GICD_BASE, GICD_SIZE, GICR_BASE, GICR_STRIDE
from hyp.hw.gicv3 import Gicv3

# IPAs decoded as the vGIC's: the distributor up to the last possible
# redistributor frame. A frame no vCPU has is then an MMIO exit to the host.
MAX_REDISTRIBUTORS = 64


class Vgic:
    def __init__(self, placed: bool = True):
        """``placed``: decode the board's fixed frames; else none until placed."""
        self.vcpus: dict[int, object] = {}
        self.gic: Gicv3 | None = None
        self.gicd_base: int | None = GICD_BASE if placed else None
        self.gicr_base: int | None = GICR_BASE if placed else None
        self.gicr_stride, self.gicr_frames = GICR_STRIDE, MAX_REDISTRIBUTORS

    def place_dist(self, base: int) -> None:
        """Decode the distributor's 64 KiB frame at IPA ``base``."""
        self.gicd_base = base

    def place_redist(self, base: int, stride: int, frames: int) -> None:
        """Decode ``frames`` redistributors, one every ``stride`` bytes from IPA ``base``."""
        self.gicr_base, self.gicr_stride, self.gicr_frames = base, stride, frames

    def start(self, nspis: int) -> None:
        """Create the GIC with ``nspis`` shared interrupts (when the VM's
        interrupt controller is activated)."""
        self.gic = Gicv3(nspis, recheck=self.source_pending)

    def source_pending(self, intid: int, cpu: int) -> bool:
        """Hook: does the source of level interrupt ``intid`` still assert it?"""
        return False

    def add_cpu(self, vcpu) -> int:
        """Give an activating vCPU its redistributor; returns its GIC CPU number."""
        return self.gic.add_cpu(vcpu.affinity)

    def notify(self, but=None) -> None:
        """Interrupt state changed: every vCPU but ``but`` re-evaluates its line."""
        for vcpu in self.vcpus.values():
            if vcpu is not but:
                vcpu.interrupts_changed()

    def _in_dist(self, ipa: int) -> bool:
        return self.gicd_base is not None and self.gicd_base <= ipa < self.gicd_base + GICD_SIZE

    def _in_redist(self, ipa: int) -> bool:
        base = self.gicr_base
        return base is not None and base <= ipa < base + self.gicr_frames * self.gicr_stride

    def claims(self, ipa: int) -> bool:
        """Is ``ipa`` in a window the vGIC decodes?"""
        return self._in_dist(ipa) or self._in_redist(ipa)

    def mmio(self, vcpu, ipa: int, size: int, value: int | None) -> int | None:
        """Emulate a GICD/GICR access (a read when ``value`` is None); None if
        ``ipa`` is no frame of this vGIC."""
        if self._in_dist(ipa):
            result = self.gic.dist_access(ipa - self.gicd_base, size, value, vcpu.gic_cpu)
        else:
            if not self._in_redist(ipa):
                return None
            frame, offset = divmod(ipa - self.gicr_base, self.gicr_stride)
            if frame >= len(self.gic.cpus) or offset >= GICR_STRIDE:
                return None
            result = self.gic.redist_access(frame, offset, size, value)
        if value is not None:
            self.notify()
        return result or 0

    def sysreg(self, vcpu, reg: tuple[int, int, int], value: int | None) -> int:
        """Emulate an ICC_* access of ``vcpu`` (a read when ``value`` is None).
        The other vCPUs are notified (an SGI); ``vcpu``'s own line is its
        trap's to update (``ArchVcpu.sync_in_trap``)."""
        if value is None:
            result = self.gic.sysreg_read(vcpu.gic_cpu, reg)
        else:
            self.gic.sysreg_write(vcpu.gic_cpu, reg, value)
            result = 0
        self.notify(but=vcpu)
        return result
