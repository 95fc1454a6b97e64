"""Every Android ioctl of spec gunyah-ack.md §2/§4, in every VM state, on both profiles.

One row per call: what it returns (0 or the errno) on ack-6.1 and on ack-6.6
for a VM that is new (NO_STATE), running (started, its vCPU not yet run) and
exited (the guest's PSCI SYSTEM_OFF seen through a STATUS exit). A single
value holds for every state: none of these checks looks at the state.
"""

import errno
import os

import pytest

import kernel
from tests.kernel.gunyah.ackvm import (
    RAM_IPA,
    SYSTEM_OFF,
    add_fn,
    add_vcpu,
    anonymous,
    boot_reg,
    fn_desc,
    make_vm,
    region,
    remove_fn,
    set_dtb,
    set_fw,
)
from uapi.linux import gunyah as gh
from uapi.linux import gunyah_ack as ack

STATES = ("new", "running", "exited")
FREE_IPA = 0x1_0000_0000
EINVAL, ENOTTY, EEXIST, ENOENT = errno.EINVAL, errno.ENOTTY, errno.EEXIST, errno.ENOENT


def _vm_ioctl(request, ctype=None, fields=None):
    def call(t):
        arg = ack.ffi.new(f"{ctype} *", fields) if ctype is not None else 0
        return t.host.ioctl(t.vm.vm, request, arg)

    return call


def _region(label=7, gpa=FREE_IPA, size=0x1000, flags=None, uaddr=None, lend=False):
    def call(t):
        addr = t.spare if uaddr is None else uaddr
        rwx = ack.GH_MEM_ALLOW_READ | ack.GH_MEM_ALLOW_WRITE if flags is None else flags
        return region(t.host, t.vm.vm, label, gpa, size, addr, rwx, lend)

    return call


def _ioeventfd(flags, length=4):
    def call(t):
        efd = t.host.eventfd()
        try:
            fields = {"fd": efd, "addr": 0x1000_0000, "len": length, "flags": flags}
            return add_fn(
                t.host, t.vm.vm, ack.GH_FN_IOEVENTFD, "struct gh_fn_ioeventfd_arg", fields
            )
        finally:
            t.host.close(efd)

    return call


def _cma_eventfd(offset):
    """MAP_CMA_MEM of one page at ``offset`` of an eventfd (size 0, not a CMA fd)."""

    def call(t):
        efd = t.host.eventfd()
        try:
            fields = {"size": 0x1000, "guest_mem_fd": efd, "offset": offset}
            arg = ack.ffi.new("struct gunyah_map_cma_mem_args *", fields)
            return t.host.ioctl(t.vm.vm, ack.GH_VM_ANDROID_MAP_CMA_MEM, arg)
        finally:
            t.host.close(efd)

    return call


def _cma_memfd(t):
    """MAP_CMA_MEM of the first page of a one-page memfd: big enough, not a CMA fd."""
    fd = os.memfd_create("not-cma")
    try:
        os.ftruncate(fd, 0x1000)
        fields = {"size": 0x1000, "guest_mem_fd": fd}
        arg = ack.ffi.new("struct gunyah_map_cma_mem_args *", fields)
        return t.host.ioctl(t.vm.vm, ack.GH_VM_ANDROID_MAP_CMA_MEM, arg)
    finally:
        os.close(fd)


def _irqfd(fd=None, flags=0):
    def call(t):
        efd = t.host.eventfd() if fd is None else fd
        try:
            fields = {"fd": efd, "label": 5, "flags": flags}
            return add_fn(t.host, t.vm.vm, ack.GH_FN_IRQFD, "struct gh_fn_irqfd_arg", fields)
        finally:
            if fd is None:
                t.host.close(efd)

    return call


def _add_raw(fn_type, arg_size):
    def call(t):
        buf = ack.ffi.new("char[]", 512)
        desc, _keep = fn_desc(fn_type, buf, arg_size)
        return t.host.ioctl(t.vm.vm, ack.GH_VM_ADD_FUNCTION, desc)

    return call


def _vcpu_ioctl(request):
    return lambda t: t.host.ioctl(t.vm.vcpus[0], request, 0)


def _dev_ioctl(request):
    return lambda t: t.host.ioctl(t.vm.dev, request, 0)


