"""The RM messages the Android profiles add, against golden bytes written from the spec.

VM_SET_FIRMWARE_MEM (gunyah-ack.md §6: {vmid, reserved, mem_handle,
fw_offset, fw_size}) and the MEM_LEND of an android14-6.1 user region
(§5.1): the kernel's catalogue encodes them to the golden payloads, and the
RM decodes the same bytes to the golden fields. (The transport round trip of
every golden file is test_rpc_golden.py's.)
"""

import struct

from hyp.rm import memparcel, vm_mgnt
from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah.vm_mgr_mm import acl_rights
from tests.kernel.gunyah.test_rsc_mgr_golden import Catalogue
from tests.rm_golden import load
from uapi.linux import gunyah_ack as ack

RWX = ack.GH_MEM_ALLOW_READ | ack.GH_MEM_ALLOW_WRITE | ack.GH_MEM_ALLOW_EXEC


def test_kernel_encodes_set_firmware_mem():
    golden = load("request_vm_set_firmware_mem.txt")
    f = dict(golden.fields)["firmware"]
    fake = Catalogue()
    parcel = rpc.GunyahRmMemParcel(acl=[], mem_entries=[], mem_handle=f["mem_handle"])
    rpc.gunyah_rm_vm_set_firmware_mem(fake, f["vmid"], parcel, f["fw_offset"], f["fw_size"])
    assert fake.calls == [(golden.header["msg_id"], golden.payload)]


def test_rm_decodes_set_firmware_mem():
    golden = load("request_vm_set_firmware_mem.txt")
    f = dict(golden.fields)["firmware"]
    vmid, reserved, handle, offset, size = vm_mgnt.unpack(vm_mgnt._FIRMWARE_MEM, golden.payload)
    assert (vmid, reserved, handle, offset, size) == (
        f["vmid"],
        0,
        f["mem_handle"],
        f["fw_offset"],
        f["fw_size"],
    )


def test_kernel_lends_a_user_region_as_the_golden_mem_lend():
    golden = load("request_mem_lend_user_region.txt")
    f = dict(golden.fields)["parcel"]
    assert acl_rights(RWX) == f["rights"]
    parcel = rpc.GunyahRmMemParcel(
        acl=[(f["vmid"], acl_rights(RWX))], mem_entries=[(f["phys"], f["size"])], label=f["label"]
    )
    fake = Catalogue(struct.pack("<I", 4))
    assert rpc.gunyah_rm_mem_share(fake, parcel) == 4
    assert fake.calls == [(rpc.MEM_LEND, golden.payload)]
    assert golden.header["msg_id"] == rpc.MEM_LEND


class OwnerRm:
    """Enough of the RM for its parcel table: handlers, and the host owns all RAM."""

    def __init__(self):
        self.handlers = {}

    def owns(self, vmid, base, size):
        return True


def test_rm_takes_the_golden_mem_lend():
    golden = load("request_mem_lend_user_region.txt")
    f = dict(golden.fields)["parcel"]
    parcels = memparcel.Memparcels(OwnerRm())
    (handle,) = struct.unpack("<I", parcels.lend_or_share(3, golden.payload, lend=True))
    parcel = parcels.parcels[handle]
    assert (parcel.label, parcel.acl, parcel.sgl) == (
        f["label"],
        [(f["vmid"], f["rights"])],
        [(f["phys"], f["size"])],
    )
    assert parcel.lend and parcel.complete
