"""kernel.boot's choice of hypervisor: Gunyah (the default, which every other
test boots), GenieZone not yet, anything else refused; neither refusal powers
anything on."""

import threading

import pytest

import kernel


def test_gunyah_can_be_named():
    host = kernel.boot(dram_size=1 << 30, hypervisor="gunyah")
    try:
        host.close(host.open("/dev/gunyah"))
    finally:
        host.shutdown()


def test_geniezone_is_not_there_yet():
    threads = threading.active_count()
    with pytest.raises(NotImplementedError, match="GenieZone: not yet"):
        kernel.boot(hypervisor="geniezone")
    assert threading.active_count() == threads


@pytest.mark.parametrize("name", ["kvm", "Gunyah", "", None])
def test_an_unknown_hypervisor_is_a_value_error(name):
    with pytest.raises(ValueError, match=r"unknown hypervisor .*'gunyah', 'geniezone'"):
        kernel.boot(hypervisor=name)
