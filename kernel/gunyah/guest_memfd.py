"""guest_memfd (drivers/virt/gunyah/guest_memfd.c): memory for guests as a file.

GUNYAH_CREATE_GUEST_MEM: the argument is copied (EFAULT), the size must be
page aligned (EINVAL; 0 is accepted), flags other than GHMF_CLOEXEC and
GHMF_ALLOW_HUGEPAGE are EINVAL, ``reserved`` is not checked (as in v16).
The fd is close-on-exec only with GHMF_CLOEXEC.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from kernel.fs import File, FileOperations
from kernel.uaccess import copy_from_user
from uapi.linux import gunyah as gh

PAGE_SIZE = 4096


@dataclass
class GuestMem:
    size: int
    flags: int


class GuestMemFops(FileOperations):
    """The [gh-gmem] file's operations (fallocate and mmap come with the binding work)."""


GMEM_FOPS = GuestMemFops()


def gunyah_guest_mem_create(host, arg) -> int:
    data = copy_from_user(arg, gh.ffi.sizeof("struct gunyah_create_mem_args"))
    args = gh.ffi.from_buffer("struct gunyah_create_mem_args *", bytearray(data))
    if args.size % PAGE_SIZE:
        raise OSError(errno.EINVAL, "guest_memfd size is not page aligned")
    if args.flags & ~(gh.GHMF_CLOEXEC | gh.GHMF_ALLOW_HUGEPAGE):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    file = File(GMEM_FOPS, GuestMem(args.size, args.flags), "[gh-gmem]")
    return host.fdtable.install(file, cloexec=bool(args.flags & gh.GHMF_CLOEXEC))
