"""The Gunyah platform driver (drivers/virt/gunyah/gunyah.c).

Probe: the vendor-hypervisor UID must be Gunyah's and hyp_identify must
report API version 1, else ENODEV.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

GUNYAH_API_V1 = 1


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
