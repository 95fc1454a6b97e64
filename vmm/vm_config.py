"""The VM config devicetree a VMM lends with the DTB (spec section 5.4), built with the fdt library.

One blob serves the RM and the guest: the RM reads ``/gunyah-vm-config``
(memory, vdevices) and ``/cpus``, then adds its own nodes (the GIC, the
``hypervisor`` node); the guest reads the rest (memory, PSCI, chosen, the
UART and the virtio-mmio devices).

:class:`VmLayout` is also the machine a VMM describes to the hypervisor
interface (``vmm/hypervisor.py``); its ``doorbells`` are Gunyah's, filled
in by the Gunyah backend from the devices' SPIs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import fdt

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
    """A VM's machine: RAM, vCPUs, the command line, MMIO devices, the console, shared memory."""

    ram_base: int
    ram_size: int
    vcpus: int
    cmdline: str = ""
    devices: list[MmioDevice] = field(default_factory=list)
    doorbells: list[DoorbellVdevice] = field(default_factory=list)
    stdout: str | None = None
    shared: SharedWindow | None = None


def build_dtb(layout: VmLayout, image_name: str = "gunyah-sim") -> bytes:
    """The DTB (version 17, no memory reservations) that describes ``layout``."""
    root = fdt.Node(
        "/",
        fdt.PropWords("#address-cells", 2),
        fdt.PropWords("#size-cells", 2),
        fdt.PropStrings("model", "gunyah-sim"),
        _vm_config(layout, image_name),
        _cpus(layout.vcpus),
        fdt.Node(
            "psci",
            fdt.PropStrings("compatible", "arm,psci-1.0"),
            fdt.PropStrings("method", "hvc"),
        ),
        fdt.Node(
            f"memory@{layout.ram_base:x}",
            fdt.PropStrings("device_type", "memory"),
            _reg("reg", layout.ram_base, layout.ram_size),
        ),
        _chosen(layout),
    )
    if layout.shared is not None:
        root.append(_shared(layout.shared))
    for dev in layout.devices:
        shared = layout.shared is not None and layout.shared.device == dev.name
        root.append(_device(dev, SHARED_PHANDLE if shared else None))
    tree = fdt.FDT(entries=[])
    tree.root = root
    return tree.to_dtb(version=17)


def _reg(name: str, *values: int) -> fdt.PropBytes:
    return fdt.PropBytes(name, data=struct.pack(f">{len(values)}Q", *values))


def _interrupts(spi: int) -> fdt.PropWords:
    return fdt.PropWords("interrupts", 0, spi, IRQ_TYPE_EDGE_RISING)


def _vm_config(layout: VmLayout, image_name: str) -> fdt.Node:
    vdevices = fdt.Node("vdevices", fdt.PropStrings("generate", "/hypervisor"))
    for bell in layout.doorbells:
        vdevices.append(
            fdt.Node(
                f"bell-{bell.label}",
                fdt.PropStrings("vdevice-type", "doorbell"),
                fdt.PropStrings("generate", f"/hypervisor/bell-{bell.label}"),
                fdt.PropWords("label", bell.label),
                fdt.Property("peer-default"),
                _interrupts(bell.spi),
            )
        )
    memory = fdt.Node(
        "memory", _reg("base-address", layout.ram_base), _reg("size-max", layout.ram_size)
    )
    return fdt.Node(
        "gunyah-vm-config",
        fdt.PropStrings("image-name", image_name),
        fdt.PropStrings("os-type", "linux"),
        memory,
        vdevices,
    )


def _cpus(vcpus: int) -> fdt.Node:
    cpus = fdt.Node("cpus", fdt.PropWords("#address-cells", 1), fdt.PropWords("#size-cells", 0))
    for i in range(vcpus):
        cpus.append(
            fdt.Node(
                f"cpu@{i}",
                fdt.PropStrings("device_type", "cpu"),
                fdt.PropStrings("compatible", "arm,armv8"),
                fdt.PropWords("reg", i),
                fdt.PropStrings("enable-method", "psci"),
            )
        )
    return cpus


def _chosen(layout: VmLayout) -> fdt.Node:
    # An empty bootargs is one NUL: a string property, never an empty one.
    chosen = fdt.Node("chosen", fdt.PropBytes("bootargs", data=layout.cmdline.encode() + b"\0"))
    if layout.stdout:
        chosen.append(fdt.PropStrings("stdout-path", layout.stdout))
    return chosen


def _shared(window: SharedWindow) -> fdt.Node:
    pool = fdt.Node(
        f"restricted-dma@{window.base:x}",
        fdt.PropStrings("compatible", "restricted-dma-pool"),
        _reg("reg", window.base, window.size),
        fdt.PropWords("phandle", SHARED_PHANDLE),
    )
    return fdt.Node(
        "reserved-memory",
        fdt.PropWords("#address-cells", 2),
        fdt.PropWords("#size-cells", 2),
        fdt.Property("ranges"),
        pool,
    )


def _device(dev: MmioDevice, memory_region: int | None) -> fdt.Node:
    node = fdt.Node(f"{dev.name}@{dev.base:x}")
    if memory_region is not None:
        node.append(fdt.PropWords("memory-region", memory_region))
    node.append(fdt.PropStrings("compatible", *dev.compatible))
    node.append(_reg("reg", dev.base, dev.size))
    if dev.spi is not None:
        node.append(_interrupts(dev.spi))
    return node
