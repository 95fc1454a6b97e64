"""vmm/fuzz/check.py: each property fails with a message naming what broke."""

import errno
from collections import Counter

import pytest

import kernel
from uapi.linux import gunyah as gh
from vmm.fuzz.check import ALLOWED, Checker


@pytest.fixture(scope="module")
def host():
    host = kernel.boot(dram_size=1 << 30)
    yield host
    host.shutdown()


def test_an_errno_the_spec_gives_passes_and_is_counted(host):
    check = Checker(host, "gunyah", outcomes=Counter())
    dev = host.open("/dev/gunyah")
    with check.ioctl("GUNYAH_VM_START", dev):
        host.ioctl(dev, gh.GUNYAH_VM_START, 0)
    host.close(dev)
    assert check.outcomes == {("GUNYAH_VM_START", "ENOTTY", "/dev/gunyah"): 1}
    check.teardown([dev])


def test_an_errno_the_spec_does_not_give_names_the_ioctl_and_what_is_allowed(host):
    check = Checker(host, "gunyah")
    with pytest.raises(AssertionError) as e, check.ioctl("GUNYAH_VCPU_MMAP_SIZE", 999999):
        raise OSError(errno.EIO, "what a broken driver would say")
    assert "wrong errno: GUNYAH_VCPU_MMAP_SIZE on fd 999999 (closed) failed with EIO" in str(
        e.value
    )
    assert str(e.value).endswith("the spec allows EBADF")


def test_on_a_file_that_is_not_the_ioctls_only_enotty_is_right(host):
    check = Checker(host, "gunyah")
    dev = host.open("/dev/gunyah")
    with pytest.raises(AssertionError) as e, check.ioctl("GUNYAH_VM_START", dev):
        raise OSError(errno.EINVAL, "a VM_START the device file took for its own")
    assert str(e.value).endswith("(/dev/gunyah) failed with EINVAL; the spec allows ENOTTY")
    with check.ioctl("GUNYAH_CREATE_VM", dev):
        raise OSError(errno.EINVAL, "its own ioctl may fail with the spec's errnos")
    check.teardown([dev])


def test_a_python_value_no_c_program_passes_is_the_callers_error(host):
    check = Checker(host, "gunyah")
    with check.ioctl("GUNYAH_CREATE_VM", 3):
        raise OverflowError("int too big to convert")


def test_a_leak_names_what_the_host_still_holds(host):
    check = Checker(host, "gunyah")
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    with pytest.raises(AssertionError, match=r"leak after close: fds \(\) -> \(\d+,\)"):
        check.teardown([dev])
    check.teardown([vm])


def test_a_kernel_bug_fails_the_step(host):
    check = Checker(host, "gunyah")
    host.bugs.append(RuntimeError("a driver's BUG_ON"))
    try:
        with pytest.raises(AssertionError, match=r"kernel bug: .*BUG_ON"):
            check.step()
    finally:
        host.bugs.clear()


@pytest.mark.parametrize(
    ("request_name", "errnos"),
    [
        ("GUNYAH_VM_SET_BOOT_CONTEXT", {errno.EINTR, errno.ENOMEM}),  # spec §2.4
        ("GUNYAH_VM_REMOVE_FUNCTION", {errno.EINTR}),  # §2.4
        ("GUNYAH_VM_START", {errno.EINTR}),  # §2.3
        ("GUNYAH_VCPU_RUN", {errno.EACCES, errno.EBUSY}),  # §2.6, §3.4
    ],
)
def test_the_errnos_the_spec_gives_are_allowed(request_name, errnos):
    assert errnos <= ALLOWED["gunyah"][request_name]
