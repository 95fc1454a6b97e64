"""Assemble AArch64 test code with the bundled toolchain (uapi.toolchain, zig's clang).

A snippet becomes an object file; its ``.text`` is the flat binary. The
code is linked at 0, so it must be position independent: an ``.o`` with a
relocation against ``.text`` is refused rather than run with a hole in it.
"""

import functools
import io
import tempfile
from pathlib import Path

from elftools.elf.elffile import ELFFile

from uapi import toolchain

# LSE atomics (ldadd) are armv8.1-a; the tests decode them.
CPU = "-mcpu=generic+v8_1a"


@functools.cache
def assemble(source: str) -> bytes:
    """The flat binary of ``source`` (linked at 0; use PC-relative code)."""
    with tempfile.TemporaryDirectory() as d:
        Path(d, "t.s").write_text(source + "\n")
        toolchain.run([*toolchain.cc(toolchain.ARM64_BARE), CPU, "-c", "t.s", "-o", "t.o"], d)
        obj = ELFFile(io.BytesIO(Path(d, "t.o").read_bytes()))
    if obj.get_section_by_name(".rela.text"):
        raise ValueError(f"not position independent (it needs relocations): {source!r}")
    return obj.get_section_by_name(".text").data()


def gic_enable(
    intid: int,
    edge: bool = True,
    ppis: tuple[int, ...] = (),
    gicd: int | None = None,
    gicr: int | None = None,
) -> str:
    """Guest code that routes SPI ``intid`` (edge or level) to this CPU, enables it and
    the PPIs ``ppis``, wakes the redistributor and opens the CPU interface. The
    frames are the board's unless ``gicd``/``gicr`` (this CPU's) say otherwise.
    Clobbers x1-x4; leaves x0 = GICD."""
    from hyp.hw.board import GICD_BASE, GICR_BASE

    gicd = GICD_BASE if gicd is None else gicd
    gicr = GICR_BASE if gicr is None else gicr

    bit, config = 1 << intid % 32, (2 if edge else 0) << 2 * (intid % 16)
    ppi_bits = sum(1 << p for p in ppis)
    ppi_code = (
        f"""
    ldr w1, ={ppi_bits:#x}
    add x4, x3, #0x10000
    str w1, [x4, #0x100]            // GICR_ISENABLER0: the PPIs"""
        if ppis
        else ""
    )
    return f"""
    ldr x0, ={gicd:#x}
    mov w1, #2
    str w1, [x0]                    // GICD_CTLR.EnableGrp1
    ldr x2, ={0x6000 + intid * 8:#x}
    str xzr, [x0, x2]               // GICD_IROUTER: this CPU
    ldr w1, ={bit:#x}
    str w1, [x0, #{0x100 + intid // 32 * 4}]   // GICD_ISENABLER
    ldr w1, ={config:#x}
    str w1, [x0, #{0xC00 + intid // 16 * 4}]   // GICD_ICFGR
    ldr x3, ={gicr:#x}
    str wzr, [x3, #0x14]            // GICR_WAKER: awake{ppi_code}
    mov x1, #0xff
    msr S3_0_C4_C6_0, x1            // ICC_PMR_EL1
    mov x1, #1
    msr S3_0_C12_C12_7, x1          // ICC_IGRPEN1_EL1
    isb
"""


# After a GIC set-up with x9 = the VMM's MMIO page: say "ready" (a write at +8), then
# count the IRQs taken in x20 and write each new count to the page.
IRQ_COUNTER = """
    mov x20, #0
    msr daifclr, #2                 // unmask IRQs
    str xzr, [x9, #8]               // ready: the GIC is set up
1:  wfi
    b 1b
    .ltorg
    .balign 0x800
vectors:
    .skip 0x280                     // IRQ, current EL with SP_ELx
    mrs x21, S3_0_C12_C12_0         // ICC_IAR1_EL1
    add x20, x20, #1
    str x20, [x9]                   // tell the VMM how many so far
    msr S3_0_C12_C12_1, x21         // ICC_EOIR1_EL1
    eret
"""
