"""``gunyah-sim fetch-linux``: Debian's arm64 cloud kernel and a busybox initramfs.

Debian's own client fetches the packages: ``apt-get update`` and ``apt-get
download`` with a private state, cache and lists directory under the cache
and the architecture given as ``-o`` options, so the system's apt
configuration and state are read (its sources) but never changed. The
packages are ``linux-image-cloud-arm64`` (a metapackage: ``apt-cache
depends`` names the versioned image it pulls in) and ``busybox-static``.

A .deb is an ``ar`` archive whose ``data.tar.*`` member holds the files
(:func:`deb_member`, :func:`data_file`). ``/boot/vmlinuz-*`` is an arm64
``Image`` (Documentation/arm64/booting.rst) as it is, gzip'd, or in an EFI
zboot wrapper (drivers/firmware/efi/libstub/zboot-header.S): :func:`image`
unwraps all three. The initramfs (:func:`initramfs`) holds busybox and an
``/init`` that mounts /proc, prints one line with ``uname -r`` and the
number of CPUs, and powers off.

Everything lands in ``$XDG_CACHE_HOME/gunyah-sim/linux``
(:func:`linux_dir`); :func:`fetched` finds it for ``run linux``. Every
failure is a :class:`FetchError` with one line.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import tarfile
import tempfile
import zlib
from pathlib import Path

from vmm.initramfs import Entry, newc
from vmm.native.preload import cache_dir

KERNEL_PACKAGE = "linux-image-cloud-arm64"
BUSYBOX_PACKAGE = "busybox-static"
IMAGE, INITRAMFS, RELEASE = "Image", "initramfs.cpio", "release"
AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
ARM64_MAGIC = b"ARM\x64"
ARM64_MAGIC_OFFSET = 0x38
GZIP_MAGIC = b"\x1f\x8b"
ZBOOT_MAGIC = b"zimg"  # at offset 4 of an EFI zboot image, after "MZ" and 2 bytes
TTYAUX_MAJOR, CONSOLE_MINOR = 5, 1  # /dev/console

# /init: what the boot test looks for is the line "gunyah-sim: init: ...".
INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "gunyah-sim: init: Linux $(/bin/busybox uname -r), \
$(/bin/busybox grep -c ^processor /proc/cpuinfo) CPUs"
/bin/busybox poweroff -f
"""
# rdinit=/interrupts: user programs that take page faults and system calls, and the
# interrupt counts twice (they grow between the two).
INTERRUPTS = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox ls /proc
/bin/busybox cat /proc/interrupts
/bin/busybox sleep 0.1
/bin/busybox cat /proc/interrupts
/bin/busybox poweroff -f
"""


class FetchError(Exception):
    """fetch-linux or run linux cannot go on: one line for the user."""


def linux_dir() -> Path:
    """Where the kernel and initramfs are kept: $XDG_CACHE_HOME/gunyah-sim/linux."""
    return cache_dir() / "linux"


def fetched(where: Path | None = None) -> tuple[Path, Path]:
    """The fetched (Image, initramfs); FetchError saying to fetch them if missing."""
    where = where or linux_dir()
    files = where / IMAGE, where / INITRAMFS
    if not all(f.is_file() for f in files):
        raise FetchError(f"no Linux kernel in {where}: run `gunyah-sim fetch-linux` first")
    return files


def fetch(where: Path | None = None, apt_get: str = "apt-get", say=print) -> tuple[Path, Path]:
    """Download both packages, write the Image, the initramfs and the kernel release in
    ``where`` (default :func:`linux_dir`) and return (Image, initramfs)."""
    where = where or linux_dir()
    apt = _Apt(where / "apt", apt_get)
    apt.update()
    kernel = apt.depends(KERNEL_PACKAGE, "linux-image-")
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        debs = apt.download([kernel, BUSYBOX_PACKAGE], Path(tmp))
        kernel_data = deb_member(debs[kernel].read_bytes(), "data.tar")
        busybox_data = deb_member(debs[BUSYBOX_PACKAGE].read_bytes(), "data.tar")
        name, vmlinuz = data_file(kernel_data, "./boot/vmlinuz-")
        release = name.removeprefix("./boot/vmlinuz-")
        busybox = data_file(busybox_data, "./bin/busybox")[1]
        _write(where / IMAGE, image(vmlinuz))
        _write(where / INITRAMFS, initramfs(busybox))
        _write(where / RELEASE, release.encode() + b"\n")
    say(f"fetch-linux: {kernel} ({release}) and {BUSYBOX_PACKAGE} in {where}")
    return where / IMAGE, where / INITRAMFS


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a reader never sees half a file


class _Apt:
    """apt-get and apt-cache for arm64 with their state, cache and lists under ``root``."""

    def __init__(self, root: Path, apt_get: str):
        self.root, self.apt_get = root, apt_get
        for sub in ("lists/partial", "cache/archives/partial"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def options(self) -> list[str]:
        opts = {
            "Dir::State": self.root,
            "Dir::State::Lists": self.root / "lists",
            "Dir::State::status": os.devnull,  # nothing is installed for arm64
            "Dir::Cache": self.root / "cache",
            "APT::Architecture": "arm64",
            "APT::Architectures": "arm64",
            "Debug::NoLocking": "1",  # the private state needs no lock; the system's is not taken
        }
        if os.geteuid() == 0:  # apt's _apt user could not write the private directories
            opts["APT::Sandbox::User"] = "root"
        return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        argv = [tool, "-q", *self.options(), *args]
        try:
            res = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
        except FileNotFoundError:
            raise FetchError(
                f"{tool} not found: fetch-linux uses Debian's apt to get the packages"
            ) from None
        if res.returncode:
            lines = [ln for ln in res.stderr.splitlines() if ln.strip()] or ["no message"]
            raise FetchError(f"{' '.join([tool, *args])} failed: {lines[-1]}")
        return res.stdout

    def update(self) -> None:
        self.run(self.apt_get, "update")

    def depends(self, package: str, prefix: str) -> str:
        """The first dependency of ``package`` whose name starts with ``prefix``."""
        cache = str(Path(self.apt_get).with_name("apt-cache"))
        for line in self.run(cache, "depends", package).splitlines():
            kind, _, name = line.strip().partition(": ")
            if kind == "Depends" and name.startswith(prefix):
                return name
        raise FetchError(f"{package}: no dependency named {prefix}* in the package lists")

    def download(self, packages: list[str], into: Path) -> dict[str, Path]:
        self.run(self.apt_get, "download", *packages, cwd=into)
        debs = {}
        for package in packages:
            found = sorted(into.glob(f"{package}_*.deb"))
            if not found:
                raise FetchError(f"apt-get download {package}: no .deb written")
            debs[package] = found[0]
        return debs


def deb_member(deb: bytes, prefix: str) -> bytes:
    """The first member of the ar archive ``deb`` whose name starts with ``prefix``."""
    if not deb.startswith(AR_MAGIC):
        raise FetchError("not a Debian package (no ar archive)")
    off = len(AR_MAGIC)
    while off + AR_HEADER <= len(deb):
        header = deb[off : off + AR_HEADER]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58])
        except ValueError:
            raise FetchError("a Debian package with a corrupt ar header") from None
        if name.startswith(prefix):
            return deb[off + AR_HEADER : off + AR_HEADER + size]
        off += AR_HEADER + size + (size & 1)  # members are 2-byte aligned
    raise FetchError(f"a Debian package without {prefix}*")


def data_file(tar: bytes, prefix: str) -> tuple[str, bytes]:
    """(name, contents) of the first regular file of ``tar`` (any compression Python
    reads) whose name starts with ``prefix``."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:*") as archive:
            for member in archive:
                if member.isfile() and member.name.startswith(prefix):
                    return member.name, archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise FetchError(f"unreadable data archive: {e}") from None
    raise FetchError(f"no {prefix}* in the package")


