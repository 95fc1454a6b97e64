"""The /dev/gunyah ioctl state machine (spec/gunyah.md §2).

Values are the syzkaller kind: labels 0..10 and 0x7fffffff/0xffffffff,
unaligned addresses, sizes 0, 1, 0xfff, 0x1001 and huge, bad pointers,
plain ints where structs go, random and closed fds, random close orders
(the device fd too), and now and then a VM built right
(:func:`vmm.fuzz.vms.gunyah_vm`) and started. The properties are
:mod:`vmm.fuzz.check`'s.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

import kernel
from uapi.linux import gunyah as gh
from vmm.fuzz.check import ALLOWED
from vmm.fuzz.machine import BAD_POINTERS, U32, IoctlMachine, Src, value_text
from vmm.fuzz.vms import RW_SHARE, RWX_LEND, gunyah_vm

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
REQUESTS = sorted(ALLOWED["gunyah"])
NO_ARG = ("GUNYAH_VM_START", "GUNYAH_VCPU_RUN", "GUNYAH_VCPU_MMAP_SIZE")
MAX_VMS = 2  # VMs built right in one example


def new_struct(ctype: str, fields: dict):
    """A struct and its text in the script."""
    return gh.ffi.new(ctype, fields), f"gh.ffi.new({ctype!r}, {value_text(fields)})"


def struct_arg(request: str, data, machine: GunyahMachine) -> tuple[object, str | None, list[str]]:
    """An argument for ``request``: (the value, its text in the script or None
    for the value's own, lines the script needs before it). Mostly the
    request's struct with fuzzed fields; sometimes a bad pointer or an int."""
    kind = data.draw(st.sampled_from(["struct", "struct", "struct", "bad", "int"]))
    if kind == "bad":
        return data.draw(BAD_POINTERS), None, []
    if kind == "int":
        return data.draw(U64), None, []
    if request == "GUNYAH_CREATE_GUEST_MEM":
        size = data.draw(st.sampled_from([0, 1, 0xFFF, 0x1000, 0x1001, 0x20_0000, 1 << 40]))
        flags = data.draw(st.sampled_from([0, 1, 2, 3, 8, 0xFFFF_FFFF_FFFF_FFFF]))
        return (*new_struct("struct gunyah_create_mem_args *", {"size": size, "flags": flags}), [])
    if request == "GUNYAH_VM_SET_DTB_CONFIG":
        fields = {"guest_phys_addr": data.draw(U64), "size": data.draw(U64)}
        return (*new_struct("struct gunyah_vm_dtb_config *", fields), [])
    if request == "GUNYAH_VM_SET_BOOT_CONTEXT":
        fields = {"reg": data.draw(U32), "value": data.draw(U64)}
        return (*new_struct("struct gunyah_vm_boot_context *", fields), [])
    if request == "GUNYAH_VM_MAP_MEM":
        flags = [0, RWX_LEND, RW_SHARE, RWX_LEND | gh.GUNYAH_MEM_UNMAP, 0x77, 0xFFFF_FFFF]
        fields = {
            "guest_addr": data.draw(U64),
            "flags": data.draw(st.sampled_from(flags)),
            "guest_mem_fd": machine.fd_value(data.draw(st.integers(0, 64) | st.just(0xFFFF_FFFF))),
            "offset": data.draw(U64),
            "size": data.draw(U64),
        }
        return (*new_struct("struct gunyah_map_mem_args *", fields), [])
    if request in ("GUNYAH_VM_ADD_FUNCTION", "GUNYAH_VM_REMOVE_FUNCTION"):
        words = [data.draw(U32) for _ in range(8)]
        inner = gh.ffi.new("uint32_t[8]", words)
        where = data.draw(st.sampled_from(["inner", 0, 8]))
        pointer = Src(int(gh.ffi.cast("uintptr_t", inner)), 'int(gh.ffi.cast("uintptr_t", inner))')
        fields = {
            "type": data.draw(st.sampled_from([0, 1, 2, 3, 0xFFFF_FFFF])),
            "arg_size": data.draw(st.sampled_from([0, 4, 16, 32, 257, 0xFFFF_FFFF])),
            "arg": pointer if where == "inner" else where,
        }
        desc, text = new_struct("struct gunyah_fn_desc *", fields)
        pre = [f'inner = gh.ffi.new("uint32_t[8]", {value_text(words)})']
        return (desc, inner), text, pre
    return data.draw(U64), None, []


class GunyahMachine(IoctlMachine):
    """Every /dev/gunyah ioctl on any fd, beside VMs built right and started."""

    TARGET, DEVICE, MODULE = "gunyah", "/dev/gunyah", "gh"
    MAKES_FDS = ("GUNYAH_CREATE_VM", "GUNYAH_CREATE_GUEST_MEM", "GUNYAH_VM_ADD_FUNCTION")

    def __init__(self):
        super().__init__()
        self.vms = []

    @classmethod
    def boot(cls):
        return kernel.boot(dram_size=1 << 30, faults=cls.FAULTS)

    def uapi(self):
        return gh

    @rule()
    def create_vm(self):
        self.do_ioctl(self.device(), "GUNYAH_CREATE_VM", 0)

    @rule(size=st.sampled_from([0, 0x1000, 0x20_0000]), flags=st.sampled_from([0, 2]))
    def create_guest_mem(self, size, flags):
        arg, text = new_struct("struct gunyah_create_mem_args *", {"size": size, "flags": flags})
        self.do_ioctl(self.device(), "GUNYAH_CREATE_GUEST_MEM", arg, text)

    @precondition(lambda self: len(self.vms) < MAX_VMS)
    @rule()
    def a_vm_built_right(self):
        self.build_vm()

    def build_vm(self):
        name = f"vm{len(self.vms)}"
        self.say(f"{name} = vms.gunyah_vm(host)")
        t = gunyah_vm(self.host)
        self.say(f"{value_text([Src(fd, f'fd[{fd}]') for fd in t.fds()])} = {name}.fds()")
        self.vms.append((name, t))
        self.open |= set(t.fds())
        self.bound |= set(t.fds())

    @rule(data=st.data(), request=st.sampled_from(REQUESTS))
    def ioctl(self, data, request):
        fd = data.draw(st.sampled_from(self.fd_candidates()))
        arg, text, pre = struct_arg(request, data, self) if request not in NO_ARG else (0, None, [])
        self.do_ioctl(fd, request, arg[0] if isinstance(arg, tuple) else arg, text, pre)

    @rule(t=st.integers(0, MAX_VMS - 1))
    def start_and_run(self, t):
        if t < len(self.vms):
            _, vm = self.vms[t]
            self.do_ioctl(vm.vm, "GUNYAH_VM_START", 0)
            self.do_ioctl(vm.vcpus[0], "GUNYAH_VCPU_RUN", 0)
