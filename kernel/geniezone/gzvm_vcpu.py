"""GenieZone vCPUs (drivers/virt/geniezone/gzvm_vcpu.c): GZVM_CREATE_VCPU and the vCPU fd.

GZVM_CREATE_VCPU (value: id): EINVAL unless 0 <= id < 8; two zeroed pages
of host RAM become the vCPU's area shared with EL2 (page 0 struct
gzvm_vcpu_run, page 1 struct gzvm_vcpu_hwstate); CREATE_VCPU hypercall
(EL2's errno); the fd is "gzvm-vcpu:<id>". A vCPU fd holds no reference on
the VM: when the VM fd is released the vCPU is destroyed, and every later
ioctl on its fd is ENODEV (the driver would use freed memory here).

vCPU fd ioctls (anything else ENOTTY; mmap ENODEV):

* GZVM_RUN (a pointer to the caller's 264-byte struct gzvm_vcpu_run):
  copied in (EFAULT); padding1 not zero EINVAL; immediate_exit == 1 EINTR
  (nothing copied back). Then RUN hypercalls while no exit needs
  userspace and no signal is pending: MMIO writes an ioeventfd matches,
  guest MEM_RELINQUISH and PTP hypercalls, page faults inside a memslot,
  and IRQ/GZ/IDLE/IPI exits are served in the kernel; everything else
  returns. The run page is copied back (EFAULT). A pending signal (the
  kick of ``Host.pthread_kill``, which also brings the vCPU out of EL2)
  sends INFORM_EXIT and ends in EINTR. A RUN hypercall EL2 refuses ends
  with its errno. Runs of one vCPU are serialised; a signal to a thread
  waiting for another's run is EINTR.
* GZVM_GET_ONE_REG: always EOPNOTSUPP.
* GZVM_SET_ONE_REG: the id's size field must say 1, 2, 4 or 8 bytes
  (EINVAL); the value is read from ``addr`` (EFAULT); EL2 checks the id
  (its errno).
"""

from __future__ import annotations

import errno
import struct
import threading
from dataclasses import dataclass, field

from kernel.arch.arm64.geniezone import vcpu as arch
from kernel.arch.arm64.geniezone.vm import gzvm_arch_inform_exit
from kernel.fs import File, FileOperations
from kernel.geniezone import gzvm_exception, gzvm_ioeventfd, gzvm_main
from kernel.include.linux.gzvm_drv import GZVM_MAX_VCPUS, GZVM_VCPU_MMAP_SIZE
from kernel.mm import PAGE_SIZE
from kernel.uaccess import copy_from_user, copy_to_user
from uapi.linux import gzvm as gz

LOCK_POLL = 0.05  # seconds between looks for a signal while waiting for run_lock
RUN_STRUCT = "struct gzvm_vcpu_run"
RUN_SIZE = gz.ffi.sizeof(RUN_STRUCT)  # 264
# exits the kernel re-enters after at once: host interrupts, EL2's own business
REENTER = {gz.GZVM_EXIT_IRQ, gz.GZVM_EXIT_GZ, gz.GZVM_EXIT_IDLE, gz.GZVM_EXIT_IPI}
# Read in place from the bytes of struct gzvm_vcpu_run, once per GZVM_RUN or exit:
# immediate_exit, padding1[3], and mmio's phys_addr, data[8] (a little-endian
# value), size.
_IMMEDIATE_EXIT = gz.ffi.offsetof(RUN_STRUCT, "immediate_exit")
_PADDING1 = gz.ffi.offsetof(RUN_STRUCT, "padding1")
_MMIO_PHYS_ADDR = gz.ffi.offsetof(RUN_STRUCT, "mmio", "phys_addr")
_MMIO_IS_WRITE = gz.ffi.offsetof(RUN_STRUCT, "mmio", "is_write")
_MMIO_FIELDS = struct.Struct("<QQQ")
assert gz.ffi.offsetof(RUN_STRUCT, "mmio", "size") == _MMIO_PHYS_ADDR + 16
TO_USERSPACE = {
    gz.GZVM_EXIT_DEBUG,
    gz.GZVM_EXIT_FAIL_ENTRY,
    gz.GZVM_EXIT_INTERNAL_ERROR,
    gz.GZVM_EXIT_SYSTEM_EVENT,
    gz.GZVM_EXIT_SHUTDOWN,
}


