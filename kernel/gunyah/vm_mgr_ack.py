"""What the Android drivers' VM manager does differently (ACK drivers/virt/gunyah/vm_mgr.c).

Used for the ``ack-6.1`` (android14-6.1, late) and ``ack-6.6``
(android15-6.6, late) profiles; everything else is vm_mgr.py's.

VM fd ioctls only these drivers have (any other is ENOTTY, MAP_MEM included):
GH_VM_SET_USER_MEM_REGION and GH_VM_ANDROID_LEND_USER_MEM (vm_mgr_mm.py on
6.1, vm_mgr_mem_android.py on 6.6), GH_VM_ANDROID_SET_FW_CONFIG (EFAULT; on
6.6 also EOVERFLOW; it makes the VM a protected one, QCOM_ANDROID_PVM, on
6.6 only if no other authentication was set), and on 6.6
GH_VM_RECLAIM_REGION, GH_VM_ANDROID_MAP_CMA_MEM and
GH_VM_ANDROID_SET_AUTH_TYPE. GH_VM_CHECK_EXTENSION is ENOTTY on both.

VM_START runs the generation's sequence (spec gunyah-ack.md §6) once; the
release of the last reference runs its teardown (§9). RM calls of the
release path that fail are logged, never raised.
"""

from __future__ import annotations

import errno
import os
from contextlib import ExitStack

from kernel import uaccess
from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah import vm_mgr_mem, vm_mgr_mm
from kernel.gunyah import vm_mgr_mem_android as mem_android
from kernel.gunyah.rsc_mgr_h import GunyahRmVmStatus as VmStatus
from kernel.mm import PAGE_SIZE
from kernel.uaccess import copy_from_user
from uapi.linux import gunyah_ack as ack

# struct gh_rm_vm_auth_mechanism values of CONFIG_IMAGE. The RM's value for a
# Qualcomm trusted VM is not public: this model's RM refuses the one used here.
GH_RM_VM_AUTH_NONE, GH_RM_VM_AUTH_QCOM_ANDROID_PVM, GH_RM_VM_AUTH_QCOM_TRUSTED_VM = 0, 2, 3
QTVM_ARG_SIZE = 24


def _struct(ctype: str, arg):
    data = bytearray(copy_from_user(arg, ack.ffi.sizeof(ctype)))
    return ack.ffi.from_buffer(f"{ctype} *", data)


def _enotty() -> OSError:
    return OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))


def gunyah_vm_android_ioctl(vm, cmd: int, arg) -> int:
    """A VM fd ioctl only the Android drivers have (module doc); ENOTTY otherwise."""
    profile = vm.profile
    if cmd in (ack.GH_VM_SET_USER_MEM_REGION, ack.GH_VM_ANDROID_LEND_USER_MEM):
        region = _struct("struct gh_userspace_memory_region", arg)
        lend = cmd == ack.GH_VM_ANDROID_LEND_USER_MEM
        if profile.memory == "pinned":
            return vm_mgr_mm.gh_vm_mem_alloc(vm, region, lend)
        return mem_android.gunyah_vm_binding_alloc(vm, region, lend)
    if cmd == ack.GH_VM_ANDROID_SET_FW_CONFIG:
        return _set_fw_config(vm, _struct("struct gh_vm_firmware_config", arg))
    if cmd == ack.GH_VM_RECLAIM_REGION and profile.reclaim_region:
        args = _struct("struct gunyah_address_range", arg)
        return mem_android.gunyah_vm_reclaim_range(vm, args.guest_phys_addr, args.size)
    if cmd == ack.GH_VM_ANDROID_MAP_CMA_MEM and profile.auth_ioctls:
        return _map_cma_mem(vm, _struct("struct gunyah_map_cma_mem_args", arg))
    if cmd == ack.GH_VM_ANDROID_SET_AUTH_TYPE and profile.auth_ioctls:
        return _set_auth_type(vm, _struct("struct gunyah_auth_desc", arg))
    raise _enotty()


def _set_fw_config(vm, fw) -> int:
    """Where pvmfw lives; the VM becomes a protected one (6.6: unless it is a QTVM)."""
    if vm.profile.auth_ioctls and fw.guest_phys_addr + fw.size >= 1 << 64:
        raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))
    vm.fw = (fw.guest_phys_addr, fw.size)
    if not vm.profile.auth_ioctls or vm.auth == GH_RM_VM_AUTH_NONE:
        vm.auth = GH_RM_VM_AUTH_QCOM_ANDROID_PVM
    return 0


def _map_cma_mem(vm, args) -> int:
    """GH_VM_ANDROID_MAP_CMA_MEM's checks in order. The board has no CMA pool, so
    no fd is a Gunyah CMA fd: an open fd whose size covers offset+size (else
    EOVERFLOW) gets the driver's EINVAL for that."""
    if not args.size or (args.size | args.guest_addr) % PAGE_SIZE:
        raise OSError(errno.EINVAL, "size 0, or size or guest_addr not page aligned")
    if args.guest_addr + args.size >= 1 << 64:
        raise OSError(errno.EOVERFLOW, "guest range wraps")
    if args.offset + args.size > _cma_fd_size(vm, args.guest_mem_fd):
        raise OSError(errno.EOVERFLOW, "offset + size past the end of the fd")
    raise OSError(errno.EINVAL, "not a Gunyah CMA fd")


