"""kernel.boot's choice of hypervisor: Gunyah (the default, which every other
test boots), GenieZone (tests/kernel/geniezone/test_boot.py), anything else
refused without powering anything on."""

import pytest

import kernel


def test_gunyah_can_be_named():
    host = kernel.boot(dram_size=1 << 30, hypervisor="gunyah")
    try:
        host.close(host.open("/dev/gunyah"))
    finally:
        host.shutdown()


@pytest.mark.parametrize("name", ["kvm", "Gunyah", "", None])
def test_an_unknown_hypervisor_is_a_value_error(name):
    with pytest.raises(ValueError, match=r"unknown hypervisor .*'gunyah', 'geniezone'"):
        kernel.boot(hypervisor=name)
