"""The VM config devicetree a VMM lends with the DTB (spec section 5.4), built with libfdt.

One blob serves the RM and the guest: the RM reads ``/gunyah-vm-config``
(memory, vdevices) and ``/cpus``, then adds its own nodes (the GIC, the
``hypervisor`` node); the guest reads the rest (memory, PSCI, chosen, the
UART and the virtio-mmio devices).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import libfdt

GIC_SPI_BASE = 32
IRQ_TYPE_EDGE_RISING = 1
SHARED_PHANDLE = 1


@dataclass(frozen=True)
class MmioDevice:
    """A device the guest finds in the DT: a node name, compatible, base, size, optional SPI."""

    name: str
    compatible: tuple[str, ...]
    base: int
    size: int
    spi: int | None = None


@dataclass(frozen=True)
class DoorbellVdevice:
    """A doorbell vdevice for an irqfd: its label and the SPI the guest takes."""

    label: int
    spi: int


@dataclass(frozen=True)
class SharedWindow:
    """Memory shared with the VMM, for the DMA of ``device`` (a restricted-dma-pool)."""

    base: int
    size: int
    device: str


@dataclass
class VmLayout:
    ram_base: int
    ram_size: int
    vcpus: int
    cmdline: str = ""
    devices: list[MmioDevice] = field(default_factory=list)
    doorbells: list[DoorbellVdevice] = field(default_factory=list)
    stdout: str | None = None
    shared: SharedWindow | None = None


def _cells(*values: int) -> bytes:
    return struct.pack(f">{len(values)}Q", *values)


def build_dtb(layout: VmLayout, image_name: str = "gunyah-sim") -> bytes:
    sw = libfdt.FdtSw()
    sw.finish_reservemap()
    with sw.add_node(""):
        sw.property_u32("#address-cells", 2)
        sw.property_u32("#size-cells", 2)
        sw.property_string("model", "gunyah-sim")
        _vm_config(sw, layout, image_name)
        _cpus(sw, layout.vcpus)
        with sw.add_node("psci"):
            sw.property_string("compatible", "arm,psci-1.0")
            sw.property_string("method", "hvc")
        with sw.add_node(f"memory@{layout.ram_base:x}"):
            sw.property_string("device_type", "memory")
            sw.property("reg", _cells(layout.ram_base, layout.ram_size))
        with sw.add_node("chosen"):
            sw.property_string("bootargs", layout.cmdline)
            if layout.stdout:
                sw.property_string("stdout-path", layout.stdout)
        if layout.shared is not None:
            _shared(sw, layout.shared)
        for dev in layout.devices:
            shared = layout.shared is not None and layout.shared.device == dev.name
            _device(sw, dev, SHARED_PHANDLE if shared else None)
    fdt = sw.as_fdt()
    fdt.pack()
    return bytes(fdt.as_bytearray())


def _vm_config(sw, layout: VmLayout, image_name: str) -> None:
    with sw.add_node("gunyah-vm-config"):
        sw.property_string("image-name", image_name)
        sw.property_string("os-type", "linux")
        with sw.add_node("memory"):
            sw.property("base-address", _cells(layout.ram_base))
            sw.property("size-max", _cells(layout.ram_size))
        with sw.add_node("vdevices"):
            sw.property_string("generate", "/hypervisor")
            for bell in layout.doorbells:
                with sw.add_node(f"bell-{bell.label}"):
                    sw.property_string("vdevice-type", "doorbell")
                    sw.property_string("generate", f"/hypervisor/bell-{bell.label}")
                    sw.property_u32("label", bell.label)
                    sw.property("peer-default", b"")
                    sw.property("interrupts", struct.pack(">3I", 0, bell.spi, IRQ_TYPE_EDGE_RISING))


def _cpus(sw, vcpus: int) -> None:
    with sw.add_node("cpus"):
        sw.property_u32("#address-cells", 1)
        sw.property_u32("#size-cells", 0)
        for i in range(vcpus):
            with sw.add_node(f"cpu@{i}"):
                sw.property_string("device_type", "cpu")
                sw.property_string("compatible", "arm,armv8")
                sw.property_u32("reg", i)
                sw.property_string("enable-method", "psci")


def _shared(sw, window: SharedWindow) -> None:
    with sw.add_node("reserved-memory"):
        sw.property_u32("#address-cells", 2)
        sw.property_u32("#size-cells", 2)
        sw.property("ranges", b"")
        with sw.add_node(f"restricted-dma@{window.base:x}"):
            sw.property_string("compatible", "restricted-dma-pool")
            sw.property("reg", _cells(window.base, window.size))
            sw.property_u32("phandle", SHARED_PHANDLE)


def _device(sw, dev: MmioDevice, memory_region: int | None) -> None:
    with sw.add_node(f"{dev.name}@{dev.base:x}"):
        if memory_region is not None:
            sw.property_u32("memory-region", memory_region)
        sw.property("compatible", b"".join(c.encode() + b"\0" for c in dev.compatible))
        sw.property("reg", _cells(dev.base, dev.size))
        if dev.spi is not None:
            sw.property("interrupts", struct.pack(">3I", 0, dev.spi, IRQ_TYPE_EDGE_RISING))
