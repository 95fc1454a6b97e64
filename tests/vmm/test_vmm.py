"""The sample VMM on a Host: a refused START is a clean OSError, and nothing is left."""

import errno

import pytest

import kernel
from tests.robustness.leaks import holdings, leaked
from vmm.guests import image
from vmm.vmm import Vmm, VmmConfig


def test_a_refused_start_unwinds_everything():
    host = kernel.boot(rm_policy="retail", dram_size=1 << 30)  # no unprotected VMs
    try:
        before = holdings(host)
        with pytest.raises(OSError) as e:
            Vmm(host, VmmConfig(image("hello"), "hello", vcpus=2)).run()
        assert e.value.errno == errno.ENODEV
        host.eventfd_wq.quiesce()
        left = leaked(before, holdings(host))
        assert left == {}
        assert host.bugs == []
    finally:
        host.shutdown()
