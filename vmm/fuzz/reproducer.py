"""A failing example as a standalone Python script (no Hypothesis).

The script boots a host as the campaign did (its injected faults too),
replays the example's calls on it, each ioctl inside the campaign's own
:class:`~vmm.fuzz.check.Checker` block, and ends with the same leak check,
so it fails as the example did: an AssertionError naming the failure, a
non-zero exit. ``--trace FILE`` writes the kernel's trace of the run
(``kernel.Tracer``'s lines: every ioctl decoded, every RM call, every exit).
"""

from __future__ import annotations

import textwrap

UAPI = {"gunyah": "gunyah as gh", "gzvm": "gzvm as gz"}
HYPERVISOR = {"gunyah": "gunyah", "gzvm": "geniezone"}

TEMPLATE = '''\
"""A failing example of a gunyah-sim fuzz campaign (target {target}, seed {seed}).

It failed with:

{failure}

Run it alone: python {name} [--trace FILE]. It exits non-zero with the same
failure (an AssertionError naming it, or "hang at step N" when a step takes
more than {limit:g} s), 0 once the failure is gone; --trace writes the
kernel's trace.
"""

import errno  # noqa: F401 (the injected faults)
import os
import sys
import threading
from contextlib import contextmanager

import kernel
from uapi.linux import {uapi}
from vmm.fuzz import vms  # noqa: F401
from vmm.fuzz.check import Checker

LIMIT = {limit!r}  # seconds a step may take, as in the campaign


def hang(n, call):
    print(f"hang at step {{n}}: {{call}} (more than {{LIMIT:g}} s)", file=sys.stderr, flush=True)
    os._exit(3)  # the step may never return


@contextmanager
def step(n, call):
    timer = threading.Timer(LIMIT, hang, (n, call))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


out = open(sys.argv[2], "w") if sys.argv[1:2] == ["--trace"] else None
trace = (lambda line: print(line, file=out, flush=True)) if out else None
with step(0, "kernel.boot"):
    host = kernel.boot(dram_size=1 << 30, hypervisor={hypervisor!r}, trace=trace{faults})
check = Checker(host, {target!r})
fd = {{}}  # the campaign's fd numbers -> this process's
try:
{body}
finally:
    with step({last}, "host.shutdown()"):
        host.shutdown()
print("ran clean: the failure did not happen", file=sys.stderr)
'''


def script(
    target: str, lines: list[str], failure: str, seed: int, name: str, faults=None, limit=60.0
) -> str:
    """The reproducer's text: ``lines`` (a machine's script) replayed on a fresh host,
    each step (a line and the lines indented under it) within ``limit`` seconds."""
    arms = ""
    if faults:
        arms = ", faults={" + ", ".join(f"{k!r}: errno.{v}" for k, v in faults.items()) + "}"
    return TEMPLATE.format(
        target=target,
        seed=seed,
        failure=textwrap.indent(failure.strip(), "    "),
        name=name,
        uapi=UAPI[target],
        hypervisor=HYPERVISOR[target],
        faults=arms,
        body=textwrap.indent("\n".join(_steps(lines)) or "pass", "    "),
        limit=limit,
        last=len(_steps(lines)) + 1,
    )


def _steps(lines: list[str]) -> list[str]:
    """Each step of ``lines`` inside ``with step(n, call):``, ``call`` its last line."""
    groups: list[list[str]] = []
    for line in lines:
        if line.startswith(" ") and groups:
            groups[-1].append(line)
        else:
            groups.append([line])
    return [
        f"with step({n}, {group[-1].strip()!r}):\n" + textwrap.indent("\n".join(group), "    ")
        for n, group in enumerate(groups, 1)
    ]


def failure_class(text: str) -> str:
    """What kind of failure a message or a reproducer's last line names, to tell
    whether the reproducer failed the same way: ``hang``, ``AssertionError: KIND``
    (the text up to its second colon) or the exception's type."""
    if text.startswith("hang"):
        return "hang"
    head, _, rest = text.partition(": ")
    return f"{head}: {rest.partition(':')[0]}" if head == "AssertionError" else head
