"""guest_memfd: host mmap of guest memory, fallocate's rules, memory back on close."""

import errno

import pytest

from kernel.fs import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE,
)
from uapi.linux import gunyah as gh

KEEP_PUNCH = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE


def create(host, size, flags=0):
    dev = host.open("/dev/gunyah")
    args = gh.ffi.new("struct gunyah_create_mem_args *", {"flags": flags, "size": size})
    fd = host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, args)
    host.close(dev)
    return fd


def test_mmap_is_the_memory_and_punch_hole_zeroes_it(shared_host):
    host = shared_host
    fd = create(host, 0x4000)
    mem = host.mmap(fd, 0x4000)
    mem[0x1000:0x1004] = b"abcd"
    again = host.mmap(fd, 0x1000, offset=0x1000)
    assert again[:4] == b"abcd"
    host.fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0x1000, 0x1000)
    assert mem[0x1000:0x1004] == bytes(4)
    host.munmap(again)
    host.munmap(mem)
    host.close(fd)


@pytest.mark.parametrize(
    ("mode", "offset", "length", "expect"),
    [
        (FALLOC_FL_KEEP_SIZE, 0, 0x1000, None),
        (FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE, 0x1000, 0x1000, None),
        (0, 0, 0x1000, errno.EOPNOTSUPP),  # KEEP_SIZE is required
        (FALLOC_FL_KEEP_SIZE | 0x08, 0, 0x1000, errno.EINVAL),  # COLLAPSE_RANGE not alone
        (0x08, 0, 0x1000, errno.EOPNOTSUPP),  # COLLAPSE_RANGE: not guest_memfd's
        (FALLOC_FL_KEEP_SIZE | 0x80, 0, 0x1000, errno.EOPNOTSUPP),  # unknown to the VFS
        (
            FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE,
            0,
            0x1000,
            errno.EOPNOTSUPP,
        ),
        (FALLOC_FL_PUNCH_HOLE, 0, 0x1000, errno.EOPNOTSUPP),  # punching needs KEEP_SIZE
        (FALLOC_FL_KEEP_SIZE, -0x1000, 0x1000, errno.EINVAL),
        (FALLOC_FL_KEEP_SIZE, 0, 0, errno.EINVAL),
        (FALLOC_FL_KEEP_SIZE, 1 << 62, 1 << 62, errno.EFBIG),
        (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0x800, 0x1000, errno.EINVAL),
        (FALLOC_FL_KEEP_SIZE, 0, 0x5000, errno.EINVAL),  # beyond the file
        (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0x3000, 0x2000, None),  # nothing past it
    ],
)
def test_fallocate_rules(shared_host, mode, offset, length, expect):
    host = shared_host
    fd = create(host, 0x4000)
    try:
        if expect is None:
            host.fallocate(fd, mode, offset, length)
        else:
            with pytest.raises(OSError) as e:
                host.fallocate(fd, mode, offset, length)
            assert e.value.errno == expect
    finally:
        host.close(fd)


def test_memory_goes_back_when_the_last_fd_closes(shared_host):
    host = shared_host
    mm = host.gunyah.mm
    before = mm.free_bytes
    fd = create(host, 0x40_0000, gh.GHMF_ALLOW_HUGEPAGE)
    copy = host.dup(fd)
    host.close(fd)
    assert mm.free_bytes == before - 0x40_0000
    host.close(copy)
    assert mm.free_bytes == before


def test_other_files_cannot_fallocate_or_mmap(shared_host):
    host = shared_host
    dev = host.open("/dev/gunyah")
    with pytest.raises(OSError) as e:
        host.fallocate(dev, FALLOC_FL_KEEP_SIZE, 0, 0x1000)
    assert e.value.errno == errno.ENODEV  # a character device, not a regular file
    with pytest.raises(OSError) as e:
        host.mmap(dev, 0x1000)
    assert e.value.errno == errno.ENODEV
    host.close(dev)
