"""Isolation: what a guest, another VM or a forged capability cannot reach."""

import errno

from tests.gunyahvm import RAM_IPA, RWX_LEND, errno_of, guest_mem, make_vm, map_mem
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


def test_one_vms_lent_page_is_out_of_another_vms_reach(host):
    """Two VMs bind the same guest_memfd page; once lent to the first, the second cannot
    get it (a PAGE_FAULT exit), and the first keeps its data."""
    first = HoldingCell(host)
    second = HoldingCell(host)
    mem = guest_mem(host, first.vm.dev, 0x1000)
    map_mem(host, first.vm.vm, mem, 0xA000_0000, 0x1000, RWX_LEND)
    map_mem(host, second.vm.vm, mem, 0xA000_0000, 0x1000, RWX_LEND)
    assert first.command(WRITE, 0xA000_0000, 0x1234) == {STATUS: 0}
    # the page cannot be given to the second VM: its load leaves as MMIO, and aborts
    assert second.command(READ, 0xA000_0000)[STATUS] == 3
    assert second.elsewhere == [(0xA000_0000, 0)]
    assert first.command(READ, 0xA000_0000) == {RESULT: 0x1234}
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
