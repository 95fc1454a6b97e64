"""virtio-mmio (virtio 1.x, section 4.2) with split virtqueues (section 2.7), device side.

:class:`VirtioMmio` is the register file a guest driver programs through
MMIO exits. The hot paths avoid exits the way VMMs do on a device: a
write to QueueNotify is matched by an ioeventfd (one per queue, DATAMATCH
on the queue index) and handled in the VMM's event loop, and the used-
buffer interrupt is an irqfd write. Rings and buffers live in guest
memory the VMM can map: the shared window (:class:`GuestMemory`).
"""

from __future__ import annotations

import struct
import threading

MAGIC, VERSION, VENDOR = 0x74726976, 2, 0x554D4551  # "virt", virtio-mmio 1.x
VIRTIO_F_VERSION_1 = 1 << 32
VRING_DESC_F_NEXT, VRING_DESC_F_WRITE = 1, 2
STATUS_FEATURES_OK, STATUS_DRIVER_OK, STATUS_FAILED = 8, 4, 0x80
QUEUE_NOTIFY = 0x050
SIZE = 0x200
MAX_QUEUE = 64

REG_MAGIC, REG_VERSION, REG_DEVICE_ID, REG_VENDOR = 0x000, 0x004, 0x008, 0x00C
REG_DEV_FEATURES, REG_DEV_FEATURES_SEL = 0x010, 0x014
REG_DRV_FEATURES, REG_DRV_FEATURES_SEL = 0x020, 0x024
REG_QUEUE_SEL, REG_QUEUE_NUM_MAX, REG_QUEUE_NUM, REG_QUEUE_READY = 0x030, 0x034, 0x038, 0x044
REG_INTERRUPT_STATUS, REG_INTERRUPT_ACK, REG_STATUS = 0x060, 0x064, 0x070
QUEUE_ADDRS = {0x080: "desc", 0x090: "driver", 0x0A0: "device"}  # low words; high at +4
REG_CONFIG_GENERATION, REG_CONFIG = 0x0FC, 0x100


class GuestMemory:
    """The guest addresses the VMM can reach: (IPA base, a host mapping) windows."""

    def __init__(self):
        self.windows: list[tuple[int, object]] = []

    def _locate(self, ipa: int, size: int):
        for base, mapping in self.windows:
            if base <= ipa and ipa + size <= base + len(mapping):
                return mapping, ipa - base
        raise ValueError(f"guest address {ipa:#x}+{size:#x} is not shared with the VMM")

    def read(self, ipa: int, size: int) -> bytes:
        mapping, off = self._locate(ipa, size)
        return bytes(mapping[off : off + size])

    def write(self, ipa: int, data: bytes) -> None:
        mapping, off = self._locate(ipa, len(data))
        mapping[off : off + len(data)] = data


class Virtqueue:
    """One split virtqueue: the driver's descriptors and rings, as the device sees them."""

    def __init__(self, mem: GuestMemory):
        self.mem = mem
        self.num, self.ready, self.last_avail = 0, False, 0
        self.addr = {"desc": 0, "driver": 0, "device": 0}

    def pop(self):
        """The next available chain: (head, [(addr, len, writable)]), or None."""
        avail_idx = struct.unpack("<H", self.mem.read(self.addr["driver"] + 2, 2))[0]
        if self.last_avail == avail_idx:
            return None
        slot = self.addr["driver"] + 4 + 2 * (self.last_avail % self.num)
        head = struct.unpack("<H", self.mem.read(slot, 2))[0]
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        chain, index = [], head
        for _ in range(self.num):  # a loop in the chain ends it
            addr, length, flags, nxt = struct.unpack(
                "<QIHH", self.mem.read(self.addr["desc"] + 16 * index, 16)
            )
            chain.append((addr, length, bool(flags & VRING_DESC_F_WRITE)))
            if not flags & VRING_DESC_F_NEXT:
                break
            index = nxt % self.num
        return head, chain

    def push(self, head: int, written: int) -> None:
        """Return a chain to the driver with ``written`` bytes put in it."""
        used = self.addr["device"]
        idx = struct.unpack("<H", self.mem.read(used + 2, 2))[0]
        self.mem.write(used + 4 + 8 * (idx % self.num), struct.pack("<II", head, written))
        self.mem.write(used + 2, struct.pack("<H", (idx + 1) & 0xFFFF))  # after the entry