# (name, call, result on ack-6.1, result on ack-6.6); a dict gives one per state
CASES = [
    ("TENTATIVE_UAPI", _dev_ioctl(ack.GH_ANDROID_TENTATIVE_UAPI), ENOTTY, ENOTTY),
    ("CREATE_GUEST_MEM", _dev_ioctl(gh.GUNYAH_CREATE_GUEST_MEM), ENOTTY, ENOTTY),
    ("CREATE_VM arg 1", lambda t: t.host.ioctl(t.vm.dev, ack.GH_CREATE_VM, 1), EINVAL, EINVAL),
    ("MAP_MEM", _vm_ioctl(gh.GUNYAH_VM_MAP_MEM), ENOTTY, ENOTTY),
    ("CHECK_EXTENSION", _vm_ioctl(ack.GH_VM_CHECK_EXTENSION), ENOTTY, ENOTTY),
    (
        "SET_BOOT_CONTEXT PC",
        lambda t: boot_reg(t.host, t.vm.vm, ack.REG_SET_PC, 0, RAM_IPA),
        ENOTTY,
        {"new": 0, "running": EINVAL, "exited": EINVAL},
    ),
    (
        "SET_BOOT_CONTEXT reg bit 16",
        _vm_ioctl(ack.GH_VM_SET_BOOT_CONTEXT, "struct gh_vm_boot_context", {"reg": 1 << 16}),
        ENOTTY,
        EINVAL,
    ),
    (
        "SET_BOOT_CONTEXT SP 3",
        lambda t: boot_reg(t.host, t.vm.vm, ack.REG_SET_SP, 3, 0x1000),
        ENOTTY,
        EINVAL,
    ),
    (
        "RECLAIM_REGION",
        _vm_ioctl(ack.GH_VM_RECLAIM_REGION, "struct gunyah_address_range", {"size": 0x1000}),
        ENOTTY,
        0,
    ),
    (
        "RECLAIM_REGION unaligned",
        _vm_ioctl(ack.GH_VM_RECLAIM_REGION, "struct gunyah_address_range", {"size": 0x10}),
        ENOTTY,
        EINVAL,
    ),
    (
        "MAP_CMA_MEM size 0",
        _vm_ioctl(ack.GH_VM_ANDROID_MAP_CMA_MEM, "struct gunyah_map_cma_mem_args", {}),
        ENOTTY,
        EINVAL,
    ),
    (
        "MAP_CMA_MEM closed fd",
        _vm_ioctl(
            ack.GH_VM_ANDROID_MAP_CMA_MEM,
            "struct gunyah_map_cma_mem_args",
            {"size": 0x1000, "guest_mem_fd": 999_999},
        ),
        ENOTTY,
        errno.EBADF,
    ),
    (
        "MAP_CMA_MEM fd above INT_MAX",  # the u32 is the driver's int fd: negative
        _vm_ioctl(
            ack.GH_VM_ANDROID_MAP_CMA_MEM,
            "struct gunyah_map_cma_mem_args",
            {"size": 0x1000, "guest_mem_fd": 0x8000_0000},
        ),
        ENOTTY,
        errno.EBADF,
    ),
    # §4.10: EBADF, then EOVERFLOW past the fd's size, then EINVAL for a non-CMA fd
    ("MAP_CMA_MEM eventfd past its size", _cma_eventfd(0), ENOTTY, errno.EOVERFLOW),
    ("MAP_CMA_MEM eventfd offset 2^63", _cma_eventfd(1 << 63), ENOTTY, errno.EOVERFLOW),
    ("MAP_CMA_MEM memfd, not CMA", _cma_memfd, ENOTTY, EINVAL),
    (
        "SET_AUTH_TYPE ANDROID_PVM",
        _vm_ioctl(ack.GH_VM_ANDROID_SET_AUTH_TYPE, "struct gunyah_auth_desc", {"type": 0}),
        ENOTTY,
        ENOENT,
    ),
    (
        "SET_AUTH_TYPE QTVM arg_size 25",
        _vm_ioctl(
            ack.GH_VM_ANDROID_SET_AUTH_TYPE,
            "struct gunyah_auth_desc",
            {"type": ack.GUNYAH_AUTH_QCOM_TRUSTED_VM, "arg_size": 25},
        ),
        ENOTTY,
        EINVAL,
    ),
    ("USER_MEM label in use", _region(label=0), EEXIST, 0),
    ("USER_MEM overlap", _region(gpa=RAM_IPA), EEXIST, EEXIST),
    ("LEND_USER_MEM overlap", _region(gpa=RAM_IPA, lend=True), EEXIST, EEXIST),
    ("USER_MEM flags 8", _region(flags=8), EINVAL, EINVAL),
    ("USER_MEM size 0", _region(size=0), EINVAL, EINVAL),
    ("USER_MEM unaligned", _region(gpa=FREE_IPA + 0x10), EINVAL, EINVAL),
    (
        "USER_MEM wraps",
        _region(gpa=(1 << 64) - 0x1000, size=0x2000),
        errno.EOVERFLOW,
        errno.EOVERFLOW,
    ),
    (  # gpa + size == 2^64 is 0 in the driver's u64: a wrap too
        "USER_MEM ends at 2^64",
        _region(gpa=(1 << 64) - 0x1000, size=0x1000),
        errno.EOVERFLOW,
        errno.EOVERFLOW,
    ),
    (
        "LEND_USER_MEM ends at 2^64",
        _region(gpa=(1 << 64) - 0x1000, size=0x1000, lend=True),
        errno.EOVERFLOW,
        errno.EOVERFLOW,
    ),
    (
        "MAP_CMA_MEM ends at 2^64",
        _vm_ioctl(
            ack.GH_VM_ANDROID_MAP_CMA_MEM,
            "struct gunyah_map_cma_mem_args",
            {"guest_addr": (1 << 64) - 0x1000, "size": 0x1000, "guest_mem_fd": 999_999},
        ),
        ENOTTY,
        errno.EOVERFLOW,
    ),
    ("USER_MEM unmapped uaddr", _region(uaddr=0x1000), errno.EFAULT, 0),
    ("USER_MEM new range", _region(), 0, 0),
    (
        "SET_DTB_CONFIG wraps",
        _vm_ioctl(
            ack.GH_VM_SET_DTB_CONFIG,
            "struct gh_vm_dtb_config",
            {"guest_phys_addr": (1 << 64) - 0x1000, "size": 0x1000},
        ),
        errno.EOVERFLOW,
        errno.EOVERFLOW,
    ),
    ("SET_DTB_CONFIG", lambda t: set_dtb(t.host, t.vm.vm, RAM_IPA, 0x1000), 0, 0),
    (
        "SET_FW_CONFIG wraps",
        lambda t: set_fw(t.host, t.vm.vm, (1 << 64) - 0x1000, 0x1000),
        0,
        errno.EOVERFLOW,
    ),
    ("START", _vm_ioctl(ack.GH_VM_START), {"new": 0, "running": 0, "exited": errno.ENODEV}, None),
    ("ADD vCPU id in use", lambda t: add_vcpu(t.host, t.vm.vm, 0), EEXIST, EEXIST),
    ("ADD vCPU arg_size 8", _add_raw(ack.GH_FN_VCPU, 8), EINVAL, EINVAL),
    ("ADD arg_size 257", _add_raw(ack.GH_FN_VCPU, 257), EINVAL, EINVAL),
    ("ADD unknown type", _add_raw(9, 4), ENOENT, ENOENT),
    ("ADD ioeventfd DATAMATCH as 2", _ioeventfd(2), EINVAL, EINVAL),
    ("ADD ioeventfd len 3", _ioeventfd(0, 3), EINVAL, EINVAL),
    ("ADD ioeventfd", _ioeventfd(0), 0, 0),
    ("ADD irqfd flags 2", _irqfd(flags=2), EINVAL, EINVAL),
    ("ADD irqfd closed fd", _irqfd(fd=999_999), errno.EBADF, errno.EBADF),
    ("ADD irqfd", _irqfd(), 0, 0),
    ("REMOVE arg_size 0", lambda t: remove_fn(t.host, t.vm.vm, ack.GH_FN_IRQFD), 0, ENOENT),
    (
        "REMOVE irqfd no such label",
        lambda t: remove_fn(
            t.host, t.vm.vm, ack.GH_FN_IRQFD, "struct gh_fn_irqfd_arg", {"label": 9}
        ),
        ENOENT,
        ENOENT,
    ),
    ("vCPU unknown ioctl", _vcpu_ioctl(0x4799), EINVAL, ENOTTY),
    ("vCPU MMAP_SIZE", _vcpu_ioctl(ack.GH_VCPU_MMAP_SIZE), 4096, 4096),
]


