"""``gunyah-sim abi-check``: print a uapi.abi.check report for people or programs.

Exit status: 0 when the header agrees with the profile, 1 on any
difference (or nothing in common), 2 when the header cannot be read.
"""

from __future__ import annotations

import json
import textwrap

from uapi.abi.check import DIFFER, MATCH, MISSING, PROFILES, Finding, Report


def _show(kind: str, value) -> str:
    """A value as the table prints it: field type@offset, record bytes, hex."""
    if value is None:
        return "-"
    if kind == "field":
        return f"{value['type']}@{value['offset']}"
    if kind == "record":
        return f"{value} bytes"
    return f"{value:#x}"


def _row(f: Finding) -> str:
    here, there = _show(f.kind, f.here), _show(f.kind, f.profile)
    return f"  {f.status:<7} {f.kind:<8} {f.name:<44} {here:>14} {there:>14}"


def render(report: Report) -> str:
    """The report as a table: differences with their explanation, then matches; the
    profile's names the header lacks (unless it shares none), the header's names no
    profile knows; counts and the header's generation."""
    p = report.profile
    lines = [
        f"{report.header} against profile {p} ({PROFILES[p][1]})",
        "",
        f"  {'status':<7} {'kind':<8} {'name':<44} {'here':>14} {p:>14}",
    ]
    for f in report.findings:
        if f.status == DIFFER:
            lines.append(_row(f))
            lines += textwrap.wrap(f.why, 96, initial_indent="      ", subsequent_indent="      ")
    lines += [_row(f) for f in report.findings if f.status == MATCH]
    missing = [f.name for f in report.findings if f.status == MISSING]
    if missing and report.closest is not None:
        lines += ["", f"Not declared here ({len(missing)}):"]
        lines += textwrap.wrap(", ".join(missing), 96, initial_indent="  ", subsequent_indent="  ")
    if report.unknown:
        lines += ["", f"Known to no profile ({len(report.unknown)}):"]
        lines += textwrap.wrap(
            ", ".join(report.unknown), 96, initial_indent="  ", subsequent_indent="  "
        )
    counts = ", ".join(f"{report.count(s)} {s}" for s in (MATCH, DIFFER, MISSING))
    scores = "; ".join(
        f"{name} {s[MATCH]} match/{s[DIFFER]} differ" for name, s in report.scores.items()
    )
    lines += [
        "",
        f"{counts}.",
        f"Closest profile: {report.generation} ({scores}).",
        "OK: the header agrees with the profile."
        if report.exit_code == 0
        else f"NOT OK: a VMM built with this header does not speak the {p} ABI.",
    ]
    return "\n".join(lines)


def dumps(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2)
