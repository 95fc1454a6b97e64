"""The RM reads any bytes a VMM lends as its VM config DT: what it cannot read is
ARGUMENT_INVALID at CONFIG_IMAGE, what it cannot overlay an error reply, and
neither ever anything else (the RM's dispatch counts any other exception as a bug)."""

import struct

import fdt
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


def test_an_unterminated_reservation_block_is_refused():
    """A reservation block whose last entry is not zero runs on into the structure
    block: the RM refuses the DT at CONFIG_IMAGE, and an overlay of it too."""
    blob = bytearray(GOOD)
    blob[RSVMAP_END - 1] = 1
    for read in (vm_config.parse, lambda b: vm_config.overlay(b, 0x1000, 2, GIC, [])):
        with pytest.raises(RmFailure) as e:
            read(bytes(blob))
        assert e.value.error == RmError.ARGUMENT_INVALID


def test_a_total_size_past_the_blob_is_refused():
    blob = bytearray(GOOD)
    struct.pack_into(">I", blob, 4, len(GOOD) + 1)
    with pytest.raises(RmFailure) as e:
        vm_config.parse(bytes(blob))
    assert e.value.error == RmError.ARGUMENT_INVALID


def test_an_overlay_that_does_not_fit_is_nomem():
    with pytest.raises(RmFailure) as e:
        vm_config.overlay(GOOD, len(GOOD), 2, GIC, [])
    assert e.value.error == RmError.NOMEM


def test_the_overlay_of_a_good_config_dt_reads_back():
    merged = vm_config.overlay(GOOD, 0x1000, 2, GIC, [("bell-5", {"interrupts": [0, 8, 1]})])
    config = vm_config.parse(merged)
    assert (config.vcpus, [b.label for b in config.doorbells]) == (2, [5])
    assert struct.unpack_from(">I", merged, 4)[0] == len(merged) <= 0x1000


def test_the_overlay_keeps_the_vmms_reservations_and_no_other_vms():
    """The reservation block a VMM wrote reaches its guest whole, and a blob read
    before never adds its entries to another VM's."""
    reserved = fdt.FDT(entries=[{"address": 0x8800_0000, "size": 0x1000}])
    reserved.root = fdt.Node("/", fdt.Node("gunyah-vm-config", fdt.PropStrings("os-type", "linux")))
    blob = reserved.to_dtb(version=17)
    assert blob[RSVMAP_END - 16 : RSVMAP_END] == struct.pack(">2Q", 0x8800_0000, 0x1000)
    merged = vm_config.overlay(blob, 0x1000, 1, GIC, [])
    assert merged[RSVMAP_END - 16 : RSVMAP_END + 16] == struct.pack(
        ">4Q", 0x8800_0000, 0x1000, 0, 0
    )
    merged = vm_config.overlay(GOOD, 0x1000, 2, GIC, [])
    assert merged[RSVMAP_END - 16 : RSVMAP_END] == bytes(16)  # terminated at once: none


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=24))
def test_the_overlay_keeps_a_vmm_property_value_byte_for_byte(value):
    """Whatever class the fdt library reads a value into, it writes back its bytes."""
    tree = fdt.FDT(entries=[])
    probe = fdt.Node(
        "probe", fdt.PropBytes("value", data=value) if value else fdt.Property("value")
    )
    tree.root = fdt.Node("/", fdt.Node("gunyah-vm-config"), probe)
    merged = vm_config.overlay(tree.to_dtb(version=17), 0x1000, 1, GIC, [])
    marker = struct.pack(">I", 1) + b"probe\0\0\0"  # FDT_BEGIN_NODE, its padded name
    at = merged.index(marker) + len(marker)
    tag, size, _ = struct.unpack_from(">3I", merged, at)
    assert (tag, merged[at + 12 : at + 12 + size]) == (3, value)  # FDT_PROP


def test_kept_results_follow_the_blobs_bytes_and_the_overlays_inputs():
    """Reads and overlays are kept by content: another blob, or the same blob
    with other vdevices, is read and written again."""
    two, three = (vm_config.parse(vm_config_dtb(vcpus=n)) for n in (2, 3))
    assert (two.vcpus, three.vcpus) == (2, 3)
    assert vm_config.parse(bytearray(vm_config_dtb(vcpus=2))) == two
    one = vm_config.overlay(GOOD, 0x1000, 2, GIC, [("bell-5", {"interrupts": [0, 8, 1]})])
    other = vm_config.overlay(GOOD, 0x1000, 2, GIC, [("bell-5", {"interrupts": [0, 9, 1]})])
    assert one != other
    assert vm_config.overlay(GOOD, 0x1000, 2, GIC, [("bell-5", {"interrupts": [0, 8, 1]})]) == one