def _cma_fd_size(vm, fd: int) -> int:
    """The size of the file behind the caller's ``fd`` (a u32 the driver reads as
    an int: from 2^31 on it is negative); EBADF if none is open. A kernel file
    (an anonymous inode) has size 0."""
    if fd >= 1 << 31:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    if not uaccess.foreign() and vm.host.fdtable.holds(fd):
        return 0
    local = uaccess.fdget_user(fd)
    try:
        return os.fstat(local).st_size
    finally:
        os.close(local)


def _set_auth_type(vm, desc) -> int:
    """Only the QTVM auth manager is registered (ENOENT for any other type); its
    argument is at most 24 bytes (EINVAL), copied in (EFAULT), with a guest range
    that must not wrap (EOVERFLOW). The VM becomes a QTVM (whose start is not
    modelled: the driver would fix its VMID to the argument's ``vm_id``)."""
    if desc.type != ack.GUNYAH_AUTH_QCOM_TRUSTED_VM:
        raise OSError(errno.ENOENT, f"no auth manager for type {desc.type}")
    if desc.arg_size > QTVM_ARG_SIZE:
        raise OSError(errno.EINVAL, "arg_size")
    data = bytearray(copy_from_user(desc.arg, desc.arg_size).ljust(QTVM_ARG_SIZE, b"\0"))
    qtvm = ack.ffi.from_buffer("struct gunyah_qtvm_auth_arg *", data)
    if qtvm.guest_phys_addr + qtvm.size >= 1 << 64:
        raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))
    vm.auth = GH_RM_VM_AUTH_QCOM_TRUSTED_VM
    return 0


# VM_START
def gunyah_vm_android_start(vm) -> None:
    """The generation's start sequence; the status stays where a failure left it."""
    if vm.auth == GH_RM_VM_AUTH_QCOM_TRUSTED_VM:
        raise OSError(errno.EOPNOTSUPP, "QTVM start needs a CMA payload: not modelled")
    rm = vm.rm
    rm.gunyah_rm_notifier_register(vm.nb)
    try:
        vm.vmid = rpc.gunyah_rm_alloc_vmid(rm, 0)
    except OSError:
        rm.gunyah_rm_notifier_unregister(vm.nb)
        raise
    if vm.profile.memory == "pinned":
        _start_61(vm)
    else:
        _start_66(vm)
    vm.vm_status = VmStatus.RUNNING


def _overlapping(vm, gpa: int, size: int, what: str):
    mem = next((m for m in vm.mem_regions if m.gpa < gpa + max(size, 1) and gpa < m.end), None)
    if mem is None:
        raise OSError(errno.EINVAL, f"the {what} is in no memory region")
    return mem


def _start_61(vm) -> None:
    """android14-6.1: lend or share every region, CONFIG_IMAGE with the DTB's
    region, SET_FIRMWARE_MEM for a protected VM, INIT, resources, START. No boot
    context: the RM starts the VM at its image's first byte, X0 the DTB."""
    rm = vm.rm
    vm.vm_status = VmStatus.LOAD
    vm_mgr_mm.gh_vm_mem_share_all(vm)
    gpa, size = vm.dtb
    mem = _overlapping(vm, gpa, size, "DTB")
    dtb_offset = (gpa - mem.gpa) % (1 << 64)
    rpc.gunyah_rm_vm_configure(rm, vm.vmid, vm.auth, mem.parcel.mem_handle, 0, 0, dtb_offset, size)
    if vm.auth == GH_RM_VM_AUTH_QCOM_ANDROID_PVM:
        fw_gpa, fw_size = vm.fw
        fw = _overlapping(vm, fw_gpa, fw_size, "firmware")
        offset = (fw_gpa - fw.gpa) % (1 << 64)
        rpc.gunyah_rm_vm_set_firmware_mem(rm, vm.vmid, fw.parcel, offset, fw_size)
    _init_and_start(vm)


