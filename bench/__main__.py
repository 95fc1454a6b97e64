"""python -m bench [--quick] [--json]: run every benchmark and print one table,
a figure's Gunyah and GenieZone values side by side."""

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


def collect(sizes: Sizes) -> dict:
    """Every figure, by name; a GenieZone figure is its Gunyah pair's name with ``gz_``."""
    results: dict = {}
    for figure in hyp_bench.FIGURES + kernel_bench.FIGURES + vmm_bench.FIGURES:
        results.update(figure(sizes))
    return results


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
    results = collect(QUICK if args.quick else FULL)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
