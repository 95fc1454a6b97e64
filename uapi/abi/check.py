"""A C header's ABI against a profile (v16, ack, gzvm), explained.

``check(path, profile)`` reads the header (names by libclang, numbers by
a C compiler: the bundled one for arm64 unless another is given),
compares every constant, ioctl number, record size and field layout of
the profile with it, and explains each difference in
terms of what a VMM built with that header would do to a kernel of the
profile. It also scores the header against every profile and names its
generation: the one profile its names agree with, "mixed: X from v16, Y from
ack" when some of its names agree only with one profile and some only with
another (an Android header with upstream names and the Android flag layout),
or "no known generation" when it shares no name with any profile (a vendor
UAPI of its own). Names no profile knows are listed. Missing names are
reported but are not differences: a header may declare only what its VMM uses.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, dataclass, field
from functools import cache

from uapi.abi import clang, probe
from uapi.abi.clang import AbiInputError, Compiler
from uapi.abi.model import Abi, Record, from_header
from uapi.ioctl import IoctlFields

PROFILES = {
    "v16": ("uapi.linux.gunyah", "upstream v16/v17 GUNYAH_ UAPI"),
    "ack": ("uapi.linux.gunyah_ack", "Android GH_ UAPI with 'A' ioctls, as crosvm uses it"),
    "gzvm": ("uapi.linux.gzvm", "MediaTek GenieZone /dev/gzvm UAPI"),
}

# Profile names a user may give for another: v17 changed no UAPI name or number of v16.
ALIASES = {"v17": "v16"}

MATCH, DIFFER, MISSING = "match", "differ", "missing"
NO_GENERATION = "no known generation"


@cache
def profile_abi(name: str) -> Abi:
    return from_header(importlib.import_module(PROFILES[name][0]).HEADER)


@dataclass
class Finding:
    """One name compared: its kind, status, both values and why it matters."""

    kind: str
    name: str
    status: str
    here: object = None
    profile: object = None
    why: str = ""


@dataclass
class Report:
    """``findings`` against ``profile``; ``scores`` and ``only`` (how many of the
    header's names agree with that profile alone) for every profile; ``unknown``: the
    header's names no profile declares. ``closest`` is the best-scoring profile, or
    None when the header shares no name with any; ``generation`` says it in words."""

    header: str
    profile: str
    findings: list[Finding]
    scores: dict[str, dict[str, int]]
    only: dict[str, int]
    unknown: list[str]
    closest: str | None = field(init=False)
    generation: str = field(init=False)

    def __post_init__(self) -> None:
        shared = {p: s[MATCH] + s[DIFFER] for p, s in self.scores.items()}
        self.closest = (
            max(self.scores, key=lambda p: _rank(self.scores[p])) if any(shared.values()) else None
        )
        mixed = [p for p, n in self.only.items() if n]
        if self.closest is None:
            self.generation = NO_GENERATION
        elif len(mixed) > 1:
            self.generation = "mixed: " + ", ".join(f"{self.only[p]} from {p}" for p in mixed)
        else:
            self.generation = self.closest

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when nothing differs and something matched; 1 otherwise."""
        return 0 if self.count(DIFFER) == 0 and self.count(MATCH) > 0 else 1

    def as_dict(self) -> dict:
        return {
            "header": self.header,
            "profile": self.profile,
            "closest": self.closest,
            "generation": self.generation,
            "unknown": self.unknown,
            "ok": self.exit_code == 0,
            "counts": {s: self.count(s) for s in (MATCH, DIFFER, MISSING)},
            "scores": self.scores,
            "findings": [asdict(f) for f in self.findings],
        }


def _rank(score: dict[str, int]) -> tuple[int, int]:
    return score[MATCH] - score[DIFFER], score[MATCH]


def _a(profile: str) -> str:
    return f"{'an' if profile[0] in 'aeiou' else 'a'} {profile}"


def _family(name: str) -> str:
    return "_".join(name.split("_")[:2]) + "_"


def _explain_constant(name: str, here: int, prof: int, profile: str) -> str:
    why = f"{name} is {here:#x} here and {prof:#x} in {profile}"
    layouts = [p for p in PROFILES if p != profile and profile_abi(p).constants.get(name) == here]
    if layouts:
        why += f": this header has the {layouts[0]} layout"
    meant = [
        n
        for n, v in profile_abi(profile).constants.items()
        if v == here and n != name and n.startswith(_family(name))
    ]
    if meant:
        why += (
            f"; a VMM built with it asks {_a(profile)} kernel for {meant[0]} when it means {name}"
        )
    return why


def _explain_ioctl(name: str, here: int, prof: int, profile: str) -> str:
    h, p = IoctlFields.decode(here), IoctlFields.decode(prof)
    parts = [
        f"{what} {getattr(h, attr):#x} here, {getattr(p, attr):#x} in {profile}"
        for what, attr in (("type", "type"), ("nr", "nr"), ("direction", "dir"), ("size", "size"))
        if getattr(h, attr) != getattr(p, attr)
    ]
    others = [n for n, v in profile_abi(profile).ioctls.items() if v == here]
    result = (
        f"{_a(profile)} kernel runs {others[0]} instead"
        if others
        else (f"{_a(profile)} kernel answers ENOTTY")
    )
    return f"{name} is {here:#x} here and {prof:#x} in {profile} ({'; '.join(parts)}): {result}"


def _compare_values(kind: str, ours: dict[str, int], theirs: dict[str, int], profile: str):
    explain = _explain_ioctl if kind == "ioctl" else _explain_constant
    for name, prof in theirs.items():
        if name not in ours:
            yield Finding(kind, name, MISSING, None, prof)
        elif ours[name] == prof:
            yield Finding(kind, name, MATCH, prof, prof)
        else:
            yield Finding(
                kind, name, DIFFER, ours[name], prof, explain(name, ours[name], prof, profile)
            )


def _compare_record(name: str, here: Record, prof: Record, profile: str):
    if here.size != prof.size:
        yield Finding(
            "record",
            name,
            DIFFER,
            here.size,
            prof.size,
            f"{name} is {here.size} bytes here and {prof.size} in {profile}: the kernel copies "
            f"{prof.size} bytes where the VMM passes {here.size}, and every ioctl that carries "
            "it has another number",
        )
    for path, pf in prof.fields.items():
        hf = here.fields.get(path)
        label = f"{name}.{path}"
        if hf is None:
            yield Finding(
                "field",
                label,
                DIFFER,
                None,
                asdict(pf),
                f"{label} (offset {pf.offset}) is missing here: the VMM never reads or sets it",
            )
        elif hf != pf:
            yield Finding(
                "field",
                label,
                DIFFER,
                asdict(hf),
                asdict(pf),
                f"{label} is {hf.type} at offset {hf.offset} here and {pf.type} at offset "
                f"{pf.offset} in {profile}: the kernel and the VMM read different bytes",
            )
    for path, hf in here.fields.items():
        if path not in prof.fields:
            label = f"{name}.{path}"
            yield Finding(
                "field",
                label,
                DIFFER,
                asdict(hf),
                None,
                f"{label} exists only here: {_a(profile)} kernel never looks at it",
            )


def compare(header: Abi, profile: str) -> list[Finding]:
    """Every name of ``profile`` looked up in ``header``."""
    prof = profile_abi(profile)
    values = header.values()
    findings = [*_compare_values("constant", values, prof.constants, profile)]
    findings += _compare_values("ioctl", values, prof.ioctls, profile)
    for name, record in prof.records.items():
        if name not in header.records:
            findings.append(Finding("record", name, MISSING, None, record.size))
            continue
        diffs = list(_compare_record(name, header.records[name], record, profile))
        findings += diffs or [Finding("record", name, MATCH, record.size, record.size)]
    return findings


def _score(findings: list[Finding]) -> dict[str, int]:
    return {s: sum(f.status == s for f in findings) for s in (MATCH, DIFFER, MISSING)}


def _known() -> set[str]:
    return {n for p in PROFILES for n in (*profile_abi(p).values(), *profile_abi(p).records)}


def _only(header: Abi) -> dict[str, int]:
    """For each profile, how many of ``header``'s names agree with it and with no other."""
    agrees = {
        p: {f.name.split(".")[0] for f in compare(header, p) if f.status == MATCH} for p in PROFILES
    }
    return {
        p: len(names.difference(*(agrees[o] for o in PROFILES if o != p)))
        for p, names in agrees.items()
    }


HEADER_MAX = 4 << 20  # bytes; the largest UAPI header is a few dozen KiB


def read_header(path: str, cc: Compiler | None = None) -> Abi:
    """The ABI of any C header as ``cc`` builds it (default: the bundled compiler for
    arm64); raises AbiInputError on bad input."""
    if os.path.isdir(path):
        raise AbiInputError(f"{path}: is a directory")
    if not os.path.exists(path):
        raise AbiInputError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise AbiInputError(f"{path}: not a regular file")
    with open(path, "rb") as header:
        data = header.read(HEADER_MAX + 1)
    if len(data) > HEADER_MAX or b"\0" in data:
        raise AbiInputError(f"{path}: not a C header (NUL bytes, or over {HEADER_MAX >> 20} MiB)")
    cc = cc or Compiler.bundled()
    listing = clang.list_header(path, cc)
    if not listing.records and not listing.constants:
        raise AbiInputError(f"{path}: declares no struct, enum or macro")
    abi = probe.measure(path, listing, cc)
    return abi


def check(path: str, profile: str, cc: Compiler | None = None) -> Report:
    """Compare the header at ``path``, as ``cc`` builds it, with ``profile`` (a key of
    PROFILES or ALIASES); scores every profile."""
    profile = ALIASES.get(profile, profile)
    abi = read_header(path, cc)
    scores = {p: _score(compare(abi, p)) for p in PROFILES}
    unknown = sorted({*abi.values(), *abi.records} - _known())
    return Report(path, profile, compare(abi, profile), scores, _only(abi), unknown)
