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
