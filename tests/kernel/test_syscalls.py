"""The Host's syscalls: real fds, EBADF, ENOTTY, EFAULT, and the first /dev/gunyah ioctls."""

import errno
import os
import select

import pytest

from kernel.mmap import MAP_PRIVATE, MAP_SHARED, PROT_READ
from uapi.linux import gunyah as gh


def err(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


def test_fds_are_real_and_do_not_collide(shared_host):
    host = shared_host
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    efd = os.eventfd(0)
    assert len({dev, vm, efd}) == 3
    assert os.fstat(vm) is not None
    os.close(efd)
    host.close(vm)
    host.close(dev)


def test_bad_fds_and_requests(shared_host):
    host = shared_host
    dev = host.open("/dev/gunyah")
    assert err(host.ioctl, 999_999, gh.GUNYAH_CREATE_VM, 0) == errno.EBADF
    assert err(host.ioctl, dev, 0x4712, 0) == errno.ENOTTY
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    assert err(host.ioctl, vm, gh.GUNYAH_CREATE_VM, 0) == errno.ENOTTY
    host.close(vm)
    assert err(host.ioctl, vm, gh.GUNYAH_VM_SET_DTB_CONFIG, 0) == errno.EBADF
    assert err(host.close, vm) == errno.EBADF
    assert err(host.open, "/dev/kvm") == errno.ENOENT
    host.close(dev)


def test_create_vm_takes_zero(shared_host):
    host = shared_host
    dev = host.open("/dev/gunyah")
    assert err(host.ioctl, dev, gh.GUNYAH_CREATE_VM, 1) == errno.EINVAL
    host.close(dev)


@pytest.mark.parametrize(
    ("flags", "size", "expect"),
    [
        (0, 0x10_0000, None),
        (gh.GHMF_CLOEXEC | gh.GHMF_ALLOW_HUGEPAGE, 0x20_0000, None),
        (0, 0, None),  # size 0 is accepted
        (0, 0x1001, errno.EINVAL),
        (0b1000, 0x1000, errno.EINVAL),  # the test VMM's invalid-flags case
    ],
)
def test_create_guest_mem(shared_host, flags, size, expect):
    host = shared_host
    dev = host.open("/dev/gunyah")
    args = gh.ffi.new("struct gunyah_create_mem_args *", {"flags": flags, "size": size})
    if expect is None:
        fd = host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, args)
        assert bool(os.get_inheritable(fd)) is not bool(flags & gh.GHMF_CLOEXEC)
        host.close(fd)
    else:
        assert err(host.ioctl, dev, gh.GUNYAH_CREATE_GUEST_MEM, args) == expect
    host.close(dev)


def test_bad_pointers_are_efault(shared_host):
    host = shared_host
    dev = host.open("/dev/gunyah")
    for bad in (0, 8, 0xDEAD_0000_0000):
        assert err(host.ioctl, dev, gh.GUNYAH_CREATE_GUEST_MEM, bad) == errno.EFAULT
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    assert err(host.ioctl, vm, gh.GUNYAH_VM_SET_BOOT_CONTEXT, 16) == errno.EFAULT
    host.close(vm)
    host.close(dev)


def test_boot_context_validation(shared_host):
    host = shared_host
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    ctx = gh.ffi.new("struct gunyah_vm_boot_context *")
    for reg, expect in [
        (gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_PC, 0), 0),
        (gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_X, 31), 0),
        (gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_SP, 2), 0),
        (gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_PC, 1), errno.EINVAL),
        (gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_SP, 3), errno.EINVAL),
        (gh.GUNYAH_VM_BOOT_CONTEXT_REG(3, 0), errno.EINVAL),
    ]:
        ctx.reg = reg
        if expect:
            assert err(host.ioctl, vm, gh.GUNYAH_VM_SET_BOOT_CONTEXT, ctx) == expect
        else:
            assert host.ioctl(vm, gh.GUNYAH_VM_SET_BOOT_CONTEXT, ctx) == 0
    host.close(vm)
    host.close(dev)


def test_dup_shares_the_file(shared_host):
    host = shared_host
    dev = host.open("/dev/gunyah")
    copy = host.dup(dev)
    host.close(dev)
    vm = host.ioctl(copy, gh.GUNYAH_CREATE_VM, 0)
    host.close(vm)
    host.close(copy)


