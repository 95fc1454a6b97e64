"""The holding-cell guest's command mailbox, as the sample VMM serves it.

Tests drive that guest one command at a time (tests/holdingcell.py); under
``gunyah-sim run`` this device drives it instead, with a fixed script:
WHO (which hypervisor the guest found, from the SMCCC vendor UID), whose
answer goes to the console as a line, then OFF (PSCI SYSTEM_OFF). Reads of
the command word take the next command (OFF once the script is done);
argument reads are zero; other writes are taken without effect.
"""

from __future__ import annotations

import threading

SIZE = 0x40
COMMAND, RESULT = 0x00, 0x20
WHO, OFF = 7, 6
HYPERVISORS = {1: "Gunyah", 2: "GenieZone"}


class Mailbox:
    def __init__(self, output):
        self.output = output
        self._script = [WHO, OFF]
        self._last: int | None = None
        self._lock = threading.Lock()

    def mmio_read(self, offset: int, size: int) -> int:
        if offset != COMMAND:
            return 0
        with self._lock:
            self._last = self._script.pop(0) if len(self._script) > 1 else self._script[0]
            return self._last

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        with self._lock:
            who = self._last == WHO and offset == RESULT
        if who:
            name = HYPERVISORS.get(value, "another hypervisor")
            self.output(f"holding-cell: running on {name}\n".encode())
