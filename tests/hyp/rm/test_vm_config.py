"""The RM reads any bytes a VMM lends as its VM config DT: what it cannot read is
ARGUMENT_INVALID at CONFIG_IMAGE, what it cannot overlay an error reply, and
neither ever anything else (the RM's dispatch counts any other exception as a bug)."""

import struct
import subprocess
import sys

import libfdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyp.rm import vm_config
from hyp.rm.rm_types import RmError, RmFailure
from tests.kernel.gunyah.rmhelper import vm_config_dtb

GOOD = vm_config_dtb(vcpus=2, doorbells=((5, 8),))
GIC = {"gicd": (0x800_0000, 0x1_0000), "gicr": (0x80A_0000, 0x2_0000)}
RSVMAP_END = 40 + 16  # a v17 header, then the reservation block's terminating entry


def _replaced(old: bytes, new: bytes) -> bytes:
    """GOOD with the one property value ``old`` overwritten by ``new``, as long."""
    assert GOOD.count(old) == 1 and len(old) == len(new)
    return GOOD.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"linux\0", b"linux!"),  # os-type without its NUL
        (b"linux\0", b"li\0ux\0"),  # an embedded NUL
        (b"linux\0", b"lin\xffx\0"),  # not UTF-8
        (b"doorbell\0", b"door\xc3ell\0"),  # a vdevice-type
    ],
)
def test_a_string_property_that_is_no_string_is_argument_invalid(old, new):
    with pytest.raises(RmFailure) as e:
        vm_config.parse(_replaced(old, new))
    assert e.value.error == RmError.ARGUMENT_INVALID


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=4))
def test_a_corrupted_config_dt_is_read_or_argument_invalid(edits):
    blob = bytearray(GOOD)
    for at, byte in edits:
        blob[at] = byte
    try:
        vm_config.parse(bytes(blob))
    except RmFailure as e:
        assert e.error == RmError.ARGUMENT_INVALID


def test_an_unterminated_reservation_block_is_refused_without_harm():
    """A reservation block whose last entry is not zero runs on into the structure
    block: the RM refuses the DT at CONFIG_IMAGE, and an overlay of it is an error
    reply, in a process that goes on (libfdt would move the blob out of its buffer)."""
    blob = bytearray(GOOD)
    blob[RSVMAP_END - 1] = 1
    with pytest.raises(RmFailure) as e:
        vm_config.parse(bytes(blob))
    assert e.value.error == RmError.ARGUMENT_INVALID
    check = (
        "import gc, sys\n"
        "from hyp.rm import vm_config\n"
        "from hyp.rm.rm_types import RmFailure\n"
        "try:\n"
        f"    vm_config.overlay({bytes(blob)!r}, 0x1000, 2, {GIC!r}, [])\n"
        "except RmFailure as e:\n"
        "    print(e.error.name)\n"
        "gc.collect()\n"
    )
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert (run.returncode, run.stdout.strip()) == (0, "NOMEM"), run.stderr


def test_the_overlay_of_a_good_config_dt_reads_back():
    merged = vm_config.overlay(GOOD, 0x1000, 2, GIC, [("bell-5", {"interrupts": [0, 8, 1]})])
    config = vm_config.parse(merged)
    assert (config.vcpus, [b.label for b in config.doorbells]) == (2, [5])
    assert struct.unpack_from(">I", merged, 4)[0] == len(merged) <= 0x1000


def test_the_overlay_keeps_the_vmms_reservations_and_no_other_vms():
    """The reservation block a VMM wrote reaches its guest whole, and a blob read
    before never adds its entries to another VM's."""
    sw = libfdt.FdtSw()
    sw.add_reservemap_entry(0x8800_0000, 0x1000)
    sw.finish_reservemap()
    with sw.add_node(""), sw.add_node("gunyah-vm-config"):
        sw.property_string("os-type", "linux")
    reserved = sw.as_fdt().as_bytearray()
    merged = libfdt.Fdt(vm_config.overlay(reserved, 0x1000, 1, GIC, []))
    assert [merged.get_mem_rsv(i) for i in range(merged.num_mem_rsv())] == [[0x8800_0000, 0x1000]]
    assert libfdt.Fdt(vm_config.overlay(GOOD, 0x1000, 2, GIC, [])).num_mem_rsv() == 0
