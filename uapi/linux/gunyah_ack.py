"""The Android Gunyah UAPI (``GH_`` + 'A' ioctls): uapi/linux/gunyah_ack.h.

The generation crosvm and Android Common Kernels speak. Same shape as
uapi.linux.gunyah: ``ffi``, constants and ioctls as attributes, ``IOCTLS``.
Names shared with v16 (the ``GUNYAH_MEM_*`` map flags) carry other values.
"""

from uapi.header import load

HEADER = load(__package__, "gunyah_ack.h")
ffi = HEADER.ffi
IOCTLS = HEADER.ioctls
globals().update(HEADER.constants)
globals().update(HEADER.ioctls)


def GH_VM_BOOT_CONTEXT_REG(reg: int, idx: int) -> int:
    """The ``reg`` field of struct gh_vm_boot_context for a set and index."""
    return (reg & 0xFF) << HEADER.constants["GH_VM_BOOT_CONTEXT_REG_SHIFT"] | idx & 0xFF
