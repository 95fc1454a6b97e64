"""Story: every VM-fd ioctl in every state a VMM can reach (spec section 2.4).

Row by row, in NO_STATE (before START) and RUNNING, then START and VCPU_RUN
in the states after a failed start and after the guest has exited.
The guest reads an address from an MMIO mailbox, loads from it and
reports the value, forever; so the test can show that memory mapped
after START is demand paged when first touched.
"""

import errno
import threading

from tests.gunyahvm import (
    DTB_OFFSET,
    MMIO,
    RAM_IPA,
    RW_SHARE,
    add_vcpu,
    boot_reg,
    errno_of,
    fn_desc,
    guest_mem,
    make_vm,
    map_mem,
    set_dtb,
)
from uapi.linux import gunyah as gh

LATE_IPA = 0xA000_0000
PROBE = f"""
    ldr x9, ={MMIO:#x}
1:  ldr x2, [x9]              // the VMM names an address
    ldr x3, [x2]              // loads from it
    str x3, [x9, #8]          // and reports what it read
    b 1b
"""


def serve(t, run, address):
    """Answer the mailbox read with ``address``; return what the guest then reports."""
    assert t.run() == 0
    assert (run.exit_reason, run.mmio.phys_addr, run.mmio.is_write) == (
        gh.GUNYAH_VCPU_EXIT_MMIO,
        MMIO,
        0,
    )
    run.mmio.data[0:8] = address.to_bytes(8, "little")
    run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_HANDLED
    assert t.run() == 0
    assert (run.mmio.phys_addr, run.mmio.is_write) == (MMIO + 8, 1)
    return int.from_bytes(bytes(run.mmio.data), "little")


def vcpu_remove_desc(vcpu_id):
    return fn_desc(gh.GUNYAH_FN_VCPU, gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": vcpu_id}))


def test_no_state_row_by_row(host):
    t = make_vm(host, PROBE, vcpus=2)
    # SET_DTB_CONFIG stores (the last one counts)
    assert set_dtb(host, t.vm, 0, 0x1000) == 0
    assert set_dtb(host, t.vm, RAM_IPA + DTB_OFFSET, 0x2000) == 0
    # SET_BOOT_CONTEXT stores, and a later call overwrites
    assert boot_reg(host, t.vm, gh.REG_SET_X, 5, 1) == 0
    assert boot_reg(host, t.vm, gh.REG_SET_X, 5, 2) == 0
    # ADD_FUNCTION and REMOVE_FUNCTION work before START
    extra = add_vcpu(host, t.vm, 7)
    desc, _keep = vcpu_remove_desc(7)
    assert host.ioctl(t.vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == 0
    assert errno_of(host.ioctl, extra, gh.GUNYAH_VCPU_RUN, 0) == errno.ENODEV
    host.close(extra)
    # MAP_MEM adds and removes bindings
    late = guest_mem(host, t.dev, 0x1000)
    assert map_mem(host, t.vm, late, LATE_IPA, 0x1000, RW_SHARE) == 0
    assert map_mem(host, t.vm, late, LATE_IPA, 0x1000, RW_SHARE | gh.GUNYAH_MEM_UNMAP) == 0
    # VCPU_RUN before START has no vCPU to run
    assert errno_of(t.run) == errno.ENODEV
    # START runs the start sequence
    assert t.start() == 0
    host.close(late)
    t.close()


def test_running_row_by_row(host):
    t = make_vm(host, PROBE, vcpus=2)
    run = t.run_page()
    assert t.start() == 0
    # START is idempotent while running
    assert t.start() == 0
    # SET_DTB_CONFIG is stored and ignored
    assert set_dtb(host, t.vm, 0, 0) == 0
    # SET_BOOT_CONTEXT is refused
    assert errno_of(boot_reg, host, t.vm, gh.REG_SET_PC, 0, RAM_IPA) == errno.EINVAL
    # MAP_MEM after START: the new binding is demand paged on first touch
    late = guest_mem(host, t.dev, 0x1000)
    page = host.mmap(late, 0x1000)
    page[0:8] = (0xFEED).to_bytes(8, "little")
    host.munmap(page)
    assert map_mem(host, t.vm, late, LATE_IPA, 0x1000, RW_SHARE) == 0
    assert serve(t, run, LATE_IPA) == 0xFEED
    # ADD_FUNCTION after START: the ticket is populated at once from the VM's resources
    desc, _keep = vcpu_remove_desc(1)
    assert host.ioctl(t.vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == 0
    assert errno_of(host.ioctl, t.vcpus[1], gh.GUNYAH_VCPU_RUN, 0) == errno.ENODEV
    again = add_vcpu(host, t.vm, 1)  # the released vCPU resource is claimed again
    ended = []
    runner = threading.Thread(
        target=lambda: ended.append(errno_of(host.ioctl, again, gh.GUNYAH_VCPU_RUN, 0))
    )
    runner.start()  # vCPU 1 is off until PSCI CPU_ON: it waits in the kernel
    runner.join(0.2)
    assert runner.is_alive()
    # REMOVE_FUNCTION while it waits ends its VCPU_RUN (immediate_exit)
    assert host.ioctl(t.vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == 0
    runner.join(10)
    assert ended == [errno.EINTR]
    # a vCPU id the VM config has no CPU for never gets a resource
    stranger = add_vcpu(host, t.vm, 9)
    assert errno_of(host.ioctl, stranger, gh.GUNYAH_VCPU_RUN, 0) == errno.ENODEV
    # the guest still answers
    assert serve(t, run, LATE_IPA) == 0xFEED
    del run
    for fd in (again, stranger, late):
        host.close(fd)
    t.close()


def test_after_exit_start_is_enodev_and_vcpu_run_reports_status(host):
    t = make_vm(host, "ldr x0, =0x84000008\nhvc #0\nb .")
    run = t.run_page()
    t.start()
    assert t.run() == 0 and run.exit_reason == gh.GUNYAH_VCPU_EXIT_STATUS
    assert run.status.status == gh.GUNYAH_VM_STATUS_EXITED
    assert errno_of(t.start) == errno.ENODEV
    assert errno_of(boot_reg, host, t.vm, gh.REG_SET_X, 0, 0) == errno.EINVAL
    assert set_dtb(host, t.vm, 0, 0) == 0
    assert t.run() == 0 and run.exit_reason == gh.GUNYAH_VCPU_EXIT_STATUS  # SYSTEM_DOWN
    run.exit_reason = 0
    assert t.run() == 0 and run.exit_reason == 0  # returns at once, writes nothing
    del run
    t.close()


def test_after_a_failed_start_the_vm_is_dead(host):
    t = make_vm(host, PROBE, dtb=b"not a devicetree".ljust(64, b"\0"))
    assert errno_of(t.start) == errno.EINVAL  # the RM cannot parse the VM config
    assert errno_of(t.start) == errno.ENODEV
    assert errno_of(t.run) == errno.ENODEV
    assert errno_of(boot_reg, host, t.vm, gh.REG_SET_X, 0, 0) == errno.EINVAL
    t.close()
    rm = host.gunyah.firmware.rm
    assert rm.vm_manager.vms == {} and rm.memparcels.parcels == {}
