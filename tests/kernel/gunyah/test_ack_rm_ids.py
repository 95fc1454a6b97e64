"""The RM message ids a driver generation sends where they differ (gunyah-ack.md §6).

android15-6.6 sends each boot-context register as 0x56000031; v16 sent its
own 0x5600000C. The RM takes both, and the guest starts at the PC either way.
"""

import pytest

from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah.rsc_mgr import GunyahRm
from tests.kernel.gunyah.ackvm import boot, make_vm

POWER_OFF = """
    movz x0, #0x0008
    movk x0, #0x8400, lsl #16
    hvc #0
"""


@pytest.fixture
def sent(monkeypatch):
    """The message ids the host's RM driver sends, in order."""
    ids = []
    call = GunyahRm.gunyah_rm_call

    def recording(self, msg_id, req):
        ids.append(msg_id)
        return call(self, msg_id, req)

    monkeypatch.setattr(GunyahRm, "gunyah_rm_call", recording)
    return ids


def test_android15_sends_the_boot_context_as_0x56000031(sent):
    host = boot("ack-6.6")
    t = make_vm(host, POWER_OFF, lend=True)
    try:
        t.start()
        t.run()
        assert rpc.VM_SET_BOOT_CONTEXT_ANDROID in sent
        assert rpc.VM_SET_BOOT_CONTEXT not in sent
        assert t.run_page().exit_reason == 2  # STATUS: the guest ran from the PC and powered off
    finally:
        t.close()
