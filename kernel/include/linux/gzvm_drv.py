"""What the GenieZone driver knows of itself and of EL2 (include/linux/soc/mediatek/gzvm_drv.h).

The driver's limits (spec §3.1), its version sent with PROBE, the
GenieZone status codes a hypercall returns in x0 and ``gzvm_err_to_errno``,
the one place where that error space ends (spec §2): every caller gets an
errno from it and some replace it, as the spec lists.
"""

from __future__ import annotations

import errno
from enum import IntEnum

GZVM_DRV_MAJOR_VERSION, GZVM_DRV_MINOR_VERSION, GZVM_DRV_SUB_VERSION = 16, 0, 0

GZVM_MAX_VCPUS = 8
GZVM_MAX_MEM_REGION = 10
GZVM_MEM_MAX_NR_PAGES = (1 << 31) - 1
INVALID_VM_ID = 0xFFFF
GZVM_VCPU_MMAP_SIZE = 2  # pages: struct gzvm_vcpu_run, then struct gzvm_vcpu_hwstate
GZVM_BLOCK_BASED_DEMAND_PAGE_SIZE = 2 << 20  # PMD_SIZE
GZVM_DESTROY_BATCH_PAGES = 128  # v13's default, sent with DESTROY_VM
MEMREGION_BUFFER_PAGES = 2  # struct gzvm_memory_region_ranges and its constituents
CONFIG_ARM64_PA_BITS = 48  # what CHECK_EXTENSION(GZVM_CAP_VM_GPA_SIZE) answers


class GzvmError(IntEnum):
    """GenieZone's status codes in x0 (signed)."""

    NO_ERROR = 0
    ERR_NO_MEMORY = -5
    ERR_INVALID_ARGS = -8
    ERR_NOT_SUPPORTED = -24
    ERR_NOT_IMPLEMENTED = -27
    ERR_BUSY = -33
    ERR_FAULT = -40


_ERRNO = {
    GzvmError.NO_ERROR: 0,
    GzvmError.ERR_NO_MEMORY: errno.ENOMEM,
    GzvmError.ERR_INVALID_ARGS: errno.EINVAL,
    GzvmError.ERR_NOT_SUPPORTED: errno.EOPNOTSUPP,
    GzvmError.ERR_NOT_IMPLEMENTED: errno.EOPNOTSUPP,
    GzvmError.ERR_BUSY: errno.EAGAIN,
    GzvmError.ERR_FAULT: errno.EFAULT,
}


def gzvm_err_to_errno(err: int) -> int:
    """A GenieZone status as a positive errno (0 for NO_ERROR); EINVAL for any other value."""
    return _ERRNO.get(err, errno.EINVAL)


class GzvmDemandPagingMode(IntEnum):
    """``enum gzvm_demand_paging_mode``: how a VM's memory reaches EL2."""

    GZVM_FULLY_POPULATED = 0
    GZVM_DEMAND_PAGING = 1
