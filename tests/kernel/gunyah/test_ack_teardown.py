"""Teardown of the last reference on the Android profiles (spec gunyah-ack.md §9).

The RM calls after the last fd closes, for a VM still running and for one
whose guest exited: android14-6.1 force-stops, resets, reclaims every
region's parcel (then unpins it) and deallocates the VMID; android15-6.6
takes its demand-paged pages back by hypercall, so after the reset only the
VMID is left to free. Nothing stays pinned and the host's RAM is all free.
"""

import re

import pytest

from tests.kernel.gunyah.ackvm import SYSTEM_OFF, boot, make_vm
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
        assert not any("for VM" in line for line in host.dmesg)  # no RM call failed
    finally:
        host.shutdown()
