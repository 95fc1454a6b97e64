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
failure (an AssertionError naming it), 0 once the failure is gone; --trace
writes the kernel's trace.
"""

import errno  # noqa: F401 (the injected faults)
import sys

import kernel
from uapi.linux import {uapi}
from vmm.fuzz import vms  # noqa: F401
from vmm.fuzz.check import Checker

out = open(sys.argv[2], "w") if sys.argv[1:2] == ["--trace"] else None
trace = (lambda line: print(line, file=out, flush=True)) if out else None
host = kernel.boot(dram_size=1 << 30, hypervisor={hypervisor!r}, trace=trace{faults})
check = Checker(host, {target!r})
fd = {{}}  # the campaign's fd numbers -> this process's
try:
{body}
finally:
    host.shutdown()
print("ran clean: the failure did not happen", file=sys.stderr)
'''


def script(target: str, lines: list[str], failure: str, seed: int, name: str, faults=None) -> str:
    """The reproducer's text: ``lines`` (a machine's script) replayed on a fresh host."""
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
        body=textwrap.indent("\n".join(lines or ["pass"]), "    "),
    )


def failure_class(text: str) -> str:
    """What kind of failure a message or a reproducer's last line names, to tell
    whether the reproducer failed the same way: ``hang``, ``AssertionError: KIND``
    (the text up to its second colon) or the exception's type."""
    if text.startswith("hang"):
        return "hang"
    head, _, rest = text.partition(": ")
    return f"{head}: {rest.partition(':')[0]}" if head == "AssertionError" else head
