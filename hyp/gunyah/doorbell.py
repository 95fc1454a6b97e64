"""Doorbells (hyp/ipc/doorbell): 64 flag bits that raise a virq.

``send`` ORs flags in and asserts the bound virq: a level assertion while
``flags & enable_mask`` is non-zero (and the ``ack_mask`` flags are then
cleared at once), else a single edge. ``mask`` changes the masks and
re-evaluates; ``receive`` reads and clears flags.
"""

from __future__ import annotations

from hyp.gunyah.errors import Error, check
from hyp.gunyah.object import Object, ObjectType
from hyp.gunyah.vgic import VirqSource

MASK64 = (1 << 64) - 1


class Doorbell(Object):
    TYPE = ObjectType.DOORBELL

    def __init__(self, hyp, partition):
        super().__init__(hyp, partition)
        self.flags, self.enable_mask, self.ack_mask = 0, MASK64, 0
        self.source = VirqSource(lambda: bool(self.flags & self.enable_mask))

    def send(self, new_flags: int) -> int:
        old = self.flags
        self.flags |= new_flags & MASK64
        level = bool(self.flags & self.enable_mask)
        self.source.assert_virq(edge_only=not level)
        if level:
            self.flags &= ~self.ack_mask
        return old

    def receive(self, clear_flags: int) -> int:
        check(clear_flags != 0, Error.ARGUMENT_INVALID, "clear_flags is 0")
        old = self.flags
        self.flags &= ~clear_flags
        return old

    def reset(self) -> None:
        self.flags, self.ack_mask, self.enable_mask = 0, 0, MASK64
        self.source.clear_virq()

    def mask(self, enable_mask: int, ack_mask: int) -> None:
        was = bool(self.flags & self.enable_mask)
        now = bool(self.flags & enable_mask)
        self.enable_mask, self.ack_mask = enable_mask & MASK64, ack_mask & MASK64
        if was and not now:
            self.source.clear_virq()
        elif now and not was:
            self.source.assert_virq(edge_only=False)
        if now:
            self.flags &= ~self.ack_mask

    def on_destroy(self) -> None:
        if self.source.vic is not None:
            self.source.unbind()
