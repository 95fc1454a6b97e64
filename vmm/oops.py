"""A guest's oops: the first synchronous exception it took, decoded (Linux
arch/arm64/mm/fault.c and kernel/traps.c print the same facts for a kernel).

:class:`Oops` records the exception entries ``kernel.boot(guest_exceptions=...)``
reports (the simulated hypervisor's; a device tells a VMM nothing of the
kind) and :meth:`Oops.lines` prints the first one: which vCPU, ESR with its
exception class named and its ISS split into fields, FAR (aborts), PC with
the instruction there disassembled (capstone), SPSR, the vector the guest
went on at, and X0..X30 and SP as they were. The first, because a guest
with no vector table for it goes astray from there and what follows (more
exceptions, a fault at the vector) only hides the cause. A guest that took
none but stopped on a fault the host could not resolve (a page fault
outside its memory, a fault of the core) gets the state it stopped in.
"""

from __future__ import annotations

import threading

EC_NAMES = {
    0x00: "unknown reason (an undefined instruction)",
    0x01: "WFI/WFE",
    0x07: "SVE/SIMD/FP access",
    0x0E: "illegal execution state",
    0x15: "SVC (AArch64)",
    0x16: "HVC (AArch64)",
    0x17: "SMC (AArch64)",
    0x18: "MSR/MRS/system instruction",
    0x20: "instruction abort from a lower EL",
    0x21: "instruction abort, same EL",
    0x22: "PC alignment fault",
    0x24: "data abort from a lower EL",
    0x25: "data abort, same EL",
    0x26: "SP alignment fault",
    0x2C: "floating-point exception",
    0x2F: "SError",
    0x30: "breakpoint from a lower EL",
    0x31: "breakpoint, same EL",
    0x32: "software step from a lower EL",
    0x33: "software step, same EL",
    0x34: "watchpoint from a lower EL",
    0x35: "watchpoint, same EL",
    0x3C: "BRK (AArch64)",
}
_ABORTS, _CALLS = (0x20, 0x21, 0x24, 0x25), (0x15, 0x16, 0x17, 0x3C)
_FSC_KINDS = ("address size fault", "translation fault", "access flag fault", "permission fault")
_FSC_OTHER = {0x10: "synchronous external abort", 0x21: "alignment fault", 0x30: "TLB conflict"}


def fault_status(fsc: int) -> str:
    """The name of a data or instruction fault status code (DFSC/IFSC)."""
    if fsc < 0x10:
        return f"{_FSC_KINDS[fsc >> 2]}, level {fsc & 3}"
    return _FSC_OTHER.get(fsc, "reserved")


def decode_esr(esr: int) -> str:
    """ESR_ELx as one line: EC (named), IL, and the ISS by field for the
    classes it has them for (aborts, SVC/HVC/SMC/BRK immediates)."""
    ec, il, iss = esr >> 26 & 0x3F, esr >> 25 & 1, esr & 0x1FF_FFFF
    text = f"EC {ec:#04x} {EC_NAMES.get(ec, 'reserved')}, IL {32 if il else 16}-bit"
    if ec in _ABORTS:
        fields = [f"FnV {iss >> 10 & 1}", f"EA {iss >> 9 & 1}", f"S1PTW {iss >> 7 & 1}"]
        if ec in (0x24, 0x25):
            fields = [f"ISV {iss >> 24 & 1}", *fields, f"CM {iss >> 8 & 1}", f"WnR {iss >> 6 & 1}"]
        fields.append(f"FSC {iss & 0x3F:#04x} {fault_status(iss & 0x3F)}")
        return f"{text}, ISS {iss:#x}: " + ", ".join(fields)
    if ec in _CALLS:
        return f"{text}, ISS {iss:#x}: imm16 {iss & 0xFFFF:#x}"
    return f"{text}, ISS {iss:#x}"


def disassemble(insn: int | None, pc: int) -> str:
    """The instruction word ``insn`` at ``pc``: its hex and A64 assembly."""
    if insn is None:
        return "(not executable: no instruction there)"
    import capstone  # here: its import costs every gunyah-sim start otherwise

    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    for i in md.disasm(insn.to_bytes(4, "little"), pc):
        return f"{insn:08x}  {i.mnemonic} {i.op_str}".rstrip()
    return f"{insn:08x}  (undefined)"


class Oops:
    """A ``guest_exceptions`` sink for ``kernel.boot``: keeps each exception
    entry, in order, and the last fault a vCPU stopped on."""

    def __init__(self):
        self.entries: list[dict] = []
        self.fault: dict | None = None
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        with self._lock:
            if event["event"] == "guest_fault":
                self.fault = event
            else:
                self.entries.append(event)

    def lines(self) -> list[str]:
        """The first exception entry as an oops; with none, the last fault (a
        served page fault is one too: call this only when the run ended
        badly); nothing if there was neither."""
        if not self.entries:
            return self._fault_lines()
        e, more = self.entries[0], len(self.entries) - 1
        out = [
            f"guest oops: {e['vcpu']} took a synchronous exception to its EL1"
            + (f" ({more} more after it)" if more else ""),
            f"  ESR {e['esr']:#010x}: {decode_esr(e['esr'])}",
        ]
        if e["far"] is not None:
            out.append(f"  FAR {e['far']:#018x}")
        out += [
            f"  PC  {e['pc']:#018x}: {disassemble(e['insn'], e['pc'])}",
            f"  SPSR {e['spsr']:#x}, ELR {e['elr']:#x}, went on at the vector {e['vector']:#x}",
        ]
        return out + _registers(e)

    def _fault_lines(self) -> list[str]:
        f = self.fault
        if f is None:
            return []
        return [
            f"guest fault: {f['vcpu']} stopped on a {f['why']} (it took no exception)",
            f"  PC  {f['pc']:#018x}: {disassemble(f['insn'], f['pc'])}",
            f"  PSTATE {f['spsr']:#x}",
            *_registers(f),
        ]


def _registers(e: dict) -> list[str]:
    regs = [*(f"x{n:<2} {v:016x}" for n, v in enumerate(e["regs"])), f"sp  {e['sp']:016x}"]
    return ["  " + "  ".join(regs[i : i + 4]) for i in range(0, len(regs), 4)]
