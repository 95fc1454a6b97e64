"""Run groups: a VM's vCPUs take turns while other VMs run beside them, VMs
that come to share memory take turns from then on, and each group keeps
its own virtual time. A census counts the cores inside a run (guest code
executes only there), per VM and in all; nothing here measures time."""

import contextlib
import threading
from collections import Counter

import pytest

from hyp.arch import scheduler
from hyp.gunyah.hypervisor import Gunyah
from hyp.gunyah.vcpu import POWEROFF_EXITED, ResumeAction, VcpuState
from tests.aarch64 import assemble
from tests.hyp.gunyah.vmhelper import (
    ATTRS_RWX_WB,
    GUEST_PA,
    MAP_PARTIAL,
    MMIO_IPA,
    RAM_IPA,
    Vm,
    configure_vm,
)

RAM = 1 << 21
STORES = 5
SPIN = 0x0  # offset of the spinning code
STORE = 0x100  # offset of the code that exits STORES times, then spins
CODE = assemble(
    f"""
spin:
    b spin
    .balign 0x100
    ldr x9, ={MMIO_IPA:#x}
    mov x1, #{STORES}
1:  str x1, [x9]
    subs x1, x1, #1
    b.ne 1b
    b .
"""
)


def build(gunyah, vmid: int, vcpus: int, root_caps: bool = False) -> Vm:
    """A VM at its own RAM (vmid 1, 2.. side by side) with ``vcpus`` vCPUs, none
    on; with ``root_caps`` its vCPUs' hypercalls use the root cspace."""
    base = GUEST_PA + (vmid - 1) * RAM
    vm = configure_vm(gunyah, vmid, vcpus, RAM, base, root_caps)
    gunyah.dram.write(base, CODE)
    return vm


def _vcpus(gunyah, vm: Vm) -> list:
    name = f"vm{vm.vmid}."
    return [v for v in gunyah.scheduler.order if v.trace_name.startswith(name)]


class Census:
    """Cores inside :meth:`Core.run` at once, per VM and in all, and the most seen."""

    def __init__(self):
        self._lock = threading.Lock()
        self.now, self.most = Counter(), Counter()

    def watch(self, vcpu, vm: str) -> None:
        run = vcpu.core.run

        def counted(*args):
            self._count((vm, "all"), 1)
            try:
                return run(*args)
            finally:
                self._count((vm, "all"), -1)

        vcpu.core.run = counted

    def _count(self, keys, step: int) -> None:
        with self._lock:
            for key in keys:
                self.now[key] += step
                self.most[key] = max(self.most[key], self.now[key])


def start(vm: Vm, index: int, offset: int) -> None:
    vm.hv.ok("vcpu_poweron", vm.vcpus[index], RAM_IPA + offset, 0, 0)


@contextlib.contextmanager
def spinning(gunyah, vm: Vm, out: list):
    """vCPU 0 of ``vm`` spins in a thread of its own (never ending its run by
    itself) until the block ends, when the host takes the thread back with an
    IPI: ``out`` gets what its run returned (READY)."""
    start(vm, 0, SPIN)
    t = threading.Thread(target=lambda: out.append(vm.run(0)[0]))
    t.start()
    try:
        yield
    finally:
        gunyah.ipi(t.ident)
        t.join(30)


def stores(vm: Vm, index: int, out: list) -> None:
    for _ in range(STORES):
        out.append(vm.run(index, 0, ResumeAction.EMULATE)[0])


def until(condition) -> None:
    """Wait (bounded) for a condition another thread makes true."""
    event = threading.Event()
    for _ in range(2000):
        if condition():
            return
        event.wait(0.005)
    pytest.fail("the condition never held")


@pytest.fixture
def gunyah():
    g = Gunyah(dram_size=1 << 30)
    yield g
    g.close()


