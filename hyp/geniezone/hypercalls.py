"""GenieZone's host calls: the one table and the dispatcher (the EL2 side of
the Linux driver's arch/arm64/geniezone/gzvm_arch_common.h, spec §2).

A call is an HVC with an SMCCC fast-call id of owner 59 (SMC_ENTITY_MTK):
``0xFB001000 + func`` (SMC64, the numbering of LKML v11+ and the ACK) or
``0xBB001000 + func`` (SMC32, the 2023 numbering, where 14 is
MEMREGION_PURPOSE and 15 SET_DTB_CONFIG and there is no INFORM_EXIT, no
MAP_GUEST(_BLOCK) and no GET_STATISTICS). Both read full 64-bit registers:
the 2023 driver passed physical addresses above 4 GiB in them too.

x1..x7 are the inputs in the table's order; on return x0 is the GenieZone
status (:class:`~hyp.geniezone.errors.Error`, signed) and x1..x3 the
outputs. Every handler has the same shape: look the VM or vCPU up, call
its module, return the outputs. A :class:`GzError` raised by a handler
becomes x0 here, once (an exhausted EL2 page pool is ERR_NO_MEMORY). An
id of the range with no call is ERR_NOT_SUPPORTED, a call of the table
with no handler (GET_REGS/SET_REGS, removed from the driver in v5, whose
layout is not public) ERR_NOT_IMPLEMENTED; an id outside the range is
SMCCC's NOT_SUPPORTED (-1).
"""

from __future__ import annotations

from dataclasses import dataclass

from hyp.geniezone import shared
from hyp.geniezone.errors import Error, GzError, check
from hyp.geniezone.vm import GZVM_MAX_VCPUS, global_cap
from hyp.hw.board import PAGE_SHIFT, PAGE_SIZE

MASK64 = (1 << 64) - 1
SMC64_BASE, SMC32_BASE = 0xFB00_1000, 0xBB00_1000
SMCCC_UNKNOWN = MASK64


@dataclass(frozen=True)
class Hypercall:
    name: str
    smc64: int | None  # func of 0xFB001000 + func
    smc32: int | None  # func of 0xBB001000 + func
    inputs: tuple[str, ...]
    locked: bool = True  # under the EL2 lock; else the handler takes it itself


def _h(name, smc64, smc32, inputs="", locked=True) -> Hypercall:
    return Hypercall(name, smc64, smc32, tuple(inputs.split()), locked)


TABLE = (
    _h("CREATE_VM", 0, 0, "vm_type"),
    _h("DESTROY_VM", 1, 1, "vm_id batch", locked=False),
    _h("CREATE_VCPU", 2, 2, "vcpu area"),
    _h("DESTROY_VCPU", 3, 3, "vcpu", locked=False),
    _h("SET_MEMREGION", 4, 4, "vm_id size buffer"),
    _h("RUN", 5, 5, "vcpu", locked=False),
    _h("GET_REGS", None, 6),
    _h("SET_REGS", None, 7),
    _h("GET_ONE_REG", 8, 8, "vcpu reg_id"),
    _h("SET_ONE_REG", 9, 9, "vcpu reg_id value"),
    _h("IRQ_LINE", 10, 10, "vcpu irq level"),
    _h("CREATE_DEVICE", 11, 11, "vm_id device"),
    _h("PROBE", 12, 12, "major minor sub"),
    _h("ENABLE_CAP", 13, 13, "vm_id cap arg0 arg1 arg2 arg3 arg4"),
    _h("INFORM_EXIT", 14, None, "vm_id"),
    _h("MEMREGION_PURPOSE", 15, 14, "vm_id gpa size flags"),
    _h("SET_DTB_CONFIG", 16, 15, "vm_id addr size"),
    _h("MAP_GUEST", 17, None, "vm_id slot pfn gfn nr"),
    _h("MAP_GUEST_BLOCK", 18, None, "vm_id slot gfn nr"),
    _h("GET_STATISTICS", 19, None, "vm_id"),
)

