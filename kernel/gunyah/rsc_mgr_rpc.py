"""The Resource Manager calls (drivers/virt/gunyah/rsc_mgr_rpc.c).

One short function per RM message, each packing its request exactly as the
RM expects (little-endian, packed), unpacking the reply, and raising
:class:`~kernel.gunyah.rsc_mgr.RmError` (an OSError with the driver's
errno) on failure. Every call is error-injectable by its name.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass, field

from kernel.fault_inject import allow_error_injection
from kernel.gunyah.platform_hooks import (
    gunyah_rm_platform_post_mem_reclaim,
    gunyah_rm_platform_pre_mem_share,
)
from kernel.gunyah.rsc_mgr import GunyahRm, RmError
from kernel.gunyah.rsc_mgr_h import (
    GUNYAH_RM_MEM_TYPE_NORMAL,
    GUNYAH_RM_VM_STOP_FLAG_FORCE_STOP,
    GUNYAH_RM_VM_STOP_REASON_FORCE_STOP,
    GunyahRmAcl,
)
from kernel.include.linux.gunyah import GUNYAH_MEM_HANDLE_INVAL

VM_ALLOCATE, VM_DEALLOCATE, VM_START, VM_STOP, VM_RESET = (
    0x5600_0001,
    0x5600_0002,
    0x5600_0004,
    0x5600_0005,
    0x5600_0006,
)
VM_CONFIG_IMAGE, VM_INIT, VM_SET_BOOT_CONTEXT = 0x5600_0009, 0x5600_000B, 0x5600_000C
VM_GET_HYP_RESOURCES, VM_GET_VMID = 0x5600_0020, 0x5600_0024
# android15-6.6 sends the boot context under the id the RM reserves for VM_SET_CONTEXT
# (gunyah-ack.md §6); v16 used one of its own.
VM_SET_BOOT_CONTEXT_ANDROID = 0x5600_0031
VM_SET_FIRMWARE_MEM = 0x5600_0032
VM_SET_DEMAND_PAGING, VM_SET_ADDRESS_LAYOUT = 0x5600_0033, 0x5600_0034
MEM_LEND, MEM_SHARE, MEM_RECLAIM, MEM_APPEND = 0x5100_0012, 0x5100_0013, 0x5100_0015, 0x5100_0018
NOTIFY_VM_EXITED, NOTIFY_VM_STATUS = 0x5610_0001, 0x5610_0008

GUNYAH_RM_MEM_APPEND_REQ_FLAGS_END = 1
GUNYAH_RM_MEM_SHARE_REQ_FLAGS_APPEND = 2
GUNYAH_RM_MAX_MEM_ENTRIES = 512

RESOURCE = struct.Struct("<BBHIIQIIQQ")


@dataclass(frozen=True)
class GunyahRmHypResource:
    type: int
    partner_vmid: int
    resource_handle: int
    resource_label: int
    cap_id: int
    virq_handle: int
    virq: int
    base: int
    size: int


@dataclass
class GunyahRmMemParcel:
    """A parcel to lend or share: ACL (vmid, rights), SGL (phys, size), label."""

    acl: list[tuple[int, int]]
    mem_entries: list[tuple[int, int]]
    label: int = 0
    mem_handle: int = GUNYAH_MEM_HANDLE_INVAL
    attrs: list[tuple[int, int]] = field(default_factory=list)


def _vmid_call(rm: GunyahRm, msg_id: int, vmid: int) -> bytes:
    return rm.gunyah_rm_call(msg_id, struct.pack("<HH", vmid, 0))


@allow_error_injection
def gunyah_rm_alloc_vmid(rm: GunyahRm, vmid: int) -> int:
    """VM_ALLOCATE; 0 asks for a dynamic VMID. Returns the VMID."""
    reply = rm.gunyah_rm_call(VM_ALLOCATE, struct.pack("<HH", vmid, 0))
    if vmid:
        return vmid
    if len(reply) < 4:
        raise RmError(errno.EBADMSG, what="VM_ALLOCATE reply")
    return struct.unpack_from("<I", reply)[0] & 0xFFFF


@allow_error_injection
def gunyah_rm_dealloc_vmid(rm: GunyahRm, vmid: int) -> None:
    _vmid_call(rm, VM_DEALLOCATE, vmid)


@allow_error_injection
def gunyah_rm_vm_reset(rm: GunyahRm, vmid: int) -> None:
    _vmid_call(rm, VM_RESET, vmid)


@allow_error_injection
def gunyah_rm_vm_start(rm: GunyahRm, vmid: int) -> None:
    _vmid_call(rm, VM_START, vmid)


@allow_error_injection
def gunyah_rm_vm_stop(rm: GunyahRm, vmid: int) -> None:
    req = struct.pack(
        "<HBBI", vmid, GUNYAH_RM_VM_STOP_FLAG_FORCE_STOP, 0, GUNYAH_RM_VM_STOP_REASON_FORCE_STOP
    )
    rm.gunyah_rm_call(VM_STOP, req)


@allow_error_injection
def gunyah_rm_vm_configure(
    rm, vmid, auth, mem_handle, image_offset, image_size, dtb_offset, dtb_size
) -> None:
    req = struct.pack(
        "<HHIQQQQ", vmid, auth, mem_handle, image_offset, image_size, dtb_offset, dtb_size
    )
    rm.gunyah_rm_call(VM_CONFIG_IMAGE, req)


@allow_error_injection
def gunyah_rm_vm_init(rm: GunyahRm, vmid: int) -> None:
    _vmid_call(rm, VM_INIT, vmid)


@allow_error_injection
def gunyah_rm_vm_set_boot_context(
    rm, vmid: int, reg_set: int, reg_index: int, value: int, msg_id: int = VM_SET_BOOT_CONTEXT
) -> None:
    """One register of the boot context; ``msg_id``: the driver generation's message id."""
    rm.gunyah_rm_call(msg_id, struct.pack("<HBBIQ", vmid, reg_set, reg_index, 0, value))


