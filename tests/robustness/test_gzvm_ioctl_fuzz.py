"""Fuzzing on GenieZone: a Hypothesis state machine over every /dev/gzvm ioctl of spec §1.1.

Each step is one ioctl, on any fd (/dev/gzvm, VM and vCPU fds, open,
closed, other files, 999999, -1), with syzkaller-style values: slots and
ids 0..10 and 0x7fffffff/0xffffffff, unaligned and huge addresses, sizes
0, 0xfff, 0x1001 and the VMM's real mappings, user addresses inside and
beside them, bad pointers, plain ints where pointers go, non-zero pads,
unknown flags, caps and register ids; beside them VMs built right
(memslot, vCPU, GIC) are run, fds closed and guest RAM unmapped in random
order. GZVM_RUN is bounded: a signal comes after 20 ms (a guest spinning
in its own exception vectors never exits by itself).

After every step: only OSError escapes, with an errno the spec gives that
ioctl (or EBADF/ENOTTY/EFAULT, which every ioctl has); nothing is in
``Host.bugs``. After every example, with everything closed and unmapped,
the host and EL2 hold what they held before (tests/robustness/leaks.py).

CI runs ``EXAMPLES`` examples; a long campaign sets GUNYAH_SIM_FUZZ_EXAMPLES
(e.g. 200000) and runs this file alone.
"""

from __future__ import annotations

import errno
import os
import signal
import threading

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import kernel
from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.gzvmvm import MMIO, PROT_RW, RAM_IPA, REG_PC, REG_X0, addr, make_vm, user_address
from tests.robustness.leaks import gz_holdings, gz_leaked
from uapi.linux import gzvm as gz

# a fuzz example runs fewer, slower steps than Gunyah's (runs of real guests); see Documentation
EXAMPLES = int(os.environ.get("GUNYAH_SIM_FUZZ_EXAMPLES", "200"))
SUMMARY = {"fuzz examples run": 0}
RUN_LIMIT = 0.02  # seconds before a signal ends a GZVM_RUN
MAX_VMS = 4  # VMs of one example (EL2 has 32 vm_ids)

U32 = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x7FFF_FFFF, 0xFFFF_FFFF])
U64 = st.sampled_from(
    [
        0,
        1,
        0xFFF,
        0x1000,
        0x1001,
        0x20_0000,
        MMIO,
        RAM_IPA,
        RAM_IPA + 0x800,
        0xFFFF_FFFF,
        1 << 40,
        1 << 48,
        0xFFFF_FFFF_FFFF_F000,
        0xFFFF_FFFF_FFFF_FFFF,
    ]
)
BAD_POINTERS = st.sampled_from([0, 8, 0xFFFF_FFFF_FFFF_F000, -1])
CAPS = st.sampled_from(
    [
        gz.GZVM_CAP_VM_GPA_SIZE,
        gz.GZVM_CAP_PROTECTED_VM,
        gz.GZVM_CAP_BLOCK_BASED_DEMAND_PAGING,
        gz.GZVM_CAP_ENABLE_DEMAND_PAGING,
        gz.GZVM_CAP_ENABLE_IDLE,
        0x9204,
        0x9205,
        0,
        0xFFFF_FFFF_FFFF_FFFF,
    ]
)
V0, FPSR, A_SYSREG = 0x6040_0000_0010_0054, 0x6020_0000_0010_00D4, 0x6030_0000_0013_C000
REG_IDS = st.sampled_from([REG_PC, REG_X0, V0, FPSR, A_SYSREG, 0, 1 << 63])

COMMON = {errno.EBADF, errno.ENOTTY, errno.EFAULT}
# gzvm_err_to_errno's range: what an ioctl forwarding EL2's answer may return
EL2 = {errno.ENOMEM, errno.EINVAL, errno.EOPNOTSUPP, errno.EAGAIN, errno.EFAULT}
ALLOWED = {
    "GZVM_CREATE_VM": {errno.EINVAL} | EL2,
    "GZVM_CHECK_EXTENSION": {errno.EINVAL, errno.EOPNOTSUPP},
    "GZVM_SET_MEMORY_REGION": set(),
    "GZVM_CREATE_VCPU": {errno.EINVAL} | EL2,
    "GZVM_SET_USER_MEMORY_REGION": {errno.EINVAL},
    "GZVM_IRQ_LINE": set(),
    "GZVM_IRQFD": {errno.EINVAL, errno.EBUSY},
    "GZVM_IOEVENTFD": {errno.EINVAL, errno.EEXIST, errno.ENOENT},
    # ENODEV: the VM fd is released (the model's, Documentation/geniezone.rst);
    # EL2's errno: a RUN hypercall EL2 refuses (likewise)
    "GZVM_RUN": {errno.EINTR, errno.EINVAL, errno.ENODEV} | EL2,
    "GZVM_ENABLE_CAP": {errno.EINVAL} | EL2,
    "GZVM_GET_ONE_REG": {errno.EOPNOTSUPP},
    "GZVM_SET_ONE_REG": {errno.EINVAL, errno.ENODEV} | EL2,
    "GZVM_CREATE_DEVICE": {errno.EINVAL} | EL2,
    "GZVM_SET_DTB_CONFIG": EL2,
}
REQUESTS = sorted(ALLOWED)
MAKES_FDS = {"GZVM_CREATE_VM", "GZVM_CREATE_VCPU"}
GUEST = f"""
    ldr x9, ={MMIO:#x}
1:  str x1, [x9]
    add x1, x1, #1
    cmp x1, #3
    b.ne 1b
    ldr x0, =0x84000008
    hvc #0
    b .
"""


