"""What the driver shares about the Resource Manager (drivers/virt/gunyah/rsc_mgr.h).

The RM's VM states (``vm_status`` mirrors them), its exit types, the ACL
rights of a memory parcel and the parcel's memory type.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class GunyahRmVmStatus(IntEnum):
    """``enum gunyah_rm_vm_status``: a VM's state in the RM (NOTIFY_VM_STATUS)."""

    NO_STATE = 0
    INIT = 1
    READY = 2
    RUNNING = 3
    PAUSED = 4
    LOAD = 5
    AUTH = 6
    INIT_FAILED = 8
    EXITED = 9
    RESETTING = 10
    RESET = 11


class GunyahRmVmAuthMechanism(IntEnum):
    NONE = 0
    ANDROID_PVM = 1


class GunyahRmAcl(IntFlag):
    """Rights of one VM in a memory parcel's ACL."""

    X = 1
    W = 2
    R = 4
    RWX = R | W | X


GUNYAH_RM_MEM_TYPE_NORMAL = 0
GUNYAH_RM_VM_STOP_FLAG_FORCE_STOP = 1
GUNYAH_RM_VM_STOP_REASON_FORCE_STOP = 3
