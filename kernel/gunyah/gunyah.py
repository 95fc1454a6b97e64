"""The Gunyah platform driver (drivers/virt/gunyah/gunyah.c, include/linux/gunyah.h).

Probe: the vendor-hypervisor UID must be Gunyah's and hyp_identify must
report API version 1, else ENODEV. ``gunyah_error_remap`` is the kernel's
table from Gunyah errors to errno: where the first error space ends.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

GUNYAH_API_V1 = 1

_REMAP = {
    0: 0,
    -1: errno.EOPNOTSUPP,
    -2: errno.EAGAIN,
    10: errno.ENOMEM,
    30: errno.EACCES,
    31: errno.EBUSY,
    32: errno.EBUSY,
    40: errno.EIO,
    41: errno.EIO,
    50: errno.EACCES,
    51: errno.EACCES,
    52: errno.EACCES,
    53: errno.EACCES,
    54: errno.EBUSY,
    60: errno.EIO,
    61: errno.EIO,
}


def gunyah_error_remap(error: int) -> int:
    """A Gunyah error as a (positive) errno; unknown errors are EINVAL."""
    return _REMAP.get(error, errno.EINVAL)


@dataclass(frozen=True)
class GunyahInfo:
    api_version: int
    variant: int
    flags: tuple[int, int, int]


def gunyah_probe(hcall) -> GunyahInfo:
    """Identify the hypervisor; OSError(ENODEV) if it is not Gunyah API v1."""
    if not hcall.arch_is_gunyah_guest():
        raise OSError(errno.ENODEV, "not running under Gunyah")
    api_info, flags = hcall.gunyah_hypercall_hyp_identify()
    info = GunyahInfo(api_info & 0x3FFF, api_info >> 56, flags)
    if info.api_version != GUNYAH_API_V1:
        raise OSError(errno.ENODEV, f"unsupported Gunyah API version {info.api_version}")
    return info
