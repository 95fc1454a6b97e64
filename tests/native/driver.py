"""driver.c's script language on a Host: the same calls through the Python ABI.

:func:`run` takes the script driver.c reads and returns the lines it would
print, so one script checks a native program and a Python VMM alike.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct


class Driver:
    def __init__(self, host, device: str = "/dev/gunyah"):
        self.host, self.device = host, device
        self.slots: dict[str, int] = {}
        self.maps: dict[str, object] = {}
        self.keep: list = []

    def value(self, text: str, aux: int) -> int:
        if text[0] == "$":
            return self.slots[text[1:]]
        if text[0] == "@":
            return self.host.user_address(self.maps[text[1:]])
        if text == "^":
            return aux
        return int(text, 0)

    def fields(self, spec: str, aux: int) -> bytes:
        out = b""
        for field in spec.split(","):
            size, text = field.split("=")
            out += (self.value(text, aux) & ((1 << (8 * int(size))) - 1)).to_bytes(
                int(size), "little"
            )
        return out

    def buffer(self, data: bytes) -> int:
        buf = ctypes.create_string_buffer(data, 4096)
        self.keep.append(buf)
        return ctypes.addressof(buf)

    def arg(self, text: str) -> int:
        if not text.startswith("s:"):
            return self.value(text, 0)
        main, _, extra = text[2:].partition("|")
        aux = self.buffer(self.fields(extra, 0)) if extra else 0
        return self.buffer(self.fields(main, aux))

    def command(self, line: str) -> str | None:
        words = line.split()
        if not words or words[0].startswith("#"):
            return None
        cmd, args = words[0], words[1:]
        try:
            result = getattr(self, "do_" + cmd.replace("-", "_"))(*args)
        except OSError as e:
            return f"{cmd}: -1 {e.errno}"
        return None if result is None else f"{cmd}: {result}"

    def do_open(self, name, cloexec=""):
        flags = os.O_RDWR | (os.O_CLOEXEC if cloexec else 0)
        self.slots[name] = self.host.open(self.device, flags)
        return 0

    def do_ioctl(self, name, request, arg, new=None):
        ret = self.host.ioctl(self.slots[name], int(request, 0), self.arg(arg))
        if new is None:
            return ret
        self.slots[new] = ret
        return "fd"

    def do_mmap(self, name, length, offset, mapping, private=""):
        flags = 2 if private else 1
        self.maps[mapping] = self.host.mmap(
            self.slots[name], int(length, 0), 3, flags, int(offset, 0)
        )
        return 0

    def do_anon(self, mapping, length):
        self.maps[mapping] = self.host.mmap(-1, int(length, 0), 3, 0x22)
        return 0

    def do_munmap(self, mapping):
        self.host.munmap(self.maps.pop(mapping))
        return 0

    def do_close(self, name):
        self.host.close(self.slots[name])
        return 0

    def do_dup(self, name, new):
        self.slots[new] = self.host.dup(self.slots[name])
        return 0

    def do_eventfd(self, name):
        self.slots[name] = self.host.eventfd(0, os.EFD_CLOEXEC)
        return 0

    def do_poke(self, mapping, offset, value):
        struct.pack_into("<Q", self.maps[mapping], int(offset, 0), int(value, 0))

    def do_peek(self, mapping, offset):
        return hex(struct.unpack_from("<Q", self.maps[mapping], int(offset, 0))[0])

    def do_load(self, mapping, offset, path):
        with open(path, "rb") as f:
            data = f.read()
        self.maps[mapping][int(offset, 0) : int(offset, 0) + len(data)] = data

    def do_read(self, name, count):
        return int.from_bytes(self.host.read(self.slots[name], int(count)), "little")

    def do_write(self, name, value):
        self.host.write(self.slots[name], int(value, 0).to_bytes(8, "little"))
        return 0

    def do_fallocate(self, name, mode, offset, length):
        self.host.fallocate(self.slots[name], int(mode, 0), int(offset, 0), int(length, 0))
        return 0

    def do_cloexec(self, name):
        return int(not os.get_inheritable(self.slots[name]))

    def do_fork_exec(self, name):
        return int(os.get_inheritable(self.slots[name]))


def run(host, script: str, device: str = "/dev/gunyah") -> list[str]:
    """The lines driver.c prints for ``script``, from calls on ``host``."""
    driver = Driver(host, device)
    lines = [driver.command(line) for line in script.splitlines()]
    for mapping in driver.maps.values():
        driver.host.munmap(mapping)
    return [line for line in lines if line is not None]


def errno_name(line: str) -> str:
    """'ioctl: -1 14' -> 'ioctl: EFAULT'; other lines as they are."""
    head, _, rest = line.partition(": ")
    if rest.startswith("-1 "):
        number = int(rest[3:])
        name = "EOPNOTSUPP" if number == errno.EOPNOTSUPP else errno.errorcode.get(number)
        return f"{head}: {name or number}"
    return line
