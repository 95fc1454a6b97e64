"""One campaign process: Hypothesis drives a target's ioctl state machine.

``python -m vmm.fuzz.campaign`` is what ``gunyah-sim fuzz`` starts once per
job (vmm/fuzz/runner.py). It runs examples until ``--examples``,
``--ioctls`` (every ioctl made, fuzzed or not) or ``--time`` is reached
(checked every ``BATCH`` examples) or one fails, and writes JSON lines on stdout: a
progress record every ``PROGRESS_EVERY`` seconds and a last one with
``"done": true``, its summary. The example database (``--db``) keeps
failing examples, which Hypothesis replays first on the next campaign.

A failure is shrunk by Hypothesis; the shrunk example's script is written as
a reproducer (vmm/fuzz/reproducer.py) and run once alone with ``--trace``,
so the summary names both files and says whether the script reproduces it.
A step that takes longer than ``--step-limit`` seconds is a hang: the example so far
is written out unshrunk, with every thread's stack, and the process ends. The
reproducer holds each of its steps to the same limit ("hang at step N: CALL").
A failure goes into the progress records as soon as it is found.
"""

from __future__ import annotations

import argparse
import errno
import faulthandler
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, core, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import get_state_machine_test

from vmm.fuzz import reproducer
from vmm.fuzz.gunyah import GunyahMachine
from vmm.fuzz.gzvm import GzvmMachine
from vmm.fuzz.machine import Campaign, IoctlMachine

MACHINES = {"gunyah": GunyahMachine, "gzvm": GzvmMachine}
# Valid examples per Hypothesis run in an --ioctls or --time campaign: the length is
# checked between runs, so it overshoots by at most a run (each starts with its simplest
# example; examples Hypothesis drops as invalid run too but are not counted in BATCH).
BATCH = 20
STEPS = 8  # steps per example, as in CI
PROGRESS_EVERY = 0.5
REPRO_LIMIT = 60  # seconds the reproducer may take alone, besides one step's --step-limit


def machine_settings(examples: int, database) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=STEPS,
        deadline=None,
        database=database,
        report_multiple_bugs=False,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


