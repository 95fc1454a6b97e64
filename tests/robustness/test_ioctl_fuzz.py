"""Fuzzing: a Hypothesis state machine over every /dev/gunyah ioctl.

Values are the syzkaller kind: labels 0..10 and 0x7fffffff/0xffffffff,
unaligned addresses, sizes 0, 1, 0xfff, 0x1001 and huge, bad pointers,
random and closed fds, random close orders, and now and then a VM built
right and started. After every step: only OSError escapes, with an errno
the spec allows for that ioctl; no VM's state goes backwards; the kernel
model hit no bug. After every example, with everything closed, the host
holds what it held before.

CI runs ``EXAMPLES`` examples; a long campaign sets the environment
variable GUNYAH_SIM_FUZZ_EXAMPLES (e.g. 200000) and runs this file alone.
"""

from __future__ import annotations

import errno
import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

import kernel
from tests.gunyahvm import RW_SHARE, RWX_LEND, make_vm
from tests.robustness import leaks
from uapi.linux import gunyah as gh

EXAMPLES = int(os.environ.get("GUNYAH_SIM_FUZZ_EXAMPLES", "2000"))
SUMMARY = {"fuzz examples run": 0}

U32 = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x7FFF_FFFF, 0xFFFF_FFFF])
U64 = st.sampled_from(
    [
        0,
        1,
        0xFFF,
        0x1000,
        0x1001,
        0x20_0000,
        0x8000_0000,
        0x8000_1000,
        0x8000_0800,
        0xFFFF_FFFF,
        1 << 40,
        0xFFFF_FFFF_FFFF_F000,
        0xFFFF_FFFF_FFFF_FFFF,
    ]
)
BAD_POINTERS = st.sampled_from([0, 8, 0xFFFF_FFFF_FFFF_F000, -1])

COMMON = {errno.EBADF, errno.ENOTTY, errno.EFAULT}
RM = {
    errno.ENOMEM,
    errno.ENODEV,
    errno.EPERM,
    errno.EINVAL,
    errno.EBUSY,
    errno.EOPNOTSUPP,
    errno.EBADMSG,
    errno.E2BIG,
}
ALLOWED = {
    "GUNYAH_CREATE_VM": {errno.EINVAL},
    "GUNYAH_CREATE_GUEST_MEM": {errno.EINVAL, errno.ENOMEM},
    "GUNYAH_VM_SET_DTB_CONFIG": {errno.EOVERFLOW},
    "GUNYAH_VM_SET_BOOT_CONTEXT": {errno.EINVAL},
    "GUNYAH_VM_MAP_MEM": {errno.EINVAL, errno.EEXIST, errno.ENOENT, errno.EOVERFLOW, errno.ENOMEM},
    "GUNYAH_VM_ADD_FUNCTION": {
        errno.EINVAL,
        errno.ENOENT,
        errno.EEXIST,
        errno.EBADF,
        errno.ENOMEM,
        errno.ENODEV,
    },
    "GUNYAH_VM_REMOVE_FUNCTION": {errno.EINVAL, errno.ENOENT},
    "GUNYAH_VM_START": {errno.EINVAL, errno.ENOENT, errno.ENODEV} | RM,
    "GUNYAH_VCPU_RUN": {errno.ENODEV, errno.EINTR, errno.EINVAL},
    "GUNYAH_VCPU_MMAP_SIZE": set(),
}
REQUESTS = sorted(ALLOWED)
# The driver's statuses in the order a VM goes through them.
ORDER = {0: 0, 5: 1, 8: 2, 2: 2, 3: 3, 9: 4, 11: 5}
OFF = "ldr x0, =0x84000008\nhvc #0\nb ."


def struct_arg(request: str, data) -> object:
    """A struct for ``request`` with fuzzed fields, or a bad pointer, or a plain int."""
    kind = data.draw(st.sampled_from(["struct", "struct", "struct", "bad", "int"]))
    if kind == "bad":
        return data.draw(BAD_POINTERS)
    if kind == "int":
        return data.draw(U64)
    if request == "GUNYAH_CREATE_GUEST_MEM":
        return gh.ffi.new(
            "struct gunyah_create_mem_args *",
            {
                "size": data.draw(
                    st.sampled_from([0, 1, 0xFFF, 0x1000, 0x1001, 0x20_0000, 1 << 40])
                ),
                "flags": data.draw(st.sampled_from([0, 1, 2, 3, 8, 0xFFFF_FFFF_FFFF_FFFF])),
            },
        )
    if request == "GUNYAH_VM_SET_DTB_CONFIG":
        return gh.ffi.new(
            "struct gunyah_vm_dtb_config *",
            {"guest_phys_addr": data.draw(U64), "size": data.draw(U64)},
        )
    if request == "GUNYAH_VM_SET_BOOT_CONTEXT":
        return gh.ffi.new(
            "struct gunyah_vm_boot_context *", {"reg": data.draw(U32), "value": data.draw(U64)}
        )
    if request == "GUNYAH_VM_MAP_MEM":
        return gh.ffi.new(
            "struct gunyah_map_mem_args *",
            {
                "guest_addr": data.draw(U64),
                "flags": data.draw(
                    st.sampled_from(
                        [0, RWX_LEND, RW_SHARE, RWX_LEND | gh.GUNYAH_MEM_UNMAP, 0x77, 0xFFFF_FFFF]
                    )
                ),
                "guest_mem_fd": data.draw(st.integers(0, 64) | st.just(0xFFFF_FFFF)),
                "offset": data.draw(U64),
                "size": data.draw(U64),
            },
        )
    if request in ("GUNYAH_VM_ADD_FUNCTION", "GUNYAH_VM_REMOVE_FUNCTION"):
        inner = gh.ffi.new("uint32_t[8]", [data.draw(U32) for _ in range(8)])
        return (
            gh.ffi.new(
                "struct gunyah_fn_desc *",
                {
                    "type": data.draw(st.sampled_from([0, 1, 2, 3, 0xFFFF_FFFF])),
                    "arg_size": data.draw(st.sampled_from([0, 4, 16, 32, 257, 0xFFFF_FFFF])),
                    "arg": data.draw(st.sampled_from([int(gh.ffi.cast("uintptr_t", inner)), 0, 8])),
                },
            ),
            inner,
        )
    return data.draw(U64)


