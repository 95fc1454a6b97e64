"""GenieZone's VM hypercalls (arch/arm64/geniezone/vm.c).

Each function makes one hypercall of spec §2 and raises OSError with
``gzvm_err_to_errno`` of a failed status; callers that report another
errno (SET_MEMREGION and MEMREGION_PURPOSE: EFAULT, PROBE: ENODEV,
GET_PVMFW_SIZE: EINVAL) replace it where they call.
"""

from __future__ import annotations

import os

from kernel.arch.arm64.geniezone.hvc import GzvmFunc, GzvmHypercall
from kernel.include.linux.gzvm_drv import GzvmError, gzvm_err_to_errno


def gzvm_hvc(hvc: GzvmHypercall, func: GzvmFunc, *args: int) -> tuple[int, int, int]:
    """x1..x3 of a successful hypercall; OSError(gzvm_err_to_errno) otherwise."""
    status, *out = hvc.gzvm_hypcall_wrapper(func, *args)
    if status:
        err = gzvm_err_to_errno(status)
        raise OSError(err, f"{os.strerror(err)}: GenieZone {func.name}: status {status}")
    return tuple(out)


def gzvm_arch_probe(hvc: GzvmHypercall, version: tuple[int, int, int]) -> tuple[int, int, int]:
    """PROBE with the driver's version; the hypervisor's version."""
    return gzvm_hvc(hvc, GzvmFunc.PROBE, *version)


def gzvm_arch_create_vm(hvc: GzvmHypercall, vm_type: int) -> int:
    """CREATE_VM: the new vm_id (u16)."""
    return gzvm_hvc(hvc, GzvmFunc.CREATE_VM, vm_type)[0] & 0xFFFF


def gzvm_arch_destroy_vm(hvc: GzvmHypercall, vm_id: int, batch_pages: int) -> None:
    """DESTROY_VM, again while EL2 answers ERR_BUSY (it releases ``batch_pages`` a call)."""
    while True:
        status, *_ = hvc.gzvm_hypcall_wrapper(GzvmFunc.DESTROY_VM, vm_id, batch_pages)
        if status != GzvmError.ERR_BUSY:
            break
    if status:
        err = gzvm_err_to_errno(status)
        raise OSError(err, f"GenieZone DESTROY_VM: status {status}")


def gzvm_arch_set_memregion(hvc: GzvmHypercall, vm_id: int, buf_size: int, region_pa: int):
    """SET_MEMREGION of the struct gzvm_memory_region_ranges at ``region_pa``."""
    gzvm_hvc(hvc, GzvmFunc.SET_MEMREGION, vm_id, buf_size, region_pa)


def gzvm_arch_memregion_purpose(hvc, vm_id: int, gpa: int, size: int, flags: int) -> None:
    gzvm_hvc(hvc, GzvmFunc.MEMREGION_PURPOSE, vm_id, gpa, size, flags)


def gzvm_arch_enable_cap(hvc: GzvmHypercall, vm_id: int, cap: int, args) -> int:
    """ENABLE_CAP with args[0..4] in x3..x7; x1, the answer."""
    return gzvm_hvc(hvc, GzvmFunc.ENABLE_CAP, vm_id, cap, *args)[0]


def gzvm_arch_create_device(hvc: GzvmHypercall, vm_id: int, dev_pa: int) -> None:
    """CREATE_DEVICE of the struct gzvm_create_device at ``dev_pa``."""
    gzvm_hvc(hvc, GzvmFunc.CREATE_DEVICE, vm_id, dev_pa)


def gzvm_arch_set_dtb_config(hvc, vm_id: int, dtb_addr: int, dtb_size: int) -> None:
    gzvm_hvc(hvc, GzvmFunc.SET_DTB_CONFIG, vm_id, dtb_addr, dtb_size)


def gzvm_arch_map_guest(hvc, vm_id: int, slot: int, pfn: int, gfn: int, nr: int) -> None:
    gzvm_hvc(hvc, GzvmFunc.MAP_GUEST, vm_id, slot, pfn, gfn, nr)


def gzvm_arch_map_guest_block(hvc, vm_id: int, slot: int, gfn: int, nr: int) -> None:
    """MAP_GUEST_BLOCK: EL2 reads the PFNs from the VM's demand-paging buffer."""
    gzvm_hvc(hvc, GzvmFunc.MAP_GUEST_BLOCK, vm_id, slot, gfn, nr)


def gzvm_arch_inform_exit(hvc: GzvmHypercall, vm_id: int) -> None:
    """INFORM_EXIT: a GZVM_RUN of the VM was interrupted; the result is ignored."""
    hvc.gzvm_hypcall_wrapper(GzvmFunc.INFORM_EXIT, vm_id)