class Keep(list):
    """cdata the kernel reads through pointers: alive until the ioctl returns."""

    def __call__(self, cdata):
        self.append(cdata)
        return addr(cdata)


def struct_arg(request: str, data, machine) -> object:
    """An argument for ``request``: usually its struct with fuzzed fields (or its
    int), sometimes a bad pointer or an int where a pointer goes."""
    kind = data.draw(st.sampled_from(["good", "good", "good", "bad", "int"]))
    if kind == "bad":
        return data.draw(BAD_POINTERS)
    if kind == "int" or request in ("GZVM_CREATE_VM", "GZVM_CREATE_VCPU"):
        return data.draw(U32 | U64)
    keep = machine.keep
    new = gz.ffi.new
    if request == "GZVM_CHECK_EXTENSION":
        return new("uint64_t *", data.draw(CAPS))
    if request in ("GZVM_SET_USER_MEMORY_REGION", "GZVM_SET_MEMORY_REGION"):
        sizes = [0, 0xFFF, 0x1000, 0x1001, 4 << 20, *(len(m) for m in machine.maps)]
        uaddrs = [user_address(m) + off for m in machine.maps for off in (0, 0x1000)]
        return new(
            "struct gzvm_userspace_memory_region *",
            [
                data.draw(U32),
                data.draw(st.sampled_from([0, 1, 2, 4, 7, 8])),
                data.draw(U64),
                data.draw(st.sampled_from(sizes) | U64),
                data.draw(st.sampled_from(uaddrs) | U64 if uaddrs else U64),
            ],
        )
    if request == "GZVM_IRQ_LINE":
        irq = data.draw(st.sampled_from([0, 3, 0xFFFF, 1 << 24, 0x0001_0003, 0xF0FF_FFFF]))
        return new("struct gzvm_irq_level *", [irq, data.draw(st.sampled_from([0, 1, 2]))])
    if request == "GZVM_IRQFD":
        arg = new(
            "struct gzvm_irqfd *",
            {
                "fd": data.draw(machine.fd_values()),
                "gsi": data.draw(U32),
                "flags": data.draw(st.sampled_from([0, 1, 2, 3, 4])),
                "resamplefd": data.draw(machine.fd_values()),
            },
        )
        arg.pad[data.draw(st.integers(0, 15))] = data.draw(st.sampled_from([0, 0, 1]))
        return arg
    if request == "GZVM_IOEVENTFD":
        return new(
            "struct gzvm_ioeventfd *",
            [
                data.draw(st.sampled_from([0, 1, 0xFFFF_FFFF_FFFF_FFFF])),
                data.draw(st.sampled_from([MMIO, MMIO + 8, MMIO + 0x100]) | U64),
                data.draw(st.sampled_from([0, 1, 2, 3, 4, 8, 16])),
                data.draw(machine.fd_values(none=-1)),  # a signed fd here
                data.draw(st.sampled_from([0, 1, 2, 4, 5, 8])),
            ],
        )
    if request == "GZVM_RUN":
        run = new("struct gzvm_vcpu_run *")
        run.immediate_exit = data.draw(st.sampled_from([0, 0, 1, 2]))
        run.padding1[0] = data.draw(st.sampled_from([0, 0, 0, 1]))
        return run
    if request == "GZVM_ENABLE_CAP":
        args = [data.draw(st.sampled_from([0, 1, 2, 3])), data.draw(U64), 0, 0, 0]
        return new("struct gzvm_enable_cap *", [data.draw(CAPS), args])
    if request in ("GZVM_GET_ONE_REG", "GZVM_SET_ONE_REG"):
        value = data.draw(st.sampled_from([keep(new("uint64_t[2]", [RAM_IPA, 0])), 0, 8]))
        return new("struct gzvm_one_reg *", [data.draw(REG_IDS), value])
    if request == "GZVM_CREATE_DEVICE":
        attrs = keep(new("uint8_t[8192]"))
        return new(
            "struct gzvm_create_device *",
            {
                "dev_type": data.draw(st.sampled_from([0, 1, 2, 0xFFFF_FFFF])),
                "dev_addr": data.draw(st.sampled_from([0x3FFF_0000, 0x3FFD_0000]) | U64),
                "dev_reg_size": data.draw(st.sampled_from([0x1_0000, 0x2_0000]) | U64),
                "attr_addr": data.draw(st.sampled_from([attrs, 0, 8])),
                "attr_size": data.draw(st.sampled_from([0, 8, 0x1000, 0x1001])),
            },
        )
    assert request == "GZVM_SET_DTB_CONFIG"
    return new("struct gzvm_dtb_config *", [data.draw(U64), data.draw(U64)])


