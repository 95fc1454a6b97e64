"""Isolation on GenieZone: what a guest, another VM and the host can reach.

- An IPA outside a VM's memslots is no memory at all: a load there is an
  MMIO exit answered by the VMM, even at the physical address of the
  host's own page, of the VM's own page, or of another VM's page.
- Two VMs with secrets at the same IPA each read their own; memory the VMM
  gives both is mapped into one only (EL2 refuses the other's MAP and the
  page fault goes to the VMM).
- The host cannot read a protected VM's mapped pages (ENABLE_CAP
  PROTECTED_VM; they read zero in the model, see Documentation/geniezone.rst),
  and they are scrubbed before the host has them back.
- Every page EL2 maps into a VM is one the driver pinned, in every memory
  mode, after a relinquish, and after the VMM unmapped the memory; a page
  the driver cannot pin (the memory is gone) is never mapped.
- After the VMs are destroyed the host and EL2 hold what they held before:
  pins, host RAM, EL2's pages.
"""

from __future__ import annotations

import pytest

from kernel.fault_inject import FaultPlan
from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.aarch64 import assemble
from tests.gzvmvm import (
    MMIO,
    PROT_RW,
    RAM_IPA,
    RAM_SIZE,
    REG_X0,
    make_vm,
    set_one_reg,
    set_region,
    user_address,
)
from tests.robustness.leaks import gz_holdings, gz_leaked
from uapi.linux import gzvm as gz

PAGE = 0x1000
ERR_NOT_SUPPORTED = -24
SECRET_OFFSET = 1 << 20
ANSWER = 0x5AFE_0000_0000_0001  # what the VMM answers an MMIO read with
OFF = "ldr x0, =0x84000008\nhvc #0\nb ."


def probe_guest(addresses: list[int]) -> str:
    """Loads from each address in turn; each value is written to MMIO."""
    body = "".join(f"ldr x2, ={a:#x}\nldr x3, [x2]\nstr x3, [x9]\n" for a in addresses)
    return f"ldr x9, ={MMIO:#x}\n{body}{OFF}\n.ltorg"


def drive(host, t, limit: int = 50) -> list[tuple]:
    """Run to SYSTEM_OFF: ("read", address) and ("wrote", value) per MMIO exit."""
    seen = []
    for _ in range(limit):
        exit_reason = t.go(host)
        if exit_reason == gz.GZVM_EXIT_SYSTEM_EVENT:
            return seen
        if exit_reason != gz.GZVM_EXIT_MMIO:
            seen.append(("exit", exit_reason))
            return seen
        mmio = t.run.mmio
        if mmio.is_write:
            seen.append(("wrote", int.from_bytes(bytes(mmio.data)[: mmio.size], "little")))
        else:
            seen.append(("read", mmio.phys_addr))
            t.run.mmio.data[0:8] = list(ANSWER.to_bytes(8, "little"))
    raise AssertionError(f"no SYSTEM_OFF after {limit} exits: {seen}")


def make_vm_paged(host, source: str, paging: str):
    """make_vm with 2 MiB blocks, or 4 KiB pages (EL2 refusing block paging)."""
    if paging == "4k":
        host.gzvm.hvc.faults = FaultPlan("ENABLE_CAP", ERR_NOT_SUPPORTED, nth=2)
    try:
        t = make_vm(host, source)
    finally:
        host.gzvm.hvc.faults = {}
    assert gzvm_of(host, t).demand_page_gran == (PAGE if paging == "4k" else 2 << 20)
    return t


def gzvm_of(host, t):
    file = host.fdtable.get(t.vm)
    file.put()
    return file.private


def pa_of(host, mapping, offset: int = 0) -> int:
    """The physical address of the VMM's page at ``offset`` of ``mapping``."""
    (pa,) = host.mm.pin_user_pages(user_address(mapping) + offset, 1)
    host.mm.unpin_user_page(pa)
    return pa


def mapped_are_pinned(host) -> bool:
    """Every page EL2 has mapped into a VM is pinned by the driver."""
    gz_el2 = host.gzvm.firmware.geniezone
    with gz_el2.lock:
        mapped = [pfn << 12 for vm in gz_el2.vms.values() for pfn in vm.mapped.values()]
    return all(pa in host.mm.pinned for pa in mapped)


def secret(tag: bytes) -> int:
    return int.from_bytes(tag.ljust(8, b"\0"), "little")


