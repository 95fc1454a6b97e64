"""VM-fd ioctls and their errno, before and after START (spec section 2.4)."""

import errno

import pytest

from tests.gunyahvm import MMIO, RAM_IPA, boot_reg, errno_of, make_vm, map_mem
from uapi.linux import gunyah as gh

LEND_RWX = gh.GUNYAH_MEM_FORCE_LEND | gh.GUNYAH_MEM_ALLOW_RWX


def new_vm(host):
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    args = gh.ffi.new("struct gunyah_create_mem_args *", {"size": 0x40_0000})
    gmem = host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, args)
    return dev, vm, gmem


@pytest.mark.parametrize(
    ("flags", "ipa", "offset", "size", "expect"),
    [
        (LEND_RWX, 0x8000_0000, 0, 0x1000, 0),
        (gh.GUNYAH_MEM_FORCE_LEND, 0x8000_0000, 0, 0x1000, errno.EINVAL),  # no ALLOW_*
        (3 | gh.GUNYAH_MEM_ALLOW_READ, 0x8000_0000, 0, 0x1000, errno.EINVAL),  # access 3
        (LEND_RWX | 0x200, 0x8000_0000, 0, 0x1000, errno.EINVAL),  # unknown flag
        (LEND_RWX, 0x8000_0800, 0, 0x1000, errno.EINVAL),
        (LEND_RWX, 0x8000_0000, 0x800, 0x1000, errno.EINVAL),
        (LEND_RWX, 0x8000_0000, 0, 0x1800, errno.EINVAL),
    ],
)
def test_map_mem_validation(host, flags, ipa, offset, size, expect):
    _, vm, gmem = new_vm(host)
    args = gh.ffi.new(
        "struct gunyah_map_mem_args *",
        {"guest_addr": ipa, "flags": flags, "guest_mem_fd": gmem, "offset": offset, "size": size},
    )
    if expect:
        assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_MAP_MEM, args) == expect
    else:
        assert host.ioctl(vm, gh.GUNYAH_VM_MAP_MEM, args) == 0


def test_map_mem_fd_that_is_not_guest_memfd_is_einval(host):
    dev, vm, _ = new_vm(host)
    for fd in (dev, 999_999):
        assert errno_of(map_mem, host, vm, fd, 0x8000_0000, 0x1000, LEND_RWX) == errno.EINVAL


def test_overlaps_are_eexist_and_unmap_rules(host):
    _, vm, gmem = new_vm(host)
    assert map_mem(host, vm, gmem, 0x8000_0000, 0x3000, LEND_RWX) == 0
    assert errno_of(map_mem, host, vm, gmem, 0x8000_2000, 0x1000, LEND_RWX) == errno.EEXIST
    args = gh.ffi.new(
        "struct gunyah_map_mem_args *",
        {
            "guest_addr": 0x9000_0000,
            "flags": LEND_RWX,
            "guest_mem_fd": gmem,
            "offset": 0x2000,
            "size": 0x1000,
        },
    )
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_MAP_MEM, args) == errno.EEXIST  # file range
    unmap = LEND_RWX | gh.GUNYAH_MEM_UNMAP
    middle = gh.ffi.new(
        "struct gunyah_map_mem_args *",
        {
            "guest_addr": 0x8000_1000,
            "flags": unmap,
            "guest_mem_fd": gmem,
            "offset": 0x1000,
            "size": 0x1000,
        },
    )
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_MAP_MEM, middle) == errno.EINVAL
    middle.guest_addr, middle.offset = 0x8000_2000, 0x2000  # a suffix
    assert host.ioctl(vm, gh.GUNYAH_VM_MAP_MEM, middle) == 0
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_MAP_MEM, middle) == errno.ENOENT
    middle.flags = LEND_RWX
    assert host.ioctl(vm, gh.GUNYAH_VM_MAP_MEM, middle) == 0  # free again


def test_functions(host):
    _, vm, _ = new_vm(host)
    arg = gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": 1})
    ptr = int(gh.ffi.cast("uintptr_t", arg))
    desc = gh.ffi.new(
        "struct gunyah_fn_desc *", {"type": gh.GUNYAH_FN_VCPU, "arg_size": 4, "arg": ptr}
    )
    vcpu = host.ioctl(vm, gh.GUNYAH_VM_ADD_FUNCTION, desc)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EEXIST
    desc.arg_size = 3
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EINVAL
    desc.arg_size = 257
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EINVAL
    desc.arg_size, desc.type = 4, 99
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.ENOENT
    desc.type, desc.arg = gh.GUNYAH_FN_VCPU, 8
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EFAULT
    desc.arg = ptr
    assert host.ioctl(vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == 0
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == errno.ENOENT
    assert errno_of(host.ioctl, vcpu, gh.GUNYAH_VCPU_RUN, 0) == errno.ENODEV


def test_after_start(host):
    t = make_vm(host, f"ldr x9, ={MMIO:#x}\nstr x0, [x9]\nldr x1, [x9]\nb .")
    vm, vcpu = t.vm, t.vcpus[0]
    assert host.ioctl(vm, gh.GUNYAH_VM_START, 0) == 0
    ctx = gh.ffi.new("struct gunyah_vm_boot_context *", {"reg": 0, "value": 1})
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_SET_BOOT_CONTEXT, ctx) == errno.EINVAL
    config = gh.ffi.new("struct gunyah_vm_dtb_config *", {"guest_phys_addr": 0, "size": 0x1000})
    assert host.ioctl(vm, gh.GUNYAH_VM_SET_DTB_CONFIG, config) == 0  # stored, ignored
    run_page = host.mmap(vcpu, 4096)
    run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", run_page)
    run.immediate_exit = 1
    assert errno_of(host.ioctl, vcpu, gh.GUNYAH_VCPU_RUN, 0) == errno.EINTR
    run.immediate_exit = 0
    assert host.ioctl(vcpu, gh.GUNYAH_VCPU_RUN, 0) == 0
    run.mmio.resume_action = 7
    assert errno_of(host.ioctl, vcpu, gh.GUNYAH_VCPU_RUN, 0) == errno.EINVAL
    del run
    host.munmap(run_page)


