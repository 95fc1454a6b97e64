"""Message queues: 240-byte round trips, FULL and EMPTY at the edges, receive virqs."""

import pytest

from hyp.gunyah.errors import Error
from tests.hyp.gunyah.vmhelper import Hv


@pytest.fixture
def queue(gunyah):
    hv = Hv(gunyah)
    q = hv.create("msgqueue")
    hv.ok("msgqueue_configure", q, 2 | 240 << 16, 0)  # depth 2, 240-byte messages
    hv.ok("object_activate", q, 0)
    return hv, q, gunyah.root.memory


def test_240_byte_round_trip(queue):
    hv, q, mem = queue
    message = bytes(range(240))
    src, dst = mem.alloc(240), mem.alloc(240)
    mem.write(src, message)
    assert hv.ok("msgqueue_send", q, 240, src, 0, 0)[0] == 1  # not full
    size, not_empty = hv.ok("msgqueue_receive", q, dst, 240, 0)[:2]
    assert (size, not_empty) == (240, 0)
    assert mem.read(dst, 240) == message


def test_full_and_empty_at_the_edges(queue):
    hv, q, mem = queue
    buf = mem.alloc(240)
    assert hv.err("msgqueue_receive", q, buf, 240, 0) == Error.MSGQUEUE_EMPTY == 60
    assert hv.ok("msgqueue_send", q, 8, buf, 0, 0)[0] == 1
    assert hv.ok("msgqueue_send", q, 8, buf, 0, 0)[0] == 0  # now full
    assert hv.err("msgqueue_send", q, 8, buf, 0, 0) == Error.MSGQUEUE_FULL == 61
    assert hv.ok("msgqueue_receive", q, buf, 240, 0)[:2] == [8, 1]
    assert hv.ok("msgqueue_receive", q, buf, 240, 0)[:2] == [8, 0]
    assert hv.err("msgqueue_receive", q, buf, 240, 0) == Error.MSGQUEUE_EMPTY


def test_oversized_and_bad_buffers(queue):
    hv, q, mem = queue
    buf = mem.alloc(241)
    assert hv.err("msgqueue_send", q, 241, buf, 0, 0) == Error.ARGUMENT_SIZE
    assert hv.err("msgqueue_send", q, 0, buf, 0, 0) == Error.ARGUMENT_SIZE
    assert hv.err("msgqueue_send", q, 16, 0x1234, 0, 0) == Error.ADDR_INVALID
    assert hv.err("msgqueue_send", q, 16, buf, 2, 0) == Error.ARGUMENT_INVALID  # unknown flag


def test_receive_virq_follows_the_queue(queue, gunyah):
    hv, q, mem = queue
    fired = []
    gunyah.host_vic.handlers[40] = fired.append
    hv.ok("msgqueue_bind_receive_virq", q, gunyah.root_caps["host_vic"], 40, 0)
    assert (
        hv.err("msgqueue_bind_receive_virq", q, gunyah.root_caps["host_vic"], 41, 0)
        == Error.VIRQ_BOUND
    )
    buf = mem.alloc(8)
    hv.ok("msgqueue_send", q, 8, buf, 0, 0)
    assert fired == [40]
