"""``gunyah-sim exec``: boot the model, run a native program against it, tear down.

The program runs with preload.c loaded (LD_PRELOAD) and its control socket
inherited; its exit status is ours (a signal's death is 128 + the signal,
as a shell reports it). Once it is gone the server closes what it left and
checks that the machine holds nothing more than before it started: a
leftover is reported on stderr and makes the status non-zero.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

import kernel
from vmm.native import preload
from vmm.native.server import Server

DEVICES = {"gunyah": "/dev/gunyah", "geniezone": "/dev/gzvm"}
# --uapi: which /dev/gunyah driver generation the host kernel has (kernel.boot's uapi);
# the names and refusals are those of gunyah-sim run --uapi
UAPIS = ("v16", "ack-6.1", "ack-6.6")
LEAK_STATUS = 70  # EX_SOFTWARE: the program was fine, the model kept something
REFUSED_STATUS = 77  # EX_NOPERM: we may not read the program's memory
SETTLE = 5.0  # seconds the machine may take to let its vCPU threads go
# threads a machine keeps once started: the eventfd wait queue
LONG_LIVED = ("eventfd-wq",)


class ExecError(Exception):
    """A reason the program cannot run at all: one line for the user, and the
    exit status (127 for a program that cannot be executed, as a shell says)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def boot_args(hypervisor: str, uapi: str) -> dict:
    """kernel.boot keywords for --hypervisor and --uapi; ExecError for a driver
    generation there is not, or an Android one with GenieZone (the one place
    exec decides --uapi; run's messages, word for word)."""
    if uapi not in UAPIS:
        raise ExecError(f"--uapi {uapi}: one of {', '.join(UAPIS)}")
    if uapi != "v16" and hypervisor != "gunyah":
        raise ExecError(f"--uapi {uapi} is a /dev/gunyah driver: only with --hypervisor gunyah")
    return {"hypervisor": hypervisor, "uapi": uapi}


def check_program(program: str) -> None:
    """ExecError (one line) for a program the preload library cannot reach: a
    statically linked ELF (no PT_INTERP) or a setuid/setgid one (the loader
    ignores LD_PRELOAD). Anything else (a script, a missing file) is left to exec."""
    path = shutil.which(program) if os.sep not in program else program
    if path is None:
        return
    try:
        mode = os.stat(path).st_mode
        with open(path, "rb") as f:
            dynamic = any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(f).iter_segments())
    except (OSError, ELFError):
        return
    if mode & (stat.S_ISUID | stat.S_ISGID):
        raise ExecError(f"{program}: setuid/setgid programs ignore LD_PRELOAD; cannot serve it")
    if not dynamic:
        raise ExecError(f"{program}: statically linked; LD_PRELOAD cannot reach its calls")


def holdings(host) -> dict:
    """What the machine holds that a program's life may change."""
    drivers = host.drivers
    held = {
        "fds": sorted(host.fdtable.fds()),
        "free RAM": drivers.mm.free_bytes,
        "mappings": len(host.mm.vmas),
        "pinned pages": len(host.mm.pinned),
        "threads": sorted(
            t.name for t in threading.enumerate() if t.daemon and t.name not in LONG_LIVED
        ),
    }
    firmware = drivers.firmware
    if host.gunyah is not None:
        held["VMIDs"] = sorted(firmware.gunyah.vmids)
        held["RM VMs"] = sorted(firmware.rm.vm_manager.vms)
    else:
        held["VMs"] = len(drivers.vm_list)
        held["EL2 VMs"] = len(firmware.geniezone.vms)
    return held


def leaks(host, before: dict) -> dict:
    """What differs from ``before``, after up to SETTLE seconds for threads to end."""
    deadline = time.monotonic() + SETTLE
    while True:
        now = holdings(host)
        diff = {k: (before[k], now[k]) for k in before if before[k] != now[k]}
        if not diff or time.monotonic() > deadline:
            return diff
        time.sleep(0.02)


def status_of(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def execute(argv: list[str], hypervisor: str = "gunyah", uapi: str = "v16", trace=None) -> int:
    """Run ``argv`` against a freshly booted machine; its exit status. ExecError
    for what stops it from starting (no compiler, no such program)."""
    boot = boot_args(hypervisor, uapi)
    check_program(argv[0])
    library = preload.library()
    host = kernel.boot(trace=trace, **boot)
    try:
        return _run(host, argv, DEVICES[hypervisor], library)
    finally:
        host.shutdown()


def _run(host, argv: list[str], device: str, library) -> int:
    server = Server(host, device)
    before = holdings(host)
    child = spawn(server, argv, library)
    with _ForwardSignals(child):
        child.wait()
    return finish(server, child, before)


def spawn(server: Server, argv: list[str], library, **popen) -> subprocess.Popen:
    """Start ``argv`` as the client of ``server`` (``popen``: more Popen keywords);
    ExecError if it cannot be executed."""
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(library), env.get("LD_PRELOAD")]))
    env[preload.ENV_CTL] = str(server.program_end.fileno())
    env[preload.ENV_DEVICE] = server.device
    env[preload.ENV_SERVER] = str(os.getpid())
    try:
        child = subprocess.Popen(argv, env=env, pass_fds=[server.program_end.fileno()], **popen)
    except OSError as e:
        server.stop()
        raise ExecError(f"{argv[0]}: {e.strerror}", 127) from None
    server.start()
    return child


def finish(server: Server, child: subprocess.Popen, before: dict) -> int:
    """Once ``child`` is gone (it is waited for): the server's teardown and the
    leak check against ``before`` (:func:`holdings`); the exit status."""
    returncode = child.wait()
    server.stop()
    if server.refused is not None:
        print(f"gunyah-sim exec: cannot serve the program: {server.refused}", file=sys.stderr)
        return REFUSED_STATUS
    left = leaks(server.host, before)
    if left:
        what = "; ".join(f"{k} {b} -> {a}" for k, (b, a) in left.items())
        print(f"gunyah-sim exec: the model kept state after the program: {what}", file=sys.stderr)
        return LEAK_STATUS
    return status_of(returncode)


class _ForwardSignals:
    """While inside: SIGTERM to us is passed on to the program, which decides how
    it ends; SIGINT and SIGHUP (a terminal's Ctrl-C and hang-up, which reach the
    program itself, in the same process group) do not end us before it."""

    def __init__(self, child: subprocess.Popen):
        self.child = child

    def __enter__(self):
        self.saved = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, self._forward),
            signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
            signal.SIGHUP: signal.signal(signal.SIGHUP, signal.SIG_IGN),
        }

    def _forward(self, signum: int, frame) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signum)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