def test_a_vms_vcpus_take_turns_while_other_vms_run_beside_them(gunyah):
    smp, spinner, storer = build(gunyah, 1, 2), build(gunyah, 2, 1), build(gunyah, 3, 1)
    (smp0, smp1), (spinner0,), (storer0,) = (_vcpus(gunyah, vm) for vm in (smp, spinner, storer))
    census = Census()
    for vcpu, vm in ((smp0, "smp"), (smp1, "smp"), (spinner0, "spinner"), (storer0, "storer")):
        census.watch(vcpu, vm)
    outs = {name: [] for name in ("smp0", "smp1", "spinner", "storer")}
    with spinning(gunyah, smp, outs["smp0"]), spinning(gunyah, spinner, outs["spinner"]):
        until(lambda: census.now["smp"] == census.now["spinner"] == 1)
        # Two VMs execute guest code at once; neither ever ends its turn by itself.
        start(smp, 1, STORE)
        start(storer, 0, STORE)
        workers = [
            threading.Thread(target=stores, args=(smp, 1, outs["smp1"])),
            threading.Thread(target=stores, args=(storer, 0, outs["storer"])),
        ]
        for t in workers:
            t.start()
        for t in workers:
            t.join(30)
        assert census.now["spinner"] == 1
    assert outs["smp1"] == outs["storer"] == [VcpuState.ADDRSPACE_VMMIO_WRITE] * STORES
    assert outs["smp0"] == outs["spinner"] == [VcpuState.READY]
    # Never two cores of one VM inside a run; the spinner never left its run,
    # so the storer's exits ran beside it.
    assert (census.most["smp"], census.most["spinner"], census.most["storer"]) == (1, 1, 1)
    assert census.most["all"] >= 2


def test_vms_that_come_to_share_memory_take_turns(gunyah):
    spinner, storer = build(gunyah, 1, 1), build(gunyah, 2, 1)
    scheduler = gunyah.scheduler
    (spinner0,), (storer0,) = _vcpus(gunyah, spinner), _vcpus(gunyah, storer)
    assert scheduler.group_of(spinner0) is not scheduler.group_of(storer0)
    # The spinner's VM maps the storer's RAM too: one group from then on.
    spinner.hv.ok(
        "addrspace_map", spinner.addrspace, storer.extent, RAM_IPA + RAM, ATTRS_RWX_WB, 1, 0, RAM
    )
    assert scheduler.group_of(spinner0) is scheduler.group_of(storer0)
    census = Census()
    census.watch(spinner0, "shared")
    census.watch(storer0, "shared")
    out, spun = [], []
    with spinning(gunyah, spinner, spun):
        until(lambda: census.now["shared"] == 1)
        start(storer, 0, STORE)
        stores(storer, 0, out)  # each exit waits for the spinner to be preempted
    assert out == [VcpuState.ADDRSPACE_VMMIO_WRITE] * STORES and spun == [VcpuState.READY]
    assert census.most["shared"] == 1


TIMER_WFI = assemble(
    f"""
    ldr x0, =0x100000
    msr cntv_tval_el0, x0
    mov x0, #1
    msr cntv_ctl_el0, x0
    wfi
    ldr x9, ={MMIO_IPA:#x}
    str x0, [x9]
    b .
"""
)


def test_an_idle_vm_skips_to_its_timer_while_another_computes(gunyah):
    spinner, sleeper = build(gunyah, 1, 1), build(gunyah, 2, 1)
    gunyah.dram.write(GUEST_PA + RAM + STORE, TIMER_WFI)
    (spinner0,), (sleeper0,) = _vcpus(gunyah, spinner), _vcpus(gunyah, sleeper)
    out: list = []
    with spinning(gunyah, spinner, out):
        until(lambda: gunyah.scheduler.holds(spinner0))
        start(sleeper, 0, STORE)
        # Nothing else of its VM can run: its WFI skips its own clock to the deadline.
        assert sleeper.run(0)[0] == VcpuState.ADDRSPACE_VMMIO_WRITE
    assert out == [VcpuState.READY]
    asleep, computing = sleeper0.timer.clock.now, spinner0.timer.clock.now
    assert asleep >= 0x100000 > computing
    assert gunyah.clock.now >= asleep


