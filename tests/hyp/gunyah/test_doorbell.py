"""Doorbells: flags, enable and ack masks, and how they assert the bound virq."""

import pytest

from hyp.gunyah.errors import Error
from tests.hyp.gunyah.vmhelper import Hv

VIRQ = 50


@pytest.fixture
def bell(gunyah):
    hv = Hv(gunyah)
    doorbell = hv.create("doorbell")
    hv.ok("object_activate", doorbell, 0)
    fired = []
    gunyah.host_vic.handlers[VIRQ] = fired.append
    hv.ok("doorbell_bind_virq", doorbell, gunyah.root_caps["host_vic"], VIRQ, 0)
    return hv, doorbell, fired


def test_send_ors_flags_and_receive_clears_them(bell):
    hv, doorbell, fired = bell
    assert hv.ok("doorbell_send", doorbell, 0b01, 0) == [0]
    assert hv.ok("doorbell_send", doorbell, 0b10, 0) == [0b01]
    assert hv.ok("doorbell_receive", doorbell, 0b01, 0) == [0b11]
    assert hv.ok("doorbell_receive", doorbell, ~0 & (2**64 - 1), 0) == [0b10]
    assert hv.err("doorbell_receive", doorbell, 0, 0) == Error.ARGUMENT_INVALID
    assert fired == [VIRQ, VIRQ]


def test_ack_mask_clears_flags_on_assertion(bell):
    hv, doorbell, fired = bell
    hv.ok("doorbell_mask", doorbell, 1, 1, 0)  # what Linux's level irqfd sets
    for n in range(1, 4):
        hv.ok("doorbell_send", doorbell, 1, 0)
        assert hv.ok("doorbell_receive", doorbell, 1, 0) == [0]  # already acked
        assert fired == [VIRQ] * n


def test_masked_flags_assert_only_an_edge_and_unmasking_asserts(bell, gunyah):
    hv, doorbell, fired = bell
    hv.ok("doorbell_mask", doorbell, 0, 0, 0)
    hv.ok("doorbell_send", doorbell, 4, 0)
    assert fired == [VIRQ]
    hv.ok("doorbell_mask", doorbell, 4, 0, 0)
    assert fired == [VIRQ, VIRQ]


def test_binding_twice_and_unbinding(bell, gunyah):
    hv, doorbell, _ = bell
    vic = gunyah.root_caps["host_vic"]
    assert hv.err("doorbell_bind_virq", doorbell, vic, VIRQ + 1, 0) == Error.VIRQ_BOUND
    hv.ok("doorbell_unbind_virq", doorbell, 0)
    assert hv.err("doorbell_unbind_virq", doorbell, 0) == Error.VIRQ_NOT_BOUND
