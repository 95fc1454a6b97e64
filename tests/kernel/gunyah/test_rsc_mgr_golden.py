"""The kernel's RM transport and catalogue against the golden messages."""

import struct

import pytest

from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah.rsc_mgr import TYPE_REQUEST, GunyahRm, RmNode, _Call
from tests.rm_golden import load


class Wire:
    """A fake hypercall layer that records what the transport sends."""

    def __init__(self):
        self.sent, self.faults = [], {}

    def gunyah_hypercall_msgq_send(self, capid, data, flags):
        self.sent.append((bytes(data), flags))
        return 0, True


class Catalogue:
    """A fake RM link that records (message id, request) and answers ``reply``."""

    def __init__(self, reply: bytes = b""):
        self.calls, self.reply, self.faults = [], reply, {}
        self.platform_ops = None

    def gunyah_rm_call(self, msg_id, req):
        self.calls.append((msg_id, req))
        return self.reply


def rm():
    return GunyahRm(Wire(), RmNode(1, 2, 33, 34), lambda virq, handler: None)


@pytest.mark.parametrize("name", ["request_vm_allocate.txt", "multi_fragment_request.txt"])
def test_requests_encode_to_the_golden_packets(name):
    golden, link = load(name), rm()
    link._send(TYPE_REQUEST, golden.header["seq"], golden.header["msg_id"], golden.payload)
    assert [p for p, _ in link.hcall.sent] == golden.packets
    assert [f for _, f in link.hcall.sent] == [0] * (len(golden.packets) - 1) + [1]  # PUSH last


def test_catalogue_builds_the_golden_payloads():
    fake = Catalogue(struct.pack("<I", 0x81))
    assert rpc.gunyah_rm_alloc_vmid(fake, 0) == 0x81
    assert fake.calls == [(0x5600_0001, load("request_vm_allocate.txt").payload)]
    fake = Catalogue(struct.pack("<I", 9))
    parcel = rpc.GunyahRmMemParcel(
        acl=[(0x80, 7), (3, 7)],
        mem_entries=[(0x9000_0000 + n * 0x2000, 0x1000) for n in range(14)],
        label=7,
    )
    assert rpc.gunyah_rm_mem_share(fake, parcel) == 9
    assert fake.calls == [(0x5100_0013, load("multi_fragment_request.txt").payload)]


@pytest.mark.parametrize("name", ["reply_error.txt", "reply_get_hyp_resources.txt"])
def test_replies_reach_their_caller(name):
    golden, link = load(name), rm()
    call = _Call(golden.header["msg_id"])
    link._pending[golden.header["seq"]] = call
    for packet in golden.packets:
        link._process(packet)
    assert call.done.is_set() and call.payload == golden.payload


@pytest.mark.parametrize("name", ["notify_vm_status.txt", "notify_vm_exited.txt"])
def test_notifications_reach_the_notifier_chain_in_priority_order(name):
    golden, link, seen = load(name), rm(), []
    link.gunyah_rm_notifier_register(lambda m, p: seen.append(("low", m, p)), priority=-1)
    link.gunyah_rm_notifier_register(lambda m, p: seen.append(("high", m, p)), priority=1)
    for packet in golden.packets:
        link._process(packet)
    link.flush_notifs()
    msg_id = golden.header["msg_id"]
    assert seen == [("high", msg_id, golden.payload), ("low", msg_id, golden.payload)]


def test_hyp_resources_are_parsed_from_the_golden_reply():
    golden = load("reply_get_hyp_resources.txt")
    fake = Catalogue(golden.payload[4:])
    resources = rpc.gunyah_rm_get_hyp_resources(fake, 0x80)
    expected = [f for kind, f in golden.fields if kind == "resource"]
    assert [(r.type, r.partner_vmid, r.resource_label, r.cap_id, r.virq) for r in resources] == [
        (f["type"], f["partner_vmid"], f["label"], f["cap_id"], f["virq"]) for f in expected
    ]
    for bad in (b"", golden.payload[4:-1]):
        with pytest.raises(OSError) as e:
            rpc.gunyah_rm_get_hyp_resources(Catalogue(bad), 0x80)
        assert e.value.errno == 74  # EBADMSG
