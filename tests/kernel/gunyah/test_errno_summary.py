"""Every errno of spec section 2.12 that userspace can provoke, provoked through the ABI.

Each case drives a booted host with ioctls (and, for the hypercall errors
a device shows only under pressure, the hypercall wrapper's error
injection) and checks the errno. Not userspace-visible and so not here:
EAGAIN (the driver retries internally) and ERESTARTSYS (a VMM sees EINTR;
tests/kernel/gunyah/test_vcpu_signals.py). irqfd's EBADF comes with the
irqfd tests. RM errors beyond these cases are mapped one by one in
test_rm_errors.py.
"""

import errno

import pytest

import kernel
from tests.gunyahvm import (
    DTB_SIZE,
    MMIO,
    RAM_SIZE,
    RWX_LEND,
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

BAD_POINTER = 8  # never mapped in a process
REPORT = f"ldr x9, ={MMIO:#x}\nstr x0, [x9]\nb ."


def new_vm(host):
    dev = host.open("/dev/gunyah")
    return dev, host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)


@pytest.mark.parametrize(
    "request_name",
    [
        "GUNYAH_CREATE_GUEST_MEM",
        "GUNYAH_VM_SET_DTB_CONFIG",
        "GUNYAH_VM_SET_BOOT_CONTEXT",
        "GUNYAH_VM_MAP_MEM",
        "GUNYAH_VM_ADD_FUNCTION",
        "GUNYAH_VM_REMOVE_FUNCTION",
    ],
)
def test_efault_for_every_pointer_argument(shared_host, request_name):
    host = shared_host
    dev, vm = new_vm(host)
    fd = dev if request_name == "GUNYAH_CREATE_GUEST_MEM" else vm
    assert errno_of(host.ioctl, fd, getattr(gh, request_name), BAD_POINTER) == errno.EFAULT
    host.close(vm)
    host.close(dev)


def test_efault_for_the_function_argument_behind_the_descriptor(shared_host):
    host = shared_host
    dev, vm = new_vm(host)
    desc = gh.ffi.new("struct gunyah_fn_desc *", {"type": gh.GUNYAH_FN_VCPU, "arg_size": 4})
    desc.arg = BAD_POINTER
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EFAULT
    host.close(vm)
    host.close(dev)


def test_enotty_eexist_enoent(shared_host):
    host = shared_host
    dev, vm = new_vm(host)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_CREATE_VM, 0) == errno.ENOTTY
    vcpu = add_vcpu(host, vm, 0)
    assert errno_of(add_vcpu, host, vm, 0) == errno.EEXIST  # same vCPU id
    gmem = guest_mem(host, dev, 0x2000)
    map_mem(host, vm, gmem, 0x8000_0000, 0x1000, RWX_LEND)
    assert errno_of(map_mem, host, vm, gmem, 0x8000_0000, 0x1000, RWX_LEND, 0x1000) == errno.EEXIST
    desc, _keep = fn_desc(99)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.ENOENT  # type
    arg = gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": 5})
    desc, _keep = fn_desc(gh.GUNYAH_FN_VCPU, arg)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == errno.ENOENT
    unmap = RWX_LEND | gh.GUNYAH_MEM_UNMAP
    assert errno_of(map_mem, host, vm, gmem, 0x9000_0000, 0x1000, unmap) == errno.ENOENT
    set_dtb(host, vm, 0x7000_0000, 0x1000)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_START, 0) == errno.ENOENT  # DTB not bound
    for fd in (vcpu, vm, gmem, dev):
        host.close(fd)


def test_einval_cases(shared_host):
    host = shared_host
    dev, vm = new_vm(host)
    assert errno_of(host.ioctl, dev, gh.GUNYAH_CREATE_VM, 1) == errno.EINVAL
    assert errno_of(guest_mem, host, dev, 0x1800) == errno.EINVAL
    assert errno_of(boot_reg, host, vm, gh.REG_SET_X, 32, 0) == errno.EINVAL
    assert errno_of(map_mem, host, vm, dev, 0, 0x1000, RWX_LEND) == errno.EINVAL  # not gmem
    gmem = guest_mem(host, dev, 0x1000)
    unmap = gh.GUNYAH_MEM_UNMAP
    for flags in (gh.GUNYAH_MEM_FORCE_LEND | unmap, 3 | gh.GUNYAH_MEM_ALLOW_READ | unmap):
        # the common validation comes before the search for a binding (ENOENT)
        assert errno_of(map_mem, host, vm, gmem, 0, 0x1000, flags) == errno.EINVAL
    host.close(gmem)
    desc, _keep = fn_desc(gh.GUNYAH_FN_VCPU, gh.ffi.new("char[300]"), 257)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EINVAL
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_START, 0) == errno.EINVAL  # no DTB config
    host.close(vm)
    host.close(dev)


