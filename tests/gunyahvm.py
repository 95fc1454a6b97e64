"""A VM built through /dev/gunyah the way a VMM does it, for tests that need one.

:func:`make_vm` assembles guest code, places it and a VM config DTB in a
lent guest_memfd (plus an optional shared page), and goes as far as
ADD_FUNCTION for each vCPU; the test starts the VM itself. Only the ioctl
ABI is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.aarch64 import assemble
from tests.kernel.gunyah.rmhelper import vm_config_dtb
from uapi.linux import gunyah as gh

RAM_IPA, SHARED_IPA, MMIO = 0x8000_0000, 0x9000_0000, 0x1000_0000
RAM_SIZE, DTB_OFFSET, DTB_SIZE = 0x20_0000, 0x10000, 0x2000
RWX_LEND = gh.GUNYAH_MEM_FORCE_LEND | gh.GUNYAH_MEM_ALLOW_RWX
RW_SHARE = gh.GUNYAH_MEM_FORCE_SHARE | gh.GUNYAH_MEM_ALLOW_READ | gh.GUNYAH_MEM_ALLOW_WRITE


def errno_of(fn, *args, **kwargs) -> int:
    """The errno ``fn`` fails with; the test fails if it succeeds."""
    with pytest.raises(OSError) as e:
        fn(*args, **kwargs)
    return e.value.errno


def outcome(fn, *args) -> int:
    """0 if ``fn`` returns, else its errno (for calls made in another thread)."""
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def guest_mem(host, dev, size, flags=0):
    args = gh.ffi.new("struct gunyah_create_mem_args *", {"size": size, "flags": flags})
    return host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, args)


def map_mem(host, vm, gmem, ipa, size, flags, offset=0):
    args = gh.ffi.new(
        "struct gunyah_map_mem_args *",
        {"guest_addr": ipa, "flags": flags, "guest_mem_fd": gmem, "size": size, "offset": offset},
    )
    return host.ioctl(vm, gh.GUNYAH_VM_MAP_MEM, args)


def set_dtb(host, vm, gpa, size):
    config = gh.ffi.new("struct gunyah_vm_dtb_config *", {"guest_phys_addr": gpa, "size": size})
    return host.ioctl(vm, gh.GUNYAH_VM_SET_DTB_CONFIG, config)


def boot_reg(host, vm, reg_set, index, value):
    ctx = gh.ffi.new(
        "struct gunyah_vm_boot_context *",
        {"reg": gh.GUNYAH_VM_BOOT_CONTEXT_REG(reg_set, index), "value": value},
    )
    return host.ioctl(vm, gh.GUNYAH_VM_SET_BOOT_CONTEXT, ctx)


def fn_desc(fn_type, arg_struct=None, arg_size=None):
    """A gunyah_fn_desc pointing at ``arg_struct`` (kept alive by the returned tuple)."""
    if arg_size is None:
        arg_size = gh.ffi.sizeof(arg_struct[0]) if arg_struct is not None else 0
    addr = int(gh.ffi.cast("uintptr_t", arg_struct)) if arg_struct is not None else 0
    desc = gh.ffi.new(
        "struct gunyah_fn_desc *", {"type": fn_type, "arg_size": arg_size, "arg": addr}
    )
    return desc, arg_struct


def add_vcpu(host, vm, vcpu_id):
    arg = gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": vcpu_id})
    desc, _keep = fn_desc(gh.GUNYAH_FN_VCPU, arg)
    return host.ioctl(vm, gh.GUNYAH_VM_ADD_FUNCTION, desc)


@dataclass
class TestVm:
    host: object
    dev: int
    vm: int
    ram: int
    shared: int
    vcpus: list[int]
    pages: list = field(default_factory=list)

    def run_page(self, index=0):
        page = self.host.mmap(self.vcpus[index], 4096)
        self.pages.append(page)
        return gh.ffi.from_buffer("struct gunyah_vcpu_run *", page)

    def start(self):
        return self.host.ioctl(self.vm, gh.GUNYAH_VM_START, 0)

    def run(self, index=0):
        """VCPU_RUN once; the run page says what happened."""
        return self.host.ioctl(self.vcpus[index], gh.GUNYAH_VCPU_RUN, 0)

    def close(self):
        for page in self.pages:
            self.host.munmap(page)
        for fd in (self.vm, self.ram, self.shared, *self.vcpus, self.dev):
            self.host.close(fd)


def make_vm(
    host,
    source,
    vcpus=1,
    doorbells=(),
    shared_word=None,
    dtb=None,
    ram_size=RAM_SIZE,
    ram_flags=0,
    ram_access=RWX_LEND,
    dtb_size=DTB_SIZE,
    shared_access=RW_SHARE,
) -> TestVm:
    """A VM with ``source`` (assembly, or code bytes) at RAM_IPA (lent, RWX), a
    shared page at SHARED_IPA (holding ``shared_word`` if given), the DTB at
    RAM_IPA+DTB_OFFSET and ``vcpus`` vCPU functions; not started."""
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    ram, shared = guest_mem(host, dev, ram_size, ram_flags), guest_mem(host, dev, 0x1000)
    blob = dtb if dtb is not None else vm_config_dtb(vcpus, doorbells)
    image = host.mmap(ram, DTB_OFFSET + max(dtb_size, len(blob)))
    code = source if isinstance(source, bytes) else assemble(source)
    image[0 : len(code)] = code
    image[DTB_OFFSET : DTB_OFFSET + len(blob)] = blob
    host.munmap(image)
    if shared_word is not None:
        page = host.mmap(shared, 0x1000)
        page[0:8] = shared_word.to_bytes(8, "little")
        host.munmap(page)
    map_mem(host, vm, ram, RAM_IPA, ram_size, ram_access)
    map_mem(host, vm, shared, SHARED_IPA, 0x1000, shared_access)
    set_dtb(host, vm, RAM_IPA + DTB_OFFSET, dtb_size)
    boot_reg(host, vm, gh.REG_SET_PC, 0, RAM_IPA)
    fds = [add_vcpu(host, vm, i) for i in range(vcpus)]
    return TestVm(host, dev, vm, ram, shared, fds)