def test_a_guests_unmap_waits_for_the_run_of_another_vms_core(gunyah):
    """VM 1's guest unmaps a page of VM 2 (its vCPU holds the root cspace) while
    VM 2 computes in parallel: before VM 1's guest goes on, VM 2's core has
    ended the run that may have used the old translation, and neither core
    waits for the other inside its run."""
    spinner, unmapper = build(gunyah, 1, 1), build(gunyah, 2, 1, root_caps=True)
    (spinner0,), (unmapper0,) = _vcpus(gunyah, spinner), _vcpus(gunyah, unmapper)
    code = assemble(
        f"""
    ldr x0, ={spinner.addrspace}
    ldr x1, ={spinner.extent}
    ldr x2, ={RAM_IPA + RAM // 2:#x}
    mov x3, #0
    ldr x4, ={RAM // 2:#x}
    ldr x5, =0x1000
    hvc #0x602C                     // addrspace_unmap
    ldr x9, ={MMIO_IPA:#x}
    str x0, [x9]
    b .
"""
    )
    gunyah.dram.write(GUEST_PA + RAM + STORE, code)
    out: list = []
    with spinning(gunyah, spinner, out):
        until(lambda: spinner0.core.run_token() is not None)
        token = spinner0.core.run_token()
        start(unmapper, 0, STORE)
        assert unmapper.run(0)[:3] == (VcpuState.ADDRSPACE_VMMIO_WRITE, MMIO_IPA, 8)
        assert spinner0.core.wait_run_end(token, 0)  # it has ended already
    assert unmapper0.core.x(0) == 0  # the unmap succeeded
    assert gunyah.scheduler.group_of(spinner0) is not gunyah.scheduler.group_of(unmapper0)
    assert out == [VcpuState.READY]


def test_genie_zone_vms_run_beside_each_other():
    """GenieZone refuses a page another VM holds: each VM is a group alone."""
    from hyp.geniezone.hypervisor import GenieZone
    from hyp.geniezone.vcpu import GzvmExit
    from tests.hyp.geniezone.gzhelper import Door, build_vm

    gz = GenieZone(dram_size=1 << 30)
    try:
        door = Door(gz)
        spinner, storer = build_vm(door, CODE), build_vm(door, CODE[STORE:])
        spinner0, storer0 = (gz.vms[vm.vm_id].vcpus[0] for vm in (spinner, storer))
        assert gz.scheduler.group_of(spinner0) is not gz.scheduler.group_of(storer0)
        census = Census()
        census.watch(spinner0, "spinner")
        census.watch(storer0, "storer")
        spun: list = []
        t = threading.Thread(target=lambda: spun.append(spinner.run()))
        t.start()
        try:
            until(lambda: census.now["spinner"] == 1)
            exits = [storer.run() for _ in range(STORES)]
            assert census.now["spinner"] == 1
        finally:
            gz.ipi(t.ident)
            t.join(30)
        assert exits == [GzvmExit.MMIO] * STORES and spun == [GzvmExit.IRQ]
        assert (census.most["spinner"], census.most["storer"], census.most["all"]) == (1, 1, 2)
    finally:
        gz.close()


PAGE = 0x1000
SPIN_ROUNDS, SPIN_LOOPS = 3, 1_000_000  # each round about two quanta of guest instructions
BURST = 8
POLLER = assemble(
    f"""
    ldr x9, ={MMIO_IPA:#x}
    mrs x22, cntvct_el0
    ldr x0, =0xC4000003             // PSCI CPU_ON of CPU 1
    mov x1, #1
    adr x2, secondary
    mov x3, #0
    hvc #0
    mov x20, #0
1:  ldr x0, =0xC4000004             // PSCI AFFINITY_INFO, until CPU 1 is off
    mov x1, #1
    mov x2, #0
    hvc #0
    add x20, x20, #1
    cmp x0, #1
    b.ne 1b
    mrs x21, cntvct_el0
    sub x21, x21, x22
    str x20, [x9]                   // the polls
    str x21, [x9, #8]               // the virtual time they took
    ldr x0, =0x84000008             // PSCI SYSTEM_OFF
    hvc #0
    b .

secondary:                          // SPIN_ROUNDS times: compute, then BURST stores
    ldr x9, ={MMIO_IPA:#x}
    mov x19, #{SPIN_ROUNDS}
2:  ldr x0, ={SPIN_LOOPS}
3:  subs x0, x0, #1
    b.ne 3b
    mov x1, #{BURST}
4:  str x19, [x9, #16]
    subs x1, x1, #1
    b.ne 4b
    subs x19, x19, #1
    b.ne 2b
    ldr x0, =0x84000002             // PSCI CPU_OFF
    hvc #0
    b .
"""
)
EXITER = assemble(
    f"""
    ldr x9, ={MMIO_IPA:#x}
1:  str x1, [x9]
    add x1, x1, #1
    b 1b
"""
)


