"""uapi/decode.py: ioctl arguments by field, flags and enums by name."""

import errno

from uapi import decode
from uapi.linux import gunyah as gh
from uapi.linux import gzvm as gz


def reader(*structs):
    """A copy_from_user over cffi objects: address -> their bytes."""
    memory = {int(gh.ffi.cast("uintptr_t", s)): bytes(gh.ffi.buffer(s)) for s in structs}

    def read(address, size):
        address = (
            int(gh.ffi.cast("uintptr_t", address)) if not isinstance(address, int) else address
        )
        if address not in memory:
            raise OSError(errno.EFAULT, "bad address")
        return memory[address][:size]

    return read


def test_map_mem_shows_the_access_kind_and_rights_by_name():
    args = gh.ffi.new(
        "struct gunyah_map_mem_args *",
        {
            "guest_addr": 0x8000_0000,
            "flags": gh.GUNYAH_MEM_FORCE_LEND | gh.GUNYAH_MEM_ALLOW_RWX,
            "guest_mem_fd": 5,
            "size": 0x1000,
        },
    )
    assert decode.describe(gh.GUNYAH_VM_MAP_MEM, args, reader(args)) == (
        "GUNYAH_VM_MAP_MEM{guest_addr=0x80000000, flags=LEND|RWX, guest_mem_fd=5, "
        "offset=0x0, size=0x1000}"
    )
    args.flags = (
        gh.GUNYAH_MEM_FORCE_SHARE | gh.GUNYAH_MEM_ALLOW_READ | gh.GUNYAH_MEM_UNMAP | 1 << 20
    )
    assert "flags=SHARE|R|UNMAP|0x100000," in decode.describe(
        gh.GUNYAH_VM_MAP_MEM, args, reader(args)
    )


def test_a_function_descriptor_is_followed_to_its_argument():
    irqfd = gh.ffi.new(
        "struct gunyah_fn_irqfd_arg *", {"fd": 7, "label": 3, "flags": gh.GUNYAH_IRQFD_FLAGS_LEVEL}
    )
    desc = gh.ffi.new(
        "struct gunyah_fn_desc *",
        {"type": gh.GUNYAH_FN_IRQFD, "arg_size": 16, "arg": int(gh.ffi.cast("uintptr_t", irqfd))},
    )
    assert decode.describe(gh.GUNYAH_VM_ADD_FUNCTION, desc, reader(desc, irqfd)) == (
        "GUNYAH_VM_ADD_FUNCTION{type=IRQFD, arg_size=0x10, "
        "arg={fd=7, label=3, flags=LEVEL, padding=0}}"
    )
    assert "arg={?}}" in decode.describe(gh.GUNYAH_VM_ADD_FUNCTION, desc, reader(desc))


def test_geniezone_structs_and_unknown_bits():
    region = gz.ffi.new(
        "struct gzvm_ioeventfd *",
        {"addr": 0xA000050, "len": 4, "fd": 9, "flags": gz.GZVM_IOEVENTFD_FLAG_DATAMATCH | 1 << 9},
    )
    assert decode.describe(gz.GZVM_IOEVENTFD, region, reader(region)) == (
        "GZVM_IOEVENTFD{datamatch=0x0, addr=0xa000050, len=4, fd=9, flags=DATAMATCH|0x200}"
    )


def test_what_is_not_a_struct_of_a_known_header_is_none():
    assert decode.describe(gh.GUNYAH_CREATE_VM, 0, reader()) is None
    assert decode.describe(0x1234, 0, reader()) is None
    assert decode.describe("GUNYAH_VM_MAP_MEM", 0, reader()) is None
    assert decode.describe(gh.GUNYAH_VM_MAP_MEM, 0x10, reader()) == "GUNYAH_VM_MAP_MEM{?}"
    assert decode.ioctl_name(gz.GZVM_RUN) == "GZVM_RUN" and decode.ioctl_name(1) is None
