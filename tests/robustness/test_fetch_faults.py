"""Instruction fetches the stage 2 forbids reach the guest; VCPU_RUN never spins.

Shared memory is never executable (the driver maps it RW whatever the
binding allows): a guest branching into a FORCE_SHARE|ALLOW_RWX binding
takes an instruction abort (permission fault at EL1, FAR the target) in
its own vectors, which report ESR_EL1 and FAR_EL1 by MMIO writes.
VCPU_RUN runs in a thread with a bound: a hang fails the test.
"""

import signal
import threading

from hyp.arch.exception import EC_IABT_CUR, FSC_PERMISSION_L3
from tests.gunyahvm import MMIO, SHARED_IPA, make_vm, outcome
from uapi.linux import gunyah as gh

RWX_SHARE = gh.GUNYAH_MEM_FORCE_SHARE | gh.GUNYAH_MEM_ALLOW_RWX
BOUND = 30

BRANCH_TO_SHARED = f"""
    adr x8, vectors
    msr vbar_el1, x8
    ldr x9, ={MMIO:#x}
    ldr x1, ={SHARED_IPA:#x}
    br x1
    .ltorg
    .balign 0x800
vectors:
    .skip 0x200                     // synchronous, current EL with SP_ELx
    mrs x1, esr_el1
    str x1, [x9]
    mrs x1, far_el1
    str x1, [x9]
1:  b 1b
"""


def run_bounded(t, run) -> None:
    """VCPU_RUN once; one still running after BOUND seconds is ended and fails."""
    ended = []
    thread = threading.Thread(target=lambda: ended.append(outcome(t.run)))
    thread.start()
    thread.join(BOUND)
    if thread.is_alive():
        run.immediate_exit = 1
        t.host.pthread_kill(thread.ident, signal.SIGUSR1)
        thread.join(BOUND)
    assert ended == [0], "VCPU_RUN did not return"


def test_a_fetch_from_shared_memory_is_a_prefetch_abort_in_the_guest(host):
    t = make_vm(host, BRANCH_TO_SHARED, shared_word=0x1400_0000, shared_access=RWX_SHARE)
    run = t.run_page()
    t.start()
    reports = []
    for _ in range(2):
        run_bounded(t, run)
        assert run.exit_reason == gh.GUNYAH_VCPU_EXIT_MMIO
        reports.append(int.from_bytes(bytes(run.mmio.data), "little"))
    esr, far = reports
    assert (esr >> 26, esr & 0x3F) == (EC_IABT_CUR, FSC_PERMISSION_L3)
    assert far == SHARED_IPA
    del run
    t.close()
