"""Teardown of the last reference on the Android profiles (spec gunyah-ack.md §9).

The RM calls after the last fd closes, for a VM still running and for one
whose guest exited: android14-6.1 force-stops, resets, reclaims every
region's parcel (then unpins it) and deallocates the VMID; android15-6.6
takes its demand-paged pages back by hypercall, so after the reset only the
VMID is left to free. Nothing stays pinned and the host's RAM is all free.
"""

import errno
import re

import pytest

from tests.kernel.gunyah.ackvm import RAM_IPA, RAM_SIZE, SYSTEM_OFF, boot, make_vm, set_fw
from uapi.linux import gunyah_ack as ack

RM_CALL = re.compile(r"rm_call\((\w+)")
AFTER_61 = ["VM_RESET", "MEM_RECLAIM", "VM_DEALLOCATE"]
AFTER_66 = ["VM_RESET", "VM_DEALLOCATE"]


@pytest.mark.parametrize("exited", (False, True), ids=("running", "exited"))
@pytest.mark.parametrize("uapi", ("ack-6.1", "ack-6.6"))
def test_last_close_returns_everything_in_the_drivers_order(uapi, exited):
    lines = []
    host = boot(uapi, trace=lines.append)
    free = host.gunyah.mm.free_bytes
    notifiers = len(host.gunyah.rm._notifiers)
    try:
        vm = make_vm(host, SYSTEM_OFF)
        vm.start()
        if exited:
            run = vm.run_page()
            vm.run()
            assert run.exit_reason == ack.GH_VCPU_EXIT_STATUS
            del run
        mark = len(lines)
        vm.close()
        calls = [m.group(1) for m in map(RM_CALL.search, lines[mark:]) if m]
        expected = AFTER_61 if uapi == "ack-6.1" else AFTER_66
        assert calls == ([] if exited else ["VM_STOP"]) + expected
        assert host.mm.pinned == {}
        assert host.gunyah.mm.free_bytes == free
        assert len(host.gunyah.rm._notifiers) == notifiers  # its notifier went with it
        assert not any("for VM" in line for line in host.dmesg)  # no RM call failed
    finally:
        host.shutdown()


FW_BEFORE_LOAD = {  # SET_FW_CONFIG values whose parcel fails at START, and START's errno
    "outside_memory": (0x4000_0000, 0x2000, "ENOENT"),
    "straddles_the_binding": (RAM_IPA + RAM_SIZE - 0x1000, 0x2000, "EFAULT"),
    "under_a_page": (RAM_IPA + 0x1F_0000, 0x800, "EINVAL"),
}


@pytest.mark.parametrize("case", FW_BEFORE_LOAD)
def test_66_start_failing_at_the_firmware_parcel_gives_the_vmid_back(case):
    """The firmware parcel is shared before the VM leaves NO_STATE: its failure
    undoes ALLOC_VMID at once, close has nothing left for the RM, START can run
    again, and a host that loses many such VMs still starts good ones."""
    gpa, size, err = FW_BEFORE_LOAD[case]
    lines = []
    host = boot("ack-6.6", trace=lines.append)
    rm = host.gunyah.firmware.rm
    try:
        for _ in range(70):  # more than the RM has VMIDs
            vm = make_vm(host, SYSTEM_OFF)
            set_fw(host, vm.vm, gpa, size)
            for _attempt in range(2):
                with pytest.raises(OSError) as e:
                    vm.start()
                assert errno.errorcode[e.value.errno] == err
            calls = [m.group(1) for m in map(RM_CALL.search, lines) if m]
            assert calls[-1] == "VM_DEALLOCATE"
            assert rm.vm_manager.vms == {}
            mark = len(lines)
            vm.close()
            assert not [m for m in map(RM_CALL.search, lines[mark:]) if m]
        assert host.mm.pinned == {}
        good = make_vm(host, SYSTEM_OFF)
        good.start()
        good.close()
    finally:
        host.shutdown()


def test_61_start_failing_after_config_image_leaks_the_vm_as_the_spec_says():
    """§6 A14l: the firmware region lookup (EINVAL) comes after CONFIG_IMAGE,
    and the VM stays in LOAD. §9 A14l resets only outside NO_STATE, LOAD and
    RESET, so close sends MEM_RECLAIM (the RM holds the configured parcel:
    refused, the pages stay pinned for good, §5.1) and DEALLOC_VMID (refused
    for a VM the RM is still loading): the VMID and the region are leaked,
    logged, as on a device whose driver has no other way back."""
    lines = []
    host = boot("ack-6.1", trace=lines.append)
    try:
        vm = make_vm(host, SYSTEM_OFF)
        set_fw(host, vm.vm, 0x4000_0000, 0x2000)
        with pytest.raises(OSError) as e:
            vm.start()
        assert e.value.errno == errno.EINVAL
        mark = len(lines)
        vm.close()
        calls = [m.group(1) for m in map(RM_CALL.search, lines[mark:]) if m]
        assert calls == ["MEM_RECLAIM", "VM_DEALLOCATE"]
        assert sum("for VM" in line for line in host.dmesg) == 2  # both refused, logged
        assert len(host.gunyah.firmware.rm.vm_manager.vms) == 1
        assert len(host.mm.pinned) == RAM_SIZE // 4096
    finally:
        host.shutdown()
