"""GenieZone's vCPU hypercalls (arch/arm64/geniezone/vcpu.c).

A vCPU is named to EL2 by the tuple (vm_id << 16) | vcpu_id. Errors as in
kernel.arch.arm64.geniezone.vm: OSError with ``gzvm_err_to_errno``.
"""

from __future__ import annotations

from kernel.arch.arm64.geniezone.hvc import GzvmFunc, GzvmHypercall
from kernel.arch.arm64.geniezone.vm import gzvm_hvc


def assemble_vm_vcpu_tuple(vm_id: int, vcpu_id: int) -> int:
    return (vm_id & 0xFFFF) << 16 | (vcpu_id & 0xFFFF)


def gzvm_arch_create_vcpu(hvc: GzvmHypercall, vm_id: int, vcpu_id: int, area_pa: int) -> None:
    """CREATE_VCPU with the PA of its two shared pages (run page, hwstate page)."""
    gzvm_hvc(hvc, GzvmFunc.CREATE_VCPU, assemble_vm_vcpu_tuple(vm_id, vcpu_id), area_pa)


def gzvm_arch_destroy_vcpu(hvc: GzvmHypercall, vm_id: int, vcpu_id: int) -> None:
    """DESTROY_VCPU; its result is ignored, as the driver does."""
    hvc.gzvm_hypcall_wrapper(GzvmFunc.DESTROY_VCPU, assemble_vm_vcpu_tuple(vm_id, vcpu_id))


def gzvm_arch_vcpu_run(hvc: GzvmHypercall, vm_id: int, vcpu_id: int) -> int:
    """RUN until an exit for the host: the exit reason (x1)."""
    return gzvm_hvc(hvc, GzvmFunc.RUN, assemble_vm_vcpu_tuple(vm_id, vcpu_id))[0] & 0xFFFF_FFFF


def gzvm_arch_vcpu_update_one_reg(hvc, vm_id: int, vcpu_id: int, reg_id: int, value: int):
    """SET_ONE_REG: EL2 checks the id."""
    gzvm_hvc(hvc, GzvmFunc.SET_ONE_REG, assemble_vm_vcpu_tuple(vm_id, vcpu_id), reg_id, value)
