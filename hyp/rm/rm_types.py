"""Numbers of the RM interface (the Resource Manager's include/rm_types.h and *_message.h).

The second of the three error spaces: the RM answers with :class:`RmError`
in the first word of every reply.
"""

from __future__ import annotations

from enum import IntEnum


class RmError(IntEnum):
    OK = 0x0
    UNIMPLEMENTED = 0xFFFF_FFFF
    NOMEM = 0x1
    NORESOURCE = 0x2
    DENIED = 0x3
    MSG_INVALID = 0x4
    BUSY = 0x5
    ARGUMENT_INVALID = 0x6
    HANDLE_INVALID = 0x7
    VALIDATE_FAILED = 0x8
    MAP_FAILED = 0x9
    MEM_INVALID = 0xA
    MEM_INUSE = 0xB
    MEM_RELEASED = 0xC
    VMID_INVALID = 0xD
    LOOKUP_FAILED = 0xE
    IRQ_INVALID = 0xF
    IRQ_INUSE = 0x10
    IRQ_RELEASED = 0x11
    IN_USE = 0x12
    IRQ_NOT_MAPPED = 0x13
    VM_STATE = 0x14


class RmFailure(Exception):
    """A request the RM refuses; the RPC layer turns it into the reply's error word."""

    def __init__(self, error: RmError, why: str = ""):
        super().__init__(f"{error.name}{': ' + why if why else ''}")
        self.error = error


def require(condition: bool, error: RmError, why: str = "") -> None:
    if not condition:
        raise RmFailure(error, why)


class MsgId(IntEnum):
    VM_ALLOCATE = 0x5600_0001
    VM_DEALLOCATE = 0x5600_0002
    VM_START = 0x5600_0004
    VM_STOP = 0x5600_0005
    VM_RESET = 0x5600_0006
    VM_CONFIG_IMAGE = 0x5600_0009
    VM_AUTH_IMAGE = 0x5600_000A
    VM_INIT = 0x5600_000B
    VM_SET_BOOT_CONTEXT = 0x5600_000C
    VM_SET_CONTEXT = 0x5600_0031  # the boot context as android15-6.6 sends it
    VM_GET_STATE = 0x5600_0017
    VM_GET_HYP_RESOURCES = 0x5600_0020
    VM_GET_VMID = 0x5600_0024
    VM_SET_FIRMWARE_MEM = 0x5600_0032
    VM_SET_DEMAND_PAGING = 0x5600_0033
    VM_SET_ADDRESS_LAYOUT = 0x5600_0034
    VM_EXIT = 0x5600_0085
    MEM_ACCEPT = 0x5100_0011
    MEM_LEND = 0x5100_0012
    MEM_SHARE = 0x5100_0013
    MEM_RELEASE = 0x5100_0014
    MEM_RECLAIM = 0x5100_0015
    MEM_APPEND = 0x5100_0018
    NOTIFY_VM_EXITED = 0x5610_0001
    NOTIFY_VM_SHUTDOWN = 0x5610_0002
    NOTIFY_VM_STATUS = 0x5610_0008


class VmState(IntEnum):
    NONE = 0
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


class OsState(IntEnum):
    NONE = 0
    EARLY_BOOT = 1
    BOOT = 2
    INIT = 3
    RUN = 4
    SHUTDOWN = 5
    HALTED = 6
    CRASHED = 7


class ExitType(IntEnum):
    VM_EXIT = 0
    PLATFORM_OFF = 1
    PLATFORM_RESET = 2
    PSCI_SYSTEM_RESET2 = 3
    WATCHDOG_BITE = 4
    SOFTWARE_ERROR = 5
    ASYNC_HW_ERROR = 6
    VM_STOP_FORCED = 7


class ExitCode(IntEnum):
    NORMAL = 0
    SOFTWARE_ERROR = 1
    UNKNOWN_ERROR = 2
    BUS_ERROR = 3
    DEVICE_ERROR = 4


class ResourceType(IntEnum):
    DOORBELL_SRC = 0
    DOORBELL = 1
    MSG_QUEUE_SEND = 2
    MSG_QUEUE_RECV = 3
    VIRTUAL_CPU = 4
    VIRTUAL_PM = 5
    VIRTIO_MMIO = 6
    VRTC = 7
    WATCHDOG = 8
    MEM_EXTENT = 9
    ADDR_SPACE = 10


class AuthMech(IntEnum):
    NONE = 0
    PLATFORM = 1
    ANDROID = 2


VMID_HYP, VMID_HLOS, VMID_RM = 0x0, 0x3, 0xFF
DYNAMIC_VMIDS = range(0x80, 0xC0)
VMID_ANY, VMID_PEER_DEFAULT = 0xFFFE, 0xFFFF
MEM_HANDLE_INVALID = 0xFFFF_FFFF
STOP_FLAG_FORCE = 1
EXIT_FLAG_RESTART = 1
