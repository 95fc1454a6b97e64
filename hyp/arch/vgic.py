"""The virtual GICv3 of a VM (Gunyah hyp/vm/vgic/src/{distrib,sysregs,deliver}.c,
Linux arch/arm64/kvm/vgic/vgic-mmio-v3.c and vgic-sys-reg-v3.c).

:class:`Vgic` runs a :class:`~hyp.hw.gicv3.Gicv3` for one VM: its vCPUs'
GICD/GICR accesses and ICC_* system registers are emulated here and never
exit to the host. After every change each vCPU of the VM is told to
re-evaluate its virtual IRQ line (``interrupts_changed()``), which also
wakes a vCPU sleeping in WFI.

A hypervisor builds its interrupt-controller object on it and supplies:

- ``vcpus``: the VM's vCPUs by index (filled as it attaches them);
- :meth:`Vgic.source_pending`, asked when a level interrupt is
  deactivated whether its source still asserts it (default: no source).

The distributor and redistributor frames are at the board's fixed IPAs
(``GICD_BASE``, ``GICR_BASE``) for every VM.
"""

from __future__ import annotations

from hyp.hw.board import GICD_BASE, GICD_SIZE, GICR_BASE, GICR_STRIDE
from hyp.hw.gicv3 import Gicv3

# IPAs decoded as the vGIC's: the distributor up to the last possible
# redistributor frame. A frame no vCPU has is then an MMIO exit to the host.
MAX_REDISTRIBUTORS = 64


class Vgic:
    def __init__(self):
        self.vcpus: dict[int, object] = {}
        self.gic: Gicv3 | None = None

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

    def notify(self) -> None:
        """Interrupt state changed: every vCPU re-evaluates its line."""
        for vcpu in self.vcpus.values():
            vcpu.interrupts_changed()

    @staticmethod
    def claims(ipa: int) -> bool:
        """Is ``ipa`` in the window the vGIC decodes?"""
        return GICD_BASE <= ipa < GICR_BASE + MAX_REDISTRIBUTORS * GICR_STRIDE

    def mmio(self, vcpu, ipa: int, size: int, value: int | None) -> int | None:
        """Emulate a GICD/GICR access (a read when ``value`` is None); None if
        ``ipa`` is no frame of this vGIC."""
        if GICD_BASE <= ipa < GICD_BASE + GICD_SIZE:
            result = self.gic.dist_access(ipa - GICD_BASE, size, value, vcpu.gic_cpu)
        else:
            frame, offset = divmod(ipa - GICR_BASE, GICR_STRIDE)
            if not (ipa >= GICR_BASE and frame < len(self.gic.cpus)):
                return None
            result = self.gic.redist_access(frame, offset, size, value)
        if value is not None:
            self.notify()
        return result or 0

    def sysreg(self, vcpu, reg: tuple[int, int, int], value: int | None) -> int:
        """Emulate an ICC_* access of ``vcpu`` (a read when ``value`` is None)."""
        if value is None:
            result = self.gic.sysreg_read(vcpu.gic_cpu, reg)
        else:
            self.gic.sysreg_write(vcpu.gic_cpu, reg, value)
            result = 0
        self.notify()
        return result
