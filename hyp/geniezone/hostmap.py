"""Taking a page out of a host mapping that already exists (the host's stage 2
losing a page that became a protected VM's).

On a device EL2 unmaps the page from the host's stage 2 and a later host
access faults. The host's mappings here are Python mmaps of the DRAM file,
which cannot fault, so the page of the mapping is replaced in place
(``mmap(MAP_FIXED)``) by anonymous zeroed memory: the host reads zeros,
its writes go nowhere the guest sees, and the guest's data never shows.
"""

from __future__ import annotations

import ctypes
import mmap
import os

from hyp.hw.board import PAGE_SIZE

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
MAP_FIXED = 0x10
MAP_FAILED = ctypes.c_void_p(-1).value
# CPython's mmap object: PyObject_HEAD (refcount, type), then the data pointer.
_DATA_OFFSET = 2 * ctypes.sizeof(ctypes.c_void_p)


def zero_page(mapping: mmap.mmap, offset: int, prot: int) -> None:
    """Replace the page at ``offset`` of ``mapping`` by a zeroed anonymous page."""
    if mapping.closed:
        return
    base = ctypes.c_void_p.from_address(id(mapping) + _DATA_OFFSET).value
    flags = MAP_FIXED | mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    address = base + offset - offset % PAGE_SIZE
    if _libc.mmap(address, PAGE_SIZE, prot, flags, -1, 0) == MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def restore_page(mapping: mmap.mmap, offset: int, prot: int, flags: int, fd: int, pos: int) -> None:
    """Put the page at ``offset`` of ``mapping`` back on page ``pos`` of the file
    ``fd`` (mmap ``flags``): the host's stage 2 has the page again."""
    if mapping.closed:
        return
    base = ctypes.c_void_p.from_address(id(mapping) + _DATA_OFFSET).value
    address = base + offset - offset % PAGE_SIZE
    if _libc.mmap(address, PAGE_SIZE, prot, MAP_FIXED | flags, fd, pos) == MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
