"""Exits the kernel serves itself (drivers/virt/geniezone/gzvm_exception.c, gzvm_hvc.c).

``gzvm_handle_guest_exception``: a page fault (exception code PAGE_FAULT,
every reserved word zero) inside a memslot is demand paging (see
kernel.geniezone.gzvm_mmu); anything else goes to userspace.

``gzvm_handle_guest_hvc``: MEM_RELINQUISH (0xC6000009, args[1] the IPA)
drops the pin of that page; PTP (0x86000001, args[1] 0 for the virtual,
1 for the physical counter) answers the wall clock in args[0] (high
32 bits) and args[1] (low), the counter in args[2]/args[3], the virtual
one being the physical minus hwstate.vtimer_offset; an unknown counter
goes to userspace. Any other guest hypercall goes to userspace.
"""

from __future__ import annotations

import time

from kernel.arch.arm64.geniezone.platform import arch_timer_read_counter
from kernel.geniezone import gzvm_mmu
from uapi.linux import gzvm as gz

KVM_PTP_VIRT_COUNTER, KVM_PTP_PHYS_COUNTER = 0, 1


def gzvm_handle_guest_exception(vcpu) -> bool:
    """True if the exception was served and the guest can go on."""
    exception = vcpu.run().exception
    if any(exception.reserved) or exception.exception != gz.GZVM_EXCEPTION_PAGE_FAULT:
        return False
    return gzvm_mmu.gzvm_handle_page_fault(vcpu.gzvm, exception.fault_gpa)


def gzvm_handle_ptp_time(vcpu, counter: int) -> bool:
    cycles = arch_timer_read_counter(vcpu.gzvm.drv.firmware)
    if counter == KVM_PTP_VIRT_COUNTER:
        cycles -= vcpu.vtimer_offset
    elif counter != KVM_PTP_PHYS_COUNTER:
        return False
    real = time.time_ns()
    run = vcpu.run()
    halves = [real >> 32, real, cycles >> 32, cycles]
    run.hypercall.args[0:4] = [h & 0xFFFF_FFFF for h in halves]
    vcpu.store(run)
    return True


def gzvm_handle_guest_hvc(vcpu) -> bool:
    """True if the guest's hypercall was served in the kernel."""
    args = vcpu.run().hypercall.args
    if args[0] == gz.GZVM_HVC_MEM_RELINQUISH:
        gzvm_mmu.gzvm_handle_relinquish(vcpu.gzvm, args[1])
        return True
    if args[0] == gz.GZVM_HVC_PTP:
        return gzvm_handle_ptp_time(vcpu, args[1])
    return False
