"""User memory on the Android profiles (spec gunyah-ack.md §5).

android14-6.1 pins a region at the ioctl and lends it whole at VM_START: the
VMM's mapping reads zeros from then on. android15-6.6 pins nothing at the
ioctl; a lent page leaves the host at the guest's first touch, page by page,
RECLAIM_REGION gives it back, and memory added after START is usable at once
(on 6.1 it never reaches the guest: an access is an MMIO exit). Teardown
unpins every page and gives all RAM back.
"""

import pytest

from tests.kernel.gunyah.ackvm import (
    MMIO,
    RAM_IPA,
    SYSTEM_OFF,
    anonymous,
    boot,
    make_vm,
    region,
)
from uapi.linux import gunyah_ack as ack

MARKER_OFFSET, MARKER = 0x8_0000, 0x0BAD_F00D_CAFE_D00D
EXTRA_IPA = 0x9000_0000
TOUCH_MARKER = f"""
    ldr x9, ={MMIO:#x}
    str xzr, [x9]                   // exit 1: only the code page was touched
    ldr x10, ={RAM_IPA + MARKER_OFFSET:#x}
    ldr x1, [x10]
    str x1, [x9]                    // exit 2: what the guest read there
{SYSTEM_OFF}
"""
READ_EXTRA = f"""
    ldr x10, ={EXTRA_IPA:#x}
    ldr x1, [x10]                   // memory the VMM added after START
    ldr x9, ={MMIO:#x}
    str x1, [x9]
{SYSTEM_OFF}
"""


def _word(mapping, offset):
    return int.from_bytes(mapping[offset : offset + 8], "little")


def _mmio_value(run):
    return int.from_bytes(bytes(run.mmio.data), "little")


@pytest.mark.parametrize("uapi", ("ack-6.1", "ack-6.6"))
def test_host_loses_lent_memory_at_start_or_at_first_touch(uapi):
    host = boot(uapi)
    free = host.gunyah.mm.free_bytes
    try:
        vm = make_vm(host, TOUCH_MARKER)
        vm.ram[MARKER_OFFSET : MARKER_OFFSET + 8] = MARKER.to_bytes(8, "little")
        pinned = len(host.mm.pinned)
        assert pinned == (512 if uapi == "ack-6.1" else 0)  # 2 MiB pinned at the ioctl
        code = _word(vm.ram, 0)
        assert code != 0
        run = vm.run_page()
        vm.start()
        vm.run()
        assert (run.exit_reason, run.mmio.phys_addr) == (ack.GH_VCPU_EXIT_MMIO, MMIO)
        assert _word(vm.ram, 0) == 0  # the code page is the guest's
        on_61 = uapi == "ack-6.1"
        assert _word(vm.ram, MARKER_OFFSET) == (0 if on_61 else MARKER)
        vm.run()
        assert _mmio_value(run) == MARKER  # the guest read the VMM's data
        assert _word(vm.ram, MARKER_OFFSET) == 0
        del run
        vm.close()
        assert host.mm.pinned == {}
        assert host.gunyah.mm.free_bytes == free
    finally:
        host.shutdown()


@pytest.mark.parametrize("uapi", ("ack-6.1", "ack-6.6"))
def test_memory_added_after_start_is_usable_on_66_only(uapi):
    host = boot(uapi)
    try:
        vm = make_vm(host, READ_EXTRA)
        run = vm.run_page()
        vm.start()
        extra, uaddr = anonymous(host, 0x1000)
        extra[0:8] = MARKER.to_bytes(8, "little")
        region(host, vm.vm, 1, EXTRA_IPA, 0x1000, uaddr)
        vm.run()
        assert run.exit_reason == ack.GH_VCPU_EXIT_MMIO
        if uapi == "ack-6.6":
            assert (run.mmio.phys_addr, run.mmio.is_write, _mmio_value(run)) == (MMIO, 1, MARKER)
        else:  # pinned, never given to the guest: its access leaves as MMIO
            assert (run.mmio.phys_addr, run.mmio.is_write) == (EXTRA_IPA, 0)
        assert _word(extra, 0) == MARKER  # shared: the host keeps it
        del run
        vm.close()
        host.munmap(extra)
        assert host.mm.pinned == {}
    finally:
        host.shutdown()


def test_reclaim_region_unpins_pages_the_guest_touched():
    host = boot("ack-6.6")
    try:
        vm = make_vm(host, TOUCH_MARKER)
        run = vm.run_page()
        vm.start()
        vm.run()
        vm.run()
        marker_page = RAM_IPA + MARKER_OFFSET
        assert marker_page // 4096 in host_vm(host).provided
        touched = len(host.mm.pinned)
        reclaim = ack.ffi.new(
            "struct gunyah_address_range *", {"guest_phys_addr": marker_page, "size": 0x1000}
        )
        assert host.ioctl(vm.vm, ack.GH_VM_RECLAIM_REGION, reclaim) == 0
        assert len(host.mm.pinned) == touched - 1
        assert marker_page // 4096 not in host_vm(host).provided
        assert host.ioctl(vm.vm, ack.GH_VM_RECLAIM_REGION, reclaim) == 0  # nothing there now
        del run
        vm.close()
        assert host.mm.pinned == {}
    finally:
        host.shutdown()


SECRET, HOST_WORD = 0x5EC2_E75E_C2E7, 0x4444
SECRET_PAGE = RAM_IPA + 0x10_0000
WRITE_RECLAIM_READ = f"""
    ldr x9, ={MMIO:#x}
    ldr x10, ={SECRET_PAGE:#x}
    ldr x11, ={SECRET:#x}
    str x11, [x10]                  // the guest's own data in a lent page
    str x11, [x9]                   // exit 1: the VMM reclaims the page here
    ldr x12, [x10]                  // faults the page in again
    str x12, [x9, #8]               // exit 2: what the guest sees now
{SYSTEM_OFF}
"""


def test_reclaim_region_gives_the_page_back_to_the_host_and_the_guest_sees_its_writes():
    """§4.9: RECLAIM_REGION undoes the donation and unpins the page; the host's
    mapping is the page again (not the zeros a lent page reads as), and the
    guest's next touch faults in the page the host now has."""
    host = boot("ack-6.6")
    try:
        vm = make_vm(host, WRITE_RECLAIM_READ)
        run = vm.run_page()
        vm.start()
        vm.run()
        offset = SECRET_PAGE - RAM_IPA
        assert _mmio_value(run) == SECRET
        assert _word(vm.ram, offset) == 0  # lent: the host's stage 2 lost it
        reclaim = ack.ffi.new(
            "struct gunyah_address_range *", {"guest_phys_addr": SECRET_PAGE, "size": 0x1000}
        )
        assert host.ioctl(vm.vm, ack.GH_VM_RECLAIM_REGION, reclaim) == 0
        assert _word(vm.ram, offset) == SECRET
        vm.ram[offset : offset + 8] = HOST_WORD.to_bytes(8, "little")
        vm.run()
        assert (run.mmio.phys_addr, _mmio_value(run)) == (MMIO + 8, HOST_WORD)
        assert _word(vm.ram, offset) == 0  # lent again at the guest's touch
        del run
        vm.close()
        assert host.mm.pinned == {}
    finally:
        host.shutdown()


def host_vm(host):
    """The kernel's VM object behind the one VM fd the test has."""
    files = [host.fdtable.get(fd) for fd in host.fdtable.fds()]
    for file in files:
        file.put()
    (vm,) = [f.private for f in files if f.name == "gunyah-vm"]
    return vm
