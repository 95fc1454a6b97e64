"""Which names a C header declares, read with libclang.

libclang parses the header the way a compiler would (with the host C
compiler's include directories), and this module lists what the header
itself declares: its records with every field path and type, its enum
constants, and its object-like macros. Numbers are not taken from here:
uapi.abi.gcc measures them with the compiler that builds the VMM.

The ``libclang`` wheel ships the shared library; its Python bindings may be
replaced by the ``clang`` package (ctypeslib2 needs that one), so the
library file is always set here by path rather than left to a search.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from functools import cache

from uapi.abi.model import int_type


class AbiInputError(Exception):
    """The header cannot be read as C (missing, unreadable, or not C)."""


@cache
def cindex():
    """The configured ``clang.cindex`` module."""
    import clang
    from clang import cindex as ci

    native = os.path.join(os.path.dirname(clang.__file__), "native", "libclang.so")
    if not ci.Config.loaded and os.path.exists(native):
        ci.Config.set_library_file(native)
    return ci


def library_file() -> str:
    """Path of the libclang shared library in use (for ctypeslib2)."""
    ci = cindex()
    return ci.Config.library_file or "libclang.so"


@cache
def compiler_include_dirs(cc: str = "gcc") -> tuple[str, ...]:
    """The system include directories of the host C compiler, in order."""
    try:
        out = subprocess.run(
            [cc, "-xc", "-E", "-v", "/dev/null"], capture_output=True, text=True, check=True
        ).stderr
    except (OSError, subprocess.CalledProcessError) as e:
        raise AbiInputError(f"cannot run the C compiler {cc!r}: {e}") from None
    lines = out.splitlines()
    start = lines.index("#include <...> search starts here:") + 1
    end = lines.index("End of search list.")
    return tuple(line.strip() for line in lines[start:end])


@dataclass
class Listing:
    """The names a header declares: records with field types, constants."""

    records: dict[str, dict[str, str]] = field(default_factory=dict)
    constants: list[str] = field(default_factory=list)


def _type(t) -> str:
    ci = cindex()
    t = t.get_canonical()
    kind = t.kind
    if kind == ci.TypeKind.CONSTANTARRAY:
        return f"{_type(t.element_type)}[{t.element_count}]"
    if kind == ci.TypeKind.POINTER:
        return "ptr"
    if kind == ci.TypeKind.RECORD:
        return "union" if t.get_declaration().kind == ci.CursorKind.UNION_DECL else "struct"
    if kind == ci.TypeKind.ENUM:
        return _type(t.get_declaration().enum_type)
    if kind in (ci.TypeKind.CHAR_S, ci.TypeKind.CHAR_U):
        return "char"
    if kind == ci.TypeKind.BOOL:
        return "bool"
    unsigned = kind in (
        ci.TypeKind.UCHAR,
        ci.TypeKind.USHORT,
        ci.TypeKind.UINT,
        ci.TypeKind.ULONG,
        ci.TypeKind.ULONGLONG,
    )
    return int_type(not unsigned, t.get_size())


_RECORDS = ("STRUCT_DECL", "UNION_DECL")


def _fields(cursor, prefix: str, out: dict[str, str]) -> None:
    """Collect field paths and types; anonymous members flatten into ``prefix``."""
    ci = cindex()
    children = list(cursor.get_children())
    named_types = {
        c.type.get_canonical().get_declaration().hash
        for c in children
        if c.kind == ci.CursorKind.FIELD_DECL
    }
    for child in children:
        if child.kind.name in _RECORDS and child.hash not in named_types:
            if child.is_anonymous():
                _fields(child, prefix, out)
            continue
        if child.kind != ci.CursorKind.FIELD_DECL or child.is_bitfield():
            continue
        path = prefix + child.spelling
        out[path] = _type(child.type)
        decl = child.type.get_canonical().get_declaration()
        if decl.kind.name in _RECORDS:
            _fields(decl, path + ".", out)


def _object_like(cursor) -> bool:
    tokens = list(cursor.get_tokens())
    if len(tokens) < 2:
        return False  # include guard or empty marker
    name, nxt = tokens[0].extent.end, tokens[1].extent.start
    return not (tokens[1].spelling == "(" and (name.line, name.column) == (nxt.line, nxt.column))


def list_header(path: str) -> Listing:
    """Parse ``path`` as C; raises AbiInputError if it is not C."""
    ci = cindex()
    args = ["-x", "c", "-std=gnu11"]
    for d in compiler_include_dirs():
        args += ["-isystem", d]
    opts = ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD
    try:
        tu = ci.Index.create().parse(path, args=args, options=opts)
    except ci.TranslationUnitLoadError as e:
        raise AbiInputError(f"{path}: libclang cannot read it: {e}") from None
    errors = [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
    if errors:
        raise AbiInputError(f"{path}: not a C header: {errors[0].spelling}")
    listing = Listing()
    main = os.path.realpath(path)
    for cursor in tu.cursor.walk_preorder():
        loc = cursor.location.file
        if loc is None or os.path.realpath(loc.name) != main:
            continue
        kind = cursor.kind
        if kind.name in _RECORDS:
            if cursor.is_definition() and cursor.spelling and not cursor.is_anonymous():
                fields: dict[str, str] = {}
                _fields(cursor, "", fields)
                tag = "union" if kind == ci.CursorKind.UNION_DECL else "struct"
                listing.records[f"{tag} {cursor.spelling}"] = fields
        elif kind == ci.CursorKind.ENUM_CONSTANT_DECL:
            listing.constants.append(cursor.spelling)
        elif kind == ci.CursorKind.MACRO_DEFINITION and _object_like(cursor):
            listing.constants.append(cursor.spelling)
    return listing
