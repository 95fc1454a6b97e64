"""A virtio console (virtio 1.x section 5.3): port 0 only, no multiport, no resize.

Queue 0 (receiveq) takes what the VMM's user types; queue 1 (transmitq)
goes to the console output. Input waits in a buffer until the driver has
posted a receive buffer; every returned buffer raises the interrupt.
"""

from __future__ import annotations

import collections

VIRTIO_ID_CONSOLE = 3
RECEIVEQ, TRANSMITQ = 0, 1


class VirtioConsole:
    device_id = VIRTIO_ID_CONSOLE
    features = 0
    num_queues = 2

    def __init__(self, output):
        self.output = output
        self._input: collections.deque[int] = collections.deque()
        self.transport = None

    def config(self) -> bytes:
        return bytes(12)  # cols, rows, max_nr_ports, emerg_wr: unused without features

    def feed(self, data: bytes) -> None:
        """Bytes from the user, for the guest's receive queue."""
        transport = self.transport
        with transport.lock:
            self._input.extend(data)
            if transport.live:
                self._fill_receiveq(transport)

    def notify(self, transport, index: int) -> None:
        if index == TRANSMITQ:
            self._drain_transmitq(transport)
        else:
            self._fill_receiveq(transport)

    def _drain_transmitq(self, transport) -> None:
        q, returned = transport.queues[TRANSMITQ], False
        while (chain := q.pop()) is not None:
            head, parts = chain
            data = b"".join(transport.mem.read(a, n) for a, n, writable in parts if not writable)
            self.output(data)
            q.push(head, 0)
            returned = True
        if returned:
            transport.interrupt()

    def _fill_receiveq(self, transport) -> None:
        q, returned = transport.queues[RECEIVEQ], False
        while self._input and q.ready:
            chain = q.pop()
            if chain is None:
                break
            head, parts = chain
            written = 0
            for addr, length, writable in parts:
                if not writable or not self._input:
                    continue
                take = bytes(self._input.popleft() for _ in range(min(length, len(self._input))))
                transport.mem.write(addr, take)
                written += len(take)
            q.push(head, written)
            returned = True
        if returned:
            transport.interrupt()
