"""python -m bench [--quick] [--json]: run every benchmark and print one table,
a figure's Gunyah and GenieZone values side by side with its goal and whether
it was met. Exit status 1 if a figure could not be measured (what went wrong
is on stderr, the others are printed).

``--json`` prints one object: for every figure, by name, ``{"value": ...,
"goal": "<= 8" or null, "verdict": "met", "missed" or null}``. A GenieZone
figure has the goal of its Gunyah pair."""

from __future__ import annotations

import argparse
import json
import operator
import sys

from bench import FULL, GZ, QUICK, Sizes, host_bench, hyp_bench, kernel_bench, vmm_bench

GOALS = {
    "guest_mips_ratio": ">= 0.8",
    "mmio_exit_ratio": "<= 8",
    "ioeventfd_vs_mmio": "<= 0.3",
    "irqfd_latency_us": "<= 100",
    "rm_rpc_small_us": "<= 50",
    "vm_lifecycle_ms": "<= 3",
    "rss_ratio": "< 2",
    "exit_rss_ratio": "<= 1.1",
    "parallel_vms_ratio": "<= 0.65",
}
_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def collect(sizes: Sizes) -> tuple[dict, list[str]]:
    """Every figure, by name (a GenieZone figure is its Gunyah pair's name with
    ``gz_``), and what went wrong in the figures that could not be measured:
    one failing (a scale VM that does not run clean) loses only its own."""
    results: dict = {}
    failures = []
    for figure in hyp_bench.FIGURES + kernel_bench.FIGURES + vmm_bench.FIGURES + host_bench.FIGURES:
        try:
            results.update(figure(sizes))
        except Exception as e:  # reported, and the run fails, after the other figures
            failures.append(f"{figure.__module__}.{figure.__name__}: {e!r}")
    return results, failures


def goal(name: str) -> str | None:
    """The goal of figure ``name`` (a GenieZone one: its Gunyah pair's)."""
    return GOALS.get(name.removeprefix(GZ))


def verdict(name: str, value) -> str | None:
    """Whether figure ``name`` met its goal ("met", "missed"); None without one."""
    wanted = goal(name)
    if wanted is None:
        return None
    op, bound = wanted.split()
    return "met" if _COMPARE[op](value, float(bound)) else "missed"


def report(results: dict) -> dict:
    """Every figure with its goal and verdict (what ``--json`` prints)."""
    return {
        name: {"value": value, "goal": goal(name), "verdict": verdict(name, value)}
        for name, value in results.items()
    }


def _row_verdict(name: str, results: dict) -> str:
    verdicts = {
        who: verdict(key, results[key])
        for who, key in (("gunyah", name), ("geniezone", GZ + name))
        if key in results
    }
    if None in verdicts.values():
        return ""
    if len(verdicts) == 1 or len(set(verdicts.values())) == 1:
        return next(iter(verdicts.values())) + (" by both" if len(verdicts) == 2 else "")
    return "met by " + next(who for who, v in verdicts.items() if v == "met") + " only"


def table(results: dict) -> str:
    """One row per figure: its Gunyah value, its GenieZone value (if it has one),
    the goal and the verdict."""
    rows = [f"{'figure':<22} {'gunyah':>10} {'geniezone':>10}  {'goal':<8}  verdict"]
    for name, value in results.items():
        if not name.startswith(GZ):
            twin = results.get(GZ + name, "")
            wanted = goal(name) or ""
            row = f"{name:<22} {value:>10} {twin:>10}  {wanted:<8}  {_row_verdict(name, results)}"
            rows.append(row.rstrip())
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (under 40 s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    results, failures = collect(QUICK if args.quick else FULL)
    print(json.dumps(report(results), indent=2) if args.json else table(results))
    for failure in failures:
        print(f"not measured: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
