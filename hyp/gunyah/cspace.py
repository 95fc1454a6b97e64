"""Capability spaces (hyp/core/cspace_twolevel): capability ids with rights.

A cspace maps capability ids to (object, rights). Every object access from
a hypercall goes through :meth:`Cspace.lookup`, which fails with
CSPACE_CAP_NULL (no such cap), CSPACE_CAP_REVOKED (its object is gone),
CSPACE_WRONG_OBJECT_TYPE or CSPACE_INSUFFICIENT_RIGHTS. An object is
destroyed when the last capability to it is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyp.gunyah.errors import Error, HypError, check
from hyp.gunyah.object import Object, ObjectState, ObjectType

CAPID_BASE = 0x1_0000
DEFAULT_MAX_CAPS = 1024


@dataclass
class Cap:
    obj: Object
    rights: int


class Cspace(Object):
    TYPE = ObjectType.CSPACE

    def __init__(self, hyp, partition, max_caps: int = DEFAULT_MAX_CAPS):
        super().__init__(hyp, partition)
        self.max_caps = max_caps
        self.caps: dict[int, Cap] = {}
        self._next = CAPID_BASE

    def configure(self, max_caps: int) -> None:
        self.require(ObjectState.INIT)
        check(0 < max_caps <= 1 << 16, Error.ARGUMENT_INVALID, "max_caps")
        self.max_caps = max_caps

    def create(self, obj: Object, rights: int) -> int:
        """A new capability to ``obj``; CSPACE_FULL when the cspace is full."""
        check(len(self.caps) < self.max_caps, Error.CSPACE_FULL)
        capid, self._next = self._next, self._next + 1
        self.caps[capid] = Cap(obj, rights)
        obj.cap_refs += 1
        return capid

    def lookup(self, capid: int, type_: ObjectType | None, rights: int = 0, active=True):
        """The object behind ``capid`` if it has ``type_`` and all ``rights``.

        ``active``: True requires an ACTIVE object, False an INIT one, None any.
        """
        cap = self.caps.get(capid)
        if cap is None:
            raise HypError(Error.CSPACE_CAP_NULL, f"cap {capid:#x}")
        obj = cap.obj
        # Each check is an if, not check(): lookups are the hottest call of all.
        if obj.state == ObjectState.DESTROYED:
            raise HypError(Error.CSPACE_CAP_REVOKED)
        if type_ is not None and obj.TYPE != type_:
            raise HypError(Error.CSPACE_WRONG_OBJECT_TYPE)
        rights = int(rights)  # an IntFlag's & runs in Python, an int's does not
        if int(cap.rights) & rights != rights:
            raise HypError(Error.CSPACE_INSUFFICIENT_RIGHTS)
        if active is not None:
            want = ObjectState.ACTIVE if active else ObjectState.INIT
            if obj.state != want:  # the message only when it is raised: lookups are hot
                raise HypError(Error.OBJECT_STATE, f"{obj.TYPE.name} not {want.name}")
        return obj

    def delete(self, capid: int) -> None:
        """Delete a capability; the object goes with its last one."""
        cap = self.caps.pop(capid, None)
        if cap is None:
            raise HypError(Error.CSPACE_CAP_NULL)
        cap.obj.cap_refs -= 1
        if cap.obj.cap_refs == 0:
            cap.obj.destroy()

    def copy_to(self, capid: int, dest: Cspace, rights_mask: int) -> int:
        cap = self.caps.get(capid)
        if cap is None:
            raise HypError(Error.CSPACE_CAP_NULL)
        check(cap.obj.state != ObjectState.DESTROYED, Error.CSPACE_CAP_REVOKED)
        return dest.create(cap.obj, cap.rights & rights_mask)

    def on_destroy(self) -> None:
        for capid in list(self.caps):
            self.delete(capid)