def _start_66(vm) -> None:
    """android15-6.6: the firmware and the DTB pages as parcels, CONFIG_IMAGE,
    SET_FIRMWARE_MEM, SET_DEMAND_PAGING for lent bindings, SET_ADDRESS_LAYOUT over
    the DTB parcel, INIT, resources, the boot context (unprotected VMs only), START."""
    rm = vm.rm
    fw_gpa, fw_size = vm.fw
    fw = None
    if fw_size:
        fw = _share_before_load(vm, fw_gpa, fw_size)
        vm.android_parcels.append(fw)
    vm.vm_status = VmStatus.LOAD
    gpa, size = vm.dtb
    start = gpa // PAGE_SIZE * PAGE_SIZE
    dtb = mem_android.gunyah_share_parcel(vm, start, size // PAGE_SIZE * PAGE_SIZE)
    vm.android_parcels.append(dtb)
    handle = dtb.parcel.mem_handle
    rpc.gunyah_rm_vm_configure(rm, vm.vmid, vm.auth, handle, 0, 0, gpa - start, size)
    dtb.taken = True
    if fw is not None:
        rpc.gunyah_rm_vm_set_firmware_mem(
            rm, vm.vmid, fw.parcel, fw_gpa - fw.gfn * PAGE_SIZE, fw_size
        )
    fw_gfn = fw_gpa // PAGE_SIZE if fw_size else None
    lent = [
        (b.gfn * PAGE_SIZE, b.nr * PAGE_SIZE)
        for b in vm.user_bindings
        if b.lend and not (fw_gfn is not None and b.gfn <= fw_gfn < b.end)
    ]
    if lent:
        rpc.gunyah_rm_vm_set_demand_paging(rm, vm.vmid, lent)
    pages = sum(n for _, n in dtb.parcel.mem_entries)
    rpc.gunyah_rm_vm_set_address_layout(rm, vm.vmid, 0, start, pages)
    _init_and_start(vm, dtb)


def _share_before_load(vm, gpa: int, size: int):
    """The firmware parcel, shared while the VM is still NO_STATE. The driver
    undoes its ALLOC_VMID when this fails (DEALLOC_VMID, notifier off): the
    release of a NO_STATE VM makes no RM call, and a later START runs again."""
    try:
        return mem_android.gunyah_share_parcel(vm, gpa, size)
    except OSError:
        try:
            rpc.gunyah_rm_dealloc_vmid(vm.rm, vm.vmid)
        except OSError as e:
            vm.host.printk(f"gunyah_vm_mgr: gunyah_rm_dealloc_vmid for VM {vm.vmid}: {e}")
        vm.rm.gunyah_rm_notifier_unregister(vm.nb)
        raise


def _init_and_start(vm, dtb=None) -> None:
    rm = vm.rm
    try:
        rpc.gunyah_rm_vm_init(rm, vm.vmid)
    except OSError:
        vm.vm_status = VmStatus.INIT_FAILED
        raise
    vm.vm_status = VmStatus.READY
    for resource in rpc.gunyah_rm_get_hyp_resources(rm, vm.vmid):
        vm.offer(resource)
    if dtb is not None:
        mem_android.gunyah_parcel_to_paged(vm, dtb)
        vm.android_parcels.remove(dtb)
        if vm.auth == GH_RM_VM_AUTH_NONE:
            for reg, value in sorted(vm.boot_context.items()):
                reg_set, index = reg >> ack.GH_VM_BOOT_CONTEXT_REG_SHIFT & 0xFF, reg & 0xFF
                rpc.gunyah_rm_vm_set_boot_context(
                    rm, vm.vmid, reg_set, index, value, rpc.VM_SET_BOOT_CONTEXT_ANDROID
                )
    rpc.gunyah_rm_vm_start(rm, vm.vmid)


# release
def gunyah_vm_android_release(vm, dealloc, logged) -> None:
    """The generation's teardown: force-stop a running VM and wait for it, remove
    the functions, take every demand-paged page back (6.6), VM_RESET and wait for
    RESET where the state allows it, reclaim and unpin the parcels, free the
    regions or bindings, DEALLOC_VMID (``dealloc``) last. ``logged(vm, call,
    *args)`` makes each RM call, logging a failure instead of raising it."""
    rm = vm.rm
    with ExitStack() as later:
        if vm.vm_status > VmStatus.NO_STATE:
            later.callback(dealloc, vm)
        if vm.vm_status == VmStatus.RUNNING and logged(vm, rpc.gunyah_rm_vm_stop, rm, vm.vmid):
            vm.wait_status(lambda s: s != VmStatus.RUNNING)
        for f in list(vm.functions):
            f.instance.unbind()
        vm.functions.clear()
        if vm.profile.memory == "pinned":
            resettable = vm.vm_status not in (VmStatus.NO_STATE, VmStatus.LOAD, VmStatus.RESET)
        else:
            with vm.bindings_lock:
                if vm.tickets.get(vm_mgr_mem.ADDR_SPACE) is not None:
                    vm_mgr_mem.reclaim_range(vm, 0, 1 << 52)
            resettable = vm.vm_status in (VmStatus.EXITED, VmStatus.READY, VmStatus.INIT_FAILED)
        reset = resettable and logged(vm, rpc.gunyah_rm_vm_reset, rm, vm.vmid)
        if reset:
            vm.wait_status(lambda s: s == VmStatus.RESET)
        vm_mgr_mm.gh_vm_mem_reclaim_all(vm, logged)
        for user in vm.android_parcels:  # a parcel the VM took came back with its reset
            if (user.taken and reset) or logged(vm, rpc.gunyah_rm_mem_reclaim, rm, user.parcel):
                mem_android.unpin(vm, user)
        vm.android_parcels.clear()
        vm.user_bindings.clear()
