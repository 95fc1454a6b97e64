"""The holding-cell guest answers each command of its mailbox."""

from tests.gunyahvm import RAM_IPA, SHARED_IPA
from tests.holdingcell import (
    FAIL,
    HVC,
    HYP_GUNYAH,
    LOOPBACK,
    OFF,
    OK,
    READ,
    REPORT,
    RESULT,
    STATUS,
    WHO,
    WRITE,
    HoldingCell,
)
from uapi.linux import gunyah as gh


def test_every_command(host):
    cell = HoldingCell(host, shared_word=0x1234)
    assert cell.command(OK) == {STATUS: 0}
    assert cell.command(FAIL) == {STATUS: 1}
    assert cell.command(LOOPBACK, 0xFEED_F00D) == {RESULT: 0xFEED_F00D}
    assert cell.command(READ, SHARED_IPA) == {RESULT: 0x1234}
    assert cell.command(WRITE, SHARED_IPA + 8, 77) == {STATUS: 0}
    assert cell.command(READ, SHARED_IPA + 8) == {RESULT: 77}
    assert cell.command(WHO) == {RESULT: HYP_GUNYAH}  # from the SMCCC vendor-hyp UID
    assert cell.command(9) == {STATUS: 2}
    assert cell.command(HVC, 0x8400_0000)[RESULT] == 0x1_0001  # PSCI_VERSION 1.1
    for i in range(100):  # a hundred round trips
        assert cell.command(LOOPBACK, i) == {RESULT: i}
    assert cell.command(OFF) == {}
    assert cell.run.exit_reason == gh.GUNYAH_VCPU_EXIT_STATUS
    assert cell.run.status.status == gh.GUNYAH_VM_STATUS_EXITED
    cell.close()


def test_an_exception_is_reported_and_the_loop_goes_on(host):
    cell = HoldingCell(host)
    writes = cell.command(READ, 0x4000_0000)  # nothing there: the VMM answers FAULT
    assert cell.elsewhere == [(0x4000_0000, 0)]
    assert writes[STATUS] == 3
    assert writes[REPORT] >> 26 == 0x25  # a data abort taken at EL1
    assert writes[REPORT + 8] == 0x4000_0000  # FAR_EL1
    assert RAM_IPA <= writes[REPORT + 16] < RAM_IPA + 0x1000  # ELR_EL1: the load
    assert cell.command(OK) == {STATUS: 0}
    cell.close()
