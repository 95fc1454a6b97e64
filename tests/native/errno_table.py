"""The errno table of spec section 2.12 that userspace reaches by ioctl, mmap, fallocate, close.

One script in driver.c's language, each line with the line it must print
(an errno by name); tests/vmm/test_native.py runs it natively under
``gunyah-sim exec`` and on a Python Host, and both must print :data:`EXPECTED`.
Not here: EINTR (the signal tests), EAGAIN and ERESTARTSYS (never reach
userspace), E2BIG and the RM's refusals (tests/kernel/gunyah/test_errno_summary.py).
"""

from uapi.linux import gunyah as gh

BAD = 8  # a pointer never mapped in a process
LEND = gh.GUNYAH_MEM_FORCE_LEND | gh.GUNYAH_MEM_ALLOW_RWX
VCPU_0 = f"s:4={gh.GUNYAH_FN_VCPU},4=4,8=^|4=0"
VCPU_5 = f"s:4={gh.GUNYAH_FN_VCPU},4=4,8=^|4=5"
VCPU_BIG = f"s:4={gh.GUNYAH_FN_VCPU},4=257,8=^|4=0"
UNMAP = LEND | gh.GUNYAH_MEM_UNMAP


def _map(ipa, fd, size, flags=LEND, offset=0):
    return f"s:8={ipa:#x},4={flags:#x},4=${fd},8={offset:#x},8={size:#x}"


def _io(fd, name, arg, new=""):
    return f"ioctl {fd} {getattr(gh, name):#x} {arg} {new}".rstrip()


ROWS = [
    ("open dev", "open: 0"),
    (_io("dev", "GUNYAH_CREATE_VM", 0, "vm"), "ioctl: fd"),
    (_io("vm", "GUNYAH_CREATE_VM", 0), "ioctl: ENOTTY"),
    (_io("dev", "GUNYAH_CREATE_VM", 1), "ioctl: EINVAL"),
    (_io("dev", "GUNYAH_VM_START", 0), "ioctl: ENOTTY"),
    (f"ioctl dev 0x1234 {BAD}", "ioctl: ENOTTY"),
    (_io("dev", "GUNYAH_CREATE_GUEST_MEM", BAD), "ioctl: EFAULT"),
    (_io("vm", "GUNYAH_VM_SET_DTB_CONFIG", BAD), "ioctl: EFAULT"),
    (_io("vm", "GUNYAH_VM_SET_BOOT_CONTEXT", BAD), "ioctl: EFAULT"),
    (_io("vm", "GUNYAH_VM_MAP_MEM", BAD), "ioctl: EFAULT"),
    (_io("vm", "GUNYAH_VM_ADD_FUNCTION", BAD), "ioctl: EFAULT"),
    (_io("vm", "GUNYAH_VM_REMOVE_FUNCTION", BAD), "ioctl: EFAULT"),
    (_io("vm", "GUNYAH_VM_ADD_FUNCTION", f"s:4={gh.GUNYAH_FN_VCPU},4=4,8={BAD}"), "ioctl: EFAULT"),
    (_io("dev", "GUNYAH_CREATE_GUEST_MEM", "s:8=0,8=0x1800"), "ioctl: EINVAL"),
    (_io("dev", "GUNYAH_CREATE_GUEST_MEM", "s:8=0,8=0x2000", "gmem"), "ioctl: fd"),
    (_io("vm", "GUNYAH_VM_SET_BOOT_CONTEXT", "s:4=0x0020,4=0,8=0"), "ioctl: EINVAL"),
    (_io("vm", "GUNYAH_VM_ADD_FUNCTION", VCPU_0, "vcpu"), "ioctl: fd"),
    (_io("vm", "GUNYAH_VM_ADD_FUNCTION", VCPU_0), "ioctl: EEXIST"),
    (_io("vm", "GUNYAH_VM_ADD_FUNCTION", VCPU_BIG), "ioctl: EINVAL"),
    (_io("vm", "GUNYAH_VM_ADD_FUNCTION", "s:4=99,4=0,8=0"), "ioctl: ENOENT"),
    (_io("vm", "GUNYAH_VM_REMOVE_FUNCTION", VCPU_5), "ioctl: ENOENT"),
    (_io("vcpu", "GUNYAH_VCPU_RUN", 0), "ioctl: ENODEV"),
    (_io("vcpu", "GUNYAH_VCPU_MMAP_SIZE", 0), "ioctl: 4096"),
    (_io("vm", "GUNYAH_VM_MAP_MEM", _map(0x8000_0000, "gmem", 0x1000)), "ioctl: 0"),
    (
        _io("vm", "GUNYAH_VM_MAP_MEM", _map(0x8000_0000, "gmem", 0x1000, offset=4096)),
        "ioctl: EEXIST",
    ),
    (_io("vm", "GUNYAH_VM_MAP_MEM", _map(0x9000_0000, "gmem", 0x1000, UNMAP)), "ioctl: ENOENT"),
    (_io("vm", "GUNYAH_VM_MAP_MEM", _map(0xA000_0000, "dev", 0x1000)), "ioctl: EINVAL"),
    (_io("vm", "GUNYAH_VM_MAP_MEM", _map(0xA000_0000, "vcpu", 0x1000)), "ioctl: EINVAL"),
    (_io("vm", "GUNYAH_VM_START", 0), "ioctl: EINVAL"),
    (_io("vm", "GUNYAH_VM_SET_DTB_CONFIG", "s:8=0xFFFFFFFFFFFFF000,8=0x2000"), "ioctl: EOVERFLOW"),
    (_io("vm", "GUNYAH_VM_SET_DTB_CONFIG", "s:8=0x70000000,8=0x1000"), "ioctl: 0"),
    (_io("vm", "GUNYAH_VM_START", 0), "ioctl: ENODEV"),  # a START that failed ended the VM
    (_io("dev", "GUNYAH_CREATE_GUEST_MEM", "s:8=0,8=0x400000000"), "ioctl: ENOMEM"),
    ("mmap vcpu 0x2000 0 run", "mmap: EINVAL"),
    ("mmap gmem 0x1000 0x2000 ram", "mmap: EINVAL"),
    ("mmap dev 0x1000 0 devmap", "mmap: ENODEV"),
    ("mmap vm 0x1000 0 vmmap", "mmap: ENODEV"),
    ("fallocate gmem 0 0 0x1000", "fallocate: EOPNOTSUPP"),  # no KEEP_SIZE
    ("fallocate gmem 0x8 0 0x1000", "fallocate: EOPNOTSUPP"),  # COLLAPSE_RANGE
    ("fallocate gmem 0x3 0x1000 0x1800", "fallocate: EINVAL"),  # not page aligned
    ("fallocate gmem 0x3 0 0x1000", "fallocate: 0"),  # punch a hole
    ("fallocate vm 0x3 0 0x1000", "fallocate: ENODEV"),
    ("dup gmem gmem2", "dup: 0"),
    ("close gmem2", "close: 0"),
    (_io("gmem2", "GUNYAH_VCPU_RUN", 0), "ioctl: EBADF"),
    ("close gmem2", "close: EBADF"),
    ("eventfd efd", "eventfd: 0"),
    (_io("efd", "GUNYAH_VCPU_RUN", 0), "ioctl: ENOTTY"),
    ("close vcpu", "close: 0"),
    ("close gmem", "close: 0"),
    ("close vm", "close: 0"),
    ("close dev", "close: 0"),
]

SCRIPT = "\n".join(line for line, _ in ROWS) + "\n"
EXPECTED = [expected for _, expected in ROWS]
