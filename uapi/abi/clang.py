"""Which names a C header declares, read with libclang.

libclang parses the header the way a compiler would (for the measuring
compiler's target, with that compiler's include directories), and this
module lists what the header itself declares: its records with every field
path and type, its enum constants, and its object-like macros. Numbers are
not taken from here: uapi.abi.probe measures them with the compiler.

The ``libclang`` wheel ships the shared library; its Python bindings may be
replaced by the ``clang`` package (ctypeslib2 needs that one), so the
library file is always set here by path rather than left to a search.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from functools import cache

from uapi import toolchain
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


@dataclass(frozen=True)
class Compiler:
    """A C compiler's command line, and the clang target triple libclang parses for
    (None: the host's, for a compiler that does not say)."""

    command: tuple[str, ...]
    target: str | None = None

    @classmethod
    def bundled(cls, target: str = toolchain.ARM64_LINUX) -> Compiler:
        """The bundled clang for ``target`` (default arm64 Linux, LP64); AbiInputError
        if it is not installed."""
        try:
            return cls((*toolchain.cc(target), "-ferror-limit=0"), target)
        except toolchain.ToolchainError as e:
            raise AbiInputError(f"{e}, or pass --cc") from None

    @classmethod
    def user(cls, cc: str) -> Compiler:
        """A user's compiler from a shell-quoted command line (``gcc``, ``clang -m32``)."""
        command = tuple(shlex.split(cc))
        if not command:
            raise AbiInputError("--cc: an empty compiler command")
        return cls(command)


@cache
def compiler_include_dirs(cc: Compiler) -> tuple[str, ...]:
    """The system include directories of ``cc``, in order."""
    try:
        res = subprocess.run(
            [*cc.command, "-xc", "-E", "-v", "/dev/null"], capture_output=True, text=True
        )
    except OSError as e:
        raise AbiInputError(f"cannot run the C compiler {cc.command[0]!r}: {e}") from None
    if res.returncode != 0:
        errors = [line for line in res.stderr.splitlines() if "error" in line] or ["failed"]
        raise AbiInputError(f"the C compiler {shlex.join(cc.command)!r}: {errors[0]}")
    lines = res.stderr.splitlines()
    try:
        start = lines.index("#include <...> search starts here:") + 1
        end = lines.index("End of search list.")
    except ValueError:
        raise AbiInputError(f"{cc.command[0]!r} does not list its include directories") from None
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


def list_header(path: str, cc: Compiler) -> Listing:
    """Parse ``path`` as C the way ``cc`` would; raises AbiInputError if it is not C."""
    ci = cindex()
    # Only the compiler's own directories: libclang would add the host's.
    args = ["-x", "c", "-std=gnu11", "-nostdinc"]
    args += [f"--target={cc.target}"] if cc.target else []
    for d in compiler_include_dirs(cc):
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