def ballast(host):
    """Host RAM taken first, so that the pages allocated next have physical
    addresses beyond the VMs' memslot (host RAM starts where RAM_IPA is): an
    IPA equal to such a PA is then outside the slot, as the tests need."""
    return host.mmap(-1, 2 * RAM_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)


def outside_the_slot(pa: int) -> bool:
    return not RAM_IPA <= pa < RAM_IPA + RAM_SIZE


def test_outside_the_memslots_is_mmio_even_where_host_ram_is(gzhost):
    before = gz_holdings(gzhost)
    first = ballast(gzhost)
    t = make_vm(gzhost, "b .")
    host_page = gzhost.mmap(-1, PAGE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
    host_page[:8] = b"hostonly"
    own_pa = pa_of(gzhost, t.ram)
    places = [pa_of(gzhost, host_page), own_pa, RAM_IPA + RAM_SIZE, RAM_IPA - PAGE, 0]
    assert all(outside_the_slot(pa) for pa in places)
    code = assemble(probe_guest(places))
    t.ram[: len(code)] = code
    seen = drive(gzhost, t)
    assert seen == [x for a in places for x in (("read", a), ("wrote", ANSWER))]
    assert mapped_are_pinned(gzhost)
    t.close(gzhost)
    for mapping in (host_page, first):
        gzhost.munmap(mapping)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


def two_vms_guest() -> str:
    return f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={RAM_IPA + SECRET_OFFSET:#x}
    ldr x3, [x2]                // its own secret
    str x3, [x9]
    ldr x3, [x0]                // X0: the other VM's secret page by its PA
    str x3, [x9]
    {OFF}
    .ltorg
"""


def test_two_vms_each_read_their_own_secret_and_never_the_other(gzhost):
    before = gz_holdings(gzhost)
    first = ballast(gzhost)
    a = make_vm(gzhost, two_vms_guest())
    b = make_vm(gzhost, two_vms_guest())
    a.ram[SECRET_OFFSET : SECRET_OFFSET + 8] = b"secret-A"
    b.ram[SECRET_OFFSET : SECRET_OFFSET + 8] = b"secret-B"
    for t, other in ((a, b), (b, a)):
        set_one_reg(gzhost, t.vcpus[0], REG_X0, pa_of(gzhost, other.ram, SECRET_OFFSET))
    # A runs first: B's page is not mapped yet; then B, with A's page mapped
    seen_a, seen_b = drive(gzhost, a), drive(gzhost, b)
    pa_b, pa_a = (pa_of(gzhost, t.ram, SECRET_OFFSET) for t in (b, a))
    assert outside_the_slot(pa_a) and outside_the_slot(pa_b)
    assert seen_a == [("wrote", secret(b"secret-A")), ("read", pa_b), ("wrote", ANSWER)]
    assert seen_b == [("wrote", secret(b"secret-B")), ("read", pa_a), ("wrote", ANSWER)]
    owners = gzhost.gzvm.firmware.geniezone.owners
    assert owners[pa_a >> 12].vm_id != owners[pa_b >> 12].vm_id
    assert mapped_are_pinned(gzhost)
    for t in (a, b):
        t.close(gzhost)
    gzhost.munmap(first)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


@pytest.mark.parametrize("paging", ["block", "4k"])
def test_memory_the_vmm_gives_two_vms_is_mapped_into_one(gzhost, paging):
    """The same anonymous memory as both VMs' memslot: the first to fault on a page
    has it; the second's fault goes to the VMM, and its guest never sees it."""
    before = gz_holdings(gzhost)
    toucher = f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={RAM_IPA + (3 << 20):#x}
    ldr x3, [x2]
    str x3, [x9]
    {OFF}
    .ltorg
"""
    a, b = (make_vm_paged(gzhost, toucher, paging) for _ in range(2))
    a.ram[3 << 20 : (3 << 20) + 8] = b"A's page"
    assert drive(gzhost, a) == [("wrote", secret(b"A's page"))]
    set_region(gzhost, b.vm, 0, RAM_IPA, RAM_SIZE, user_address(a.ram))  # B's slot on A's memory
    assert b.go(gzhost) == gz.GZVM_EXIT_EXCEPTION  # the page is A's: EL2 refused it
    assert b.run.exception.fault_gpa == RAM_IPA  # its code page, which A holds too
    assert "page fault" in gzhost.dmesg[-1]
    assert mapped_are_pinned(gzhost)
    for t in (a, b):
        t.close(gzhost)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


@pytest.mark.parametrize("paging", ["block", "4k"])
def test_the_host_cannot_read_a_protected_vms_pages(gzhost, paging):
    before = gz_holdings(gzhost)
    writer = f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={RAM_IPA + SECRET_OFFSET:#x}
    ldr x3, ={secret(b"pvm-only"):#x}
    str x3, [x2]
    ldr x4, [x2]
    str x4, [x9]                // the guest reads its own write
    {OFF}
    .ltorg
"""
    t = make_vm_paged(gzhost, writer, paging)
    cap = gz.ffi.new(
        "struct gzvm_enable_cap *",
        [gz.GZVM_CAP_PROTECTED_VM, [gz.GZVM_CAP_PVM_SET_PROTECTED_VM, 0, 0, 0, 0]],
    )
    assert gzhost.ioctl(t.vm, gz.GZVM_ENABLE_CAP, cap) == 0
    assert drive(gzhost, t) == [("wrote", secret(b"pvm-only"))]
    assert bytes(t.ram[SECRET_OFFSET : SECRET_OFFSET + 8]) == bytes(8)
    assert bytes(t.ram[:4]) == bytes(4)  # the code page too
    pa = pa_of(gzhost, t.ram, SECRET_OFFSET)
    el2 = gzhost.gzvm.firmware.geniezone
    assert el2.dram.read(pa, 8) == b"pvm-only"  # it is there, out of the host's reach
    err, _ = gzhost.gzvm.firmware.map_ram(pa, PAGE)
    assert err != 0  # and no new host mapping reaches it
    assert mapped_are_pinned(gzhost)
    t.close(gzhost)
    assert el2.dram.read(pa, 8) == bytes(8)  # scrubbed before the host had it back
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


def test_pages_are_pinned_while_mapped_through_relinquish_and_munmap(gzhost):
    """A guest touching two blocks, giving a page back, then touching it again,
    with the VMM's mapping gone meanwhile: every mapped page pinned all along."""
    before = gz_holdings(gzhost)
    far = RAM_IPA + (3 << 20)
    t = make_vm(
        gzhost,
        f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={far:#x}
    ldr x3, [x2]
    str x3, [x9]                // 1: both blocks mapped
    ldr x0, ={gz.GZVM_HVC_MEM_RELINQUISH:#x}
    mov x1, x2
    hvc #0
    str x0, [x9]                // 2: the page is back with the host
    ldr x3, [x2]
    str x3, [x9]                // 3: faulted in again
    {OFF}
    .ltorg
""",
    )
    vm = gzvm_of(gzhost, t)
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO
    assert mapped_are_pinned(gzhost) and far in vm.pinned_pages
    assert t.go(gzhost) == gz.GZVM_EXIT_MMIO
    assert far not in vm.pinned_pages and mapped_are_pinned(gzhost)
    ram, t.ram = t.ram, None
    gzhost.munmap(ram)  # the pins keep the RAM the VM's
    assert mapped_are_pinned(gzhost)
    assert t.go(gzhost) == gz.GZVM_EXIT_EXCEPTION  # no memory to pin at the far page now
    assert t.run.exception.fault_gpa == far
    assert far not in vm.pinned_pages and mapped_are_pinned(gzhost)
    assert far >> 12 not in gzhost.gzvm.firmware.geniezone.vms[vm.vm_id].mapped
    for fd in (t.vm, *t.vcpus, t.dev):
        gzhost.close(fd)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}


def test_fully_populated_pages_are_all_pinned_and_all_come_back(gzhost):
    before = gz_holdings(gzhost)
    gzhost.gzvm.hvc.faults = {"ENABLE_CAP": ERR_NOT_SUPPORTED}  # no demand paging
    t = make_vm(gzhost, probe_guest([RAM_IPA + SECRET_OFFSET]))
    gzhost.gzvm.hvc.faults = {}
    t.ram[SECRET_OFFSET : SECRET_OFFSET + 8] = b"resident"
    assert len(gzhost.mm.pinned) == RAM_SIZE // PAGE and mapped_are_pinned(gzhost)
    assert drive(gzhost, t) == [("wrote", secret(b"resident"))]
    t.close(gzhost)
    assert gz_leaked(before, gz_holdings(gzhost)) == {}