def _remap_last_page(vm: Vm) -> None:
    """A stage-2 change of ``vm`` from a host thread: its cores flush."""
    ipa, offset = RAM_IPA + RAM - PAGE, RAM - PAGE
    vm.hv.ok("addrspace_unmap", vm.addrspace, vm.extent, ipa, 0, offset, PAGE)
    vm.hv.ok("addrspace_map", vm.addrspace, vm.extent, ipa, ATTRS_RWX_WB, MAP_PARTIAL, offset, PAGE)


def _drive(vm: Vm, index: int, woken: threading.Event, stores: list) -> None:
    """Run vCPU ``index`` until its VM is off; at each of its stores the
    thread changes the VM's stage 2, as a VMM paging memory in would."""
    while True:
        state, a, _, c = vm.run(index, 0, ResumeAction.EMULATE)
        if state == VcpuState.ADDRSPACE_VMMIO_WRITE:
            stores.append((index, a, c))
            _remap_last_page(vm)
        elif state == VcpuState.POWERED_OFF and a & POWEROFF_EXITED:
            return
        else:
            woken.wait(10)
            woken.clear()


def _exits_until(vm: Vm, stop: threading.Event) -> None:
    while not stop.is_set():
        vm.run(0, 0, ResumeAction.EMULATE)


def _two_vcpus_polling(busy_neighbours: int) -> tuple[list, list]:
    """What a 2-vCPU VM stores (its polls, their virtual time) and its trace
    records, with ``busy_neighbours`` VMs exiting as fast as they can beside it."""
    gunyah = Gunyah(dram_size=1 << 30)
    try:
        records: list = []
        gunyah.trace_fields(
            ("vcpu_run", "psci"), lambda r: r["vcpu"].startswith("vm1.") and records.append(r)
        )
        vm = build(gunyah, 1, 2)
        gunyah.dram.write(GUEST_PA, POLLER)
        woken = [threading.Event(), threading.Event()]
        for i in (0, 1):
            gunyah.host_vic.handlers[32 + 8 + i] = lambda _virq, e=woken[i]: e.set()
        stop = threading.Event()
        neighbours = [build(gunyah, 2 + n, 1) for n in range(busy_neighbours)]
        busy = [threading.Thread(target=_exits_until, args=(n, stop)) for n in neighbours]
        for n in neighbours:
            gunyah.dram.write(GUEST_PA + (n.vmid - 1) * RAM, EXITER)
            start(n, 0, 0)
        for t in busy:
            t.start()
        stores: list = []
        start(vm, 0, 0)
        threads = [threading.Thread(target=_drive, args=(vm, i, woken[i], stores)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        stop.set()
        for t in busy:
            t.join(30)
        assert not any(t.is_alive() for t in threads + busy)
        return stores, records
    finally:
        gunyah.close()


def test_an_smp_vms_turns_and_time_are_the_same_beside_busy_vms(monkeypatch):
    """A VM's turn order and virtual time depend on what its own vCPUs do:
    CPU 1 computes past its quantum while CPU 0 polls for it, and CPU 1's
    host thread changes the VM's stage 2 at each of its exits. Alone and
    beside three VMs whose threads keep the host busy, the polls, their
    virtual time and the VM's trace records are the same every time. The
    pass-over of a thread that stalls (``PATIENCE``) is host timing by
    design, so a loaded host gets all the time it needs here."""
    monkeypatch.setattr(scheduler, "PATIENCE", 30.0)
    alone = _two_vcpus_polling(0)
    polls, ticks = [c for _, ipa, c in alone[0] if ipa in (MMIO_IPA, MMIO_IPA + 8)]
    assert polls > SPIN_ROUNDS  # CPU 1 was preempted: CPU 0 polled inside its rounds
    assert ticks > 0
    for _ in range(5):
        assert _two_vcpus_polling(3) == alone