BY_NAME = {h.name: h for h in TABLE}
BY_ID = {SMC64_BASE + h.smc64: h for h in TABLE if h.smc64 is not None} | {
    SMC32_BASE + h.smc32: h for h in TABLE if h.smc32 is not None
}


def hypercall_id(name: str, smc32: bool = False) -> int:
    """The function id of call ``name`` in either numbering."""
    call = BY_NAME[name]
    return SMC32_BASE + call.smc32 if smc32 else SMC64_BASE + call.smc64


def dispatch(hyp, regs: list[int]) -> list[int]:
    """The host's HVC with x0..x7 = ``regs``; returns x0..x3."""
    fid = regs[0] & 0xFFFF_FFFF
    call = BY_ID.get(fid)
    if call is None:
        in_range = fid & ~0xFFF in (SMC64_BASE, SMC32_BASE)
        return [Error.ERR_NOT_SUPPORTED & MASK64 if in_range else SMCCC_UNKNOWN, 0, 0, 0]
    handler = HANDLERS.get(call.name)
    if handler is None:
        return [Error.ERR_NOT_IMPLEMENTED & MASK64, 0, 0, 0]
    args = [r & MASK64 for r in [*regs[1:], *[0] * 7][: len(call.inputs)]]
    try:
        if call.locked:
            with hyp.lock:
                outputs = handler(hyp, *args) or ()
        else:
            outputs = handler(hyp, *args) or ()
    except MemoryError:
        hyp.trace("hypercall", name=call.name, error=Error.ERR_NO_MEMORY.name)
        return [Error.ERR_NO_MEMORY & MASK64, 0, 0, 0]
    except GzError as e:
        hyp.trace("hypercall", name=call.name, error=e.error.name, why=str(e))
        return [e.error & MASK64, 0, 0, 0]
    return [0, *(v & MASK64 for v in (*outputs, 0, 0, 0)[:3])]


HANDLERS = {}


def handler(fn):
    """Register ``fn`` as the handler of the call with its (upper-cased) name."""
    name = fn.__name__.upper()
    assert name in BY_NAME, name
    HANDLERS[name] = fn
    return fn


def _vcpu(hyp, vcpu: int):
    """The vCPU of a (vm_id << 16) | vcpu_id tuple."""
    return hyp.lookup_vcpu(vcpu >> 16 & 0xFFFF, vcpu & 0xFFFF)


@handler
def create_vm(hyp, vm_type):
    return (hyp.create_vm(vm_type),)


@handler
def destroy_vm(hyp, vm_id, batch):
    hyp.destroy_vm(vm_id, batch)


@handler
def create_vcpu(hyp, vcpu, area):
    vm_id, vcpu_id = vcpu >> 16 & 0xFFFF, vcpu & 0xFFFF
    check(vcpu >> 32 == 0 and vcpu_id < GZVM_MAX_VCPUS, why="vcpu id")
    hyp.create_vcpu(hyp.lookup_vm(vm_id), vcpu_id, area)


@handler
def destroy_vcpu(hyp, vcpu):
    hyp.destroy_vcpu(vcpu >> 16 & 0xFFFF, vcpu & 0xFFFF)


@handler
def set_memregion(hyp, vm_id, size, buffer):
    """With no constituents the slot's range is registered; with them, the
    pages are mapped from ``gpa`` on, in order, inside the registered slot."""
    vm = hyp.lookup_vm(vm_id)
    check(shared.RANGES_HEADER.size <= size <= 2 * PAGE_SIZE, why="buffer size")
    ranges = shared.MemoryRegionRanges.parse(hyp.read_host(buffer, size))
    check(ranges is not None, why="constituent count")
    if not ranges.constituents:
        check(ranges.total_pages < 1 << 31, why="total_pages")
        vm.register_memslot(ranges.slot, ranges.gpa, ranges.total_pages)
        return
    check(ranges.gpa % PAGE_SIZE == 0, why="gpa")
    pfns = []
    for pa, pages in ranges.constituents:
        check(pa % PAGE_SIZE == 0 and pages > 0, why="constituent")
        pfns += range(pa >> PAGE_SHIFT, (pa >> PAGE_SHIFT) + pages)
    vm.map_pages(ranges.slot, ranges.gpa >> PAGE_SHIFT, pfns)


