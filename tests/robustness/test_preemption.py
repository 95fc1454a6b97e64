"""Stopping a running vCPU never replays guest work.

Three vCPUs run instructions that are wrong if executed twice (a pointer
chase through ``ldr x0, [x0]``, a post-indexed store round a ring, an
``ldadd`` counter) while the scheduler preempts them and another thread
fires an irqfd at vCPU 0 as fast as it can; vCPU 0's interrupt handler
chases its own cycle once per interrupt, right after the ICC_IAR1_EL1
trap. Each vCPU then reports its final state by MMIO writes, which must be
exactly what the iteration counts say. Every wait is bounded: a hang fails.
"""

import os
import signal
import threading

from tests.aarch64 import gic_enable
from tests.conformance.test_irqfd_ioeventfd import add_irqfd
from tests.gunyahvm import MMIO, RAM_IPA, make_vm
from uapi.linux import gunyah as gh

CPUS, ITERATIONS = 3, 1 << 19
LABEL, SPI = 3, 8
DATA = RAM_IPA + 0x10_0000  # vCPU i's nodes, ring and counter at DATA + i * 0x1000
HANDLER_NODES = DATA + 0x8000
NODE, RING, COUNTER, SLOTS = 0x40, 0x200, 0x300, 5
REPORTS = 5  # vCPU 0 also reports its handler's chase and interrupt count
BOUND = 120  # seconds before a vCPU that never reports fails the test

GUEST = (
    """
    mrs x1, mpidr_el1
    and x19, x1, #0xff
    cbnz x19, work
    adr x8, vectors
    msr vbar_el1, x8
"""
    + gic_enable(32 + SPI)
    + f"""
    mov x20, #1
1:  ldr x0, =0xc4000003             // PSCI CPU_ON for cpu x20
    mov x1, x20
    adr x2, work
    mov x3, x20
    hvc #0
    add x20, x20, #1
    cmp x20, #{CPUS}
    b.lo 1b
    ldr x22, ={HANDLER_NODES:#x}    // the handler's cycle of three nodes
    add x6, x22, #{NODE}
    add x7, x22, #{2 * NODE}
    str x6, [x22]
    str x7, [x6]
    str x22, [x7]
    mov x20, #0                     // interrupts taken
    msr daifclr, #2
work:
    mrs x1, mpidr_el1
    and x19, x1, #0xff
    ldr x5, ={DATA:#x}
    add x5, x5, x19, lsl #12
    add x6, x5, #{NODE}
    add x7, x5, #{2 * NODE}
    str x6, [x5]
    str x7, [x6]
    str x5, [x7]
    mov x0, x5
    add x12, x5, #{RING}
    add x11, x12, #{8 * SLOTS}
    mov x10, x12
    add x14, x5, #{COUNTER}
    str xzr, [x14]
    mov x9, #0
    ldr x13, ={ITERATIONS:#x}
2:  ldr x0, [x0]
    add x9, x9, #1
    str x9, [x10], #8
    cmp x10, x11
    csel x10, x12, x10, eq
    mov x15, #1
    ldadd x15, x16, [x14]
    cmp x9, x13
    b.ne 2b
    ldr x8, ={MMIO:#x}
    sub x1, x0, x5
    str x1, [x8]                    // node offset
    sub x1, x10, x12
    str x1, [x8]                    // ring offset
    ldr x1, [x14]
    str x1, [x8]                    // counter
    cbnz x19, 3f
    msr daifset, #2
    ldr x1, ={HANDLER_NODES:#x}
    sub x1, x22, x1
    str x1, [x8]                    // the handler's node offset
    str x20, [x8]                   // interrupts taken
3:  b 3b
    .ltorg
    .balign 0x800
vectors:
    .skip 0x280                     // IRQ, current EL with SP_ELx
    mrs x21, S3_0_C12_C12_0         // ICC_IAR1_EL1
    ldr x22, [x22]
    add x20, x20, #1
    msr S3_0_C12_C12_1, x21         // ICC_EOIR1_EL1
    eret
"""
)


def expected(cpu: int, interrupts: int) -> list[int]:
    state = [ITERATIONS % 3 * NODE, ITERATIONS % SLOTS * 8, ITERATIONS]
    return [*state, interrupts % 3 * NODE, interrupts] if cpu == 0 else state


def test_preempted_and_interrupted_vcpus_never_replay_an_instruction(host):
    t = make_vm(host, GUEST, vcpus=CPUS, doorbells=((LABEL, SPI),))
    efd = host.eventfd()
    assert add_irqfd(host, t.vm, efd, label=LABEL) == 0
    runs = [t.run_page(i) for i in range(CPUS)]
    t.start()
    reports: list[list[int]] = [[] for _ in range(CPUS)]
    done = threading.Event()

    def vcpu(i):
        while len(reports[i]) < (REPORTS if i == 0 else 3) and not done.is_set():
            t.run(i)
            if runs[i].exit_reason == gh.GUNYAH_VCPU_EXIT_MMIO:
                reports[i].append(int.from_bytes(bytes(runs[i].mmio.data), "little"))

    def storm():
        while not done.is_set():
            os.eventfd_write(efd, 1)

    threads = [threading.Thread(target=vcpu, args=(i,)) for i in range(CPUS)]
    irq = threading.Thread(target=storm)
    for thread in [*threads, irq]:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    hung = [thread.is_alive() for thread in threads]
    done.set()
    irq.join(10)
    for i, thread in enumerate(threads):
        if thread.is_alive():  # a hung vCPU: end its VCPU_RUN
            runs[i].immediate_exit = 1
            host.pthread_kill(thread.ident, signal.SIGUSR1)
            thread.join(10)
    assert hung == [False] * CPUS
    interrupts = reports[0][-1]
    assert interrupts > 0
    assert reports == [expected(i, interrupts) for i in range(CPUS)]
    runs.clear()
    host.close(efd)
    t.close()
