"""User pointers (kernel/uaccess.py): the machine's own memory is never user memory."""

import errno
import os
import subprocess
import sys

import pytest

from kernel import uaccess
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
    before = _run_page_mappings()
    t = make_gunyah_vm(host, "b .")
    kernel_pages = _run_page_mappings() - before  # this VM's: other hosts may await the GC
    assert kernel_pages
    for address in kernel_pages:
        for request in (gh.GUNYAH_VM_SET_DTB_CONFIG, gh.GUNYAH_VM_SET_BOOT_CONTEXT):
            with pytest.raises(OSError) as e:
                host.ioctl(t.vm, request, address)
            assert e.value.errno == errno.EFAULT
    t.close()


CHILD = (
    "import ctypes, os, sys\n"
    "b = ctypes.create_string_buffer(b'child-bytes')\n"
    "print(ctypes.addressof(b), os.eventfd(5), flush=True)\n"
    "sys.stdin.read()\n"
)


def test_a_thread_serving_another_process_uses_its_memory_and_descriptors():
    """use_process: user memory and user descriptors are the other process's, for the
    calling thread only and only while inside."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        addr, efd = map(int, child.stdout.readline().split())
        assert not uaccess.foreign()
        with uaccess.use_process(child.pid, lambda key: None):
            assert uaccess.foreign()
            assert uaccess.copy_from_user(addr, 11) == b"child-bytes"
            uaccess.copy_to_user(addr, b"CHILD")
            assert uaccess.copy_from_user(addr, 11) == b"CHILD-bytes"
            with pytest.raises(OSError) as e:
                uaccess.copy_from_user(8, 1)
            assert e.value.errno == errno.EFAULT
            local = uaccess.fdget_user(efd)
            assert os.readlink(f"/proc/self/fd/{local}") == "anon_inode:[eventfd]"
            assert os.eventfd_read(local) == 5
            os.close(local)
            with pytest.raises(OSError) as e:
                uaccess.fdget_user(4000)
            assert e.value.errno == errno.EBADF
            assert uaccess.user_file(efd) is None  # no kernel file behind an eventfd
        assert not uaccess.foreign()
    finally:
        child.stdin.close()
        child.wait()


def _run_page_mappings() -> set[int]:
    with open("/proc/self/maps") as maps:
        return {int(line.split("-")[0], 16) for line in maps if "gh-vcpu-run" in line}
