"""GenieZone VMs (drivers/virt/geniezone/gzvm_vm.c): GZVM_CREATE_VM and the VM fd.

CREATE_VM asks EL2 for a VM (the ioctl value is the vm_type; EL2's error
as errno), remembers the creator's mm for every later memslot lookup and
sets the memory allocation mode: ENABLE_CAP(ENABLE_DEMAND_PAGING), then
ENABLE_CAP(BLOCK_BASED_DEMAND_PAGING, 2 MiB, PA of a 4 KiB PFN buffer)
for 2 MiB blocks, 4 KiB pages if EL2 refuses that; if EL2 refuses demand
paging, every memslot is pinned and handed over when it is registered
("fully populated"). The fd is "gzvm-vm".

VM fd ioctls (anything else, GZVM_SET_MEMORY_REGION included, ENOTTY):

* GZVM_CREATE_VCPU (value: id): see kernel.geniezone.gzvm_vcpu.
* GZVM_SET_USER_MEMORY_REGION: see kernel.geniezone.gzvm_mmu.
* GZVM_CHECK_EXTENSION: as on /dev/gzvm (a null pointer is EFAULT here).
* GZVM_ENABLE_CAP: PROTECTED_VM with args[0] SET_PVMFW_GPA or
  SET_PROTECTED_VM (a VM paged by 4 KiB first pins and hands over every
  memslot, errors ignored) or GET_PVMFW_SIZE (EL2's answer in args[1],
  the struct copied back; EL2's failure EINVAL), any other args[0] EINVAL;
  ENABLE_DEMAND_PAGING, BLOCK_BASED_DEMAND_PAGING and ENABLE_IDLE go to
  EL2 as they are (its errno); any other cap EINVAL.
* GZVM_IRQ_LINE: vCPU bits 23:16 + 256 x bits 31:28, SPI number bits
  15:0, type bits ignored; EL2's failure is EFAULT.
* GZVM_CREATE_DEVICE: the struct in a kernel page, its attributes (if
  attr_addr and attr_size are set; attr_size > PAGE_SIZE EINVAL) copied
  into kernel pages and attr_addr rewritten to their PA; EL2's errno.
  Nothing is copied back.
* GZVM_IRQFD, GZVM_IOEVENTFD: see their modules.
* GZVM_SET_DTB_CONFIG: forwarded to EL2 (its errno).

An unreadable argument is EFAULT. The VM fd's release destroys everything
(vCPU fds hold no reference): irqfds and ioeventfds, each vCPU (a
GZVM_RUN in progress is kicked out first and ends with ENODEV, as does
any later ioctl on the vCPU fd), DESTROY_VM (again while EL2 is busy),
the PFN buffer, and last every page still pinned.
"""

from __future__ import annotations

import errno
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field

from kernel.arch.arm64.geniezone import vm as arch
from kernel.arch.arm64.geniezone.vgic import gzvm_vgic_inject_irq
from kernel.fs import File, FileOperations
from kernel.geniezone import gzvm_ioeventfd, gzvm_irqfd, gzvm_main, gzvm_mmu, gzvm_vcpu
from kernel.include.linux.gzvm_drv import (
    GZVM_BLOCK_BASED_DEMAND_PAGE_SIZE,
    GZVM_DESTROY_BATCH_PAGES,
    GZVM_MAX_MEM_REGION,
    GZVM_MAX_VCPUS,
    INVALID_VM_ID,
    GzvmDemandPagingMode,
)
from kernel.mm import PAGE_SIZE
from kernel.uaccess import copy_from_user, copy_to_user
from uapi.linux import gzvm as gz

GZVM_FULLY_POPULATED = GzvmDemandPagingMode.GZVM_FULLY_POPULATED
GZVM_DEMAND_PAGING = GzvmDemandPagingMode.GZVM_DEMAND_PAGING


@dataclass(eq=False)
class Gzvm:
    """struct gzvm. Each field's comment names the lock that guards it."""

    host: object  # set at creation
    drv: object  # gzvm_main.GzvmDriver, set at creation
    mm: object  # the creator's MmStruct, set at creation
    vm_id: int = INVALID_VM_ID  # set at creation
    mem_alloc_mode: int = GZVM_FULLY_POPULATED  # set at creation
    demand_page_gran: int = PAGE_SIZE  # set at creation
    demand_page_buffer: object = None  # KernelPages (PFNs for MAP_GUEST_BLOCK): mem_lock
    memslot: list = field(default_factory=lambda: [None] * GZVM_MAX_MEM_REGION)  # mem_lock
    pinned_pages: dict = field(default_factory=dict)  # mem_lock: IPA of a page -> its PA
    mem_lock: threading.RLock = field(default_factory=threading.RLock)
    vcpus: list = field(default_factory=lambda: [None] * GZVM_MAX_VCPUS)  # lock
    irqfds: list = field(default_factory=list)  # irqfds_lock
    irqfds_lock: threading.Lock = field(default_factory=threading.Lock)
    ioevents: list = field(default_factory=list)  # ioevent_lock
    ioevent_lock: threading.Lock = field(default_factory=threading.Lock)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def hvc(self):
        return self.drv.hvc


