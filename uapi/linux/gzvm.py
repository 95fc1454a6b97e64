"""The GenieZone UAPI (/dev/gzvm): include/uapi/linux/gzvm.h (uapi/linux/gzvm.h).

Same shape as uapi.linux.gunyah: ``ffi``, every constant and ioctl number as
module attributes, and ``IOCTLS``. Note that GZVM_RUN and
GZVM_CHECK_EXTENSION are ``_IO`` ioctls that nevertheless take a pointer.
"""

from uapi.header import load

HEADER = load(__package__, "gzvm.h")
ffi = HEADER.ffi
IOCTLS = HEADER.ioctls
globals().update(HEADER.constants)
globals().update(HEADER.ioctls)
