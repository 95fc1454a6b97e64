"""python -m bench [--quick] [--json]: run every benchmark and print one table."""

from __future__ import annotations

import argparse
import json
import sys

from bench import hyp_bench, kernel_bench, vmm_bench

GOALS = {
    "guest_mips_ratio": ">= 0.8",
    "mmio_exit_ratio": "<= 3",
    "ioeventfd_ratio": "<= 2",
    "vm_lifecycle_ms": "< 10",
    "rss_ratio": "< 2",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    results: dict = {}
    for figure in hyp_bench.FIGURES + kernel_bench.FIGURES + vmm_bench.FIGURES:
        results.update(figure(args.quick))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, value in results.items():
            print(f"{name:<24} {value:>12}  {GOALS.get(name, '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
