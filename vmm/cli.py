"""The ``gunyah-sim`` command line.

Every failure the user can cause ends in one line on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from uapi.abi.check import PROFILES, check
from uapi.abi.clang import AbiInputError
from vmm import abi_check


def _abi_check(args: argparse.Namespace) -> int:
    try:
        report = check(args.header, args.profile)
    except AbiInputError as e:
        print(f"gunyah-sim abi-check: {e}", file=sys.stderr)
        return 2
    print(abi_check.dumps(report) if args.json else abi_check.render(report))
    return report.exit_code


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gunyah-sim",
        description="An executable model of the Gunyah and GenieZone Linux driver stacks.",
    )
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "abi-check",
        help="compare a C header with a Gunyah/GenieZone UAPI generation",
        description="Compare the structs, constants and ioctl numbers of a C header with a "
        "UAPI profile. Exit 0: it agrees; 1: it differs; 2: the header cannot be read.",
    )
    p.add_argument("header", help="path of a C header (e.g. include/uapi/linux/gunyah.h)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="v16", help="default: v16")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_abi_check)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
