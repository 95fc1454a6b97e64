"""What the RM builds for a VM and hands the host: vCPUs, the address space, the
memory extents Linux expects, doorbell vdevices, the DTB overlay and its memory."""

import struct

import fdt
import pytest

from hyp.gunyah.object import ObjectType
from kernel.gunyah import rsc_mgr_rpc as rpc
from tests.kernel.gunyah.rmhelper import Host, vm_config_dtb
from tests.kernel.gunyah.test_rm_lifecycle import (
    DTB_OFFSET,
    IMAGE_IPA,
    PARCEL_PA,
    PARCEL_SIZE,
    lend_image,
)

VCPU, DOORBELL_SRC, MEM_EXTENT, ADDR_SPACE = 4, 0, 9, 10


@pytest.fixture
def ready_vm():
    host = Host()
    vmid = rpc.gunyah_rm_alloc_vmid(host.rm, 0)
    handle, parcel = lend_image(host, vmid, vm_config_dtb(vcpus=1, doorbells=((5, 8),)))
    rpc.gunyah_rm_vm_configure(host.rm, vmid, 0, handle, 0, 0, DTB_OFFSET, 0x1000)
    rpc.gunyah_rm_vm_set_address_layout(host.rm, vmid, 0, IMAGE_IPA, PARCEL_SIZE)
    rpc.gunyah_rm_vm_init(host.rm, vmid)
    yield host, vmid, parcel
    host.close()


def test_resources_linux_expects(ready_vm):
    host, vmid, _ = ready_vm
    resources = {
        (r.type, r.resource_label): r for r in rpc.gunyah_rm_get_hyp_resources(host.rm, vmid)
    }
    assert set(resources) == {
        (VCPU, 0),
        (ADDR_SPACE, 0),
        (DOORBELL_SRC, 5),
        (MEM_EXTENT, 0),
        (MEM_EXTENT, 1),
        (MEM_EXTENT, 2),
        (MEM_EXTENT, 3),
    }
    space = host.firmware.host.cspace
    assert space.lookup(resources[(VCPU, 0)].cap_id, ObjectType.THREAD) is not None
    assert space.lookup(resources[(MEM_EXTENT, 2)].cap_id, ObjectType.MEMEXTENT) is not None


def test_the_dtb_parcel_moved_to_the_vm_and_holds_the_overlay(ready_vm):
    host, _, _ = ready_vm
    gunyah = host.firmware.gunyah
    owner = gunyah.memdb.owner(PARCEL_PA)
    assert owner is not None and owner.kind.name == "SPARSE"
    assert owner is not gunyah.memdb.owner(PARCEL_PA + PARCEL_SIZE)  # next page: still the host's
    tree = fdt.parse_dtb(gunyah.dram.read(PARCEL_PA + DTB_OFFSET, 0x1000))
    bell = tree.get_node("/hypervisor/bell-5")
    assert bell.get_property("compatible").data == ["gunyah-doorbell"]
    assert bell.get_property("interrupts").data == [0, 8, 1]
    gic = tree.get_node("/interrupt-controller@8000000")
    assert gic.get_property("compatible").data == ["arm,gic-v3"]


def test_reset_gives_the_memory_back_and_ends_the_parcel(ready_vm):
    """The image parcel's pages go back to the host with the reset, and the parcel
    ends with them: there is nothing left for MEM_RECLAIM (HANDLE_INVALID)."""
    host, vmid, parcel = ready_vm
    gunyah = host.firmware.gunyah
    before = gunyah.memdb.owner(PARCEL_PA + PARCEL_SIZE)
    rpc.gunyah_rm_vm_reset(host.rm, vmid)
    assert gunyah.memdb.owner(PARCEL_PA) is before
    with pytest.raises(OSError) as e:
        rpc.gunyah_rm_mem_reclaim(host.rm, parcel)
    assert e.value.rm_error == 0x7  # HANDLE_INVALID
    rpc.gunyah_rm_dealloc_vmid(host.rm, vmid)
    assert host.firmware.rm.vm_manager.vms == {}


def test_a_parcel_in_use_cannot_be_reclaimed(ready_vm):
    host, _, parcel = ready_vm
    with pytest.raises(OSError) as e:
        rpc.gunyah_rm_mem_reclaim(host.rm, parcel)
    assert e.value.rm_error == 0xB  # MEM_INUSE


def test_forced_stop_reports_vm_stop_forced(ready_vm):
    host, vmid, _ = ready_vm
    events = []
    host.rm.gunyah_rm_notifier_register(lambda m, p: events.append((m, p)))
    rpc.gunyah_rm_vm_start(host.rm, vmid)
    rpc.gunyah_rm_vm_stop(host.rm, vmid)
    host.rm.flush_notifs()
    exits = [struct.unpack("<HHIII", p) for m, p in events if m == rpc.NOTIFY_VM_EXITED]
    assert exits == [(vmid, 7, 8, 0, 3)]  # VM_STOP_FORCED; NORMAL; then the stop reason


def test_append_carries_sgl_beyond_512_entries():
    host = Host()
    try:
        vmid = rpc.gunyah_rm_alloc_vmid(host.rm, 0)
        entries = [(PARCEL_PA + 0x10_0000 + n * 0x2000, 0x1000) for n in range(600)]
        parcel = rpc.GunyahRmMemParcel(acl=[(vmid, 4)], mem_entries=entries)
        rpc.gunyah_rm_mem_share(host.rm, parcel)
        rm_parcel = host.firmware.rm.memparcels.parcels[parcel.mem_handle]
        assert rm_parcel.complete and rm_parcel.sgl == entries
    finally:
        host.close()
