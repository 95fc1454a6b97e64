"""The hypercall table and dispatcher (hyp/core/api, the *.hvc definitions).

One table names every hypercall: its call number, its inputs in register
order and its outputs after the error. A call arrives either as SMCCC
(``hvc #0`` with X0 = 0xC6008000 + n, inputs from X1) or natively
(``hvc #0x6000+n``, inputs from X0); outputs are X0 = error, then X1...
(hypervisor_identify alone has no error). Inputs named ``res*`` are
reserved and must be zero (ARGUMENT_INVALID). Every handler has the same
shape: look capabilities up with their type and rights, call the module,
return the outputs; a :class:`HypError` becomes the error value here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyp.gunyah.errors import Error, HypError, check
from hyp.gunyah.memextent import DonateType
from hyp.gunyah.object import (
    ACTIVATE,
    AddrspaceRights,
    CspaceRights,
    DoorbellRights,
    MemextentRights,
    MsgqueueRights,
    ObjectType,
    PartitionRights,
    ThreadRights,
    VicRights,
)
from hyp.gunyah.vcpu import VIRQ_TYPE_RUN_WAKEUP, VcpuState

MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Hypercall:
    name: str
    num: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def reserved(self) -> tuple[int, ...]:
        """The register indices of the ``res*`` inputs, which must be zero."""
        return tuple(i for i, name in enumerate(self.inputs) if _reserved(name))

    @property
    def params(self) -> tuple[int, ...]:
        """The register indices of the inputs the handler takes, in order."""
        return tuple(i for i, name in enumerate(self.inputs) if not _reserved(name))


def _h(num: int, name: str, inputs: str, outputs: str = "") -> Hypercall:
    return Hypercall(name, num, tuple(inputs.split()), tuple(outputs.split()))


TABLE = (
    _h(0x00, "hypervisor_identify", "", "api_info flags0 flags1 flags2"),
    _h(0x01, "partition_create_partition", "src_partition cspace res0", "new_cap"),
    _h(0x02, "partition_create_cspace", "src_partition cspace res0", "new_cap"),
    _h(0x03, "partition_create_addrspace", "src_partition cspace res0", "new_cap"),
    _h(0x04, "partition_create_memextent", "src_partition cspace res0", "new_cap"),
    _h(0x05, "partition_create_thread", "src_partition cspace res0", "new_cap"),
    _h(0x06, "partition_create_doorbell", "src_partition cspace res0", "new_cap"),
    _h(0x07, "partition_create_msgqueue", "src_partition cspace res0", "new_cap"),
    _h(0x0A, "partition_create_vic", "src_partition cspace res0", "new_cap"),
    _h(0x0C, "object_activate", "cap res0"),
    _h(0x0D, "object_activate_from", "cspace cap res0"),
    _h(0x10, "doorbell_bind_virq", "doorbell vic virq res0"),
    _h(0x11, "doorbell_unbind_virq", "doorbell res0"),
    _h(0x12, "doorbell_send", "doorbell new_flags res0", "old_flags"),
    _h(0x13, "doorbell_receive", "doorbell clear_flags res0", "old_flags"),
    _h(0x14, "doorbell_reset", "doorbell res0"),
    _h(0x15, "doorbell_mask", "doorbell enable_mask ack_mask res0"),
    _h(0x17, "msgqueue_bind_send_virq", "msgqueue vic virq res0"),
    _h(0x18, "msgqueue_bind_receive_virq", "msgqueue vic virq res0"),
    _h(0x19, "msgqueue_unbind_send_virq", "msgqueue res0"),
    _h(0x1A, "msgqueue_unbind_receive_virq", "msgqueue res0"),
    _h(0x1B, "msgqueue_send", "msgqueue size data send_flags res0", "not_full"),
    _h(0x1C, "msgqueue_receive", "msgqueue buffer buf_size res0", "size not_empty"),
    _h(0x1D, "msgqueue_flush", "msgqueue res0"),
    _h(0x1F, "msgqueue_configure_send", "msgqueue not_full_thres not_full_holdoff res1"),
    _h(0x20, "msgqueue_configure_receive", "msgqueue not_empty_thres not_empty_holdoff res1"),
    _h(0x21, "msgqueue_configure", "msgqueue create_info res0"),
    _h(0x22, "cspace_delete_cap_from", "cspace cap res0"),
    _h(0x23, "cspace_copy_cap_from", "src_cspace src_cap dest_cspace rights_mask res0", "new_cap"),
    _h(0x25, "cspace_configure", "cspace max_caps res0"),
    _h(0x28, "vic_configure", "vic max_vcpus max_virqs vic_options max_msis"),
    _h(0x29, "vic_attach_vcpu", "vic vcpu index res0"),
    _h(0x2A, "addrspace_attach_thread", "addrspace thread res0"),
    _h(0x2B, "addrspace_map", "addrspace memextent vbase map_attrs map_flags offset size"),
    _h(0x2C, "addrspace_unmap", "addrspace memextent vbase map_flags offset size"),
    _h(0x2E, "addrspace_configure", "addrspace vmid res0"),
    _h(0x31, "memextent_configure", "memextent phys_base size attributes res0"),
    _h(0x32, "memextent_configure_derive", "memextent parent offset size attributes res0"),
    _h(0x34, "vcpu_configure", "cap_id vcpu_options res0"),
    _h(0x38, "vcpu_poweron", "cap_id entry_point context flags"),
    _h(0x39, "vcpu_poweroff", "cap_id flags"),
    _h(0x3B, "scheduler_yield", "control arg1 res0"),
    _h(0x3D, "vcpu_set_affinity", "cap_id affinity res1"),
    _h(0x3E, "cspace_attach_thread", "cspace thread res0"),
    _h(0x5A, "addrspace_lookup", "addrspace memextent vbase size res0", "offset size map_attrs"),
    _h(0x5C, "vcpu_bind_virq", "vcpu vic virq virq_type res0"),
    _h(0x5D, "vcpu_unbind_virq", "vcpu virq_type res0"),
    _h(0x61, "memextent_donate", "options from to offset size res0"),
    _h(0x64, "vcpu_register_write", "vcpu register_set register_index value res0"),
    _h(
        0x65,
        "vcpu_run",
        "cap_id resume_data_0 resume_data_1 resume_data_2 res0",
        "vcpu_state state_data_0 state_data_1 state_data_2",
    ),
    _h(0x68, "vcpu_run_check", "cap_id res0", "vcpu_state state_data_0 state_data_1 state_data_2"),
    # A simulator extension (no public number exists): how the RM gives the
    # hypervisor the ranges of VM_SET_DEMAND_PAGING. Shaped like 0x60,
    # addrspace_configure_vmmio.
    _h(0x7F, "addrspace_configure_demand", "addrspace vbase size op res0"),
)

BY_NAME = {h.name: h for h in TABLE}


# num -> (call, handler, reserved input indices, parameter indices), made once
# per handler so that a call (vcpu_run's above all) does no per-name work.
DISPATCH = {}


def handler(fn):
    """Register ``fn`` as the handler of the hypercall with its name."""
    assert fn.__name__ in BY_NAME, fn.__name__
    call = BY_NAME[fn.__name__]
    DISPATCH[call.num] = (call, fn, call.reserved, call.params)
    return fn


def _reserved(name: str) -> bool:
    return name.startswith("res") and name[3:].isdigit()


def dispatch(hyp, caller, num: int, args: list[int]) -> list[int]:
    """Run hypercall ``num`` with register ``args``; returns output registers.
    Inputs past the end of ``args`` are absent (not checked, not passed)."""
    entry = DISPATCH.get(num)
    if entry is None:
        return [Error.UNIMPLEMENTED & MASK64]
    call, fn, reserved, params = entry
    count = len(args)
    try:
        for i in reserved:
            if i < count and args[i]:
                raise HypError(Error.ARGUMENT_INVALID, call.inputs[i])
        outputs = fn(hyp, caller, *[args[i] for i in params if i < count]) or ()
    except HypError as e:
        hyp.trace("hypercall", name=call.name, error=e.error.name)
        return [e.error & MASK64]
    if call.name == "hypervisor_identify":
        return [v & MASK64 for v in outputs]
    return [Error.OK, *[v & MASK64 for v in outputs]]


# lookups
def _get(caller, capid: int, type_: ObjectType, rights: int = 0, active=True):
    return caller.cspace.lookup(capid, type_, rights, active)


def _create(hyp, caller, src_partition: int, cspace: int, type_: ObjectType):
    partition = _get(caller, src_partition, ObjectType.PARTITION, PartitionRights.OBJECT_CREATE)
    target = _get(caller, cspace, ObjectType.CSPACE, CspaceRights.CAP_CREATE)
    obj = hyp.create_object(type_, partition)
    return (target.create(obj, 0xFFFF_FFFF),)


# handlers
@handler
def hypervisor_identify(hyp, caller):
    return hyp.identify()


def _creator(type_: ObjectType, name: str):
    def create(hyp, caller, src_partition, cspace):
        return _create(hyp, caller, src_partition, cspace, type_)

    create.__name__ = name
    return handler(create)


for _type, _name in (
    (ObjectType.PARTITION, "partition_create_partition"),
    (ObjectType.CSPACE, "partition_create_cspace"),
    (ObjectType.ADDRSPACE, "partition_create_addrspace"),
    (ObjectType.MEMEXTENT, "partition_create_memextent"),
    (ObjectType.THREAD, "partition_create_thread"),
    (ObjectType.DOORBELL, "partition_create_doorbell"),
    (ObjectType.MSGQUEUE, "partition_create_msgqueue"),
    (ObjectType.VIC, "partition_create_vic"),
):
    _creator(_type, _name)


@handler
def object_activate(hyp, caller, cap):
    caller.cspace.lookup(cap, None, ACTIVATE, active=False).activate()


@handler
def object_activate_from(hyp, caller, cspace, cap):
    space = _get(caller, cspace, ObjectType.CSPACE)
    space.lookup(cap, None, ACTIVATE, active=False).activate()


@handler
def doorbell_bind_virq(hyp, caller, doorbell, vic, virq):
    db = _get(caller, doorbell, ObjectType.DOORBELL, DoorbellRights.BIND)
    db.source.bind(_get(caller, vic, ObjectType.VIC, VicRights.BIND_SOURCE), virq)


@handler
def doorbell_unbind_virq(hyp, caller, doorbell):
    _get(caller, doorbell, ObjectType.DOORBELL, DoorbellRights.BIND).source.unbind()


@handler
def doorbell_send(hyp, caller, doorbell, new_flags):
    return (_get(caller, doorbell, ObjectType.DOORBELL, DoorbellRights.SEND).send(new_flags),)


@handler
def doorbell_receive(hyp, caller, doorbell, clear_flags):
    db = _get(caller, doorbell, ObjectType.DOORBELL, DoorbellRights.RECEIVE)
    return (db.receive(clear_flags),)


@handler
def doorbell_reset(hyp, caller, doorbell):
    _get(caller, doorbell, ObjectType.DOORBELL, DoorbellRights.RECEIVE).reset()


@handler
def doorbell_mask(hyp, caller, doorbell, enable_mask, ack_mask):
    _get(caller, doorbell, ObjectType.DOORBELL, DoorbellRights.RECEIVE).mask(enable_mask, ack_mask)


def _msgq_bind(caller, msgqueue, vic, virq, right, end):
    q = _get(caller, msgqueue, ObjectType.MSGQUEUE, right)
    getattr(q, end).bind(_get(caller, vic, ObjectType.VIC, VicRights.BIND_SOURCE), virq)


@handler
def msgqueue_bind_send_virq(hyp, caller, msgqueue, vic, virq):
    _msgq_bind(caller, msgqueue, vic, virq, MsgqueueRights.BIND_SEND, "send_end")


@handler
def msgqueue_bind_receive_virq(hyp, caller, msgqueue, vic, virq):
    _msgq_bind(caller, msgqueue, vic, virq, MsgqueueRights.BIND_RECEIVE, "recv_end")


@handler
def msgqueue_unbind_send_virq(hyp, caller, msgqueue):
    _get(caller, msgqueue, ObjectType.MSGQUEUE, MsgqueueRights.BIND_SEND).send_end.unbind()


@handler
def msgqueue_unbind_receive_virq(hyp, caller, msgqueue):
    _get(caller, msgqueue, ObjectType.MSGQUEUE, MsgqueueRights.BIND_RECEIVE).recv_end.unbind()


@handler
def msgqueue_send(hyp, caller, msgqueue, size, data, send_flags):
    q = _get(caller, msgqueue, ObjectType.MSGQUEUE, MsgqueueRights.SEND)
    check(0 < size <= q.max_size, Error.ARGUMENT_SIZE)
    return (int(q.send(caller.read(data, size), send_flags)),)


@handler
def msgqueue_receive(hyp, caller, msgqueue, buffer, buf_size):
    q = _get(caller, msgqueue, ObjectType.MSGQUEUE, MsgqueueRights.RECEIVE)
    check(q.queue, Error.MSGQUEUE_EMPTY)
    caller.check_writable(buffer, min(buf_size, len(q.queue[0])))
    data, not_empty = q.receive(buf_size)
    caller.write(buffer, data)
    return len(data), int(not_empty)


@handler
def msgqueue_flush(hyp, caller, msgqueue):
    _get(caller, msgqueue, ObjectType.MSGQUEUE, MsgqueueRights.RECEIVE).flush()


@handler
def msgqueue_configure_send(hyp, caller, msgqueue, not_full_thres, not_full_holdoff):
    q = _get(caller, msgqueue, ObjectType.MSGQUEUE, MsgqueueRights.BIND_SEND)
    q.configure_send(not_full_thres, not_full_holdoff)


@handler
def msgqueue_configure_receive(hyp, caller, msgqueue, not_empty_thres, not_empty_holdoff):
    q = _get(caller, msgqueue, ObjectType.MSGQUEUE, MsgqueueRights.BIND_RECEIVE)
    q.configure_receive(not_empty_thres, not_empty_holdoff)


@handler
def msgqueue_configure(hyp, caller, msgqueue, create_info):
    _get(caller, msgqueue, ObjectType.MSGQUEUE, active=False).configure(create_info)


@handler
def cspace_delete_cap_from(hyp, caller, cspace, cap):
    _get(caller, cspace, ObjectType.CSPACE, CspaceRights.CAP_DELETE).delete(cap)


@handler
def cspace_copy_cap_from(hyp, caller, src_cspace, src_cap, dest_cspace, rights_mask):
    src = _get(caller, src_cspace, ObjectType.CSPACE, CspaceRights.CAP_COPY)
    dest = _get(caller, dest_cspace, ObjectType.CSPACE, CspaceRights.CAP_CREATE, active=None)
    return (src.copy_to(src_cap, dest, rights_mask),)


@handler
def cspace_configure(hyp, caller, cspace, max_caps):
    _get(caller, cspace, ObjectType.CSPACE, active=False).configure(max_caps)


@handler
def cspace_attach_thread(hyp, caller, cspace, thread):
    space = _get(caller, cspace, ObjectType.CSPACE, CspaceRights.ATTACH)
    vcpu = _get(caller, thread, ObjectType.THREAD, active=False)
    vcpu.cspace = space


@handler
def vic_configure(hyp, caller, vic, max_vcpus, max_virqs, vic_options, max_msis):
    _get(caller, vic, ObjectType.VIC, active=False).configure(
        max_vcpus, max_virqs, vic_options, max_msis
    )


@handler
def vic_attach_vcpu(hyp, caller, vic, vcpu, index):
    v = _get(caller, vic, ObjectType.VIC, VicRights.ATTACH_VCPU)
    v.attach_vcpu(_get(caller, vcpu, ObjectType.THREAD, active=False), index)


@handler
def addrspace_attach_thread(hyp, caller, addrspace, thread):
    space = _get(caller, addrspace, ObjectType.ADDRSPACE, AddrspaceRights.ATTACH)
    space.attach_vcpu(_get(caller, thread, ObjectType.THREAD, active=False))


@handler
def addrspace_map(hyp, caller, addrspace, memextent, vbase, map_attrs, map_flags, offset, size):
    space = _get(caller, addrspace, ObjectType.ADDRSPACE, AddrspaceRights.MAP)
    extent = _get(caller, memextent, ObjectType.MEMEXTENT, MemextentRights.MAP)
    space.map(extent, vbase, map_attrs, map_flags, offset, size)


@handler
def addrspace_unmap(hyp, caller, addrspace, memextent, vbase, map_flags, offset, size):
    space = _get(caller, addrspace, ObjectType.ADDRSPACE, AddrspaceRights.MAP)
    extent = _get(caller, memextent, ObjectType.MEMEXTENT, MemextentRights.MAP)
    space.unmap(extent, vbase, map_flags, offset, size)


@handler
def addrspace_configure(hyp, caller, addrspace, vmid):
    _get(caller, addrspace, ObjectType.ADDRSPACE, active=False).configure(vmid)


@handler
def addrspace_configure_demand(hyp, caller, addrspace, vbase, size, op):
    space = _get(caller, addrspace, ObjectType.ADDRSPACE, AddrspaceRights.ADD_VMMIO_RANGE)
    space.configure_demand(vbase, size, op)


@handler
def addrspace_lookup(hyp, caller, addrspace, memextent, vbase, size):
    space = _get(caller, addrspace, ObjectType.ADDRSPACE, AddrspaceRights.LOOKUP)
    extent = _get(caller, memextent, ObjectType.MEMEXTENT, MemextentRights.LOOKUP)
    offset, mapped, attrs = space.lookup(extent, vbase, size)
    return offset, mapped, attrs.access | attrs.access << 4 | attrs.memattr << 16


@handler
def memextent_configure(hyp, caller, memextent, phys_base, size, attributes):
    extent = _get(caller, memextent, ObjectType.MEMEXTENT, active=False)
    extent.configure(phys_base, size, attributes)


@handler
def memextent_configure_derive(hyp, caller, memextent, parent, offset, size, attributes):
    extent = _get(caller, memextent, ObjectType.MEMEXTENT, active=False)
    src = _get(caller, parent, ObjectType.MEMEXTENT, MemextentRights.DERIVE)
    extent.configure(offset, size, attributes, parent=src)


@handler
def memextent_donate(hyp, caller, options, from_, to, offset, size):
    check(options & ~(0xFF | 1 << 31) == 0, Error.ARGUMENT_INVALID, "options")
    kind = options & 0xFF
    check(kind in DonateType._value2member_map_, Error.ARGUMENT_INVALID, "donate type")
    giver = _get(caller, from_, ObjectType.MEMEXTENT, MemextentRights.DONATE)
    taker = _get(caller, to, ObjectType.MEMEXTENT, MemextentRights.DONATE)
    giver.donate(DonateType(kind), taker, offset, size)


@handler
def vcpu_configure(hyp, caller, cap_id, vcpu_options):
    _get(caller, cap_id, ObjectType.THREAD, active=False).configure(vcpu_options)


@handler
def vcpu_poweron(hyp, caller, cap_id, entry_point, context, flags):
    check(flags == 0, Error.ARGUMENT_INVALID, "flags")
    _get(caller, cap_id, ObjectType.THREAD, ThreadRights.POWER).poweron(entry_point, context)


@handler
def vcpu_poweroff(hyp, caller, cap_id, flags):
    check(flags & ~1 == 0, Error.ARGUMENT_INVALID, "flags")
    _get(caller, cap_id, ObjectType.THREAD, ThreadRights.POWER).poweroff()


@handler
def scheduler_yield(hyp, caller, control, arg1):
    check(control & 0x7FFF_0000 == 0, Error.ARGUMENT_INVALID, "control")


@handler
def vcpu_set_affinity(hyp, caller, cap_id, affinity):
    _get(caller, cap_id, ObjectType.THREAD, ThreadRights.AFFINITY, active=None).set_affinity(
        affinity
    )


@handler
def vcpu_bind_virq(hyp, caller, vcpu, vic, virq, virq_type):
    check(virq_type == VIRQ_TYPE_RUN_WAKEUP, Error.ARGUMENT_INVALID, "virq_type")
    v = _get(caller, vcpu, ObjectType.THREAD, ThreadRights.BIND_VIRQ)
    v.wakeup.bind(_get(caller, vic, ObjectType.VIC, VicRights.BIND_SOURCE), virq)


@handler
def vcpu_unbind_virq(hyp, caller, vcpu, virq_type):
    check(virq_type == VIRQ_TYPE_RUN_WAKEUP, Error.ARGUMENT_INVALID, "virq_type")
    _get(caller, vcpu, ObjectType.THREAD, ThreadRights.BIND_VIRQ).wakeup.unbind()


@handler
def vcpu_register_write(hyp, caller, vcpu, register_set, register_index, value):
    v = _get(caller, vcpu, ObjectType.THREAD, ThreadRights.WRITE_CONTEXT, active=None)
    v.register_write(register_set, register_index, value)


_RUN_RIGHTS = ThreadRights.AFFINITY | ThreadRights.YIELD_TO


@handler
def vcpu_run(hyp, caller, cap_id, resume_data_0, resume_data_1, resume_data_2):
    vcpu = _get(caller, cap_id, ObjectType.THREAD, _RUN_RIGHTS)
    return vcpu.run(resume_data_0, resume_data_1, resume_data_2)


@handler
def vcpu_run_check(hyp, caller, cap_id):
    vcpu = _get(caller, cap_id, ObjectType.THREAD, _RUN_RIGHTS)
    check(not vcpu.powered or vcpu.sleeping, Error.BUSY, "vcpu is not halted")
    state = VcpuState.EXPECTS_WAKEUP if vcpu.powered else VcpuState.POWERED_OFF
    return state, 0, 0, 0
