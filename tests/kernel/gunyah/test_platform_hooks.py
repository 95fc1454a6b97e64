"""Platform hooks: one set per RM link, called around every memory hand-over."""

import errno

import pytest

from kernel.gunyah.platform_hooks import (
    GunyahRmPlatformOps,
    gunyah_rm_register_platform_ops,
    gunyah_rm_unregister_platform_ops,
)
from tests.gunyahvm import MMIO, RAM_IPA, make_vm
from uapi.linux import gunyah as gh

GUEST = f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={RAM_IPA + 0x40000:#x}
    str x2, [x2]           // a page of RAM the DTB parcel does not hold: demand paged
    str x2, [x9]
    b .
"""


def recording_ops(calls, fail=None):
    def hook(name):
        def record(rm, *args):
            calls.append(name)
            if name == fail:
                raise OSError(errno.EPERM, f"{name} refused")

        return record

    names = ("pre_mem_share", "post_mem_reclaim", "pre_demand_page", "release_demand_page")
    return GunyahRmPlatformOps(**{n: hook(n) for n in names})


def test_one_set_of_ops_per_link(host):
    rm = host.gunyah.rm
    ops = recording_ops([])
    gunyah_rm_register_platform_ops(rm, ops)
    with pytest.raises(OSError) as e:
        gunyah_rm_register_platform_ops(rm, recording_ops([]))
    assert e.value.errno == errno.EEXIST
    gunyah_rm_unregister_platform_ops(rm, ops)
    gunyah_rm_register_platform_ops(rm, ops)


def test_hooks_bracket_every_hand_over(host):
    calls = []
    gunyah_rm_register_platform_ops(host.gunyah.rm, recording_ops(calls))
    t = make_vm(host, GUEST)
    run = t.run_page()
    t.start()
    assert calls == ["pre_mem_share"]  # the DTB parcel
    assert t.run() == 0 and run.exit_reason == gh.GUNYAH_VCPU_EXIT_MMIO
    # the code page and the touched page, each demand paged once
    assert calls == ["pre_mem_share", "pre_demand_page", "pre_demand_page"]
    del run
    t.close()
    # after start the DTB parcel's two pages are demand-paged memory, reclaimed as such
    assert calls[3:] == ["release_demand_page"] * 4


def test_a_refusing_pre_share_hook_fails_start(host):
    calls = []
    gunyah_rm_register_platform_ops(host.gunyah.rm, recording_ops(calls, fail="pre_mem_share"))
    t = make_vm(host, GUEST)
    with pytest.raises(OSError) as e:
        t.start()
    assert e.value.errno == errno.EPERM
    assert calls == ["pre_mem_share"]  # the RM was never asked
    t.close()
    assert host.gunyah.firmware.rm.memparcels.parcels == {}


def test_a_refusing_demand_page_hook_is_a_page_fault_exit(host):
    calls = []
    gunyah_rm_register_platform_ops(host.gunyah.rm, recording_ops(calls, fail="pre_demand_page"))
    t = make_vm(host, GUEST)
    run = t.run_page()
    t.start()
    assert t.run() == 0
    assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
    assert (run.page_fault.phys_addr, run.page_fault.attempt) == (RAM_IPA, -errno.EPERM)
    del run
    t.close()