@allow_error_injection
def gunyah_rm_get_hyp_resources(rm: GunyahRm, vmid: int) -> list[GunyahRmHypResource]:
    """VM_GET_HYP_RESOURCES; EBADMSG unless the reply is exactly 4 + 44n bytes."""
    reply = _vmid_call(rm, VM_GET_HYP_RESOURCES, vmid)
    if len(reply) < 4:
        raise RmError(errno.EBADMSG, what="empty VM_GET_HYP_RESOURCES reply")
    count = struct.unpack_from("<I", reply)[0]
    if len(reply) != 4 + count * RESOURCE.size:
        raise RmError(errno.EBADMSG, what="VM_GET_HYP_RESOURCES size")
    out = []
    for i in range(count):
        rtype, _, vmid_, handle, label, cap, virq_handle, virq, base, size = RESOURCE.unpack_from(
            reply, 4 + i * RESOURCE.size
        )
        out.append(
            GunyahRmHypResource(rtype, vmid_, handle, label, cap, virq_handle, virq, base, size)
        )
    return out


@allow_error_injection
def gunyah_rm_get_vmid(rm: GunyahRm) -> int:
    cached = getattr(rm, "vmid", None)
    if cached is None:
        reply = rm.gunyah_rm_call(VM_GET_VMID, b"")
        if len(reply) != 4:
            raise RmError(errno.EBADMSG, what="VM_GET_VMID reply")
        rm.vmid = cached = struct.unpack("<I", reply)[0] & 0xFFFF
    return cached


@allow_error_injection
def gunyah_rm_vm_set_firmware_mem(rm, vmid: int, parcel: GunyahRmMemParcel, offset: int, size: int):
    """VM_SET_FIRMWARE_MEM: the protected VM's firmware is ``size`` bytes at
    ``offset`` of ``parcel`` (Android drivers only)."""
    req = struct.pack("<HHIQQ", vmid, 0, parcel.mem_handle, offset, size)
    rm.gunyah_rm_call(VM_SET_FIRMWARE_MEM, req)


@allow_error_injection
def gunyah_rm_vm_set_demand_paging(rm, vmid: int, ranges: list[tuple[int, int]]) -> None:
    req = struct.pack("<HHI", vmid, 0, len(ranges))
    req += b"".join(struct.pack("<QQ", base, size) for base, size in ranges)
    rm.gunyah_rm_call(VM_SET_DEMAND_PAGING, req)


