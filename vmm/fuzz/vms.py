"""VMs built right, through the ioctl ABI only, for the campaigns and their reproducers.

:func:`gunyah_vm` and :func:`gzvm_vm` build one small VM each the way a VMM
does, up to the vCPUs (not started, not run). Their guest code is encoded
here, so a plain ``pip install`` needs no assembler:

- ``POWER_OFF`` (Gunyah): PSCI SYSTEM_OFF at once.
- ``STORE_THEN_OFF`` (GenieZone): three stores to ``MMIO`` (three MMIO
  exits, x1 = 0, 1, 2), then PSCI SYSTEM_OFF.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from uapi.linux import gunyah as gh
from uapi.linux import gzvm as gz
from vmm.vm_config import VmLayout, build_dtb


def _code(*words: int) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


MOV_X0_PSCI_SYSTEM_OFF = (0xD280_0100, 0xF2B0_8000)  # movz x0, #8; movk x0, #0x8400, lsl #16
HVC_0, B_SELF = 0xD400_0002, 0x1400_0000
POWER_OFF = _code(*MOV_X0_PSCI_SYSTEM_OFF, HVC_0, B_SELF)
STORE_THEN_OFF = _code(
    0xD2A2_0009,  # movz x9, #0x1000, lsl #16 (MMIO)
    0xF900_0121,  # 1: str x1, [x9]
    0x9100_0421,  # add x1, x1, #1
    0xF100_0C3F,  # cmp x1, #3
    0x54FF_FFA1,  # b.ne 1b
    *MOV_X0_PSCI_SYSTEM_OFF,
    HVC_0,
    B_SELF,
)

RAM_IPA, SHARED_IPA, MMIO = 0x8000_0000, 0x9000_0000, 0x1000_0000
RWX_LEND = gh.GUNYAH_MEM_FORCE_LEND | gh.GUNYAH_MEM_ALLOW_RWX
RW_SHARE = gh.GUNYAH_MEM_FORCE_SHARE | gh.GUNYAH_MEM_ALLOW_READ | gh.GUNYAH_MEM_ALLOW_WRITE
GH_RAM_SIZE, DTB_OFFSET, DTB_SIZE = 0x20_0000, 0x10000, 0x2000
GZ_RAM_SIZE = 4 << 20
GICD, GICR_SIZE = 0x3FFF_0000, 0x2_0000
PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE
ANONYMOUS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS


@dataclass
class GunyahVm:
    """The fds of a Gunyah VM: its /dev/gunyah, the VM, RAM and shared guest_memfds, vCPUs."""

    dev: int
    vm: int
    ram: int
    shared: int
    vcpus: list[int]

    def fds(self) -> list[int]:
        return [self.dev, self.vm, self.ram, self.shared, *self.vcpus]


def gunyah_vm(host) -> GunyahVm:
    """POWER_OFF at RAM_IPA (lent, RWX) with the VM config DT after it, a shared
    page at SHARED_IPA, PC = RAM_IPA, one vCPU."""
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    ram, shared = _guest_mem(host, dev, GH_RAM_SIZE), _guest_mem(host, dev, 0x1000)
    blob = build_dtb(VmLayout(RAM_IPA, MMIO, 1), "fuzz")
    image = host.mmap(ram, DTB_OFFSET + max(DTB_SIZE, len(blob)))
    image[: len(POWER_OFF)] = POWER_OFF
    image[DTB_OFFSET : DTB_OFFSET + len(blob)] = blob
    host.munmap(image)
    for fd, ipa, size, flags in (
        (ram, RAM_IPA, GH_RAM_SIZE, RWX_LEND),
        (shared, SHARED_IPA, 0x1000, RW_SHARE),
    ):
        args = {"guest_addr": ipa, "flags": flags, "guest_mem_fd": fd, "size": size}
        host.ioctl(vm, gh.GUNYAH_VM_MAP_MEM, gh.ffi.new("struct gunyah_map_mem_args *", args))
    dtb = {"guest_phys_addr": RAM_IPA + DTB_OFFSET, "size": DTB_SIZE}
    host.ioctl(vm, gh.GUNYAH_VM_SET_DTB_CONFIG, gh.ffi.new("struct gunyah_vm_dtb_config *", dtb))
    pc = {"reg": gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_PC, 0), "value": RAM_IPA}
    host.ioctl(vm, gh.GUNYAH_VM_SET_BOOT_CONTEXT, gh.ffi.new("struct gunyah_vm_boot_context *", pc))
    vcpu = gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": 0})
    desc = {"type": gh.GUNYAH_FN_VCPU, "arg_size": gh.ffi.sizeof(vcpu[0]), "arg": _addr(gh, vcpu)}
    fn = host.ioctl(vm, gh.GUNYAH_VM_ADD_FUNCTION, gh.ffi.new("struct gunyah_fn_desc *", desc))
    return GunyahVm(dev, vm, ram, shared, [fn])


def _guest_mem(host, dev: int, size: int) -> int:
    args = gh.ffi.new("struct gunyah_create_mem_args *", {"size": size, "flags": 0})
    return host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, args)


@dataclass
class GzvmVm:
    """The fds of a GenieZone VM, its RAM (the VMM's mapping) and its vCPU's run struct."""

    dev: int
    vm: int
    ram: object
    vcpus: list[int]
    run: object

    def fds(self) -> list[int]:
        return [self.dev, self.vm, *self.vcpus]


def gzvm_vm(host) -> GzvmVm:
    """STORE_THEN_OFF at RAM_IPA in a memslot of anonymous memory, PC = RAM_IPA,
    x0 = 0, one vCPU, the GICv3 distributor and redistributor."""
    dev = host.open("/dev/gzvm")
    vm = host.ioctl(dev, gz.GZVM_CREATE_VM, 0)
    ram = host.mmap(-1, GZ_RAM_SIZE, PROT_RW, ANONYMOUS)
    ram[: len(STORE_THEN_OFF)] = STORE_THEN_OFF
    region = [0, 0, RAM_IPA, GZ_RAM_SIZE, user_address(ram)]
    region = gz.ffi.new("struct gzvm_userspace_memory_region *", region)
    host.ioctl(vm, gz.GZVM_SET_USER_MEMORY_REGION, region)
    vcpu = host.ioctl(vm, gz.GZVM_CREATE_VCPU, 0)
    for reg, value in ((REG_PC, RAM_IPA), (REG_X0, 0)):
        box = gz.ffi.new("uint64_t *", value)
        one = gz.ffi.new("struct gzvm_one_reg *", [reg, _addr(gz, box)])
        host.ioctl(vcpu, gz.GZVM_SET_ONE_REG, one)
    for dev_type, base, size in (
        (gz.GZVM_DEV_TYPE_ARM_VGIC_V3_DIST, GICD, 0x1_0000),
        (gz.GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST, GICD - GICR_SIZE, GICR_SIZE),
    ):
        gic = {"dev_type": dev_type, "dev_addr": base, "dev_reg_size": size}
        host.ioctl(vm, gz.GZVM_CREATE_DEVICE, gz.ffi.new("struct gzvm_create_device *", gic))
    return GzvmVm(dev, vm, ram, [vcpu], gz.ffi.new("struct gzvm_vcpu_run *"))


def core_reg(index: int) -> int:
    """The ONE_REG id of 64-bit core register ``index`` (X0..X30 0..30, SP 31, PC 32)."""
    return gz.GZVM_REG_ARCH_ARM64 | gz.GZVM_REG_SIZE_U64 | gz.GZVM_REG_TYPE_GENERAL2 | index * 2


REG_X0, REG_PC = core_reg(0), core_reg(32)


def _addr(module, cdata) -> int:
    return int(module.ffi.cast("uintptr_t", cdata))


def user_address(mapping) -> int:
    """The user address of a mapping ``Host.mmap`` returned."""
    return _addr(gz, gz.ffi.from_buffer(mapping))
