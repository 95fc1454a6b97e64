"""What a header's names measure and evaluate to, by a C compiler, without running code.

A probe file includes the header and defines one constant array whose
slots are, for every name of a :class:`~uapi.abi.clang.Listing`,
``sizeof``/``_Alignof`` of each record, ``offsetof``/``sizeof`` of each
field path, and the value of each constant with its sign (ioctl macros
included, so ``_IOW`` is evaluated by the real macro). The compiler only
compiles it to an object file; the values are read out of the object's
data with pyelftools. So a compiler for another target measures with that
target's ABI (the bundled one measures arm64 LP64 on any host) and nothing
built for it ever runs here.

A macro that is not an integer expression either fails to compile (its
line is dropped and the probe is built again) or compiles to an address
the linker would fill in (a relocation on its slot: dropped the same way).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from uapi.abi.clang import AbiInputError, Compiler, Listing
from uapi.abi.model import Abi, Field, Record

PROBE = "gunyah_sim_probe"
SLOT = 8  # one unsigned long long; every probe line fills two slots
_MAX_ROUNDS = 4
# gcc names the header's line and notes the probe's; clang names the probe's.
_ERROR_LINE = re.compile(r"probe\.c:(\d+):\d+: (?:error|note: in expansion of macro)")


@dataclass(frozen=True)
class _Line:
    """One probe line: its two C expressions, and what they measure."""

    kind: str  # "R" record (size, align), "F" field (offset, size), "C" constant (value, < 0)
    name: str
    exprs: tuple[str, str]
    path: str = ""


def _lines(listing: Listing) -> list[_Line]:
    lines = []
    for name, fields in listing.records.items():
        lines.append(_Line("R", name, (f"sizeof({name})", f"_Alignof({name})")))
        for path in fields:
            member = f"sizeof((({name} *)0)->{path})"
            lines.append(_Line("F", name, (f"offsetof({name}, {path})", member), path))
    for name in listing.constants:
        lines.append(_Line("C", name, (f"(unsigned long long)({name})", f"({name}) < 0")))
    return lines


_HEAD = 4  # lines of _program before the first probe line


def _program(header: str, lines: list[_Line]) -> str:
    head = [
        "#include <stddef.h>",
        f'#include "{os.path.realpath(header)}"',
        '#pragma GCC diagnostic ignored "-Wtype-limits"',
        f"const unsigned long long {PROBE}[] = {{",
    ]
    body = [f"{a}, {b}," for a, b in (line.exprs for line in lines)]
    return "\n".join([*head, *body, "};", ""])


def _compile(workdir: str, header: str, lines: list[_Line], cc: Compiler) -> set[int]:
    """Build probe.o; returns the indexes of probe lines that failed to compile."""
    src, obj = os.path.join(workdir, "probe.c"), os.path.join(workdir, "probe.o")
    with open(src, "w") as f:
        f.write(_program(header, lines))
    try:
        res = subprocess.run(
            [*cc.command, "-std=gnu11", "-w", "-c", src, "-o", obj],
            capture_output=True,
            text=True,
        )
    except OSError as e:
        raise AbiInputError(f"cannot run the C compiler {cc.command[0]!r}: {e}") from None
    if res.returncode == 0:
        return set()
    bad = {int(m.group(1)) - _HEAD - 1 for m in _ERROR_LINE.finditer(res.stderr)}
    bad = {i for i in bad if 0 <= i < len(lines)}
    if not bad:
        message = [line for line in res.stderr.splitlines() if "error" in line] or ["no reason"]
        raise AbiInputError(f"{header}: does not compile: {message[0].strip()}")
    return bad


def _slots(path: str) -> tuple[list[int], set[int]]:
    """The probe array's slots in ``path``, and the slots carrying a relocation."""
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            (symbol,) = elf.get_section_by_name(".symtab").get_symbol_by_name(PROBE)
            index, start, size = symbol["st_shndx"], symbol["st_value"], symbol["st_size"]
            section = elf.get_section(index)
            nobits = section["sh_type"] == "SHT_NOBITS"  # all zeros
            data = bytes(size) if nobits else section.data()[start : start + size]
            order = "little" if elf.little_endian else "big"
            relocated = {
                (r["r_offset"] - start) // SLOT
                for s in elf.iter_sections()
                if isinstance(s, RelocationSection) and s["sh_info"] == index
                for r in s.iter_relocations()
                if start <= r["r_offset"] < start + size
            }
    except (ELFError, AttributeError, TypeError, ValueError) as e:
        raise AbiInputError(f"the compiler's object file cannot be read as ELF: {e}") from None
    values = [int.from_bytes(data[i : i + SLOT], order) for i in range(0, size, SLOT)]
    return values, relocated


def _abi(lines: list[_Line], values: list[int], listing: Listing) -> Abi:
    records: dict[str, Record] = {}
    constants: dict[str, int] = {}
    for line, a, b in zip(lines, values[::2], values[1::2], strict=True):
        if line.kind == "R":
            records[line.name] = Record(a, b, {})
        elif line.kind == "F":
            field = Field(a, b, listing.records[line.name][line.path])
            records[line.name].fields[line.path] = field
        else:
            constants[line.name] = a - (1 << 64) if b else a
    return Abi(records, constants)


def measure(header: str, listing: Listing, cc: Compiler) -> Abi:
    """Compile the probe for ``listing`` with ``cc`` and read it; raises AbiInputError."""
    lines = _lines(listing)
    with tempfile.TemporaryDirectory(prefix="gunyah-sim-abi-") as workdir:
        for _ in range(_MAX_ROUNDS):
            if not lines:
                return Abi({}, {})
            bad = _compile(workdir, header, lines, cc)
            if not bad:
                values, relocated = _slots(os.path.join(workdir, "probe.o"))
                bad = {slot // 2 for slot in relocated}
                if not bad:
                    return _abi(lines, values, listing)
            lines = [line for i, line in enumerate(lines) if i not in bad]
    raise AbiInputError(f"{header}: too many of its macros are not integer expressions")
