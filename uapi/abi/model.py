"""What an ABI is: records with field layouts, constants and ioctl numbers.

Types are compared in one normal form whatever produced them (cffi,
libclang, ctypes): ``u8``..``u64`` and ``s8``..``s64`` for integers (an enum
is the integer type its compiler picks: unsigned if no value is negative),
``char`` (its sign is the target's), ``bool``, ``ptr``, ``struct`` and
``union`` (tags differ across generations, so they are left out), and
``T[n]`` for arrays. Field paths are dotted (``mmio.phys_addr``); members
of anonymous structs and unions appear under their parent's path, as C
names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from uapi.header import Header


@dataclass(frozen=True)
class Field:
    offset: int
    size: int
    type: str


@dataclass(frozen=True)
class Record:
    size: int
    align: int
    fields: dict[str, Field] = field(default_factory=dict)


@dataclass(frozen=True)
class Abi:
    """Everything a VMM binary bakes in: layouts and numbers, by C name."""

    records: dict[str, Record]
    constants: dict[str, int]
    ioctls: dict[str, int] = field(default_factory=dict)

    def values(self) -> dict[str, int]:
        """Constants and ioctl numbers together, as a header's macros are."""
        return {**self.constants, **self.ioctls}


def int_type(signed: bool, size: int) -> str:
    return f"{'s' if signed else 'u'}{size * 8}"


def _cffi_type(ffi, ctype) -> str:
    if ctype.kind == "array":
        return f"{_cffi_type(ffi, ctype.item)}[{ctype.length}]"
    if ctype.kind == "pointer":
        return "ptr"
    if ctype.kind in ("struct", "union"):
        return ctype.kind
    if ctype.kind == "enum":
        return int_type(min(ctype.elements, default=0) < 0, ffi.sizeof(ctype))
    name = ctype.cname
    if name in ("char", "_Bool"):
        return {"char": "char", "_Bool": "bool"}[name]
    return int_type(not name.startswith(("uint", "unsigned")), ffi.sizeof(ctype))


def _cffi_fields(ffi, ctype, base: int, prefix: str, out: dict[str, Field]) -> None:
    for name, f in ctype.fields:
        path, offset = prefix + name, base + f.offset
        out[path] = Field(offset, ffi.sizeof(f.type), _cffi_type(ffi, f.type))
        if f.type.kind in ("struct", "union"):
            _cffi_fields(ffi, f.type, offset, path + ".", out)


def from_header(header: Header) -> Abi:
    """The ABI a loaded header describes, as cffi lays it out."""
    ffi, records = header.ffi, {}
    for name in header.records:
        ctype = ffi.typeof(name)
        fields: dict[str, Field] = {}
        _cffi_fields(ffi, ctype, 0, "", fields)
        records[name] = Record(ffi.sizeof(ctype), ffi.alignof(ctype), fields)
    return Abi(records, dict(header.constants), dict(header.ioctls))
