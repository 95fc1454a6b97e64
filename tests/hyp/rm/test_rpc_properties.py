"""Any payload up to the RM's maximum fragments and reassembles exactly, both ways
between the kernel's transport and the RM's."""

from hypothesis import given, settings
from hypothesis import strategies as st

from hyp.rm import rm_rpc
from hyp.rm.rm_rpc import Message, MsgType, Reassembler
from kernel.gunyah.rsc_mgr import MAX_REQUEST, TYPE_REQUEST, GunyahRm, RmNode


class Wire:
    def __init__(self):
        self.sent, self.faults = [], {}

    def gunyah_hypercall_msgq_send(self, capid, data, flags):
        self.sent.append(bytes(data))
        return 0, True


payloads = st.integers(0, rm_rpc.MAX_MESSAGE).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@settings(max_examples=200, deadline=None)
@given(payloads, st.integers(0, 0xFFFF), st.integers(1, 0xFFFF_FFFF))
def test_rm_fragments_and_reassembles_exactly(payload, seq, msg_id):
    message = Message(MsgType.NOTIFICATION, seq, msg_id, payload)
    packets = rm_rpc.fragment(message)
    assert len(packets) == max(1, -(-len(payload) // rm_rpc.FRAGMENT_PAYLOAD))
    assert all(len(p) <= rm_rpc.PACKET_SIZE for p in packets)
    r = Reassembler()
    out = [r.feed(p) for p in packets]
    assert out[-1] == message and out[:-1] == [None] * (len(packets) - 1)


@settings(max_examples=100, deadline=None)
@given(payloads.filter(lambda p: len(p) <= MAX_REQUEST), st.integers(0, 0xFFFF))
def test_kernel_requests_reach_the_rm_whole(payload, seq):
    link = GunyahRm(Wire(), RmNode(1, 2, 33, 34), lambda v, h: None)
    link._send(TYPE_REQUEST, seq, 0x5600_0001, payload)
    link.close()
    r = Reassembler()
    out = [r.feed(p) for p in link.hcall.sent]
    assert out[-1] == Message(MsgType.REQUEST, seq, 0x5600_0001, payload)


@settings(max_examples=100, deadline=None)
@given(payloads)
def test_rm_notifications_reach_the_kernel_whole(payload):
    link, seen = GunyahRm(Wire(), RmNode(1, 2, 33, 34), lambda v, h: None), []
    link.gunyah_rm_notifier_register(lambda m, p: seen.append((m, p)))
    for packet in rm_rpc.fragment(Message(MsgType.NOTIFICATION, 1, 0x5610_0001, payload)):
        link._process(packet)
    link.flush_notifs()
    link.close()
    assert seen == [(0x5610_0001, payload)]
