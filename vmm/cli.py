"""The ``gunyah-sim`` command line.

Every failure the user can cause ends in one line on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib.metadata
import json
import math
import os
import re
import signal
import sys
from pathlib import Path

import kernel
from uapi import toolchain
from uapi.abi.check import ALIASES, PROFILES, check
from uapi.abi.clang import AbiInputError, Compiler
from vmm import abi_check, fetch_linux
from vmm.geniezone import MAX_VCPUS as GZVM_MAX_VCPUS
from vmm.geniezone import GenieZone
from vmm.guests import GUESTS
from vmm.guests import image as guest_image
from vmm.gunyah import Gunyah
from vmm.gunyah_ack import GunyahAndroid
from vmm.loader import load_image
from vmm.native import program as native
from vmm.oops import Oops
from vmm.vmm import DTB_ROOM, RAM_BASE, UART_BASE, Vmm, VmmConfig, device_tree

# --hypervisor: what can be at EL2, the VMM's backend for each, and its most vCPUs
# (Gunyah: what the RM takes in a VM config DT; GenieZone: the driver's GZVM_MAX_VCPUS).
BACKENDS = {"gunyah": Gunyah, "geniezone": GenieZone}
HYPERVISORS = tuple(BACKENDS)
MAX_VCPUS = {"gunyah": 64, "geniezone": GZVM_MAX_VCPUS}
# --uapi: which /dev/gunyah driver generation the host kernel has (v16 upstream,
# or an Android Common Kernel's); the Android ones take the GunyahAndroid backend.
UAPIS = ("v16", "ack-6.1", "ack-6.6")
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
# The most guest RAM: the board's 8 GiB of DRAM (Documentation/hw.rst) less the
# hypervisor's 64 MiB page pool and 64 MiB the host kernel keeps for itself (the
# shared window, run pages). RAM is sparse, so the host always boots the whole board.
MAX_MEM = (8 << 30) - (128 << 20)


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
    if size > MAX_MEM:
        raise UsageError(f"--mem {text}: at most {MAX_MEM >> 20}M on this board")
    return size


def _image(what: str, limit: int) -> tuple[str, bytes]:
    """A bundled guest, or the file ``what`` (UsageError if unreadable, or larger
    than ``limit``: a device like /dev/zero is never read whole)."""
    if what in GUESTS:
        return what, guest_image(what)
    path = Path(what)
    if not path.exists():
        names = ", ".join(GUESTS)
        raise UsageError(f"{what}: no such file, and not a bundled guest ({names})")
    try:
        with path.open("rb") as image:
            data = image.read(limit + 1)
    except OSError as e:
        raise UsageError(f"{what}: {e.strerror}") from None
    if len(data) > limit:
        raise UsageError(f"{what}: larger than {limit >> 10}K, more than the image may hold")
    return path.name, data


ELF_ROOM = 64 << 20  # an ELF may be larger than the RAM it loads into (symbols)
# run linux: the kernel and initramfs of fetch-linux, with more RAM, its console on the PL011.
LINUX = "linux"
DEFAULT_MEM, LINUX_MEM = "64M", "256M"
LINUX_CMDLINE = f"console=ttyAMA0 earlycon=pl011,{UART_BASE:#x}"


class Interrupt:
    """SIGINT and SIGTERM during ``run``: the first stops the VM the way a VMM does (the
    vCPUs are kicked, everything is torn down, one line says so); a second is left to
    the default action, so it ends the process at once whatever the run is blocked on."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = 0
        self.vmm: Vmm | None = None
        self._saved = {sig: signal.signal(sig, self) for sig in self.SIGNALS}

    def __call__(self, signum: int, frame) -> None:
        self.signum = signum
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        if self.vmm is not None:
            self.vmm.interrupt("interrupted")

    def stdout_closed(self) -> None:
        """Whoever read the console went away (``| head``): stop the VM as for a
        signal (from any thread), and exit quietly as a program killed by SIGPIPE
        does."""
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if not self.signum:
            self.signum = signal.SIGPIPE
        if self.vmm is not None:
            self.vmm.interrupt("stdout closed")

    def watch(self, vmm: Vmm) -> Vmm:
        self.vmm = vmm
        if self.signum:  # it came before there was a VM
            vmm.interrupt("interrupted")
        return vmm

    def restore(self) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace) -> int:
    interrupt = Interrupt()
    try:
        return _run_vm(args, interrupt)
    finally:
        interrupt.restore()


