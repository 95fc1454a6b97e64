"""What ``gunyah-sim exec`` costs a native program (Documentation/native.rst).

``native_ioctl_us``: one ioctl on a model fd (GUNYAH_VCPU_MMAP_SIZE: the
round trip to the server and the model's dispatch, nothing else) from a C
program built with the bundled zig; ``native_ioctl_ratio``: that against a
plain ioctl (FIONREAD on a pipe) on a real fd in the same program and run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import Sizes
from uapi import toolchain

SOURCE = Path(__file__).with_name("native_ioctl.c")
UAPI = Path(__file__).parents[1] / "uapi"


def _build(out: Path) -> Path:
    exe = out / "native_ioctl"
    cc = toolchain.cc(f"{os.uname().machine}-linux-gnu")
    toolchain.run([*cc, "-O2", f"-I{UAPI}", "-o", str(exe), str(SOURCE)], out)
    return exe


def native_ioctl(sizes: Sizes) -> dict:
    calls = sizes.rm_small * 100
    with tempfile.TemporaryDirectory() as tmp:
        exe = _build(Path(tmp))
        out = subprocess.run(
            [sys.executable, "-m", "vmm.cli", "exec", "--", str(exe), str(calls)],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    model_ns, plain_ns = map(float, out.stdout.split())
    return {
        "native_ioctl_us": round(model_ns / 1000, 2),
        "native_ioctl_ratio": round(model_ns / plain_ns),
    }


FIGURES = [native_ioctl]
