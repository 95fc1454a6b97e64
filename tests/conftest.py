"""Fixtures shared by the test tree."""

import shutil

import pytest

import kernel
from hyp.rm.resource_manager import ResourceManager
from kernel.syscalls import Host


def _bugs(host: Host) -> list[BaseException]:
    """What the model survived but must not have met: kernel bugs (reported as EIO)
    and RM handler exceptions (answered NOMEM)."""
    return host.bugs + host.gunyah.rm.bugs + host.gunyah.firmware.rm.bugs


def _booted():
    h = kernel.boot(dram_size=1 << 30)
    yield h
    h.shutdown()
    assert _bugs(h) == []


@pytest.fixture(autouse=True)
def no_model_bugs(monkeypatch):
    """Every test fails on a bug of the kernel model or of the RM, however it booted."""
    created: list = []
    for cls in (Host, ResourceManager):
        init = cls.__init__

        def tracked(self, *args, _init=init, **kwargs):
            _init(self, *args, **kwargs)
            created.append(self)

        monkeypatch.setattr(cls, "__init__", tracked)
    yield
    bugs = [bug for obj in created for bug in obj.bugs]
    bugs += [
        bug
        for obj in created
        if isinstance(obj, Host) and obj.gunyah is not None
        for bug in obj.gunyah.rm.bugs
    ]
    assert bugs == []


@pytest.fixture
def gzhost():
    """A freshly booted host with GenieZone at EL2 and /dev/gzvm."""
    h = kernel.boot(dram_size=1 << 30, hypervisor="geniezone")
    yield h
    h.shutdown()
    assert h.bugs == []


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
    """The robustness counts CI prints, one line per hypervisor: scenarios (the
    conformance tests of each, test_gzvm_* for GenieZone), injection points
    walked, leaks found, fuzz examples run."""
    from tests.robustness import (
        test_fault_injection,
        test_gzvm_fault_injection,
        test_gzvm_ioctl_fuzz,
        test_ioctl_fuzz,
    )

    passed = [r.nodeid for r in terminalreporter.stats.get("passed", [])]
    gzvm = [n for n in passed if n.startswith("tests/conformance/test_gzvm_")]
    gunyah = [n for n in passed if n.startswith("tests/conformance/") and n not in gzvm]
    lines = {
        "gunyah": (len(gunyah), test_fault_injection.SUMMARY, test_ioctl_fuzz.SUMMARY),
        "geniezone": (len(gzvm), test_gzvm_fault_injection.SUMMARY, test_gzvm_ioctl_fuzz.SUMMARY),
    }
    terminalreporter.write_sep("-", "robustness")
    for name, (scenarios, walk, fuzz) in lines.items():
        counts = {"scenarios passed": scenarios, **walk, **fuzz}
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