HOST = None


def shared_host():
    global HOST
    if HOST is None:
        HOST = kernel.boot(dram_size=1 << 30, hypervisor="geniezone")
    return HOST


class GzvmIoctlMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.host = shared_host()
        self.before = gz_holdings(self.host)
        self.dev = self.host.open("/dev/gzvm")
        self.open: set[int] = {self.dev}
        self.closed: set[int] = set()
        self.maps: list = []
        self.vms = []
        self.keep = Keep()
        self.eventfds = [self.host.eventfd() for _ in range(2)]

    def fd_values(self, none: int = 0xFFFF_FFFF):
        """An fd field: eventfds, the driver's fds, none open (-1 as ``none``)."""
        return st.sampled_from([*self.eventfds, *sorted(self.open), 999999, none])

    @precondition(lambda self: self.dev in self.open)
    @rule()
    def create_vm(self):
        self.open.add(self.host.ioctl(self.dev, gz.GZVM_CREATE_VM, 0))

    @precondition(lambda self: len(self.maps) < 3)
    @rule(size=st.sampled_from([0x1000, 0x20_0000, 4 << 20]))
    def mmap_guest_ram(self, size):
        self.maps.append(self.host.mmap(-1, size, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS))

    @precondition(lambda self: len(self.vms) < 2)
    @rule()
    def a_vm_built_right(self):
        t = make_vm(self.host, GUEST)
        self.vms.append(t)
        self.open |= {t.vm, t.dev, *t.vcpus}
        self.maps.append(t.ram)

    @rule(data=st.data(), request=st.sampled_from(REQUESTS))
    def ioctl(self, data, request):
        candidates = [*sorted(self.open | self.closed), *self.eventfds, 999999, -1]
        fd = data.draw(st.sampled_from(candidates))
        if request in MAKES_FDS and len(self.host.gzvm.vm_list) >= MAX_VMS:
            request = "GZVM_CHECK_EXTENSION"
        arg = struct_arg(request, data, self)
        try:
            if request == "GZVM_RUN":
                self._bounded(lambda: self.host.ioctl(fd, gz.GZVM_RUN, arg))
            else:
                self.host.ioctl(fd, getattr(gz, request), arg)
        except OSError as e:
            assert e.errno in ALLOWED[request] | COMMON, (request, e)
        except (TypeError, OverflowError):
            pass  # the caller's own conversion of a Python value, before any syscall
        else:
            if request in MAKES_FDS:
                self.open |= set(self.host.fdtable.fds()) - set(self.before.fds)
        finally:
            self.keep.clear()

    @rule(t=st.integers(0, 1))
    def run_a_built_vm(self, t):
        if t >= len(self.vms):
            return
        vm = self.vms[t]
        try:
            self._bounded(lambda: vm.go(self.host))
        except OSError as e:
            assert e.errno in ALLOWED["GZVM_RUN"] | COMMON, e

    def _bounded(self, call) -> None:
        """``call`` with a signal to this thread after RUN_LIMIT; one that came
        after the call returned is taken (its EINTR) before going on."""
        host, me = self.host, threading.get_ident()
        timer = threading.Timer(RUN_LIMIT, host.pthread_kill, (me, signal.SIGUSR1))
        timer.start()
        try:
            call()
        finally:
            timer.cancel()
            timer.join()
            if host.signals.pending():
                host.signals.deliver()

    @rule(data=st.data())
    def close_one(self, data):
        if not self.open:
            return
        fd = data.draw(st.sampled_from(sorted(self.open)))
        self.host.close(fd)
        self.open.discard(fd)
        self.closed.add(fd)
        if fd == self.dev:
            self.dev = None  # its number may come back as another file

    @rule(data=st.data())
    def munmap_one(self, data):
        """Guest RAM unmapped under a VM: its pinned pages stay the VM's."""
        if not self.maps:
            return
        mapping = self.maps.pop(data.draw(st.integers(0, len(self.maps) - 1)))
        self.host.munmap(mapping)

    @invariant()
    def no_bug(self):
        assert self.host.bugs == []

    def teardown(self):
        for fd in sorted(self.open):
            try:
                self.host.close(fd)
            except OSError as e:
                assert e.errno == errno.EBADF  # closed by a fuzzed close already
        for mapping in self.maps:
            self.host.munmap(mapping)
        for fd in self.eventfds:
            self.host.close(fd)
        self.host.eventfd_wq.quiesce()
        assert gz_leaked(self.before, gz_holdings(self.host)) == {}
        SUMMARY["fuzz examples run"] += 1


TestGzvmIoctls = GzvmIoctlMachine.TestCase
TestGzvmIoctls.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module", autouse=True)
def _shutdown():
    yield
    if HOST is not None:
        HOST.shutdown()
