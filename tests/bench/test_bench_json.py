"""``python -m bench --json`` gives every figure with its goal and verdict, each
GenieZone one next to its Gunyah pair.

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
    "parallel_vms_ratio",
    "parallel_vms_load",
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
    "exit_rss_ratio",
    "parallel_vms_cores",
]
GOALS = {  # the goals of issue 19, and the older ones kept
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
    for name, figure in results.items():
        value = figure["value"]
        least = 0 if name.removeprefix(GZ) == "parallel_vms_load" else 1e-12  # an idle host's is 0
        assert isinstance(value, int | float) and math.isfinite(value) and value >= least, name


def test_every_figure_has_its_goal_and_verdict(results):
    for name, figure in results.items():
        goal = GOALS.get(name.removeprefix(GZ))
        assert figure["goal"] == goal, name
        if goal is None:
            assert figure["verdict"] is None, name
            continue
        op, bound = goal.split()
        met = {"<=": figure["value"] <= float(bound), "<": figure["value"] < float(bound)}.get(
            op, figure["value"] >= float(bound)
        )
        assert figure["verdict"] == ("met" if met else "missed"), name


def test_a_verdict_follows_the_figure():
    assert bench_main.report({"mmio_exit_ratio": 8, "gz_mmio_exit_ratio": 8.1}) == {
        "mmio_exit_ratio": {"value": 8, "goal": "<= 8", "verdict": "met"},
        "gz_mmio_exit_ratio": {"value": 8.1, "goal": "<= 8", "verdict": "missed"},
    }
    assert bench_main.report({"rss_ratio": 2})["rss_ratio"]["verdict"] == "missed"
    assert bench_main.report({"guest_mips_ratio": 0.8})["guest_mips_ratio"]["verdict"] == "met"


def test_the_table_puts_both_hypervisors_on_one_row_with_goal_and_verdict(results):
    values = {name: figure["value"] for name, figure in results.items()}
    table = bench_main.table(values)
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()}
    assert rows["figure"] == ["gunyah", "geniezone", "goal", "verdict"]
    assert not any(name.startswith(GZ) for name in rows)
    for name in PAIRED:
        assert rows[name][:2] == [str(values[name]), str(values[GZ + name])], name
    assert rows["mmio_exit_ratio"][2:4] == ["<=", "8"]
    verdicts = {results[k]["verdict"] for k in ("mmio_exit_ratio", "gz_mmio_exit_ratio")}
    expected = {
        frozenset({"met"}): ["met", "by", "both"],
        frozenset({"missed"}): ["missed", "by", "both"],
        frozenset({"met", "missed"}): ["met", "by"],
    }[frozenset(verdicts)]
    assert rows["mmio_exit_ratio"][4 : 4 + len(expected)] == expected
    assert rows["rm_rpc_small_us"][0] == str(values["rm_rpc_small_us"])
    assert rows["rm_rpc_small_us"][1:3] == ["<=", "50"]
    assert rows["rm_rpc_small_us"][3] == results["rm_rpc_small_us"]["verdict"]
    assert rows["scale_s"] == [str(values["scale_s"])]


def test_a_figure_that_cannot_be_measured_loses_only_its_own(monkeypatch, capsys):
    def scale(sizes):
        raise RuntimeError("scale: 7 of 8 VMs ran clean")

    monkeypatch.setattr(bench_main.hyp_bench, "FIGURES", [scale])
    monkeypatch.setattr(bench_main.kernel_bench, "FIGURES", [lambda sizes: {"mmio_exit_us": 1}])
    monkeypatch.setattr(bench_main.vmm_bench, "FIGURES", [])
    monkeypatch.setattr(bench_main.host_bench, "FIGURES", [])
    assert bench_main.main(["--json"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out) == {"mmio_exit_us": {"value": 1, "goal": None, "verdict": None}}
    assert "not measured: " in out.err and "RuntimeError('scale: 7 of 8 VMs" in out.err
