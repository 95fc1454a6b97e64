"""The hypervisor as a whole (hyp/core/boot): the SoC, the root objects, the doors in.

:class:`Gunyah` is an :class:`~hyp.arch.el2.El2` (DRAM, the page pool, the
virtual clock, the scheduler) with the memdb over DRAM and the root
partition with a root cspace (the Resource Manager's) holding capabilities
to it, to the host's VIC and to the RM's VIC. It is reached only through
its doors: :meth:`Gunyah.smccc`, the host's SMCCC ``hvc #0`` (the host
kernel's arch code is the only caller), and the traps of guest vCPUs,
whose Gunyah calls arrive through the SMCCC hooks
(:meth:`Gunyah.vendor_call`, :meth:`Gunyah.immediate_call`).
"""

from __future__ import annotations

from hyp.arch.el2 import TRACE_RING, El2
from hyp.arch.smccc import SMCCC_UNKNOWN
from hyp.gunyah import hypercalls, smccc
from hyp.gunyah.addrspace import Addrspace
from hyp.gunyah.cspace import Cspace
from hyp.gunyah.doorbell import Doorbell
from hyp.gunyah.errors import Error, HypError
from hyp.gunyah.memdb import MemDb
from hyp.gunyah.memextent import Memextent
from hyp.gunyah.msgqueue import Msgqueue
from hyp.gunyah.object import ALL_RIGHTS, ObjectState, ObjectType
from hyp.gunyah.partition import Partition
from hyp.gunyah.vcpu import Vcpu
from hyp.gunyah.vgic import HostVic, Vic
from hyp.hw.board import (
    DRAM_BASE,
    DRAM_SIZE,
    GICD_BASE,
    GICD_SIZE,
    GICR_BASE,
    GICR_STRIDE,
    PAGE_SIZE,
)

API_VERSION = 1
API_64BIT = 1 << 15
VARIANT_GUNYAH = 0x48
# hyp_api_flags0 bits: partition_cspace 0, doorbell 1, msgqueue 2, vic 3, vcpu 5,
# memextent 6, vcpu_run 11
API_FLAGS0 = 1 << 0 | 1 << 1 | 1 << 2 | 1 << 3 | 1 << 5 | 1 << 6 | 1 << 11
VCPU_RUN = hypercalls.BY_NAME["vcpu_run"].num
NATIVE_BASE, NATIVE_LIMIT = 0x6000, 0x6200
MASK64 = (1 << 64) - 1

OBJECT_CLASSES = {
    ObjectType.PARTITION: Partition,
    ObjectType.CSPACE: Cspace,
    ObjectType.ADDRSPACE: Addrspace,
    ObjectType.MEMEXTENT: Memextent,
    ObjectType.THREAD: Vcpu,
    ObjectType.DOORBELL: Doorbell,
    ObjectType.MSGQUEUE: Msgqueue,
    ObjectType.VIC: Vic,
}


