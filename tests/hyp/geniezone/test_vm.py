"""VM life cycle through the door: PROBE, CREATE_VM ids, DESTROY_VM (batched),
and nothing left behind."""

import threading
import time

from hyp.geniezone.errors import Error
from hyp.geniezone.hypervisor import MAX_VMS
from hyp.geniezone.vcpu import GzvmExit
from tests.aarch64 import assemble
from tests.hyp.geniezone.gzhelper import MMIO_IPA, build_vm

STORE = assemble(f"ldr x9, ={MMIO_IPA:#x}\nstr x1, [x9]\nb .")


def test_probe_answers_the_hypervisor_version(door):
    assert door.ok("PROBE", 16, 0, 0) == [16, 0, 0]


def test_vm_ids_are_the_lowest_free_and_run_out(door):
    ids = [door.ok("CREATE_VM", 0)[0] for _ in range(MAX_VMS)]
    assert ids == list(range(1, MAX_VMS + 1))
    assert door.err("CREATE_VM", 0) == Error.ERR_NO_MEMORY
    door.ok("DESTROY_VM", 3, 0)
    assert door.ok("CREATE_VM", 0)[0] == 3
    assert door.err("CREATE_VM", 1) == Error.ERR_NOT_SUPPORTED


def test_destroy_vm_leaves_nothing(gz, door):
    pool_before = gz.pool.used
    vm = build_vm(door, STORE, vcpus=2)
    assert vm.run() == GzvmExit.MMIO
    assert gz.vmids and gz.owners and gz.shared
    door.ok("DESTROY_VM", vm.vm_id, 0)
    assert (gz.vmids, gz.vms, gz.owners, gz.shared) == (set(), {}, {}, set())
    assert gz.pool.used == pool_before
    assert gz.scheduler.order == []
    assert door.err("RUN", vm.vm_id << 16) == Error.ERR_INVALID_ARGS
    assert door.err("DESTROY_VM", vm.vm_id, 0) == Error.ERR_INVALID_ARGS


def test_batched_destroy_is_busy_until_done(gz, door):
    vm = build_vm(door, STORE, ram=300 * 4096)
    busy = 0
    while (status := door.err("DESTROY_VM", vm.vm_id, 128)) == Error.ERR_BUSY:
        busy += 1
        assert door.err("RUN", vm.vm_id << 16) == Error.ERR_BUSY  # dying
    assert (status, busy) == (0, 2)  # 300 pages: 128, 128, then the last 44
    assert gz.owners == {} and gz.vmids == set()


def _running(gz, vm, vcpu, results):
    def runner():
        results.append(vm.run(vcpu))

    thread = threading.Thread(target=runner)
    thread.start()
    end = time.monotonic() + 10
    target = gz.vms[vm.vm_id].vcpus[vcpu]
    while target.proxy_thread is None:
        assert time.monotonic() < end
        time.sleep(0.001)
    return thread


def test_destroy_vcpu_ends_its_run_first(gz, door):
    vm = build_vm(door, assemble("b ."))
    results = []
    thread = _running(gz, vm, 0, results)
    door.ok("DESTROY_VCPU", vm.vm_id << 16)
    thread.join(10)
    assert results == [GzvmExit.IRQ]
    assert gz.vms[vm.vm_id].vcpus == {} and gz.scheduler.order == []
    assert door.err("RUN", vm.vm_id << 16) == Error.ERR_INVALID_ARGS


def test_destroy_vm_ends_a_run_sleeping_in_el2(gz, door):
    vm = build_vm(door, assemble("b ."), vcpus=2)
    results = []
    thread = _running(gz, vm, 1, results)  # vCPU 1 is off: it sleeps in RUN
    door.ok("DESTROY_VM", vm.vm_id, 0)
    thread.join(10)
    assert results == [GzvmExit.IRQ]
    assert gz.vms == {} and gz.shared == set()
