"""Build the bundled guest images with the bundled toolchain (uapi.toolchain).

``python -m vmm.guests.build [DIR]`` assembles and compiles the sources of
this package and links each guest with ``guest.ld``, writing the images to
DIR (default: this package, where the committed images live). The images
are committed and a test rebuilds them byte for byte, so nothing that
varies between machines may reach them: sources are named relative to the
build directory, and there is no debug information, build id or compiler
ident.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from uapi import toolchain
from vmm.guests import GUESTS

HERE = Path(__file__).parent
CPU = "-mcpu=generic"  # armv8-a: what the guests assume of the core
CFLAGS = [
    *("-O2", "-g0", "-ffreestanding", "-fno-builtin", "-mgeneral-regs-only", "-mstrict-align"),
    *("-fno-pic", "-fno-stack-protector", "-fno-unwind-tables", "-fno-asynchronous-unwind-tables"),
    *("-fno-ident", "-Wall", "-Werror"),
]
# The objects each guest links, beyond its own assembly source.
EXTRA_OBJECTS = {
    "hello": ["console.o", "fdt.o", "smccc.o"],
    "holding-cell": ["smccc.o"],
    "virtio-console": ["fdt.o", "smccc.o"],
}


def sources() -> list[Path]:
    """Every file a build reads."""
    return sorted(p for p in HERE.iterdir() if p.suffix in (".S", ".c", ".ld"))


def _objects(workdir: Path) -> None:
    cc = [*toolchain.cc(toolchain.ARM64_BARE), CPU]
    for src in sources():
        obj = f"{src.stem}.o"
        if src.suffix == ".S":
            toolchain.run([*cc, "-g0", "-c", src.name, "-o", obj], workdir)
        elif src.suffix == ".c":
            toolchain.run([*cc, *CFLAGS, "-c", src.name, "-o", obj], workdir)


def build(outdir: Path) -> None:
    """Write ``NAME.elf`` for every guest into ``outdir`` (made if missing); raises
    ToolchainError."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gunyah-sim-guests-") as d:
        workdir = Path(d)
        for src in sources():
            shutil.copy(src, workdir)
        _objects(workdir)
        for name in GUESTS:
            objects = [f"{name}.o", *EXTRA_OBJECTS.get(name, [])]
            link = [toolchain.zig(), "ld.lld", "-T", "guest.ld", "--build-id=none", "-n"]
            toolchain.run([*link, *objects, "-o", f"{name}.elf"], workdir)
            shutil.copy(workdir / f"{name}.elf", outdir)


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else HERE
    try:
        build(outdir)
    except (toolchain.ToolchainError, OSError) as e:
        print(f"vmm.guests.build: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
