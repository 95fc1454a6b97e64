"""Drive the holding-cell guest (vmm/guests/holding-cell.S) one command at a time."""

from __future__ import annotations

from tests.gunyahvm import RAM_IPA, RAM_SIZE, make_vm
from uapi.linux import gunyah as gh
from vmm.guests import image
from vmm.loader import load_image

MAILBOX = 0x0B00_0000
OK, FAIL, READ, WRITE, LOOPBACK, HVC, OFF, WHO = range(8)
HYP_UNKNOWN, HYP_GUNYAH, HYP_GENIEZONE = range(3)  # WHO's result
STATUS, RESULT, REPORT = 0x18, 0x20, 0x28


def flat_image() -> bytes:
    """The guest's ELF as one flat block from RAM_IPA."""
    loaded = load_image(image("holding-cell"), RAM_IPA, RAM_SIZE, "holding-cell")
    flat = bytearray(loaded.end - RAM_IPA)
    for addr, data, _ in loaded.segments:
        flat[addr - RAM_IPA : addr - RAM_IPA + len(data)] = data
    return bytes(flat)


class HoldingCell:
    def __init__(self, host, **kwargs):
        self.vm = make_vm(host, flat_image(), **kwargs)
        self.elsewhere: list[tuple[int, int]] = []  # MMIO exits outside the mailbox
        self.run = self.vm.run_page()
        self.vm.start()
        self._step()  # the first exit is the read of the command word
        assert self._at() == (MAILBOX, 0), self._at()

    def _step(self) -> int:
        self.vm.run()
        return self.run.exit_reason

    def _at(self):
        return self.run.mmio.phys_addr, self.run.mmio.is_write

    def _answer(self, value: int) -> None:
        self.run.mmio.data[0:8] = (value & (1 << 64) - 1).to_bytes(8, "little")
        self.run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_HANDLED

    def command(self, cmd: int, arg0: int = 0, arg1: int = 0) -> dict[int, int]:
        """Run one command; the mailbox writes it made, by offset (STATUS exit: {})."""
        for value, offset in ((cmd, 0x08), (arg0, 0x10), (arg1, None)):
            self._answer(value)
            if self._step() != gh.GUNYAH_VCPU_EXIT_MMIO:
                return {}
            if offset is not None:
                assert self._at() == (MAILBOX + offset, 0), self._at()
        writes = {}
        while True:
            addr, is_write = self._at()
            if (addr, is_write) == (MAILBOX, 0):
                return writes  # the next command's read waits
            if MAILBOX <= addr < MAILBOX + 0x40 and is_write:
                writes[addr - MAILBOX] = int.from_bytes(bytes(self.run.mmio.data), "little")
                self._answer(0)
            else:  # an access outside the mailbox: nothing is there, the guest takes an abort
                self.elsewhere.append((addr, is_write))
                self.run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_FAULT
            if self._step() != gh.GUNYAH_VCPU_EXIT_MMIO:
                return writes

    def close(self) -> None:
        del self.run
        self.vm.close()