class Target:
    """A VM of ``host`` in one state, and a spare page of user memory."""

    def __init__(self, host, state):
        self.host = host
        self.vm = make_vm(host, SYSTEM_OFF)
        self.spare_map, self.spare = anonymous(host, 0x1000)
        if state != "new":
            self.vm.start()
        if state == "exited":
            run = self.vm.run_page()
            self.vm.run()
            assert run.exit_reason == ack.GH_VCPU_EXIT_STATUS
            del run

    def close(self):
        self.vm.close()
        self.host.munmap(self.spare_map)


@pytest.fixture(scope="module", params=("ack-6.1", "ack-6.6"))
def android(request):
    host = kernel.boot(uapi=request.param, dram_size=1 << 30)
    yield request.param, host
    host.shutdown()
    assert host.bugs == []


def _expected(row, uapi, state):
    value = row[2] if uapi == "ack-6.1" else row[3]
    if value is None:  # the same as on ack-6.1
        value = row[2]
    return value[state] if isinstance(value, dict) else value


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("row", CASES, ids=[c[0] for c in CASES])
def test_ioctl_errno_by_state_and_profile(android, row, state):
    uapi, host = android
    target = Target(host, state)
    try:
        expected = _expected(row, uapi, state)
        try:
            ret, err = row[1](target), 0
        except OSError as e:
            ret, err = None, e.errno
        if expected in (0, 4096):  # success: 0, a new fd, or the size asked for
            assert err == 0, (uapi, state, errno.errorcode.get(err, err))
            assert ret == expected or (expected == 0 and ret >= 0), (uapi, state, ret)
        else:
            assert err == expected, (uapi, state, errno.errorcode.get(err, err))
    finally:
        target.close()


