"""kernel.boot(uapi=...): which driver generation /dev/gunyah is."""

import pytest

import kernel
from kernel.gunyah.profile import ACK_61, ACK_66, V16, gunyah_profile


def test_v16_is_the_default_and_each_name_is_its_profile():
    host = kernel.boot(dram_size=1 << 30)
    try:
        assert host.gunyah.profile is V16
    finally:
        host.shutdown()
    assert [gunyah_profile(n) for n in ("v16", "ack-6.1", "ack-6.6")] == [V16, ACK_61, ACK_66]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uapi": "ack-6.12"}, "unknown uapi 'ack-6.12'"),
        ({"uapi": "ack-6.1", "hypervisor": "geniezone"}, "not with GenieZone"),
    ],
)
def test_bad_uapi_is_refused_before_power_on(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kernel.boot(**kwargs)
