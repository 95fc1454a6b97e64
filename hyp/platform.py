"""Power-on: the SoC, the hypervisor and the Resource Manager, as firmware leaves them.

:func:`boot_firmware` returns what the host kernel starts with: the
hypervisor's door for its hypercalls (its cspace and memory), and its
devicetree with the ``hypervisor`` node the RM overlaid.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field

from hyp.geniezone.hostmap import restore_page, zero_page
from hyp.gunyah.errors import Error, HypError
from hyp.gunyah.hypervisor import Gunyah, HostCaller, HostMemory
from hyp.hw.board import DRAM_SIZE, PAGE_SIZE
from hyp.rm.resource_manager import ResourceManager


@dataclass
class Firmware:
    gunyah: Gunyah
    rm: ResourceManager
    host: HostCaller
    host_dt: bytes
    # id(mapping) -> (mapping, pa, prot) of every host mapping of RAM
    host_mappings: dict = field(default_factory=dict)
    # None, or revoked(mapping, offset, length), told of each run of a host mapping
    # :meth:`revoke_host_access` zeroed: a server whose program maps the same pages
    # makes them unreachable there too.
    revoked: object = None

    def hvc(self, regs: list[int]) -> list[int]:
        """The host's ``hvc #0``."""
        return self.gunyah.smccc(self.host, regs)

    @property
    def memory(self) -> tuple[int, int]:
        """The host's RAM: (physical base, size), as the boot DT's memory node says."""
        return self.gunyah.boot_info["dram"]

    @property
    def machine_memory(self):
        """This process's mapping of the machine's DRAM (``.address``, ``.size``,
        ``.mapped``): the simulator's own memory, which no user pointer may reach."""
        return self.gunyah.dram

    def map_ram(
        self, pa: int, length: int, writable: bool = True, private: bool = False
    ) -> tuple[int, mmap.mmap | None]:
        """(error, mapping): a mapping of host RAM at ``pa`` (how the kernel maps
        pages to users; ``private``: writes go to copies, never to RAM), entered in
        the host's stage 2 only if the memdb allows it: ADDR_INVALID outside the
        host's RAM, DENIED over a page lent to a VM. The hypervisor knows of it
        until :meth:`unmap_ram`."""
        base, size = self.memory
        if not base <= pa <= pa + length <= base + size:
            return Error.ADDR_INVALID, None
        dram = self.gunyah.dram
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        flags = mmap.MAP_PRIVATE if private else mmap.MAP_SHARED
        mapping = dram.map(pa, length, flags, prot)
        try:
            self.gunyah.memdb.host_map(id(mapping), pa, length)
        except HypError as e:
            mapping.close()
            return e.error, None
        self.host_mappings[id(mapping)] = (mapping, pa, prot, flags)
        return Error.OK, mapping

    def unmap_ram(self, mapping: mmap.mmap) -> None:
        """The host dropped ``mapping`` (already closed) from its stage 2."""
        self.host_mappings.pop(id(mapping), None)
        self.gunyah.memdb.host_unmap(id(mapping))

    def revoke_host_access(self, pa: int, length: int) -> None:
        """The host's stage 2 loses [pa, pa+length), whatever maps it: host memory
        lent to a VM while the host keeps its mapping (user memory of the Android
        driver). On a device a later host access faults; here the page of each
        mapping reads as zeros from now on (``zero_page``), and the memdb lets the
        pages go to a protected owner."""
        runs: dict[int, list[list[int]]] = {}  # key -> [offset, length] of each run
        for key, page in self.gunyah.memdb.host_revoke(pa, length):
            mapping, start, prot, _ = self.host_mappings[key]
            zero_page(mapping, page - start, prot)
            run = runs.setdefault(key, [])
            if run and run[-1][0] + run[-1][1] == page - start:
                run[-1][1] += PAGE_SIZE
            else:
                run.append([page - start, PAGE_SIZE])
        if self.revoked is not None:
            for key, offsets in runs.items():
                for offset, size in offsets:
                    self.revoked(self.host_mappings[key][0], offset, size)

    def restore_host_access(self, pa: int, length: int) -> None:
        """Undo :meth:`revoke_host_access` for [pa, pa+length), the VM having given
        the pages back: each mapping that lost one sees the page of RAM again."""
        dram = self.gunyah.dram
        for key, page in self.gunyah.memdb.host_restore(pa, length):
            mapping, start, prot, flags = self.host_mappings[key]
            restore_page(mapping, page - start, prot, flags, dram.fd, page - dram.base)

    def discard_ram(self, pa: int, length: int) -> int:
        """Give whole pages back (they read as zero again): OK, or DENIED (nothing
        zeroed) if a page is lent to a VM, which the host may not write."""
        try:
            self.gunyah.memdb.check_host_access(pa, length)
        except HypError as e:
            return e.error
        self.gunyah.dram.zero(pa, length)
        return Error.OK

    def request_irq(self, virq: int, handler) -> None:
        """Route host virq ``virq`` to ``handler(virq)`` (the host's interrupt entry)."""
        self.gunyah.host_vic.handlers[virq] = handler

    def free_irq(self, virq: int) -> None:
        self.gunyah.host_vic.handlers.pop(virq, None)

    def send_ipi(self, thread: int) -> None:
        """Interrupt the CPU that host thread ``thread`` runs on (a reschedule IPI)."""
        self.gunyah.ipi(thread)

    def trace_guest_exits(self, sink) -> None:
        """Give ``sink`` a line for every vcpu_run return, guest PSCI call and
        virq a source (a doorbell) asserted in a guest's VIC."""
        self.gunyah.trace_lines(("vcpu_run", "psci", "virq_assert"), sink)

    def watch_guest_exceptions(self, sink) -> None:
        """Give ``sink`` every synchronous exception a guest vCPU takes to its
        EL1 (``event`` "guest_exception": the fields of
        :mod:`hyp.arch.exception`, with ``vcpu``, its trace name, and
        ``insn``, the word at ``pc``) and every fault it stops on for the
        host (``event`` "guest_fault": ``vcpu``, ``why``, ``pc``, ``insn``,
        ``spsr`` (PSTATE), ``regs``, ``sp``)."""
        self.gunyah.trace_fields(("guest_exception", "guest_fault"), sink)

    def shutdown(self) -> None:
        self.rm.stop()
        self.gunyah.close()


def boot_firmware(dram_size: int = DRAM_SIZE, rm_policy: str = "default") -> Firmware:
    if rm_policy not in ("default", "retail"):
        raise ValueError(f"unknown RM policy {rm_policy!r} (default or retail)")
    gunyah = Gunyah(dram_size)
    rm = ResourceManager(gunyah, rm_policy)
    rm.start()
    host = HostCaller(rm.link.cspace, HostMemory())
    return Firmware(gunyah, rm, host, rm.host_dt())