def image(vmlinuz: bytes) -> bytes:
    """The arm64 Image in ``vmlinuz``: itself, gunzipped, or out of an EFI zboot wrapper
    (gzip payload). FetchError: none of these, or no arm64 magic."""
    if vmlinuz[:2] == GZIP_MAGIC:
        vmlinuz = _gunzip(vmlinuz)
    elif vmlinuz[4:8] == ZBOOT_MAGIC:
        offset, size = struct.unpack_from("<II", vmlinuz, 8)
        kind = vmlinuz[0x18:0x20].rstrip(b"\0")
        if kind != b"gzip":
            raise FetchError(f"an EFI zboot kernel compressed with {kind.decode()}, not gzip")
        vmlinuz = _gunzip(vmlinuz[offset : offset + size])
    if vmlinuz[ARM64_MAGIC_OFFSET : ARM64_MAGIC_OFFSET + 4] != ARM64_MAGIC:
        raise FetchError("the kernel is not an arm64 Image (no ARM\\x64 magic)")
    return vmlinuz


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise FetchError(f"corrupt gzip'd kernel: {e}") from None


def initramfs(busybox: bytes) -> bytes:
    """The newc initramfs: busybox, /dev/console, /proc, and the /init scripts."""
    return newc(
        [
            Entry.directory("bin"),
            Entry.file("bin/busybox", busybox),
            Entry.symlink("bin/sh", "busybox"),
            Entry.directory("dev"),
            Entry.char_device("dev/console", TTYAUX_MAJOR, CONSOLE_MINOR),
            Entry.directory("proc"),
            Entry.file("init", INIT.encode()),
            Entry.file("interrupts", INTERRUPTS.encode()),
        ]
    )