def test_start_with_dtb_outside_any_binding_is_enoent_then_enodev(host):
    _, vm, _ = new_vm(host)
    config = gh.ffi.new(
        "struct gunyah_vm_dtb_config *", {"guest_phys_addr": 0x7000_0000, "size": 0x1000}
    )
    host.ioctl(vm, gh.GUNYAH_VM_SET_DTB_CONFIG, config)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_START, 0) == errno.ENOENT
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_START, 0) == errno.ENODEV


def set_reg(host, vm, reg, value):
    ctx = gh.ffi.new("struct gunyah_vm_boot_context *", {"reg": reg, "value": value})
    return host.ioctl(vm, gh.GUNYAH_VM_SET_BOOT_CONTEXT, ctx)


def test_boot_context_bits_31_16_are_ignored(host):
    """v16 checks only the set (bits 15:8) and the index (7:0): a PC given with bits
    31:16 set is stored under its own key and sent to the RM as the PC."""
    t = make_vm(host, f"b .\nldr x9, ={MMIO:#x}\nstr x9, [x9]\nb .")
    assert (
        set_reg(
            host, t.vm, 0x00AB_0000 | gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_PC, 0), RAM_IPA + 4
        )
        == 0
    )
    run = t.run_page()
    assert t.start() == 0 and t.run() == 0
    assert (run.exit_reason, run.mmio.phys_addr) == (gh.GUNYAH_VCPU_EXIT_MMIO, MMIO)
    del run
    t.close()


@pytest.mark.parametrize(("reg_set", "index"), [(gh.REG_SET_X, 31), (gh.REG_SET_SP, 2)])
def test_boot_registers_v16_takes_but_the_vcpu_lacks_fail_start_with_einval(host, reg_set, index):
    """X31 and SP index 2 pass v16's check; the hypervisor has no such register, so
    the RM refuses it (ARGUMENT_INVALID) and START fails with EINVAL."""
    t = make_vm(host, "b .")
    assert set_reg(host, t.vm, gh.GUNYAH_VM_BOOT_CONTEXT_REG(reg_set, index), 1) == 0
    assert errno_of(t.start) == errno.EINVAL
    assert errno_of(t.start) == errno.ENODEV
    t.close()


@pytest.mark.parametrize(
    ("value", "v16"),
    [
        (0, "erases the register"),
        (2, "refuses it with EINVAL"),
        (0x402, "refuses it with EINVAL"),
        (0x406, "stores it as an xarray internal entry"),
        (0x8000_0000, None),
        (1, None),
    ],
)
def test_boot_context_values_v16_cannot_store_are_kept_and_logged(host, value, v16):
    """v16 keeps each value as an xarray entry: 0 erases, ``(v & 3) == 2`` is an internal
    entry (EINVAL up to XA_RETRY_ENTRY, 0x402). Every value is kept here (a documented
    deviation); those v16 mishandles are logged with what v16 would do."""
    _, vm, _ = new_vm(host)
    reg = gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_X, 1)
    assert set_reg(host, vm, reg, value) == 0
    logged = [line for line in host.dmesg if "boot context" in line]
    assert (logged and v16 in logged[0]) if v16 else logged == []


@pytest.mark.parametrize(("index", "value"), [(0, 0x8010_0000), (1, 0x8011_0000)])
def test_boot_context_stack_pointers_reach_the_guest(host, index, value):
    """SP index 0 and 1 are SP_EL0 and SP_EL1; the guest starts at EL1h, so SP_EL1 is
    the SP its first instruction sees."""
    t = make_vm(
        host,
        f"ldr x27, ={MMIO:#x}\n mov x26, sp\n str x26, [x27]\n"
        "mrs x26, sp_el0\n str x26, [x27]\n b .",
    )
    boot_reg(host, t.vm, gh.REG_SET_SP, index, value)
    run = t.run_page()
    assert t.start() == 0
    seen = []
    for _ in range(2):
        assert t.run() == 0
        seen.append(int.from_bytes(bytes(run.mmio.data), "little"))
    assert seen[1 - index] == value  # SP_EL1 is SP at EL1h; SP_EL0 reads back
    del run
    t.close()


@pytest.mark.parametrize(("length", "offset"), [(0, 0), (4097, 0), (4096, 4096)])
def test_the_run_page_is_one_page_at_offset_zero(host, length, offset):
    """A vCPU's mmap covers its run page only: a length under 1 is EINVAL (mmap(2));
    more than the page, or an offset past it, is EINVAL here where v16 maps and the
    access then faults (SIGBUS), which a Python buffer cannot deliver."""
    t = make_vm(host, "b .")
    assert errno_of(host.mmap, t.vcpus[0], length, 3, 1, offset) == errno.EINVAL
    t.close()


def test_a_closed_vm_leaves_the_rm_notifier_chain(host):
    """Each started VM registers its notifier; the last close unregisters that same
    one, so the chain (which every RM notification walks) does not grow per VM."""
    notifiers = len(host.gunyah.rm._notifiers)
    for _ in range(3):
        t = make_vm(host, "ldr x0, =0x84000008\nhvc #0\nb .")
        t.start()
        t.run()
        t.close()
        assert len(host.gunyah.rm._notifiers) == notifiers
