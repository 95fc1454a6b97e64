"""Demand paging of guest_memfd bindings: a page, or a 2 MiB folio for hugepage files."""

import errno
import signal
import threading

import pytest

from tests.gunyahvm import DTB_OFFSET, MMIO, RAM_IPA, RWX_LEND, guest_mem, make_vm, map_mem, outcome
from uapi.linux import gunyah as gh

HPAGE = 2 << 20
TOUCH = RAM_IPA + HPAGE + 0x1234 * 8  # inside the second 2 MiB of RAM

GUEST = f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={TOUCH:#x}
    ldr x3, =0x5a5a
    str x3, [x2]          // first touch of the second folio: demand paged, no exit
    ldr x4, [x2]
    str x4, [x9]          // MMIO exit with what the guest read back
    b .
"""


def gmem_pa(host, fd):
    file = host.fdtable.get(fd)
    try:
        return file.private.pa
    finally:
        file.put()


def vm_of(host, fd):
    file = host.fdtable.get(fd)
    try:
        return file.private
    finally:
        file.put()


@pytest.mark.parametrize(("flags", "pages"), [(0, 1), (gh.GHMF_ALLOW_HUGEPAGE, HPAGE // 4096)])
def test_a_first_touch_provides_one_folio(host, flags, pages):
    t = make_vm(host, GUEST, ram_size=2 * HPAGE, ram_flags=flags)
    run = t.run_page()
    t.start()
    assert t.run() == 0
    assert (run.exit_reason, run.mmio.phys_addr) == (gh.GUNYAH_VCPU_EXIT_MMIO, MMIO)
    assert int.from_bytes(bytes(run.mmio.data), "little") == 0x5A5A

    vm = vm_of(host, t.vm)
    second = (RAM_IPA + HPAGE) // 4096
    touched = (TOUCH // 4096) if pages == 1 else second
    assert vm.provided[touched].nr == pages  # the whole folio went at its aligned gfn
    memdb = host.gunyah.firmware.gunyah.memdb
    base = gmem_pa(host, t.ram)
    guest_extent = memdb.owner(base + (touched - RAM_IPA // 4096) * 4096)
    last = base + HPAGE + HPAGE - 4096
    assert (memdb.owner(last) is guest_extent) == (pages > 1)
    # once started, the DTB parcel's folios are provided memory (the code's folio with it)
    dtb = (RAM_IPA + DTB_OFFSET) // 4096
    parcel = [RAM_IPA // 4096] if pages > 1 else [dtb, dtb + 1]
    assert [g for g in parcel if vm.provided[g].nr == pages] == parcel
    del run
    t.close()
    assert memdb.owner(last) is not guest_extent  # all back to the host


def test_hugepage_files_need_2mib_alignment(host):
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    gmem = guest_mem(host, dev, 2 * HPAGE, gh.GHMF_ALLOW_HUGEPAGE)
    for ipa, offset, size in [
        (RAM_IPA + 0x1000, 0, HPAGE),
        (RAM_IPA, 0x1000, HPAGE),
        (RAM_IPA, 0, 0x1000),
    ]:
        with pytest.raises(OSError) as e:
            map_mem(host, vm, gmem, ipa, size, RWX_LEND, offset)
        assert e.value.errno == errno.EINVAL
    assert map_mem(host, vm, gmem, RAM_IPA, HPAGE, RWX_LEND, HPAGE) == 0
    for fd in (vm, gmem, dev):
        host.close(fd)


ABORT_REPORTER = f"""
    ldr x9, ={MMIO:#x}
    ldr x1, ={RAM_IPA + 0x800:#x}
    msr vbar_el1, x1
    isb
    ldr x2, ={RAM_IPA + 0x3000:#x}
    br x2                     // into a page the host has mapped: it cannot be lent
    .ltorg
    .org 0xa00                // VBAR + 0x200: synchronous, current EL
    mrs x1, esr_el1
    str x1, [x9]
    mrs x2, far_el1
    str x2, [x9]
    b .
    .org 0x3000
    b .
"""


def test_page_fault_resume_action_is_not_read(host):
    """After a PAGE_FAULT exit (resume_action preset to FAULT) the next VCPU_RUN
    ignores the field (spec gunyah.md, vcpu_run): any value reruns the access,
    which faults again while its cause stays, and runs once the host lets go."""
    t = make_vm(host, ABORT_REPORTER)
    run = t.run_page()
    view = host.mmap(t.ram, 0x1000, offset=0x3000)
    t.start()
    for action in (None, 9, gh.GUNYAH_VCPU_RESUME_FAULT, gh.GUNYAH_VCPU_RESUME_HANDLED):
        if action is not None:
            run.page_fault.resume_action = action
        assert t.run() == 0 and run.exit_reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
        fault = (run.page_fault.phys_addr, run.page_fault.attempt)
        assert fault == (RAM_IPA + 0x3000, -errno.EPERM)
        assert run.page_fault.resume_action == gh.GUNYAH_VCPU_RESUME_FAULT
    host.munmap(view)
    ended = []
    guest = threading.Thread(target=lambda: ended.append(outcome(t.run)))
    guest.start()  # the guest now spins in page 3; no exit
    guest.join(0.3)
    assert guest.is_alive()
    run.immediate_exit = 1
    host.pthread_kill(guest.ident, signal.SIGUSR1)
    guest.join(10)
    assert ended == [errno.EINTR]
    run.immediate_exit = 0
    del run