@dataclass(eq=False)
class GzvmVcpu:
    """struct gzvm_vcpu. Each field's comment names the lock that guards it."""

    gzvm: object  # the VM, set at creation
    vcpuid: int
    area: object  # KernelPages: run page + hwstate page; freed under run_lock
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    runner: int | None = None  # run_lock: the thread inside GZVM_RUN
    destroyed: bool = False  # set once, then run_lock is taken

    def run(self):
        """A copy of the run page (EL2 writes the exit there)."""
        return gz.ffi.from_buffer(f"{RUN_STRUCT} *", bytearray(self.area.map[:RUN_SIZE]))

    def store(self, run) -> None:
        self.area.map[:RUN_SIZE] = bytes(gz.ffi.buffer(run))

    @property
    def vtimer_offset(self) -> int:
        """struct gzvm_vcpu_hwstate.vtimer_offset (@136 of page 1)."""
        return struct.unpack_from("<Q", self.area.map, PAGE_SIZE + 136)[0]


def gzvm_vm_ioctl_create_vcpu(vm, cpuid) -> int:
    if not isinstance(cpuid, int) or not 0 <= cpuid < GZVM_MAX_VCPUS:
        raise gzvm_main.errno_error(errno.EINVAL, "vcpu id")
    area = gzvm_main.KernelPages.alloc(vm.drv, GZVM_VCPU_MMAP_SIZE * PAGE_SIZE)
    try:
        arch.gzvm_arch_create_vcpu(vm.hvc, vm.vm_id, cpuid, area.pa)
    except OSError:
        area.free()
        raise
    vcpu = GzvmVcpu(vm, cpuid, area)
    with vm.lock:
        vm.vcpus[cpuid] = vcpu
    return vm.host.fdtable.install(File(VCPU_FOPS, vcpu, f"gzvm-vcpu:{cpuid}"))


def gzvm_destroy_vcpu(vcpu: GzvmVcpu) -> None:
    """Kick a GZVM_RUN in progress out, then DESTROY_VCPU (its result ignored)."""
    vcpu.destroyed = True
    runner = vcpu.runner
    if runner is not None:
        vcpu.gzvm.drv.firmware.send_ipi(runner)
    with vcpu.run_lock:
        arch.gzvm_arch_destroy_vcpu(vcpu.gzvm.hvc, vcpu.gzvm.vm_id, vcpu.vcpuid)


def gzvm_free_vcpu_area(vcpu: GzvmVcpu) -> None:
    """Wipe and free the two shared pages, once EL2 has destroyed the VM."""
    with vcpu.run_lock:
        vcpu.area.free()


def _gone() -> OSError:
    return gzvm_main.errno_error(errno.ENODEV, "the vCPU's VM is destroyed")


def _lock_interruptible(vcpu: GzvmVcpu) -> None:
    """Take run_lock (another thread runs the vCPU); a signal meanwhile is EINTR."""
    if vcpu.run_lock.acquire(blocking=False):
        return
    signals = vcpu.gzvm.host.signals
    while not vcpu.run_lock.acquire(timeout=LOCK_POLL):
        if signals.pending():
            raise signals.deliver()


