"""The trace ring keeps the last records when nobody asked for a trace, and a
sink that asked (what ``--trace`` installs) sees every one."""

from hyp.arch.el2 import TRACE_RING
from hyp.gunyah.hypervisor import Gunyah
from hyp.gunyah.vcpu import ResumeAction, VcpuState
from tests.aarch64 import assemble
from tests.hyp.gunyah.vmhelper import MMIO_IPA, build_vm

EXITS = TRACE_RING + 100
STATE, VCPU = ("state", "ADDRSPACE_VMMIO_WRITE"), ("vcpu", "vm1.cpu0")
STORES = assemble(f"ldr x9, ={MMIO_IPA:#x}\nmov x1, #0\n1: add x1, x1, #1\nstr x1, [x9]\nb 1b")


def exits(lines=None) -> Gunyah:
    """A Gunyah whose guest made EXITS MMIO exits."""
    gunyah = Gunyah(dram_size=1 << 30)
    if lines is not None:
        gunyah.trace_lines(("vcpu_run",), lines.append)
    vm = build_vm(gunyah, STORES)
    for _ in range(EXITS):
        assert vm.run(0, 0, ResumeAction.EMULATE)[0] == VcpuState.ADDRSPACE_VMMIO_WRITE
    return gunyah


def test_the_ring_keeps_only_the_last_records():
    gunyah = exits()
    try:
        records = list(gunyah.events)
        assert len(gunyah.events) == len(records) == TRACE_RING
        assert records[-1] == (
            "vcpu_run",
            (
                ("data", (MMIO_IPA, 8, EXITS)),
                ("state", "ADDRSPACE_VMMIO_WRITE"),
                ("vcpu", "vm1.cpu0"),
            ),
        )
        assert records[-1] in gunyah.events
        assert [dict(f)["data"][2] for _, f in records] == list(
            range(EXITS - TRACE_RING + 1, EXITS + 1)
        )
    finally:
        gunyah.close()


def test_a_sink_sees_every_record_the_ring_has_let_go():
    lines: list = []
    gunyah = exits(lines)
    try:
        assert len(gunyah.events) == TRACE_RING
        assert lines == [
            f"vcpu_run(data=({MMIO_IPA:#x}, 0x8, {n:#x}), state={STATE[1]}, vcpu={VCPU[1]})"
            for n in range(1, EXITS + 1)
        ]
    finally:
        gunyah.close()
