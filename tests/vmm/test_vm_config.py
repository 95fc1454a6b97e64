"""The devicetrees the VMM builds: Gunyah's VM config DT pinned, GenieZone's whole DT."""

import hashlib
import struct
from dataclasses import replace

import fdt
import pytest

from vmm.vm_config import (
    GIC_PHANDLE,
    DoorbellVdevice,
    GicV3,
    MmioDevice,
    SharedWindow,
    VmLayout,
    build_dtb,
    build_gic_dtb,
)

LAYOUT = VmLayout(
    0x8000_0000,
    64 << 20,
    4,
    "console=hvc0",
    devices=[
        MmioDevice("pl011", ("arm,pl011", "arm,primecell"), 0x0900_0000, 0x1000),
        MmioDevice("virtio_mmio", ("virtio,mmio",), 0x0A00_0000, 0x200, 16),
    ],
    stdout="/pl011@9000000",
    shared=SharedWindow(0xC000_0000, 0x1_0000, "virtio_mmio"),
)


def test_gunyahs_vm_config_dt_is_byte_for_byte_what_it_was():
    # The sample VMM's layout with its one doorbell; a change here changes what the RM reads.
    dtb = build_dtb(replace(LAYOUT, doorbells=[DoorbellVdevice(1, 16)]), "hello")
    assert (len(dtb), hashlib.sha256(dtb).hexdigest()) == (
        1641,
        "7358529a1ee07cddb65b4783205ff4fd33c7a4cb7eeaed42db6eb0b781b2c861",
    )


def test_crosvms_gic_layout_puts_the_redistributors_below_the_distributor():
    gic = GicV3.below_1g(4)
    assert (gic.dist_base, gic.dist_size) == (0x3FFF_0000, 0x1_0000)
    assert (gic.redist_base, gic.redist_size) == (0x3FFF_0000 - 4 * 0x2_0000, 0x2_0000)
    assert gic.redist_base + gic.redist_size * gic.vcpus == gic.dist_base


def test_the_geniezone_dt_describes_the_gic_timer_and_interrupt_parent():
    gic = GicV3.below_1g(4)
    tree = fdt.parse_dtb(build_gic_dtb(LAYOUT, gic))
    assert tree.header.version == 17
    assert not tree.exist_node("/gunyah-vm-config")
    assert tree.get_property("interrupt-parent").value == GIC_PHANDLE
    intc = tree.get_node("interrupt-controller@3fff0000")
    assert intc.get_property("compatible").value == "arm,gic-v3"
    assert intc.get_property("#interrupt-cells").value == 3
    assert intc.exist_property("interrupt-controller")
    assert intc.get_property("phandle").value == GIC_PHANDLE
    reg = struct.pack(">8I", *intc.get_property("reg").data)
    assert struct.unpack(">4Q", reg) == (0x3FFF_0000, 0x1_0000, 0x3FF7_0000, 4 * 0x2_0000)
    timer = tree.get_node("timer")
    assert timer.get_property("compatible").value == "arm,armv8-timer"
    assert list(timer.get_property("interrupts").data) == [1, 13, 8, 1, 14, 8, 1, 11, 8, 1, 10, 8]
    psci = tree.get_node("psci")
    assert psci.get_property("method").value == "hvc"
    assert len(tree.get_node("cpus").nodes) == 4
    virtio = tree.get_node("virtio_mmio@a000000")
    assert list(virtio.get_property("interrupts").data) == [0, 16, 1]  # SPI 16, edge
    assert tree.get_property("stdout-path", "/chosen").value == "/pl011@9000000"


def test_the_gic_must_have_a_redistributor_per_vcpu():
    with pytest.raises(ValueError, match="2 redistributors for 4 vCPUs"):
        build_gic_dtb(LAYOUT, GicV3.below_1g(2))
