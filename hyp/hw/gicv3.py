"""A GICv3 interrupt controller, register by register: distributor, redistributors, CPU interface.

This is the architectural model the hypervisor's vGIC runs for each VM:
guests program it through GICD/GICR MMIO (emulated in EL2) and the ICC_*
system registers (trapped and emulated). It models Group 1 non-secure
interrupts with affinity routing: SGIs and PPIs per CPU, SPIs routed by
GICD_IROUTER, priorities, the priority mask, running priority and EOI.

Interrupt sources assert and clear interrupts (:meth:`Gicv3.assert_irq`):
an edge-configured interrupt latches pending once per assertion; a
level-configured one follows its source's line, and when it is
deactivated the GIC asks the source again through ``recheck`` (as a
level-sensitive input is sampled again). :meth:`Gicv3.signalled` says
whether a CPU's virtual IRQ line should be asserted.

The highest pending interrupt of a CPU is looked at several times per
interrupt delivered (the wake-up, the entry, the acknowledge) and changes
only through the methods marked :func:`_changes`, which count a
generation: a CPU's answer is kept until the generation moves on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hyp.hw.board import SGI_COUNT, SPECIAL_INTID_NONE, SPI_BASE

IDLE_PRIORITY = 0xFF

GICD_CTLR, GICD_TYPER, GICD_IIDR = 0x0000, 0x0004, 0x0008
GICD_IGROUPR, GICD_ISENABLER, GICD_ICENABLER = 0x0080, 0x0100, 0x0180
GICD_ISPENDR, GICD_ICPENDR, GICD_ISACTIVER, GICD_ICACTIVER = 0x0200, 0x0280, 0x0300, 0x0380
GICD_IPRIORITYR, GICD_ICFGR, GICD_IROUTER, GICD_PIDR2 = 0x0400, 0x0C00, 0x6000, 0xFFE8
CTLR_ENABLE_GRP1, CTLR_ARE_NS = 1 << 1, 1 << 4

GICR_CTLR, GICR_IIDR, GICR_TYPER, GICR_WAKER, GICR_PIDR2 = 0x0, 0x4, 0x8, 0x14, 0xFFE8
GICR_SGI_BASE = 0x1_0000
WAKER_PROCESSOR_SLEEP, WAKER_CHILDREN_ASLEEP = 1 << 1, 1 << 2
IIDR = 0x0100_143B  # Arm product 0x01 implementer 0x43B
PIDR2_GICV3 = 0x3B

# ICC_* registers (op0=3, op1=0, CRn=12 except PMR) as (CRn, CRm, op2).
ICC_PMR = (4, 6, 0)
ICC_IAR0, ICC_EOIR0, ICC_HPPIR0, ICC_BPR0 = (12, 8, 0), (12, 8, 1), (12, 8, 2), (12, 8, 3)
ICC_DIR, ICC_RPR, ICC_SGI1R, ICC_ASGI1R, ICC_SGI0R = (
    (12, 11, 1),
    (12, 11, 3),
    (12, 11, 5),
    (12, 11, 6),
    (12, 11, 7),
)
ICC_IAR1, ICC_EOIR1, ICC_HPPIR1, ICC_BPR1 = (12, 12, 0), (12, 12, 1), (12, 12, 2), (12, 12, 3)
ICC_CTLR, ICC_SRE, ICC_IGRPEN0, ICC_IGRPEN1 = (12, 12, 4), (12, 12, 5), (12, 12, 6), (12, 12, 7)
ICC_CTLR_EOIMODE = 1 << 1
ICC_SRE_VALUE = 0x7  # SRE, DFB, DIB: system registers only


def is_icc(op0: int, op1: int, crn: int, crm: int) -> bool:
    """Whether an encoding is a GIC CPU interface register of EL1."""
    if (op0, op1) != (3, 0):
        return False
    return (crn, crm) == (4, 6) or (crn == 12 and crm in (8, 9, 11, 12))


@dataclass
class Irq:
    """State of one interrupt (per CPU for SGIs/PPIs)."""

    enabled: bool = False
    pending: bool = False
    active: bool = False
    line: bool = False
    edge: bool = False
    priority: int = 0
    route: int = 0  # GICD_IROUTER affinity, SPIs only


def _changes(method):
    """Marks a :class:`Gicv3` method that may change interrupt state: the
    generation moves on after it (after, so that a scan running meanwhile in
    another thread is not kept)."""

    @functools.wraps(method)
    def changing(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        finally:
            self.generation += 1

    return changing


def _deliverable(irq: Irq) -> bool:
    """Enabled, pending and not active (priority aside)."""
    return irq.enabled and not irq.active and (irq.pending or (not irq.edge and irq.line))


@dataclass
class CpuInterface:
    """One CPU's redistributor state and ICC_* registers."""

    affinity: int
    private: list[Irq] = field(default_factory=lambda: [Irq(edge=i < SGI_COUNT) for i in range(32)])
    pmr: int = 0
    bpr1: int = 0
    ctlr: int = 0
    igrpen1: bool = False
    waker: int = WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
    running: list[tuple[int, int]] = field(default_factory=list)  # (priority, intid)

    @property
    def running_priority(self) -> int:
        return self.running[-1][0] if self.running else IDLE_PRIORITY


