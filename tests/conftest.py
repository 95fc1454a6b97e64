"""Fixtures shared by the test tree."""

import shutil

import pytest

import kernel


def _booted():
    h = kernel.boot(dram_size=1 << 30)
    yield h
    h.shutdown()
    assert h.bugs == []  # a bug inside the kernel model fails the test


@pytest.fixture
def host():
    """A freshly booted host (SoC, hypervisor, RM, kernel) for one test."""
    yield from _booted()


@pytest.fixture(scope="module")
def shared_host():
    """One booted host for a module whose tests leave nothing behind."""
    yield from _booted()


def pytest_report_header():
    """Whether the tests that compare with the host's own gcc can run here."""
    gcc = shutil.which("gcc")
    return (
        f"host gcc: {gcc} (agreement tests run)" if gcc else "host gcc: none (agreement tests skip)"
    )


def pytest_terminal_summary(terminalreporter):
    """The robustness counts CI prints: scenarios, injection points, fuzz examples, leaks."""
    from tests.robustness import test_fault_injection, test_ioctl_fuzz

    passed = terminalreporter.stats.get("passed", [])
    scenarios = sum(1 for r in passed if r.nodeid.startswith("tests/conformance/"))
    counts = {
        "scenarios passed": scenarios,
        **test_fault_injection.SUMMARY,
        **test_ioctl_fuzz.SUMMARY,
    }
    terminalreporter.write_sep("-", "robustness")
    terminalreporter.write_line(", ".join(f"{name}: {n}" for name, n in counts.items()))
