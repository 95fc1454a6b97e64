"""The ``gunyah-sim`` command line.

Every failure the user can cause ends in one line on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import kernel
from uapi import toolchain
from uapi.abi.check import PROFILES, check
from uapi.abi.clang import AbiInputError, Compiler
from vmm import abi_check
from vmm.geniezone import MAX_VCPUS as GZVM_MAX_VCPUS
from vmm.geniezone import GenieZone
from vmm.guests import GUESTS
from vmm.guests import image as guest_image
from vmm.gunyah import Gunyah
from vmm.oops import Oops
from vmm.vmm import DTB_ROOM, Vmm, VmmConfig

# --hypervisor: what can be at EL2, the VMM's backend for each, and its most vCPUs
# (Gunyah: what the RM takes in a VM config DT; GenieZone: the driver's GZVM_MAX_VCPUS).
BACKENDS = {"gunyah": Gunyah, "geniezone": GenieZone}
HYPERVISORS = tuple(BACKENDS)
MAX_VCPUS = {"gunyah": 64, "geniezone": GZVM_MAX_VCPUS}
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _abi_check(args: argparse.Namespace) -> int:
    try:
        cc = Compiler.user(args.cc) if args.cc is not None else Compiler.bundled(args.target)
        report = check(args.header, args.profile, cc)
    except AbiInputError as e:
        print(f"gunyah-sim abi-check: {e}", file=sys.stderr)
        return 2
    print(abi_check.dumps(report) if args.json else abi_check.render(report))
    return report.exit_code


class UsageError(Exception):
    """Bad input on the command line: one line for the user."""


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)(i?B)?", text.strip(), re.IGNORECASE)
    if not m:
        raise UsageError(f"--mem {text!r}: not a size (e.g. 64M, 1G)")
    size = int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]
    if size % 4096 or size < 2 * DTB_ROOM:
        raise UsageError(f"--mem {text}: must be a multiple of 4 KiB and at least 128K")
    return size


def _image(what: str) -> tuple[str, bytes]:
    if what in GUESTS:
        return what, guest_image(what)
    path = Path(what)
    if not path.exists():
        names = ", ".join(GUESTS)
        raise UsageError(f"{what}: no such file, and not a bundled guest ({names})")
    try:
        return path.name, path.read_bytes()
    except OSError as e:
        raise UsageError(f"{what}: {e.strerror}") from None


def _run(args: argparse.Namespace) -> int:
    try:
        most = MAX_VCPUS[args.hypervisor]
        if not 1 <= args.vcpus <= most:
            raise UsageError(f"--vcpus {args.vcpus}: between 1 and {most} on {args.hypervisor}")
        mem = parse_size(args.mem)
        name, data = _image(args.image)
    except UsageError as e:
        print(f"gunyah-sim run: {e}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer

    def console(data: bytes) -> None:
        out.write(data)
        out.flush()

    trace = (lambda line: print(f"  {line}", file=sys.stderr)) if args.trace else None
    oops = Oops()
    host = kernel.boot(
        dram_size=max(1 << 30, 2 * mem),
        trace=trace,
        hypervisor=args.hypervisor,
        guest_exceptions=oops,
        warn=_warn_once(),
    )
    try:
        config = VmmConfig(data, name, args.vcpus, mem, args.cmdline)
        report = Vmm(host, config, console, _stdin(), BACKENDS[args.hypervisor]).run()
    except ValueError as e:  # an ImageError, or a VM config DT too large
        print(f"gunyah-sim run: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"gunyah-sim run: {e.strerror or e}", file=sys.stderr)
        return 1
    finally:
        host.shutdown()
    print(file=sys.stderr)
    for line in report.lines() + ([] if report.clean else oops.lines()):
        print(f"gunyah-sim: {line}", file=sys.stderr)
    return 0 if report.clean else 1


def _warn_once():
    """A ``warn`` hook for the kernel: each distinct warning once, on stderr
    (an irqfd without a doorbell warns at every write)."""
    seen: set[str] = set()

    def warn(line: str) -> None:
        if line not in seen:
            seen.add(line)
            print(f"gunyah-sim: warning: {line}", file=sys.stderr)

    return warn


def _stdin() -> int | None:
    """The console's input: standard input, when there is a real one."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _guests(args: argparse.Namespace) -> int:
    for name, text in GUESTS.items():
        print(f"{name:<16} {text}")
    return 0


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
    measure = p.add_mutually_exclusive_group()
    measure.add_argument(
        "--target",
        default=toolchain.ARM64_LINUX,
        help=f"target the bundled compiler measures for (default: {toolchain.ARM64_LINUX})",
    )
    measure.add_argument("--cc", help="measure with this C compiler command instead (e.g. gcc)")
    p.set_defaults(func=_abi_check)

    p = sub.add_parser(
        "run",
        help="boot a guest in a VM on a simulated Gunyah or GenieZone host",
        description="Boot IMAGE (an AArch64 ELF or raw image, or the name of a bundled guest) "
        "and stream its console. Exit 0 when the guest powers off cleanly.",
    )
    p.add_argument("image", nargs="?", default="hello", help="default: the bundled hello")
    p.add_argument(
        "--vcpus", type=int, default=4, help="1 to 64 on Gunyah, 1 to 8 on GenieZone (default 4)"
    )
    p.add_argument("--mem", default="64M", help="guest RAM, e.g. 64M (default)")
    p.add_argument("--cmdline", default="", help="the guest's /chosen/bootargs")
    p.add_argument(
        "--hypervisor",
        choices=HYPERVISORS,
        default="gunyah",
        help="the hypervisor at EL2 (default gunyah)",
    )
    p.add_argument("--trace", action="store_true", help="print ioctls, RM calls and vCPU exits")
    p.set_defaults(func=_run)

    p = sub.add_parser("guests", help="list the bundled guests")
    p.set_defaults(func=_guests)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
