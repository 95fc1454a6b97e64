"""The VM manager (drivers/virt/gunyah/vm_mgr.c): /dev/gunyah and VM fds.

/dev/gunyah: GUNYAH_CREATE_VM (the argument must be 0, else EINVAL; no RM
call happens yet) and GUNYAH_CREATE_GUEST_MEM. VM fds: SET_DTB_CONFIG and
SET_BOOT_CONTEXT store what START will use; any other request is ENOTTY.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass, field

from kernel.fs import File, FileOperations
from kernel.gunyah.guest_memfd import gunyah_guest_mem_create
from kernel.uaccess import copy_from_user
from uapi.linux import gunyah as gh

GUNYAH_VMID_INVAL = 0xFFFF


class VmStatus:
    NO_STATE, LOAD, READY, RUNNING, INIT_FAILED, EXITED, RESET = 0, 5, 2, 3, 8, 9, 11


@dataclass
class GunyahVm:
    host: object
    vmid: int = GUNYAH_VMID_INVAL
    vm_status: int = VmStatus.NO_STATE
    dtb: tuple[int, int] | None = None
    boot_context: dict[int, int] = field(default_factory=dict)
    status_lock: threading.RLock = field(default_factory=threading.RLock)


def _struct(ctype: str, arg):
    data = bytearray(copy_from_user(arg, gh.ffi.sizeof(ctype)))
    return gh.ffi.from_buffer(f"{ctype} *", data)


class VmFops(FileOperations):
    def ioctl(self, file: File, cmd: int, arg) -> int:
        vm: GunyahVm = file.private
        if cmd == gh.GUNYAH_VM_SET_DTB_CONFIG:
            config = _struct("struct gunyah_vm_dtb_config", arg)
            if config.guest_phys_addr + config.size >= 1 << 64:
                raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))
            vm.dtb = (config.guest_phys_addr, config.size)
            return 0
        if cmd == gh.GUNYAH_VM_SET_BOOT_CONTEXT:
            return gunyah_vm_set_boot_context(vm, _struct("struct gunyah_vm_boot_context", arg))
        return super().ioctl(file, cmd, arg)


def gunyah_vm_set_boot_context(vm: GunyahVm, ctx) -> int:
    """Store one boot register; EINVAL for a bad set or index, or after START.

    Unlike v16, a value of 0 is kept (v16 stores the value as an xarray
    entry, so 0 erases it): the intended behaviour, listed in Documentation.
    """
    reg_set, index = ctx.reg >> gh.GUNYAH_VM_BOOT_CONTEXT_REG_SHIFT & 0xFF, ctx.reg & 0xFF
    limits = {gh.REG_SET_X: 31, gh.REG_SET_PC: 0, gh.REG_SET_SP: 2}
    if reg_set not in limits or index > limits[reg_set]:
        raise OSError(errno.EINVAL, "boot context register")
    with vm.status_lock:
        if vm.vm_status != VmStatus.NO_STATE:
            raise OSError(errno.EINVAL, "boot context after start")
        vm.boot_context[ctx.reg] = ctx.value
    return 0


VM_FOPS = VmFops()


class GunyahDevFops(FileOperations):
    """/dev/gunyah."""

    def ioctl(self, file: File, cmd: int, arg) -> int:
        host = file.private
        if cmd == gh.GUNYAH_CREATE_VM:
            if arg != 0:
                raise OSError(errno.EINVAL, "GUNYAH_CREATE_VM takes 0")
            return host.fdtable.install(File(VM_FOPS, GunyahVm(host), "gunyah-vm"))
        if cmd == gh.GUNYAH_CREATE_GUEST_MEM:
            return gunyah_guest_mem_create(host, arg)
        return super().ioctl(file, cmd, arg)


GUNYAH_DEV_FOPS = GunyahDevFops()