class Gicv3:
    """One GICv3 with ``nspis`` SPIs and the CPUs added with :meth:`add_cpu`."""

    def __init__(self, nspis: int = 988, recheck=None):
        self.nspis = min(nspis, 988)
        self.recheck = recheck or (lambda intid, cpu: False)
        self.ctlr = CTLR_ARE_NS
        self.spis = [Irq() for _ in range(self.nspis)]
        self.cpus: list[CpuInterface] = []
        self.generation = 0  # of the interrupt state; see _changes
        self._best: dict[int, tuple[int, tuple[int, int]]] = {}  # cpu: (generation, best)

    @_changes
    def add_cpu(self, affinity: int) -> int:
        self.cpus.append(CpuInterface(affinity))
        return len(self.cpus) - 1

    # state
    def irq(self, intid: int, cpu: int) -> Irq | None:
        if intid < SPI_BASE:
            return self.cpus[cpu].private[intid]
        n = intid - SPI_BASE
        return self.spis[n] if n < self.nspis else None

    def target(self, intid: int) -> int | None:
        """The CPU index an SPI is routed to (by affinity), if any."""
        route = self.spis[intid - SPI_BASE].route & 0xFF_00FF_FFFF
        for i, cpu in enumerate(self.cpus):
            if cpu.affinity == route:
                return i
        return None

    @_changes
    def assert_irq(self, intid: int, cpu: int = 0, edge_only: bool = True) -> None:
        """A source asserts: one edge, or (level-configured, not ``edge_only``) a level."""
        irq = self.irq(intid, cpu)
        if irq is None:
            return
        if irq.edge or edge_only:
            irq.pending = True
        else:
            irq.line = True

    @_changes
    def clear_irq(self, intid: int, cpu: int = 0) -> None:
        irq = self.irq(intid, cpu)
        if irq is not None:
            irq.line = irq.pending = False

    def _is_pending(self, irq: Irq) -> bool:
        return irq.pending or (not irq.edge and irq.line)

    def highest_pending(self, cpu: int) -> tuple[int, int]:
        """(intid, priority) of the best deliverable interrupt, or (1023, 0xff):
        the CPU's SGIs and PPIs, then (with group 1 on) the SPIs routed to it."""
        generation = self.generation
        kept = self._best.get(cpu)
        if kept is not None and kept[0] == generation:
            return kept[1]
        best = self._scan(cpu)
        self._best[cpu] = (generation, best)
        return best

    def _scan(self, cpu: int) -> tuple[int, int]:
        """:meth:`highest_pending` worked out, in plain loops."""
        best, best_priority = SPECIAL_INTID_NONE, IDLE_PRIORITY
        for intid, irq in enumerate(self.cpus[cpu].private):
            if irq.enabled and irq.priority < best_priority and _deliverable(irq):
                best, best_priority = intid, irq.priority
        if self.ctlr & CTLR_ENABLE_GRP1:
            for n, irq in enumerate(self.spis):
                better = irq.enabled and irq.priority < best_priority and _deliverable(irq)
                if better and self.target(n + SPI_BASE) == cpu:
                    best, best_priority = n + SPI_BASE, irq.priority
        return best, best_priority

    def signalled(self, cpu: int) -> bool:
        """Whether CPU ``cpu`` has an interrupt it would take now."""
        c = self.cpus[cpu]
        intid, prio = self.highest_pending(cpu)
        return (
            c.igrpen1 and intid != SPECIAL_INTID_NONE and prio < c.pmr and prio < c.running_priority
        )

    def wakes(self, cpu: int) -> bool:
        """Whether a WFI on ``cpu`` ends: anything pending and enabled."""
        return self.highest_pending(cpu)[0] != SPECIAL_INTID_NONE

    # CPU interface
    @_changes
    def acknowledge(self, cpu: int) -> int:
        if not self.signalled(cpu):
            return SPECIAL_INTID_NONE
        intid, prio = self.highest_pending(cpu)  # signalled's, kept
        irq = self.irq(intid, cpu)
        irq.active, irq.pending = True, False
        self.cpus[cpu].running.append((prio, intid))
        return intid

    @_changes
    def end_of_interrupt(self, cpu: int, intid: int) -> None:
        c = self.cpus[cpu]
        for i in range(len(c.running) - 1, -1, -1):
            if c.running[i][1] == intid:
                del c.running[i]
                break
        if not c.ctlr & ICC_CTLR_EOIMODE:
            self.deactivate(cpu, intid)

    @_changes
    def deactivate(self, cpu: int, intid: int) -> None:
        irq = self.irq(intid, cpu)
        if irq is not None and irq.active:
            irq.active = False
            if not irq.edge and irq.line:
                irq.line = self.recheck(intid, cpu)

    def sysreg_read(self, cpu: int, reg: tuple[int, int, int]) -> int:
        if reg == ICC_IAR1:  # once per interrupt taken: not worth building the table
            return self.acknowledge(cpu)
        c = self.cpus[cpu]
        values = {
            ICC_PMR: lambda: c.pmr,
            ICC_HPPIR1: lambda: self.highest_pending(cpu)[0],
            ICC_BPR1: lambda: c.bpr1,
            ICC_CTLR: lambda: c.ctlr | (1 << 10 | 4 << 11 | 7 << 8),  # A3V, IDbits, PRIbits
            ICC_SRE: lambda: ICC_SRE_VALUE,
            ICC_IGRPEN1: lambda: int(c.igrpen1),
            ICC_RPR: lambda: c.running_priority,
        }
        read = values.get(reg)
        return read() if read else (SPECIAL_INTID_NONE if reg in (ICC_IAR0, ICC_HPPIR0) else 0)

    @_changes
    def sysreg_write(self, cpu: int, reg: tuple[int, int, int], value: int) -> None:
        c = self.cpus[cpu]
        if reg == ICC_PMR:
            c.pmr = value & 0xFF
        elif reg == ICC_EOIR1:
            self.end_of_interrupt(cpu, value & 0xFF_FFFF)
        elif reg == ICC_DIR:
            self.deactivate(cpu, value & 0xFF_FFFF)
        elif reg == ICC_BPR1:
            c.bpr1 = value & 7
        elif reg == ICC_CTLR:
            c.ctlr = value & ICC_CTLR_EOIMODE
        elif reg == ICC_IGRPEN1:
            c.igrpen1 = bool(value & 1)
        elif reg in (ICC_SGI1R, ICC_ASGI1R):
            self.send_sgi(cpu, value)

    @_changes
    def send_sgi(self, cpu: int, value: int) -> None:
        """ICC_SGI1R_EL1: INTID 27:24, IRM 40, Aff3.Aff2.Aff1 and a target list."""
        intid = value >> 24 & 0xF
        if value >> 40 & 1:
            targets = [i for i in range(len(self.cpus)) if i != cpu]
        else:
            aff = (
                (value >> 48 & 0xFF) << 32 | (value >> 32 & 0xFF) << 16 | (value >> 16 & 0xFF) << 8
            )
            targets = [
                i
                for i, c in enumerate(self.cpus)
                if c.affinity & ~0xFF == aff
                and value >> (c.affinity & 0xF) & 1
                and c.affinity & 0xFF < 16
            ]
        for i in targets:
            self.cpus[i].private[intid].pending = True

    # MMIO
    def _bitmap_irqs(self, base: int, offset: int, cpu: int, per_cpu: bool):
        """The 32 interrupts one bitmap word covers, with their intids."""
        first = (offset - base) // 4 * 32
        for bit in range(32):
            intid = first + bit
            irq = self.irq(intid, cpu) if (intid < SPI_BASE) == per_cpu else None
            if irq is not None:
                yield bit, irq

    def _bitmap_read(self, base, offset, cpu, per_cpu, attr) -> int:
        return sum(1 << b for b, irq in self._bitmap_irqs(base, offset, cpu, per_cpu) if attr(irq))

    def _bitmap_write(self, base, offset, cpu, per_cpu, value, fn) -> None:
        for bit, irq in self._bitmap_irqs(base, offset, cpu, per_cpu):
            if value >> bit & 1:
                fn(irq)

    def _banked(self, offset: int, cpu: int, per_cpu: bool, value: int | None):
        """The ISENABLER..ICFGR block shared by GICD and GICR_SGI_base."""
        ops = (
            (GICD_ISENABLER, lambda i: i.enabled, lambda i: setattr(i, "enabled", True)),
            (GICD_ICENABLER, lambda i: i.enabled, lambda i: setattr(i, "enabled", False)),
            (GICD_ISPENDR, self._is_pending, lambda i: setattr(i, "pending", True)),
            (GICD_ICPENDR, self._is_pending, lambda i: setattr(i, "pending", False)),
            (GICD_ISACTIVER, lambda i: i.active, lambda i: setattr(i, "active", True)),
            (GICD_ICACTIVER, lambda i: i.active, lambda i: setattr(i, "active", False)),
        )
        for base, attr, fn in ops:
            if base <= offset < base + 0x80:
                if value is None:
                    return self._bitmap_read(base, offset, cpu, per_cpu, attr)
                return self._bitmap_write(base, offset, cpu, per_cpu, value, fn)
        if GICD_IGROUPR <= offset < GICD_IGROUPR + 0x80:
            return 0xFFFF_FFFF if value is None else None  # Group 1 only
        if GICD_IPRIORITYR <= offset < GICD_IPRIORITYR + 0x400:
            return self._priority(offset - GICD_IPRIORITYR, cpu, per_cpu, value)
        if GICD_ICFGR <= offset < GICD_ICFGR + 0x100:
            return self._config(offset - GICD_ICFGR, cpu, per_cpu, value)
        return 0 if value is None else None

    def _priority(self, index: int, cpu: int, per_cpu: bool, value: int | None):
        out = 0
        for byte in range(4):
            intid = (index & ~3) + byte
            irq = self.irq(intid, cpu) if (intid < SPI_BASE) == per_cpu else None
            if irq is None:
                continue
            if value is None:
                out |= irq.priority << (8 * byte)
            else:
                irq.priority = value >> (8 * byte) & 0xFF
        return out if value is None else None

    def _config(self, index: int, cpu: int, per_cpu: bool, value: int | None):
        out = 0
        for n in range(16):
            intid = index // 4 * 16 + n
            irq = self.irq(intid, cpu) if (intid < SPI_BASE) == per_cpu else None
            if irq is None or intid < SGI_COUNT:
                out |= (2 << 2 * n) if irq is not None else 0
                continue
            if value is None:
                out |= (2 if irq.edge else 0) << 2 * n
            else:
                irq.edge = bool(value >> (2 * n + 1) & 1)
        return out if value is None else None

    @_changes
    def dist_access(self, offset: int, size: int, value: int | None, cpu: int = 0):
        """Read (``value`` None) or write a GICD register; returns the read value."""
        if offset == GICD_CTLR:
            if value is None:
                return self.ctlr
            self.ctlr = (value & CTLR_ENABLE_GRP1) | CTLR_ARE_NS
        elif offset == GICD_TYPER:
            return ((self.nspis + 32) // 32 - 1) | 9 << 19 | 1 << 24 if value is None else None
        elif offset == GICD_IIDR:
            return IIDR if value is None else None
        elif offset == GICD_PIDR2:
            return PIDR2_GICV3 if value is None else None
        elif GICD_IROUTER + SPI_BASE * 8 <= offset < GICD_IROUTER + 0x2000:
            irq = self.irq((offset - GICD_IROUTER) // 8, cpu)
            if irq is None:
                return 0 if value is None else None
            shift = (offset & 4) * 8
            if value is None:
                return irq.route >> shift & ((1 << size * 8) - 1)
            mask = ((1 << size * 8) - 1) << shift
            irq.route = (irq.route & ~mask) | (value << shift & mask)
        else:
            return self._banked(offset, cpu, False, value)
        return None

    @_changes
    def redist_access(self, cpu: int, offset: int, size: int, value: int | None):
        """Read or write CPU ``cpu``'s redistributor (RD_base and SGI_base frames)."""
        c = self.cpus[cpu]
        if offset >= GICR_SGI_BASE:
            return self._banked(offset - GICR_SGI_BASE, cpu, True, value)
        if value is not None:
            if offset == GICR_WAKER:
                asleep = value & WAKER_PROCESSOR_SLEEP
                c.waker = WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP if asleep else 0
            return None
        last = 1 << 4 if cpu == len(self.cpus) - 1 else 0
        typer = (c.affinity & 0xFF_FFFF | (c.affinity >> 32 & 0xFF) << 24) << 32
        typer |= cpu << 8 | last
        regs = {GICR_IIDR: IIDR, GICR_WAKER: c.waker, GICR_PIDR2: PIDR2_GICV3}
        if offset in (GICR_TYPER, GICR_TYPER + 4):
            return typer >> (8 * (offset - GICR_TYPER)) & ((1 << size * 8) - 1)
        return regs.get(offset, 0)
