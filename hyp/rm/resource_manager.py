"""The Resource Manager VM: its link to the host and its message loop (src/main.c, rm-rpc).

At boot the RM holds the root capabilities. It creates the host's cspace,
the two message queues of the host link (host -> RM and RM -> host, 240-byte
messages) with their virqs, and the devicetree node through which the host
kernel finds them. Then it serves: whenever a message arrives it receives
packets with ``msgqueue_receive``, reassembles them, runs the handler of
the message id and sends the reply with ``msgqueue_send``.

Where it runs: the RM's vCPU outranks the host's, so a virq from the host's
link that finds it idle runs it at once on the sender's CPU (the sender's
thread, inside the hypercall that asserted the virq), as the directed yield
to the RM VM of a device would; the reply's virq then reaches the host
before its send returns. One thread at a time runs the RM (``_running``):
a virq that finds it busy, and every guest link's, wakes the RM's own
thread, which serves once the other run ends.

Bad input never stops it: malformed packets are dropped by the transport's
rules, a malformed payload is answered with MSG_INVALID or ARGUMENT_INVALID,
an unknown message id with UNIMPLEMENTED, and any failure of a handler with
an error reply; the RM's state is changed only by handlers that succeed.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from dataclasses import dataclass, field

import fdt

from hyp.gunyah.object import (
    MsgqueueRights,
    ObjectType,
    VicRights,
)
from hyp.rm import rm_rpc
from hyp.rm.hypercall import HypercallFailed, Hypercalls
from hyp.rm.memparcel import Memparcels
from hyp.rm.rm_rpc import Message, MsgType, Reassembler
from hyp.rm.rm_types import VMID_HLOS, MsgId, RmError, RmFailure
from hyp.rm.vm_mgnt import VmManager

SPARSE_WINDOW = 1 << 40
SPARSE_RWX = 7 | 1 << 16  # access RWX, type SPARSE
DONATE_TO_CHILD, DONATE_TO_SIBLING = 0, 2
QUEUE_DEPTH = 64  # a whole message of 63 packets fits
# The host's TX and RX interrupts (virqs on its VIC); the RM's RX virqs count up.
HOST_TX_VIRQ, HOST_RX_VIRQ = 33, 34
RM_FIRST_VIRQ = 33
_ERR = struct.Struct("<I")


@dataclass
class RmLink:
    """One VM's link to the RM: the RM's ends of the two queues, the VM's capids."""

    vmid: int
    rx_queue: int  # VM -> RM, the RM receives
    tx_queue: int  # RM -> VM, the RM sends
    peer_tx_capid: int  # in the VM's cspace: its sending end
    peer_rx_capid: int
    peer_tx_virq: int  # on the VM's VIC
    peer_rx_virq: int
    reassembler: Reassembler = field(default_factory=Reassembler)
    pending: bool = False


@dataclass
class HostLink:
    """What the host kernel needs to reach the RM."""

    cspace: object
    tx_capid: int
    rx_capid: int
    tx_virq: int
    rx_virq: int


