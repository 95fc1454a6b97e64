"""The ioctl x state errno table of spec §3 for /dev/gzvm, VM and vCPU fds, row by row.

Each row is one call on a fresh machine; EL2 answers with its own codes
and keeps working, so every row ends with the VM still usable and, once
closed, nothing left behind.
"""

import errno
import os

import pytest

from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.gzvmvm import (
    RAM_IPA,
    REG_PC,
    addr,
    make_vm,
    set_one_reg,
    set_region,
    user_address,
)
from uapi.linux import gzvm as gz

GUEST = "b ."
BAD = 8  # an address no process maps


def fails(err, fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno == err, os.strerror(e.value.errno)


@pytest.fixture
def t(gzhost):
    free = gzhost.gzvm.mm.free_bytes
    t = make_vm(gzhost, GUEST)
    yield t
    t.close(gzhost)
    assert gzhost.mm.pinned == {} and gzhost.gzvm.vm_list == []
    assert gzhost.gzvm.mm.free_bytes == free
    el2 = gzhost.gzvm.firmware.geniezone
    assert el2.vms == {} and el2.owners == {} and el2.shared == set()


def u64(value=0):
    return gz.ffi.new("uint64_t *", value)


# /dev/gzvm
def test_dev_check_extension(gzhost, t):
    for cap, answer in ((gz.GZVM_CAP_PROTECTED_VM, 1), (gz.GZVM_CAP_VM_GPA_SIZE, 48)):
        box = u64(cap)
        assert gzhost.ioctl(t.dev, gz.GZVM_CHECK_EXTENSION, box) == 0
        assert box[0] == answer
    fails(errno.EOPNOTSUPP, gzhost.ioctl, t.dev, gz.GZVM_CHECK_EXTENSION, u64(0))  # MTE
    fails(errno.EINVAL, gzhost.ioctl, t.dev, gz.GZVM_CHECK_EXTENSION, 0)
    fails(errno.EFAULT, gzhost.ioctl, t.dev, gz.GZVM_CHECK_EXTENSION, gz.GZVM_CAP_VM_GPA_SIZE)


def test_dev_other_requests_are_enotty_and_nothing_maps(gzhost, t):
    for cmd in (gz.GZVM_RUN, gz.GZVM_CREATE_VCPU, 0x9200):
        fails(errno.ENOTTY, gzhost.ioctl, t.dev, cmd, 0)
    for fd in (t.dev, t.vm, t.vcpus[0]):
        fails(errno.ENODEV, gzhost.mmap, fd, 4096)


def test_gunyah_is_not_there(gzhost):
    fails(errno.ENOENT, gzhost.open, "/dev/gunyah")
    fails(errno.ENOENT, gzhost.open, "/sys/hypervisor/type", os.O_RDONLY)


# VM fd
def test_vm_check_extension_by_value_is_efault(gzhost, t):
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_CHECK_EXTENSION, gz.GZVM_CAP_VM_GPA_SIZE)
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_CHECK_EXTENSION, 0)
    box = u64(gz.GZVM_CAP_PROTECTED_VM)
    assert gzhost.ioctl(t.vm, gz.GZVM_CHECK_EXTENSION, box) == 0 and box[0] == 1


def test_vm_unknown_and_set_memory_region_are_enotty(gzhost, t):
    region = gz.ffi.new("struct gzvm_memory_region *")
    fails(errno.ENOTTY, gzhost.ioctl, t.vm, gz.GZVM_SET_MEMORY_REGION, region)
    fails(errno.ENOTTY, gzhost.ioctl, t.vm, gz.GZVM_RUN, 0)


@pytest.mark.parametrize("cpuid", [8, 255, -1])
def test_create_vcpu_id_out_of_range(gzhost, t, cpuid):
    fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_CREATE_VCPU, cpuid)


@pytest.mark.parametrize(
    ("slot", "gpa", "size", "err"),
    [
        (10, RAM_IPA, 0x1000, errno.EINVAL),
        (1, RAM_IPA + 1, 0x1000, errno.EINVAL),
        (1, RAM_IPA, 0x1001, errno.EINVAL),
        (1, (1 << 64) - 0x1000, 0x2000, errno.EINVAL),
        (1, 0, 1 << 43, errno.EINVAL),  # 2^31 pages
    ],
)
def test_set_user_memory_region_checks(gzhost, t, slot, gpa, size, err):
    fails(err, set_region, gzhost, t.vm, slot, gpa, size, user_address(t.ram))


def test_set_user_memory_region_needs_exactly_one_vma(gzhost, t):
    fails(errno.EFAULT, set_region, gzhost, t.vm, 1, 0x1_0000_0000, 0x1000, BAD)
    fails(errno.EFAULT, set_region, gzhost, t.vm, 1, 0, 0, 0)  # crosvm's remove_memory_region
    other = gzhost.mmap(-1, 0x3000, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    fails(errno.EINVAL, set_region, gzhost, t.vm, 1, 0x1_0000_0000, 0x2000, user_address(other))
    inner = user_address(other) + 0x1000  # not the VMA's start: allowed
    assert set_region(gzhost, t.vm, 1, 0x1_0000_0000, 0x3000, inner) == 0
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_SET_USER_MEMORY_REGION, BAD)
    gzhost.munmap(other)


