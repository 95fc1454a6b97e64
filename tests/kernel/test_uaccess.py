"""User pointers (kernel/uaccess.py): the machine's own memory is never user memory."""

import errno

import pytest

from kernel.uaccess import access_ok
from tests.gunyahvm import make_vm as make_gunyah_vm
from tests.gzvmvm import REG_X0, make_vm, user_address
from uapi.linux import gunyah as gh
from uapi.linux import gzvm as gz

DRAM_MEMFD = "/memfd:gunyah-sim-dram"


def machine_address() -> int:
    """An address inside the newest mapping of a machine's whole DRAM, found as any
    program finds it: the largest mapping of the DRAM memfd in /proc/self/maps."""
    mappings = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if DRAM_MEMFD in line:
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                mappings.append((end - start, start))
    _, start = max(mappings)
    return start + 0x10_0000


def test_a_pointer_into_the_machines_dram_is_efault_on_gunyah(host):
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    address = machine_address()
    with pytest.raises(OSError) as e:
        host.ioctl(vm, gh.GUNYAH_VM_SET_DTB_CONFIG, address)
    assert e.value.errno == errno.EFAULT
    host.close(vm)
    host.close(dev)


def test_a_pointer_into_machine_or_kernel_memory_is_efault_on_geniezone(gzhost):
    """A VMM that finds the machine's DRAM (or the driver's own mapping of a vCPU's
    shared pages) in /proc/self/maps cannot use it as an ioctl pointer: SET_ONE_REG
    cannot read it and GZVM_RUN cannot write its run struct there (EFAULT), so no
    page of another VM, of EL2 or of the kernel is read or written through it."""
    t = make_vm(gzhost, "b .")
    vcpu = gzhost.fdtable.get(t.vcpus[0])
    kernel_area = user_address(vcpu.private.area.map)
    vcpu.put()
    for address in (machine_address(), kernel_area):
        reg = gz.ffi.new("struct gzvm_one_reg *", [REG_X0, address])
        with pytest.raises(OSError) as e:
            gzhost.ioctl(t.vcpus[0], gz.GZVM_SET_ONE_REG, reg)
        assert e.value.errno == errno.EFAULT
        with pytest.raises(OSError) as e:
            gzhost.ioctl(t.vcpus[0], gz.GZVM_RUN, address)
        assert e.value.errno == errno.EFAULT
    t.close(gzhost)


def test_a_machine_powered_off_gives_its_address_range_back():
    """Once a machine is off its DRAM is unmapped, and the OS may put anything there
    (a VMM's buffers): the range is user memory again."""
    from kernel import boot

    host = boot()
    dram = host.drivers.firmware.machine_memory
    assert not access_ok(dram.address, 8)
    host.shutdown()
    assert access_ok(dram.address, 8)


def test_a_pointer_into_the_kernels_run_page_mapping_is_efault_on_gunyah(host):
    """The kernel maps each vCPU's run page itself (/proc/self/maps shows it as
    /memfd:gh-vcpu-run); a VMM that never mapped it cannot pass that address."""
    t = make_gunyah_vm(host, "b .")
    with open("/proc/self/maps") as maps:
        kernel_pages = [int(line.split("-")[0], 16) for line in maps if "gh-vcpu-run" in line]
    assert kernel_pages
    for address in kernel_pages:
        for request in (gh.GUNYAH_VM_SET_DTB_CONFIG, gh.GUNYAH_VM_SET_BOOT_CONTEXT):
            with pytest.raises(OSError) as e:
                host.ioctl(t.vm, request, address)
            assert e.value.errno == errno.EFAULT
    t.close()
