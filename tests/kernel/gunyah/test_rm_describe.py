"""rsc_mgr_rpc's trace view of RM calls: names and request fields."""

import struct

from kernel.gunyah import rsc_mgr_rpc as rpc


def test_a_vm_call_shows_its_fields():
    req = struct.pack("<HBBIQ", 128, 1, 0, 0, 0x8000_0000)
    assert rpc.gunyah_rm_describe(rpc.VM_SET_BOOT_CONTEXT, req) == (
        "VM_SET_BOOT_CONTEXT{vmid=128, reg_set=0x1, reg_index=0x0, value=0x80000000}"
    )
    assert rpc.gunyah_rm_describe_reply(rpc.VM_ALLOCATE, struct.pack("<I", 0x1_0080)) == "vmid=128"
    assert rpc.gunyah_rm_describe_reply(rpc.VM_START, b"") == "0 bytes"


def test_a_memory_parcel_shows_its_acl_and_sgl():
    req = struct.pack("<BBBBI", 0, 0, 0, 0, 7) + struct.pack("<HH", 2, 0)
    req += struct.pack("<HBB", 3, 7, 0) + struct.pack("<HBB", 128, 6, 0)
    req += (
        struct.pack("<HH", 1, 0)
        + struct.pack("<QQ", 0x8000_0000, 0x1000)
        + struct.pack("<HH", 0, 0)
    )
    assert rpc.gunyah_rm_describe(rpc.MEM_SHARE, req) == (
        "MEM_SHARE{mem_type=0x0, flags=0x0, label=0x7, acl=[3:RWX, 128:W|R], "
        "sgl=[0x80000000+0x1000]}"
    )
    assert rpc.gunyah_rm_describe_reply(rpc.MEM_SHARE, struct.pack("<I", 5)) == "mem_handle=0x5"


def test_an_unknown_or_short_message_is_shown_by_size():
    assert rpc.gunyah_rm_describe(0x5600_00FF, b"abc") == "0x560000ff{3 bytes}"
    assert rpc.gunyah_rm_describe(rpc.VM_START, b"\x01") == "VM_START{1 bytes, truncated}"
    assert rpc.gunyah_rm_msg_name(rpc.MEM_RECLAIM) == "MEM_RECLAIM"
