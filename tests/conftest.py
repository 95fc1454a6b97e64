"""Fixtures shared by the test tree."""

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
