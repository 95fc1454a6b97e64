"""Scenario stories, after the intent of the public Gunyah test VMM's scenario list.

Each test is one story a VMM author would recognise: the bindings a VMM
makes, guest_memfd as a file, ioeventfd and irqfd, vCPUs, map and unmap,
the holding-cell guest driven step by step, memory shared and lent,
several cores. Stories told elsewhere in tests/conformance are not
repeated here.
"""

import errno
import os
import threading

import pytest

from kernel.fs import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE
from tests.conformance.test_irqfd_ioeventfd import add_ioeventfd, add_irqfd
from tests.gunyahvm import (
    DTB_OFFSET,
    MMIO,
    RAM_IPA,
    RW_SHARE,
    RWX_LEND,
    SHARED_IPA,
    add_vcpu,
    boot_reg,
    errno_of,
    fn_desc,
    guest_mem,
    make_vm,
    map_mem,
    set_dtb,
)
from tests.holdingcell import LOOPBACK, OK, READ, RESULT, STATUS, WRITE, HoldingCell, flat_image
from tests.kernel.gunyah.rmhelper import vm_config_dtb
from uapi.linux import gunyah as gh

PUNCH = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE


# bindings: the calls a VMM makes, each as the test VMM's unit tests expect
def test_bindings(host):
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    assert errno_of(guest_mem, host, dev, 0x1000, 0b1000) == errno.EINVAL  # invalid flags
    mem = guest_mem(host, dev, 100 << 20)
    assert (
        map_mem(
            host, vm, mem, 0x4000, 4 << 20, gh.GUNYAH_MEM_DEFAULT_ACCESS | gh.GUNYAH_MEM_ALLOW_RWX
        )
        == 0
    )
    assert set_dtb(host, vm, 0x4000, 0x1000) == 0
    assert boot_reg(host, vm, gh.REG_SET_X, 0, 0x4000) == 0
    vcpu = add_vcpu(host, vm, 0)
    assert host.ioctl(vcpu, gh.GUNYAH_VCPU_MMAP_SIZE, 0) >= gh.ffi.sizeof("struct gunyah_vcpu_run")
    efd = host.eventfd()
    assert add_irqfd(host, vm, efd, label=0) == 0
    assert add_ioeventfd(host, vm, efd, 0x1000_0000, 4, datamatch=1) == 0
    arg = gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": 0})
    desc, _keep = fn_desc(gh.GUNYAH_FN_VCPU, arg)
    assert host.ioctl(vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc) == 0
    for fd in (efd, vcpu, mem, vm, dev):
        host.close(fd)


# guest_memfd as a file
def test_guest_memfd_fallocate_punch_hole_dup_and_mmap(host):
    dev = host.open("/dev/gunyah")
    mem = guest_mem(host, dev, 0x4000)
    twin = host.dup(mem)
    view = host.mmap(twin, 0x4000)
    view[0x1000:0x1004] = b"data"
    host.fallocate(mem, FALLOC_FL_KEEP_SIZE, 0, 0x4000)  # allocate: nothing changes
    assert view[0x1000:0x1004] == b"data"
    host.fallocate(mem, PUNCH, 0x1000, 0x1000)
    assert view[0x1000:0x1004] == bytes(4)  # punched through the dup too
    assert errno_of(host.fallocate, mem, PUNCH, 0x800, 0x1000) == errno.EINVAL
    host.munmap(view)
    for fd in (mem, twin, dev):
        host.close(fd)


# ioeventfd: many, and dropped
def test_many_ioeventfds_and_dropping_one(host):
    addrs = [MMIO + 0x100 + 8 * i for i in range(8)]
    stores = "\n".join(f"ldr x1, ={a:#x}\nstr x1, [x1]" for a in addrs)
    t = make_vm(host, f"{stores}\nldr x9, ={MMIO:#x}\nstr xzr, [x9]\nb .")
    efds = [host.eventfd(0, os.EFD_NONBLOCK) for _ in addrs]
    for efd, addr in zip(efds, addrs, strict=True):
        add_ioeventfd(host, t.vm, efd, addr)
    arg = gh.ffi.new("struct gunyah_fn_ioeventfd_arg *", {"addr": addrs[3]})
    desc, _keep = fn_desc(gh.GUNYAH_FN_IOEVENTFD, arg)
    host.ioctl(t.vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc)  # dropped: its write exits instead
    run = t.run_page()
    t.start()
    assert t.run() == 0 and run.mmio.phys_addr == addrs[3]
    assert t.run() == 0 and run.mmio.phys_addr == MMIO
    counts = [os.eventfd_read(e) if i != 3 else 0 for i, e in enumerate(efds)]
    assert counts == [1, 1, 1, 0, 1, 1, 1, 1]
    del run
    for efd in efds:
        host.close(efd)
    t.close()


