"""vCPUs of GenieZone VMs (kernel/geniezone/gzvm_vcpu.py, gzvm_exception.py): the VM fd
released under a running vCPU, a guest hypercall the kernel does not serve, PTP,
and a second vCPU with the same id."""

import errno
import threading
import time

import pytest

from tests.gzvmvm import MMIO, make_vm
from uapi.linux import gzvm as gz


def test_releasing_the_vm_under_a_running_vcpu_ends_its_run_with_enodev(gzhost):
    t = make_vm(gzhost, "1: wfi\n b 1b")
    free = gzhost.gzvm.mm.free_bytes
    result = {}

    def vcpu_thread():
        try:
            gzhost.ioctl(t.vcpus[0], gz.GZVM_RUN, t.run)
        except OSError as e:
            result["errno"] = e.errno

    thread = threading.Thread(target=vcpu_thread)
    thread.start()
    time.sleep(0.3)  # in EL2, asleep in WFI
    gzhost.close(t.vm)
    thread.join(10)
    assert not thread.is_alive() and result["errno"] == errno.ENODEV
    assert gzhost.gzvm.firmware.geniezone.vms == {} and gzhost.gzvm.vm_list == []
    assert gzhost.gzvm.mm.free_bytes > free  # the vCPU area and the PFN buffer
    for fd in (*t.vcpus, t.dev):
        gzhost.close(fd)
    gzhost.munmap(t.ram)
    assert gzhost.mm.pinned == {}


def test_an_unserved_guest_hypercall_goes_to_userspace(gzhost):
    t = make_vm(
        gzhost,
        f"""
    ldr x0, =0xc6000042             // a vendor-hyp call nobody serves
    mov x1, #7
    hvc #0
    ldr x9, ={MMIO:#x}
    str x0, [x9]                    // what the VMM answered
    b .
""",
    )
    assert t.go(gzhost) == gz.GZVM_EXIT_HYPERCALL
    assert list(t.run.hypercall.args[0:2]) == [0xC600_0042, 7]
    t.run.hypercall.args[0] = 0x1234
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO
    assert int.from_bytes(bytes(t.run.mmio.data), "little") == 0x1234
    t.close(gzhost)


@pytest.mark.parametrize("counter", [0, 1])
def test_ptp_answers_wall_clock_and_counter(gzhost, counter):
    t = make_vm(
        gzhost,
        f"""
    ldr x0, =0x86000001             // PTP
    mov x1, #{counter}
    hvc #0
    ldr x9, ={MMIO:#x}
    str x0, [x9]
    str x1, [x9]
    str x2, [x9]
    str x3, [x9]
    b .
""",
    )
    before = time.time_ns()
    words = []
    for _ in range(4):
        assert t.go(gzhost) == gz.GZVM_EXIT_MMIO
        words.append(int.from_bytes(bytes(t.run.mmio.data), "little"))
    real, cycles = words[0] << 32 | words[1], words[2] << 32 | words[3]
    assert before <= real <= time.time_ns()
    assert 0 < cycles <= gzhost.gzvm.firmware.geniezone.clock.now
    t.close(gzhost)


def test_ptp_of_an_unknown_counter_goes_to_userspace(gzhost):
    t = make_vm(gzhost, "ldr x0, =0x86000001\n mov x1, #5\n hvc #0\n b .")
    assert t.go(gzhost) == gz.GZVM_EXIT_HYPERCALL
    assert list(t.run.hypercall.args[0:2]) == [0x8600_0001, 5]
    t.close(gzhost)


def test_a_second_vcpu_with_the_same_id(gzhost):
    t = make_vm(gzhost, "b .")
    free = gzhost.gzvm.mm.free_bytes
    with pytest.raises(OSError) as e:
        gzhost.ioctl(t.vm, gz.GZVM_CREATE_VCPU, 0)
    assert e.value.errno == errno.EINVAL  # EL2 refuses it
    assert gzhost.gzvm.mm.free_bytes == free  # its area went back
    t.close(gzhost)
