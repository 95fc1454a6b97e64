"""vCPUs of GenieZone VMs (kernel/geniezone/gzvm_vcpu.py, gzvm_exception.py): the VM fd
released under a running vCPU, a guest hypercall the kernel does not serve, PTP,
and a second vCPU with the same id."""

import errno
import signal
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


SECONDARY = 0x200
SMP = f"""
    ldr x9, ={MMIO:#x}
    ldr x0, =0xc4000003             // PSCI CPU_ON
    mov x1, #1                      // MPIDR of vCPU 1
    ldr x2, ={0x8000_0000 + SECONDARY:#x}
    mov x3, #0x77                   // its context id, in its X0
    hvc #0
    str x0, [x9]                    // PSCI's answer
    b .
    .balign {SECONDARY}
    ldr x9, ={MMIO:#x}
    str x0, [x9, #8]
    b .
"""


def test_psci_cpu_on_starts_a_second_vcpu_in_its_own_thread(gzhost):
    t = make_vm(gzhost, SMP, nr_vcpus=2)
    secondary = {}
    run1 = gz.ffi.new("struct gzvm_vcpu_run *")

    def vcpu1():
        gzhost.ioctl(t.vcpus[1], gz.GZVM_RUN, run1)  # powered off until CPU_ON
        secondary["exit"] = (run1.exit_reason, run1.mmio.phys_addr, bytes(run1.mmio.data))

    thread = threading.Thread(target=vcpu1)
    thread.start()
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO and t.run.mmio.phys_addr == MMIO
    assert int.from_bytes(bytes(t.run.mmio.data), "little") == 0  # PSCI_SUCCESS
    thread.join(10)
    assert secondary["exit"] == (gz.GZVM_EXIT_MMIO, MMIO + 8, (0x77).to_bytes(8, "little"))
    t.close(gzhost)


def test_a_signal_while_waiting_for_another_threads_run_is_eintr(gzhost):
    t = make_vm(gzhost, "1: wfi\n b 1b")
    signal.signal(signal.SIGUSR2, lambda *_: None)
    results = {}

    def runner(name):
        results[name + "-tid"] = threading.get_ident()
        try:
            gzhost.ioctl(t.vcpus[0], gz.GZVM_RUN, gz.ffi.new("struct gzvm_vcpu_run *"))
        except OSError as e:
            results[name] = e.errno

    first = threading.Thread(target=runner, args=("first",))
    first.start()
    time.sleep(0.2)
    second = threading.Thread(target=runner, args=("second",))
    second.start()
    time.sleep(0.2)
    gzhost.pthread_kill(results["second-tid"], signal.SIGUSR2)
    second.join(10)
    assert results["second"] == errno.EINTR and first.is_alive()
    gzhost.pthread_kill(results["first-tid"], signal.SIGUSR2)
    first.join(10)
    assert results["first"] == errno.EINTR
    t.close(gzhost)
