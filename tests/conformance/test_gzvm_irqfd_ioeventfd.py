"""Stories on GenieZone: a guest's write through an ioeventfd, an SPI through an irqfd,
a signal during GZVM_RUN, and a relinquished page losing its pin.

The guest programs the GICv3 frames where CREATE_DEVICE put them, sleeps
in WFI, and another thread's eventfd write wakes it with the SPI; its
write to the ioeventfd's address signals that eventfd with no exit to
the VMM.
"""

import errno
import os
import signal
import threading
import time

import pytest

from tests.aarch64 import gic_enable
from tests.gzvmvm import GICD, GICR_SIZE, MMIO, RAM_IPA, make_vm
from uapi.linux import gzvm as gz

SPI = 8
INTID = 32 + SPI

GUEST = (
    f"""
    adr x8, vectors
    msr vbar_el1, x8
    ldr x9, ={MMIO:#x}
"""
    + gic_enable(INTID, gicd=GICD, gicr=GICD - GICR_SIZE)
    + """
    mov x20, #0
    str xzr, [x9, #8]               // ready: the GIC is set up
    mov w1, #0x5a
    str w1, [x9, #0x100]            // the ioeventfd's doorbell: no exit
    msr daifclr, #2                 // unmask IRQs
1:  wfi
    b 1b
    .ltorg
    .balign 0x800
vectors:
    .skip 0x280                     // IRQ, current EL with SP_ELx
    mrs x21, S3_0_C12_C12_0         // ICC_IAR1_EL1
    add x20, x20, #1
    str x21, [x9]                   // tell the VMM which interrupt
    msr S3_0_C12_C12_1, x21         // ICC_EOIR1_EL1
    eret
"""
)


def test_ioeventfd_and_irqfd_with_a_guest(gzhost):
    t = make_vm(gzhost, GUEST)
    doorbell, irq = gzhost.eventfd(0, os.EFD_NONBLOCK), gzhost.eventfd()
    ioevent = gz.ffi.new("struct gzvm_ioeventfd *", [0, MMIO + 0x100, 4, doorbell, 0])
    assert gzhost.ioctl(t.vm, gz.GZVM_IOEVENTFD, ioevent) == 0
    irqfd = gz.ffi.new("struct gzvm_irqfd *", {"fd": irq, "gsi": SPI})
    assert gzhost.ioctl(t.vm, gz.GZVM_IRQFD, irqfd) == 0

    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO and t.run.mmio.phys_addr == MMIO + 8
    with pytest.raises(BlockingIOError):
        os.eventfd_read(doorbell)
    writer = threading.Timer(0.2, os.eventfd_write, (irq, 1))  # while the guest is in WFI
    writer.start()
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO
    writer.join()
    assert (t.run.mmio.phys_addr, t.run.mmio.is_write) == (MMIO, 1)
    assert int.from_bytes(bytes(t.run.mmio.data)[:8], "little") == INTID
    assert os.eventfd_read(doorbell) == 1  # the guest's write, served in the kernel

    for fd in (doorbell, irq):
        os.close(fd)
    t.close(gzhost)
    assert gzhost.gzvm.firmware.geniezone.vms == {} and gzhost.mm.pinned == {}


def test_a_signal_during_gzvm_run_is_eintr(gzhost):
    t = make_vm(gzhost, "1: b 1b")
    signal.signal(signal.SIGUSR1, lambda *_: None)
    informed = []
    wrapper = gzhost.gzvm.hvc.gzvm_hypcall_wrapper

    def spy(func, *args):
        informed.append(func.name)
        return wrapper(func, *args)

    gzhost.gzvm.hvc.gzvm_hypcall_wrapper = spy
    result = {}

    def vcpu_thread():
        result["tid"] = threading.get_ident()
        try:
            gzhost.ioctl(t.vcpus[0], gz.GZVM_RUN, t.run)
        except OSError as e:
            result["errno"] = e.errno

    thread = threading.Thread(target=vcpu_thread)
    thread.start()
    while "RUN" not in informed:
        time.sleep(0.01)
    gzhost.pthread_kill(result["tid"], signal.SIGUSR1)
    thread.join(10)
    assert not thread.is_alive() and result["errno"] == errno.EINTR
    assert informed[-1] == "INFORM_EXIT"
    t.close(gzhost)


RELINQUISHED = RAM_IPA + 0x10_0000

RELINQUISH = f"""
    ldr x9, ={MMIO:#x}
    ldr x1, ={RELINQUISHED:#x}
    ldr x2, [x1]                    // demand paged (and pinned)
    str x2, [x9]
    ldr x0, =0xc6000009             // MEM_RELINQUISH
    hvc #0
    str xzr, [x9, #8]
    b .
"""


def test_relinquish_unpins_the_page(gzhost):
    t = make_vm(gzhost, RELINQUISH)
    vm = gzhost.fdtable.get(t.vm)
    gzvm = vm.private
    vm.put()
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO and t.run.mmio.phys_addr == MMIO
    pa = gzvm.pinned_pages[RELINQUISHED]
    assert pa in gzhost.mm.pinned
    pinned = len(gzvm.pinned_pages)
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO and t.run.mmio.phys_addr == MMIO + 8
    assert RELINQUISHED not in gzvm.pinned_pages and len(gzvm.pinned_pages) == pinned - 1
    assert pa not in gzhost.mm.pinned
    t.close(gzhost)
    assert gzhost.mm.pinned == {}
