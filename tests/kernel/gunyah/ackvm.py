"""A VM built through an Android /dev/gunyah (``GH_`` UAPI) the way crosvm does it.

:func:`make_vm` assembles guest code and places it with a VM config DTB in
the VMM's own anonymous memory (lent or shared with the ioctl's label 0),
sets the DTB and, where the profile has it, the boot PC, and adds the vCPU
functions; the test starts the VM itself. Only the ioctl ABI is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import kernel
from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.aarch64 import assemble
from tests.kernel.gunyah.rmhelper import vm_config_dtb
from uapi.linux import gunyah_ack as ack

PROFILES = ("ack-6.1", "ack-6.6")
RAM_IPA, MMIO = 0x8000_0000, 0x1000_0000
RAM_SIZE, DTB_OFFSET, DTB_SIZE = 0x20_0000, 0x10000, 0x2000
RWX = ack.GH_MEM_ALLOW_READ | ack.GH_MEM_ALLOW_WRITE | ack.GH_MEM_ALLOW_EXEC
SYSTEM_OFF = """
    ldr x0, =0x84000008
    hvc #0
    b .
"""


def boot(uapi: str, **kwargs):
    return kernel.boot(uapi=uapi, **kwargs)


def anonymous(host, size: int):
    """A fresh anonymous mapping of the process and its user address."""
    mapping = host.mmap(-1, size, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    return mapping, host.user_address(mapping)


def region(host, vm, label, gpa, size, uaddr, flags=RWX, lend=False):
    fields = {
        "label": label,
        "flags": flags,
        "guest_phys_addr": gpa,
        "memory_size": size,
        "userspace_addr": uaddr,
    }
    arg = ack.ffi.new("struct gh_userspace_memory_region *", fields)
    request = ack.GH_VM_ANDROID_LEND_USER_MEM if lend else ack.GH_VM_SET_USER_MEM_REGION
    return host.ioctl(vm, request, arg)


def set_dtb(host, vm, gpa, size):
    arg = ack.ffi.new("struct gh_vm_dtb_config *", {"guest_phys_addr": gpa, "size": size})
    return host.ioctl(vm, ack.GH_VM_SET_DTB_CONFIG, arg)


def set_fw(host, vm, gpa, size):
    arg = ack.ffi.new("struct gh_vm_firmware_config *", {"guest_phys_addr": gpa, "size": size})
    return host.ioctl(vm, ack.GH_VM_ANDROID_SET_FW_CONFIG, arg)


def boot_reg(host, vm, reg_set, index, value):
    fields = {"reg": ack.GH_VM_BOOT_CONTEXT_REG(reg_set, index), "value": value}
    return host.ioctl(
        vm, ack.GH_VM_SET_BOOT_CONTEXT, ack.ffi.new("struct gh_vm_boot_context *", fields)
    )


def fn_desc(fn_type, arg_struct=None, arg_size=None):
    """A gh_fn_desc pointing at ``arg_struct`` (kept alive by the returned tuple)."""
    if arg_size is None:
        arg_size = ack.ffi.sizeof(arg_struct[0]) if arg_struct is not None else 0
    addr = int(ack.ffi.cast("uintptr_t", arg_struct)) if arg_struct is not None else 0
    fields = {"type": fn_type, "arg_size": arg_size, "arg": addr}
    return ack.ffi.new("struct gh_fn_desc *", fields), arg_struct


def add_fn(host, vm, fn_type, ctype, fields):
    desc, _keep = fn_desc(fn_type, ack.ffi.new(f"{ctype} *", fields))
    return host.ioctl(vm, ack.GH_VM_ADD_FUNCTION, desc)


def remove_fn(host, vm, fn_type, ctype=None, fields=None, arg_size=None):
    arg = ack.ffi.new(f"{ctype} *", fields) if ctype is not None else None
    desc, _keep = fn_desc(fn_type, arg, arg_size)
    return host.ioctl(vm, ack.GH_VM_REMOVE_FUNCTION, desc)


def add_vcpu(host, vm, vcpu_id):
    return add_fn(host, vm, ack.GH_FN_VCPU, "struct gh_fn_vcpu_arg", {"id": vcpu_id})


@dataclass
class AckVm:
    host: object
    dev: int
    vm: int
    ram: object  # the VMM's mapping of guest RAM
    vcpus: list[int]
    maps: list = field(default_factory=list)

    def run_page(self, index=0):
        """The vCPU's run page with the Android layout (no resume_action)."""
        page = self.host.mmap(self.vcpus[index], 4096)
        self.maps.append(page)
        return ack.ffi.from_buffer("struct gh_vcpu_run *", page)

    def start(self):
        return self.host.ioctl(self.vm, ack.GH_VM_START, 0)

    def run(self, index=0):
        return self.host.ioctl(self.vcpus[index], ack.GH_VCPU_RUN, 0)

    def close(self):
        for fd in (self.vm, *self.vcpus, self.dev):
            self.host.close(fd)
        for mapping in [*self.maps, self.ram]:
            self.host.munmap(mapping)


def make_vm(host, source, vcpus=1, lend=True, doorbells=(), dtb_size=DTB_SIZE) -> AckVm:
    """A VM with ``source`` (assembly) at RAM_IPA in the VMM's anonymous memory
    (lent, or shared), its DTB at RAM_IPA+DTB_OFFSET, the boot PC where the
    profile has SET_BOOT_CONTEXT, and ``vcpus`` vCPU functions; not started."""
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, ack.GH_CREATE_VM, 0)
    ram, uaddr = anonymous(host, RAM_SIZE)
    code, blob = assemble(source), vm_config_dtb(vcpus, doorbells)
    ram[0 : len(code)] = code
    ram[DTB_OFFSET : DTB_OFFSET + len(blob)] = blob
    region(host, vm, 0, RAM_IPA, RAM_SIZE, uaddr, lend=lend)
    set_dtb(host, vm, RAM_IPA + DTB_OFFSET, dtb_size)
    if host.gunyah.profile.boot_context:
        boot_reg(host, vm, ack.REG_SET_PC, 0, RAM_IPA)
    fds = [add_vcpu(host, vm, i) for i in range(vcpus)]
    return AckVm(host, dev, vm, ram, fds)