class ResourceManager:
    """The RM: call :meth:`start` to serve; :meth:`stop` before the hypervisor closes."""

    def __init__(self, gunyah, policy: str = "default"):
        self.gunyah, self.policy = gunyah, policy
        self.hvc = Hypercalls(gunyah, gunyah.root)
        self.caps = gunyah.root_caps
        self.memory = gunyah.root.memory
        self.links: dict[int, RmLink] = {}  # by the RM's RX virq
        self._next_rm_virq = RM_FIRST_VIRQ
        self.handlers: dict[int, object] = {}
        self._seq = 0
        self._wake = threading.Event()
        self._running = threading.Lock()  # held by whichever thread runs the RM's vCPU
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = {"messages": 0, "errors": 0}
        self.bugs: list[BaseException] = []  # handler exceptions, each answered as NOMEM
        self.link = self._create_host_link()
        self.dram = gunyah.boot_info["dram"]
        self.caps["dram"] = self._create_dram_extent()
        self.caps["host_private"] = self.sparse_extent()
        self.caps["host_shared"] = self.sparse_extent()
        self.hvc.memextent_donate(
            DONATE_TO_CHILD,
            self.caps["dram"],
            self.caps["host_private"],
            self.dram[0],
            self.dram[1],
            0,
        )
        self.memparcels = Memparcels(self)
        self.vm_manager = VmManager(self)

    # boot
    def _create(self, kind: str, cspace: int | None = None) -> int:
        return self.hvc.call(
            f"partition_create_{kind}", self.caps["partition"], cspace or self.caps["cspace"], 0
        )[0]

    def create_link(
        self, vmid: int, peer_vic: int, peer_cspace: int, tx_virq: int, rx_virq: int
    ) -> RmLink:
        """The two queues of a VM's RM link, bound to the RM's and the VM's VICs."""
        hvc, caps = self.hvc, self.caps
        to_rm, to_vm = self._create("msgqueue"), self._create("msgqueue")
        for q in (to_rm, to_vm):
            hvc.msgqueue_configure(q, QUEUE_DEPTH | rm_rpc.PACKET_SIZE << 16, 0)
            hvc.object_activate(q, 0)
        rm_rx, self._next_rm_virq = self._next_rm_virq, self._next_rm_virq + 1
        hvc.msgqueue_bind_receive_virq(to_rm, caps["rm_vic"], rm_rx, 0)
        hvc.msgqueue_bind_send_virq(to_rm, peer_vic, tx_virq, 0)
        hvc.msgqueue_bind_receive_virq(to_vm, peer_vic, rx_virq, 0)
        copy = hvc.cspace_copy_cap_from
        tx = copy(caps["cspace"], to_rm, peer_cspace, MsgqueueRights.SEND, 0)[0]
        rx = copy(caps["cspace"], to_vm, peer_cspace, MsgqueueRights.RECEIVE, 0)[0]
        link = RmLink(vmid, to_rm, to_vm, tx, rx, tx_virq, rx_virq)
        self.links[rm_rx] = link
        self.gunyah.rm_vic.handlers[rm_rx] = self._on_rx
        return link

    def destroy_link(self, link: RmLink) -> None:
        virq = next(v for v, candidate in self.links.items() if candidate is link)
        del self.links[virq]
        self.gunyah.rm_vic.handlers.pop(virq, None)
        for queue in (link.rx_queue, link.tx_queue):
            self.hvc.cspace_delete_cap_from(self.caps["cspace"], queue, 0)

    def _on_rx(self, virq: int) -> None:
        """The RM's interrupt entry (the asserting thread, the EL2 lock held):
        an idle RM serves the host's link at once, else its thread is woken."""
        link = self.links[virq]
        link.pending = True
        if link is self.host_link and self._running.acquire(blocking=False):
            try:
                self._serve_pending()
            finally:
                self._running.release()
            return
        self._wake.set()

    def _create_host_link(self) -> HostLink:
        hvc, caps = self.hvc, self.caps
        host_cspace = self._create("cspace")
        hvc.object_activate(host_cspace, 0)
        self.host_cspace_cap = host_cspace
        link = self.create_link(
            VMID_HLOS, caps["host_vic"], host_cspace, HOST_TX_VIRQ, HOST_RX_VIRQ
        )
        self.host_link = link
        hvc.cspace_copy_cap_from(
            caps["cspace"], caps["host_vic"], host_cspace, VicRights.BIND_SOURCE, 0
        )
        space = self.gunyah.root.cspace.lookup(host_cspace, ObjectType.CSPACE)
        return HostLink(space, link.peer_tx_capid, link.peer_rx_capid, HOST_TX_VIRQ, HOST_RX_VIRQ)

    def _create_dram_extent(self) -> int:
        """All the memory the RM manages, as one extent parcels are derived from."""
        extent = self.create("memextent")
        self.hvc.memextent_configure(extent, *self.dram, 7, 0)
        self.hvc.object_activate(extent, 0)
        return extent

    # services for the message handlers
    def create(self, kind: str) -> int:
        return self._create(kind)

    def sparse_extent(self) -> int:
        """An empty extent over the whole IPA-sized window, a child of DRAM."""
        extent = self.create("memextent")
        self.hvc.memextent_configure_derive(
            extent, self.caps["dram"], 0, SPARSE_WINDOW, SPARSE_RWX, 0
        )
        self.hvc.object_activate(extent, 0)
        return extent

    def give_host(self, cap: int, rights: int) -> int:
        """A copy of ``cap`` with ``rights`` in the host's cspace."""
        root = self.caps["cspace"]
        return self.hvc.cspace_copy_cap_from(root, cap, self.host_cspace_cap, rights, 0)[0]

    def take_back(self, host_cap: int) -> None:
        with contextlib.suppress(HypercallFailed):  # the host may have deleted it
            self.hvc.cspace_delete_cap_from(self.host_cspace_cap, host_cap, 0)

    def owns(self, vmid: int, base: int, size: int) -> bool:
        """Whether [base, base+size) is memory of VM ``vmid`` (the host has DRAM)."""
        start, length = self.dram
        return vmid == VMID_HLOS and start <= base and base + size <= start + length

    def read_parcel(self, parcel, offset: int, size: int) -> bytes:
        """Bytes of a parcel the RM has been given, through its own mapping."""
        return b"".join(self.gunyah.dram.read(pa, n) for pa, n in _spans(parcel, offset, size))

    def write_parcel(self, parcel, offset: int, data: bytes) -> None:
        pos = 0
        for pa, n in _spans(parcel, offset, len(data)):
            self.gunyah.dram.write(pa, data[pos : pos + n])
            pos += n

    def host_dt(self) -> bytes:
        """The host's ``hypervisor`` node, as the RM overlays it into the host DT."""
        link = self.link
        reg = [link.tx_capid >> 32, link.tx_capid & 0xFFFF_FFFF]
        reg += [link.rx_capid >> 32, link.rx_capid & 0xFFFF_FFFF]
        rm_node = fdt.Node(
            "gunyah-resource-mgr@0",
            fdt.PropStrings("compatible", "gunyah-resource-manager"),
            fdt.PropWords("reg", *reg),
            fdt.PropWords("interrupts", 0, link.tx_virq - 32, 1, 0, link.rx_virq - 32, 1),
        )
        hypervisor = fdt.Node(
            "hypervisor",
            fdt.PropStrings("compatible", "gunyah-hypervisor"),
            fdt.PropWords("#address-cells", 2),
            fdt.PropWords("#size-cells", 0),
            rm_node,
        )
        tree = fdt.FDT(entries=[])
        tree.root = fdt.Node(
            "/", fdt.PropWords("#address-cells", 2), fdt.PropWords("#size-cells", 2), hypervisor
        )
        return tree.to_dtb(version=17)

    # serving
    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="gunyah-rm", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _serve(self) -> None:
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            with self._running:
                self._serve_pending()

    def _serve_pending(self) -> None:
        """Poll every link whose virq was asserted (``_running`` held)."""
        for link in list(self.links.values()):
            if link.pending:
                link.pending = False
                self.poll(link)

    def poll(self, link: RmLink) -> None:
        """Receive and handle every packet waiting on ``link``."""
        buf = self.memory.alloc(rm_rpc.PACKET_SIZE)
        not_empty = True
        while not_empty and not self._stopping:
            try:
                size, not_empty = self.hvc.msgqueue_receive(
                    link.rx_queue, buf, rm_rpc.PACKET_SIZE, 0
                )[:2]
            except HypercallFailed:
                return  # MSGQUEUE_EMPTY, or the link went away
            message = link.reassembler.feed(self.memory.read(buf, size))
            if message is not None:
                self.handle(link, message)

    def handle(self, link: RmLink, message: Message) -> None:
        """Answer a request (replies and notifications to the RM are ignored)."""
        if message.type != MsgType.REQUEST:
            return
        self.stats["messages"] += 1
        with self.gunyah.lock:
            error, data = self.dispatch(link.vmid, message.msg_id, message.payload)
        if error != RmError.OK:
            self.stats["errors"] += 1
        reply = Message(MsgType.REPLY, message.seq, message.msg_id, _ERR.pack(error) + data)
        self.send(reply, link)

    def dispatch(self, caller: int, msg_id: int, payload: bytes) -> tuple[RmError, bytes]:
        """Run the handler of ``msg_id`` for VM ``caller``; (error, reply data)."""
        handler = self.handlers.get(msg_id)
        if handler is None:
            return RmError.UNIMPLEMENTED, b""
        try:
            return RmError.OK, handler(caller, payload) or b""
        except RmFailure as e:
            self.gunyah.trace("rm_error", msg=_name(msg_id), error=e.error.name)
            return e.error, b""
        except Exception as e:
            self.bugs.append(e)
            self.gunyah.trace("rm_fault", msg=_name(msg_id), error=repr(e))
            return RmError.NOMEM, b""

    def notify(self, msg_id: MsgId, payload: bytes) -> None:
        """A notification to the host (the owner of every VM here)."""
        self._seq = (self._seq + 1) & 0xFFFF
        self.send(Message(MsgType.NOTIFICATION, self._seq, msg_id, payload), self.host_link)

    def send(self, message: Message, link: RmLink) -> None:
        self.gunyah.trace("rm_tx", type=message.type.name, msg=_name(message.msg_id))
        packets = rm_rpc.fragment(message)
        buf = self.memory.alloc(rm_rpc.PACKET_SIZE)
        for i, packet in enumerate(packets):
            self.memory.write(buf, packet)
            push = 1 if i == len(packets) - 1 else 0
            try:
                self.hvc.msgqueue_send(link.tx_queue, len(packet), buf, push, 0)
            except HypercallFailed:
                self.gunyah.trace("rm_tx_dropped", msg=_name(message.msg_id))
                return


def _spans(parcel, offset: int, size: int):
    """(PA, length) pieces of [offset, offset+size) of a parcel's SGL."""
    for base, length in parcel.sgl:
        if size <= 0:
            return
        if offset >= length:
            offset -= length
            continue
        n = min(length - offset, size)
        yield base + offset, n
        size, offset = size - n, 0


def _name(msg_id: int) -> str:
    return MsgId(msg_id).name if msg_id in MsgId._value2member_map_ else f"{msg_id:#x}"
