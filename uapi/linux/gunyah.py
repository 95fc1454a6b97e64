"""The v16 Gunyah UAPI, loaded from include/uapi/linux/gunyah.h (uapi/linux/gunyah.h).

Exposes ``ffi`` (every struct, union and enum of the header), every
constant and every ioctl number as module attributes, and ``IOCTLS``
(name -> request number, in header order). The header is the only source;
this module adds the function-like macro the header defines.
"""

from uapi.header import load

HEADER = load(__package__, "gunyah.h")
ffi = HEADER.ffi
IOCTLS = HEADER.ioctls
globals().update(HEADER.constants)
globals().update(HEADER.ioctls)


def GUNYAH_VM_BOOT_CONTEXT_REG(reg: int, idx: int) -> int:
    """The ``reg`` field of struct gunyah_vm_boot_context for a set and index."""
    return (reg & 0xFF) << HEADER.constants["GUNYAH_VM_BOOT_CONTEXT_REG_SHIFT"] | idx & 0xFF
