"""An initramfs in the "newc" cpio format Linux unpacks (usr/gen_init_cpio.c).

Each entry is a 110-byte ASCII header, ``070701`` then thirteen 8-digit
hexadecimal fields (ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
devminor, rdevmajor, rdevminor, namesize, check), the NUL-terminated name,
padding to 4 bytes, the data, padding to 4 bytes. The archive ends with the
entry ``TRAILER!!!``. Linux's unpacker (init/initramfs.c) takes exactly this;
the checksum field is 0 (the ``070702`` variant is the one that checks it).

:func:`newc` writes a list of :class:`Entry` deterministically: inode numbers
count from 1 in order, every time is 0, so the same entries give the same
bytes.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One file: its path (no leading ``/``), mode (type and permission bits), contents
    (a symlink's target for S_IFLNK, empty for a directory or a device node) and,
    for a device node, its (major, minor)."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)

    @classmethod
    def directory(cls, name: str) -> Entry:
        return cls(name, stat.S_IFDIR | 0o755)

    @classmethod
    def file(cls, name: str, data: bytes, perm: int = 0o755) -> Entry:
        return cls(name, stat.S_IFREG | perm, data)

    @classmethod
    def symlink(cls, name: str, target: str) -> Entry:
        return cls(name, stat.S_IFLNK | 0o777, target.encode())

    @classmethod
    def char_device(cls, name: str, major: int, minor: int) -> Entry:
        return cls(name, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _header(
    ino: int, mode: int, nlink: int, size: int, namesize: int, rdev: tuple[int, int] = (0, 0)
) -> bytes:
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, *rdev, namesize, 0)
    return MAGIC + b"".join(b"%08X" % value for value in fields)


def _record(ino: int, entry: Entry) -> bytes:
    name = entry.name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    head = _header(ino, entry.mode, nlink, len(entry.data), len(name), entry.rdev)
    return _pad4(head + name) + _pad4(entry.data)


def newc(entries: list[Entry]) -> bytes:
    """The newc archive of ``entries``, in order, ending with the trailer.

    ValueError: a name that is empty, absolute, or the trailer's.
    """
    out = []
    for ino, entry in enumerate(entries, 1):
        if not entry.name or entry.name.startswith("/") or entry.name == TRAILER:
            raise ValueError(f"initramfs: bad entry name {entry.name!r}")
        out.append(_record(ino, entry))
    trailer = TRAILER.encode() + b"\0"
    out.append(_pad4(_header(0, 0, 1, 0, len(trailer)) + trailer))
    return b"".join(out)
