"""Isolation: what a guest, another VM or a forged capability cannot reach."""

import errno
import threading
import time

from kernel.fs import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from kernel.gunyah.guest_memfd import GuestMem
from tests.gunyahvm import (
    DTB_OFFSET,
    MMIO,
    RAM_IPA,
    RWX_LEND,
    errno_of,
    guest_mem,
    make_vm,
    map_mem,
)
from tests.holdingcell import HVC, READ, RESULT, STATUS, WRITE, HoldingCell
from tests.robustness.leaks import holdings, leaked
from uapi.linux import gunyah as gh

GUNYAH_CALL = 0xC600_8000
ARGUMENT_INVALID, CSPACE_CAP_NULL = 1, 50


def test_a_guest_reaches_nothing_outside_its_mappings(host):
    """An address outside the VM's bindings is no memory at all: the access leaves as an
    MMIO exit (the VMM answers with an abort) and no host page changes, even when the
    guest names the physical address of host memory."""
    cell = HoldingCell(host)
    other = guest_mem(host, cell.vm.dev, 0x1000)
    view = host.mmap(other, 0x1000)
    view[0:8] = (0x5EC2E7).to_bytes(8, "little")
    pa = host.fdtable.get(other)
    target = pa.private.pa
    pa.put()
    writes = cell.command(WRITE, target, 0xBAD)
    assert writes[STATUS] == 3 and cell.elsewhere == [(target, 1)]
    assert cell.command(READ, target)[STATUS] == 3
    assert int.from_bytes(view[0:8], "little") == 0x5EC2E7
    host.munmap(view)
    host.close(other)
    cell.close()


def test_one_guest_memfd_page_is_bound_to_one_vm_at_most(host):
    """Two VMs may bind one guest_memfd, each its own pages: a file range already bound
    by one VM is EEXIST for the other (the file's bindings are one list), and each VM
    reads only what it wrote."""
    first = HoldingCell(host)
    second = HoldingCell(host)
    mem = guest_mem(host, first.vm.dev, 0x2000)
    map_mem(host, first.vm.vm, mem, 0xA000_0000, 0x1000, RWX_LEND)
    assert errno_of(map_mem, host, second.vm.vm, mem, 0xA000_0000, 0x1000, RWX_LEND) == (
        errno.EEXIST
    )
    map_mem(host, second.vm.vm, mem, 0xA000_0000, 0x1000, RWX_LEND, 0x1000)
    assert first.command(WRITE, 0xA000_0000, 0x1234) == {STATUS: 0}
    assert second.command(WRITE, 0xA000_0000, 0x5678) == {STATUS: 0}
    assert first.command(READ, 0xA000_0000) == {RESULT: 0x1234}
    assert second.command(READ, 0xA000_0000) == {RESULT: 0x5678}
    host.close(mem)
    second.close()
    first.close()


def test_a_vms_fds_are_not_memory_for_another(host):
    t = make_vm(host, "b .")
    other = host.ioctl(t.dev, gh.GUNYAH_CREATE_VM, 0)
    for fd in (t.vm, t.vcpus[0]):  # a VM or a vCPU fd is not a guest_memfd
        assert errno_of(map_mem, host, other, fd, RAM_IPA, 0x1000, RWX_LEND) == errno.EINVAL
    host.close(other)
    t.close()


def test_forged_capabilities_get_cspace_errors_and_change_nothing(host):
    cell = HoldingCell(host)
    before = holdings(host)
    calls = {
        0x12: "doorbell_send",
        0x2B: "addrspace_map",
        0x61: "memextent_donate",
        0x65: "vcpu_run",
        0x39: "vcpu_poweroff",
        0x22: "cspace_delete_cap_from",
    }
    for n in calls:
        for forged in (0, 1, 2, 0x7FFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF):
            result = cell.command(HVC, GUNYAH_CALL + n, forged)[RESULT]
            print(calls[n], hex(forged), result)
    assert leaked(before, holdings(host)) == {}
    assert host.bugs == []
    cell.close()


