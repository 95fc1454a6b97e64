"""GenieZone's interrupt hypercall (arch/arm64/geniezone/vgic.c).

EL2 owns the GICv3 model; the host only raises or lowers a line:
IRQ_LINE((vm_id << 16) | vcpu_idx, irq, level), ``irq`` an SPI number
counted from 0 (EL2 adds 32).
"""

from __future__ import annotations

from kernel.arch.arm64.geniezone.hvc import GzvmFunc, GzvmHypercall
from kernel.arch.arm64.geniezone.vcpu import assemble_vm_vcpu_tuple
from kernel.arch.arm64.geniezone.vm import gzvm_hvc


def gzvm_vgic_inject_irq(hvc: GzvmHypercall, vm_id: int, vcpu_idx: int, irq: int, level: bool):
    """OSError with the mapped errno if EL2 refuses (callers report EFAULT)."""
    gzvm_hvc(hvc, GzvmFunc.IRQ_LINE, assemble_vm_vcpu_tuple(vm_id, vcpu_idx), irq, int(level))
