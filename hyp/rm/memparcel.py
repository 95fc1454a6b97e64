"""Memory parcels (the RM's src/memparcel): memory one VM gives another.

MEM_LEND (one ACL entry: the owner loses access) and MEM_SHARE (several:
the owner keeps it) describe a parcel by an ACL of VMIDs with rights, an
SGL of physical ranges and attributes; MEM_APPEND adds SGL entries while
the APPEND flag is set; MEM_RECLAIM gives a parcel back to its owner if no
VM uses it. The RM enforces a parcel when a VM takes it (CONFIG_IMAGE of a
DTB parcel): at VM_INIT its pages move from the owner's memory extent to the
VM's by ``memextent_donate`` and are mapped into the VM with
``addrspace_map``. A parcel a VM took ends with the VM's reset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from hyp.rm.rm_types import MEM_HANDLE_INVALID, MsgId, RmError, require

MEM_TYPE_NORMAL, MEM_TYPE_IO = 0, 1
FLAG_SANITIZE, FLAG_APPEND = 1, 2
APPEND_END = 1
RIGHT_X, RIGHT_W, RIGHT_R = 1, 2, 4
MAX_ACL = 255
PAGE = 0x1000

_HDR = struct.Struct("<BBBBI")
_COUNT = struct.Struct("<HH")
_ACL = struct.Struct("<HBB")
_SGL = struct.Struct("<QQ")
_ATTR = struct.Struct("<HH")
_HANDLE_FLAGS = struct.Struct("<IB3x")


@dataclass
class Parcel:
    handle: int
    owner: int
    lend: bool
    mem_type: int
    label: int
    acl: list[tuple[int, int]]
    sgl: list[tuple[int, int]]
    complete: bool
    users: set = field(default_factory=set)

    @property
    def size(self) -> int:
        return sum(size for _, size in self.sgl)

    def rights(self, vmid: int) -> int | None:
        return next((r for v, r in self.acl if v == vmid), None)


def _section(payload: bytes, offset: int, item: struct.Struct) -> tuple[list[tuple], int]:
    require(offset + _COUNT.size <= len(payload), RmError.MSG_INVALID, "truncated")
    count, _ = _COUNT.unpack_from(payload, offset)
    offset += _COUNT.size
    end = offset + count * item.size
    require(end <= len(payload), RmError.MSG_INVALID, "truncated section")
    return [item.unpack_from(payload, offset + i * item.size) for i in range(count)], end


def _check_sgl(sgl: list[tuple[int, int]]) -> None:
    for base, size in sgl:
        require(size > 0 and base % PAGE == 0 and size % PAGE == 0, RmError.ARGUMENT_INVALID)


class Memparcels:
    """Every parcel the RM knows, by handle."""

    def __init__(self, rm):
        self.rm = rm
        self.parcels: dict[int, Parcel] = {}
        self._next = 1
        rm.handlers[MsgId.MEM_LEND] = lambda vmid, p: self.lend_or_share(vmid, p, lend=True)
        rm.handlers[MsgId.MEM_SHARE] = lambda vmid, p: self.lend_or_share(vmid, p, lend=False)
        rm.handlers[MsgId.MEM_APPEND] = self.append
        rm.handlers[MsgId.MEM_RECLAIM] = self.reclaim

    def lend_or_share(self, vmid: int, payload: bytes, lend: bool) -> bytes:
        """MEM_LEND / MEM_SHARE; replies with the new parcel's handle."""
        require(len(payload) >= _HDR.size, RmError.MSG_INVALID, "truncated")
        mem_type, _, flags, _, label = _HDR.unpack_from(payload)
        require(mem_type in (MEM_TYPE_NORMAL, MEM_TYPE_IO), RmError.ARGUMENT_INVALID, "mem_type")
        require(flags & ~(FLAG_SANITIZE | FLAG_APPEND) == 0, RmError.ARGUMENT_INVALID, "flags")
        acl, offset = _section(payload, _HDR.size, _ACL)
        sgl, offset = _section(payload, offset, _SGL)
        _, offset = _section(payload, offset, _ATTR)
        require(offset == len(payload), RmError.MSG_INVALID, "trailing bytes")
        require(0 < len(acl) <= MAX_ACL, RmError.ARGUMENT_INVALID, "acl")
        require(len(acl) == 1 if lend else len(acl) >= 2, RmError.ARGUMENT_INVALID, "acl size")
        require(all(r & ~7 == 0 and r for _, r, _ in acl), RmError.ARGUMENT_INVALID, "rights")
        require(sgl or flags & FLAG_APPEND, RmError.ARGUMENT_INVALID, "empty sgl")
        _check_sgl(sgl)
        self._check_owned(vmid, sgl)
        handle, self._next = self._next, self._next + 1
        self.parcels[handle] = Parcel(
            handle,
            vmid,
            lend,
            mem_type,
            label,
            [(v, r) for v, r, _ in acl],
            list(sgl),
            complete=not flags & FLAG_APPEND,
        )
        return struct.pack("<I", handle)

    def _check_owned(self, vmid: int, sgl: list[tuple[int, int]]) -> None:
        """Pages must be the caller's and in no other parcel."""
        for base, size in sgl:
            require(self.rm.owns(vmid, base, size), RmError.MEM_INVALID, f"{base:#x} not owned")
            for parcel in self.parcels.values():
                for b, s in parcel.sgl:
                    require(base + size <= b or b + s <= base, RmError.MEM_INUSE, "overlap")

    def get(self, vmid: int, handle: int) -> Parcel:
        parcel = self.parcels.get(handle)
        require(parcel is not None and handle != MEM_HANDLE_INVALID, RmError.HANDLE_INVALID)
        require(parcel.owner == vmid, RmError.DENIED, "not the parcel's owner")
        return parcel

    def append(self, vmid: int, payload: bytes) -> bytes:
        require(len(payload) >= _HANDLE_FLAGS.size, RmError.MSG_INVALID, "truncated")
        handle, flags = _HANDLE_FLAGS.unpack_from(payload)
        parcel = self.get(vmid, handle)
        require(not parcel.complete, RmError.ARGUMENT_INVALID, "parcel is complete")
        require(flags & ~APPEND_END == 0, RmError.ARGUMENT_INVALID, "flags")
        sgl, offset = _section(payload, _HANDLE_FLAGS.size, _SGL)
        require(offset == len(payload), RmError.MSG_INVALID, "trailing bytes")
        _check_sgl(sgl)
        self._check_owned(vmid, sgl)
        parcel.sgl += sgl
        parcel.complete = bool(flags & APPEND_END)
        return b""

    def reclaim(self, vmid: int, payload: bytes) -> bytes:
        require(len(payload) == _HANDLE_FLAGS.size, RmError.MSG_INVALID, "size")
        handle, flags = _HANDLE_FLAGS.unpack(payload)
        require(flags & ~FLAG_SANITIZE == 0, RmError.ARGUMENT_INVALID, "flags")
        parcel = self.get(vmid, handle)
        require(not parcel.users, RmError.MEM_INUSE, "parcel is in use")
        del self.parcels[handle]
        return b""

    def release_from(self, vm, keep: bool = False) -> None:
        """A VM going away ends every parcel it took (its image parcel, taken at
        VM_CONFIG_IMAGE): its pages went back with the VM's reset, or earlier to
        the host by hypercall, so no owner reclaims it with MEM_RECLAIM. With
        ``keep`` (an image the DT placed, which the host never pages) the parcels
        go back to their owner instead, who reclaims them."""
        for handle in [h for h, p in self.parcels.items() if vm.vmid in p.users]:
            if keep:
                self.parcels[handle].users.discard(vm.vmid)
            else:
                del self.parcels[handle]
