"""Every hypercall the driver makes, failed in turn (Host.gzvm.hvc.faults, a FaultPlan):
the syscall that made it fails with an errno or the exit goes to the VMM, and
once the VMM closes what it has, nothing is left in the host or in EL2."""

import errno

import pytest

from kernel.arch.arm64.geniezone.hvc import GzvmFunc
from kernel.fault_inject import FaultPlan
from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.aarch64 import assemble
from tests.gzvmvm import (
    MMIO,
    RAM_IPA,
    RAM_SIZE,
    REG_PC,
    create_gic,
    set_one_reg,
    set_region,
    user_address,
)
from uapi.linux import gzvm as gz

GUEST = f"""
    ldr x9, ={MMIO:#x}
    ldr w1, [x9]
    str x1, [x9, #8]
    ldr x0, =0x84000008
    hvc #0
    b .
"""
ERR_INVALID_ARGS, ERR_BUSY = -8, -33
# the hypercalls the story makes: PROBE is boot's, MAP_GUEST needs 4 KiB paging
# (test_gzvm_mmu), INFORM_EXIT a signal (tests/conformance), GET_ONE_REG and
# GET_STATISTICS no ioctl of this driver
UNREACHED = {GzvmFunc.PROBE, GzvmFunc.MAP_GUEST, GzvmFunc.INFORM_EXIT}
UNREACHED |= {GzvmFunc.GET_ONE_REG, GzvmFunc.GET_STATISTICS, GzvmFunc.DESTROY_VM}
WALKED = [
    (f.name, nth, ERR_INVALID_ARGS) for f in GzvmFunc if f not in UNREACHED for nth in (1, 2)
] + [("DESTROY_VM", 1, ERR_BUSY)]


def story(host, fds: list, maps: list) -> None:
    """CREATE_VM to SYSTEM_OFF; raises the errno of the first syscall that fails."""
    fds.append(host.open("/dev/gzvm"))
    fds.append(host.ioctl(fds[0], gz.GZVM_CREATE_VM, 0))
    vm = fds[1]
    maps.append(host.mmap(-1, RAM_SIZE, 3, MAP_PRIVATE | MAP_ANONYMOUS))
    code = assemble(GUEST)
    maps[0][: len(code)] = code
    set_region(host, vm, 0, RAM_IPA, RAM_SIZE, user_address(maps[0]))
    fds.append(host.ioctl(vm, gz.GZVM_CREATE_VCPU, 0))
    set_one_reg(host, fds[2], REG_PC, RAM_IPA)
    create_gic(host, vm)
    host.ioctl(vm, gz.GZVM_SET_DTB_CONFIG, gz.ffi.new("struct gzvm_dtb_config *", [RAM_IPA, 8]))
    host.ioctl(vm, gz.GZVM_IRQ_LINE, gz.ffi.new("struct gzvm_irq_level *", [3, 1]))
    run = gz.ffi.new("struct gzvm_vcpu_run *")
    for _ in range(10):
        host.ioctl(fds[2], gz.GZVM_RUN, run)
        if run.exit_reason == gz.GZVM_EXIT_SYSTEM_EVENT:
            return


@pytest.mark.parametrize(("point", "nth", "value"), WALKED)
def test_a_failed_hypercall_leaves_nothing(gzhost, point, nth, value):
    free = gzhost.gzvm.mm.free_bytes
    plan = gzhost.gzvm.hvc.faults = FaultPlan(point, value, nth)
    fds, maps = [], []
    try:
        story(gzhost, fds, maps)
    except OSError as e:
        assert e.errno in (errno.EINVAL, errno.EFAULT, errno.ENODEV), e
    for fd in fds[1:] + fds[:1]:
        gzhost.close(fd)
    for mapping in maps:
        gzhost.munmap(mapping)
    gzhost.gzvm.hvc.faults = {}
    assert plan.calls[point] >= 1  # the story reaches every point
    assert gzhost.mm.pinned == {} and gzhost.gzvm.vm_list == []
    assert gzhost.gzvm.mm.free_bytes == free
    assert gzhost.gzvm.firmware.geniezone.vms == {}


def test_destroy_vm_refused_leaks_and_says_so(gzhost):
    fds, maps = [], []
    story(gzhost, fds, maps)
    gzhost.gzvm.hvc.faults = {"DESTROY_VM": ERR_INVALID_ARGS}
    free = gzhost.gzvm.mm.free_bytes
    for fd in fds[1:] + fds[:1]:
        gzhost.close(fd)
    gzhost.munmap(maps[0])
    assert "DESTROY_VM" in gzhost.dmesg[-1] and "leaking" in gzhost.dmesg[-1]
    assert gzhost.mm.pinned  # still the guest's, as far as the driver knows
    assert gzhost.gzvm.mm.free_bytes == free  # nothing EL2 may use went back
    gzhost.gzvm.hvc.faults = {}
