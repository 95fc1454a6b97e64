"""LinuxHost: the Host calls on the running kernel, checked on ordinary files here
(no /dev/gunyah on this machine), with the same C-style arguments."""

import ctypes
import errno
import mmap
import os
import select
import signal
import termios
import threading

import pytest

from uapi.linux import gunyah as gh
from vmm.host import LinuxHost


def test_ioctl_passes_a_pointer_and_raises_the_kernels_errno():
    host = LinuxHost()
    r, w = os.pipe()
    os.write(w, b"12345")
    count = gh.ffi.new("int *")
    assert host.ioctl(r, termios.FIONREAD, count) == 0  # the kernel wrote through the pointer
    assert count[0] == 5
    with pytest.raises(OSError) as e:
        host.ioctl(r, gh.GUNYAH_CREATE_VM, 0)
    assert e.value.errno == errno.ENOTTY
    with pytest.raises(OSError) as e:
        host.ioctl(r, termios.FIONREAD, 8)  # a bad pointer
    assert e.value.errno == errno.EFAULT
    host.close(r)
    host.close(w)


def test_eventfd_poll_and_signals():
    host = LinuxHost()
    efd = host.eventfd(0, os.EFD_NONBLOCK)
    host.write(efd, (2).to_bytes(8, "little"))
    assert host.poll([(efd, select.POLLIN)], 0) == [(efd, select.POLLIN)]
    assert int.from_bytes(host.read(efd, 8), "little") == 2
    woke = threading.Event()

    old = signal.signal(signal.SIGUSR1, lambda *_: woke.set())
    try:
        host.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        assert woke.wait(5)
    finally:
        signal.signal(signal.SIGUSR1, old)
    host.close(efd)


def test_mmap_and_fallocate_of_a_memfd():
    host = LinuxHost()
    fd = os.memfd_create("t")
    os.ftruncate(fd, 8192)
    view = host.mmap(fd, 8192)
    view[0:4] = b"abcd"
    host.fallocate(fd, 0x01 | 0x02, 0, 4096)  # KEEP_SIZE | PUNCH_HOLE
    assert view[0:4] == bytes(4)
    with pytest.raises(OSError) as e:
        host.fallocate(fd, 0x02, 0, 4096)  # PUNCH_HOLE needs KEEP_SIZE
    assert e.value.errno == errno.EOPNOTSUPP
    host.munmap(view)
    host.close(fd)


ANON = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS


def test_an_anonymous_mapping_has_the_user_address_c_would_get():
    host = LinuxHost()
    view = host.mmap(-1, 8192, mmap.PROT_READ | mmap.PROT_WRITE, ANON)
    view[100:104] = b"gzvm"
    assert ctypes.string_at(host.user_address(view) + 100, 4) == b"gzvm"
    host.munmap(view)


def test_the_simulated_host_gives_the_address_of_the_vma(host):
    view = host.mmap(-1, 8192, mmap.PROT_READ | mmap.PROT_WRITE, ANON)
    addr = host.user_address(view)
    assert addr % 4096 == 0
    assert host.mm.vma_lookup(addr + 8191).mapping is view  # the one VMA a memslot takes
    with pytest.raises(OSError) as e:
        host.user_address(bytearray(8))  # not a mapping
    assert e.value.errno == errno.EINVAL
    host.munmap(view)
    with pytest.raises(OSError) as e:
        host.user_address(view)  # unmapped
    assert e.value.errno == errno.EINVAL
