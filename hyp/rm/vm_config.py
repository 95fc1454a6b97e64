"""A VM's configuration devicetree (the RM's src/vm_config): read it, overlay it.

The VMM describes the VM in the DTB it lends with CONFIG_IMAGE: the
``gunyah-vm-config`` node (image name, OS type, memory base and maximum
size, vCPU affinity, vdevices) and the ``/cpus`` node (one ``cpu@N`` per
vCPU). After creating the VM the RM writes an overlay into the same DTB:
the GICv3 node, and the ``hypervisor`` node with what it generated.
Parsing and writing use libfdt; a DTB it cannot read is ARGUMENT_INVALID.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import libfdt

from hyp.rm.rm_types import RmError, RmFailure

MAX_VCPUS = 64
# What reading a blob raises besides libfdt's own errors: pylibfdt decodes node
# names and string properties (ValueError, UnicodeDecodeError) and indexes an
# empty property's last byte (IndexError).
_UNREADABLE = (libfdt.FdtException, ValueError, IndexError)


@dataclass(frozen=True)
class Doorbell:
    """A ``vdevice-type = "doorbell"`` vdevice: its node name, label and SPI."""

    name: str
    label: int
    virq: int
    trigger: int


@dataclass
class VmConfig:
    vcpus: int
    mem_base: int | None
    mem_size: int | None
    os_type: str
    doorbells: list[Doorbell]


def _u64(fdt, node: int, name: str) -> int | None:
    try:
        raw = fdt.getprop(node, name)
    except libfdt.FdtException:
        return None
    if len(raw) == 8:
        return struct.unpack(">Q", raw)[0]
    if len(raw) == 4:
        return struct.unpack(">I", raw)[0]
    raise RmFailure(RmError.ARGUMENT_INVALID, f"{name}: {len(raw)} bytes")


def _open(dtb: bytes):
    """The blob as libfdt's; FdtException if its reservation block has no end.

    libfdt's resize trusts that block: unterminated, it moves the blob out of
    its buffer, so no blob reaches an overlay before libfdt has counted it.
    """
    fdt = libfdt.Fdt(bytes(dtb))
    fdt.num_mem_rsv()
    return fdt


def parse(dtb: bytes) -> VmConfig:
    """The VM's configuration; ARGUMENT_INVALID for any blob libfdt cannot read,
    a string property that is no string, or cells of the wrong size."""
    try:
        return _parse(_open(dtb))
    except _UNREADABLE as e:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"VM config DT: {e}") from None


def _parse(fdt) -> VmConfig:
    config = fdt.path_offset("/gunyah-vm-config")
    mem_base = mem_size = None
    try:
        memory = fdt.subnode_offset(config, "memory")
        mem_base, mem_size = _u64(fdt, memory, "base-address"), _u64(fdt, memory, "size-max")
    except libfdt.FdtException:
        pass
    try:
        os_type = fdt.getprop(config, "os-type").as_str()
    except libfdt.FdtException:
        os_type = "linux"
    vcpus = 0
    try:
        cpus = fdt.path_offset("/cpus")
        node = fdt.first_subnode(cpus, quiet=[libfdt.NOTFOUND])
        while node >= 0:
            if fdt.get_name(node).startswith("cpu@"):
                vcpus += 1
            node = fdt.next_subnode(node, quiet=[libfdt.NOTFOUND])
    except libfdt.FdtException:
        vcpus = 1
    if not 1 <= vcpus <= MAX_VCPUS:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"{vcpus} vCPUs")
    return VmConfig(max(vcpus, 1), mem_base, mem_size, os_type, _doorbells(fdt, config))


def _doorbells(fdt, config: int) -> list[Doorbell]:
    try:
        vdevices = fdt.subnode_offset(config, "vdevices")
    except libfdt.FdtException:
        return []
    bells, labels = [], set()
    node = fdt.first_subnode(vdevices, quiet=[libfdt.NOTFOUND])
    while node >= 0:
        try:
            kind = fdt.getprop(node, "vdevice-type").as_str()
        except libfdt.FdtException:
            kind = ""
        if kind == "doorbell":
            bells.append(_doorbell(fdt, node, labels))
        node = fdt.next_subnode(node, quiet=[libfdt.NOTFOUND])
    return bells


def _doorbell(fdt, node: int, labels: set) -> Doorbell:
    name = fdt.get_name(node)
    try:
        label = fdt.getprop(node, "label").as_uint32()
        irq = struct.unpack(">3I", fdt.getprop(node, "interrupts"))
    except (libfdt.FdtException, struct.error) as e:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"doorbell {name}: {e}") from None
    if irq[0] != 0 or not 0 <= irq[1] < 988 or label in labels:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"doorbell {name}: interrupts or label")
    labels.add(label)
    return Doorbell(name, label, irq[1] + 32, irq[2])


def overlay(
    dtb: bytes, room: int, vcpus: int, gic: dict, vdevices: list[tuple[str, dict]]
) -> bytes:
    """The DTB with the RM's nodes added, at most ``room`` bytes; NOMEM if it does not fit."""
    try:
        fdt = _open(dtb)
        fdt.resize(room)
        root = fdt.path_offset("/")
        (gicd, gicd_size), (gicr, gicr_stride) = gic["gicd"], gic["gicr"]
        node = fdt.add_subnode(root, f"interrupt-controller@{gicd:x}")
        fdt.setprop_str(node, "compatible", "arm,gic-v3")
        fdt.setprop_u32(node, "#interrupt-cells", 3)
        fdt.setprop(node, "interrupt-controller", b"")
        fdt.setprop(node, "reg", struct.pack(">4Q", gicd, gicd_size, gicr, gicr_stride * vcpus))
        hyp = fdt.add_subnode(root, "hypervisor")
        fdt.setprop_str(hyp, "compatible", "gunyah-hypervisor")
        for name, props in vdevices:
            node = fdt.add_subnode(hyp, name)
            for key, value in props.items():
                if isinstance(value, str):
                    fdt.setprop_str(node, key, value)
                else:
                    fdt.setprop(node, key, struct.pack(f">{len(value)}I", *value))
        fdt.pack()
        return bytes(fdt.as_bytearray())
    except libfdt.FdtException as e:
        raise RmFailure(RmError.NOMEM, f"overlay: {e}") from None