def test_qtvm_auth_is_taken_but_its_start_is_not_modelled():
    """SET_AUTH_TYPE(QTVM) with a 24-byte argument: 0, EOVERFLOW for a wrapping
    range; SET_FW_CONFIG leaves a QTVM a QTVM; START is EOPNOTSUPP (no CMA payload)."""
    host = kernel.boot(uapi="ack-6.6", dram_size=1 << 30)
    try:
        vm = make_vm(host, SYSTEM_OFF)

        def auth(gpa, size):
            arg = ack.ffi.new(
                "struct gunyah_qtvm_auth_arg *",
                {"vm_id": 45, "pas_id": 7, "guest_phys_addr": gpa, "size": size},
            )
            desc = ack.ffi.new(
                "struct gunyah_auth_desc *",
                {
                    "type": ack.GUNYAH_AUTH_QCOM_TRUSTED_VM,
                    "arg_size": 24,
                    "arg": int(ack.ffi.cast("uintptr_t", arg)),
                },
            )
            return host.ioctl(vm.vm, ack.GH_VM_ANDROID_SET_AUTH_TYPE, desc)

        with pytest.raises(OSError) as e:
            auth(-0x1000 % (1 << 64), 0x2000)
        assert e.value.errno == errno.EOVERFLOW
        assert auth(RAM_IPA, 0x20_0000) == 0
        assert set_fw(host, vm.vm, RAM_IPA, 0x1000) == 0
        with pytest.raises(OSError) as e:
            vm.start()
        assert e.value.errno == errno.EOPNOTSUPP
        vm.close()
    finally:
        host.shutdown()


ANY_LENGTH = {"addr": 0x1000_0000, "len": 4}  # no DATAMATCH: stored as len 0, any length
DATAMATCH_4 = {"addr": 0x1000_0000, "len": 4, "flags": 1, "datamatch": 1}


@pytest.mark.parametrize("uapi", ("ack-6.1", "ack-6.6"))
@pytest.mark.parametrize(
    ("first", "second", "err"),
    [
        (ANY_LENGTH, DATAMATCH_4, EEXIST),  # len 0 matches any length (§8)
        (DATAMATCH_4, ANY_LENGTH, EEXIST),
        (ANY_LENGTH, {**ANY_LENGTH, "len": 8}, EEXIST),
        (DATAMATCH_4, {**DATAMATCH_4, "len": 8}, 0),  # other length: no collision
        (DATAMATCH_4, {**DATAMATCH_4, "datamatch": 2}, 0),  # other value
        (DATAMATCH_4, DATAMATCH_4, EEXIST),
        (ANY_LENGTH, {**ANY_LENGTH, "addr": 0x1000_0008}, 0),  # other address
    ],
    ids=("any-then-dm", "dm-then-any", "any-then-any", "dm-lengths", "dm-values", "same", "addr"),
)
def test_ioeventfd_collisions(uapi, first, second, err):
    host = kernel.boot(uapi=uapi)
    try:
        vm = make_vm(host, SYSTEM_OFF)
        fds = [host.eventfd(), host.eventfd()]
        ioe = "struct gh_fn_ioeventfd_arg"
        assert add_fn(host, vm.vm, ack.GH_FN_IOEVENTFD, ioe, {**first, "fd": fds[0]}) == 0
        fields = {**second, "fd": fds[1]}
        if err:
            with pytest.raises(OSError) as e:
                add_fn(host, vm.vm, ack.GH_FN_IOEVENTFD, ioe, fields)
            assert e.value.errno == err
        else:
            assert add_fn(host, vm.vm, ack.GH_FN_IOEVENTFD, ioe, fields) == 0
        vm.close()
        for fd in fds:
            host.close(fd)
    finally:
        host.shutdown()
