"""``gunyah-sim fuzz``: campaign processes, their progress, one summary.

:func:`run` starts ``jobs`` campaign processes (vmm/fuzz/campaign.py), each
with its own seed (``seed``, ``seed + 1``, ...) and its share of the
examples (or the whole ``--time``), so a campaign uses the host's cores.
While they run, a rich display on stderr shows examples, ioctls per
second, the distinct errnos of each ioctl, the VM states reached and the
time left (on a terminal; elsewhere a line every ``PLAIN_EVERY`` seconds).
At the end the processes' summaries are merged into one JSON object,
printed on stdout and written to ``OUT/fuzz-TARGET-summary.json``; each
failure's reproducer and trace are named on stderr. Exit 0 if every
process ran clean, 1 if any found a failure, 130 on Ctrl-C, 143 on SIGTERM:
then each job's process group (the job and a reproducer it runs) is ended
and the summary holds the failures found so far.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

PLAIN_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal
# A failure's message says what it is (vmm/fuzz/check.py); anything else escaped.
KINDS = (
    ("wrong errno", "wrong_errnos"),
    ("leak after close", "leaks"),
    ("hang", "hangs"),
    ("kernel bug", "kernel_bugs"),
    ("RM bug", "kernel_bugs"),
    ("VM status went backwards", "states_backwards"),
    ("the job died", "jobs_died"),  # killed (SIGKILL, the OOM killer): no summary of its own
)


@dataclass
class Job:
    seed: int
    proc: subprocess.Popen
    log: Path
    latest: dict = field(default_factory=dict)
    done: dict | None = None

    def read(self) -> None:
        """The process's records, as they come (the last is its summary)."""
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            self.latest = record
            if record.get("done"):
                self.done = record


def kind_of(message: str) -> str:
    for words, kind in KINDS:
        if words in message:
            return kind
    return "escapes"


def merge(jobs: list[Job], target: str, wall: float, interrupted: bool = False) -> dict:
    """One summary of the jobs' last records (their progress, if ``interrupted``)."""
    outcomes: dict[tuple, int] = defaultdict(int)
    failures = []
    for job in jobs:
        record = job.done or job.latest
        for request, outcome, state, n in record.get("outcomes", []):
            outcomes[request, outcome, state] += n
        if job.done is None and job.proc.poll() is not None and not interrupted:
            failures.append(
                {"message": f"the job died (exit {job.proc.returncode}); see {job.log}"}
            )
        if record.get("failure"):  # found, if not yet written up
            failures.append(record["failure"])
    examples = sum((j.done or j.latest).get("examples", 0) for j in jobs)
    ioctls = sum((j.done or j.latest).get("ioctls", 0) for j in jobs)
    runs = sum((j.done or j.latest).get("runs", 0) for j in jobs)
    counts = {kind: 0 for _, kind in KINDS} | {"escapes": 0}
    for failure in failures:
        counts[kind_of(failure["message"])] += 1
    errnos = defaultdict(set)
    for request, outcome, _ in outcomes:
        errnos[request].add(outcome)
    return {
        "target": target,
        "interrupted": interrupted,
        "jobs": len(jobs),
        "seeds": [j.seed for j in jobs],
        "examples": examples,
        "runs": runs,
        "ioctls": ioctls,
        "fuzzed_ioctls": sum(outcomes.values()),
        "wall_seconds": round(wall, 1),
        "ioctls_per_second": round(ioctls / wall, 1) if wall else 0.0,
        "distinct_triples": len(outcomes),
        **counts,
        "outcomes_per_ioctl": {r: sorted(o) for r, o in sorted(errnos.items())},
        "states": sorted({state for _, _, state in outcomes}),
        "triples": [[*key, n] for key, n in sorted(outcomes.items())],
        "failures": failures,
    }


def _display(jobs: list[Job], target: str, started: float, length: Length):
    """The live view: a bar (examples, ioctls or time) and what the ioctls answered so far."""
    elapsed = time.monotonic() - started
    merged = merge(jobs, target, elapsed)
    if length.examples:
        unit, total, done = "examples", length.examples, merged["examples"]
    elif length.ioctls:
        unit, total, done = "ioctls", length.ioctls, merged["ioctls"]
    else:
        unit, total, done = "s", length.seconds, min(elapsed, length.seconds)
    left = (total - done) * elapsed / done if done else None
    bar = Progress(
        TextColumn(f"fuzz {target}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} " + unit),
        TextColumn(f"{_clock(left)} left"),
    )
    bar.add_task("", total=total, completed=done)
    table = Table(box=None, show_header=True, pad_edge=False)
    table.add_column("ioctl")
    table.add_column("outcomes seen")
    for request, seen in merged["outcomes_per_ioctl"].items():
        table.add_row(escape(request), escape(" ".join(seen)))  # "[gh-gmem]" is no markup
    head = (
        f"{merged['examples']:,} examples, {merged['ioctls']:,} ioctls "
        f"({merged['fuzzed_ioctls']:,} fuzzed), "
        f"{merged['ioctls_per_second']:,.0f} ioctls/s, {merged['distinct_triples']} "
        f"(ioctl, outcome, state) triples, {len(jobs)} jobs, "
        f"failures {len(merged['failures'])}"
    )
    states = "states reached: " + escape(" ".join(merged["states"]))
    return Group(bar, head, states, table)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}"


