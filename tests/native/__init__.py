"""Native test programs (C, built with the bundled zig), run under ``gunyah-sim exec``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from uapi import toolchain

HERE = Path(__file__).parent
UAPI = HERE.parents[1] / "uapi"


def build(name: str, out: Path, *flags: str) -> Path:
    """tests/native/NAME.c built for this machine into ``out``."""
    exe = out / name
    cc = toolchain.cc(f"{os.uname().machine}-linux-gnu")
    toolchain.run([*cc, "-O1", f"-I{UAPI}", "-o", str(exe), str(HERE / f"{name}.c"), *flags], out)
    return exe


def gunyah_sim(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    """``gunyah-sim ARGS`` in a new process: its status, stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "vmm.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE.parents[1],
    )


SILENT = ("poke", "load", "#")  # driver.c commands that print nothing


class Session:
    """driver.c run by a Server in this process, fed one command at a time, so a
    test sees the model between the program's calls."""

    def __init__(self, host, exe: Path, device: str = "/dev/gunyah", **popen):
        from vmm.native import preload, program
        from vmm.native.server import Server

        self.host, self.program = host, program
        self.server = Server(host, device)
        self.before = program.holdings(host)
        self.child = program.spawn(
            self.server,
            [str(exe), device],
            preload.library(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            **popen,
        )

    def do(self, line: str) -> str | None:
        """Run one command; the line it printed (None for a silent one)."""
        self.child.stdin.write(line + "\n")
        self.child.stdin.flush()
        if not line.strip() or line.split()[0].startswith(SILENT):
            return None
        return self.child.stdout.readline().rstrip("\n")

    def script(self, text: str) -> list[str]:
        return [out for out in map(self.do, text.splitlines()) if out is not None]

    def close(self) -> int:
        """End the program (EOF on its script): the exec status, leak check included."""
        self.child.stdin.close()
        status = self.program.finish(self.server, self.child, self.before)
        self.child.stdout.close()
        return status
