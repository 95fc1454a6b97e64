"""Gunyah's SMCCC function ids: its hypercalls and the vendor-hypervisor service
(hyp/interfaces/smccc; the architecture's decoding is :mod:`hyp.arch.smccc`).

Gunyah hypercalls are owner VENDOR_HYP (6) with function bits 15:14 = 0b10
and must be fast SMC64 calls: 0xC6008000 + n. The service range (bits
15:14 = 0b11) answers CALL_UID and REVISION for SMC32 fast calls.
"""

from __future__ import annotations

from hyp.arch.smccc import FAST, SMC64, owner

OWNER_VENDOR_HYP = 6

CALL_UID = 0x8600_FF01
REVISION = 0x8600_FF03
# c1d58fcd-a453-5fdb-9265-ce36673d5f14 as the four 32-bit words of X0..X3.
GUNYAH_UID = (0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67)

HYPERCALL_BASE = 0xC600_8000


def hypercall_number(fid: int) -> int | None:
    """n of a Gunyah SMCCC hypercall id, None if ``fid`` is not one."""
    try:
        return _NUMBERS[fid]
    except KeyError:
        pass
    n = _decode(fid)
    if n is not None:  # only hypercall ids are kept: a guest's X0 is any value
        _NUMBERS[fid] = n
    return n


_NUMBERS: dict[int, int] = {}  # hypercall id -> n, of the ids seen


def _decode(fid: int) -> int | None:
    if owner(fid) != OWNER_VENDOR_HYP or fid >> 14 & 3 != 0b10:
        return None
    if fid & (FAST | SMC64) != FAST | SMC64 or fid >> 16 & 0xFF:
        return None
    return fid & 0x3FFF


def hypercall_id(n: int) -> int:
    return HYPERCALL_BASE + n
