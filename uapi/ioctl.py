"""ioctl request numbers: the asm-generic ``_IOC`` encoding.

Mirrors include/uapi/asm-generic/ioctl.h (the encoding arm64 and x86-64
share): ``dir << 30 | size << 16 | type << 8 | nr``. Sizes come from the
cffi model of the header, never from a number typed in by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14

_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS

_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2

_DIRS = {"_IO": _IOC_NONE, "_IOW": _IOC_WRITE, "_IOR": _IOC_READ, "_IOWR": _IOC_READ | _IOC_WRITE}


def _IOC(dir_: int, type_: int, nr: int, size: int) -> int:
    """Encode a request; raises ValueError when a field does not fit."""
    if not (0 <= nr < 1 << _IOC_NRBITS and 0 <= type_ < 1 << _IOC_TYPEBITS):
        raise ValueError(f"ioctl type {type_:#x} or nr {nr:#x} out of range")
    if not 0 <= size < 1 << _IOC_SIZEBITS:
        raise ValueError(f"ioctl argument size {size} does not fit in {_IOC_SIZEBITS} bits")
    return dir_ << _IOC_DIRSHIFT | size << _IOC_SIZESHIFT | type_ << _IOC_TYPESHIFT | nr


def _IO(type_: int, nr: int) -> int:
    return _IOC(_IOC_NONE, type_, nr, 0)


def _IOR(type_: int, nr: int, size: int) -> int:
    return _IOC(_IOC_READ, type_, nr, size)


def _IOW(type_: int, nr: int, size: int) -> int:
    return _IOC(_IOC_WRITE, type_, nr, size)


def _IOWR(type_: int, nr: int, size: int) -> int:
    return _IOC(_IOC_READ | _IOC_WRITE, type_, nr, size)


@dataclass(frozen=True)
class IoctlFields:
    """A request number taken apart, for messages about a mismatch."""

    dir: int
    type: int
    nr: int
    size: int

    @classmethod
    def decode(cls, request: int) -> IoctlFields:
        return cls(
            dir=request >> _IOC_DIRSHIFT & 0x3,
            type=request >> _IOC_TYPESHIFT & 0xFF,
            nr=request >> _IOC_NRSHIFT & 0xFF,
            size=request >> _IOC_SIZESHIFT & (1 << _IOC_SIZEBITS) - 1,
        )


@dataclass(frozen=True)
class IoctlDef:
    """One ``#define NAME _IOx(type, nr[, argtype])`` of a header."""

    name: str
    macro: str
    type: int
    nr: int
    argtype: str | None

    def request(self, sizeof) -> int:
        """The request number; ``sizeof`` maps a C type name to its size."""
        size = sizeof(self.argtype) if self.argtype else 0
        return _IOC(_DIRS[self.macro], self.type, self.nr, size)


def ioctl_table(defs, sizeof) -> dict[str, int]:
    """Every request number of a header, in its order: name -> number."""
    return {d.name: d.request(sizeof) for d in defs}
