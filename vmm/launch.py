"""The ``gunyah-sim`` executable: ``vmm.cli.main``, with a Ctrl-C during start-up one line too.

Importing the command line loads cffi, unicorn and the UAPI headers (about
half a second); a Ctrl-C typed then lands in an import,
before ``vmm.cli.main`` is there to handle it, and would be a traceback.
"""

from __future__ import annotations

import signal
import sys


def main() -> int:
    """Exit status of the command line; 130 and one line for a Ctrl-C while it loads."""
    try:
        from vmm.cli import main as cli_main
    except KeyboardInterrupt:
        print("\ngunyah-sim: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    return cli_main()
