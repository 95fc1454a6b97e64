"""The GenieZone driver's core (drivers/virt/geniezone/gzvm_main.c): probe and /dev/gzvm.

``GzvmDriver.probe`` is the platform probe: the driver binds to the boot
devicetree's node compatible with "mediatek,geniezone" (none: ENODEV),
then makes the PROBE hypercall with its version 16.0.0 (any failure:
ENODEV, "Not found available conduit"), which leaves ``struct gzvm_driver`` behind: the hypercall
conduit, the hypervisor's version, the host's RAM allocator and the one
device it registers, /dev/gzvm.

/dev/gzvm takes GZVM_CREATE_VM (the value is the vm_type, passed to EL2
unchecked) and GZVM_CHECK_EXTENSION (also on VM fds): the argument points
to a u64 capability and the answer is written back through it:
PROTECTED_VM answers 1 and VM_GPA_SIZE 48 without asking EL2; any other
capability is EOPNOTSUPP; a pointer that cannot be read or written is
EFAULT, and 0 on /dev/gzvm is EINVAL. Any other request is ENOTTY; no fd
of the driver can be mmap'ed (ENODEV).

Pages the driver shares with EL2 (vCPU areas, the memory registration
buffer, device structs, the PFN buffer) are :class:`KernelPages`: zeroed
host RAM with a physical address and the kernel's mapping of it.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass, field

import fdt

from kernel.arch.arm64.geniezone.hvc import GzvmHypercall
from kernel.arch.arm64.geniezone.vm import gzvm_arch_probe
from kernel.fs import File, FileOperations
from kernel.geniezone import gzvm_vm
from kernel.include.linux.gzvm_drv import (
    CONFIG_ARM64_PA_BITS,
    GZVM_DRV_MAJOR_VERSION,
    GZVM_DRV_MINOR_VERSION,
    GZVM_DRV_SUB_VERSION,
)
from kernel.mm import PageAllocator
from kernel.mmap import user_address
from kernel.uaccess import KernelMemory, copy_from_user, copy_to_user
from uapi.linux import gzvm as gz

GZVM_COMPATIBLE = "mediatek,geniezone"


def errno_error(err: int, why: str) -> OSError:
    return OSError(err, f"{os.strerror(err)}: {why}")


@dataclass(eq=False)
class KernelPages:
    """Zeroed, contiguous host RAM owned by the driver: its PA and the kernel's mapping."""

    drv: GzvmDriver
    pa: int
    size: int
    map: object
    kernel_memory: KernelMemory | None = None  # no user pointer reaches the mapping

    def __post_init__(self):
        self.kernel_memory = KernelMemory(user_address(self.map), self.size)

    @classmethod
    def alloc(cls, drv: GzvmDriver, size: int) -> KernelPages:
        """ENOMEM when no RAM is left."""
        pa = drv.mm.alloc(size)
        err, mapping = drv.firmware.map_ram(pa, size)
        if err:
            drv.mm.free(pa, size)
            raise errno_error(errno.ENOMEM, f"kernel mapping: hypervisor error {err}")
        return cls(drv, pa, size, mapping)

    def free(self) -> None:
        """Unmap, then give the pages back (the allocator wipes them)."""
        self.kernel_memory = None
        self.map.close()
        self.drv.firmware.unmap_ram(self.map)
        self.drv.mm.free(self.pa, self.size)


@dataclass(eq=False)
class GzvmDriver:
    """struct gzvm_driver: what probe leaves behind."""

    firmware: object
    hvc: GzvmHypercall
    hyp_version: tuple[int, int, int]
    mm: PageAllocator
    vm_list: list = field(default_factory=list)  # the live VMs (struct gzvm), any thread
    name = "gzvm"

    @classmethod
    def probe(cls, firmware) -> GzvmDriver:
        """ENODEV without the DT node, or if EL2 does not answer PROBE."""
        if not of_find_compatible_node(firmware.host_dt, GZVM_COMPATIBLE):
            raise errno_error(errno.ENODEV, f"no {GZVM_COMPATIBLE} node")
        hvc = GzvmHypercall(firmware)
        version = (GZVM_DRV_MAJOR_VERSION, GZVM_DRV_MINOR_VERSION, GZVM_DRV_SUB_VERSION)
        try:
            hyp_version = gzvm_arch_probe(hvc, version)
        except OSError:
            raise errno_error(errno.ENODEV, "Not found available conduit") from None
        return cls(
            firmware, hvc, hyp_version, PageAllocator(*firmware.memory, firmware.discard_ram)
        )

    @property
    def devices(self) -> dict:
        return {"/dev/gzvm": GZVM_DEV_FOPS}

    def shutdown(self) -> None:
        self.firmware.shutdown()


def of_find_compatible_node(dtb: bytes, compatible: str) -> bool:
    """Whether a node of the devicetree blob lists ``compatible``."""
    try:
        tree = fdt.parse_dtb(bytes(dtb))
    except Exception:  # the library raises bare Exceptions: an unreadable DT has no node
        return False
    for _path, _nodes, props in tree.walk():
        prop = next((p for p in props if p.name == "compatible"), None)
        if prop is not None and compatible in list(prop):
            return True
    return False


def gzvm_dev_ioctl_check_extension(arg) -> int:
    """CHECK_EXTENSION's answer written through ``arg`` (a pointer to a u64 cap)."""
    (cap,) = struct.unpack("<Q", copy_from_user(arg, 8))
    answers = {gz.GZVM_CAP_PROTECTED_VM: 1, gz.GZVM_CAP_VM_GPA_SIZE: CONFIG_ARM64_PA_BITS}
    if cap not in answers:
        raise errno_error(errno.EOPNOTSUPP, f"capability {cap:#x}")
    copy_to_user(arg, struct.pack("<Q", answers[cap]))
    return 0


class GzvmDevFops(FileOperations):
    """/dev/gzvm (its ``private`` is the Host)."""

    def ioctl(self, file: File, cmd: int, arg) -> int:
        host = file.private
        if cmd == gz.GZVM_CREATE_VM:
            return gzvm_vm.gzvm_dev_ioctl_create_vm(host, arg)
        if cmd == gz.GZVM_CHECK_EXTENSION:
            if not arg:
                raise errno_error(errno.EINVAL, "GZVM_CHECK_EXTENSION needs a pointer")
            return gzvm_dev_ioctl_check_extension(arg)
        return super().ioctl(file, cmd, arg)


GZVM_DEV_FOPS = GzvmDevFops()
