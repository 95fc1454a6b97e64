"""GenieZone as a whole: the EL2 of a MediaTek SoC, its VMs and the doors in.

:class:`GenieZone` is an :class:`~hyp.arch.el2.El2` (DRAM, its page pool,
the virtual clock, the scheduler, the VMIDs) that keeps its VMs by vm_id
and knows who holds every host page it was given: a VM (mapped at one gfn)
or EL2 itself (a vCPU area or a PFN buffer, shared with the host). Host
RAM is DRAM below the EL2 page pool. It is reached only through its doors:
:meth:`GenieZone.hvc`, the host's HVC (:mod:`hyp.geniezone.hypercalls`),
and the traps of guest vCPUs (the SMCCC hooks :meth:`vendor_call` and
:meth:`immediate_call` of :mod:`hyp.arch.smccc`).

A guest's SMCCC calls: PSCI and SMCCC_VERSION are :mod:`hyp.arch`'s,
VENDOR_HYP_CALL_UID (0x8600FF01) answers :data:`GZVM_UID`, the other
architecture and standard-service calls are unknown (-1), and any other
call is forwarded to the host as a HYPERCALL exit. MEM_RELINQUISH
(0xC6000009, x1 = IPA) is served here (the page leaves the guest) and
then reported by the same exit, so that the driver may unpin the page.
"""

from __future__ import annotations

from hyp.arch.el2 import TRACE_RING, El2
from hyp.arch.pgtable import Stage2
from hyp.arch.smccc import FORWARD, owner
from hyp.geniezone import hostmap, hypercalls, shared
from hyp.geniezone.errors import Error, GzError, check
from hyp.geniezone.vcpu import GzVcpu
from hyp.geniezone.vgic import GzVgic
from hyp.geniezone.vm import GZVM_MAX_VCPUS, GzVm
from hyp.hw.board import DRAM_BASE, DRAM_SIZE, PAGE_SHIFT, PAGE_SIZE

MAX_VMS = 32  # vm_ids 1..MAX_VMS; 0 means "global" to ENABLE_CAP
HYP_VERSION = (16, 0, 0)  # the driver interface the model speaks (v13's)
# The model's own UID ("gkt", "_mvz", "_2le", "edom"): the real one is not public.
GZVM_UID = (0x6D746B67, 0x7A766D5F, 0x656C325F, 0x6D6F6465)
CALL_UID = 0x8600_FF01
MEM_RELINQUISH = 0xC600_0009
OWNER_ARCH, OWNER_STANDARD = 0, 4
SMCCC_INVALID_PARAMETER = (1 << 64) - 3
QUIESCE_TIMEOUT = 30.0  # seconds for a RUN in progress to return after a kick


