"""Ctrl-C and SIGTERM during ``gunyah-sim run``: exit 130/143, one line, no traceback.

Each run is caught mid-flight, deterministically: standard output is a pipe
the test filled before the start, so the guest's first console byte blocks
its vCPU (or the event loop) until the test drains it, and the run cannot
end before the signal. ``--trace`` on standard error tells the test the
guest is running (its first vCPU exit). Under a pseudo-terminal, standard
input is the controlling terminal and Ctrl-C is typed into it.
"""

import fcntl
import os
import platform
import pty
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from vmm.guests import GUESTS

BOUND = 120  # seconds: for a stuck process, not a measure of speed
FIRST_EXIT = ("vcpu_run(", "gzvm_exit(")


def full_pipe() -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"." * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    return r, w


def controlling_terminal():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Run:
    """``gunyah-sim run --trace GUEST`` with a full standard output; ``tty``: under a pty."""

    def __init__(self, guest: str, hypervisor: str, tty: bool):
        self.out_r, out_w = full_pipe()
        self.master = None
        stdin = subprocess.PIPE
        if tty:
            self.master, stdin = pty.openpty()
        args = ["run", guest, "--vcpus", "1", "--hypervisor", hypervisor, "--trace"]
        self.p = subprocess.Popen(
            [sys.executable, "-m", "vmm.cli", *args],
            stdin=stdin,
            stdout=out_w,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=tty,
            preexec_fn=controlling_terminal if tty else None,
        )
        os.close(out_w)
        if tty:
            os.close(stdin)
        self.err: list[str] = []
        self.running = threading.Event()
        self.reader = threading.Thread(target=self._read_err)
        self.reader.start()

    def _read_err(self):
        for line in self.p.stderr:
            self.err.append(line)
            if line.lstrip().startswith(FIRST_EXIT):
                self.running.set()

    def drain(self):
        with os.fdopen(self.out_r, "rb") as out:
            return out.read()

    def finish(self) -> str:
        try:
            self.p.wait(timeout=BOUND)
        finally:
            if self.p.poll() is None:
                self.p.kill()
            self.reader.join(BOUND)
            if self.master is not None:
                os.close(self.master)
        return "".join(self.err)


def catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (/proc/PID/status SigCgt)."""
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(mask & 1 << (sig - 1))


WRITE = {"x86_64": 1, "aarch64": 64}[platform.machine()]  # the write syscall's number


def blocked_writing_stdout(pid: int) -> bool:
    """Whether a thread of ``pid`` sits in write(1, ...) (/proc/PID/task/TID/syscall:
    the number, then the arguments in hex)."""
    for task in Path(f"/proc/{pid}/task").glob("*/syscall"):
        try:
            fields = task.read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        if len(fields) > 1 and fields[0] == str(WRITE) and int(fields[1], 16) == 1:
            return True
    return False


def report_lines(stderr: str) -> list[str]:
    """What gunyah-sim itself wrote, without the trace (whose lines are indented)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("  ")]


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "pty"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
@pytest.mark.parametrize("guest", list(GUESTS))
def test_a_signal_mid_run_stops_the_vm_with_one_line(guest, hypervisor, sig, tty):
    run = Run(guest, hypervisor, tty)
    assert run.running.wait(BOUND), "".join(run.err)
    if tty and sig == signal.SIGINT:
        os.write(run.master, b"\x03")  # Ctrl-C typed at the terminal
    else:
        run.p.send_signal(sig)
    run.drain()
    stderr = run.finish()
    assert run.p.returncode == 128 + sig, stderr
    assert report_lines(stderr) == ["gunyah-sim: interrupted"]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
def test_a_second_ctrl_c_ends_a_run_that_cannot_stop(hypervisor):
    """The first Ctrl-C asks the vCPUs to stop, but one is blocked writing the console
    (nobody reads it): the second ends the process at once, by the signal."""
    run = Run("hello", hypervisor, tty=False)
    assert run.running.wait(BOUND)
    deadline = time.monotonic() + BOUND
    while not blocked_writing_stdout(run.p.pid):  # the first exit comes before the write
        assert run.p.poll() is None and time.monotonic() < deadline, "".join(run.err)
        time.sleep(0.05)
    run.p.send_signal(signal.SIGINT)
    while run.p.poll() is None and catches(run.p.pid, signal.SIGINT):
        time.sleep(0.05)  # until the first is handled (it stops catching SIGINT)
    run.p.send_signal(signal.SIGINT)
    stderr = run.finish()
    assert run.p.returncode == -signal.SIGINT, stderr
    assert "Traceback" not in stderr
    os.close(run.out_r)
