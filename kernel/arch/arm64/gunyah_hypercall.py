"""Gunyah hypercalls from the host (arch/arm64/gunyah/gunyah_hypercall.c).

Each wrapper issues ``hvc #0`` with the SMCCC function id 0xC6008000 + n,
zeroes the reserved argument, and returns the Gunyah error value (0 on
success) with the outputs; ``gunyah_error_remap`` in kernel.gunyah.gunyah
turns errors into errno. The conduit is the firmware's ``hvc`` and the
host's memory for pointer arguments; every wrapper is error-injectable.
"""

from __future__ import annotations

from kernel.fault_inject import allow_error_injection

VENDOR_HYP_CALL_UID = 0x8600_FF01
GUNYAH_UID = (0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67)
MASK64 = (1 << 64) - 1


def _id(n: int) -> int:
    return 0xC600_8000 + n


HYP_IDENTIFY, BELL_SEND, BELL_SET_MASK = _id(0x00), _id(0x12), _id(0x15)
MSGQ_SEND, MSGQ_RECV = _id(0x1B), _id(0x1C)
ADDRSPACE_MAP, ADDRSPACE_UNMAP, MEMEXTENT_DONATE, VCPU_RUN = (
    _id(0x2B),
    _id(0x2C),
    _id(0x61),
    _id(0x65),
)
MSGQ_TX_PUSH = 1


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


class GunyahHypercall:
    """The hypercalls the Gunyah drivers make, bound to one host's conduit."""

    def __init__(self, firmware):
        self.firmware = firmware
        self.memory = firmware.host.memory
        self.faults: dict[str, int] = {}

    def inject(self, name: str, error: int):
        """The injected Gunyah ``error`` in the shape the wrapper returns."""
        shape = _FAULT_SHAPES.get(name)
        return shape(error) if shape else error

    def _hvc(self, *regs: int) -> list[int]:
        out = self.firmware.hvc([r & MASK64 for r in regs] + [0] * (8 - len(regs)))
        return out + [0] * (8 - len(out))

    def arch_is_gunyah_guest(self) -> bool:
        return tuple(self._hvc(VENDOR_HYP_CALL_UID)[:4]) == GUNYAH_UID

    def gunyah_hypercall_hyp_identify(self) -> tuple[int, tuple[int, int, int]]:
        out = self._hvc(HYP_IDENTIFY)
        return out[0], (out[1], out[2], out[3])

    @allow_error_injection
    def gunyah_hypercall_bell_send(self, capid: int, new_flags: int) -> tuple[int, int]:
        out = self._hvc(BELL_SEND, capid, new_flags, 0)
        return _signed(out[0]), out[1]

    @allow_error_injection
    def gunyah_hypercall_bell_set_mask(self, capid: int, enable: int, ack: int) -> int:
        return _signed(self._hvc(BELL_SET_MASK, capid, enable, ack, 0)[0])

    @allow_error_injection
    def gunyah_hypercall_msgq_send(self, capid: int, data: bytes, flags: int) -> tuple[int, bool]:
        buf = self.memory.alloc(len(data))
        self.memory.write(buf, data)
        out = self._hvc(MSGQ_SEND, capid, len(data), buf, flags, 0)
        return _signed(out[0]), bool(out[1])

    @allow_error_injection
    def gunyah_hypercall_msgq_recv(self, capid: int, size: int) -> tuple[int, bytes, bool]:
        buf = self.memory.alloc(size)
        out = self._hvc(MSGQ_RECV, capid, buf, size, 0)
        err = _signed(out[0])
        return err, (self.memory.read(buf, out[1]) if err == 0 else b""), bool(out[2])

    @allow_error_injection
    def gunyah_hypercall_addrspace_map(self, capid, extent, ipa, attrs, flags, offset, size) -> int:
        return _signed(self._hvc(ADDRSPACE_MAP, capid, extent, ipa, attrs, flags, offset, size)[0])

    @allow_error_injection
    def gunyah_hypercall_addrspace_unmap(self, capid, extent, ipa, flags, offset, size) -> int:
        return _signed(self._hvc(ADDRSPACE_UNMAP, capid, extent, ipa, flags, offset, size, 0)[0])

    @allow_error_injection
    def gunyah_hypercall_memextent_donate(self, options, from_cap, to_cap, offset, size) -> int:
        return _signed(self._hvc(MEMEXTENT_DONATE, options, from_cap, to_cap, offset, size, 0)[0])

    @allow_error_injection
    def gunyah_hypercall_vcpu_run(self, capid: int, resume: tuple[int, int, int]):
        out = self._hvc(VCPU_RUN, capid, *resume, 0)
        return _signed(out[0]), out[1], (out[2], out[3], out[4])


_FAULT_SHAPES = {
    "gunyah_hypercall_bell_send": lambda e: (e, 0),
    "gunyah_hypercall_msgq_send": lambda e: (e, False),
    "gunyah_hypercall_msgq_recv": lambda e: (e, b"", False),
    "gunyah_hypercall_vcpu_run": lambda e: (e, 0, (0, 0, 0)),
}
