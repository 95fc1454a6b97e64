"""Power-on of a MediaTek SoC with GenieZone at EL2, as firmware leaves it.

:func:`boot_firmware` returns what the host kernel starts with: the door
for its hypercalls (:meth:`Firmware.hvc`), its RAM (all DRAM below EL2's
page pool), the calls its arch code makes to map RAM into processes, and
a devicetree with the ``hypervisor`` node of the DT binding
(``compatible = "mediatek,geniezone"``), which the gzvm driver binds to.
There is no Resource Manager: the host's driver talks to EL2 alone.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import fdt

from hyp.geniezone.errors import Error
from hyp.geniezone.hypervisor import GenieZone
from hyp.hw.board import DRAM_SIZE

COMPATIBLE = "mediatek,geniezone"


@dataclass
class Firmware:
    geniezone: GenieZone
    host_dt: bytes

    def hvc(self, regs: list[int]) -> list[int]:
        """The host's ``hvc #0``: x0..x7 in, x0..x3 out."""
        return self.geniezone.hvc(regs)

    @property
    def memory(self) -> tuple[int, int]:
        """The host's RAM: (physical base, size)."""
        return self.geniezone.host_ram

    @property
    def machine_memory(self):
        """This process's mapping of the machine's DRAM (``.address``, ``.size``,
        ``.mapped``): the simulator's own memory, which no user pointer may reach."""
        return self.geniezone.dram

    def map_ram(
        self, pa: int, length: int, writable: bool = True, private: bool = False
    ) -> tuple[int, mmap.mmap | None]:
        """(status, mapping): host RAM at ``pa`` mapped for the host kernel
        (``private``: writes go to copies). ERR_INVALID_ARGS outside host RAM,
        ERR_FAULT over a page of a protected VM (the host's access would fault)."""
        gz = self.geniezone
        if not gz.is_host_ram(pa, length):
            return Error.ERR_INVALID_ARGS, None
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        flags = mmap.MAP_PRIVATE if private else mmap.MAP_SHARED
        mapping = gz.dram.map(pa, length, flags, prot)
        with gz.lock:
            if gz.protected_pages(pa, length):
                mapping.close()
                return Error.ERR_FAULT, None
            gz.host_maps[id(mapping)] = (pa, length, mapping, prot)
        return Error.NO_ERROR, mapping

    def unmap_ram(self, mapping: mmap.mmap) -> None:
        """The host dropped ``mapping`` (already closed)."""
        with self.geniezone.lock:
            self.geniezone.host_maps.pop(id(mapping), None)

    def discard_ram(self, pa: int, length: int) -> int:
        """Zero whole pages the host frees: NO_ERROR, or ERR_BUSY (nothing zeroed)
        while a VM or EL2 still holds one of them."""
        gz = self.geniezone
        with gz.lock:
            if not gz.is_host_ram(pa, length):
                return Error.ERR_INVALID_ARGS
            if gz.holds(pa, length):
                return Error.ERR_BUSY
            gz.dram.zero(pa, length)
        return Error.NO_ERROR

    def send_ipi(self, thread: int) -> None:
        """Interrupt the CPU host thread ``thread`` runs on: a RUN in progress
        there returns GZVM_EXIT_IRQ; else the thread's next RUN does at once."""
        self.geniezone.ipi(thread)

    def trace_guest_exits(self, sink) -> None:
        """Give ``sink`` a line for every RUN exit (its GZVM_EXIT_* name), guest
        PSCI call and SPI the host raised (IRQ_LINE, by INTID)."""
        self.geniezone.trace_lines(("gzvm_exit", "psci", "irq_line"), sink)

    def watch_guest_exceptions(self, sink) -> None:
        """Give ``sink`` every synchronous exception a guest vCPU takes to its
        EL1 (``event`` "guest_exception": the fields of
        :mod:`hyp.arch.exception`, with ``vcpu``, its trace name, and
        ``insn``, the word at ``pc``) and every fault it stops on for the
        host (``event`` "guest_fault": ``vcpu``, ``why``, ``pc``, ``insn``,
        ``spsr`` (PSTATE), ``regs``, ``sp``)."""
        self.geniezone.trace_fields(("guest_exception", "guest_fault"), sink)

    def shutdown(self) -> None:
        self.geniezone.close()


def host_dt() -> bytes:
    """The host DT's ``hypervisor`` node (bindings/firmware/mediatek,geniezone.yaml)."""
    tree = fdt.FDT(entries=[])  # fdt 0.3.3 shares a mutable default list
    hypervisor = fdt.Node("hypervisor", fdt.PropStrings("compatible", COMPATIBLE))
    tree.root = fdt.Node(
        "/", fdt.PropWords("#address-cells", 2), fdt.PropWords("#size-cells", 2), hypervisor
    )
    return tree.to_dtb(version=17)


def boot_firmware(dram_size: int = DRAM_SIZE) -> Firmware:
    return Firmware(GenieZone(dram_size), host_dt())
