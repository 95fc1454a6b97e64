"""Anonymous memory and the process's VMAs (kernel/mmap.py) through the Host."""

import errno
import os
import threading

import pytest

from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE, user_address

ANON = MAP_PRIVATE | MAP_ANONYMOUS


def test_anonymous_memory_is_zeroed_host_ram_at_its_user_address(host):
    """An anonymous mapping is a VMA at the address of its first byte, rounded out to
    pages, backed by host RAM (its pages have physical addresses) and zeroed."""
    free = host.gunyah.mm.free_bytes
    mapping = host.mmap(-1, 5000, 3, ANON)
    addr = user_address(mapping)
    vma = host.mm.vma_lookup(addr + 8191)
    assert vma is not None and (vma.start, vma.length) == (addr, 8192)
    assert host.mm.vma_lookup(addr + 8192) is None and host.mm.vma_lookup(addr - 1) is None
    assert bytes(mapping[:8192]) == bytes(8192)
    assert host.gunyah.mm.free_bytes == free - 8192
    host.munmap(mapping)
    assert host.mm.vma_lookup(addr) is None
    assert host.gunyah.mm.free_bytes == free


def test_a_pinned_page_outlives_its_mapping(host):
    """pin_user_pages gives the pages' physical addresses; munmap then keeps the RAM
    until the last pin is dropped, and the freed pages are zeroed for the next user."""
    free = host.gunyah.mm.free_bytes
    mapping = host.mmap(-1, 8192, 3, ANON)
    mapping[4096:4100] = b"\x11\x22\x33\x44"
    addr = user_address(mapping)
    pas = host.mm.pin_user_pages(addr, 2)
    assert pas[1] == pas[0] + 4096
    assert host.gunyah.firmware.gunyah.dram.read(pas[1], 4) == b"\x11\x22\x33\x44"
    host.munmap(mapping)
    assert host.gunyah.mm.free_bytes == free - 8192
    host.mm.unpin_user_page(pas[0])
    assert host.gunyah.mm.free_bytes == free - 8192
    host.mm.unpin_user_page(pas[1])
    assert host.gunyah.mm.free_bytes == free
    assert host.gunyah.firmware.gunyah.dram.read(pas[1], 4) == bytes(4)


def test_pinning_what_is_not_anonymous_memory_is_efault_and_pins_nothing(host):
    mapping = host.mmap(-1, 4096, 3, ANON)
    addr = user_address(mapping)
    with pytest.raises(OSError) as e:
        host.mm.pin_user_pages(addr, 2)  # the second page is not mapped
    assert e.value.errno == errno.EFAULT
    assert host.mm.pinned == {}
    host.munmap(mapping)


def test_munmap_and_mmap_racing_for_an_address_keep_the_vma_tree_right(host):
    """Threads mapping and unmapping at once (the OS hands a freed address straight
    to the next mmap): every munmap removes its own VMA, never another's, and every
    mapping stays findable until its own munmap."""
    errors = []

    def churn():
        try:
            for _ in range(300):
                mapping = host.mmap(-1, 4096, 3, ANON)
                vma = host.mm.vma_lookup(user_address(mapping))
                assert vma is not None and vma.mapping is mapping
                host.munmap(mapping)
        except Exception as e:  # reported below, with the thread's failure
            errors.append(e)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert host.mm.vmas == {}


def test_a_lookup_that_finds_nothing_may_be_served_by_the_fault_hook(host):
    """MmStruct.fault(addr, length) maps what a lookup misses (a server adopting a
    native program's memory), or declines and the lookup stays None."""
    asked = []

    def fault(addr, length):
        asked.append((addr, length))
        if addr != 0x7000_0000:
            return False
        host.mmap(-1, length, 3, ANON, at=addr)
        return True

    host.mm.fault = fault
    try:
        assert host.mm.vma_lookup(0x6000_0000) is None
        vma = host.mm.vma_lookup(0x7000_0000, 0x3000)
        assert (vma.start, vma.length) == (0x7000_0000, 0x3000)
        assert asked == [(0x6000_0000, 4096), (0x7000_0000, 0x3000)]
        assert host.user_address(vma.mapping) == 0x7000_0000
        memfd, offset = host.backing(vma.mapping)
        assert os.pread(memfd, 8, offset) == bytes(8)  # the mapping's pages, by memfd
        vma.mapping[:8] = b"adopted!"
        assert os.pread(memfd, 8, offset) == b"adopted!"
        host.munmap(vma.mapping)
    finally:
        host.mm.fault = None


def test_pinning_offers_each_unmapped_run_to_the_fault_hook_whole(host):
    """pin_user_pages calls MmStruct.fault once per run of the range no VMA covers
    (the run whole, not page by page, up to the next mapping), then pins; a run the
    hook declines is EFAULT with nothing pinned."""
    asked, base = [], 0x7000_0000
    middle = host.mmap(-1, 0x2000, 3, ANON, at=base + 0x3000)  # pages 3 and 4 are mapped
    adopted = []

    def fault(addr, length):
        asked.append((addr, length))
        if addr >= base + 0x8000:
            return False
        adopted.append(host.mmap(-1, length, 3, ANON, at=addr))
        return True

    host.mm.fault = fault
    try:
        pas = host.mm.pin_user_pages(base, 8)
        assert asked == [(base, 0x3000), (base + 0x5000, 0x3000)]
        assert len(pas) == 8 and len(host.mm.pinned) == 8
        assert pas[3] == host.mm.vma_lookup(base + 0x3000).anon.pa
        assert host.mm.pin_user_pages(base + 0x1000, 2) == pas[1:3]  # nothing to adopt now
        assert len(asked) == 2
        with pytest.raises(OSError) as e:
            host.mm.pin_user_pages(base + 0x7000, 3)
        assert e.value.errno == errno.EFAULT
        assert asked[2:] == [(base + 0x8000, 0x2000)]
        assert len(host.mm.pinned) == 8
    finally:
        host.mm.fault = None
    for pa in pas + pas[1:3]:
        host.mm.unpin_user_page(pa)
    assert host.mm.pinned == {}
    for mapping in [middle, *adopted]:
        host.munmap(mapping)


def test_backing_is_einval_for_what_no_memfd_backs(host):
    with pytest.raises(OSError) as e:
        host.backing(bytearray(8))
    assert e.value.errno == errno.EINVAL


def test_installs_lists_the_descriptors_a_call_made(host):
    with host.installs() as new:
        dev = host.open("/dev/gunyah")
        vm = host.ioctl(dev, 0x4700, 0)  # GUNYAH_CREATE_VM
    assert [fd for fd, _ in new] == [dev, vm]
    host.close(vm)
    host.close(dev)
