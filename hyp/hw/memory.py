"""DRAM: one sparse memfd, addressed by physical address.

An untouched GiB costs nothing: pages exist only once written. Every core
maps the same memory, and the host kernel model can mmap the same file, so
all views share the same physical pages.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct


class FileMapping(mmap.mmap):
    """``mmap.mmap(fd, length, flags, prot, offset=offset)`` that remembers
    ``backing``, (fd, offset): another process mapping the same file there
    shares its pages (a native VMM's view of what the model maps)."""

    def __new__(cls, fd: int, length: int, flags: int, prot: int, offset: int = 0):
        self = super().__new__(cls, fd, length, flags, prot, offset=offset)
        self.backing = (fd, offset)
        return self


class Dram:
    """``size`` bytes of DRAM at physical address ``base``."""

    def __init__(self, base: int, size: int):
        self.base, self.size = base, size
        self.fd = os.memfd_create("gunyah-sim-dram", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        self.mem = mmap.mmap(self.fd, size)
        self._anchor = ctypes.c_char.from_buffer(self.mem)
        self.address = ctypes.addressof(self._anchor)

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, pa: int, size: int = 1) -> bool:
        return self.base <= pa and pa + size <= self.end

    def _offset(self, pa: int, size: int) -> int:
        if not self.contains(pa, size):
            raise ValueError(f"PA {pa:#x}+{size:#x} is outside DRAM")
        return pa - self.base

    def read(self, pa: int, size: int) -> bytes:
        off = self._offset(pa, size)
        return self.mem[off : off + size]

    def write(self, pa: int, data: bytes) -> None:
        off = self._offset(pa, len(data))
        self.mem[off : off + len(data)] = data

    def read_u64(self, pa: int) -> int:
        return struct.unpack_from("<Q", self.mem, self._offset(pa, 8))[0]

    def write_u64(self, pa: int, value: int) -> None:
        struct.pack_into("<Q", self.mem, self._offset(pa, 8), value)

    def map(self, pa: int, length: int, flags: int, prot: int) -> FileMapping:
        """A new mapping of ``length`` bytes at ``pa`` (``mmap`` flags and prot)."""
        return FileMapping(self.fd, length, flags, prot, offset=self._offset(pa, length))

    def zero(self, pa: int, size: int) -> None:
        """Zero a range; whole pages go back to the file and cost nothing again."""
        off = self._offset(pa, size)
        if off % mmap.PAGESIZE == 0 and size % mmap.PAGESIZE == 0:
            self.mem.madvise(mmap.MADV_REMOVE, off, size)
        else:
            self.mem[off : off + size] = bytes(size)

    @property
    def mapped(self) -> bool:
        """The process still maps this DRAM at ``address`` (until :meth:`close`)."""
        return not self.mem.closed

    def close(self) -> None:
        del self._anchor
        self.mem.close()
        os.close(self.fd)
