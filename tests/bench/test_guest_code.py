"""The benchmark guests' instruction words are what the assembler makes of their source."""

import pytest

from bench.guest_code import compute_loop, to_bytes
from tests.aarch64 import assemble


@pytest.mark.parametrize("iterations", [1, 0x4C4B40, 0xFFFF_FFFF])
def test_compute_loop_words(iterations):
    source = f"""
        movz x0, #{iterations & 0xFFFF:#x}
        movk x0, #{iterations >> 16:#x}, lsl #16
        movz x9, #0x1000, lsl #16
    1:  add x1, x1, x0
        eor x2, x2, x1
        subs x0, x0, #1
        b.ne 1b
        str x1, [x9]
        b .
    """
    assert to_bytes(compute_loop(iterations)) == assemble(source)


def test_bare_baseline_store_loop():
    from bench.baselines import STORE_LOOP

    assert STORE_LOOP == assemble("1: str x1, [x9]\nb 1b")