class VirtioMmio:
    """The transport of one device: ``device`` has device_id, features, config, queues, notify()."""

    def __init__(self, device, mem: GuestMemory, interrupt):
        self.device, self.mem, self._raise_irq = device, mem, interrupt
        self.queues = [Virtqueue(mem) for _ in range(device.num_queues)]
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.status = self.interrupt_status = self.queue_sel = 0
        self.dev_features_sel = self.drv_features_sel = self.drv_features = 0
        for q in self.queues:
            q.num, q.ready, q.last_avail = 0, False, 0

    @property
    def live(self) -> bool:
        return bool(self.status & STATUS_DRIVER_OK)

    def interrupt(self) -> None:
        """A used buffer: raise the interrupt (InterruptStatus bit 0, then the irqfd)."""
        self.interrupt_status |= 1
        self._raise_irq()

    def mmio_read(self, offset: int, size: int) -> int:
        with self.lock:
            if offset >= REG_CONFIG:
                config = self.device.config()
                data = config[offset - REG_CONFIG : offset - REG_CONFIG + size]
                return int.from_bytes(data.ljust(size, b"\0"), "little")
            q = self.queues[self.queue_sel] if self.queue_sel < len(self.queues) else None
            features = self.device.features | VIRTIO_F_VERSION_1
            values = {
                REG_MAGIC: MAGIC,
                REG_VERSION: VERSION,
                REG_DEVICE_ID: self.device.device_id,
                REG_VENDOR: VENDOR,
                REG_DEV_FEATURES: features >> 32 * self.dev_features_sel & 0xFFFF_FFFF,
                REG_QUEUE_NUM_MAX: MAX_QUEUE if q is not None else 0,
                REG_QUEUE_READY: int(q.ready) if q is not None else 0,
                REG_INTERRUPT_STATUS: self.interrupt_status,
                REG_STATUS: self.status,
                REG_CONFIG_GENERATION: 0,
            }
            return values.get(offset, 0)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        with self.lock:
            if offset == QUEUE_NOTIFY:
                self.notify(value)
            elif offset == REG_STATUS:
                self._set_status(value)
            elif offset == REG_INTERRUPT_ACK:
                self.interrupt_status &= ~value
            else:
                self._write_config(offset, value)

    def _set_status(self, value: int) -> None:
        if value == 0:
            self.reset()
            return
        if value & STATUS_FEATURES_OK and not self.drv_features & VIRTIO_F_VERSION_1:
            value &= ~STATUS_FEATURES_OK  # a legacy driver: refuse
        self.status = value

    def _write_config(self, offset: int, value: int) -> None:
        q = self.queues[self.queue_sel] if self.queue_sel < len(self.queues) else None
        if offset == REG_DEV_FEATURES_SEL:
            self.dev_features_sel = value & 1
        elif offset == REG_DRV_FEATURES_SEL:
            self.drv_features_sel = value & 1
        elif offset == REG_DRV_FEATURES:
            shift = 32 * self.drv_features_sel
            self.drv_features = self.drv_features & ~(0xFFFF_FFFF << shift) | value << shift
        elif offset == REG_QUEUE_SEL:
            self.queue_sel = value
        elif q is None:
            return
        elif offset == REG_QUEUE_NUM:
            q.num = min(value, MAX_QUEUE)
        elif offset == REG_QUEUE_READY:
            q.ready = bool(value & 1)
        elif offset & ~0x4 in QUEUE_ADDRS:
            name, shift = QUEUE_ADDRS[offset & ~0x4], 32 if offset & 4 else 0
            q.addr[name] = q.addr[name] & ~(0xFFFF_FFFF << shift) | value << shift

    def notify(self, index: int) -> None:
        """QueueNotify (from an MMIO exit or the queue's ioeventfd)."""
        with self.lock:
            if self.live and index < len(self.queues) and self.queues[index].ready:
                self.device.notify(self, index)
