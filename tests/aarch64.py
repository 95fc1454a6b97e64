"""Assemble AArch64 test code with Debian's cross binutils (aarch64-linux-gnu-as).

.ci/run installs binutils-aarch64-linux-gnu; a missing assembler is an error
naming the package, never a skip.
"""

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

AS, OBJCOPY = "aarch64-linux-gnu-as", "aarch64-linux-gnu-objcopy"


@functools.cache
def assemble(source: str) -> bytes:
    """The flat binary of ``source`` (linked at 0; use PC-relative code)."""
    if not shutil.which(AS):
        raise RuntimeError(f"{AS} not found: apt-get install binutils-aarch64-linux-gnu")
    with tempfile.TemporaryDirectory() as d:
        src, obj, out = Path(d, "t.s"), Path(d, "t.o"), Path(d, "t.bin")
        src.write_text(source + "\n")
        subprocess.run([AS, "-march=armv8.1-a", str(src), "-o", str(obj)], check=True)
        subprocess.run([OBJCOPY, "-O", "binary", str(obj), str(out)], check=True)
        return out.read_bytes()
