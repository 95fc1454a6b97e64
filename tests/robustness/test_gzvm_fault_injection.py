"""Fault injection on GenieZone: every hypercall the driver makes, failed in turn,
over a VM's whole life.

The life: CREATE_VM (with its ENABLE_CAPs for demand paging), a memslot,
a vCPU and its PC, the GICv3 devices, the DTB, an irqfd rung from the
host and an ioeventfd the guest writes, IRQ_LINE, GZVM_RUN with demand
paging (the code's block and a page 3 MiB in), the guest relinquishing
that page, a signal during GZVM_RUN (INFORM_EXIT), PSCI SYSTEM_OFF, and
closing everything (DESTROY_VCPU, DESTROY_VM). It is lived in each memory
mode of the driver in the dry runs: 2 MiB block demand paging
(MAP_GUEST_BLOCK), 4 KiB demand paging (EL2 refuses block paging:
MAP_GUEST) and fully populated (EL2 refuses demand paging: every page
pinned and handed over by SET_MEMREGION at registration); the walk takes
every (function, call) pair of the first, and those the others add.

Each pair fails once on a fresh host (``Host.gzvm.hvc.faults``, a
FaultPlan) with ERR_NO_MEMORY, and DESTROY_VM once with ERR_BUSY. The
test checks that the failure shows where the driver shows it: an ioctl's
errno the spec gives it (ENOMEM, EL2's own; EFAULT where the driver
replaces it), a page fault exit the kernel could not serve going to the
VMM, or a line in ``Host.dmesg`` (an irqfd's injection, DESTROY_VM); and
that after closing everything the host and EL2 hold what they held
before (tests/robustness/leaks.py: host RAM, pins, fds, host mappings,
EL2's VMs, VMIDs, vCPUs, guest and shared pages, its page pool,
threads).

What shows nowhere, by the driver's design: ENABLE_CAP at CREATE_VM
(refused demand paging is the fully populated mode, refused block paging
is 4 KiB paging), INFORM_EXIT and DESTROY_VCPU (results ignored), and a
DESTROY_VM ERR_BUSY (called again). What stays behind, logged: a refused
DESTROY_VM leaves EL2 the VM, and the driver leaks what EL2 may still
use (vCPU areas, the PFN buffer, pinned pages) rather than reuse it.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from contextlib import ExitStack

import pytest

import kernel
from kernel.arch.arm64.geniezone.hvc import GzvmFunc
from kernel.fault_inject import FaultPlan
from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.aarch64 import assemble
from tests.gzvmvm import (
    MMIO,
    PROT_RW,
    RAM_IPA,
    RAM_SIZE,
    REG_PC,
    create_gic,
    set_one_reg,
    set_region,
    user_address,
)
from tests.robustness.leaks import gz_holdings, gz_leaked
from uapi.linux import gzvm as gz

ERR_NO_MEMORY, ERR_NOT_SUPPORTED, ERR_BUSY = -5, -24, -33
MAX_CALLS_WALKED = 3  # the first calls of each function; later ones repeat the same paths
SPI = 3
PAGED = RAM_IPA + (3 << 20)  # in another 2 MiB block than the code
GUEST = f"""
    ldr x9, ={MMIO:#x}
    ldr x2, ={PAGED:#x}
    ldr x3, [x2]                // demand paged
    str x3, [x9, #0x100]        // the ioeventfd's: no exit
    ldr x0, ={gz.GZVM_HVC_MEM_RELINQUISH:#x}
    mov x1, x2
    hvc #0                      // the page goes back
    str x0, [x9]                // the exit the VMM sees
    ldr x0, =0x84000008         // PSCI SYSTEM_OFF
    hvc #0
    b .
"""
# the errno each syscall of the life may fail with when EL2 answers ERR_NO_MEMORY
SHOWN = {errno.ENOMEM, errno.EFAULT}
ABSORBED = {("ENABLE_CAP", 1), ("ENABLE_CAP", 2), ("INFORM_EXIT", 1), ("DESTROY_VCPU", 1)}
KEPT_ON_REFUSAL = {"DESTROY_VM"}
NEVER_CALLED = {GzvmFunc.GET_ONE_REG, GzvmFunc.GET_STATISTICS}  # no ioctl of the driver makes them
SUMMARY = {"injection points walked": 0, "leaks found": 0}  # printed by tests/conftest.py


# the memory modes: which ENABLE_CAP of CREATE_VM EL2 refuses to get there
MODES = {"block": None, "4k": 2, "populated": 1}


class Plan(FaultPlan):
    """A FaultPlan that also refuses the ENABLE_CAP of CREATE_VM that puts the VM
    in memory ``mode`` (not counted as the walked fault)."""

    def __init__(self, point=None, value=None, nth=1, mode="block"):
        super().__init__(point, value, nth)
        self.refused_cap = MODES[mode]

    def get(self, name: str):
        fault = super().get(name)
        if name == "ENABLE_CAP" and self.calls[name] == self.refused_cap:
            return ERR_NOT_SUPPORTED
        return fault


def life(host) -> list[str]:
    """The VM's whole life; what went wrong, as it showed (nothing: [])."""
    seen = []
    with ExitStack() as undo:
        try:
            dev = host.open("/dev/gzvm")
            undo.callback(host.close, dev)
            vm = host.ioctl(dev, gz.GZVM_CREATE_VM, 0)
            undo.callback(host.close, vm)
            ram = host.mmap(-1, RAM_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
            undo.callback(host.munmap, ram)
            code = assemble(GUEST)
            ram[: len(code)] = code
            set_region(host, vm, 0, RAM_IPA, RAM_SIZE, user_address(ram))
            vcpu = host.ioctl(vm, gz.GZVM_CREATE_VCPU, 0)
            undo.callback(host.close, vcpu)
            set_one_reg(host, vcpu, REG_PC, RAM_IPA)
            create_gic(host, vm)
            dtb = gz.ffi.new("struct gzvm_dtb_config *", [RAM_IPA, 8])
            host.ioctl(vm, gz.GZVM_SET_DTB_CONFIG, dtb)
            efds = [host.eventfd(), host.eventfd()]
            for fd in efds:
                undo.callback(host.close, fd)
            irqfd = gz.ffi.new("struct gzvm_irqfd *", {"fd": efds[0], "gsi": SPI})
            host.ioctl(vm, gz.GZVM_IRQFD, irqfd)
            ioevent = gz.ffi.new("struct gzvm_ioeventfd *", [0, MMIO + 0x100, 8, efds[1], 0])
            host.ioctl(vm, gz.GZVM_IOEVENTFD, ioevent)
            os.eventfd_write(efds[0], 1)  # the irqfd raises SPI 3
            host.eventfd_wq.quiesce()
            host.ioctl(vm, gz.GZVM_IRQ_LINE, gz.ffi.new("struct gzvm_irq_level *", [SPI, 1]))
            run = gz.ffi.new("struct gzvm_vcpu_run *")
            for expected in (gz.GZVM_EXIT_MMIO, errno.EINTR, gz.GZVM_EXIT_SYSTEM_EVENT):
                if expected == errno.EINTR:  # a signal already pending as GZVM_RUN starts
                    host.pthread_kill(threading.get_ident(), signal.SIGUSR1)
                    try:
                        host.ioctl(vcpu, gz.GZVM_RUN, run)
                        seen.append("no EINTR")
                    except InterruptedError:
                        continue
                    break
                host.ioctl(vcpu, gz.GZVM_RUN, run)
                if run.exit_reason != expected:
                    seen.append(f"exit {run.exit_reason:#x}")
                    break
            if not seen and os.eventfd_read(efds[1]) != 1:
                seen.append("the ioeventfd was not signalled")
        except OSError as e:
            seen.append(f"errno {e.errno}")
    host.eventfd_wq.quiesce()
    return seen


def boot(plan: Plan):
    host = kernel.boot(dram_size=1 << 30, hypervisor="geniezone")
    host.gzvm.hvc.faults = plan
    return host


def reached(mode: str) -> list[tuple[str, int]]:
    plan = Plan(mode=mode)
    host = boot(plan)
    try:
        assert life(host) == []
        assert host.dmesg == []
    finally:
        host.shutdown()
    return [
        (point, n)
        for point, count in sorted(plan.calls.items())
        for n in range(1, min(count, MAX_CALLS_WALKED) + 1)
    ]


REACHED = {mode: reached(mode) for mode in MODES}
WALK = [(p, n, ERR_NO_MEMORY, "block") for p, n in REACHED["block"]]
for _mode in ("4k", "populated"):
    _walked = {(p, n) for p, n, _, _ in WALK}
    WALK += [(p, n, ERR_NO_MEMORY, _mode) for p, n in REACHED[_mode] if (p, n) not in _walked]
WALK += [("DESTROY_VM", 1, ERR_BUSY, "block")]


def test_the_walk_reaches_every_hypercall_the_driver_makes():
    """PROBE is boot's (tests/kernel/geniezone/test_gzvm_main.py fails it)."""
    called = {f.name for f in GzvmFunc if f not in NEVER_CALLED and f != GzvmFunc.PROBE}
    assert {p for p, _, _, _ in WALK} == called
    assert ("MAP_GUEST_BLOCK", 1) in REACHED["block"] and ("MAP_GUEST", 1) in REACHED["4k"]
    assert ("SET_MEMREGION", 2) in REACHED["populated"]  # the pages, after the slot


def shown_right(point: str, seen: list[str], dmesg: list[str]) -> bool:
    """An errno of SHOWN, an unserved page fault exit (logged), or a log line."""
    page_fault = f"exit {gz.GZVM_EXIT_EXCEPTION:#x}"
    if seen == [page_fault]:
        return point in ("MAP_GUEST", "MAP_GUEST_BLOCK") and "page fault" in dmesg[0]
    if seen:
        return len(seen) == 1 and seen[0] in {f"errno {e}" for e in SHOWN}
    return bool(dmesg)


@pytest.mark.parametrize(
    ("point", "nth", "value", "mode"),
    WALK,
    ids=[f"{p}#{n}-{m}{'-busy' if v == ERR_BUSY else ''}" for p, n, v, m in WALK],
)
def test_one_failed_hypercall_shows_and_leaves_nothing(point, nth, value, mode):
    plan = Plan(point, value, nth, mode)
    host = boot(plan)
    try:
        before = gz_holdings(host)
        seen = life(host)
        host.gzvm.hvc.faults = {}
        left = gz_leaked(before, gz_holdings(host))
        assert plan.fired
        if (point, nth) in ABSORBED or value == ERR_BUSY:
            assert (seen, host.dmesg) == ([], [])
        else:
            assert shown_right(point, seen, host.dmesg), (seen, host.dmesg)
        if left and not (point in KEPT_ON_REFUSAL and "leaking" in host.dmesg[-1]):
            SUMMARY["leaks found"] += 1
            pytest.fail(f"{point}#{nth} left {left} behind")
        assert host.bugs == []
    finally:
        host.shutdown()
    SUMMARY["injection points walked"] += 1


def test_a_refused_destroy_vm_leaks_only_what_el2_may_still_use():
    """What stays is the VM in EL2 with its pages, the pins under them, the vCPU
    area and the PFN buffer it shares (with the kernel's mappings of them), and
    their RAM; fds, the VMM's mappings and threads are gone, and the log says
    what was leaked."""
    host = boot(Plan("DESTROY_VM", ERR_NO_MEMORY))
    try:
        before = gz_holdings(host)
        assert life(host) == []
        left = gz_leaked(before, gz_holdings(host))
        kept = {"free_ram", "pinned", "el2_vms", "vmids", "guest_pages", "el2_shared", "pool_used"}
        kept.add("host_maps")
        assert set(left) == kept
        assert "DESTROY_VM" in host.dmesg[-1] and "leaking" in host.dmesg[-1]
    finally:
        host.shutdown()
