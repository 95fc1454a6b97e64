"""The hypercall ABI: identify, the vendor UID, capability errors, reserved arguments."""

import pytest

from hyp.gunyah.errors import Error
from hyp.gunyah.object import DoorbellRights
from tests.hyp.gunyah.vmhelper import Hv

GUNYAH_UID_WORDS = [0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67]


def test_vendor_uid_is_gunyahs(gunyah):
    assert gunyah.smccc(gunyah.root, [0x8600FF01] + [0] * 7) == GUNYAH_UID_WORDS
    uid = b"".join(w.to_bytes(4, "little") for w in GUNYAH_UID_WORDS)
    assert uid.hex() == "c1d58fcda4535fdb9265ce36673d5f14"


def test_identify_reports_api_1_and_features(gunyah):
    api_info, flags0, flags1, flags2 = Hv(gunyah).raw("hypervisor_identify")[:4]
    assert api_info & 0x3FFF == 1
    assert api_info >> 15 & 1 == 1  # 64-bit
    for bit in (
        0,
        1,
        2,
        3,
        5,
        6,
        11,
    ):  # partition/cspace, doorbell, msgqueue, vic, vcpu, memextent, vcpu_run
        assert flags0 >> bit & 1, bit
    assert (flags1, flags2) == (0, 0)


def test_unknown_function_ids(gunyah):
    unknown = 0xFFFF_FFFF_FFFF_FFFF
    assert gunyah.smccc(gunyah.root, [0x8600_1234] + [0] * 7)[0] == unknown
    assert gunyah.smccc(gunyah.root, [0x8600_8012] + [0] * 7)[0] == unknown  # SMC32 hypercall
    assert (
        gunyah.smccc(gunyah.root, [0xC600_8000 + 0x1FF] + [0] * 7)[0]
        == Error.UNIMPLEMENTED & unknown
    )


@pytest.fixture
def caps(gunyah):
    hv = Hv(gunyah)
    doorbell = hv.create("doorbell")
    hv.ok("object_activate", doorbell, 0)
    msgqueue = hv.create("msgqueue")
    return hv, doorbell, msgqueue


def test_wrong_object_type(caps):
    hv, _, msgqueue = caps
    assert hv.err("doorbell_send", msgqueue, 1, 0) == Error.CSPACE_WRONG_OBJECT_TYPE == 52


def test_insufficient_rights(caps, gunyah):
    hv, doorbell, _ = caps
    cspace = gunyah.root_caps["cspace"]
    receive_only = hv.ok(
        "cspace_copy_cap_from", cspace, doorbell, cspace, DoorbellRights.RECEIVE, 0
    )[0]
    assert hv.err("doorbell_send", receive_only, 1, 0) == Error.CSPACE_INSUFFICIENT_RIGHTS == 53
    assert hv.ok("doorbell_receive", receive_only, 1, 0) == [0]


def test_null_cap(caps):
    hv, _, _ = caps
    assert hv.err("doorbell_send", 0xDEAD_0000_BEEF, 1, 0) == Error.CSPACE_CAP_NULL == 50


def test_deleted_cap_is_null(caps, gunyah):
    hv, doorbell, _ = caps
    hv.ok("cspace_delete_cap_from", gunyah.root_caps["cspace"], doorbell, 0)
    assert hv.err("doorbell_send", doorbell, 1, 0) == Error.CSPACE_CAP_NULL


@pytest.mark.parametrize("reserved", [1, 1 << 63])
def test_nonzero_reserved_argument_is_invalid(caps, reserved):
    hv, doorbell, _ = caps
    assert hv.err("doorbell_send", doorbell, 1, reserved) == Error.ARGUMENT_INVALID == 1
    assert hv.ok("doorbell_send", doorbell, 1, 0)[0] == 0  # state unchanged by the bad call


def test_using_an_inactive_object_is_object_state(caps):
    hv, _, msgqueue = caps
    assert hv.err("msgqueue_send", msgqueue, 4, 0, 0, 0) == Error.OBJECT_STATE
