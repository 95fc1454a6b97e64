"""The bundled toolchain: zig's clang and lld, installed by pip (``ziglang``).

One wheel carries what building AArch64 code and measuring C headers
needs: a C compiler and assembler for every target, a linker (``zig
ld.lld``), and the Linux UAPI headers of every architecture, so no system
compiler or cross toolchain is involved. The wheel's version is pinned in
pyproject.toml: the committed guest images are byte-identical to what this
version builds, and another version may emit other code.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

# arm64 Linux, LP64: the ABI these UAPI headers are written for.
ARM64_LINUX = "aarch64-linux-gnu"
# Bare-metal AArch64 (no libc, no OS): the guests and test snippets.
ARM64_BARE = "aarch64-freestanding-none"


class ToolchainError(RuntimeError):
    """The bundled toolchain is missing or a build step failed; one line."""


@cache
def zig() -> str:
    """Path of the ``zig`` executable of the installed ``ziglang`` wheel."""
    try:
        import ziglang
    except ImportError:
        raise ToolchainError(
            "the bundled compiler is not installed: pip install 'gunyah-sim[abi]'"
        ) from None
    return str(Path(ziglang.__file__).parent / "zig")


def cc(target: str) -> list[str]:
    """The command line of the bundled C compiler for ``target`` (a zig triple)."""
    return [zig(), "cc", "-target", target]


def run(args: list[str], cwd: str | Path) -> None:
    """Run one build step in ``cwd``; a failure raises ToolchainError with its first error."""
    res = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        lines = [line for line in res.stderr.splitlines() if "error" in line] or ["failed"]
        raise ToolchainError(f"{Path(args[0]).name} {args[1]}: {lines[0]}")