def _plain_line(jobs: list[Job], target: str, started: float) -> str:
    m = merge(jobs, target, time.monotonic() - started)
    return (
        f"gunyah-sim fuzz: {m['examples']} examples, {m['ioctls']} ioctls "
        f"({m['fuzzed_ioctls']} fuzzed), "
        f"{m['ioctls_per_second']:.0f} ioctls/s, {m['distinct_triples']} triples, "
        f"{len(m['states'])} states, failures {len(m['failures'])}"
    )


@dataclass
class Length:
    """How long a campaign runs: ``examples``, or ``ioctls``, or ``seconds``."""

    examples: int = 0
    ioctls: int = 0
    seconds: float = 0.0

    def argv(self, jobs: int, i: int) -> list[str]:
        """Job ``i``'s share (each job runs the whole time)."""
        if self.examples:
            return ["--examples", str(_share(self.examples, jobs, i))]
        if self.ioctls:
            return ["--ioctls", str(_share(self.ioctls, jobs, i))]
        return ["--time", str(self.seconds)]


def run(target: str, length: Length, seed: int, jobs: int, db: str, out: Path, options=()) -> int:
    """A campaign of ``length`` split over ``jobs`` processes, each given ``options``
    too (vmm/fuzz/campaign.py's); the exit status of ``gunyah-sim fuzz``."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    running = [
        _start(target, length.argv(jobs, i), seed + i, db, out, options) for i in range(jobs)
    ]
    readers = [threading.Thread(target=j.read, daemon=True) for j in running]
    for reader in readers:
        reader.start()
    console = Console(stderr=True)
    interrupted = 0  # the signal that ended the campaign
    saved = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _watch(running, readers, target, started, length, console)
    except KeyboardInterrupt as e:
        interrupted = getattr(e, "signum", signal.SIGINT)
        for job in running:
            _kill_group(job.proc)
    finally:
        signal.signal(signal.SIGTERM, saved)
    for job in running:
        job.proc.wait()
    for reader in readers:
        reader.join()
    summary = merge(running, target, time.monotonic() - started, bool(interrupted))
    (out / f"fuzz-{target}-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    for failure in summary["failures"]:
        print(f"gunyah-sim fuzz: {failure['message'].splitlines()[0]}", file=sys.stderr)
        for what in ("reproducer", "trace"):
            if what in failure:
                print(f"gunyah-sim fuzz: {what}: {failure[what]}", file=sys.stderr)
    if interrupted:
        print("gunyah-sim fuzz: interrupted", file=sys.stderr)
        return 128 + interrupted
    return 1 if summary["failures"] else 0


class Interrupted(KeyboardInterrupt):
    """SIGTERM, ending the campaign as Ctrl-C does (exit 128 + its number)."""

    def __init__(self, signum: int):
        super().__init__()
        self.signum = signum


def _interrupt(signum, frame):
    raise Interrupted(signum)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM to a job and what it started (a reproducer): its own process group."""
    with contextlib.suppress(ProcessLookupError):  # the job had ended
        os.killpg(proc.pid, signal.SIGTERM)


def _share(examples: int, jobs: int, i: int) -> int:
    return examples // jobs + (1 if i < examples % jobs else 0)


def _start(target, length: list[str], seed, db, out: Path, options) -> Job:
    log = out / f"fuzz-{target}-{seed}.log"
    argv = [sys.executable, "-m", "vmm.fuzz.campaign", "--target", target, "--seed", str(seed)]
    argv += [*length, "--out", str(out), "--db", db, *options]
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
        )
    return Job(seed, proc, log)


def _watch(jobs, readers, target, started, length: Length, console: Console) -> None:
    if not console.is_terminal:
        while any(r.is_alive() for r in readers):
            for reader in readers:
                reader.join(PLAIN_EVERY / len(readers))
            print(_plain_line(jobs, target, started), file=sys.stderr, flush=True)
        return
    view = lambda: _display(jobs, target, started, length)  # noqa: E731
    with Live(view(), console=console, refresh_per_second=2) as live:
        while any(r.is_alive() for r in readers):
            time.sleep(0.5)
            live.update(view())
