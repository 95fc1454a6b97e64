"""``python -m bench --json`` gives every figure, each GenieZone one next to its Gunyah pair.

The bench runs at sizes too small to mean anything (``bench.TINY``): these
tests check the figures exist and are numbers, never a time.
"""

import contextlib
import io
import json
import math

import pytest

import bench.__main__ as bench_main
from bench import GZ, TINY

PAIRED = [
    "guest_mips_ratio",
    "guest_mips",
    "mmio_exit_us",
    "mmio_exit_ratio",
    "ioeventfd_write_us",
    "ioeventfd_ratio",
    "ioeventfd_vs_mmio",
    "irqfd_latency_us",
    "irqfd_to_mmio_ratio",
    "vm_lifecycle_ms",
    "vm_lifecycle_ratio",
]
GUNYAH_ONLY = [  # the RM and the sample VMM's Gunyah paths, which GenieZone does not have
    "bare_mips",
    "rm_rpc_small_us",
    "rm_rpc_14k_us",
    "scale_vms",
    "scale_vcpus",
    "scale_s",
    "rss_ratio",
    "cli_run_s",
    "native_ioctl_us",
    "native_ioctl_ratio",
]


@pytest.fixture(scope="module")
def results() -> dict:
    """What one ``python -m bench --quick --json`` printed, at TINY sizes."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(bench_main, "QUICK", TINY)
        assert bench_main.main(["--quick", "--json"]) == 0
    return json.loads(out.getvalue())


def test_json_has_every_figure_and_a_gz_twin_of_each_paired_one(results):
    assert set(results) == {*PAIRED, *(GZ + k for k in PAIRED), *GUNYAH_ONLY}


def test_every_figure_is_a_positive_number(results):
    for name, value in results.items():
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, name


def test_the_table_puts_both_hypervisors_on_one_row(results):
    rows = {line.split()[0]: line.split()[1:] for line in bench_main.table(results).splitlines()}
    assert rows["figure"] == ["gunyah", "geniezone", "goal"]
    assert not any(name.startswith(GZ) for name in rows)
    for name in PAIRED:
        assert rows[name][:2] == [str(results[name]), str(results[GZ + name])], name
    assert rows["mmio_exit_ratio"][2:] == ["<=", "3"]
    assert rows["rm_rpc_small_us"] == [str(results["rm_rpc_small_us"])]


def test_a_figure_that_cannot_be_measured_loses_only_its_own(monkeypatch, capsys):
    def scale(sizes):
        raise RuntimeError("scale: 7 of 8 VMs ran clean")

    monkeypatch.setattr(bench_main.hyp_bench, "FIGURES", [scale])
    monkeypatch.setattr(bench_main.kernel_bench, "FIGURES", [lambda sizes: {"mmio_exit_us": 1}])
    monkeypatch.setattr(bench_main.vmm_bench, "FIGURES", [])
    assert bench_main.main(["--json"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out) == {"mmio_exit_us": 1}
    assert "not measured: " in out.err and "RuntimeError('scale: 7 of 8 VMs" in out.err