def test_set_user_memory_region_el2_refusal_is_efault(gzhost, t):
    gzhost.gzvm.hvc.faults["MEMREGION_PURPOSE"] = -8
    fails(errno.EFAULT, set_region, gzhost, t.vm, 0, RAM_IPA, 4 << 20, user_address(t.ram))
    gzhost.gzvm.hvc.faults = {"SET_MEMREGION": -5}
    fails(errno.EFAULT, set_region, gzhost, t.vm, 0, RAM_IPA, 4 << 20, user_address(t.ram))
    gzhost.gzvm.hvc.faults = {}


def test_enable_cap(gzhost, t):
    cap = gz.ffi.new("struct gzvm_enable_cap *", {"cap": 0})  # crosvm's MTE
    fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_ENABLE_CAP, cap)
    cap.cap, cap.args[0] = gz.GZVM_CAP_PROTECTED_VM, 7
    fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_ENABLE_CAP, cap)
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_ENABLE_CAP, BAD)
    cap.args[0] = gz.GZVM_CAP_PVM_GET_PVMFW_SIZE
    gzhost.gzvm.hvc.faults["ENABLE_CAP"] = -24
    fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_ENABLE_CAP, cap)
    gzhost.gzvm.hvc.faults = {}
    assert gzhost.ioctl(t.vm, gz.GZVM_ENABLE_CAP, cap) == 0  # args[1] written back


def test_irq_line(gzhost, t):
    level = gz.ffi.new("struct gzvm_irq_level *", {"irq": 5, "level": 1})
    assert gzhost.ioctl(t.vm, gz.GZVM_IRQ_LINE, level) == 0
    level.irq = 5 | 1 << gz.GZVM_IRQ_VCPU2_SHIFT | 2 << gz.GZVM_IRQ_TYPE_SHIFT  # ignored
    assert gzhost.ioctl(t.vm, gz.GZVM_IRQ_LINE, level) == 0
    level.irq = 0xFFFF  # no such SPI: EL2 refuses
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_IRQ_LINE, level)
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_IRQ_LINE, BAD)


def test_create_device_attributes(gzhost, t):
    dev = gz.ffi.new("struct gzvm_create_device *")
    dev.dev_type, dev.attr_addr, dev.attr_size = 0, addr(u64()), 4097
    fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_CREATE_DEVICE, dev)
    dev.attr_addr, dev.attr_size = BAD, 8
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_CREATE_DEVICE, dev)
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_CREATE_DEVICE, BAD)


def test_set_dtb_config(gzhost, t):
    fails(errno.EFAULT, gzhost.ioctl, t.vm, gz.GZVM_SET_DTB_CONFIG, BAD)


def irqfd(fd, gsi=1, flags=0, pad=0):
    args = gz.ffi.new("struct gzvm_irqfd *", {"fd": fd, "gsi": gsi, "flags": flags})
    args.pad[3] = pad
    return args


def test_irqfd_rules(gzhost, t):
    efd = gzhost.eventfd()
    fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_IRQFD, irqfd(efd, flags=4))
    fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_IRQFD, irqfd(efd, pad=1))
    fails(errno.EBADF, gzhost.ioctl, t.vm, gz.GZVM_IRQFD, irqfd(0x7FFF_FFF0))
    r, w = os.pipe()
    fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_IRQFD, irqfd(r))
    resample = gz.GZVM_IRQFD_FLAG_RESAMPLE
    assert gzhost.ioctl(t.vm, gz.GZVM_IRQFD, irqfd(efd, flags=resample)) == 0
    dup = os.dup(efd)  # the same eventfd through another descriptor
    fails(errno.EBUSY, gzhost.ioctl, t.vm, gz.GZVM_IRQFD, irqfd(dup, gsi=2))
    deassign = gz.GZVM_IRQFD_FLAG_DEASSIGN
    assert gzhost.ioctl(t.vm, gz.GZVM_IRQFD, irqfd(dup, flags=deassign)) == 0
    assert gzhost.ioctl(t.vm, gz.GZVM_IRQFD, irqfd(dup, gsi=2)) == 0  # free again
    for fd in (r, w, dup, efd):
        os.close(fd)


def ioeventfd(fd, address=0x1000_0000, length=4, flags=0, datamatch=0):
    return gz.ffi.new("struct gzvm_ioeventfd *", [datamatch, address, length, fd, flags])


