"""Probing the hypervisor, and the RM link's sequence ids."""

import errno

import pytest

from kernel.gunyah.gunyah import gunyah_probe
from kernel.gunyah.rsc_mgr import GunyahRm, RmNode, _Call
from kernel.include.linux.gunyah import gunyah_error_remap


class FakeHyp:
    def __init__(self, uid_ok=True, api=1):
        self.uid_ok, self.api = uid_ok, api

    def arch_is_gunyah_guest(self):
        return self.uid_ok

    def gunyah_hypercall_hyp_identify(self):
        return self.api | 0x48 << 56, (0, 0, 0)


def test_probe_accepts_api_1():
    assert gunyah_probe(FakeHyp()).api_version == 1


@pytest.mark.parametrize(
    "hyp", [FakeHyp(uid_ok=False), FakeHyp(api=2)], ids=["not gunyah", "api 2"]
)
def test_probe_refuses_others_with_enodev(hyp):
    with pytest.raises(OSError) as e:
        gunyah_probe(hyp)
    assert e.value.errno == errno.ENODEV


def test_gunyah_errors_become_errno():
    assert [gunyah_error_remap(e) for e in (0, -1, -2, 10, 30, 31, 50, 54, 61, 111)] == [
        0,
        errno.EOPNOTSUPP,
        errno.EAGAIN,
        errno.ENOMEM,
        errno.EACCES,
        errno.EBUSY,
        errno.EACCES,
        errno.EBUSY,
        errno.EIO,
        errno.EINVAL,
    ]


def test_sequence_ids_are_cyclic_16_bit_and_skip_ones_in_use():
    link = GunyahRm(None, RmNode(1, 2, 33, 34), lambda v, h: None)
    link._next_seq = 0xFFFE
    link._pending[0] = _Call(1)  # still waiting for its reply
    seqs = [link._alloc_seq(_Call(1)) for _ in range(3)]
    assert seqs == [0xFFFE, 0xFFFF, 1]
