"""Benchmarks of gunyah-sim: every figure is a ratio against a baseline measured in
the same run, because the machines these run on are shared and noisy.

Every figure is measured on Gunyah and on GenieZone in the same run against
the same baselines; a GenieZone figure is named as its Gunyah pair with a
``gz_`` prefix (``mmio_exit_ratio`` and ``gz_mmio_exit_ratio``).
"""

from __future__ import annotations

from dataclasses import dataclass

GZ = "gz_"


@dataclass(frozen=True)
class Sizes:
    """How much each figure measures; a figure is the best (or median) of ``samples``."""

    samples: int  # runs of a timed loop, the best one counts
    mips_iterations: int  # compute-loop iterations (4 instructions each) per run
    mips_samples: int
    stores: int  # guest stores per exit-path run
    irqs: int  # irqfd round trips, the median counts
    lifecycles: int
    rm_small: int  # RM round trips of an empty request
    rm_large: int  # ... and of a 14 KiB one
    scale_vms: int  # VMs of 4 vCPUs booting at once
    rss_pages: int  # pages of guest_memfd the rss_ratio guest touches
    parallel_iterations: int  # compute-loop iterations of each VM of parallel_vms_ratio
    rss_exits: tuple[int, int]  # MMIO exits before exit_rss_ratio's two RSS readings


FULL = Sizes(
    3, 100_000_000, 9, 20_000, 500, 20, 500, 100, 64, 4096, 50_000_000, (10_000, 1_000_000)
)
QUICK = Sizes(2, 20_000_000, 3, 1_000, 40, 5, 50, 10, 8, 4096, 10_000_000, (2_000, 20_000))
# Only for tests/bench: every figure runs, none means anything.
TINY = Sizes(1, 100_000, 1, 20, 3, 1, 2, 1, 1, 16, 100_000, (20, 200))