def _struct(ctype: str, arg):
    data = bytearray(copy_from_user(arg, gz.ffi.sizeof(ctype)))
    return gz.ffi.from_buffer(f"{ctype} *", data)


def gzvm_dev_ioctl_create_vm(host, vm_type) -> int:
    """GZVM_CREATE_VM: the new VM's fd."""
    if not isinstance(vm_type, int):
        raise gzvm_main.errno_error(errno.EINVAL, "GZVM_CREATE_VM takes the vm_type")
    drv = host.gzvm
    with ExitStack() as undo:
        vm = Gzvm(host, drv, host.mm, arch.gzvm_arch_create_vm(drv.hvc, vm_type))
        undo.callback(gzvm_destroy_vm, vm)  # the PFN buffer only after DESTROY_VM
        setup_mem_alloc_mode(vm)
        fd = host.fdtable.install(File(VM_FOPS, vm, "gzvm-vm"))
        undo.pop_all()
    drv.vm_list.append(vm)
    return fd


def setup_mem_alloc_mode(vm: Gzvm) -> None:
    try:
        arch.gzvm_arch_enable_cap(vm.hvc, vm.vm_id, gz.GZVM_CAP_ENABLE_DEMAND_PAGING, [0] * 5)
    except OSError:
        vm.mem_alloc_mode = GZVM_FULLY_POPULATED
        return
    vm.mem_alloc_mode = GZVM_DEMAND_PAGING
    buffer = gzvm_main.KernelPages.alloc(vm.drv, PAGE_SIZE)
    args = [GZVM_BLOCK_BASED_DEMAND_PAGE_SIZE, buffer.pa, 0, 0, 0]
    try:
        arch.gzvm_arch_enable_cap(vm.hvc, vm.vm_id, gz.GZVM_CAP_BLOCK_BASED_DEMAND_PAGING, args)
    except OSError:
        buffer.free()
        vm.demand_page_gran = PAGE_SIZE
        return
    vm.demand_page_buffer, vm.demand_page_gran = buffer, GZVM_BLOCK_BASED_DEMAND_PAGE_SIZE


def free_demand_page_buffer(vm: Gzvm) -> None:
    with vm.mem_lock:
        buffer, vm.demand_page_buffer = vm.demand_page_buffer, None
    if buffer is not None:
        buffer.free()


def gzvm_vm_ioctl_enable_cap(vm: Gzvm, arg) -> int:
    cap = _struct("struct gzvm_enable_cap", arg)
    args = list(cap.args)
    if cap.cap == gz.GZVM_CAP_PROTECTED_VM:
        if args[0] == gz.GZVM_CAP_PVM_GET_PVMFW_SIZE:
            try:
                args[1] = arch.gzvm_arch_enable_cap(vm.hvc, vm.vm_id, cap.cap, args)
            except OSError:
                raise gzvm_main.errno_error(errno.EINVAL, "GET_PVMFW_SIZE refused") from None
            cap.args[1] = args[1]
            copy_to_user(arg, bytes(gz.ffi.buffer(cap)))
            return 0
        if args[0] not in (gz.GZVM_CAP_PVM_SET_PVMFW_GPA, gz.GZVM_CAP_PVM_SET_PROTECTED_VM):
            raise gzvm_main.errno_error(errno.EINVAL, f"protected VM sub-command {args[0]}")
        if vm.mem_alloc_mode == GZVM_DEMAND_PAGING and vm.demand_page_gran == PAGE_SIZE:
            gzvm_mmu.gzvm_vm_populate_mem_region(vm)
        arch.gzvm_arch_enable_cap(vm.hvc, vm.vm_id, cap.cap, args)
        return 0
    if cap.cap in (
        gz.GZVM_CAP_ENABLE_DEMAND_PAGING,
        gz.GZVM_CAP_BLOCK_BASED_DEMAND_PAGING,
        gz.GZVM_CAP_ENABLE_IDLE,
    ):
        arch.gzvm_arch_enable_cap(vm.hvc, vm.vm_id, cap.cap, args)
        return 0
    raise gzvm_main.errno_error(errno.EINVAL, f"capability {cap.cap:#x}")


def gzvm_vm_ioctl_irq_line(vm: Gzvm, arg) -> int:
    irq_level = _struct("struct gzvm_irq_level", arg)
    irq = irq_level.irq
    vcpu_idx = (irq >> gz.GZVM_IRQ_VCPU_SHIFT & gz.GZVM_IRQ_VCPU_MASK) + (
        irq >> gz.GZVM_IRQ_VCPU2_SHIFT & gz.GZVM_IRQ_VCPU2_MASK
    ) * (gz.GZVM_IRQ_VCPU_MASK + 1)
    irq_num = irq >> gz.GZVM_IRQ_NUM_SHIFT & gz.GZVM_IRQ_NUM_MASK
    try:
        gzvm_vgic_inject_irq(vm.hvc, vm.vm_id, vcpu_idx, irq_num, bool(irq_level.level))
    except OSError:
        raise gzvm_main.errno_error(errno.EFAULT, "IRQ_LINE refused") from None
    return 0


