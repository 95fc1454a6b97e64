"""``gunyah-sim exec``: boot the model, run a native program against it, tear down.

The program runs with preload.c loaded (LD_PRELOAD) and its control socket
inherited; its exit status is ours (a signal's death is 128 + the signal,
as a shell reports it). Once it is gone the server closes what it left and
checks that the machine holds nothing more than before it started: a
leftover is reported on stderr and makes the status non-zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import kernel
from vmm.native import preload
from vmm.native.server import Server

DEVICES = {"gunyah": "/dev/gunyah", "geniezone": "/dev/gzvm"}
# --uapi: what /dev/gunyah speaks, and the kernel.boot() uapi it maps to (None: not yet)
UAPIS = {"v16": None, "ack": None}
UAPI_MISSING = "the Android (ACK) profile of /dev/gunyah does not exist yet; use --uapi v16"
LEAK_STATUS = 70  # EX_SOFTWARE: the program was fine, the model kept something
SETTLE = 5.0  # seconds the machine may take to let its vCPU threads go
# threads a machine keeps once started: the hypervisor's watchdog, the eventfd wait queue
LONG_LIVED = ("gunyah-watchdog", "eventfd-wq")


class ExecError(Exception):
    """A reason the program cannot run at all: one line for the user, and the
    exit status (127 for a program that cannot be executed, as a shell says)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def boot_args(hypervisor: str, uapi: str) -> dict:
    """kernel.boot keywords for --hypervisor and --uapi; ExecError for a profile
    that is not there (the one place --uapi is decided)."""
    if uapi not in UAPIS:
        raise ExecError(f"--uapi {uapi}: not one of {', '.join(UAPIS)}")
    if uapi == "ack":
        raise ExecError(UAPI_MISSING)
    return {"hypervisor": hypervisor}


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
    with _signals_to(child):
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
    left = leaks(server.host, before)
    if left:
        what = "; ".join(f"{k} {b} -> {a}" for k, (b, a) in left.items())
        print(f"gunyah-sim exec: the model kept state after the program: {what}", file=sys.stderr)
        return LEAK_STATUS
    return status_of(returncode)


class _signals_to:  # noqa: N801 (a context manager named for what it does)
    """While inside, SIGINT/SIGTERM/SIGHUP to us are passed on to the program,
    which decides how it ends (a terminal's Ctrl-C reaches both)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, child: subprocess.Popen):
        self.child = child

    def __enter__(self):
        self.saved = {s: signal.signal(s, self._forward) for s in self.SIGNALS}

    def _forward(self, signum: int, frame) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signum)

    def __exit__(self, *exc) -> None:
        for s, handler in self.saved.items():
            signal.signal(s, handler)
