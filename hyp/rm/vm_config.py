"""A VM's configuration devicetree (the RM's src/vm_config): read it, overlay it.

The VMM describes the VM in the DTB it lends with CONFIG_IMAGE: the
``gunyah-vm-config`` node (image name, OS type, memory base and maximum
size, vCPU affinity, vdevices) and the ``/cpus`` node (one ``cpu@N`` per
vCPU). After creating the VM the RM writes an overlay into the same DTB:
the GICv3 node (with a phandle, which the root's ``interrupt-parent``
names unless the VMM gave the root one), and the ``hypervisor`` node
with what it generated.
Parsing and writing use the fdt library; a DTB it cannot read is
ARGUMENT_INVALID, whatever the library raised. The library takes 0.1 to
0.2 ms to read a small blob and as long to write one, and VMMs lend the
same config DT VM after VM: what a read or an overlay gives depends on
the blob's bytes and the overlay's inputs only, so the last ``CACHED``
results of each are kept (failures are not: they are read again).
"""

from __future__ import annotations

import functools
import struct
import threading
from dataclasses import dataclass

import fdt

from hyp.rm.rm_types import RmError, RmFailure

MAX_VCPUS = 64
CACHED = 16  # blobs whose reading, and overlays whose result, are kept
RSVMAP_ENTRY = 16
# fdt.parse_dtb appends a blob's reservations to the list FDT() takes by
# default, one list for the whole process: reads are serialised and that list
# is emptied after each, so no blob's reservations reach another's tree.
_SHARED_ENTRIES = fdt.FDT.__init__.__defaults__[1]
_READ_LOCK = threading.Lock()


class _Unreadable(Exception):
    """A blob the RM will not read; the library raises bare Exceptions too."""


@dataclass(frozen=True)
class Doorbell:
    """A ``vdevice-type = "doorbell"`` vdevice: its node name, label and SPI."""

    name: str
    label: int
    virq: int
    trigger: int


@dataclass(frozen=True)
class VmConfig:
    """What the RM read; shared by every VM whose blob had the same bytes."""

    vcpus: int
    mem_base: int | None
    mem_size: int | None
    os_type: str
    doorbells: tuple[Doorbell, ...]
    shm: tuple[tuple[int, int], ...] = ()  # (label, base) of each "shm" vdevice


def _read(dtb: bytes) -> fdt.FDT:
    """The tree of ``dtb``; _Unreadable for a header, reservation block or
    structure the library cannot read or does not check (a total size past the
    blob, a reservation block that runs into the structure block)."""
    blob = bytes(dtb)
    with _READ_LOCK:
        try:
            tree = fdt.parse_dtb(blob)
            tree.entries = list(tree.entries)
        except Exception as e:
            raise _Unreadable(e) from None
        finally:
            _SHARED_ENTRIES.clear()
    header = tree.header
    rsvmap_end = header.off_mem_rsvmap + RSVMAP_ENTRY * (len(tree.entries) + 1)
    if header.total_size > len(blob) or rsvmap_end > header.off_dt_struct:
        raise _Unreadable("blocks outside the blob")
    return tree


def _raw(prop) -> bytes:
    """A property's value as the blob held it, whichever class the library chose."""
    if isinstance(prop, fdt.PropStrings):
        return b"".join(s.encode() + b"\0" for s in prop.data)
    if isinstance(prop, fdt.PropWords):
        return struct.pack(f">{len(prop.data)}I", *prop.data)
    if isinstance(prop, fdt.PropBytes):
        return bytes(prop.data)
    return b""


def _str(node: fdt.Node, name: str, default: str) -> str:
    """A string property: one NUL-terminated string; ARGUMENT_INVALID otherwise."""
    prop = node.get_property(name)
    if prop is None:
        return default
    if not isinstance(prop, fdt.PropStrings) or len(prop.data) != 1:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"{name}: not a string")
    return prop.data[0]


def _cells(node: fdt.Node, name: str, fmt: str) -> tuple[int, ...] | None:
    """A property of big-endian cells in ``fmt``; ARGUMENT_INVALID if sized otherwise."""
    prop = node.get_property(name)
    if prop is None:
        return None
    raw = _raw(prop)
    if len(raw) != struct.calcsize(fmt):
        raise RmFailure(RmError.ARGUMENT_INVALID, f"{name}: {len(raw)} bytes")
    return struct.unpack(fmt, raw)


def _u64(node: fdt.Node, name: str) -> int | None:
    """One or two cells: 32 or 64 bits."""
    prop = node.get_property(name)
    if prop is not None and len(_raw(prop)) == 4:
        return _cells(node, name, ">I")[0]
    value = _cells(node, name, ">Q")
    return None if value is None else value[0]


def parse(dtb: bytes) -> VmConfig:
    """The VM's configuration; ARGUMENT_INVALID for any blob the RM cannot read,
    a string property that is no string, or cells of the wrong size."""
    return _parse(bytes(dtb))


