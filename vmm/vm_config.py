"""The devicetrees a VMM gives its guest, built with the fdt library.

Gunyah (:func:`build_dtb`): the VM config DT lent with the DTB (spec
section 5.4). One blob serves the RM and the guest: the RM reads
``/gunyah-vm-config`` (memory, vdevices) and ``/cpus``, then adds its own
nodes (the GIC, the ``hypervisor`` node); the guest reads the rest
(memory, PSCI, chosen, the UART and the virtio-mmio devices).

GenieZone (:func:`build_gic_dtb`): EL2 hands the DTB to the guest as it
is, so the VMM describes the whole machine itself: the same nodes, no
``gunyah-vm-config``, plus the GICv3 at the addresses the VMM gives
GZVM_CREATE_DEVICE (:class:`GicV3`), the architected timer and the root's
``interrupt-parent``.

:class:`VmLayout` is also the machine a VMM describes to the hypervisor
interface (``vmm/hypervisor.py``); its ``doorbells`` are Gunyah's, filled
in by the Gunyah backend from the devices' SPIs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import fdt

GIC_SPI_BASE = 32
GIC_PPI = 1  # the first cell of a GIC interrupt specifier
IRQ_TYPE_EDGE_RISING = 1
IRQ_TYPE_LEVEL_LOW = 8
SHARED_PHANDLE = 1
GIC_PHANDLE = 2
CLOCK_PHANDLE = 3
# The architected timer's PPIs (secure and non-secure physical, virtual, hypervisor), from 16.
TIMER_PPIS = (13, 14, 11, 10)
# crosvm's GICv3 layout on GenieZone (spec section 4.1): the distributor just below 1 GiB,
# one redistributor frame per vCPU below it, vCPU 0's lowest.
GICD_BASE, GICD_SIZE = 0x3FFF_0000, 0x1_0000
GICR_SIZE = 0x2_0000


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


@dataclass(frozen=True)
class GicV3:
    """A GICv3: the distributor at ``dist_base``, ``vcpus`` redistributor frames of
    ``redist_size`` bytes from ``redist_base`` (vCPU n's at ``redist_base + n * redist_size``)."""

    dist_base: int
    dist_size: int
    redist_base: int
    redist_size: int
    vcpus: int

    @classmethod
    def below_1g(cls, vcpus: int) -> GicV3:
        """crosvm's layout: GICD at 0x3FFF0000 (64 KiB), the redistributors just below it."""
        return cls(GICD_BASE, GICD_SIZE, GICD_BASE - GICR_SIZE * vcpus, GICR_SIZE, vcpus)


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
    # For Linux: the initramfs (start, end) in RAM, the timer's PPIs in the binding's
    # order (the Gunyah DT has a timer node only with them), the clock of the
    # PrimeCell devices in Hz (their ``clocks``, which Linux's AMBA bus needs).
    initrd: tuple[int, int] | None = None
    timer_ppis: tuple[int, ...] = ()
    apb_clock: int = 0


def build_dtb(layout: VmLayout, image_name: str = "gunyah-sim") -> bytes:
    """Gunyah's VM config DTB (version 17, no memory reservations) for ``layout``:
    the RM completes it with the GIC and ``hypervisor`` nodes."""
    timer = [_timer(layout.timer_ppis)] if layout.timer_ppis else []
    return _dtb(layout, [_vm_config(layout, image_name)], timer)


def build_gic_dtb(layout: VmLayout, gic: GicV3) -> bytes:
    """The guest's whole DTB (version 17, no memory reservations) for ``layout`` with
    ``gic`` as the interrupt controller of every device: for a hypervisor that passes
    the DTB on unchanged (GenieZone). ValueError: the GIC has frames for another
    number of vCPUs than the layout."""
    if gic.vcpus != layout.vcpus:
        raise ValueError(f"the GIC has {gic.vcpus} redistributors for {layout.vcpus} vCPUs")
    root_props = [fdt.PropWords("interrupt-parent", GIC_PHANDLE)]
    return _dtb(layout, root_props, [_gic(gic), _timer(layout.timer_ppis or TIMER_PPIS)])


def _dtb(layout: VmLayout, head: list, controllers: list[fdt.Node]) -> bytes:
    """The nodes both hypervisors' DTBs share, with ``head`` after the model and the
    interrupt ``controllers`` after /chosen."""
    root = fdt.Node(
        "/",
        fdt.PropWords("#address-cells", 2),
        fdt.PropWords("#size-cells", 2),
        fdt.PropStrings("model", "gunyah-sim"),
        *head,
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
        *controllers,
    )
    if layout.shared is not None:
        root.append(_shared(layout.shared))
    if layout.apb_clock:
        root.append(_clock(layout.apb_clock))
    for dev in layout.devices:
        shared = layout.shared is not None and layout.shared.device == dev.name
        node = _device(dev, SHARED_PHANDLE if shared else None)
        if layout.apb_clock and "arm,primecell" in dev.compatible:
            node.append(fdt.PropWords("clocks", CLOCK_PHANDLE, CLOCK_PHANDLE))
            node.append(fdt.PropStrings("clock-names", "uartclk", "apb_pclk"))
        root.append(node)
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


def _gic(gic: GicV3) -> fdt.Node:
    return fdt.Node(
        f"interrupt-controller@{gic.dist_base:x}",
        fdt.PropStrings("compatible", "arm,gic-v3"),
        fdt.PropWords("#interrupt-cells", 3),
        fdt.Property("interrupt-controller"),
        _reg(
            "reg",
            gic.dist_base,
            gic.dist_size,
            gic.redist_base,
            gic.redist_size * gic.vcpus,
        ),
        fdt.PropWords("phandle", GIC_PHANDLE),
    )


def _timer(ppis: tuple[int, ...]) -> fdt.Node:
    # Linux's arch timer takes the virtual timer when the DT names its PPI (the third)
    # and the guest runs at EL1, else the non-secure physical one (the second).
    cells = [cell for ppi in ppis for cell in (GIC_PPI, ppi, IRQ_TYPE_LEVEL_LOW)]
    return fdt.Node(
        "timer",
        fdt.PropStrings("compatible", "arm,armv8-timer"),
        fdt.PropWords("interrupts", *cells),
        fdt.Property("always-on"),
    )


def _clock(hz: int) -> fdt.Node:
    return fdt.Node(
        "apb-pclk",
        fdt.PropStrings("compatible", "fixed-clock"),
        fdt.PropWords("#clock-cells", 0),
        fdt.PropWords("clock-frequency", hz),
        fdt.PropWords("phandle", CLOCK_PHANDLE),
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
    if layout.initrd is not None:
        start, end = layout.initrd
        chosen.append(_reg("linux,initrd-start", start))
        chosen.append(_reg("linux,initrd-end", end))
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
