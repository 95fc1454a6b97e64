"""Virtual CPUs (hyp/vm/vcpu, hyp/vm/vcpu_run): thread objects that run guest code.

A Gunyah vCPU is a thread object built on :class:`~hyp.arch.vcpu.ArchVcpu`,
which runs it on its core. What is Gunyah's here: configuration through
hypercalls (options, affinity, the address space and VIC it is attached
to), its VCPU_RUN_WAKEUP virq, and ``vcpu_run``: it returns one of the
:class:`VcpuState` states with its three data words, and the resume data
of the next call says how the host dealt with the last VMMIO or page-fault
exit (:class:`ResumeAction`).
"""

from __future__ import annotations

import threading
from enum import IntEnum

from hyp.arch.exception import FSC_EXTERNAL
from hyp.arch.vcpu import REGISTERS, ArchVcpu, Exit
from hyp.gunyah.errors import Error, HypError, check
from hyp.gunyah.object import Object, ObjectState, ObjectType
from hyp.gunyah.vgic import VirqSource


class VcpuState(IntEnum):
    READY = 0
    EXPECTS_WAKEUP = 1
    POWERED_OFF = 2
    BLOCKED = 3
    ADDRSPACE_VMMIO_READ = 4
    ADDRSPACE_VMMIO_WRITE = 5
    FAULT = 6
    ADDRSPACE_PAGE_FAULT = 7
    PSCI_SYSTEM_RESET = 0x100


class ResumeAction(IntEnum):
    """resume_data_1 after a VMMIO exit."""

    EMULATE = 0
    RETRY = 1
    FAULT = 2


VIRQ_TYPE_RUN_WAKEUP = 1
POWEROFF_EXITED = 1

_STATES = {
    Exit.READY: VcpuState.READY,
    Exit.IDLE: VcpuState.EXPECTS_WAKEUP,
    Exit.POWERED_OFF: VcpuState.POWERED_OFF,
    Exit.SYSTEM_RESET: VcpuState.PSCI_SYSTEM_RESET,
    Exit.MMIO_READ: VcpuState.ADDRSPACE_VMMIO_READ,
    Exit.MMIO_WRITE: VcpuState.ADDRSPACE_VMMIO_WRITE,
    Exit.PAGE_FAULT: VcpuState.ADDRSPACE_PAGE_FAULT,
    Exit.FAULT: VcpuState.FAULT,
}


class Vcpu(Object, ArchVcpu):
    TYPE = ObjectType.THREAD

    def __init__(self, hyp, partition):
        Object.__init__(self, hyp, partition)
        ArchVcpu.__init__(self, hyp)
        self.addrspace = self.vic = self.cspace = None
        self.vic_index, self.options = 0, 0
        self.wakeup = VirqSource(lambda: self.runnable)

    # configuration (INIT)
    def configure(self, options: int) -> None:
        self.require(ObjectState.INIT)
        check(options & ~(1 | 1 << 8 | 0x3E | 1 << 63) == 0, Error.ARGUMENT_INVALID, "options")
        self.options = options

    def set_affinity(self, affinity: int) -> None:
        self.affinity = affinity

    def on_activate(self) -> None:
        check(self.addrspace is not None, Error.OBJECT_CONFIG, "no address space")
        check(self.addrspace.state == ObjectState.ACTIVE, Error.OBJECT_STATE, "address space")
        check(self.vic is not None and self.vic.gic is not None, Error.OBJECT_CONFIG, "no vic")
        space = self.addrspace
        self.attach_core(space.stage2.vttbr(space.vmid), space.run_group)
        self.addrspace.vcpus.append(self)

    def on_destroy(self) -> None:
        self.powered = False
        if self.wakeup.vic is not None:
            self.wakeup.unbind()
        if self.core is not None:
            self.addrspace.vcpus.remove(self)
        self.detach_core()

    # power
    def poweron(self, entry: int, context: int) -> None:
        """Power on at ``entry`` with X0=``context``; BUSY if already on."""
        self.require(ObjectState.ACTIVE)
        check(not self.powered, Error.BUSY, "vcpu is on")
        self.power_on(entry, context)

    def register_write(self, reg_set: int, index: int, value: int) -> None:
        """vcpu_register_write: OBJECT_STATE once powered on, ARGUMENT_INVALID for a
        register the vCPU does not have (X0-X30, PC, SP_EL0-SP_EL1)."""
        check(not self.powered, Error.OBJECT_STATE, "vcpu is on")
        top = REGISTERS.get(reg_set)
        check(top is not None and 0 <= index <= top, Error.ARGUMENT_INVALID, "register")
        self.pending_regs[(reg_set, index)] = value

    # vcpu_run
    def run(self, resume0: int, resume1: int, resume2: int) -> tuple[int, int, int, int]:
        """The vcpu_run hypercall; BUSY if another thread runs this vCPU."""
        self.require(ObjectState.ACTIVE)
        check(self.wakeup.vic is not None, Error.BUSY, "no VCPU_RUN_WAKEUP virq bound")
        if not self.run_lock.acquire(blocking=False):
            raise HypError(Error.BUSY, "vcpu is running")
        try:
            with self.hyp.lock:
                self.take_host_ipi(threading.get_ident())
                self._resume(resume0, resume1)
            return self.run_loop()
        finally:
            self.proxy_thread = None
            self.run_lock.release()

    def _resume(self, data: int, action: int) -> None:
        if self.page_fault is not None:
            self._resume_page_fault(action)
        if self.mmio is None:
            return
        access, _ = self.mmio
        self.mmio = None
        if action == ResumeAction.FAULT:
            self.inject_abort(access.address, access.is_write, FSC_EXTERNAL)
        elif action == ResumeAction.EMULATE:
            self.complete(access, data)
        elif action != ResumeAction.RETRY:
            raise HypError(Error.ARGUMENT_INVALID, "resume action")

    def _resume_page_fault(self, action: int) -> None:
        """After ADDRSPACE_PAGE_FAULT: FAULT gives the guest the abort, else the access reruns."""
        ipa, write, fetch = self.page_fault
        self.page_fault = None
        if action != ResumeAction.FAULT:
            return
        if fetch:
            self.inject_prefetch_abort(ipa, FSC_EXTERNAL)
        else:
            self.inject_abort(ipa, write, FSC_EXTERNAL)

    # hooks of ArchVcpu
    def host_exit(self, reason: Exit, *data: int) -> tuple[int, int, int, int]:
        """vcpu_run's answer: the state and its three data words."""
        words = [*data, 0, 0, 0][:3]
        if reason == Exit.POWERED_OFF:
            words[0] = POWEROFF_EXITED if data[0] else 0
        return _STATES[reason], *words

    def wake_host(self) -> None:
        self.wakeup.assert_virq(edge_only=True)

    def siblings(self) -> list:
        return list(self.vic.vcpus.values())

    @property
    def vgic(self):
        return self.vic

    def translate(self, ipa: int):
        """IPA -> (PA, attrs) by the address space's stage 2."""
        return self.addrspace.translate(ipa)

    def demand_paged(self, ipa: int) -> bool:
        return self.addrspace.in_demand_range(ipa)

    @property
    def trace_name(self) -> str:
        return f"vm{self.addrspace.vmid}.cpu{self.vic_index}"