class Worker:
    """A campaign in this process: counts, the progress thread, the failure's files."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.machine = MACHINES[args.target]
        self.campaign = Campaign()
        self.started = time.monotonic()
        self.done = threading.Event()
        self.out = Path(args.out)
        self.lock = threading.Lock()
        self.found: dict | None = None  # the failure being written up
        self.runs = 0  # Hypothesis runs (batches of examples) started
        self.stream = sys.stdout  # the records; anything else printed goes to stderr
        sys.stdout = sys.stderr

    def emit(self, **extra) -> None:
        c = self.campaign
        record = {
            "seed": self.args.seed,
            "examples": c.examples,
            "runs": self.runs,
            "ioctls": c.calls,
            "fuzzed_ioctls": sum(c.outcomes.values()),
            "seconds": round(time.monotonic() - self.started, 3),
            "outcomes": [[*key, n] for key, n in sorted(c.outcomes.items())],
            **({"failure": self.found} if self.found else {}),
            **extra,
        }
        with self.lock:
            print(json.dumps(record), file=self.stream, flush=True)

    def watch(self) -> None:
        """Progress records; a step stuck beyond --step-limit ends the process as a hang."""
        while not self.done.wait(PROGRESS_EVERY):
            self.emit()
            if time.monotonic() - self.campaign.tick > self.args.step_limit:
                self.hang()

    def hang(self) -> None:
        """Every thread's stack and the example so far, then the end of the process
        (whatever fails on the way: the step may never return)."""
        try:
            stacks = self.out / f"fuzz-{self.args.target}-{self.args.seed}-hang-stacks.txt"
            with stacks.open("w") as f:
                faulthandler.dump_traceback(f, all_threads=True)
            limit = self.args.step_limit
            failure = f"hang: a step took more than {limit:g} s (stacks in {stacks})"
            self.emit(done=True, failure=self.write_failure(failure))
        finally:
            os._exit(3)

    def run(self) -> int:
        args = self.args
        self.machine.campaign = self.campaign
        self.machine.FAULTS = {k: getattr(errno, v) for k, v in args.inject.items()} or None
        database = DirectoryBasedExampleDatabase(Path(args.db) / args.target) if args.db else None
        # Hypothesis draws each run's seed from this generator (hypothesis.seed()
        # would turn the example database off).
        core.threadlocal._hypothesis_global_random = random.Random(args.seed)
        threading.Thread(target=self.watch, name="fuzz-progress", daemon=True).start()
        failure = None
        try:
            while not self.finished():
                left = args.examples - self.campaign.examples if args.examples else BATCH
                test = get_state_machine_test(
                    self.machine, settings=machine_settings(min(left, BATCH), database)
                )
                self.runs += 1
                test()
        except Exception as e:  # the example's failure, shrunk: reported, not raised
            failure = self.write_failure(_first_lines(e))
        finally:
            self.done.set()
            IoctlMachine.shutdown()
        self.emit(done=True, failure=failure)
        return 1 if failure else 0

    def finished(self) -> bool:
        if self.args.examples:
            return self.campaign.examples >= self.args.examples
        if self.args.ioctls:
            return self.campaign.calls >= self.args.ioctls
        return time.monotonic() - self.started >= self.args.time

    def write_failure(self, message: str) -> dict:
        """The reproducer of the latest example and its trace; what the summary says."""
        machine = IoctlMachine.current
        lines = machine.script if machine is not None else []
        stem = self.out / f"fuzz-{self.args.target}-{self.args.seed}"
        path, trace = stem.with_suffix(".py"), stem.with_suffix(".trace")
        args = self.args
        self.found = {"message": message}
        self.emit()  # the display shows it while the reproducer runs
        text = reproducer.script(
            args.target, lines, message, args.seed, path.name, args.inject, args.step_limit
        )
        path.write_text(text)
        compile(text, str(path), "exec")  # a script that does not compile is a bug here
        try:
            res = subprocess.run(
                [sys.executable, str(path), "--trace", str(trace)],
                capture_output=True,
                text=True,
                timeout=REPRO_LIMIT + args.step_limit,
            )
            tail = _last_line(res.stderr)
            same = reproducer.failure_class(tail) == reproducer.failure_class(message)
            reproduced = res.returncode != 0 and same
        except subprocess.TimeoutExpired:
            reproduced, tail = False, f"took more than {REPRO_LIMIT + args.step_limit:g} s"
        failure = {"message": message, "reproducer": str(path)}
        if trace.exists():
            failure["trace"] = str(trace)
        return failure | {"reproduced": reproduced, "reproducer_says": tail}


def _first_lines(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return "\n".join(text.splitlines()[:3])


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def parse_inject(text: str) -> dict[str, str]:
    """``POINT=ERRNO[,POINT=ERRNO]``: RM calls that always fail (testing the tool)."""
    arms = {}
    for item in filter(None, text.split(",")):
        point, _, name = item.partition("=")
        if not isinstance(getattr(errno, name, None), int):
            raise argparse.ArgumentTypeError(f"{item!r}: not POINT=ERRNO (e.g. ...=EIO)")
        arms[point] = name
    return arms


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vmm.fuzz.campaign")
    p.add_argument("--target", choices=sorted(MACHINES), default="gunyah")
    p.add_argument("--examples", type=int, default=0)
    p.add_argument("--ioctls", type=int, default=0)
    p.add_argument("--time", type=float, default=0.0, help="seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--db", default="")
    p.add_argument("--out", default=".")
    p.add_argument("--inject", type=parse_inject, default={})
    p.add_argument("--step-limit", type=float, default=60.0)
    return p


def main(argv: list[str] | None = None) -> int:
    return Worker(parser().parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