def _run_vm(args: argparse.Namespace, interrupt: Interrupt) -> int:
    try:
        backend = _backend(args.hypervisor, args.uapi)
        config = _config(args)
        trace_out = _trace_out(args.trace_out)
    except UsageError as e:
        print(f"gunyah-sim run: {e}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer

    def console(data: bytes) -> None:
        try:
            out.write(data)
            out.flush()
        except BrokenPipeError:
            interrupt.stdout_closed()

    trace = None
    if args.trace or trace_out is not None:
        lines = (lambda line: print(f"  {line}", file=sys.stderr)) if args.trace else None
        trace = kernel.Tracer(lines, timeline=trace_out is not None)
    oops = Oops()
    host = kernel.boot(
        trace=trace,
        hypervisor=args.hypervisor,
        guest_exceptions=oops,
        warn=_warn_once(),
        uapi=args.uapi,
    )
    try:
        vmm = interrupt.watch(Vmm(host, config, console, _stdin(), backend))
        report = vmm.run()
    except ValueError as e:  # an ImageError, or a VM config DT too large
        print(f"gunyah-sim run: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if interrupt.signum:  # what the driver said while the VM was being torn down
            return _interrupted(interrupt.signum)
        print(f"gunyah-sim run: {e.strerror or e}", file=sys.stderr)
        return 1
    finally:
        host.shutdown()
        if trace_out is not None:
            with trace_out:
                json.dump(trace.chrome_trace(), trace_out)
    if interrupt.signum:
        return _interrupted(interrupt.signum)
    print(file=sys.stderr)
    for line in report.lines() + ([] if report.clean else oops.lines()):
        print(f"gunyah-sim: {line}", file=sys.stderr)
    return 0 if report.clean else 1


def _backend(hypervisor: str, uapi: str):
    """The VMM backend for ``--hypervisor`` and ``--uapi``; UsageError for a uapi
    there is not, or an Android one with GenieZone."""
    if uapi not in UAPIS:
        raise UsageError(f"--uapi {uapi}: one of {', '.join(UAPIS)}")
    if uapi == "v16":
        return BACKENDS[hypervisor]
    if hypervisor != "gunyah":
        raise UsageError(f"--uapi {uapi} is a /dev/gunyah driver: only with --hypervisor gunyah")
    return GunyahAndroid


def _config(args: argparse.Namespace) -> VmmConfig:
    """The VM that ``--hypervisor``, ``--vcpus``, ``--mem``, ``--cmdline`` and the image
    ask for (UsageError: one of them is bad)."""
    most = MAX_VCPUS[args.hypervisor]
    if not 1 <= args.vcpus <= most:
        raise UsageError(f"--vcpus {args.vcpus}: between 1 and {most} on {args.hypervisor}")
    kernel, initrd = args.kernel, args.initrd
    if args.image == LINUX and kernel is None:
        try:
            kernel, fetched_initrd = map(str, fetch_linux.fetched())
        except fetch_linux.FetchError as e:
            raise UsageError(str(e)) from None
        initrd = initrd or fetched_initrd
    if initrd is not None and kernel is None:
        raise UsageError("--initrd needs --kernel (or run linux)")
    linux = kernel is not None
    mem = parse_size(args.mem or (LINUX_MEM if linux else DEFAULT_MEM))
    name, data = _image(kernel or args.image, max(mem, ELF_ROOM))
    cmdline = args.cmdline if args.cmdline is not None else (LINUX_CMDLINE if linux else "")
    initrd_data = _image(initrd, mem)[1] if initrd is not None else b""
    return VmmConfig(data, name, args.vcpus, mem, cmdline, initrd_data)


def _dtb(args: argparse.Namespace) -> int:
    """Write the DTB ``run`` would load for the same arguments (exit 2: bad input, or a
    file that cannot be written)."""
    try:
        config = _config(args)
        load_image(config.image, RAM_BASE, config.mem - DTB_ROOM, config.name)  # as run judges it
        dtb = device_tree(config, _backend(args.hypervisor, args.uapi))
        if args.output == "-":
            sys.stdout.buffer.write(dtb)
        else:
            Path(args.output).write_bytes(dtb)
    except (UsageError, ValueError) as e:
        print(f"gunyah-sim dtb: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"gunyah-sim dtb: {args.output}: {e.strerror}", file=sys.stderr)
        return 2
    return 0


def _trace_out(path: str | None):
    """The --trace-out file, opened (created or truncated) before the VM runs."""
    if path is None:
        return None
    try:
        return open(path, "w")
    except OSError as e:
        raise UsageError(f"--trace-out {path}: {e.strerror}") from None


def _interrupted(signum: int) -> int:
    if signum != signal.SIGPIPE:
        print("\ngunyah-sim: interrupted", file=sys.stderr)
    return 128 + signum


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


def _exec(args: argparse.Namespace) -> int:
    argv = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not argv:
        print(
            "gunyah-sim exec: no program given (gunyah-sim exec -- PROGRAM ARGS...)",
            file=sys.stderr,
        )
        return 2
    trace = kernel.Tracer(lambda line: print(f"  {line}", file=sys.stderr)) if args.trace else None
    try:
        return native.execute(argv, args.hypervisor, args.uapi, trace)
    except (native.ExecError, toolchain.ToolchainError) as e:
        print(f"gunyah-sim exec: {e}", file=sys.stderr)
        return e.status if isinstance(e, native.ExecError) else 2


def _fetch_linux(args: argparse.Namespace) -> int:
    try:
        fetch_linux.fetch()
    except (fetch_linux.FetchError, OSError) as e:
        print(f"gunyah-sim fetch-linux: {e}", file=sys.stderr)
        return 1
    return 0


def _guests(args: argparse.Namespace) -> int:
    for name, text in GUESTS.items():
        print(f"{name:<16} {text}")
    return 0


def version() -> str:
    """The installed distribution's version; a source tree run with ``python -m`` has none."""
    try:
        return importlib.metadata.version("gunyah-sim")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _vm_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments that say which VM: what run boots and dtb describes."""
    p.add_argument(
        "image",
        nargs="?",
        default="hello",
        help="default: the bundled hello; linux: the kernel and initramfs of fetch-linux",
    )
    p.add_argument("--kernel", metavar="IMAGE", help="boot this arm64 Linux Image")
    p.add_argument("--initrd", metavar="FILE", help="with --kernel: the initramfs")
    p.add_argument(
        "--vcpus", type=int, default=4, help="1 to 64 on Gunyah, 1 to 8 on GenieZone (default 4)"
    )
    p.add_argument(
        "--mem", help=f"guest RAM, 128K to {MAX_MEM >> 20}M (default 64M, 256M for Linux)"
    )
    p.add_argument(
        "--cmdline", help=f"the guest's /chosen/bootargs (Linux's default: {LINUX_CMDLINE})"
    )
    p.add_argument(
        "--hypervisor",
        choices=HYPERVISORS,
        default="gunyah",
        help="the hypervisor at EL2 (default gunyah)",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gunyah-sim",
        description="An executable model of the Gunyah and GenieZone Linux driver stacks.",
    )
    top.add_argument("--version", action="version", version=f"gunyah-sim {version()}")
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "abi-check",
        help="compare a C header with a Gunyah/GenieZone UAPI generation",
        description="Compare the structs, constants and ioctl numbers of a C header with a "
        "UAPI profile. Exit 0: it agrees; 1: it differs; 2: the header cannot be read.",
    )
    p.add_argument("header", help="path of a C header (e.g. include/uapi/linux/gunyah.h)")
    p.add_argument(
        "--profile",
        choices=sorted({*PROFILES, *ALIASES}),
        default="v16",
        help="default: v16 (v17 is another name for it)",
    )
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
    _vm_arguments(p)
    p.add_argument(
        "--uapi",
        default="v16",
        help="the /dev/gunyah driver: v16, ack-6.1 or ack-6.6 (Android kernels; default v16)",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="print ioctls and RM calls decoded, vCPU exits and interrupts, strace-style",
    )
    p.add_argument(
        "--trace-out",
        metavar="FILE.json",
        help="write the trace as Chrome trace-event JSON (Perfetto, chrome://tracing)",
    )
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "dtb",
        help="write the devicetree run gives a guest, for a VMM that builds its own VM",
        description="Write the DTB (Gunyah: the VM config DT) that run loads for the same "
        "arguments, for a native VMM to place in the last 64K of guest RAM.",
    )
    _vm_arguments(p)
    p.add_argument(
        "--uapi",
        default="v16",
        help="the /dev/gunyah driver the VMM drives: v16, ack-6.1 or ack-6.6 (default v16)",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write it (- for stdout)"
    )
    p.set_defaults(func=_dtb)

    p = sub.add_parser(
        "exec",
        help="run a native VMM (C, Rust) against the simulated /dev/gunyah or /dev/gzvm",
        description="Run PROGRAM with the simulated device visible to it (its open, ioctl, "
        "mmap and close of the device reach the model; see Documentation/native.rst). "
        "The exit status is the program's.",
    )
    p.add_argument("--hypervisor", choices=HYPERVISORS, default="gunyah")
    p.add_argument(
        "--uapi",
        default="v16",
        help="the /dev/gunyah driver: v16, ack-6.1 or ack-6.6 (Android kernels; default v16)",
    )
    p.add_argument("--trace", action="store_true", help="print the program's ioctls, strace-style")
    p.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    p.set_defaults(func=_exec)

    p = sub.add_parser(
        "fetch-linux",
        help="get Debian's arm64 cloud kernel and busybox for `run linux`",
        description="Download linux-image-cloud-arm64 and busybox-static (arm64) with apt-get, "
        "using private apt state, and build the Image and initramfs `run linux` boots.",
    )
    p.set_defaults(func=_fetch_linux)

    p = sub.add_parser("guests", help="list the bundled guests")
    p.set_defaults(func=_guests)

    p = sub.add_parser(
        "fuzz",
        help="run an ioctl fuzz campaign against /dev/gunyah or /dev/gzvm",
        description="Hypothesis drives the ioctl state machine of the CI tests. Exit 0: no "
        "failure; 1: a failure, shrunk, with a reproducer script and its trace.",
    )
    p.add_argument("--target", choices=("gunyah", "gzvm"), default="gunyah")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--examples", type=int, help="examples to run (default 1000)")
    length.add_argument(
        "--ioctls", type=int, help="run until this many ioctls (all made, fuzzed or not)"
    )
    length.add_argument("--time", help="run this long instead: 90s, 10m, 2h")
    p.add_argument("--seed", type=int, default=0, help="job i runs seed S+i (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    p.add_argument("--db", default=".gunyah-sim-fuzz", help="Hypothesis example database")
    p.add_argument("--out", default=".", help="directory for summaries and reproducers")
    p.add_argument(
        "--step-limit", type=float, default=60.0, help="seconds a step may take (default 60)"
    )
    p.add_argument("--inject", default="", help=argparse.SUPPRESS)  # POINT=ERRNO: a broken kernel
    p.set_defaults(func=_fuzz)
    return top


def _fuzz(args: argparse.Namespace) -> int:
    try:
        import hypothesis  # noqa: F401 (the campaign processes run it)

        from vmm.fuzz import runner
    except ModuleNotFoundError as e:
        missing = (e.name or "hypothesis").partition(".")[0]
        print(f"gunyah-sim fuzz: needs {missing}: pip install 'gunyah-sim[fuzz]'", file=sys.stderr)
        return 2
    try:
        length = _length(args)
        _directory(args.out, "--out")
        _directory(args.db, "--db")
        _step_limit(args.step_limit)
        _inject(args.inject, args.target)
    except UsageError as e:
        print(f"gunyah-sim fuzz: {e}", file=sys.stderr)
        return 2
    options = ["--inject", args.inject, "--step-limit", str(args.step_limit)]
    return runner.run(args.target, length, args.seed, args.jobs, args.db, Path(args.out), options)


def _length(args: argparse.Namespace):
    """--examples (default 1000), --ioctls or --time, checked against --jobs."""
    from vmm.fuzz.runner import Length

    if not 1 <= args.jobs <= 256:
        raise UsageError(f"--jobs {args.jobs}: between 1 and 256")
    if args.time is not None:
        return Length(seconds=_duration(args.time))
    count, name = (
        (args.ioctls, "--ioctls") if args.ioctls is not None else (args.examples, "--examples")
    )
    count = 1000 if count is None else count
    if count < args.jobs:
        raise UsageError(f"{name} {count}: at least one per job (--jobs {args.jobs})")
    return Length(examples=count) if name == "--examples" else Length(ioctls=count)


def _directory(text: str, option: str) -> None:
    """``text`` made a directory the campaign can write in, or a UsageError saying why."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {text!r}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {text!r}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {text!r}: not writable")


def _step_limit(seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"--step-limit {seconds:g}: a number of seconds above 0")


def _inject(text: str, target: str) -> None:
    """``POINT=ERRNO[,...]``: RM calls that can be made to fail, and errno names."""
    if text and target == "gzvm":
        raise UsageError("--inject: GenieZone has no Resource Manager to break")
    for item in filter(None, text.split(",")):
        point, _, name = item.partition("=")
        if point not in kernel.rm_fault_points() or not isinstance(getattr(errno, name, None), int):
            raise UsageError(f"--inject {item!r}: not POINT=ERRNO (e.g. gunyah_rm_vm_start=EIO)")


def _duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--time {text!r}: not a duration (e.g. 90s, 10m, 2h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # here, not at exit, where a closed pipe would be exit 120
        return status
    except KeyboardInterrupt:  # before run's own handling is in place, or another command
        print("\ngunyah-sim: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:  # stdout's reader went away (| head): quietly, as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
