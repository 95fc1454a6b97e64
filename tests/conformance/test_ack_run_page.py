"""Story: the Android run page and the START/RUN rules of spec gunyah-ack.md §4.6, §7 and §13.

On android14-6.1 ``struct gh_vcpu_run`` has no resume_action: a guest's MMIO
read is completed by writing ``mmio.data`` and calling VCPU_RUN again, and
the kernel never touches byte 37. On android15-6.6 byte 37 is resume_action,
preset to HANDLED on every MMIO exit; a value other than HANDLED or FAULT
(RETRY included) is EINVAL and the exit stays pending. On both, VCPU_RUN before START is
ENODEV, a second START is 0, a START after a failed one is ENODEV.
"""

import errno
import threading
import time

import pytest

from tests.aarch64 import assemble
from tests.gunyahvm import errno_of, outcome
from tests.kernel.gunyah.ackvm import (
    DTB_OFFSET,
    MMIO,
    PROFILES,
    RAM_IPA,
    SYSTEM_OFF,
    anonymous,
    boot,
    make_vm,
    region,
    set_dtb,
)
from uapi.linux import gunyah as gh
from uapi.linux import gunyah_ack as ack

READ_THEN_WRITE = f"""
    ldr x9, ={MMIO:#x}
    ldr x1, [x9]                    // an MMIO read: userspace supplies the value
    str x1, [x9, #8]                // written back, so the test sees what arrived
{SYSTEM_OFF}
"""
VALUE = 0x1122_3344_5566_7788
UNBACKED = 0x4000_0000  # an address no region covers


def test_android14_mmio_read_is_completed_by_mmio_data_without_resume_action():
    fields = dict(ack.ffi.typeof("struct gh_vcpu_run").fields)
    assert "page_fault" not in fields
    assert [name for name, _ in fields["mmio"].type.fields] == [
        "phys_addr",
        "data",
        "len",
        "is_write",
    ]
    host = boot("ack-6.1")
    try:
        vm = make_vm(host, READ_THEN_WRITE)
        run = vm.run_page()
        raw = ack.ffi.buffer(run)
        vm.start()
        raw[37] = b"\x5a"  # padding on 6.1: the kernel neither reads nor writes it
        assert vm.run() == 0
        assert run.exit_reason == ack.GH_VCPU_EXIT_MMIO
        assert (run.mmio.phys_addr, run.mmio.len, run.mmio.is_write) == (MMIO, 8, 0)
        assert raw[37] == b"\x5a"
        ack.ffi.memmove(run.mmio.data, VALUE.to_bytes(8, "little"), 8)
        assert vm.run() == 0
        assert (run.mmio.phys_addr, run.mmio.is_write) == (MMIO + 8, 1)
        assert int.from_bytes(bytes(run.mmio.data), "little") == VALUE
        assert raw[37] == b"\x5a"
        vm.run()
        assert run.exit_reason == ack.GH_VCPU_EXIT_STATUS
        assert run.status.status == ack.GH_VM_STATUS_EXITED
        del run, raw
        vm.close()
    finally:
        host.shutdown()


def test_android15_mmio_exit_presets_resume_action_and_refuses_unknown_ones():
    host = boot("ack-6.6")
    try:
        vm = make_vm(host, READ_THEN_WRITE)
        page = host.mmap(vm.vcpus[0], 4096)
        vm.maps.append(page)
        run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", page)  # the 6.6 layout is v16's
        vm.start()
        run.mmio.resume_action = 0x7F
        vm.run()
        assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_MMIO
        assert run.mmio.resume_action == gh.GUNYAH_VCPU_RESUME_HANDLED
        run.mmio.resume_action = 7
        assert errno_of(vm.run) == errno.EINVAL
        run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_RETRY  # §7: only HANDLED or FAULT
        assert errno_of(vm.run) == errno.EINVAL
        run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_HANDLED
        gh.ffi.memmove(run.mmio.data, VALUE.to_bytes(8, "little"), 8)
        vm.run()
        assert (run.mmio.is_write, int.from_bytes(bytes(run.mmio.data), "little")) == (1, VALUE)
        del run
        vm.close()
    finally:
        host.shutdown()


