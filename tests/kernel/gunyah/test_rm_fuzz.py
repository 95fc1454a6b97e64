"""Fuzzing the RM through its real message queue: 10,000 random packets and
payloads, none of which may crash it, and a VM lifecycle that still works."""

import random
import struct

from hyp.rm.rm_types import MsgId
from tests.kernel.gunyah import test_rm_lifecycle
from tests.kernel.gunyah.rmhelper import Host

CASES = 10_000
SEED = 0x6E7961


def packets(rng: random.Random):
    ids = [m.value for m in MsgId] + [0, 0x5600_00FF, rng.getrandbits(32)]
    for _ in range(CASES):
        kind = rng.randrange(4)
        if kind == 0:  # noise
            yield rng.randbytes(rng.randint(1, 240))
            continue
        flags = rng.randrange(4) | rng.randrange(64) << 2
        if kind == 1:  # a single-packet request of a real message id
            flags = 1
        header = struct.pack(
            "<BBHI",
            0x21 if kind != 3 else rng.randrange(256),
            flags,
            rng.getrandbits(16),
            rng.choice(ids),
        )
        size = rng.choice([0, 4, 8, 16, 24, 40, rng.randint(0, 232)])
        yield header + rng.randbytes(size)


def test_rm_survives_random_packets_and_still_runs_a_vm():
    host = Host()
    try:
        rm = host.firmware.rm
        for packet in packets(random.Random(SEED)):
            host.rm._send_packet(packet, 1)
        host.rm.gunyah_rm_call(MsgId.VM_GET_VMID, b"")  # everything before it was served
        assert rm.bugs == []
        assert rm.host_link.reassembler.dropped > CASES // 10 and rm.stats["messages"] > CASES // 10
        assert rm.stats["errors"] > 0
        test_rm_lifecycle.test_vm_lifecycle_runs_guest_code_and_reports_its_exit(host)
    finally:
        host.close()
