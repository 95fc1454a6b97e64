"""What the hardware reports about a data abort: the faulting access, decoded.

On a stage-2 fault real hardware fills ESR_EL2 with the access's syndrome
(size, sign extension, register, write or read). unicorn leaves ESR_EL2
empty, so this module decodes the instruction instead and reports the same
facts, plus the base-register writeback of pre- and post-indexed forms.

:func:`address` gives the address any load, store, atomic or DC instruction
accesses, for the FAR of an abort the guest's own stage 1 takes (unicorn
reports none either).

Single loads and stores of 1, 2, 4 or 8 bytes are decoded in their
unsigned-immediate, unscaled, pre-index, post-index and register-offset
forms, and load-acquire/store-release. Everything else (pairs, exclusives,
atomics, SIMD/FP, literal loads) is :data:`UNSUPPORTED`: the hypervisor
cannot emulate it against MMIO and faults the guest.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

MASK64 = (1 << 64) - 1
ZR_OR_SP = 31


class Access(NamedTuple):
    """One decoded single-register load or store.

    ``address`` is the virtual address accessed; ``writeback`` the new base
    register value of pre/post-indexed forms; ``sign_extend`` loads extend
    to ``dest_bits`` (32 or 64).
    """

    is_write: bool
    size: int
    rt: int
    address: int
    sign_extend: bool = False
    dest_bits: int = 64
    rn: int = 0
    writeback: int | None = None


UNSUPPORTED = None

# How a form's address is made from its base register Xn (or SP).
OFFSET, REGISTER, PRE_INDEX, POST_INDEX = range(4)


class Form(NamedTuple):
    """What a load/store word says whatever the registers hold: what
    :func:`decode` caches per word. ``offset`` is the immediate added to the
    base (OFFSET, PRE_INDEX, POST_INDEX); REGISTER adds Xm extended by
    ``option`` and shifted by ``shift``."""

    is_write: bool
    size: int
    rt: int
    rn: int
    sign_extend: bool
    dest_bits: int
    mode: int
    offset: int = 0
    rm: int = 0
    option: int = 0
    shift: int = 0

    def access(self, base: int, index: int = 0) -> Access:
        """The access with Xn (or SP) = ``base`` and, for REGISTER, Xm = ``index``."""
        mode = self.mode
        if mode == REGISTER:
            address = (base + _extend_reg(index, self.option, self.shift)) & MASK64
        else:
            address = (base + self.offset) & MASK64
        writeback = None
        if mode == PRE_INDEX:
            writeback = address
        elif mode == POST_INDEX:
            writeback, address = address, base
        return Access(
            self.is_write,
            self.size,
            self.rt,
            address,
            self.sign_extend,
            self.dest_bits,
            self.rn,
            writeback,
        )


def _sext(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _extend_reg(value: int, option: int, shift: int) -> int:
    """The register-offset operand: UXTW, LSL/UXTX, SXTW, SXTX, then shift."""
    if option == 0b010:
        value &= 0xFFFF_FFFF
    elif option == 0b110:
        value = _sext(value, 32)
    elif option == 0b111:
        value = _sext(value, 64)
    return (value << shift) & MASK64


def _kind(size: int, opc: int) -> tuple[bool, bool, int] | None:
    """(is_write, sign_extend, dest_bits) of a load/store opc, or None."""
    if opc == 0b00:
        return True, False, 64
    if opc == 0b01:
        return False, False, 64
    if opc == 0b10 and size < 3:
        return False, True, 64
    if opc == 0b11 and size < 2:
        return False, True, 32
    return None  # PRFM and unallocated encodings


def writes(insn: int) -> bool:
    """Whether a load/store ``insn`` that :func:`decode` cannot emulate writes memory
    (what a syndrome's WnR would say): atomics do (not LDAPR), and so do the
    compare-and-swaps CAS and CASP, whatever their acquire (L) bit says; literal
    loads do not; otherwise the L bit (22) of pairs, exclusives and the SIMD
    forms tells, and a clear bit is a store."""
    if insn & 0x3B00_0000 == 0x1800_0000:
        return False  # literal loads (their bit 22 is part of the offset)
    if insn & 0x3B20_0C00 == 0x3820_0000:
        return insn >> 12 & 0xF != 0b1100  # atomics write, but LDAPR (o3=1, opc=100)
    if _compare_and_swap(insn):
        return True
    return not insn >> 22 & 1


def _compare_and_swap(insn: int) -> bool:
    """CAS (o2=1, o1=1, any size) or CASP (o2=0, o1=1, size 0x: with size 1x the
    same bits are LDXP/STXP) in the exclusives group: a read and a write, the
    write reported when it is refused (the Arm ARM's AccType_ATOMICRW)."""
    if insn & 0x3F20_0000 != 0x0820_0000:
        return False
    return bool(insn >> 23 & 1) or not insn >> 31


def decode(insn: int, xreg, sp) -> Access | None:
    """Decode ``insn``; ``xreg(n)`` reads Xn and ``sp`` is the current SP, or a
    callable giving it (called only when the base register is SP)."""
    f = form(insn)
    if f is None:
        return UNSUPPORTED
    base = xreg(f.rn) if f.rn != ZR_OR_SP else sp() if callable(sp) else sp
    index = xreg(f.rm) if f.mode == REGISTER and f.rm != ZR_OR_SP else 0
    return f.access(base, index)


@functools.lru_cache(maxsize=4096)
def form(insn: int) -> Form | None:
    """The :class:`Form` of ``insn``, or UNSUPPORTED; a trapping word is decoded
    once (the cache is bounded: a guest may trap on any number of words)."""
    rt, rn = insn & 0x1F, insn >> 5 & 0x1F
    size = insn >> 30
    if insn & 0x3F00_0000 == 0x0800_0000:
        return _ordered(insn, rt, rn, size)
    if insn & 0x3B00_0000 != 0x3800_0000 and insn & 0x3B00_0000 != 0x3900_0000:
        return UNSUPPORTED
    if insn >> 26 & 1:
        return UNSUPPORTED  # SIMD/FP
    kind = _kind(size, insn >> 22 & 3)
    if kind is None:
        return UNSUPPORTED
    common = (*kind[:1], 1 << size, rt, rn, *kind[1:])
    if insn >> 24 & 1:  # unsigned immediate, scaled
        return Form(*common, OFFSET, (insn >> 10 & 0xFFF) << size)
    if insn >> 21 & 1:
        if insn >> 10 & 3 != 0b10:
            return UNSUPPORTED  # atomic memory operations
        shift = size if insn >> 12 & 1 else 0
        return Form(*common, REGISTER, 0, insn >> 16 & 0x1F, insn >> 13 & 7, shift)
    imm9 = _sext(insn >> 12, 9)
    mode = insn >> 10 & 3
    if mode in (0b00, 0b10):  # unscaled, unprivileged
        return Form(*common, OFFSET, imm9)
    return Form(*common, PRE_INDEX if mode == 0b11 else POST_INDEX, imm9)


def _ordered(insn: int, rt: int, rn: int, size: int) -> Form | None:
    """LDAR/STLR; the exclusive forms of the same group are unsupported."""
    o2, is_load, o1, o0 = insn >> 23 & 1, insn >> 22 & 1, insn >> 21 & 1, insn >> 15 & 1
    if not (o2 and not o1 and o0):
        return UNSUPPORTED
    return Form(not is_load, 1 << size, rt, rn, False, 64, OFFSET)


def load_result(access: Access, data: int) -> int:
    """The value a load leaves in Xt: truncated, then zero- or sign-extended."""
    bits = access.size * 8
    value = data & ((1 << bits) - 1)
    if access.sign_extend:
        value = _sext(value, bits) & ((1 << access.dest_bits) - 1)
    return value


def address(insn: int, xreg, sp: int, pc: int) -> int | None:
    """The virtual address any load, store, atomic or DC instruction ``insn`` at ``pc``
    accesses first (for a fault's FAR: unicorn reports none), or None if ``insn``
    accesses no memory. Pointer-authenticated loads give their base."""
    rn = insn >> 5 & 0x1F
    base = sp if rn == ZR_OR_SP else xreg(rn)
    if insn & 0xFFF8_F000 == 0xD508_7000:  # DC <op>, Xt (SYS #op1, C7, Cm, #op2)
        return xreg(insn & 0x1F)
    if insn & 0x0A00_0000 != 0x0800_0000:
        return None  # not in the loads and stores group
    if insn & 0x3F00_0000 == 0x0800_0000:  # exclusives, load-acquire/store-release
        return base
    if insn & 0xBF9F_0000 == 0x0C00_0000 or insn & 0xBF80_0000 == 0x0C80_0000:
        return base  # SIMD structures: multiple, post-index
    if insn & 0xBF98_0000 == 0x0D00_0000 or insn & 0xBF80_0000 == 0x0D80_0000:
        return base  # SIMD structures: single, post-index
    if insn & 0x3B00_0000 == 0x1800_0000:  # literal
        return (pc + (_sext(insn >> 5, 19) << 2)) & MASK64
    if insn & 0x3A00_0000 == 0x2800_0000:  # pairs
        return _pair_address(insn, base)
    if insn & 0x3A00_0000 == 0x3800_0000:  # single registers, atomics
        return _single_address(insn, base, xreg)
    return None


def _pair_address(insn: int, base: int) -> int:
    opc, simd = insn >> 30, insn >> 26 & 1
    scale = 2 + opc if simd else 2 + (opc >> 1)
    offset = _sext(insn >> 15, 7) << scale
    return base if insn >> 23 & 3 == 0b01 else (base + offset) & MASK64  # post-index: base


def _single_address(insn: int, base: int, xreg) -> int:
    size = insn >> 30
    if insn >> 26 & 1 and insn >> 23 & 1:  # SIMD/FP with opc<1> set: 128 bits
        size = 4
    if insn >> 24 & 1:  # unsigned immediate, scaled
        return (base + ((insn >> 10 & 0xFFF) << size)) & MASK64
    if insn >> 21 & 1:
        if insn >> 10 & 3 == 0b10:  # register offset
            rm = insn >> 16 & 0x1F
            index = 0 if rm == ZR_OR_SP else xreg(rm)
            return (
                base + _extend_reg(index, insn >> 13 & 7, size if insn >> 12 & 1 else 0)
            ) & MASK64
        return base  # atomics; LDRAA/LDRAB (the offset applies to an authenticated base)
    if insn >> 10 & 3 == 0b01:  # post-index
        return base
    return (base + _sext(insn >> 12, 9)) & MASK64
