"""Virtual interrupt controllers (hyp/vm/vic_base, hyp/vm/vgic): the VIC object.

A guest VIC is the :class:`~hyp.arch.vgic.Vgic` of its VM as a Gunyah
object: configured (vCPU and virq counts), activated, vCPUs attached to it
by index. Sources (doorbells, message queues, vCPU wakeups) are bound to
SPIs with :meth:`Vic.bind` and assert them; after every change each vCPU
re-evaluates its virtual IRQ line and, if it sleeps in WFI, is woken.

The host's and the RM's VICs are :class:`HostVic`: neither runs AArch64
code here, so their interrupts are delivered to the handlers they
registered (their interrupt entry), one call per assertion.
"""

from __future__ import annotations

from hyp.arch.vgic import Vgic
from hyp.gunyah.errors import Error, HypError, check
from hyp.gunyah.object import Object, ObjectState, ObjectType
from hyp.hw.board import SPI_BASE


class VirqSource:
    """An interrupt source bound to at most one virq of a VIC.

    ``pending()`` says whether the source still asserts a level; the VIC asks
    it when a level interrupt is deactivated.
    """

    def __init__(self, pending):
        self.vic = self.virq = None
        self._pending = pending

    def check_pending(self) -> bool:
        return self._pending()

    def bind(self, vic, virq: int) -> None:
        check(self.vic is None, Error.VIRQ_BOUND)
        vic.bind(self, virq)
        self.vic, self.virq = vic, virq

    def unbind(self) -> None:
        if self.vic is None:
            raise HypError(Error.VIRQ_NOT_BOUND)
        self.vic.unbind(self.virq)
        self.vic = self.virq = None

    def assert_virq(self, edge_only: bool) -> None:
        if self.vic is not None:
            self.vic.assert_virq(self.virq, edge_only)

    def clear_virq(self) -> None:
        if self.vic is not None:
            self.vic.clear_virq(self.virq)


class Vic(Object, Vgic):
    TYPE = ObjectType.VIC

    def __init__(self, hyp, partition):
        Object.__init__(self, hyp, partition)
        Vgic.__init__(self)
        self.max_vcpus, self.max_virqs = 0, 0
        self.sources: dict[int, VirqSource] = {}

    def configure(self, max_vcpus: int, max_virqs: int, options: int, max_msis: int) -> None:
        self.require(ObjectState.INIT)
        check(0 < max_vcpus <= 1024 and 0 < max_virqs <= 988, Error.ARGUMENT_INVALID)
        check(options == 0 and max_msis == 0, Error.ARGUMENT_INVALID, "options")
        self.max_vcpus, self.max_virqs = max_vcpus, max_virqs

    def on_activate(self) -> None:
        check(self.max_vcpus > 0, Error.OBJECT_CONFIG, "vic not configured")
        self.start(self.max_virqs)

    def attach_vcpu(self, vcpu, index: int) -> None:
        vcpu.require(ObjectState.INIT)
        check(0 <= index < self.max_vcpus, Error.ARGUMENT_INVALID, "index")
        check(index not in self.vcpus, Error.BUSY, f"vcpu index {index} taken")
        self.vcpus[index] = vcpu
        vcpu.vic, vcpu.vic_index = self, index

    # sources
    def bind(self, source: VirqSource, virq: int) -> None:
        self.require(ObjectState.ACTIVE)
        check(SPI_BASE <= virq < SPI_BASE + self.max_virqs, Error.ARGUMENT_INVALID, "virq")
        check(virq not in self.sources, Error.VIRQ_BOUND)
        self.sources[virq] = source

    def unbind(self, virq: int) -> None:
        if self.sources.pop(virq, None) is None:
            raise HypError(Error.VIRQ_NOT_BOUND)
        self.gic.clear_irq(virq)
        self.notify()

    def assert_virq(self, virq: int, edge_only: bool = False) -> None:
        self.hyp.trace("virq_assert", virq=virq, trigger="edge" if edge_only else "level")
        self.gic.assert_irq(virq, 0, edge_only)
        self.notify()

    def clear_virq(self, virq: int) -> None:
        self.gic.clear_irq(virq)
        self.notify()

    def source_pending(self, intid: int, cpu: int) -> bool:
        source = self.sources.get(intid)
        return source is not None and source.check_pending()

    def on_destroy(self) -> None:
        self.sources.clear()


class HostVic(Object):
    """The VIC of a VM whose CPUs are Python (the host kernel, the RM).

    A virq calls the handler that VM registered for it, in the asserting
    thread with the hypervisor lock held: handlers may make hypercalls but
    must not wait for another thread that does.
    """

    TYPE = ObjectType.VIC

    def __init__(self, hyp, partition):
        super().__init__(hyp, partition)
        self.state = ObjectState.ACTIVE
        self.handlers: dict[int, object] = {}
        self.sources: dict[int, VirqSource] = {}

    def bind(self, source: VirqSource, virq: int) -> None:
        check(virq not in self.sources, Error.VIRQ_BOUND)
        self.sources[virq] = source

    def unbind(self, virq: int) -> None:
        if self.sources.pop(virq, None) is None:
            raise HypError(Error.VIRQ_NOT_BOUND)

    def assert_virq(self, virq: int, edge_only: bool = False) -> None:
        handler = self.handlers.get(virq)
        if handler is not None:
            handler(virq)

    def clear_virq(self, virq: int) -> None:
        """Level sources dropping their line need nothing from the host."""
