"""What a header's names measure and evaluate to, by the host C compiler.

A probe program includes the header and prints, for every name of a
:class:`~uapi.abi.clang.Listing`, ``sizeof``/``_Alignof`` of each record,
``offsetof``/``sizeof`` of each field path, and the value of each constant
(ioctl macros included, so ``_IOW`` is evaluated by the real macro). A
macro that is not an integer expression makes its probe line fail to
compile; such lines are dropped and the probe is built again.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

from uapi.abi.clang import AbiInputError, Listing
from uapi.abi.model import Abi, Field, Record

_MAX_ROUNDS = 4
_ERROR_LINE = re.compile(r"probe\.c:(\d+):\d+: error")


def _record_lines(name: str, fields: dict[str, str]) -> list[str]:
    lines = [f'printf("R|{name}|%zu|%zu\\n", sizeof({name}), _Alignof({name}));']
    for path in fields:
        lines.append(
            f'printf("F|{name}|{path}|%zu|%zu\\n", offsetof({name}, {path}), '
            f"sizeof((({name} *)0)->{path}));"
        )
    return lines


def _constant_line(name: str) -> str:
    return (
        f'if (({name}) < 0) printf("C|{name}|%lld\\n", (long long)({name})); '
        f'else printf("C|{name}|%llu\\n", (unsigned long long)({name}));'
    )


def _program(header: str, lines: list[str]) -> str:
    head = [
        "#include <stddef.h>",
        "#include <stdio.h>",
        f'#include "{os.path.realpath(header)}"',
        '#pragma GCC diagnostic ignored "-Wtype-limits"',
        "int main(void) {",
    ]
    return "\n".join([*head, *lines, "return 0; }", ""])


def _build(workdir: str, header: str, lines: list[str], cc: str) -> tuple[str, set[int]]:
    """Compile; returns (executable or "", indexes of failing probe lines)."""
    src, exe = os.path.join(workdir, "probe.c"), os.path.join(workdir, "probe")
    with open(src, "w") as f:
        f.write(_program(header, lines))
    try:
        res = subprocess.run(
            [cc, "-std=gnu11", "-w", src, "-o", exe], capture_output=True, text=True
        )
    except OSError as e:
        raise AbiInputError(f"cannot run the C compiler {cc!r}: {e}") from None
    if res.returncode == 0:
        return exe, set()
    first = 6  # line number of the first probe line in _program
    bad = {int(m.group(1)) - first for m in _ERROR_LINE.finditer(res.stderr)}
    bad = {i for i in bad if 0 <= i < len(lines)}
    if not bad:
        message = res.stderr.strip().splitlines()[:1] or ["unknown error"]
        raise AbiInputError(f"{header}: does not compile: {message[0]}")
    return "", bad


def _parse(output: str, listing: Listing) -> Abi:
    records: dict[str, Record] = {}
    fields: dict[str, dict[str, Field]] = {}
    constants: dict[str, int] = {}
    for line in output.splitlines():
        kind, *rest = line.split("|")
        if kind == "R":
            name, size, align = rest
            fields[name] = {}
            records[name] = Record(int(size), int(align), fields[name])
        elif kind == "F":
            name, path, offset, size = rest
            fields[name][path] = Field(int(offset), int(size), listing.records[name][path])
        else:
            constants[rest[0]] = int(rest[1])
    return Abi(records, constants)


def measure(header: str, listing: Listing, cc: str = "gcc") -> Abi:
    """Compile and run the probe for ``listing``; raises AbiInputError."""
    lines = [line for name, f in listing.records.items() for line in _record_lines(name, f)]
    lines += [_constant_line(name) for name in listing.constants]
    with tempfile.TemporaryDirectory(prefix="gunyah-sim-abi-") as workdir:
        for _ in range(_MAX_ROUNDS):
            exe, bad = _build(workdir, header, lines, cc)
            if exe:
                out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
                return _parse(out, listing)
            lines = [line for i, line in enumerate(lines) if i not in bad]
    raise AbiInputError(f"{header}: too many of its macros are not integer expressions")
