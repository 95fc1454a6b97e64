"""An Arm PL011 UART, as much of it as a console needs, served by MMIO exits.

Writes to UARTDR go to ``output``; UARTFR says the transmitter is never
full and the receiver holds what ``feed`` queued; UARTDR reads take from
that queue. The PrimeCell id registers read as a PL011's, so a guest
driver that probes them finds one.

Interrupts (for Linux's amba-pl011, which sends through the TX interrupt
once it has filled half the FIFO): the raw status UARTRIS has TXRIS
always (the FIFO drains at once) and RXRIS and RTRIS while input waits;
UARTMIS is RIS masked by UARTIMSC. The line is an edge (a doorbell or
irqfd): ``interrupt`` is called whenever a write to UARTIMSC or new
input makes a masked status bit newly pending; the driver's handler
then loops on UARTMIS. Other registers read as zero and take writes
without effect.
"""

from __future__ import annotations

import collections
import threading

UARTDR, UARTFR = 0x000, 0x018
UARTIMSC, UARTRIS, UARTMIS, UARTICR = 0x038, 0x03C, 0x040, 0x044
FR_RXFE, FR_TXFF, FR_TXFE = 1 << 4, 1 << 5, 1 << 7
RXIS, TXIS, RTIS = 1 << 4, 1 << 5, 1 << 6
# UARTPeriphID0..3, UARTPCellID0..3 (PL011 r1p5)
ID_VALUES = (0x11, 0x10, 0x34, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
ID_REGS = dict(zip(range(0xFE0, 0x1000, 4), ID_VALUES, strict=True))
SIZE = 0x1000


class Pl011:
    def __init__(self, output, interrupt=None):
        self.output = output
        self.interrupt = interrupt or (lambda: None)
        self._rx: collections.deque[int] = collections.deque()
        self._imsc = 0
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self._lock:
            before = self._mis()
            self._rx.extend(data)
            rises = self._mis() & ~before
        if rises:
            self.interrupt()

    def _ris(self) -> int:
        return TXIS | (RXIS | RTIS if self._rx else 0)

    def _mis(self) -> int:
        return self._ris() & self._imsc

    def mmio_read(self, offset: int, size: int) -> int:
        with self._lock:
            if offset == UARTDR:
                return self._rx.popleft() if self._rx else 0
            if offset == UARTFR:
                return FR_TXFE | (0 if self._rx else FR_RXFE)
            if offset == UARTIMSC:
                return self._imsc
            if offset == UARTRIS:
                return self._ris()
            if offset == UARTMIS:
                return self._mis()
        return ID_REGS.get(offset, 0)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        if offset == UARTDR:
            self.output(bytes([value & 0xFF]))
        elif offset == UARTIMSC:
            with self._lock:
                before = self._mis()
                self._imsc = value & 0x7FF
                rises = self._mis() & ~before
            if rises:
                self.interrupt()
