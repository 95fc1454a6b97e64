"""A small GenieZone VM for the tests, built only through /dev/gzvm's ioctls.

Guest RAM is an anonymous mapping of the VMM (a memslot at RAM_IPA) with
the guest code at its start; anything outside the memslot is MMIO.
"""

from dataclasses import dataclass

from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.aarch64 import assemble
from uapi.linux import gzvm as gz

RAM_IPA = 0x8000_0000
RAM_SIZE = 4 << 20
MMIO = 0x1000_0000
GICD, GICR_SIZE = 0x3FFF_0000, 0x2_0000
PSCI_SYSTEM_OFF = 0x8400_0008
PROT_RW = 3


def core_reg(index: int) -> int:
    """The ONE_REG id of 64-bit core register ``index`` (X0..X30 0..30, SP 31, PC 32)."""
    return gz.GZVM_REG_ARCH_ARM64 | gz.GZVM_REG_SIZE_U64 | gz.GZVM_REG_TYPE_GENERAL2 | index * 2


REG_X0, REG_PC = core_reg(0), core_reg(32)


def addr(cdata) -> int:
    return int(gz.ffi.cast("uintptr_t", cdata))


def user_address(mapping) -> int:
    return addr(gz.ffi.from_buffer(mapping))


def set_one_reg(host, vcpu: int, reg_id: int, value: int) -> None:
    box = gz.ffi.new("uint64_t *", value)
    host.ioctl(vcpu, gz.GZVM_SET_ONE_REG, gz.ffi.new("struct gzvm_one_reg *", [reg_id, addr(box)]))


def set_region(host, vm: int, slot: int, gpa: int, size: int, uaddr: int, flags: int = 0):
    region = gz.ffi.new("struct gzvm_userspace_memory_region *", [slot, flags, gpa, size, uaddr])
    return host.ioctl(vm, gz.GZVM_SET_USER_MEMORY_REGION, region)


def create_gic(host, vm: int, nr_vcpus: int = 1) -> None:
    for dev_type, base, size in (
        (gz.GZVM_DEV_TYPE_ARM_VGIC_V3_DIST, GICD, 0x1_0000),
        (gz.GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST, GICD - GICR_SIZE * nr_vcpus, GICR_SIZE),
    ):
        dev = gz.ffi.new("struct gzvm_create_device *", {"dev_type": dev_type})
        dev.dev_addr, dev.dev_reg_size = base, size
        host.ioctl(vm, gz.GZVM_CREATE_DEVICE, dev)


@dataclass
class GzVm:
    dev: int
    vm: int
    ram: object
    vcpus: list[int]
    run: object  # the VMM's struct gzvm_vcpu_run

    def go(self, host, vcpu: int = 0) -> int:
        assert host.ioctl(self.vcpus[vcpu], gz.GZVM_RUN, self.run) == 0
        return self.run.exit_reason

    def close(self, host) -> None:
        for fd in (self.vm, *self.vcpus, self.dev):
            host.close(fd)
        host.munmap(self.ram)


def make_vm(host, source: str, nr_vcpus: int = 1, x0: int = 0) -> GzVm:
    dev = host.open("/dev/gzvm")
    vm = host.ioctl(dev, gz.GZVM_CREATE_VM, 0)
    ram = host.mmap(-1, RAM_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
    code = assemble(source)
    ram[: len(code)] = code
    set_region(host, vm, 0, RAM_IPA, RAM_SIZE, user_address(ram))
    vcpus = [host.ioctl(vm, gz.GZVM_CREATE_VCPU, i) for i in range(nr_vcpus)]
    set_one_reg(host, vcpus[0], REG_PC, RAM_IPA)
    set_one_reg(host, vcpus[0], REG_X0, x0)
    create_gic(host, vm, nr_vcpus)
    return GzVm(dev, vm, ram, vcpus, gz.ffi.new("struct gzvm_vcpu_run *"))
