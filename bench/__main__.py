"""python -m bench [--quick] [--json]: run every benchmark and print one table,
a figure's Gunyah and GenieZone values side by side. Exit status 1 if a figure
could not be measured (what went wrong is on stderr, the others are printed)."""

from __future__ import annotations

import argparse
import json
import sys

from bench import FULL, GZ, QUICK, Sizes, hyp_bench, kernel_bench, vmm_bench

GOALS = {
    "guest_mips_ratio": ">= 0.8",
    "mmio_exit_ratio": "<= 3",
    "ioeventfd_ratio": "<= 2",
    "vm_lifecycle_ms": "< 10",
    "rss_ratio": "< 2",
}


def collect(sizes: Sizes) -> tuple[dict, list[str]]:
    """Every figure, by name (a GenieZone figure is its Gunyah pair's name with
    ``gz_``), and what went wrong in the figures that could not be measured:
    one failing (a scale VM that does not run clean) loses only its own."""
    results: dict = {}
    failures = []
    for figure in hyp_bench.FIGURES + kernel_bench.FIGURES + vmm_bench.FIGURES:
        try:
            results.update(figure(sizes))
        except Exception as e:  # reported, and the run fails, after the other figures
            failures.append(f"{figure.__module__}.{figure.__name__}: {e!r}")
    return results, failures


def table(results: dict) -> str:
    """One row per figure: its Gunyah value, its GenieZone value (if it has one), the goal."""
    rows = [f"{'figure':<22} {'gunyah':>10} {'geniezone':>10}  goal"]
    for name, value in results.items():
        if not name.startswith(GZ):
            twin = results.get(GZ + name, "")
            rows.append(f"{name:<22} {value:>10} {twin:>10}  {GOALS.get(name, '')}".rstrip())
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (under 40 s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    results, failures = collect(QUICK if args.quick else FULL)
    print(json.dumps(results, indent=2) if args.json else table(results))
    for failure in failures:
        print(f"not measured: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