@handler
def run(hyp, vcpu):
    with hyp.lock:
        target = _vcpu(hyp, vcpu)
    return (target.run(),)


@handler
def get_one_reg(hyp, vcpu, reg_id):
    return (_vcpu(hyp, vcpu).one_reg(reg_id),)


@handler
def set_one_reg(hyp, vcpu, reg_id, value):
    _vcpu(hyp, vcpu).one_reg(reg_id, value)


@handler
def irq_line(hyp, vcpu, irq, level):
    """The vCPU field is not used: an SPI goes where the guest routed it."""
    vm_id = vcpu >> 16 & 0xFFFF
    hyp.lookup_vm(vm_id).vgic.irq_line(irq, level)
    hyp.trace("irq_line", vm=vm_id, intid=irq + 32, level=level)


@handler
def create_device(hyp, vm_id, device):
    vm = hyp.lookup_vm(vm_id)
    dev = shared.CreateDevice.parse(hyp.read_host(device, shared.CREATE_DEVICE.size))
    check(dev.attr_size <= PAGE_SIZE, why="attr_size")

    def memory_overlaps(ipa, size):
        return any(m.gpa < ipa + size and ipa < m.end for m in vm.memslots.values())

    vm.vgic.create_device(dev.dev_type, dev.dev_addr, dev.dev_reg_size, memory_overlaps)


@handler
def probe(hyp, major, minor, sub):
    """Any driver version is accepted (the v13 driver logs the answer)."""
    return hyp.version


@handler
def enable_cap(hyp, vm_id, cap, arg0, arg1, arg2, arg3, arg4):
    if vm_id == 0:
        return (global_cap(cap),)
    return (hyp.lookup_vm(vm_id).enable_cap(cap, [arg0, arg1, arg2, arg3, arg4]),)


@handler
def inform_exit(hyp, vm_id):
    """The host's RUN was interrupted by a signal: nothing for EL2 to undo."""
    hyp.lookup_vm(vm_id)


@handler
def memregion_purpose(hyp, vm_id, gpa, size, flags):
    hyp.lookup_vm(vm_id).memregion_purpose(gpa, size, flags)


@handler
def set_dtb_config(hyp, vm_id, addr, size):
    hyp.lookup_vm(vm_id).set_dtb_config(addr, size)


@handler
def map_guest(hyp, vm_id, slot, pfn, gfn, nr):
    """``nr`` contiguous PFNs at ``gfn``.. (the driver sends 1)."""
    check(0 < nr <= shared.PFN_BUFFER_SIZE // 8, why="nr_pages")
    hyp.lookup_vm(vm_id).map_pages(slot, gfn, list(range(pfn, pfn + nr)))


@handler
def map_guest_block(hyp, vm_id, slot, gfn, nr):
    """``nr`` PFNs from the buffer registered with BLOCK_BASED_DEMAND_PAGING."""
    vm = hyp.lookup_vm(vm_id)
    check(vm.block_buffer is not None, why="no PFN buffer registered")
    check(0 < nr <= shared.PFN_BUFFER_SIZE // 8, why="nr_pages")
    data = hyp.dram.read(vm.block_buffer, nr * 8)
    pfns = [int.from_bytes(data[i : i + 8], "little") for i in range(0, len(data), 8)]
    vm.map_pages(slot, gfn, pfns)


@handler
def get_statistics(hyp, vm_id):
    return hyp.lookup_vm(vm_id).statistics()