def gzvm_vcpu_run(vcpu: GzvmVcpu, arg) -> int:
    host = vcpu.gzvm.host
    _lock_interruptible(vcpu)
    try:
        if vcpu.destroyed:
            raise _gone()
        data = copy_from_user(arg, RUN_SIZE)
        if any(data[_PADDING1 : _PADDING1 + 3]):
            raise gzvm_main.errno_error(errno.EINVAL, "padding1")
        if data[_IMMEDIATE_EXIT] == 1:
            raise gzvm_main.errno_error(errno.EINTR, "immediate_exit")
        vcpu.area.map[:RUN_SIZE] = data
        vcpu.runner = threading.get_ident()
        try:
            need_userspace = False
            while not need_userspace and not host.signals.pending():
                if vcpu.destroyed:
                    raise _gone()
                exit_reason = arch.gzvm_arch_vcpu_run(vcpu.gzvm.hvc, vcpu.gzvm.vm_id, vcpu.vcpuid)
                need_userspace = gzvm_vcpu_handle_exit(vcpu, exit_reason)
        finally:
            vcpu.runner = None
        copy_to_user(arg, vcpu.area.map[:RUN_SIZE])
        if host.signals.pending():
            gzvm_arch_inform_exit(vcpu.gzvm.hvc, vcpu.gzvm.vm_id)
            raise host.signals.deliver()
        return 0
    finally:
        vcpu.run_lock.release()


def gzvm_vcpu_handle_exit(vcpu: GzvmVcpu, exit_reason: int) -> bool:
    """Serve one exit in the kernel if it can: True if it needs userspace."""
    if exit_reason == gz.GZVM_EXIT_MMIO:
        return not gzvm_vcpu_handle_mmio(vcpu)
    if exit_reason == gz.GZVM_EXIT_HYPERCALL:
        return not gzvm_exception.gzvm_handle_guest_hvc(vcpu)
    if exit_reason == gz.GZVM_EXIT_EXCEPTION:
        return not gzvm_exception.gzvm_handle_guest_exception(vcpu)
    if exit_reason in REENTER:
        return False
    if exit_reason not in TO_USERSPACE:
        vcpu.gzvm.host.printk(f"gzvm: vcpu unknown exit {exit_reason:#x}")
    return True


def gzvm_vcpu_handle_mmio(vcpu: GzvmVcpu) -> bool:
    """A guest write an ioeventfd matches is served here (True). The fields are
    read where they lie in the run page: a copy of the page per exit costs more."""
    page = vcpu.area.map
    if not page[_MMIO_IS_WRITE]:
        return False
    phys_addr, data, size = _MMIO_FIELDS.unpack_from(page, _MMIO_PHYS_ADDR)
    if size > 8:
        return False
    value = data & ((1 << size * 8) - 1)
    return gzvm_ioeventfd.gzvm_ioevent_write(vcpu.gzvm, phys_addr, size, value)


def gzvm_vcpu_ioctl_set_one_reg(vcpu: GzvmVcpu, arg) -> int:
    reg = gz.ffi.from_buffer(
        "struct gzvm_one_reg *",
        bytearray(copy_from_user(arg, gz.ffi.sizeof("struct gzvm_one_reg"))),
    )
    size = 1 << ((reg.id & gz.GZVM_REG_SIZE_MASK) >> gz.GZVM_REG_SIZE_SHIFT)
    if size > 8:
        raise gzvm_main.errno_error(errno.EINVAL, f"register size {size}")
    value = int.from_bytes(copy_from_user(reg.addr, size), "little")
    arch.gzvm_arch_vcpu_update_one_reg(vcpu.gzvm.hvc, vcpu.gzvm.vm_id, vcpu.vcpuid, reg.id, value)
    return 0


class VcpuFops(FileOperations):
    def ioctl(self, file: File, cmd: int, arg) -> int:
        vcpu: GzvmVcpu = file.private
        if cmd == gz.GZVM_RUN:
            return gzvm_vcpu_run(vcpu, arg)
        if cmd == gz.GZVM_GET_ONE_REG:
            raise gzvm_main.errno_error(errno.EOPNOTSUPP, "GZVM_GET_ONE_REG")
        if cmd == gz.GZVM_SET_ONE_REG:
            with vcpu.run_lock:
                if vcpu.destroyed:
                    raise _gone()
                return gzvm_vcpu_ioctl_set_one_reg(vcpu, arg)
        return super().ioctl(file, cmd, arg)


VCPU_FOPS = VcpuFops()