# irqfd: many labels on one VM
def test_many_irqfds(host):
    t = make_vm(host, "b .", doorbells=tuple((label, 8 + label) for label in range(6)))
    efds = [host.eventfd() for _ in range(6)]
    for label, efd in enumerate(efds):
        add_irqfd(host, t.vm, efd, label=label, flags=label % 2)
    t.start()
    vm = host.fdtable.get(t.vm)
    bound = sorted(f.instance.label for f in vm.private.functions if f.type == gh.GUNYAH_FN_IRQFD)
    assert bound == list(range(6))
    assert all(
        f.instance.capid is not None for f in vm.private.functions if f.type == gh.GUNYAH_FN_IRQFD
    )
    vm.put()
    for efd in efds:
        host.close(efd)
    t.close()


# vCPUs: created, mapped, dropped
def test_vcpu_create_mmap_and_drop(host):
    t = make_vm(host, "b .", vcpus=2)
    page = host.mmap(t.vcpus[1], 4096)
    assert bytes(page[:8]) == bytes(8)  # a zeroed run page
    host.munmap(page)
    arg = gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": 1})
    desc, _keep = fn_desc(gh.GUNYAH_FN_VCPU, arg)
    host.ioctl(t.vm, gh.GUNYAH_VM_REMOVE_FUNCTION, desc)
    assert errno_of(host.ioctl, t.vcpus[1], gh.GUNYAH_VCPU_RUN, 0) == errno.ENODEV
    t.close()


# map and unmap
def test_map_unmap_single_multiple_partial_and_with_offsets(host):
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    mem = guest_mem(host, dev, 0x10000)
    for i in range(4):  # multiple bindings of one file, at offsets
        assert (
            map_mem(host, vm, mem, 0x8000_0000 + i * 0x10_0000, 0x2000, RWX_LEND, i * 0x4000) == 0
        )
    unmap = RWX_LEND | gh.GUNYAH_MEM_UNMAP
    assert map_mem(host, vm, mem, 0x8000_0000, 0x2000, unmap) == 0  # single, whole
    assert map_mem(host, vm, mem, 0x8010_1000, 0x1000, unmap, 0x5000) == 0  # partial: suffix
    assert map_mem(host, vm, mem, 0x8020_0000, 0x1000, unmap, 0x8000) == 0  # partial: prefix
    assert errno_of(map_mem, host, vm, mem, 0x8030_0000, 0x1000, unmap, 0x0) == errno.ENOENT
    for fd in (vm, mem, dev):
        host.close(fd)


# the holding-cell guest
@pytest.mark.parametrize("huge", [False, True])
def test_holding_cell_round_trips(host, huge):
    kwargs = {"ram_size": 4 << 20, "ram_flags": gh.GHMF_ALLOW_HUGEPAGE} if huge else {}
    cell = HoldingCell(host, **kwargs)  # it starts, and its first exit is the mailbox read
    for i in range(100):
        assert cell.command(LOOPBACK, i) == {RESULT: i}
    cell.close()


def test_holding_cell_with_a_big_dtb(host):
    big = vm_config_dtb(vcpus=8)
    big = big.ljust(3 * 4096 + 100, b"\0")  # a DTB over three pages (padding after the blob)
    cell = HoldingCell(host, dtb=big, dtb_size=5 * 4096)
    assert cell.command(OK) == {STATUS: 0}
    cell.close()


def test_a_dtb_mapped_read_only_cannot_start(host):
    ro = gh.GUNYAH_MEM_FORCE_LEND | gh.GUNYAH_MEM_ALLOW_READ | gh.GUNYAH_MEM_ALLOW_EXEC
    t = make_vm(host, flat_image(), ram_access=ro)
    assert errno_of(t.start) == errno.EPERM  # the RM must write its overlay into the DTB
    t.close()


def test_a_bad_dtb_address_cannot_start(host):
    t = make_vm(host, flat_image())
    set_dtb(host, t.vm, 0x4000_0000, 0x2000)
    assert errno_of(t.start) == errno.ENOENT
    t.close()


def test_a_lent_dtb_still_mapped_by_the_host_cannot_start(host):
    t = make_vm(host, flat_image())
    view = host.mmap(t.ram, 0x1000, offset=DTB_OFFSET)
    assert errno_of(t.start) == errno.EPERM
    host.munmap(view)
    t.close()


def test_a_shared_memory_vm_starts(host):
    """All RAM shared. Shared pages are never executable when demand paged, so the
    code sits in the DTB's 2 MiB folio, which the RM maps with the binding's RWX."""
    share_rwx = gh.GUNYAH_MEM_FORCE_SHARE | gh.GUNYAH_MEM_ALLOW_RWX
    cell = HoldingCell(
        host, ram_access=share_rwx, ram_size=4 << 20, ram_flags=gh.GHMF_ALLOW_HUGEPAGE
    )
    assert cell.command(LOOPBACK, 7) == {RESULT: 7}
    view = host.mmap(cell.vm.ram, 0x1000)  # shared: the host may look while it runs
    assert view[0:4] == flat_image()[0:4]
    host.munmap(view)
    assert cell.command(OK) == {STATUS: 0}
    cell.close()


