"""Hypervisor-facing types of the driver (include/linux/gunyah.h, arch/arm64/include/asm/gunyah.h).

What the driver knows of Gunyah itself: the error values a hypercall
returns and their errno (``gunyah_error_remap``: where the first error
space ends), the resource types the RM hands out, the vCPU states
``vcpu_run`` returns with the resume actions it takes, and the encodings
of ``memextent_donate`` and ``addrspace_map``.
"""

from __future__ import annotations

import errno
from enum import IntEnum, IntFlag

GUNYAH_VMID_INVAL = 0xFFFF
GUNYAH_CAPID_INVAL = (1 << 64) - 1
GUNYAH_MEM_HANDLE_INVAL = 0xFFFF_FFFF


class GunyahError(IntEnum):
    """Hypercall results as Linux names them (values of hyp/interfaces/error)."""

    OK = 0
    UNIMPLEMENTED = -1
    RETRY = -2
    ARG_INVAL = 1
    ARG_SIZE = 2
    ARG_ALIGN = 3
    NOMEM = 10
    ADDR_OVFL = 20
    ADDR_UNFL = 21
    ADDR_INVAL = 22
    DENIED = 30
    BUSY = 31
    IDLE = 32
    IRQ_BOUND = 40
    IRQ_UNBOUND = 41
    CSPACE_CAP_NULL = 50
    CSPACE_CAP_REVOKED = 51
    CSPACE_WRONG_OBJ_TYPE = 52
    CSPACE_INSUF_RIGHTS = 53
    CSPACE_FULL = 54
    MSGQUEUE_EMPTY = 60
    MSGQUEUE_FULL = 61


_REMAP = {
    GunyahError.OK: 0,
    GunyahError.UNIMPLEMENTED: errno.EOPNOTSUPP,
    GunyahError.RETRY: errno.EAGAIN,
    GunyahError.NOMEM: errno.ENOMEM,
    GunyahError.DENIED: errno.EACCES,
    GunyahError.BUSY: errno.EBUSY,
    GunyahError.IDLE: errno.EBUSY,
    GunyahError.IRQ_BOUND: errno.EIO,
    GunyahError.IRQ_UNBOUND: errno.EIO,
    GunyahError.CSPACE_CAP_NULL: errno.EACCES,
    GunyahError.CSPACE_CAP_REVOKED: errno.EACCES,
    GunyahError.CSPACE_WRONG_OBJ_TYPE: errno.EACCES,
    GunyahError.CSPACE_INSUF_RIGHTS: errno.EACCES,
    GunyahError.CSPACE_FULL: errno.EBUSY,
    GunyahError.MSGQUEUE_EMPTY: errno.EIO,
    GunyahError.MSGQUEUE_FULL: errno.EIO,
}


def gunyah_error_remap(error: int) -> int:
    """A Gunyah error as a (positive) errno; every other value is EINVAL."""
    return _REMAP.get(error, errno.EINVAL)


class GunyahResourceType(IntEnum):
    """``enum gunyah_resource_type``: the RM's numbering of hypervisor resources."""

    BELL_TX = 0
    BELL_RX = 1
    MSGQ_TX = 2
    MSGQ_RX = 3
    VCPU = 4
    MEM_EXTENT = 9
    ADDR_SPACE = 10


class GunyahVcpuState(IntEnum):
    """``enum gunyah_vcpu_state``: what ``vcpu_run`` returns in X1."""

    READY = 0
    EXPECTS_WAKEUP = 1
    POWERED_OFF = 2
    BLOCKED = 3
    ADDRSPACE_VMMIO_READ = 4
    ADDRSPACE_VMMIO_WRITE = 5
    FAULT = 6
    ADDRSPACE_PAGE_FAULT = 7


class GunyahVcpuResumeAction(IntEnum):
    """resume_data_1 of ``vcpu_run`` after a VMMIO state."""

    EMULATE = 0
    RETRY = 1
    FAULT = 2


class GunyahMemextentDonateType(IntEnum):
    TO_CHILD = 0
    TO_PARENT = 1
    TO_SIBLING = 2
    TO_PROTECTED = 3
    FROM_PROTECTED = 4


class GunyahAddrspaceMapFlag(IntFlag):
    PARTIAL = 1 << 0
    PRIVATE = 1 << 1
    VMMIO = 1 << 2
    NOSYNC = 1 << 31


class GunyahPagetableAccess(IntFlag):
    NONE = 0
    X = 1
    W = 2
    R = 4
    RX = R | X
    RW = R | W
    RWX = R | W | X


GUNYAH_MEMTYPE_NORMAL_WB = 0xF


def gunyah_map_attrs(access: GunyahPagetableAccess) -> int:
    """``addrspace_map`` attributes: write-back memory, the same rights at EL1 and EL0."""
    return GUNYAH_MEMTYPE_NORMAL_WB << 16 | access << 4 | access