def test_eoverflow_eopnotsupp_enomem(shared_host):
    host = shared_host
    dev, vm = new_vm(host)
    assert errno_of(set_dtb, host, vm, 0xFFFF_FFFF_FFFF_F000, 0x2000) == errno.EOVERFLOW
    gmem = guest_mem(host, dev, 0x1000)
    # a binding is counted in pages: one that wraps 2^64 is taken (EOVERFLOW is the DTB's)
    assert map_mem(host, vm, gmem, 0xFFFF_FFFF_FFFF_F000, 0x2000, RWX_LEND) == 0
    assert errno_of(host.fallocate, gmem, 0, 0, 0x1000) == errno.EOPNOTSUPP  # no KEEP_SIZE
    assert errno_of(host.fallocate, gmem, 0x8, 0, 0x1000) == errno.EOPNOTSUPP  # COLLAPSE_RANGE
    # the host has 1 GiB of RAM here; a guest_memfd is backed by contiguous RAM
    assert errno_of(guest_mem, host, dev, 2 << 30) == errno.ENOMEM
    # a DTB bound from offset 4 KiB of a 4 KiB file: no folio there
    small = guest_mem(host, dev, 0x1000)
    map_mem(host, vm, small, 0x8000_0000, 0x1000, RWX_LEND, 0x1000)
    set_dtb(host, vm, 0x8000_0000, 0x1000)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_START, 0) == errno.ENOMEM
    host.close(small)
    for fd in (gmem, vm, dev):
        host.close(fd)


def test_enodev_and_eintr(host):
    t = make_vm(host, REPORT)
    run = t.run_page()
    assert errno_of(t.run) == errno.ENODEV  # before START
    t.start()
    run.immediate_exit = 1
    assert errno_of(t.run) == errno.EINTR
    run.immediate_exit = 0
    del run
    t.close()


def test_rm_refusal_is_its_errno():
    """A retail RM refuses unprotected VMs: NORESOURCE, which the driver maps to ENODEV."""
    host = kernel.boot(rm_policy="retail", dram_size=1 << 30)
    try:
        t = make_vm(host, REPORT)
        assert errno_of(t.start) == errno.ENODEV
        assert errno_of(t.start) == errno.ENODEV  # and the VM is dead
        t.close()
    finally:
        host.shutdown()


def test_e2big_for_a_demand_paging_list_beyond_one_rm_request(host):
    """One VM_SET_DEMAND_PAGING carries every lent binding; 1,000 of them do not fit.

    The failure comes after VM_CONFIG_IMAGE, with the RM's VM in INIT, where
    the RM takes neither VM_RESET nor VM_DEALLOCATE: as on a device, the VM
    and its DTB pages stay with the RM after close, and the kernel says so.
    """
    t = make_vm(host, REPORT)
    many = guest_mem(host, t.dev, 1000 * 0x1000)
    for i in range(1000):
        map_mem(host, t.vm, many, 0xC000_0000 + i * 0x2000, 0x1000, RWX_LEND, i * 0x1000)
    assert errno_of(t.start) == errno.E2BIG
    free = host.gunyah.mm.free_bytes
    host.close(many)
    t.close()
    assert any("gunyah_rm_dealloc_vmid" in line for line in host.dmesg)
    assert len(host.gunyah.firmware.rm.vm_manager.vms) == 1
    returned = 1000 * 0x1000 + RAM_SIZE + 0x1000  # every guest_memfd page but the parcel's
    assert host.gunyah.mm.free_bytes == free + returned - DTB_SIZE


@pytest.mark.parametrize(
    ("gunyah_error", "expect"),
    [(-1, errno.EOPNOTSUPP), (30, errno.EACCES), (31, errno.EBUSY), (40, errno.EIO)],
)
def test_hypercall_errors_of_vcpu_run(host, gunyah_error, expect):
    t = make_vm(host, REPORT)
    t.start()
    host.gunyah.hcall.faults["gunyah_hypercall_vcpu_run"] = gunyah_error
    try:
        assert errno_of(t.run) == expect
    finally:
        host.gunyah.hcall.faults.clear()
    run = t.run_page()
    assert t.run() == 0 and run.exit_reason == gh.GUNYAH_VCPU_EXIT_MMIO  # and it carries on
    del run
    t.close()


def test_eperm_is_the_page_fault_attempt_for_a_host_mapped_lent_page(host):
    t = make_vm(host, REPORT)
    run = t.run_page()
    t.start()
    view = host.mmap(t.ram, 0x1000)  # the code page, mapped by the VMM
    assert t.run() == 0
    assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
    assert run.page_fault.attempt == -errno.EPERM
    host.munmap(view)
    del run
    t.close()


def test_no_other_exception_type_escapes(shared_host):
    """Garbage of every kind comes back as OSError (never a traceback)."""
    host = shared_host
    dev, vm = new_vm(host)
    for request in (gh.GUNYAH_VM_MAP_MEM, gh.GUNYAH_VM_ADD_FUNCTION, 0xDEAD_BEEF):
        for arg in (-1, 1 << 70, "x", None, 2**64 - 1):
            with pytest.raises(OSError):
                host.ioctl(vm, request, arg)
    assert host.bugs == []
    host.close(vm)
    host.close(dev)
