"""Message queues (hyp/ipc/msgqueue): bounded queues of messages up to a size.

Configured with ``create_info`` (bits 15:0 queue depth, 31:16 maximum message
size, at most 1024 bytes). ``send`` fails MSGQUEUE_FULL at depth, ``receive``
MSGQUEUE_EMPTY when empty. The receiver's virq is asserted (level) while
the queue holds at least ``not_empty_thres`` messages, or on a PUSH send;
the sender's while it has room for ``depth - not_full_thres`` more.
"""

from __future__ import annotations

from collections import deque

from hyp.gunyah.errors import Error, check
from hyp.gunyah.object import Object, ObjectState, ObjectType
from hyp.gunyah.vgic import VirqSource

MAX_MSG_SIZE = 1024
SEND_PUSH = 1


class Endpoint(VirqSource):
    """One side of a queue: its virq follows whether that side has work."""

    def update(self, edge: bool = False) -> None:
        if self._pending():
            self.assert_virq(edge_only=False)
        elif edge:
            self.assert_virq(edge_only=True)
        else:
            self.clear_virq()


class Msgqueue(Object):
    TYPE = ObjectType.MSGQUEUE

    def __init__(self, hyp, partition):
        super().__init__(hyp, partition)
        self.depth = self.max_size = 0
        self.queue: deque[bytes] = deque()
        self.not_empty_thres, self.not_full_thres = 1, 0
        self.send_end = Endpoint(lambda: len(self.queue) <= self.not_full_thres)
        self.recv_end = Endpoint(lambda: len(self.queue) >= self.not_empty_thres)

    def configure(self, create_info: int) -> None:
        self.require(ObjectState.INIT)
        depth, size = create_info & 0xFFFF, create_info >> 16 & 0xFFFF
        check(create_info >> 32 == 0, Error.ARGUMENT_INVALID, "create_info")
        check(depth > 0 and 0 < size <= MAX_MSG_SIZE, Error.ARGUMENT_INVALID, "depth/size")
        self.depth, self.max_size = depth, size
        self.not_full_thres = depth - 1

    def on_activate(self) -> None:
        check(self.depth > 0, Error.OBJECT_CONFIG, "msgqueue not configured")

    def send(self, data: bytes, flags: int) -> bool:
        """Queue a message; returns not_full afterwards."""
        check(flags & ~SEND_PUSH == 0, Error.ARGUMENT_INVALID, "send_flags")
        check(0 < len(data) <= self.max_size, Error.ARGUMENT_SIZE)
        check(len(self.queue) < self.depth, Error.MSGQUEUE_FULL)
        self.queue.append(bytes(data))
        self.recv_end.update(edge=bool(flags & SEND_PUSH))
        self.send_end.update()
        return len(self.queue) < self.depth

    def receive(self, max_size: int) -> tuple[bytes, bool]:
        """The oldest message and not_empty afterwards."""
        check(self.queue, Error.MSGQUEUE_EMPTY)
        check(len(self.queue[0]) <= max_size, Error.ARGUMENT_SIZE, "buffer too small")
        data = self.queue.popleft()
        self.recv_end.update()
        self.send_end.update()
        return data, bool(self.queue)

    def flush(self) -> None:
        self.queue.clear()
        self.recv_end.update()
        self.send_end.update()

    def configure_receive(self, thres: int, holdoff: int) -> None:
        if thres != 0xFFFF_FFFF:
            check(0 < thres <= self.depth, Error.ARGUMENT_INVALID, "not_empty_thres")
            self.not_empty_thres = thres

    def configure_send(self, thres: int, holdoff: int) -> None:
        if thres != 0xFFFF_FFFF:
            check(thres < self.depth, Error.ARGUMENT_INVALID, "not_full_thres")
            self.not_full_thres = thres

    def on_destroy(self) -> None:
        for end in (self.send_end, self.recv_end):
            if end.vic is not None:
                end.unbind()