PAST_END = 0xA000_1000  # the second page of a 4 KiB file bound with 8 KiB at 0xA000_0000
LOAD_PAST_END = f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={PAST_END:#x}
    ldr x3, [x2]
    str x3, [x9]          // what it read, if it read anything
    b .
"""


def test_demand_paging_stops_at_the_end_of_the_file(host):
    """A 4 KiB guest_memfd bound (lent, before start) with 8 KiB: the second page lies past
    the file's end. The guest's load is a PAGE_FAULT exit carrying -ENOMEM (no folio
    there), never the next file's page in RAM."""
    t = make_vm(host, LOAD_PAST_END)
    small = guest_mem(host, t.dev, 0x1000)
    secret = guest_mem(host, t.dev, 0x1000)
    view = host.mmap(secret, 0x1000)
    view[0:8] = (0x5EC2E7).to_bytes(8, "little")
    host.munmap(view)
    map_mem(host, t.vm, small, PAST_END - 0x1000, 0x2000, RWX_LEND)
    run = t.run_page()
    t.start()
    t.run()
    assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT, bytes(run.mmio.data)
    assert (run.page_fault.phys_addr, run.page_fault.attempt) == (PAST_END, -errno.ENOMEM)
    del run
    for fd in (small, secret):
        host.close(fd)
    t.close()


def test_a_hugepage_binding_cannot_be_cut_off_its_folios(host):
    """UNMAP of 4 KiB of a hugepage binding is EINVAL (2 MiB alignment is part of the
    common validation), so its folios stay inside it: the binding's last page is its
    own, and the page after the binding is nothing (an MMIO exit), not another file's."""
    cell = HoldingCell(host)
    base, huge = 0xC000_0000, 4 << 20
    mem = guest_mem(host, cell.vm.dev, huge, gh.GHMF_ALLOW_HUGEPAGE)
    secret = guest_mem(host, cell.vm.dev, 2 << 20, gh.GHMF_ALLOW_HUGEPAGE)
    view = host.mmap(secret, 0x1000)
    view[0:8] = (0x5EC2E7).to_bytes(8, "little")
    host.munmap(view)
    map_mem(host, cell.vm.vm, mem, base, huge, RWX_LEND)
    unmap = RWX_LEND | gh.GUNYAH_MEM_UNMAP
    assert errno_of(map_mem, host, cell.vm.vm, mem, base, 0x1000, unmap) == errno.EINVAL
    assert cell.command(READ, base + huge - 0x1000) == {RESULT: 0}
    assert cell.command(READ, base + huge)[STATUS] == 3
    assert cell.elsewhere == [(base + huge, 0)]
    for fd in (mem, secret):
        host.close(fd)
    cell.close()


def test_a_host_mapping_takes_the_dtb_page_back_from_a_running_vm(host):
    """Once started, the DTB parcel's pages are demand-paged memory: a host mmap of the
    DTB's offset reclaims the lent page first, and while the host maps it the guest's
    store to it is a PAGE_FAULT exit (-EPERM), never seen by the host."""
    cell = HoldingCell(host)
    view = host.mmap(cell.vm.ram, 0x1000, offset=DTB_OFFSET)
    dtb = bytes(view[0:8])
    assert cell.command(WRITE, RAM_IPA + DTB_OFFSET, 0xBAD) == {}
    run = cell.run
    assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
    assert (run.page_fault.phys_addr, run.page_fault.attempt) == (
        RAM_IPA + DTB_OFFSET,
        -errno.EPERM,
    )
    assert bytes(view[0:8]) == dtb
    del run
    host.munmap(view)
    cell.close()


def test_release_after_start_sends_no_mem_reclaim_and_leaves_nothing(host):
    """After start the DTB parcel is demand-paged memory, reclaimed by hypercall at
    release; MEM_RECLAIM is for a VM still in LOAD. Release of a running VM sends none,
    the RM's reset does not give the pages back a second time, and nothing is left."""
    before = holdings(host)
    cell = HoldingCell(host)
    cell.close()
    sent = [dict(f)["msg"] for e, f in host.gunyah.firmware.gunyah.events if e == "rm_tx"]
    assert "VM_RESET" in sent and "MEM_RECLAIM" not in sent
    assert host.dmesg == []
    assert leaked(before, holdings(host)) == {}


def test_the_hypervisor_refuses_a_host_mapping_of_a_lent_page(host, monkeypatch):
    """The hypervisor, not only the driver, keeps host and guest off a lent page at once:
    with the driver's reclaim-before-mmap taken away, the host's mapping of a page lent
    to a running VM is refused (DENIED, EACCES), and the guest keeps its data."""
    cell = HoldingCell(host)
    page = RAM_IPA + 0x4000
    assert cell.command(WRITE, page, 0x600D) == {STATUS: 0}
    monkeypatch.setattr(GuestMem, "reclaim", lambda *_, **__: None)
    assert errno_of(host.mmap, cell.vm.ram, 0x1000, offset=0x4000) == errno.EACCES
    assert cell.command(READ, page) == {RESULT: 0x600D}
    cell.close()


def test_the_hypervisor_refuses_to_lend_a_page_the_host_maps(host, monkeypatch):
    """With the driver's "mapped by the host" check taken away, the donation of a page
    the host maps to the guest's protected extent is refused (DENIED): the guest's
    access is a PAGE_FAULT exit with -EACCES, and its store never reaches the host."""
    cell = HoldingCell(host)
    view = host.mmap(cell.vm.ram, 0x1000, offset=0x4000)
    monkeypatch.setattr(GuestMem, "host_mapped", lambda *_: False)
    assert cell.command(WRITE, RAM_IPA + 0x4000, 0xBAD) == {}
    run = cell.run
    assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
    assert run.page_fault.attempt == -errno.EACCES
    assert bytes(view[0:8]) == bytes(8)
    del run
    host.munmap(view)
    cell.close()


def test_a_host_mapping_never_reaches_before_its_file(host):
    """mmap at a negative offset of a guest_memfd is EINVAL: the RAM just before the
    file belongs to another guest_memfd, whose data it would show."""
    dev = host.open("/dev/gunyah")
    first, second = guest_mem(host, dev, 0x1000), guest_mem(host, dev, 0x1000)
    view = host.mmap(first, 0x1000)
    view[0:8] = (0x5EC2E7).to_bytes(8, "little")
    host.munmap(view)
    for offset in (-0x1000, -(1 << 63)):
        assert errno_of(host.mmap, second, 0x1000, offset=offset) == errno.EINVAL
    for fd in (first, second, dev):
        host.close(fd)


def test_the_hypervisor_refuses_to_zero_a_lent_page(host, monkeypatch):
    """With the driver's reclaim before PUNCH_HOLE taken away, the hypervisor refuses to
    zero a page lent to a running VM (DENIED): the punch fails as a model bug (EIO,
    ``Host.bugs``) and the guest keeps its data."""
    cell = HoldingCell(host)
    page = RAM_IPA + 0x4000
    assert cell.command(WRITE, page, 0x600D) == {STATUS: 0}
    monkeypatch.setattr(GuestMem, "reclaim", lambda *_, **__: None)
    punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    assert errno_of(host.fallocate, cell.vm.ram, punch, 0x4000, 0x1000) == errno.EIO
    assert [type(bug) for bug in host.bugs] == [RuntimeError]
    host.bugs.clear()
    assert cell.command(READ, page) == {RESULT: 0x600D}
    monkeypatch.undo()
    cell.close()


STORE_LOOP = f"""
    ldr x2, ={RAM_IPA + 0x4000:#x}
    mov x1, #0
1:  add x1, x1, #1
    str x1, [x2]
    b 1b
"""


def test_no_guest_store_lands_after_the_page_is_taken_back(host):
    """A vCPU stores to a lent page in a tight loop on its own thread while the host
    maps that page (which takes it back first). When mmap returns, no store of the
    guest's is still in flight: the marker the host writes then stays. (A core
    caches translations; the unmap waits for its run to end, like a TLBI's DSB.)"""
    t = make_vm(host, STORE_LOOP)
    run = t.run_page()
    t.start()
    stop = threading.Event()

    def vcpu():
        while not stop.is_set():
            try:
                t.run()  # a PAGE_FAULT exit (-EPERM) while the host maps the page
            except InterruptedError:  # immediate_exit: the test is over
                return

    runner = threading.Thread(target=vcpu)
    runner.start()
    try:
        for marker in range(0x5EC2E700, 0x5EC2E708):
            time.sleep(0.02)  # the guest gets the page back and stores
            view = host.mmap(t.ram, 0x1000, offset=0x4000)
            view[0:8] = marker.to_bytes(8, "little")
            time.sleep(0.005)
            seen = int.from_bytes(view[0:8], "little")
            host.munmap(view)
            assert seen == marker, f"a guest store landed after mmap returned: {seen:#x}"
    finally:
        stop.set()
        run.immediate_exit = 1
        runner.join(20)
    assert not runner.is_alive()
    del run
    t.close()