@functools.lru_cache(maxsize=CACHED)
def _parse(dtb: bytes) -> VmConfig:
    try:
        tree = _read(dtb)
        config = tree.get_node("/gunyah-vm-config")
    except (_Unreadable, ValueError) as e:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"VM config DT: {e}") from None
    mem_base = mem_size = None
    memory = config.get_subnode("memory")
    if memory is not None:
        mem_base, mem_size = _u64(memory, "base-address"), _u64(memory, "size-max")
    os_type = _str(config, "os-type", "linux")
    cpus = tree.root.get_subnode("cpus")
    vcpus = 1 if cpus is None else sum(n.name.startswith("cpu@") for n in cpus.nodes)
    if not 1 <= vcpus <= MAX_VCPUS:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"{vcpus} vCPUs")
    return VmConfig(vcpus, mem_base, mem_size, os_type, _doorbells(config), _shm(config))


def _shm(config: fdt.Node) -> tuple[tuple[int, int], ...]:
    """(label, base) of each ``vdevice-type = "shm"`` vdevice: memory the VM's owner
    shares or lends as a parcel with that label, placed at guest address ``base``."""
    vdevices = config.get_subnode("vdevices")
    found = []
    for node in vdevices.nodes if vdevices is not None else ():
        if _str(node, "vdevice-type", "") == "shm":
            label, base = _cells(node, "label", ">I"), _u64(node, "base")
            if label is None or base is None:
                raise RmFailure(RmError.ARGUMENT_INVALID, f"shm {node.name}: label or base")
            found.append((label[0], base))
    return tuple(found)


def _doorbells(config: fdt.Node) -> tuple[Doorbell, ...]:
    vdevices = config.get_subnode("vdevices")
    if vdevices is None:
        return ()
    bells, labels = [], set()
    for node in vdevices.nodes:
        if _str(node, "vdevice-type", "") == "doorbell":
            bells.append(_doorbell(node, labels))
    return tuple(bells)


def _doorbell(node: fdt.Node, labels: set) -> Doorbell:
    label, irq = _cells(node, "label", ">I"), _cells(node, "interrupts", ">3I")
    if label is None or irq is None:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"doorbell {node.name}: label or interrupts")
    if irq[0] != 0 or not 0 <= irq[1] < 988 or label[0] in labels:
        raise RmFailure(RmError.ARGUMENT_INVALID, f"doorbell {node.name}: interrupts or label")
    labels.add(label[0])
    return Doorbell(node.name, label[0], irq[1] + 32, irq[2])


def overlay(
    dtb: bytes, room: int, vcpus: int, gic: dict, vdevices: list[tuple[str, dict]]
) -> bytes:
    """The DTB with the RM's nodes added, its reservations kept, at most ``room``
    bytes: ARGUMENT_INVALID if unreadable or the nodes already exist, NOMEM if
    it does not fit. ``vdevices``: (node name, {property: a string or cells})."""
    nodes = tuple(
        (name, tuple((k, v if isinstance(v, str) else tuple(v)) for k, v in props.items()))
        for name, props in vdevices
    )
    merged = _merged(bytes(dtb), vcpus, tuple(gic["gicd"]), tuple(gic["gicr"]), nodes)
    if len(merged) > room:
        raise RmFailure(RmError.NOMEM, f"overlay: {len(merged)} bytes, room for {room}")
    return merged


@functools.lru_cache(maxsize=CACHED)
def _merged(dtb: bytes, vcpus: int, gicd: tuple, gicr: tuple, vdevices: tuple) -> bytes:
    try:
        tree = _read(dtb)
        gic_node = _gic_node(vcpus, gicd, gicr)
        phandle = _free_phandle(tree)
        gic_node.append(fdt.PropWords("phandle", phandle))
        tree.root.append(gic_node)
        if not tree.root.exist_property("interrupt-parent"):
            tree.root.append(fdt.PropWords("interrupt-parent", phandle))
        tree.root.append(_hypervisor_node(vdevices))
        return tree.to_dtb(version=17)
    except Exception as e:  # _Unreadable, or the library's bare Exception on a name taken
        raise RmFailure(RmError.ARGUMENT_INVALID, f"overlay: {e}") from None


def _free_phandle(tree: fdt.FDT) -> int:
    """One more than the largest phandle in ``tree``."""
    used = [
        int.from_bytes(_raw(prop)[:4], "big")
        for _, _, props in tree.walk()
        for prop in props
        if prop.name == "phandle"
    ]
    return max(used, default=0) + 1


def _gic_node(vcpus: int, gicd: tuple, gicr: tuple) -> fdt.Node:
    (gicd, gicd_size), (gicr, gicr_stride) = gicd, gicr
    reg = struct.pack(">4Q", gicd, gicd_size, gicr, gicr_stride * vcpus)
    return fdt.Node(
        f"interrupt-controller@{gicd:x}",
        fdt.PropStrings("compatible", "arm,gic-v3"),
        fdt.PropWords("#interrupt-cells", 3),
        fdt.Property("interrupt-controller"),
        fdt.PropBytes("reg", data=reg),
    )


def _hypervisor_node(vdevices: tuple) -> fdt.Node:
    hyp = fdt.Node("hypervisor", fdt.PropStrings("compatible", "gunyah-hypervisor"))
    for name, props in vdevices:
        node = fdt.Node(name)
        for key, value in props:
            if isinstance(value, str):
                node.append(fdt.PropStrings(key, value))
            else:
                node.append(fdt.PropWords(key, *value))
        hyp.append(node)
    return hyp