def test_ioeventfd_rules(gzhost, t):
    efd = gzhost.eventfd()
    dm, pio = gz.GZVM_IOEVENTFD_FLAG_DATAMATCH, gz.GZVM_IOEVENTFD_FLAG_PIO
    for bad in (
        ioeventfd(efd, length=3),
        ioeventfd(efd, address=(1 << 64) - 2),
        ioeventfd(efd, flags=8),
        ioeventfd(efd, length=0, flags=dm),
        ioeventfd(efd, flags=pio),
    ):
        fails(errno.EINVAL, gzhost.ioctl, t.vm, gz.GZVM_IOEVENTFD, bad)
    fails(errno.EBADF, gzhost.ioctl, t.vm, gz.GZVM_IOEVENTFD, ioeventfd(0x7FFF_FFF0))
    assert gzhost.ioctl(t.vm, gz.GZVM_IOEVENTFD, ioeventfd(efd, flags=dm, datamatch=1)) == 0
    # the driver's collision check: the same address is inside the first entry's range,
    # so even another datamatch value there is EEXIST
    fails(
        errno.EEXIST, gzhost.ioctl, t.vm, gz.GZVM_IOEVENTFD, ioeventfd(efd, flags=dm, datamatch=2)
    )
    assert gzhost.ioctl(t.vm, gz.GZVM_IOEVENTFD, ioeventfd(efd, 0x1000_0004, 4)) == 0
    fails(
        errno.EEXIST, gzhost.ioctl, t.vm, gz.GZVM_IOEVENTFD, ioeventfd(efd, flags=dm, datamatch=1)
    )
    fails(errno.EEXIST, gzhost.ioctl, t.vm, gz.GZVM_IOEVENTFD, ioeventfd(efd, length=0))
    fails(errno.EEXIST, gzhost.ioctl, t.vm, gz.GZVM_IOEVENTFD, ioeventfd(efd, 0x1000_0002, 1))
    deassign = gz.GZVM_IOEVENTFD_FLAG_DEASSIGN
    gone = ioeventfd(efd, flags=dm | deassign, datamatch=3)
    fails(errno.ENOENT, gzhost.ioctl, t.vm, gz.GZVM_IOEVENTFD, gone)
    gone.datamatch = 1
    assert gzhost.ioctl(t.vm, gz.GZVM_IOEVENTFD, gone) == 0
    fails(errno.ENOENT, gzhost.ioctl, t.vm, gz.GZVM_IOEVENTFD, gone)
    os.close(efd)


# vCPU fd
def test_one_reg(gzhost, t):
    vcpu = t.vcpus[0]
    reg = gz.ffi.new("struct gzvm_one_reg *", [REG_PC, addr(u64())])
    fails(errno.EOPNOTSUPP, gzhost.ioctl, vcpu, gz.GZVM_GET_ONE_REG, reg)
    reg.id = REG_PC & ~gz.GZVM_REG_SIZE_MASK | gz.GZVM_REG_SIZE_U128
    fails(errno.EINVAL, gzhost.ioctl, vcpu, gz.GZVM_SET_ONE_REG, reg)
    reg.id, reg.addr = REG_PC, BAD
    fails(errno.EFAULT, gzhost.ioctl, vcpu, gz.GZVM_SET_ONE_REG, reg)
    fails(errno.EFAULT, gzhost.ioctl, vcpu, gz.GZVM_SET_ONE_REG, BAD)
    fails(
        errno.EINVAL,
        set_one_reg,
        gzhost,
        vcpu,
        gz.GZVM_REG_ARCH_ARM64 | gz.GZVM_REG_SIZE_U64 | 0x7777,
        0,
    )
    set_one_reg(gzhost, vcpu, REG_PC, RAM_IPA)


def test_run_arguments(gzhost, t):
    vcpu, run = t.vcpus[0], t.run
    fails(errno.EFAULT, gzhost.ioctl, vcpu, gz.GZVM_RUN, BAD)
    fails(errno.EFAULT, gzhost.ioctl, vcpu, gz.GZVM_RUN, 0)
    run.padding1[1] = 1
    fails(errno.EINVAL, gzhost.ioctl, vcpu, gz.GZVM_RUN, run)
    run.padding1[1], run.immediate_exit, run.exit_reason = 0, 1, 7
    fails(errno.EINTR, gzhost.ioctl, vcpu, gz.GZVM_RUN, run)
    assert run.exit_reason == 7  # nothing copied back


def test_vcpu_fd_after_the_vm_fd_closed_is_enodev(gzhost):
    t = make_vm(gzhost, GUEST)
    gzhost.close(t.vm)
    assert gzhost.gzvm.vm_list == [] and gzhost.mm.pinned == {}
    fails(errno.ENODEV, gzhost.ioctl, t.vcpus[0], gz.GZVM_RUN, t.run)
    fails(errno.ENODEV, set_one_reg, gzhost, t.vcpus[0], REG_PC, 0)
    fails(errno.EOPNOTSUPP, gzhost.ioctl, t.vcpus[0], gz.GZVM_GET_ONE_REG, 0)
    gzhost.close(t.vcpus[0])
    gzhost.close(t.dev)
    gzhost.munmap(t.ram)
