"""The RM's transport against the golden messages: decode, compare, re-encode, byte-compare."""

import struct

import pytest

from hyp.rm import rm_rpc, vm_mgnt
from hyp.rm.rm_rpc import Message, MsgType, Reassembler
from tests.rm_golden import all_names, load


@pytest.mark.parametrize("name", all_names())
def test_decode_compare_reencode(name):
    golden = load(name)
    r = Reassembler()
    results = [r.feed(p) for p in golden.packets]
    assert results[:-1] == [None] * (len(golden.packets) - 1)
    message = results[-1]
    h = golden.header
    assert (message.type.name, message.seq, message.msg_id) == (h["type"], h["seq"], h["msg_id"])
    assert len(message.payload) == h["size"]
    assert all(len(p) <= rm_rpc.PACKET_SIZE for p in golden.packets)
    assert len(golden.packets) == h["fragments"] + 1
    if "error" in h:
        assert struct.unpack_from("<I", message.payload)[0] == h["error"]
    assert rm_rpc.fragment(message) == golden.packets


def test_status_and_exit_notifications_decode_to_their_fields():
    status = load("notify_vm_status.txt")
    fields = dict(status.fields)["status"]
    vmid, _, vm_status, os_status, app = vm_mgnt.STATUS.unpack(status.payload)
    assert (vmid, vm_status, os_status, app) == (
        fields["vmid"],
        fields["vm_status"],
        fields["os_status"],
        fields["app_status"],
    )
    exited = load("notify_vm_exited.txt")
    fields = dict(exited.fields)["exited"]
    vmid, exit_type, size = vm_mgnt.EXITED.unpack_from(exited.payload)
    reason = struct.unpack_from("<I", exited.payload, vm_mgnt.EXITED.size)[0]
    assert (vmid, exit_type, size, reason) == (
        fields["vmid"],
        fields["exit_type"],
        fields["reason_size"],
        fields["reason"],
    )


def test_hyp_resources_reply_entries_are_44_bytes():
    golden = load("reply_get_hyp_resources.txt")
    expected = [f for kind, f in golden.fields if kind == "resource"]
    assert vm_mgnt.RESOURCE.size == 44
    count = struct.unpack_from("<I", golden.payload, 4)[0]
    entries = [vm_mgnt.RESOURCE.unpack_from(golden.payload, 8 + 44 * i) for i in range(count)]
    assert [(e[0], e[2], e[4], e[5], e[7]) for e in entries] == [
        (f["type"], f["partner_vmid"], f["label"], f["cap_id"], f["virq"]) for f in expected
    ]


@pytest.mark.parametrize(
    "packet",
    [
        bytes.fromhex("31010500010000560000"),  # version nibble 1 but 3 header words
        bytes.fromhex("22010500010000560000"),  # version 2
        bytes.fromhex("21fd0500010000560000"),  # 63 continuations
        bytes.fromhex("210105"),  # shorter than a header
        bytes.fromhex("21010500010000") + bytes(240),  # longer than 240 bytes
    ],
)
def test_the_receiver_drops_bad_packets(packet):
    r = Reassembler()
    assert r.feed(packet) is None
    assert r.dropped == 1


def test_a_new_message_aborts_a_partial_one():
    golden = load("multi_fragment_request.txt")
    r = Reassembler()
    assert r.feed(golden.packets[0]) is None
    other = load("request_vm_allocate.txt")
    assert r.feed(other.packets[0]).msg_id == 0x5600_0001
    assert r.aborted == 1
    assert r.feed(golden.packets[1]) is None  # its first half is gone
    assert r.dropped == 1


def test_a_mismatched_continuation_is_dropped_and_aborts():
    golden = load("multi_fragment_request.txt")
    r = Reassembler()
    r.feed(golden.packets[0])
    wrong_seq = golden.packets[1][:2] + b"\x03\x01" + golden.packets[1][4:]
    assert r.feed(wrong_seq) is None
    assert (r.aborted, r.dropped) == (1, 1)


def test_limits():
    assert rm_rpc.MAX_MESSAGE == 14616
    with pytest.raises(ValueError):
        rm_rpc.fragment(Message(MsgType.REQUEST, 0, 1, bytes(14617)))
