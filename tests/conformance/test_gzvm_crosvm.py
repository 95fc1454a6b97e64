"""Story: crosvm's call sequence on /dev/gzvm (spec §4.1), the calls the driver refuses included.

crosvm checks PROTECTED_VM and MTE through a pointer and VM_IPA_SIZE by
value (EFAULT: it falls back to 40 bits), registers its RAM with the
GUEST_MEM purpose, asks the pvmfw size, refuses to enable MTE (EINVAL),
creates vCPUs with a private 264-byte run buffer, sets PSTATE, PC and X0,
creates the distributor and one redistributor per vCPU below it, sets the
DTB, binds irqfds (edge, and level with RESAMPLE, whose resample fd the
driver ignores) and an ioeventfd, adds a region later with flags 0, fails
to remove one (size 0 / address 0: EFAULT), finds GET_ONE_REG
unsupported, and runs until the guest's PSCI SYSTEM_OFF.
"""

import errno
import os

import pytest

from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.aarch64 import assemble
from tests.gzvmvm import (
    GICD,
    GICR_SIZE,
    MMIO,
    REG_PC,
    REG_X0,
    addr,
    core_reg,
    set_one_reg,
    set_region,
    user_address,
)
from uapi.linux import gzvm as gz

RAM_IPA, RAM_SIZE = 0x8000_0000, 8 << 20
FDT_IPA = RAM_IPA + RAM_SIZE - 0x20_0000
REG_PSTATE = core_reg(33)
GZVM_CAP_ARM_MTE = 0  # crosvm's value for a cap the driver does not know
GUEST_MEM = 1  # GZVM_USER_MEM_REGION_GUEST_MEM of crosvm's bindings
NR_VCPUS = 2
GUEST = f"""
    ldr x9, ={MMIO:#x}
    str x0, [x9]                    // the FDT address crosvm put in X0
    ldr x0, =0x84000008             // PSCI SYSTEM_OFF
    hvc #0
    b .
"""


def check_extension(host, fd, cap):
    box = gz.ffi.new("uint64_t *", cap)
    host.ioctl(fd, gz.GZVM_CHECK_EXTENSION, box)
    return box[0]


def refused(err, fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno == err


def test_crosvm_sequence(gzhost):
    host = gzhost
    free = host.gzvm.mm.free_bytes
    dev = host.open("/dev/gzvm", os.O_RDWR | os.O_CLOEXEC)
    vm = host.ioctl(dev, gz.GZVM_CREATE_VM, 0)
    assert check_extension(host, vm, gz.GZVM_CAP_PROTECTED_VM) == 1
    refused(errno.EOPNOTSUPP, check_extension, host, vm, GZVM_CAP_ARM_MTE)
    refused(errno.EFAULT, host.ioctl, vm, gz.GZVM_CHECK_EXTENSION, gz.GZVM_CAP_VM_GPA_SIZE)

    ram = host.mmap(-1, RAM_SIZE, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    code = assemble(GUEST)
    ram[: len(code)] = code
    assert set_region(host, vm, 0, RAM_IPA, RAM_SIZE, user_address(ram), GUEST_MEM) == 0

    cap = gz.ffi.new("struct gzvm_enable_cap *", {"cap": gz.GZVM_CAP_PROTECTED_VM})
    cap.args[0], cap.args[1] = gz.GZVM_CAP_PVM_GET_PVMFW_SIZE, 0xDEAD
    assert host.ioctl(vm, gz.GZVM_ENABLE_CAP, cap) == 0
    assert cap.args[1] == 0  # EL2's answer copied back: this model loads no pvmfw
    mte = gz.ffi.new("struct gzvm_enable_cap *", {"cap": GZVM_CAP_ARM_MTE})
    refused(errno.EINVAL, host.ioctl, vm, gz.GZVM_ENABLE_CAP, mte)

    vcpus = [host.ioctl(vm, gz.GZVM_CREATE_VCPU, i) for i in range(NR_VCPUS)]
    runs = [gz.ffi.new("struct gzvm_vcpu_run *") for _ in vcpus]
    set_one_reg(host, vcpus[0], REG_PSTATE, 0x3C5)  # EL1h, DAIF masked
    set_one_reg(host, vcpus[0], REG_PC, RAM_IPA)
    set_one_reg(host, vcpus[0], REG_X0, FDT_IPA)

    for dev_type, base, size in (
        (gz.GZVM_DEV_TYPE_ARM_VGIC_V3_DIST, GICD, 0x1_0000),
        (gz.GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST, GICD - GICR_SIZE * NR_VCPUS, GICR_SIZE),
    ):
        device = gz.ffi.new("struct gzvm_create_device *")
        device.dev_type, device.dev_addr, device.dev_reg_size = dev_type, base, size
        assert host.ioctl(vm, gz.GZVM_CREATE_DEVICE, device) == 0
    dtb = gz.ffi.new("struct gzvm_dtb_config *", [FDT_IPA, 0x1000])
    assert host.ioctl(vm, gz.GZVM_SET_DTB_CONFIG, dtb) == 0

    edge, level, resample, kick = (host.eventfd() for _ in range(4))
    for fd, gsi, flags, resamplefd in (
        (edge, 1, 0, 0),
        (level, 2, gz.GZVM_IRQFD_FLAG_RESAMPLE, resample),
    ):
        irqfd = gz.ffi.new("struct gzvm_irqfd *", [fd, gsi, flags, resamplefd])
        assert host.ioctl(vm, gz.GZVM_IRQFD, irqfd) == 0
    ioevent = gz.ffi.new("struct gzvm_ioeventfd *", [0, MMIO + 0x1000, 4, kick, 0])
    assert host.ioctl(vm, gz.GZVM_IOEVENTFD, ioevent) == 0
    level_irq = gz.ffi.new("struct gzvm_irq_level *", {"irq": 3, "level": 1})
    assert host.ioctl(vm, gz.GZVM_IRQ_LINE, level_irq) == 0

    extra = host.mmap(-1, 0x10_0000, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    assert set_region(host, vm, 1, 0x1_0000_0000, 0x10_0000, user_address(extra)) == 0
    refused(errno.EFAULT, set_region, host, vm, 1, 0, 0, 0)  # remove_memory_region

    reg = gz.ffi.new("struct gzvm_one_reg *", [REG_PC, addr(gz.ffi.new("uint64_t *"))])
    refused(errno.EOPNOTSUPP, host.ioctl, vcpus[0], gz.GZVM_GET_ONE_REG, reg)

    run = runs[0]
    assert host.ioctl(vcpus[0], gz.GZVM_RUN, run) == 0
    assert run.exit_reason == gz.GZVM_EXIT_MMIO
    assert int.from_bytes(bytes(run.mmio.data), "little") == FDT_IPA
    assert host.ioctl(vcpus[0], gz.GZVM_RUN, run) == 0
    assert run.exit_reason == gz.GZVM_EXIT_SYSTEM_EVENT
    assert run.system_event.type == gz.GZVM_SYSTEM_EVENT_SHUTDOWN

    irqfd = gz.ffi.new("struct gzvm_irqfd *", [edge, 1, gz.GZVM_IRQFD_FLAG_DEASSIGN, 0])
    assert host.ioctl(vm, gz.GZVM_IRQFD, irqfd) == 0
    for fd in (*vcpus, vm, dev):
        host.close(fd)
    for fd in (edge, level, resample, kick):
        os.close(fd)
    host.munmap(ram)
    host.munmap(extra)
    assert host.mm.pinned == {} and host.gzvm.mm.free_bytes == free
    assert host.gzvm.firmware.geniezone.vms == {}