class HostMemory:
    """The host kernel memory hypercalls may point into: buffers it allocated here."""

    BASE = 0xFFFF_8000_0000_0000

    def __init__(self, size: int = 1 << 20):
        self.mem = bytearray(size)
        self._next = 0

    def alloc(self, size: int) -> int:
        """A zeroed buffer of ``size`` bytes; returns its address."""
        start = -(-self._next // 16) * 16
        if start + size > len(self.mem):
            start = 0  # wrap: buffers are short-lived message buffers
        self._next = start + size
        self.mem[start : start + size] = bytes(size)
        return self.BASE + start

    def check(self, addr: int, size: int) -> None:
        """ADDR_INVALID unless [addr, addr+size) is host memory."""
        self._span(addr, size)

    def _span(self, addr: int, size: int) -> slice:
        off = addr - self.BASE
        if not 0 <= off <= off + size <= len(self.mem):
            raise HypError(Error.ADDR_INVALID, f"host address {addr:#x}")
        return slice(off, off + size)

    def read(self, addr: int, size: int) -> bytes:
        return bytes(self.mem[self._span(addr, size)])

    def write(self, addr: int, data: bytes) -> None:
        self.mem[self._span(addr, len(data))] = data


class HostCaller:
    """The host (or RM) making hypercalls: its cspace and its memory."""

    def __init__(self, cspace: Cspace, memory: HostMemory):
        self.cspace, self.memory = cspace, memory

    def read(self, addr: int, size: int) -> bytes:
        return self.memory.read(addr, size)

    def write(self, addr: int, data: bytes) -> None:
        self.memory.write(addr, data)

    def check_writable(self, addr: int, size: int) -> None:
        self.memory.check(addr, size)


class GuestCaller:
    """A guest vCPU making hypercalls: pointers are IPAs of its address space."""

    def __init__(self, vcpu: Vcpu):
        self.vcpu, self.cspace = vcpu, vcpu.cspace

    def _pa(self, ipa: int, size: int, write: bool) -> int:
        first, last = self.vcpu.translate(ipa), self.vcpu.translate(ipa + size - 1)
        ok = first is not None and last is not None and last[0] - first[0] == size - 1
        if not ok or (write and not first[1].access & 2) or (not write and not first[1].access & 4):
            raise HypError(Error.ADDR_INVALID, f"guest address {ipa:#x}")
        return first[0]

    def read(self, addr: int, size: int) -> bytes:
        return self.vcpu.hyp.dram.read(self._pa(addr, size, False), size)

    def write(self, addr: int, data: bytes) -> None:
        self.vcpu.hyp.dram.write(self._pa(addr, len(data), True), data)

    def check_writable(self, addr: int, size: int) -> None:
        self._pa(addr, size, True)


class Gunyah(El2):
    """The EL2 hypervisor on a simulated SoC with ``dram_size`` bytes of DRAM."""

    def __init__(self, dram_size: int = DRAM_SIZE, trace_limit: int = TRACE_RING):
        super().__init__(dram_size, trace_limit)
        self.memdb = MemDb()
        pool_base = self.pool.base
        self.memdb.update(pool_base, self.pool.end - pool_base, self, None)
        self.root_partition = Partition.root(self)
        self.memdb.update(DRAM_BASE, pool_base - DRAM_BASE, self.root_partition, None)
        root_cspace = Cspace(self, self.root_partition)
        root_cspace.state = ObjectState.ACTIVE
        self.host_vic = HostVic(self, self.root_partition)
        self.rm_vic = HostVic(self, self.root_partition)
        self.root_caps = {
            "partition": root_cspace.create(self.root_partition, ALL_RIGHTS),
            "cspace": root_cspace.create(root_cspace, ALL_RIGHTS),
            "host_vic": root_cspace.create(self.host_vic, ALL_RIGHTS),
            "rm_vic": root_cspace.create(self.rm_vic, ALL_RIGHTS),
        }
        self.root = HostCaller(root_cspace, HostMemory())
        # What the boot loader tells the root VM: its memory and the vGIC layout.
        self.boot_info = {
            "dram": (DRAM_BASE, pool_base - DRAM_BASE),
            "gicd": (GICD_BASE, GICD_SIZE),
            "gicr": (GICR_BASE, GICR_STRIDE),
            "page_size": PAGE_SIZE,
        }

    def create_object(self, type_: ObjectType, partition: Partition):
        return OBJECT_CLASSES[type_](self, partition)

    def identify(self) -> tuple[int, int, int, int]:
        return API_VERSION | API_64BIT | VARIANT_GUNYAH << 56, API_FLAGS0, 0, 0

    # doors
    def smccc(self, caller: HostCaller, regs: list[int]) -> list[int]:
        """The host's ``hvc #0``: X0 is the SMCCC function id, X1.. the inputs."""
        fid = regs[0] & 0xFFFF_FFFF
        n = smccc.hypercall_number(fid)
        if n is not None:
            return self.call(caller, n, list(regs[1:]))
        if fid == smccc.CALL_UID:
            return list(smccc.GUNYAH_UID)
        if fid == smccc.REVISION:
            return [self.identify()[0]]
        return [SMCCC_UNKNOWN]

    def call(self, caller, n: int, args: list[int]) -> list[int]:
        """Hypercall ``n``; vcpu_run runs without the hypervisor lock held."""
        if n == VCPU_RUN:
            return hypercalls.dispatch(self, caller, n, args)
        with self.lock:
            return hypercalls.dispatch(self, caller, n, args)

    # hooks of El2: a guest's HVC and SMC
    def immediate_call(self, vcpu: Vcpu, is_smc: bool, imm: int, regs: list[int]):
        """The native conduit: ``hvc #0x6000+n`` is hypercall n, X0.. its inputs."""
        if not is_smc and NATIVE_BASE <= imm < NATIVE_LIMIT:
            return self._guest_hypercall(vcpu, imm - NATIVE_BASE, regs)
        return None

    def vendor_call(self, vcpu: Vcpu, fid: int, regs: list[int]):
        """Gunyah's SMCCC hypercalls (0xC6008000+n) and its vendor service."""
        n = smccc.hypercall_number(fid)
        if n is not None:
            return self._guest_hypercall(vcpu, n, regs[1:])
        if fid in (smccc.CALL_UID, smccc.REVISION):
            return self.smccc(GuestCaller(vcpu), regs)
        return None

    def _guest_hypercall(self, vcpu: Vcpu, n: int, args: list[int]) -> list[int]:
        """A guest's hypercall with its vCPU's cspace (an empty one if none is attached).

        vcpu_run is the host's proxy-scheduling call: a guest running another
        vCPU inside its own trap is not supported (UNIMPLEMENTED).
        """
        if n == VCPU_RUN:
            return [Error.UNIMPLEMENTED & MASK64]
        if vcpu.cspace is None:
            return [Error.CSPACE_CAP_NULL]
        self.trace("guest_hypercall", vcpu=vcpu.trace_name, n=n)
        return hypercalls.dispatch(self, GuestCaller(vcpu), n, args)
