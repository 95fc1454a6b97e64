"""First-class objects and their rights (hyp/core/object_standard, cspace rights).

Every object is created by a partition in the INIT state, configured, then
activated; configuration hypercalls require INIT, use requires ACTIVE.
Destroying an object (the last capability deleted) deactivates it first.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from hyp.gunyah.errors import Error, HypError


class ObjectType(IntEnum):
    PARTITION = 1
    CSPACE = 2
    ADDRSPACE = 3
    MEMEXTENT = 4
    THREAD = 5
    DOORBELL = 6
    MSGQUEUE = 7
    WATCHDOG = 9
    VIC = 10
    VPM_GROUP = 11


class ObjectState(IntEnum):
    INIT = 0
    ACTIVE = 1
    DESTROYED = 2


ACTIVATE = 1 << 31


class PartitionRights(IntFlag):
    OBJECT_CREATE = 1 << 0
    DONATE = 1 << 1
    ACTIVATE = ACTIVATE


class CspaceRights(IntFlag):
    CAP_CREATE = 1 << 0
    CAP_DELETE = 1 << 1
    CAP_COPY = 1 << 2
    ATTACH = 1 << 3
    CAP_REVOKE = 1 << 4
    ACTIVATE = ACTIVATE


class AddrspaceRights(IntFlag):
    ATTACH = 1 << 0
    MAP = 1 << 1
    LOOKUP = 1 << 2
    ADD_VMMIO_RANGE = 1 << 3
    ACTIVATE = ACTIVATE


class MemextentRights(IntFlag):
    MAP = 1 << 0
    DERIVE = 1 << 1
    ATTACH = 1 << 2
    LOOKUP = 1 << 3
    DONATE = 1 << 4
    ACTIVATE = ACTIVATE


class ThreadRights(IntFlag):
    POWER = 1 << 0
    AFFINITY = 1 << 1
    PRIORITY = 1 << 2
    TIMESLICE = 1 << 3
    YIELD_TO = 1 << 4
    BIND_VIRQ = 1 << 5
    STATE = 1 << 6
    LIFECYCLE = 1 << 7
    WRITE_CONTEXT = 1 << 8
    ACTIVATE = ACTIVATE


class DoorbellRights(IntFlag):
    SEND = 1 << 0
    RECEIVE = 1 << 1
    BIND = 1 << 2
    ACTIVATE = ACTIVATE


class MsgqueueRights(IntFlag):
    SEND = 1 << 0
    RECEIVE = 1 << 1
    BIND_SEND = 1 << 2
    BIND_RECEIVE = 1 << 3
    ACTIVATE = ACTIVATE


class VicRights(IntFlag):
    BIND_SOURCE = 1 << 0
    ATTACH_VCPU = 1 << 1
    ATTACH_VDEVICE = 1 << 2
    ACTIVATE = ACTIVATE


ALL_RIGHTS = 0xFFFF_FFFF


class Object:
    """Base of every first-class object: type, state and its creating partition."""

    TYPE: ObjectType

    def __init__(self, hyp, partition):
        self.hyp, self.partition = hyp, partition
        self.state = ObjectState.INIT
        self.cap_refs = 0

    def require(self, state: ObjectState) -> None:
        if self.state != state:
            raise HypError(Error.OBJECT_STATE, f"{self.TYPE.name} is {self.state.name}")

    def activate(self) -> None:
        """Check the configuration and go ACTIVE; OBJECT_STATE if not INIT."""
        self.require(ObjectState.INIT)
        self.on_activate()
        self.state = ObjectState.ACTIVE

    def on_activate(self) -> None:
        """Subclasses check their configuration here (OBJECT_CONFIG if incomplete)."""

    def destroy(self) -> None:
        """Release what the object holds; called when its last cap goes."""
        if self.state != ObjectState.DESTROYED:
            self.on_destroy()
            self.state = ObjectState.DESTROYED

    def on_destroy(self) -> None:
        """Subclasses release resources here."""
