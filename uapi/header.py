"""Load a UAPI C header into a cffi FFI, mechanically.

Each header under uapi/linux is the single source of its ABI. cffi's cdef
reads C declarations but not the preprocessor, so the header's text is
turned into what cdef accepts by rules, never by a second copy:

- comments, ``#include``, include guards and function-like macros go
  (the header's Python module writes those few helpers as functions);
- ``#define NAME _IO/_IOR/_IOW/_IOWR(type, nr[, argtype])`` becomes an
  :class:`uapi.ioctl.IoctlDef`, numbered by uapi.ioctl from ``ffi.sizeof``;
- ``#define NAME <literal>`` (an integer, a character, or ``(1UL << n)``)
  stays a cffi constant;
- structs, unions and enums go to ``ffi.cdef`` after typedefs of the
  kernel's fixed-width types (what ``<linux/types.h>`` would give).

Anything else in a ``#define`` is a :class:`HeaderError`: a header that
cannot be loaded must fail loudly, not lose a constant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import cffi

from uapi.ioctl import IoctlDef, ioctl_table

# <linux/types.h> as cffi sees it: the fixed-width kernel types.
_LINUX_TYPES = "\n".join(
    f"typedef {'u' if sign == 'u' else ''}int{bits}_t __{sign}{bits};"
    for bits in (8, 16, 32, 64)
    for sign in ("u", "s")
)

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE = re.compile(r"#\s*define\s+(\w+)(\(?)\s*(.*)")
_IOCTL = re.compile(r"(_IOWR|_IOW|_IOR|_IO)\s*\((.*)\)")
_NUM = r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*"
_INT = re.compile(rf"\(?\s*{_NUM}\s*(?:<<\s*{_NUM}\s*)?\)?")
_CHAR = re.compile(r"'(.)'")


class HeaderError(ValueError):
    """A header line that these rules cannot load."""


@dataclass(frozen=True)
class Header:
    """One loaded header: its FFI, constants, ioctls and record names."""

    name: str
    ffi: cffi.FFI
    constants: dict[str, int]
    ioctl_defs: tuple[IoctlDef, ...]
    ioctls: dict[str, int]
    records: tuple[str, ...]


def _literal(text: str) -> int | None:
    if m := _CHAR.fullmatch(text):
        return ord(m.group(1))
    if m := _INT.fullmatch(text):
        return int(m.group(1), 0) << int(m.group(2) or "0", 0)
    return None


def _ioctl_def(name: str, macro: str, args: str, defines: dict[str, int]) -> IoctlDef:
    parts = [p.strip() for p in args.split(",")]
    if len(parts) != (2 if macro == "_IO" else 3):
        raise HeaderError(f"{name}: {macro} takes {'2' if macro == '_IO' else '3'} arguments")
    type_ = defines.get(parts[0], _literal(parts[0]))
    nr = _literal(parts[1])
    if type_ is None or nr is None:
        raise HeaderError(f"{name}: cannot read type {parts[0]!r} or nr {parts[1]!r}")
    return IoctlDef(name, macro, type_, nr, parts[2] if macro != "_IO" else None)


def split(text: str) -> tuple[str, dict[str, int], list[IoctlDef]]:
    """Split header text into (declarations for cdef, defines, ioctl defs)."""
    text = _COMMENT.sub("", text.replace("\\\n", " "))
    decls, defines, ioctls = [], {}, []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            decls.append(line)
            continue
        m = _DEFINE.match(stripped)
        if not m or m.group(2) or not m.group(3):
            continue  # include, guard, conditional or function-like macro
        name, body = m.group(1), m.group(3).strip()
        if io := _IOCTL.fullmatch(body):
            ioctls.append(_ioctl_def(name, io.group(1), io.group(2), defines))
        elif (value := _literal(body)) is not None:
            defines[name] = value
        else:
            raise HeaderError(f"{name}: cannot load #define value {body!r}")
    return "\n".join(decls), defines, ioctls


def load(package: str, filename: str) -> Header:
    """Load ``filename`` shipped in ``package`` (e.g. ``uapi.linux``)."""
    text = resources.files(package).joinpath(filename).read_text()
    decls, defines, defs = split(text)
    ffi = cffi.FFI()
    consts = "\n".join(f"#define {k} {v:#x}" for k, v in defines.items())
    ffi.cdef(f"{_LINUX_TYPES}\n{consts}\n{decls}")
    lib = ffi.dlopen(None)
    constants = {k: getattr(lib, k) for k in dir(lib)}
    _, structs, unions = ffi.list_types()
    records = tuple(f"struct {s}" for s in structs) + tuple(f"union {u}" for u in unions)
    return Header(
        name=filename,
        ffi=ffi,
        constants=constants,
        ioctl_defs=tuple(defs),
        ioctls=ioctl_table(defs, ffi.sizeof),
        records=records,
    )
