"""Story: a VMM boots real AArch64 code through /dev/gunyah, exactly as on a device.

CREATE_VM -> CREATE_GUEST_MEM -> MAP_MEM -> DTB -> SET_BOOT_CONTEXT ->
ADD_FUNCTION(vCPU) -> START -> VCPU_RUN: an MMIO write exit with the right
address, length and data; an MMIO read completed by the VMM and written
back by the guest; a shared page written by the host seen by the guest;
and a STATUS exit (EXITED, PLATFORM_OFF) after PSCI SYSTEM_OFF. Closing
every fd leaves nothing of the VM in the RM or the hypervisor.
"""

import errno

import pytest

from tests.aarch64 import assemble
from tests.gunyahvm import DTB_OFFSET, MMIO, RAM_IPA, SHARED_IPA, make_vm
from uapi.linux import gunyah as gh

GUEST = f"""
    ldr x9, ={MMIO:#x}
    str x0, [x9]                 // the DTB address the RM passed in X0
    ldr w1, [x9, #8]             // MMIO read, completed by the VMM
    str x1, [x9, #16]            // ... and written back
    ldr x2, ={SHARED_IPA:#x}
    ldr x3, [x2]                 // a page the host wrote
    str x3, [x9, #24]
    ldr x0, =0x84000008          // PSCI SYSTEM_OFF
    hvc #0
    b .
"""


def build(host):
    t = make_vm(host, GUEST, shared_word=0xC0FFEE)
    return t.dev, t.vm, (t.ram, t.shared), t.vcpus[0]


def run_to_exit(host, vcpu, run):
    assert host.ioctl(vcpu, gh.GUNYAH_VCPU_RUN, 0) == 0
    return run.exit_reason


def test_first_guest(host):
    dev, vm, gmems, vcpu = build(host)
    size = host.ioctl(vcpu, gh.GUNYAH_VCPU_MMAP_SIZE, 0)
    assert size == 4096
    page = host.mmap(vcpu, size)
    run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", page)
    with pytest.raises(OSError) as e:
        host.ioctl(vcpu, gh.GUNYAH_VCPU_RUN, 0)
    assert e.value.errno == errno.ENODEV  # not started yet

    assert host.ioctl(vm, gh.GUNYAH_VM_START, 0) == 0
    assert host.ioctl(vm, gh.GUNYAH_VM_START, 0) == 0  # idempotent while running

    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_MMIO
    assert (run.mmio.phys_addr, run.mmio.len, run.mmio.is_write) == (MMIO, 8, 1)
    assert int.from_bytes(bytes(run.mmio.data), "little") == RAM_IPA + DTB_OFFSET

    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_MMIO
    assert (run.mmio.phys_addr, run.mmio.len, run.mmio.is_write) == (MMIO + 8, 4, 0)
    run.mmio.data[0:4] = b"\x78\x56\x34\x12"
    run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_HANDLED
    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_MMIO
    assert run.mmio.phys_addr == MMIO + 16
    assert int.from_bytes(bytes(run.mmio.data), "little") == 0x12345678

    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_MMIO
    assert run.mmio.phys_addr == MMIO + 24
    assert int.from_bytes(bytes(run.mmio.data), "little") == 0xC0FFEE

    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_STATUS
    assert run.status.status == gh.GUNYAH_VM_STATUS_EXITED
    assert run.status.exit_info.type == 1  # PLATFORM_OFF
    assert host.ioctl(vcpu, gh.GUNYAH_VCPU_RUN, 0) == 0  # SYSTEM_DOWN: still the STATUS exit
    assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_STATUS
    with pytest.raises(OSError) as e:
        host.ioctl(vm, gh.GUNYAH_VM_START, 0)
    assert e.value.errno == errno.ENODEV

    del run
    host.munmap(page)
    rm = host.gunyah.firmware.rm
    gunyah = host.gunyah.firmware.gunyah
    for fd in (vm, *gmems, vcpu, dev):  # the VM fd first: the vCPU keeps the VM alive
        host.close(fd)
    assert rm.vm_manager.vms == {}
    assert rm.memparcels.parcels == {}
    assert gunyah.vmids == set()
    assert gunyah.scheduler.order == []


