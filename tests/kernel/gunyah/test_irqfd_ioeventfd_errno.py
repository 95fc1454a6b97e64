"""irqfd and ioeventfd binds: the errno rules of spec sections 2.7 and 2.8."""

import errno
import os

import pytest

from tests.conformance.test_irqfd_ioeventfd import add_ioeventfd, add_irqfd
from tests.gunyahvm import add_vcpu, errno_of, fn_desc
from uapi.linux import gunyah as gh


@pytest.fixture
def vm(shared_host):
    host = shared_host
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    yield vm
    host.close(vm)
    host.close(dev)


def remove(host, vm, fn_type, ctype, fields, arg_size=None):
    desc, _keep = fn_desc(fn_type, gh.ffi.new(f"{ctype} *", fields), arg_size)
    return host.ioctl(vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc)


def test_irqfd_rules(shared_host, vm):
    host = shared_host
    efd = host.eventfd()
    r, w = os.pipe()
    assert add_irqfd(host, vm, efd, label=1) == 0
    assert errno_of(add_irqfd, host, vm, efd, label=1) == errno.EEXIST  # same label
    assert errno_of(add_irqfd, host, vm, efd, label=2, flags=2) == errno.EINVAL  # flags
    assert errno_of(add_irqfd, host, vm, 999_999, label=2) == errno.EBADF
    assert errno_of(add_irqfd, host, vm, r, label=2) == errno.EINVAL  # a pipe
    assert errno_of(add_irqfd, host, vm, vm, label=2) == errno.EINVAL  # a VM fd
    arg = gh.ffi.new("struct gunyah_fn_irqfd_arg *", {"fd": efd, "label": 2})
    desc, _keep = fn_desc(gh.GUNYAH_FN_IRQFD, arg, 12)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EINVAL  # size
    # the driver holds its own reference: closing ours does not undo the bind
    os.close(efd)
    ctype = "struct gunyah_fn_irqfd_arg"
    # REMOVE compares the label alone (fd and flags are not looked at)
    assert remove(host, vm, gh.GUNYAH_FN_IRQFD, ctype, {"label": 1, "fd": 12345, "flags": 1}) == 0
    assert errno_of(remove, host, vm, gh.GUNYAH_FN_IRQFD, ctype, {"label": 1}) == errno.ENOENT
    os.close(r)
    os.close(w)


def test_ioeventfd_rules(shared_host, vm):
    host = shared_host
    efd = host.eventfd()
    addr = 0x1000_0000
    assert add_ioeventfd(host, vm, efd, addr) == 0
    assert errno_of(add_ioeventfd, host, vm, efd, addr) == errno.EEXIST
    # len 0 (no DATAMATCH) matches any length: it collides with a DATAMATCH handler
    assert errno_of(add_ioeventfd, host, vm, efd, addr, 4, datamatch=1) == errno.EEXIST
    dm = addr + 0x10
    assert add_ioeventfd(host, vm, efd, dm, 4, datamatch=1) == 0
    assert add_ioeventfd(host, vm, efd, dm, 4, datamatch=2) == 0  # another value
    assert add_ioeventfd(host, vm, efd, dm, 8, datamatch=1) == 0  # another length
    assert errno_of(add_ioeventfd, host, vm, efd, dm, 4, datamatch=1) == errno.EEXIST
    assert errno_of(add_ioeventfd, host, vm, efd, addr + 8, 3) == errno.EINVAL  # len
    assert errno_of(add_ioeventfd, host, vm, efd, addr + 8, 0, datamatch=1) == errno.EINVAL
    assert errno_of(add_ioeventfd, host, vm, efd, 2**64 - 4, 8) == errno.EINVAL  # wraps
    assert errno_of(add_ioeventfd, host, vm, 999_999, addr + 8) == errno.EBADF
    assert errno_of(add_ioeventfd, host, vm, vm, addr + 8) == errno.EINVAL
    ctype = "struct gunyah_fn_ioeventfd_arg"
    fields = {"fd": efd, "addr": addr, "len": 4, "flags": 2}
    desc, _keep = fn_desc(gh.GUNYAH_FN_IOEVENTFD, gh.ffi.new(f"{ctype} *", fields))
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EINVAL  # flags
    # REMOVE compares addr, len, flags and the datamatch value
    match = {"addr": dm, "len": 4, "flags": 1, "datamatch": 3}
    assert errno_of(remove, host, vm, gh.GUNYAH_FN_IOEVENTFD, ctype, match) == errno.ENOENT
    for length, value in ((4, 1), (4, 2), (8, 1)):
        match.update(len=length, datamatch=value)
        assert remove(host, vm, gh.GUNYAH_FN_IOEVENTFD, ctype, match) == 0
    assert remove(host, vm, gh.GUNYAH_FN_IOEVENTFD, ctype, {"addr": addr}) == 0
    assert errno_of(remove, host, vm, gh.GUNYAH_FN_IOEVENTFD, ctype, {"addr": addr}) == errno.ENOENT
    host.close(efd)


def test_ioeventfd_remove_compares_the_len_given_at_add(shared_host, vm):
    """Without DATAMATCH the handler matches writes of any length, but REMOVE still
    compares the ``len`` the VMM gave at ADD."""
    host, efd, addr = shared_host, shared_host.eventfd(), 0x1000_0000
    ctype = "struct gunyah_fn_ioeventfd_arg"
    assert add_ioeventfd(host, vm, efd, addr, 4) == 0
    for other in (0, 8):
        fields = {"addr": addr, "len": other}
        assert errno_of(remove, host, vm, gh.GUNYAH_FN_IOEVENTFD, ctype, fields) == errno.ENOENT
    assert remove(host, vm, gh.GUNYAH_FN_IOEVENTFD, ctype, {"addr": addr, "len": 4}) == 0
    host.close(efd)


def test_remove_function_has_no_arg_size_limit(shared_host, vm):
    """REMOVE copies ``arg_size`` bytes whatever it is: past GUNYAH_FN_MAX_ARG_SIZE it
    compares equal to nothing (ENOENT); past what kmalloc gives it is ENOMEM."""
    host = shared_host
    assert add_vcpu(host, vm, 0) >= 0
    arg = gh.ffi.new("char[300]")
    desc, _keep = fn_desc(gh.GUNYAH_FN_VCPU, arg, 300)
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == errno.ENOENT
    desc.arg_size = 0xFFFF_FFFF
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == errno.ENOMEM
    desc.arg_size = 300
    assert errno_of(host.ioctl, vm, gh.GUNYAH_VM_ADD_FUNCTION, desc) == errno.EINVAL
