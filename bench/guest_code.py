"""Guest code for benchmarks, as instruction words (no cross toolchain needed to run).

tests/bench checks every word against what the GNU assembler makes of the
source in each docstring.
"""

MMIO_EXIT = 0x1000_0000


def movz(rd: int, imm16: int, shift: int = 0) -> int:
    return 0xD280_0000 | (shift // 16) << 21 | imm16 << 5 | rd


def movk(rd: int, imm16: int, shift: int = 0) -> int:
    return 0xF280_0000 | (shift // 16) << 21 | imm16 << 5 | rd


def compute_loop(iterations: int) -> list[int]:
    """Four instructions per iteration, then a store to MMIO_EXIT::

        movz x0, #lo ; movk x0, #hi, lsl #16 ; movz x9, #0x1000, lsl #16
    1:  add x1, x1, x0 ; eor x2, x2, x1 ; subs x0, x0, #1 ; b.ne 1b
        str x1, [x9] ; b .
    """
    assert 0 < iterations < 1 << 32
    return [
        movz(0, iterations & 0xFFFF),
        movk(0, iterations >> 16, 16),
        movz(9, MMIO_EXIT >> 16, 16),
        0x8B00_0021,
        0xCA01_0042,
        0xF100_0400,
        0x54FF_FFA1,
        0xF900_0121,
        0x1400_0000,
    ]


LOOP_START, LOOP_END = 3 * 4, 7 * 4  # byte offsets of the loop body and the store


def to_bytes(words: list[int]) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)