def test_start_without_dtb_config_is_einval_then_enodev(host):
    """START allocates the VMID first; an empty DTB config then fails (EINVAL) with the
    VM in LOAD, so a second START is ENODEV; close gives the VMID back."""
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    for expected in (errno.EINVAL, errno.ENODEV):
        with pytest.raises(OSError) as e:
            host.ioctl(vm, gh.GUNYAH_VM_START, 0)
        assert e.value.errno == expected
    host.close(vm)
    assert host.gunyah.firmware.gunyah.vmids == set()
    host.close(dev)


def test_host_and_guest_never_hold_a_lent_page_at_once(host):
    """Story: the guest runs from lent memory; the VMM maps it; the guest loses it
    (PAGE_FAULT, -EPERM) until the VMM unmaps, then carries on."""
    _, vm, (ram, _), vcpu = build(host)
    gunyah = host.gunyah.firmware.gunyah
    ram_file = host.fdtable.get(ram)
    code_pa = ram_file.private.pa
    ram_file.put()
    host_extent = gunyah.memdb.owner(code_pa)
    host.ioctl(vm, gh.GUNYAH_VM_START, 0)
    page = host.mmap(vcpu, 4096)
    run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", page)
    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_MMIO
    assert gunyah.memdb.owner(code_pa) is not host_extent  # the guest has it

    view = host.mmap(ram, 0x1000)
    assert gunyah.memdb.owner(code_pa) is host_extent  # taken back before the host saw it
    assert view[0:4] == assemble(GUEST)[0:4]
    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
    assert (run.page_fault.phys_addr & ~0xFFF, run.page_fault.attempt) == (RAM_IPA, -errno.EPERM)

    host.munmap(view)
    run.page_fault.resume_action = gh.GUNYAH_VCPU_RESUME_RETRY  # the preset, FAULT, would abort
    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_MMIO
    assert (run.mmio.phys_addr, run.mmio.is_write) == (MMIO + 8, 0)
    del run
    host.munmap(page)


@pytest.mark.parametrize(
    "order",
    [("vm", "vcpu", "ram", "dev"), ("vcpu", "ram", "dev", "vm"), ("ram", "dev", "vcpu", "vm")],
)
def test_whatever_order_the_fds_close_in_nothing_is_left(host, order):
    dev, vm, (ram, shared), vcpu = build(host)
    memdb = host.gunyah.firmware.gunyah.memdb
    ram_file = host.fdtable.get(ram)
    pages = [ram_file.private.pa + off for off in (0, DTB_OFFSET)]  # demand paged, parcel
    ram_file.put()
    host_extent = memdb.owner(pages[0])
    host.ioctl(vm, gh.GUNYAH_VM_START, 0)
    page = host.mmap(vcpu, 4096)
    run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", page)
    assert run_to_exit(host, vcpu, run) == gh.GUNYAH_VCPU_EXIT_MMIO  # running, memory given
    del run
    host.munmap(page)
    free = host.gunyah.mm.free_bytes
    host.close(shared)
    fds = {"vm": vm, "vcpu": vcpu, "ram": ram, "dev": dev}
    for name in order:
        host.close(fds[name])
    rm, gunyah = host.gunyah.firmware.rm, host.gunyah.firmware.gunyah
    assert rm.vm_manager.vms == {} and rm.memparcels.parcels == {}
    assert gunyah.vmids == set() and gunyah.scheduler.order == []
    assert host.gunyah.mm.free_bytes == free + 0x20_0000 + 0x1000  # every page back
    assert [memdb.owner(pa) for pa in pages] == [host_extent, host_extent]
    assert host.dmesg == []
