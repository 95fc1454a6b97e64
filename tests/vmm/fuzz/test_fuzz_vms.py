"""vmm/fuzz/vms.py: the guest code encoded by hand is what the assembler makes,
and each VM built right runs its guest to PSCI SYSTEM_OFF."""

import kernel
from tests.aarch64 import assemble
from uapi.linux import gunyah as gh
from uapi.linux import gzvm as gz
from vmm.fuzz import vms

OFF = "movz x0, #8\nmovk x0, #0x8400, lsl #16\nhvc #0\nb ."


def test_power_off_is_what_the_assembler_makes():
    assert vms.POWER_OFF == assemble(OFF)


def test_store_then_off_is_what_the_assembler_makes():
    source = (
        f"movz x9, #0x1000, lsl #16\n1: str x1, [x9]\nadd x1, x1, #1\ncmp x1, #3\nb.ne 1b\n{OFF}"
    )
    assert vms.STORE_THEN_OFF == assemble(source)


def test_the_gunyah_vm_powers_off():
    host = kernel.boot(dram_size=1 << 30)
    try:
        vm = vms.gunyah_vm(host)
        host.ioctl(vm.vm, gh.GUNYAH_VM_START, 0)
        run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", page := host.mmap(vm.vcpus[0], 4096))
        host.ioctl(vm.vcpus[0], gh.GUNYAH_VCPU_RUN, 0)
        assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_STATUS
        assert run.status.status == gh.GUNYAH_VM_STATUS_EXITED
        del run
        host.munmap(page)
        for fd in vm.fds():
            host.close(fd)
    finally:
        host.shutdown()


def test_the_gzvm_vm_stores_three_times_then_powers_off():
    host = kernel.boot(dram_size=1 << 30, hypervisor="geniezone")
    try:
        vm = vms.gzvm_vm(host)
        stores = []
        while host.ioctl(vm.vcpus[0], gz.GZVM_RUN, vm.run) == 0:
            if vm.run.exit_reason != gz.GZVM_EXIT_MMIO:
                break
            stores.append(
                (vm.run.mmio.phys_addr, int.from_bytes(bytes(vm.run.mmio.data), "little"))
            )
        assert stores == [(vms.MMIO, 0), (vms.MMIO, 1), (vms.MMIO, 2)]
        assert vm.run.exit_reason == gz.GZVM_EXIT_SYSTEM_EVENT
        for fd in vm.fds():
            host.close(fd)
        host.munmap(vm.ram)
    finally:
        host.shutdown()