def gzvm_vm_ioctl_create_device(vm: Gzvm, arg) -> int:
    dev = _struct("struct gzvm_create_device", arg)
    with ExitStack() as pages:
        if dev.attr_addr and dev.attr_size:
            if dev.attr_size > PAGE_SIZE:
                raise gzvm_main.errno_error(errno.EINVAL, "attr_size > PAGE_SIZE")
            attrs = copy_from_user(dev.attr_addr, dev.attr_size)
            attr_page = gzvm_main.KernelPages.alloc(vm.drv, PAGE_SIZE)
            pages.callback(attr_page.free)
            attr_page.map[: len(attrs)] = attrs
            dev.attr_addr = attr_page.pa
        dev_page = gzvm_main.KernelPages.alloc(vm.drv, PAGE_SIZE)
        pages.callback(dev_page.free)
        raw = bytes(gz.ffi.buffer(dev))
        dev_page.map[: len(raw)] = raw
        arch.gzvm_arch_create_device(vm.hvc, vm.vm_id, dev_page.pa)
    return 0


def gzvm_vm_ioctl_set_dtb_config(vm: Gzvm, arg) -> int:
    config = _struct("struct gzvm_dtb_config", arg)
    arch.gzvm_arch_set_dtb_config(vm.hvc, vm.vm_id, config.dtb_addr, config.dtb_size)
    return 0


class VmFops(FileOperations):
    def ioctl(self, file: File, cmd: int, arg) -> int:
        vm: Gzvm = file.private
        if cmd == gz.GZVM_CREATE_VCPU:
            return gzvm_vcpu.gzvm_vm_ioctl_create_vcpu(vm, arg)
        if cmd == gz.GZVM_SET_USER_MEMORY_REGION:
            region = _struct("struct gzvm_userspace_memory_region", arg)
            return gzvm_mmu.gzvm_vm_ioctl_set_memory_region(vm, region)
        if cmd == gz.GZVM_CHECK_EXTENSION:
            return gzvm_main.gzvm_dev_ioctl_check_extension(arg)
        if cmd == gz.GZVM_ENABLE_CAP:
            return gzvm_vm_ioctl_enable_cap(vm, arg)
        if cmd == gz.GZVM_IRQ_LINE:
            return gzvm_vm_ioctl_irq_line(vm, arg)
        if cmd == gz.GZVM_CREATE_DEVICE:
            return gzvm_vm_ioctl_create_device(vm, arg)
        if cmd == gz.GZVM_IRQFD:
            return gzvm_irqfd.gzvm_irqfd(vm, _struct("struct gzvm_irqfd", arg))
        if cmd == gz.GZVM_IOEVENTFD:
            return gzvm_ioeventfd.gzvm_ioeventfd(vm, _struct("struct gzvm_ioeventfd", arg))
        if cmd == gz.GZVM_SET_DTB_CONFIG:
            return gzvm_vm_ioctl_set_dtb_config(vm, arg)
        return super().ioctl(file, cmd, arg)

    def release(self, file: File) -> None:
        gzvm_destroy_vm(file.private)


def gzvm_destroy_vm(vm: Gzvm) -> None:
    """Everything the VM holds, in reverse order of acquisition (spec §3.11), except
    that vCPU areas are freed after DESTROY_VM, when EL2 surely no longer writes
    them. If EL2 refuses DESTROY_VM, what it may still use (vCPU areas, the PFN
    buffer, pinned pages) is leaked and logged, never given back to the host."""
    gzvm_irqfd.gzvm_vm_irqfd_release(vm)
    gzvm_ioeventfd.gzvm_vm_ioeventfd_release(vm)
    with vm.lock:
        vcpus, vm.vcpus = [v for v in vm.vcpus if v is not None], [None] * GZVM_MAX_VCPUS
    for vcpu in vcpus:
        gzvm_vcpu.gzvm_destroy_vcpu(vcpu)
    if vm in vm.drv.vm_list:
        vm.drv.vm_list.remove(vm)
    try:
        arch.gzvm_arch_destroy_vm(vm.hvc, vm.vm_id, GZVM_DESTROY_BATCH_PAGES)
    except OSError as e:
        vm.host.printk(
            f"gzvm: DESTROY_VM {vm.vm_id}: {e.strerror}: leaking {len(vm.pinned_pages)}"
            f" pinned pages and {len(vcpus)} vCPU areas"
        )
        return
    for vcpu in vcpus:
        gzvm_vcpu.gzvm_free_vcpu_area(vcpu)
    free_demand_page_buffer(vm)
    gzvm_mmu.gzvm_vm_unpin_all(vm)


VM_FOPS = VmFops()