@pytest.mark.parametrize("uapi", PROFILES)
def test_run_before_start_is_enodev_and_start_is_idempotent(uapi):
    host = boot(uapi)
    try:
        vm = make_vm(host, SYSTEM_OFF)
        assert errno_of(vm.run) == errno.ENODEV
        assert vm.start() == 0
        assert vm.start() == 0
        vm.close()
    finally:
        host.shutdown()


@pytest.mark.parametrize(
    ("uapi", "dtb", "err"),
    [
        ("ack-6.1", (0x4000_0000, 0x2000), errno.EINVAL),  # the DTB in no region
        ("ack-6.6", (RAM_IPA + DTB_OFFSET, 0x800), errno.EINVAL),  # under a page
        ("ack-6.6", (0x4000_0000, 0x2000), errno.ENOENT),  # no binding there
    ],
)
def test_start_after_a_failed_start_is_enodev(uapi, dtb, err):
    host = boot(uapi)
    try:
        vm = make_vm(host, SYSTEM_OFF)
        set_dtb(host, vm.vm, *dtb)
        assert errno_of(vm.start) == err
        assert errno_of(vm.start) == errno.ENODEV
        assert errno_of(vm.run) == errno.ENODEV
        vm.close()
        assert not host.bugs
    finally:
        host.shutdown()


def test_android14_unbacked_fetch_never_makes_a_page_fault_exit():
    """6.1 knows no PAGE_FAULT state (§3, §10): like any hypervisor state it does
    not know, the driver runs the vCPU again (§7), so the guest faults on and
    VCPU_RUN stays in the kernel until ``immediate_exit`` ends it with EINTR;
    the run page is never written (no exit 3, no page_fault member)."""
    lines = []
    host = boot("ack-6.1", trace=lines.append)
    try:
        vm = make_vm(host, "ldr x0, =0x40000000\n br x0")
        run = vm.run_page()
        raw = ack.ffi.buffer(run)
        vm.start()
        result = []

        def runner():
            result.append(outcome(vm.run))

        thread = threading.Thread(target=runner)
        thread.start()
        while sum("state=ADDRSPACE_PAGE_FAULT" in line for line in lines) < 3 and thread.is_alive():
            time.sleep(0.01)
        run.immediate_exit = 1
        thread.join()
        assert result == [errno.EINTR]
        assert sum("state=ADDRSPACE_PAGE_FAULT" in line for line in lines) >= 3
        assert run.exit_reason == ack.GH_VCPU_EXIT_UNKNOWN
        assert bytes(raw[16:40]) == bytes(24)
        del run, raw
        vm.close()
        assert not host.bugs
    finally:
        host.shutdown()


def test_android15_run_after_a_page_fault_exit_ignores_resume_action():
    """§7: the saved state does not move at a PAGE_FAULT exit, so the next RUN
    neither reads ``page_fault.resume_action`` (FAULT, the preset, injects no
    abort; 7 is no EINVAL) nor answers anything: the guest reruns the access,
    which faults again until memory is added there."""
    host = boot("ack-6.6")
    try:
        vm = make_vm(host, f"ldr x0, ={UNBACKED:#x}\n br x0")
        page = host.mmap(vm.vcpus[0], 4096)
        vm.maps.append(page)
        run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", page)
        vm.start()
        for action in (None, gh.GUNYAH_VCPU_RESUME_FAULT, 7, gh.GUNYAH_VCPU_RESUME_HANDLED):
            if action is not None:
                run.page_fault.resume_action = action
            assert vm.run() == 0
            assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
            assert (run.page_fault.phys_addr, run.page_fault.attempt) == (UNBACKED, -errno.ENOENT)
            assert run.page_fault.resume_action == gh.GUNYAH_VCPU_RESUME_FAULT
        ram, uaddr = anonymous(host, 0x1000)
        code = assemble(SYSTEM_OFF)
        ram[0 : len(code)] = code
        region(host, vm.vm, 1, UNBACKED, 0x1000, uaddr, lend=True)  # shared is never executable
        assert vm.run() == 0
        assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_STATUS
        assert run.status.status == gh.GUNYAH_VM_STATUS_EXITED
        del run
        vm.close()
        host.munmap(ram)
        assert not host.bugs
    finally:
        host.shutdown()