# memory
def test_share_coherency_both_ways(host):
    cell = HoldingCell(host, shared_word=0x1111)
    view = host.mmap(cell.vm.shared, 0x1000)
    assert cell.command(READ, SHARED_IPA) == {RESULT: 0x1111}  # host-provided share
    view[0:8] = (0x2222).to_bytes(8, "little")
    assert cell.command(READ, SHARED_IPA) == {RESULT: 0x2222}  # host writes, guest sees
    cell.command(WRITE, SHARED_IPA + 8, 0x3333)
    assert int.from_bytes(view[8:16], "little") == 0x3333  # guest writes, host sees
    host.munmap(view)
    cell.close()


def test_offset_paging(host):
    cell = HoldingCell(host)
    dev = cell.vm.dev
    mem = guest_mem(host, dev, 0x10000)
    view = host.mmap(mem, 0x10000)
    view[0x7000:0x7008] = (0xABCD).to_bytes(8, "little")
    host.munmap(view)
    map_mem(host, cell.vm.vm, mem, 0xA000_0000, 0x2000, RW_SHARE, 0x6000)
    assert cell.command(READ, 0xA000_1000) == {RESULT: 0xABCD}  # file offset 0x7000
    host.close(mem)
    cell.close()


def test_ten_thousand_punch_holes(host):
    cell = HoldingCell(host, shared_word=5)
    for _ in range(10_000):
        host.fallocate(cell.vm.shared, PUNCH, 0, 0x1000)
    assert cell.command(READ, SHARED_IPA) == {RESULT: 0}  # punched: zero, and given again
    cell.close()


def test_partial_reclaim(host):
    cell = HoldingCell(host)
    mem = guest_mem(host, cell.vm.dev, 0x4000)
    map_mem(host, cell.vm.vm, mem, 0xA000_0000, 0x4000, RW_SHARE)
    for page in range(4):
        cell.command(WRITE, 0xA000_0000 + page * 0x1000, page + 1)
    unmap = RW_SHARE | gh.GUNYAH_MEM_UNMAP
    map_mem(host, cell.vm.vm, mem, 0xA000_2000, 0x2000, unmap, 0x2000)  # the back half
    assert cell.command(READ, 0xA000_1000) == {RESULT: 2}  # the front half stays
    writes = cell.command(READ, 0xA000_2000)  # the back half is gone: nothing there
    assert cell.elsewhere == [(0xA000_2000, 0)] and writes[STATUS] == 3
    host.close(mem)
    cell.close()


def test_share_and_reclaim_race(host):
    """Punch-holes race the guest's reads of the same shared page: no hang, no bug."""
    cell = HoldingCell(host, shared_word=9)
    stop = threading.Event()

    def punch():
        while not stop.wait(0.001):
            host.fallocate(cell.vm.shared, PUNCH, 0, 0x1000)

    puncher = threading.Thread(target=punch)
    puncher.start()
    try:
        for _ in range(40):
            assert cell.command(READ, SHARED_IPA)[RESULT] in (0, 9)
    finally:
        stop.set()
        puncher.join(10)
    assert host.bugs == []
    cell.close()


def test_multicore(host):
    source = f"""
        ldr x9, ={MMIO:#x}
        mrs x1, mpidr_el1
        and x1, x1, #0xff
        cbnz x1, 2f
        mov x20, #1
    1:  ldr x0, =0xc4000003      // PSCI CPU_ON for cpu x20
        mov x1, x20
        adr x2, 0f
        mov x3, x20
        hvc #0
        add x20, x20, #1
        cmp x20, #4
        b.lo 1b
    2:  mrs x1, mpidr_el1
        str x1, [x9]
        b .
    0:  b 2b
    """
    t = make_vm(host, source, vcpus=4)
    runs = [t.run_page(i) for i in range(4)]
    t.start()
    seen = []

    def one(i):
        t.run(i)
        seen.append(int.from_bytes(bytes(runs[i].mmio.data), "little") & 0xFF)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(seen) == [0, 1, 2, 3]
    runs.clear()
    t.close()


def test_dtb_address_inside_ram_is_where_the_guest_gets_it(host):
    t = make_vm(host, f"ldr x9, ={MMIO:#x}\nstr x0, [x9]\nb .")
    run = t.run_page()
    t.start()
    t.run()
    assert int.from_bytes(bytes(run.mmio.data), "little") == RAM_IPA + DTB_OFFSET
    del run
    t.close()
