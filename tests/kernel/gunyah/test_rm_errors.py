"""Every RM error code reaches the host kernel as the errno of the driver's table."""

import errno
import struct

import pytest

from hyp.rm.rm_types import RmError, RmFailure
from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah.rsc_mgr import MAX_REQUEST
from tests.kernel.gunyah.rmhelper import Host

TEST_MSG = 0x5600_00FE

EXPECTED = {
    RmError.UNIMPLEMENTED: errno.EOPNOTSUPP,
    RmError.NOMEM: errno.ENOMEM,
    RmError.NORESOURCE: errno.ENODEV,
    RmError.DENIED: errno.EPERM,
    RmError.MSG_INVALID: errno.EINVAL,
    RmError.BUSY: errno.EBUSY,
    RmError.ARGUMENT_INVALID: errno.EINVAL,
    RmError.HANDLE_INVALID: errno.EINVAL,
    RmError.VALIDATE_FAILED: errno.EINVAL,
    RmError.MAP_FAILED: errno.EINVAL,
    RmError.MEM_INVALID: errno.EINVAL,
    RmError.MEM_INUSE: errno.EINVAL,
    RmError.MEM_RELEASED: errno.EINVAL,
    RmError.VMID_INVALID: errno.EINVAL,
    RmError.LOOKUP_FAILED: errno.EINVAL,
    RmError.IRQ_INVALID: errno.EINVAL,
    RmError.IRQ_INUSE: errno.EINVAL,
    RmError.IRQ_RELEASED: errno.EINVAL,
    RmError.IN_USE: errno.EBADMSG,
    RmError.IRQ_NOT_MAPPED: errno.EBADMSG,
    RmError.VM_STATE: errno.EBADMSG,
}


@pytest.fixture(scope="module")
def host():
    h = Host()

    def answer(_vmid, payload):
        raise RmFailure(RmError(struct.unpack_from("<I", payload)[0]))

    h.firmware.rm.handlers[TEST_MSG] = answer
    yield h
    h.close()


def test_every_error_code_is_in_the_table():
    assert set(EXPECTED) == set(RmError) - {RmError.OK}


@pytest.mark.parametrize("code", list(EXPECTED), ids=lambda c: c.name)
def test_rm_error_becomes_errno(host, code):
    with pytest.raises(OSError) as e:
        host.rm.gunyah_rm_call(TEST_MSG, struct.pack("<I", code))
    assert e.value.errno == EXPECTED[code]
    assert e.value.rm_error == code


def test_an_unknown_message_is_unimplemented(host):
    with pytest.raises(OSError) as e:
        host.rm.gunyah_rm_call(0x5600_00FD, b"")
    assert e.value.errno == errno.EOPNOTSUPP


def test_oversized_requests_are_e2big_before_sending(host):
    sent = host.firmware.rm.stats["messages"]
    with pytest.raises(OSError) as e:
        host.rm.gunyah_rm_call(TEST_MSG, bytes(MAX_REQUEST + 1))
    assert e.value.errno == errno.E2BIG
    assert host.firmware.rm.stats["messages"] == sent


def test_the_largest_request_goes_through(host):
    with pytest.raises(OSError) as e:  # the RM answers ARGUMENT_INVALID for it
        host.rm.gunyah_rm_call(TEST_MSG, struct.pack("<I", 6) + bytes(MAX_REQUEST - 4))
    assert e.value.errno == errno.EINVAL


def test_error_injection_of_an_rm_call(host):
    host.rm.faults["gunyah_rm_get_vmid"] = errno.ENOMEM
    try:
        with pytest.raises(OSError) as e:
            rpc.gunyah_rm_get_vmid(host.rm)
        assert e.value.errno == errno.ENOMEM
    finally:
        host.rm.faults.clear()
    assert rpc.gunyah_rm_get_vmid(host.rm) == 3