class GenieZone(El2):
    """The EL2 hypervisor on a simulated SoC with ``dram_size`` bytes of DRAM."""

    def __init__(self, dram_size: int = DRAM_SIZE, trace_limit: int = TRACE_RING):
        super().__init__(dram_size, trace_limit)
        self.version = HYP_VERSION
        self.host_ram = (DRAM_BASE, self.pool.base - DRAM_BASE)
        self.vms: dict[int, GzVm] = {}
        self.owners: dict[int, GzVm] = {}  # pfn -> the VM it is mapped to
        self.shared: set[int] = set()  # pfns EL2 uses with the host
        # the host's mappings of its RAM: id -> (pa, length, mapping, prot)
        self.host_maps: dict[int, tuple] = {}

    # the host's door
    def hvc(self, regs: list[int]) -> list[int]:
        """The host's ``hvc #0``: x0 the function id, x1.. the inputs; x0..x3 back."""
        return hypercalls.dispatch(self, regs)

    # host memory
    def is_host_ram(self, pa: int, size: int) -> bool:
        base, length = self.host_ram
        return base <= pa and pa + size <= base + length

    def read_host(self, pa: int, size: int) -> bytes:
        """What the host wrote at ``pa``: ERR_INVALID_ARGS outside host RAM."""
        check(self.is_host_ram(pa, size), why=f"PA {pa:#x} is not host RAM")
        return self.dram.read(pa, size)

    def check_guest_page(self, pfn: int) -> None:
        """A PFN the host gives a guest: host RAM that no VM and not EL2 holds."""
        check(self.is_host_ram(pfn << PAGE_SHIFT, PAGE_SIZE), why=f"PFN {pfn:#x} is not host RAM")
        check(pfn not in self.owners, why=f"PFN {pfn:#x} is mapped to a VM")
        check(pfn not in self.shared, why=f"PFN {pfn:#x} is shared with EL2")

    def take_page(self, pfn: int, vm: GzVm) -> None:
        self.owners[pfn] = vm
        if vm.protected:
            self._revoke_host_access(pfn)

    def release_page(self, pfn: int, scrub: bool) -> None:
        """The host has the page back; a protected VM's is zeroed first."""
        del self.owners[pfn]
        if scrub:
            self.dram.zero(pfn << PAGE_SHIFT, PAGE_SIZE)

    def share_pages(self, pa: int, pages: int) -> None:
        """EL2 will use ``pages`` of host RAM at ``pa`` with the host."""
        check(pa % PAGE_SIZE == 0, why="alignment")
        pfns = range(pa >> PAGE_SHIFT, (pa >> PAGE_SHIFT) + pages)
        for pfn in pfns:
            self.check_guest_page(pfn)
        self.shared.update(pfns)

    def unshare_pages(self, pa: int, pages: int) -> None:
        self.shared.difference_update(range(pa >> PAGE_SHIFT, (pa >> PAGE_SHIFT) + pages))

    def holds(self, pa: int, size: int) -> bool:
        """Does EL2 or a VM hold a page of [pa, pa+size)?"""
        first, last = pa >> PAGE_SHIFT, (pa + size - 1) >> PAGE_SHIFT
        return any(p in self.owners or p in self.shared for p in range(first, last + 1))

    def protect(self, vm: GzVm) -> None:
        """From now on the host cannot see ``vm``'s pages, those mapped already too."""
        vm.protected = True
        for pfn in vm.mapped.values():
            self._revoke_host_access(pfn)

    def protected_pages(self, pa: int, size: int) -> bool:
        first, last = pa >> PAGE_SHIFT, (pa + size - 1) >> PAGE_SHIFT
        return any(p in self.owners and self.owners[p].protected for p in range(first, last + 1))

    def _revoke_host_access(self, pfn: int) -> None:
        """The page leaves every host mapping: there it reads as zero from now
        on (a real host would take a stage-2 fault; the model cannot fault a
        Python mmap)."""
        pa = pfn << PAGE_SHIFT
        for start, length, mapping, prot in self.host_maps.values():
            if start <= pa < start + length:
                hostmap.zero_page(mapping, pa - start, prot)

    # VMs
    def lookup_vm(self, vm_id: int) -> GzVm:
        """ERR_INVALID_ARGS for no such VM, ERR_BUSY while it is being destroyed."""
        vm = self.vms.get(vm_id)
        check(vm is not None, why=f"no VM {vm_id}")
        check(not vm.dying, Error.ERR_BUSY, f"VM {vm_id} is being destroyed")
        return vm

    def lookup_vcpu(self, vm_id: int, vcpu_id: int) -> GzVcpu:
        vcpu = self.lookup_vm(vm_id).vcpus.get(vcpu_id)
        check(vcpu is not None and not vcpu.destroyed, why=f"no vCPU {vm_id}.{vcpu_id}")
        return vcpu

    def create_vm(self, vm_type: int) -> int:
        """A VM of type 0 (a Linux VM, the only type); its vm_id is the lowest
        free one, ERR_NO_MEMORY when all ``MAX_VMS`` are in use."""
        check(vm_type == 0, Error.ERR_NOT_SUPPORTED, f"vm_type {vm_type}")
        free = [i for i in range(1, MAX_VMS + 1) if i not in self.vms]
        check(bool(free), Error.ERR_NO_MEMORY, "no free vm_id")
        vm_id = free[0]
        stage2 = Stage2(self.pool)
        group = self.scheduler.group()  # GenieZone VMs share no page: one group each
        vm = GzVm(self, vm_id, stage2, GzVgic(GZVM_MAX_VCPUS), group.clock.now, group)
        self.vms[vm_id] = vm
        self.vmids.add(vm_id)
        self.trace("create_vm", vm_id=vm_id)
        return vm_id

    def create_vcpu(self, vm: GzVm, vcpu_id: int, area: int) -> None:
        check(vcpu_id not in vm.vcpus, Error.ERR_INVALID_ARGS, f"vCPU {vcpu_id} exists")
        self.share_pages(area, shared.VCPU_AREA_PAGES)
        try:
            vm.vcpus[vcpu_id] = GzVcpu(vm, vcpu_id, area)
        except BaseException:
            self.unshare_pages(area, shared.VCPU_AREA_PAGES)
            raise

    def destroy_vcpu(self, vm_id: int, vcpu_id: int) -> None:
        """Ends a RUN in progress first (it returns GZVM_EXIT_IRQ)."""
        with self.lock:
            vcpu = self.lookup_vcpu(vm_id, vcpu_id)
            vcpu.destroyed = True
            vcpu.kick()
        self._quiesced(vcpu)

    def _quiesced(self, vcpu: GzVcpu) -> None:
        """Wait, outside the EL2 lock, for no thread to run ``vcpu``; then remove it."""
        if not vcpu.run_lock.acquire(timeout=QUIESCE_TIMEOUT):
            raise GzError(Error.ERR_BUSY, f"{vcpu.trace_name} does not return")
        try:
            with self.lock:
                vcpu.destroy()
                del vcpu.vm.vcpus[vcpu.vcpu_id]
                self.unshare_pages(vcpu.area, shared.VCPU_AREA_PAGES)
        finally:
            vcpu.run_lock.release()

    def destroy_vm(self, vm_id: int, batch: int) -> None:
        """DESTROY_VM: stops and removes the vCPUs, then gives the pages back,
        ``batch`` per call (v13; 0: all at once), answering ERR_BUSY while more
        remain; the last call frees the stage 2 and the vm_id."""
        with self.lock:
            vm = self.vms.get(vm_id)
            check(vm is not None, why=f"no VM {vm_id}")
            vm.dying = True
            vcpus = list(vm.vcpus.values())
            for vcpu in vcpus:
                vcpu.destroyed = True
                vcpu.kick()
        for vcpu in vcpus:
            if vcpu.vcpu_id in vm.vcpus:
                self._quiesced(vcpu)
        with self.lock:
            if batch and len(vm.mapped) > batch:
                vm.release(batch)
                raise GzError(Error.ERR_BUSY, f"{len(vm.mapped)} pages to go")
            vm.release(0)
            if vm.block_buffer is not None:
                self.unshare_pages(vm.block_buffer, 1)
            vm.stage2.destroy()
            self.vmids.discard(vm_id)
            del self.vms[vm_id]
            self.trace("destroy_vm", vm_id=vm_id)

    def ipi(self, thread: int) -> None:
        """An interrupt for the CPU host thread ``thread`` runs on: its RUN
        returns GZVM_EXIT_IRQ, also from a sleep inside EL2; with no RUN in
        progress there, the thread's next RUN does at once."""
        with self.lock:
            for vcpu in self.scheduler.order:
                if vcpu.proxy_thread == thread:
                    vcpu.interrupt()
                    return
            self.pending_ipis.add(thread)

    # hooks of El2: a guest's HVC and SMC
    def immediate_call(self, vcpu, is_smc: bool, imm: int, regs: list[int]):
        """GenieZone has no conduit of its own: HVC/SMC #imm is unknown."""
        return None

    def vendor_call(self, vcpu: GzVcpu, fid: int, regs: list[int]):
        if fid == CALL_UID:
            return list(GZVM_UID)
        if owner(fid) in (OWNER_ARCH, OWNER_STANDARD):
            return None
        if fid == MEM_RELINQUISH:
            return self._relinquish(vcpu, regs[1])
        self.trace("guest_hypercall", vcpu=vcpu.trace_name, fid=fid)
        return FORWARD

    def _relinquish(self, vcpu: GzVcpu, ipa: int):
        """MEM_RELINQUISH is EL2's: the page leaves the guest (a page not mapped
        is no error), and the host is told by a HYPERCALL exit so that it
        unpins it; the guest's x0 is SMCCC success whatever the host leaves in
        args[]. An IPA outside every memory slot is INVALID_PARAMETER, with no
        exit."""
        vm = vcpu.vm
        if vm.memslot_at(ipa) is None:
            return [SMCCC_INVALID_PARAMETER]
        if ipa >> PAGE_SHIFT in vm.mapped:
            vm.unmap_page(ipa >> PAGE_SHIFT)
            vm.flush()
        vcpu.served_call = True
        self.trace("guest_hypercall", vcpu=vcpu.trace_name, fid=MEM_RELINQUISH)
        return FORWARD