def test_hypervisor_facts_in_sysfs(shared_host):
    """What a VMM probes before opening /dev/gunyah: type, API version, variant."""
    host = shared_host

    def read(path):
        fd = host.open(path, os.O_RDONLY)
        try:
            return host.read(fd, 64) + host.read(fd, 64)  # the second read is at EOF
        finally:
            host.close(fd)

    assert read("/sys/hypervisor/type") == b"gunyah\n"
    assert read("/sys/hypervisor/gunyah/api") == b"1\n"
    assert read("/sys/hypervisor/gunyah/variant") == b"72\n"  # 0x48, Gunyah's own variant
    assert err(host.open, "/sys/hypervisor/type", os.O_WRONLY) == errno.EACCES


def test_eventfds_are_the_processes_own(shared_host):
    host = shared_host
    efd = host.eventfd(0, os.EFD_NONBLOCK)
    host.write(efd, (3).to_bytes(8, "little"))
    assert host.poll([(efd, select.POLLIN)], 0) == [(efd, select.POLLIN)]
    assert os.eventfd_read(efd) == 3  # the real eventfd
    assert host.poll([(efd, select.POLLIN)], 0) == []
    assert err(host.ioctl, efd, gh.GUNYAH_CREATE_VM, 0) == errno.ENOTTY  # open, not ours
    dev = host.open("/dev/gunyah")
    assert err(host.read, dev, 8) == errno.EINVAL
    host.close(dev)
    host.close(efd)
    assert err(host.read, efd, 8) == errno.EBADF
    assert err(host.ioctl, efd, gh.GUNYAH_CREATE_VM, 0) == errno.EBADF


@pytest.mark.parametrize("fd", [-1, 2**31, 2**40])
def test_a_number_no_descriptor_can_be_is_ebadf(shared_host, fd):
    """A descriptor outside a C int's non-negative range is EBADF for every call that
    takes one, never another exception."""
    host = shared_host
    for call, args in (
        (host.close, ()),
        (host.dup, ()),
        (host.read, (8,)),
        (host.write, (b"x",)),
        (host.ioctl, (gh.GUNYAH_CREATE_VM, 0)),
        (host.mmap, (4096,)),
        (host.fallocate, (0, 0, 4096)),
    ):
        assert err(call, fd, *args) == errno.EBADF, call.__name__


def test_poll_skips_negative_fds_and_marks_others_invalid(shared_host):
    """poll(2): an entry with a negative fd is skipped; one that is not open is
    POLLNVAL, whatever its number."""
    host = shared_host
    efd = host.eventfd(1)
    ready = host.poll([(-1, select.POLLIN), (efd, select.POLLIN), (2**40, select.POLLIN)], 0)
    assert sorted(ready) == sorted([(efd, select.POLLIN), (2**40, select.POLLNVAL)])
    os.close(efd)


def test_eventfd_and_read_refuse_what_c_cannot_pass(shared_host):
    host = shared_host
    assert err(host.eventfd, -1) == errno.EINVAL
    assert err(host.eventfd, 2**32) == errno.EINVAL
    assert err(host.eventfd, 0, 0x7FFF_0000) == errno.EINVAL  # unknown flags
    efd = host.eventfd(0xFFFF_FFFF)
    assert err(host.read, efd, -1) == errno.EINVAL
    os.close(efd)


def test_munmap_takes_only_mappings_and_keeps_one_still_viewed(shared_host):
    """munmap of anything mmap did not return is EINVAL. While a view made from the
    mapping lives, munmap is EBUSY and changes nothing: the mapping still works and
    its file stays open; once the view is gone it unmaps."""
    host = shared_host
    dev = host.open("/dev/gunyah")
    mem = host.ioctl(
        dev,
        gh.GUNYAH_CREATE_GUEST_MEM,
        gh.ffi.new("struct gunyah_create_mem_args *", {"size": 4096}),
    )
    mapping = host.mmap(mem, 4096)
    assert err(host.munmap, 123) == errno.EINVAL
    assert err(host.munmap, bytearray(4096)) == errno.EINVAL
    view = memoryview(mapping)
    assert err(host.munmap, mapping) == errno.EBUSY
    view[0] = 0x5A
    assert mapping[0] == 0x5A
    view.release()
    host.munmap(mapping)
    assert err(host.munmap, mapping) == errno.EINVAL  # already unmapped
    host.close(mem)
    host.close(dev)


@pytest.mark.parametrize(("length", "offset"), [(0, 0), (-4096, 0), (4096, -4096), (4096, 100)])
def test_mmap_length_and_offset(shared_host, length, offset):
    """mmap(2)'s own checks, before the file's: EINVAL for a length under 1 and an
    offset that is negative or not page aligned (a vCPU's run page included)."""
    host = shared_host
    dev = host.open("/dev/gunyah")
    mem = host.ioctl(
        dev,
        gh.GUNYAH_CREATE_GUEST_MEM,
        gh.ffi.new("struct gunyah_create_mem_args *", {"size": 8192}),
    )
    assert err(host.mmap, mem, length, 3, 1, offset) == errno.EINVAL
    host.close(mem)
    host.close(dev)


