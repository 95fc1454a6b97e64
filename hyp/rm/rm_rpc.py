"""RM RPC transport (the Resource Manager's src/rpc/rm-rpc.c): packets and messages.

Every packet is at most 240 bytes: an 8-byte header, then up to 232 bytes
of payload. Header byte 0 is the API version (1) and header words (2),
byte 1 the message type (bits 1:0: continuation 0, request 1, reply 2,
notification 3) and the number of continuation packets that follow (bits
7:2, at most 62), then le16 sequence id and le32 message id. A message of
N bytes is sent as ceil(N/232) packets (one if empty), all carrying the
same fragment count, sequence and message id; continuations have type 0.

:class:`Reassembler` applies the receiver's rules: a packet with a bad
version, header size or fragment count is dropped; a new message aborts a
partial one; a continuation that does not match the partial message
(message id, sequence, fragment count) aborts it and is dropped.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

PACKET_SIZE = 240
HEADER_SIZE = 8
FRAGMENT_PAYLOAD = PACKET_SIZE - HEADER_SIZE
MAX_FRAGMENTS = 62
MAX_MESSAGE = (MAX_FRAGMENTS + 1) * FRAGMENT_PAYLOAD
API_VERSION, HEADER_WORDS = 1, 2
_HEADER = struct.Struct("<BBHI")


class MsgType(IntEnum):
    CONTINUATION = 0
    REQUEST = 1
    REPLY = 2
    NOTIFICATION = 3


_TYPES = tuple(MsgType)  # by the two type bits


class Header(NamedTuple):  # a tuple: one is made for every packet
    type: MsgType
    fragments: int
    seq: int
    msg_id: int

    def pack(self) -> bytes:
        return _HEADER.pack(
            API_VERSION | HEADER_WORDS << 4, self.type | self.fragments << 2, self.seq, self.msg_id
        )

    @classmethod
    def unpack(cls, packet: bytes) -> Header | None:
        """The header of ``packet``, or None if the receiver must drop it."""
        if not HEADER_SIZE <= len(packet) <= PACKET_SIZE:
            return None
        api, flags, seq, msg_id = _HEADER.unpack_from(packet)
        fragments = flags >> 2
        if api != API_VERSION | HEADER_WORDS << 4 or fragments > MAX_FRAGMENTS:
            return None
        return cls(_TYPES[flags & 3], fragments, seq, msg_id)


class Message(NamedTuple):
    type: MsgType
    seq: int
    msg_id: int
    payload: bytes


def fragment(message: Message) -> list[bytes]:
    """The packets of ``message``; ValueError beyond MAX_MESSAGE bytes."""
    size = len(message.payload)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes exceeds {MAX_MESSAGE}")
    chunks = [message.payload[i : i + FRAGMENT_PAYLOAD] for i in range(0, size, FRAGMENT_PAYLOAD)]
    chunks = chunks or [b""]
    frags = len(chunks) - 1
    first = Header(message.type, frags, message.seq, message.msg_id).pack()
    if not frags:
        return [first + chunks[0]]
    cont = Header(MsgType.CONTINUATION, frags, message.seq, message.msg_id).pack()
    return [(first if i == 0 else cont) + chunk for i, chunk in enumerate(chunks)]


class Reassembler:
    """Packets in, whole messages out, by the receiver's rules."""

    def __init__(self):
        self._partial: tuple[Header, list[bytes]] | None = None
        self.dropped = 0
        self.aborted = 0

    def feed(self, packet: bytes) -> Message | None:
        """A complete message once its last packet arrives, else None."""
        header = Header.unpack(packet)
        if header is None:
            self.dropped += 1
            return None
        body = bytes(packet[HEADER_SIZE:])
        if header.type != MsgType.CONTINUATION:
            if self._partial is not None:
                self.aborted += 1
            self._partial = (header, [body])
        else:
            if self._partial is None or not self._continues(header):
                self._abort()
                self.dropped += 1
                return None
            self._partial[1].append(body)
        first, parts = self._partial
        if len(parts) == first.fragments + 1:
            self._partial = None
            return Message(first.type, first.seq, first.msg_id, b"".join(parts))
        return None

    def _continues(self, header: Header) -> bool:
        first = self._partial[0]
        return (header.msg_id, header.seq, header.fragments) == (
            first.msg_id,
            first.seq,
            first.fragments,
        )

    def _abort(self) -> None:
        if self._partial is not None:
            self.aborted += 1
            self._partial = None
