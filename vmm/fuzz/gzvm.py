"""The /dev/gzvm ioctl state machine (spec/geniezone.md §1.1).

Each step is one ioctl, on any fd (/dev/gzvm, VM and vCPU fds, open,
closed, eventfds, 999999, -1), with syzkaller-style values: slots and ids
0..10 and 0x7fffffff/0xffffffff, unaligned and huge addresses, sizes 0,
0xfff, 0x1001 and the VMM's real mappings, user addresses inside and
beside them, bad pointers, plain ints where pointers go, non-zero pads,
unknown flags, caps and register ids; beside them VMs built right
(:func:`vmm.fuzz.vms.gzvm_vm`) are run, fds closed and guest RAM unmapped in
random order. GZVM_RUN is bounded (:meth:`vmm.fuzz.check.Checker.bounded`).
The properties are :mod:`vmm.fuzz.check`'s.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

import kernel
from uapi.linux import gzvm as gz
from vmm.fuzz.check import ALLOWED
from vmm.fuzz.machine import BAD_POINTERS, U32, IoctlMachine, Src, value_text
from vmm.fuzz.vms import (
    ANONYMOUS,
    MMIO,
    PROT_RW,
    RAM_IPA,
    REG_PC,
    REG_X0,
    gzvm_vm,
    user_address,
)

MAX_VMS = 4  # VMs of one example (EL2 has 32 vm_ids)
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
REQUESTS = sorted(ALLOWED["gzvm"])


def new_struct(ctype: str, fields):
    """A struct and its text in the script."""
    return gz.ffi.new(ctype, fields), f"gz.ffi.new({ctype!r}, {value_text(fields)})"


class Scratch:
    """Buffers an argument points into: the script makes each before the ioctl."""

    def __init__(self):
        self.keep, self.pre = [], []

    def __call__(self, name: str, ctype: str, init=None) -> Src:
        cdata = gz.ffi.new(ctype, init)
        self.keep.append(cdata)
        self.pre.append(f"{name} = gz.ffi.new({ctype!r}, {value_text(init)})")
        return Src(int(gz.ffi.cast("uintptr_t", cdata)), f'int(gz.ffi.cast("uintptr_t", {name}))')


def struct_arg(request: str, data, machine: GzvmMachine, scratch: Scratch):
    """An argument for ``request`` and its text: usually its struct with fuzzed
    fields (or its int), sometimes a bad pointer or an int where a pointer goes."""
    kind = data.draw(st.sampled_from(["good", "good", "good", "bad", "int"]))
    if kind == "bad":
        return data.draw(BAD_POINTERS), None
    if kind == "int" or request in ("GZVM_CREATE_VM", "GZVM_CREATE_VCPU"):
        return data.draw(U32 | U64), None
    if request == "GZVM_CHECK_EXTENSION":
        return new_struct("uint64_t *", data.draw(CAPS))
    if request in ("GZVM_SET_USER_MEMORY_REGION", "GZVM_SET_MEMORY_REGION"):
        maps = machine.mappings
        sizes = [0, 0xFFF, 0x1000, 0x1001, 4 << 20, *(len(m) for m in maps.values())]
        uaddrs = [
            Src(user_address(m) + off, f"vms.user_address({name}) + {off:#x}")
            for name, m in maps.items()
            for off in (0, 0x1000)
        ]
        fields = [
            data.draw(U32),
            data.draw(st.sampled_from([0, 1, 2, 4, 7, 8])),
            data.draw(U64),
            data.draw(st.sampled_from(sizes) | U64),
            data.draw(st.sampled_from(uaddrs) | U64 if uaddrs else U64),
        ]
        return new_struct("struct gzvm_userspace_memory_region *", fields)
    if request == "GZVM_IRQ_LINE":
        irq = data.draw(st.sampled_from([0, 3, 0xFFFF, 1 << 24, 0x0001_0003, 0xF0FF_FFFF]))
        return new_struct("struct gzvm_irq_level *", [irq, data.draw(st.sampled_from([0, 1, 2]))])
    if request == "GZVM_IRQFD":
        pad = [0] * 16
        pad[data.draw(st.integers(0, 15))] = data.draw(st.sampled_from([0, 0, 1]))
        fields = {
            "fd": data.draw(machine.fd_values()),
            "gsi": data.draw(U32),
            "flags": data.draw(st.sampled_from([0, 1, 2, 3, 4])),
            "resamplefd": data.draw(machine.fd_values()),
            "pad": pad,
        }
        return new_struct("struct gzvm_irqfd *", fields)
    if request == "GZVM_IOEVENTFD":
        fields = [
            data.draw(st.sampled_from([0, 1, 0xFFFF_FFFF_FFFF_FFFF])),
            data.draw(st.sampled_from([MMIO, MMIO + 8, MMIO + 0x100]) | U64),
            data.draw(st.sampled_from([0, 1, 2, 3, 4, 8, 16])),
            data.draw(machine.fd_values(none=-1)),  # a signed fd here
            data.draw(st.sampled_from([0, 1, 2, 4, 5, 8])),
        ]
        return new_struct("struct gzvm_ioeventfd *", fields)
    if request == "GZVM_RUN":
        fields = {
            "immediate_exit": data.draw(st.sampled_from([0, 0, 1, 2])),
            "padding1": [data.draw(st.sampled_from([0, 0, 0, 1]))],
        }
        return new_struct("struct gzvm_vcpu_run *", fields)
    if request == "GZVM_ENABLE_CAP":
        args = [data.draw(st.sampled_from([0, 1, 2, 3])), data.draw(U64), 0, 0, 0]
        return new_struct("struct gzvm_enable_cap *", [data.draw(CAPS), args])
    if request in ("GZVM_GET_ONE_REG", "GZVM_SET_ONE_REG"):
        where = data.draw(st.sampled_from(["box", 0, 8]))
        value = scratch("box", "uint64_t[2]", [RAM_IPA, 0]) if where == "box" else where
        return new_struct("struct gzvm_one_reg *", [data.draw(REG_IDS), value])
    if request == "GZVM_CREATE_DEVICE":
        where = data.draw(st.sampled_from(["attrs", 0, 8]))
        attrs = scratch("attrs", "uint8_t[8192]") if where == "attrs" else where
        fields = {
            "dev_type": data.draw(st.sampled_from([0, 1, 2, 0xFFFF_FFFF])),
            "dev_addr": data.draw(st.sampled_from([0x3FFF_0000, 0x3FFD_0000]) | U64),
            "dev_reg_size": data.draw(st.sampled_from([0x1_0000, 0x2_0000]) | U64),
            "attr_addr": attrs,
            "attr_size": data.draw(st.sampled_from([0, 8, 0x1000, 0x1001])),
        }
        return new_struct("struct gzvm_create_device *", fields)
    assert request == "GZVM_SET_DTB_CONFIG"
    return new_struct("struct gzvm_dtb_config *", [data.draw(U64), data.draw(U64)])


class GzvmMachine(IoctlMachine):
    """Every /dev/gzvm ioctl on any fd, beside VMs built right and run."""

    TARGET, DEVICE, MODULE = "gzvm", "/dev/gzvm", "gz"
    MAKES_FDS = ("GZVM_CREATE_VM", "GZVM_CREATE_VCPU")

    def __init__(self):
        super().__init__()
        self.vms = []
        self.eventfds = []
        for _ in range(2):
            self.say("host.eventfd()")
            self.eventfds.append(self.host.eventfd())
            self.bind(self.eventfds[-1])
        self.mapped = 0  # mappings made: the script's names m0, m1, ...

    @classmethod
    def boot(cls):
        return kernel.boot(dram_size=1 << 30, hypervisor="geniezone")

    def uapi(self):
        return gz

    def fd_values(self, none: int = 0xFFFF_FFFF):
        """An fd field: eventfds, the driver's fds, none open (-1 as ``none``)."""
        fds = [*self.eventfds, *sorted(self.open)]
        return st.sampled_from([*map(self.fd_value, fds), 999999, none])

    @rule()
    def create_vm(self):
        if len(self.host.gzvm.vm_list) < MAX_VMS:
            self.do_ioctl(self.device(), "GZVM_CREATE_VM", 0)

    @precondition(lambda self: len(self.mappings) < 3)
    @rule(size=st.sampled_from([0x1000, 0x20_0000, 4 << 20]))
    def mmap_guest_ram(self, size):
        name = f"m{self.mapped}"
        self.mapped += 1
        self.say(f"{name} = host.mmap(-1, {size:#x}, vms.PROT_RW, vms.ANONYMOUS)")
        self.mappings[name] = self.host.mmap(-1, size, PROT_RW, ANONYMOUS)

    @precondition(lambda self: len(self.vms) < 2)
    @rule()
    def a_vm_built_right(self):
        if len(self.host.gzvm.vm_list) >= MAX_VMS:
            return
        name = f"vm{len(self.vms)}"
        self.say(f"{name} = vms.gzvm_vm(host)")
        t = gzvm_vm(self.host)
        self.say(f"{value_text([Src(fd, f'fd[{fd}]') for fd in t.fds()])} = {name}.fds()")
        self.vms.append((name, t))
        self.open |= set(t.fds())
        self.bound |= set(t.fds())
        self.mappings[f"{name}.ram"] = t.ram

    @rule(data=st.data(), request=st.sampled_from(REQUESTS))
    def ioctl(self, data, request):
        candidates = [*sorted(self.open | self.closed), *self.eventfds, 999999, -1]
        fd = data.draw(st.sampled_from(candidates))
        if request in self.MAKES_FDS and len(self.host.gzvm.vm_list) >= MAX_VMS:
            request = "GZVM_CHECK_EXTENSION"
        scratch = Scratch()
        arg, text = struct_arg(request, data, self, scratch)
        if request == "GZVM_RUN":
            self.bounded_ioctl(fd, request, arg, text, scratch.pre)
        else:
            self.do_ioctl(fd, request, arg, text, scratch.pre)

    def bounded_ioctl(self, fd: int, request: str, arg, text, pre=()) -> None:
        """do_ioctl under ``check.bounded()``, in the script too."""
        self.say("with check.bounded():")
        at = len(self.script)
        try:
            with self.check.bounded():
                self.do_ioctl(fd, request, arg, text, pre)
        finally:
            self.script[at:] = [f"    {line}" for line in self.script[at:]]

    @rule(t=st.integers(0, 1))
    def run_a_built_vm(self, t):
        if t < len(self.vms):
            name, vm = self.vms[t]
            self.bounded_ioctl(vm.vcpus[0], "GZVM_RUN", vm.run, f"{name}.run")

    @rule(data=st.data())
    def munmap_one(self, data):
        """Guest RAM unmapped under a VM: its pinned pages stay the VM's."""
        if self.mappings:
            name = data.draw(st.sampled_from(sorted(self.mappings)))
            self.say(f"host.munmap({name})")
            self.host.munmap(self.mappings.pop(name))

    def teardown(self):
        self.open |= set(self.eventfds)
        super().teardown()