HOST = None


def shared_host():
    global HOST
    if HOST is None:
        HOST = kernel.boot(dram_size=1 << 30)
    return HOST


class IoctlMachine(RuleBasedStateMachine):
    fds = Bundle("fds")

    def __init__(self):
        super().__init__()
        self.host = shared_host()
        self.before = leaks.holdings(self.host)
        self.dev = self.host.open("/dev/gunyah")
        self.open: set[int] = {self.dev}
        self.closed: set[int] = set()
        self.seen_status: dict[int, int] = {}
        self.vms = []

    def _dev_open(self) -> bool:
        return self.dev in self.open

    @precondition(_dev_open)
    @rule(target=fds)
    def create_vm(self):
        fd = self.host.ioctl(self.dev, gh.GUNYAH_CREATE_VM, 0)
        self.open.add(fd)
        return fd

    @precondition(_dev_open)
    @rule(target=fds, size=st.sampled_from([0, 0x1000, 0x20_0000]), flags=st.sampled_from([0, 2]))
    def create_guest_mem(self, size, flags):
        args = gh.ffi.new("struct gunyah_create_mem_args *", {"size": size, "flags": flags})
        fd = self.host.ioctl(self.dev, gh.GUNYAH_CREATE_GUEST_MEM, args)
        self.open.add(fd)
        return fd

    @precondition(lambda self: len(self.vms) < 2)
    @rule()
    def a_vm_built_right(self):
        t = make_vm(self.host, OFF)
        self.vms.append(t)
        self.open |= {t.vm, t.ram, t.shared, *t.vcpus, t.dev}

    @rule(data=st.data(), request=st.sampled_from(REQUESTS))
    def ioctl(self, data, request):
        candidates = [*sorted(self.open | self.closed), 999999, -1]
        fd = data.draw(st.sampled_from(candidates))
        arg = (
            struct_arg(request, data)
            if request not in ("GUNYAH_VM_START", "GUNYAH_VCPU_RUN", "GUNYAH_VCPU_MMAP_SIZE")
            else 0
        )
        pointer = arg[0] if isinstance(arg, tuple) else arg
        try:
            self.host.ioctl(fd, getattr(gh, request), pointer)
        except OSError as e:
            assert e.errno in ALLOWED[request] | COMMON, (request, e)
        except (TypeError, OverflowError):
            pass  # the caller's own conversion of a Python value, before any syscall
        else:
            if request in ("GUNYAH_CREATE_VM", "GUNYAH_CREATE_GUEST_MEM", "GUNYAH_VM_ADD_FUNCTION"):
                self._adopt_new_fds()

    @rule(t=st.integers(0, 1))
    def start_and_run(self, t):
        if t >= len(self.vms):
            return
        vm = self.vms[t]
        for call in (vm.start, vm.run):
            try:
                call()
            except OSError as e:
                assert e.errno in ALLOWED["GUNYAH_VM_START"] | ALLOWED["GUNYAH_VCPU_RUN"] | COMMON

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

    def _adopt_new_fds(self):
        self.open |= set(self.host.fdtable.fds()) - set(self.before.fds)

    @invariant()
    def no_bug_and_no_state_going_back(self):
        assert self.host.bugs == []
        for fd in self.host.fdtable.fds():
            file = self.host.fdtable.get(fd)
            try:
                status = getattr(file.private, "vm_status", None)
                if status is not None:
                    key = id(file.private)
                    assert ORDER[status] >= self.seen_status.get(key, 0), status
                    self.seen_status[key] = ORDER[status]
            finally:
                file.put()

    def teardown(self):
        for fd in sorted(self.open):
            try:
                self.host.close(fd)
            except OSError as e:
                assert e.errno == errno.EBADF  # closed by a fuzzed close already
        self.host.eventfd_wq.quiesce()
        assert leaks.leaked(self.before, leaks.holdings(self.host)) == {}
        SUMMARY["fuzz examples run"] += 1


TestIoctls = IoctlMachine.TestCase
TestIoctls.settings = settings(
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