def test_a_value_c_cannot_take_is_the_callers_type_error(shared_host):
    """Where C takes an integer, another Python type is a TypeError raised before the
    kernel model sees it (as the os module does), never a model bug."""
    host = shared_host
    dev = host.open("/dev/gunyah")
    mem = host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, _mem_args(4096))
    for call, args in (
        (host.ioctl, (dev, "x", 0)),
        (host.fallocate, (mem, 3, 0, "x")),
        (host.mmap, (mem, "4096")),
        (host.read, (dev, None)),
        (host.poll, ([(None, select.POLLIN)], 0)),
        (host.pthread_kill, (None, 0)),
    ):
        with pytest.raises(TypeError):
            call(*args)
    assert err(host.munmap, None) == errno.EINVAL
    assert host.bugs == []
    host.close(mem)
    host.close(dev)


def test_map_private_writes_stay_private_and_read_only_mappings_refuse_writes(shared_host):
    """MAP_PRIVATE: the mapping's writes go to copies, the file keeps its data. Without
    PROT_WRITE the mapping is read-only (a write raises, where C would fault). A
    mapping type other than shared or private is EINVAL, and so is PROT_NONE."""
    host = shared_host
    dev = host.open("/dev/gunyah")
    mem = host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, _mem_args(4096))
    shared = host.mmap(mem, 4096, 3, MAP_SHARED)
    shared[0:8] = (0x1111).to_bytes(8, "little")
    private = host.mmap(mem, 4096, 3, MAP_PRIVATE)
    assert private[0:8] == shared[0:8]
    private[0:8] = (0x2222).to_bytes(8, "little")
    assert int.from_bytes(shared[0:8], "little") == 0x1111
    read_only = host.mmap(mem, 4096, PROT_READ, MAP_SHARED)
    with pytest.raises(TypeError):
        read_only[0:8] = bytes(8)
    assert int.from_bytes(read_only[0:8], "little") == 0x1111
    for mapping in (shared, private, read_only):
        host.munmap(mapping)
    assert err(host.mmap, mem, 4096, 3, 0) == errno.EINVAL  # no mapping type
    assert err(host.mmap, mem, 4096, 0, MAP_SHARED) == errno.EINVAL  # PROT_NONE
    host.close(mem)
    host.close(dev)


def _mem_args(size):
    return gh.ffi.new("struct gunyah_create_mem_args *", {"size": size})


def test_poll_events_are_a_short_and_eventfd_flags_are_checked(shared_host):
    """poll's events travel in a C short (higher bits are lost, -1 is every event);
    eventfd flags outside EFD_CLOEXEC|EFD_NONBLOCK|EFD_SEMAPHORE are EINVAL, however
    large."""
    host = shared_host
    efd = host.eventfd(1)
    assert host.poll([(efd, -1)], 0) == [(efd, select.POLLIN | select.POLLOUT)]
    assert host.poll([(efd, 1 << 16)], 0) == []
    for flags in (1 << 31, 1 << 32, 0x40):
        assert err(host.eventfd, 0, flags) == errno.EINVAL
    os.close(efd)


def test_poll_gives_each_entry_its_own_revents_and_checks_the_timeout(shared_host):
    """One fd listed twice gets revents for each entry (select.poll alone would keep
    the last registration only); a timeout no C int holds is EINVAL."""
    host = shared_host
    efd = host.eventfd(1)
    ready = host.poll([(efd, select.POLLIN), (efd, select.POLLOUT)], 0)
    assert ready == [(efd, select.POLLIN), (efd, select.POLLOUT)]
    for timeout in (2**31, -(2**31) - 1, 2**64):
        assert err(host.poll, [(efd, select.POLLIN)], timeout) == errno.EINVAL
    os.close(efd)


def test_read_of_another_file_is_short_never_a_python_error(shared_host):
    """read(2) may return less than asked: a huge count on an eventfd gives its 8
    bytes, not MemoryError; a count no size_t holds is EINVAL."""
    host = shared_host
    efd = host.eventfd(5)
    assert host.read(efd, 2**62) == (5).to_bytes(8, "little")
    assert err(host.read, efd, 2**64) == errno.EINVAL
    os.close(efd)
