"""Golden RM RPC messages: tests/data/rm_rpc/*.txt, annotated hex written from the spec.

A file holds the packets of one message (``--- packet`` separates them), hex
bytes with ``#`` comments, and ``@`` lines with the decoded fields the test
must find: ``@ type=... seq=... msg_id=... fragments=... size=...`` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data" / "rm_rpc"


@dataclass
class Golden:
    name: str
    packets: list[bytes]
    header: dict[str, int | str]
    fields: list[tuple[str, dict[str, int]]]

    @property
    def payload(self) -> bytes:
        return b"".join(p[8:] for p in self.packets)


def _value(text: str) -> int | str:
    try:
        return int(text, 0)
    except ValueError:
        return text


def load(name: str) -> Golden:
    packets, current, header, fields = [], bytearray(), {}, []
    for line in (DATA / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == "--- packet":
            packets.append(bytes(current))
            current = bytearray()
        elif line.startswith("@"):
            words = line[1:].split()
            kv = {k: _value(v) for k, v in (w.split("=") for w in words if "=" in w)}
            if "type" in kv and not header:
                header = kv
            else:
                fields.append((words[0], kv))
        else:
            current += bytes.fromhex(line)
    packets.append(bytes(current))
    return Golden(name, packets, header, fields)


def all_names() -> list[str]:
    return sorted(p.name for p in DATA.glob("*.txt"))