@allow_error_injection
def gunyah_rm_vm_set_address_layout(rm, vmid: int, range_id: int, base: int, size: int) -> None:
    rm.gunyah_rm_call(VM_SET_ADDRESS_LAYOUT, struct.pack("<HHIQQ", vmid, 0, range_id, base, size))


def _sgl(entries: list[tuple[int, int]]) -> bytes:
    return struct.pack("<HH", len(entries), 0) + b"".join(struct.pack("<QQ", *e) for e in entries)


@allow_error_injection
def gunyah_rm_mem_share(rm: GunyahRm, parcel: GunyahRmMemParcel) -> int:
    """MEM_LEND (one ACL entry) or MEM_SHARE; SGL beyond 512 entries goes by MEM_APPEND.

    Sets and returns ``parcel.mem_handle``; a failed append reclaims the parcel.
    """
    if not 0 < len(parcel.acl) <= 255 or not parcel.mem_entries:
        raise RmError(errno.EINVAL, what="mem_share ACL or SGL")
    gunyah_rm_platform_pre_mem_share(rm, parcel)
    try:
        return _mem_share(rm, parcel)
    except OSError:
        gunyah_rm_platform_post_mem_reclaim(rm, parcel)
        raise


def _mem_share(rm: GunyahRm, parcel: GunyahRmMemParcel) -> int:
    first = parcel.mem_entries[:GUNYAH_RM_MAX_MEM_ENTRIES]
    rest = parcel.mem_entries[GUNYAH_RM_MAX_MEM_ENTRIES:]
    flags = GUNYAH_RM_MEM_SHARE_REQ_FLAGS_APPEND if rest else 0
    req = struct.pack("<BBBBI", GUNYAH_RM_MEM_TYPE_NORMAL, 0, flags, 0, parcel.label)
    req += struct.pack("<HH", len(parcel.acl), 0)
    req += b"".join(struct.pack("<HBB", vmid, perms, 0) for vmid, perms in parcel.acl)
    req += _sgl(first) + struct.pack("<HH", 0, 0)
    msg_id = MEM_LEND if len(parcel.acl) == 1 else MEM_SHARE
    reply = rm.gunyah_rm_call(msg_id, req)
    if len(reply) != 4:
        raise RmError(errno.EBADMSG, what="mem share reply")
    parcel.mem_handle = struct.unpack("<I", reply)[0]
    while rest:
        chunk, rest = rest[:GUNYAH_RM_MAX_MEM_ENTRIES], rest[GUNYAH_RM_MAX_MEM_ENTRIES:]
        end = 0 if rest else GUNYAH_RM_MEM_APPEND_REQ_FLAGS_END
        try:
            rm.gunyah_rm_call(
                MEM_APPEND, struct.pack("<IB3x", parcel.mem_handle, end) + _sgl(chunk)
            )
        except RmError:
            _mem_reclaim(rm, parcel)  # the caller's post-reclaim hook runs once, after
            raise
    return parcel.mem_handle


@allow_error_injection
def gunyah_rm_mem_reclaim(rm: GunyahRm, parcel: GunyahRmMemParcel) -> None:
    """MEM_RECLAIM; the platform's post-reclaim hook runs only if it succeeds."""
    _mem_reclaim(rm, parcel)
    gunyah_rm_platform_post_mem_reclaim(rm, parcel)


def _mem_reclaim(rm: GunyahRm, parcel: GunyahRmMemParcel) -> None:
    rm.gunyah_rm_call(MEM_RECLAIM, struct.pack("<IB3x", parcel.mem_handle, 0))
    parcel.mem_handle = GUNYAH_MEM_HANDLE_INVAL


# What gunyah-sim run --trace shows of each call: its name and its request's
# fields, unpacked with the layouts the functions above pack.
_VMID = ("<H2x", ("vmid",))
_BOOT_CONTEXT = ("VM_SET_BOOT_CONTEXT", "<HBB4xQ", ("vmid", "reg_set", "reg_index", "value"))
_REQUESTS = {
    VM_ALLOCATE: ("VM_ALLOCATE", *_VMID),
    VM_DEALLOCATE: ("VM_DEALLOCATE", *_VMID),
    VM_START: ("VM_START", *_VMID),
    VM_STOP: ("VM_STOP", "<HBxI", ("vmid", "flags", "stop_reason")),
    VM_RESET: ("VM_RESET", *_VMID),
    VM_CONFIG_IMAGE: (
        "VM_CONFIG_IMAGE",
        "<HHIQQQQ",
        ("vmid", "auth_mech", "mem_handle", "image_offset", "image_size", "dtb_offset", "dtb_size"),
    ),
    VM_INIT: ("VM_INIT", *_VMID),
    VM_SET_BOOT_CONTEXT: _BOOT_CONTEXT,
    VM_SET_BOOT_CONTEXT_ANDROID: _BOOT_CONTEXT,
    VM_GET_HYP_RESOURCES: ("VM_GET_HYP_RESOURCES", *_VMID),
    VM_GET_VMID: ("VM_GET_VMID", "<", ()),
    VM_SET_FIRMWARE_MEM: (
        "VM_SET_FIRMWARE_MEM",
        "<H2xIQQ",
        ("vmid", "mem_handle", "fw_offset", "fw_size"),
    ),
    VM_SET_DEMAND_PAGING: ("VM_SET_DEMAND_PAGING", "<H2xI", ("vmid", "range_count")),
    VM_SET_ADDRESS_LAYOUT: (
        "VM_SET_ADDRESS_LAYOUT",
        "<H2xIQQ",
        ("vmid", "range_id", "range_base", "range_size"),
    ),
    MEM_LEND: ("MEM_LEND", "<BxBxI", ("mem_type", "flags", "label")),
    MEM_SHARE: ("MEM_SHARE", "<BxBxI", ("mem_type", "flags", "label")),
    MEM_RECLAIM: ("MEM_RECLAIM", "<IB3x", ("mem_handle", "flags")),
    MEM_APPEND: ("MEM_APPEND", "<IB3x", ("mem_handle", "flags")),
}
_REPLIES = {VM_ALLOCATE: "vmid", MEM_LEND: "mem_handle", MEM_SHARE: "mem_handle"}


def gunyah_rm_msg_name(msg_id: int) -> str:
    """The catalogue's name of ``msg_id``, or its number in hex."""
    known = _REQUESTS.get(msg_id)
    return known[0] if known else f"{msg_id:#010x}"


def gunyah_rm_describe(msg_id: int, req: bytes) -> str:
    """``NAME{field=value, ...}`` for a request; a memory parcel's ACL and SGL too."""
    known = _REQUESTS.get(msg_id)
    if known is None:
        return f"{msg_id:#010x}{{{len(req)} bytes}}"
    name, layout, names = known
    try:
        values = struct.unpack_from(layout, req)
        pairs = zip(names, values, strict=True)
        fields = [f"{n}={v}" if n == "vmid" else f"{n}={v:#x}" for n, v in pairs]
        fields += _parcel(msg_id, req)
    except struct.error:
        fields = [f"{len(req)} bytes, truncated"]
    return name + "{" + ", ".join(fields) + "}"


def gunyah_rm_describe_reply(msg_id: int, reply: bytes) -> str:
    """The reply's one field when the call has one (a vmid, a mem_handle), else its size."""
    field = _REPLIES.get(msg_id)
    if field is not None and len(reply) == 4:
        (value,) = struct.unpack("<I", reply)
        return f"vmid={value & 0xFFFF}" if field == "vmid" else f"{field}={value:#x}"
    return f"{len(reply)} bytes"


def _parcel(msg_id: int, req: bytes) -> list[str]:
    if msg_id in (MEM_LEND, MEM_SHARE):
        (n_acl,) = struct.unpack_from("<H", req, 8)
        acl = [struct.unpack_from("<HB", req, 12 + 4 * i) for i in range(n_acl)]
        shown = ", ".join(f"{vmid}:{GunyahRmAcl(perms).name or perms}" for vmid, perms in acl)
        return [f"acl=[{shown}]", _sgl_shown(req, 12 + 4 * n_acl)]
    if msg_id == MEM_APPEND:
        return [_sgl_shown(req, 8)]
    return []


def _sgl_shown(req: bytes, at: int) -> str:
    (count,) = struct.unpack_from("<H", req, at)
    entries = [struct.unpack_from("<QQ", req, at + 4 + 16 * i) for i in range(count)]
    return "sgl=[" + ", ".join(f"{phys:#x}+{size:#x}" for phys, size in entries) + "]"
