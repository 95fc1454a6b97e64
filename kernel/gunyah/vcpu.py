"""vCPUs (drivers/virt/gunyah/gunyah_vcpu.c): the GUNYAH_FN_VCPU function and VCPU_RUN.

Adding a vCPU function (arg: struct gunyah_fn_vcpu_arg, exactly 4 bytes,
else EINVAL) takes a ticket for the VCPU resource with label = id (EEXIST
if taken), a reference on the VM, and returns the fd ``gh-vcpu:<id>``. Its
mmap is one zeroed page holding struct gunyah_vcpu_run; VCPU_MMAP_SIZE is
PAGE_SIZE.

VCPU_RUN: ENODEV if the function is gone or the VM has no resource for it
yet (not started). A vCPU of a VM that is down makes a STATUS exit, once,
and then returns 0 at once (SYSTEM_DOWN). After an MMIO exit the run page's
resume_action says how to finish the access (HANDLED copies ``mmio.data``
into the guest register, FAULT injects an abort, RETRY runs it again on v16
only; anything else is EINVAL, the exit still pending). Then ``vcpu_run`` is
called until an exit for userspace: VMMIO accesses are first tried as demand
paging of a binding (no exit), then exit as MMIO; a page-fault state that
cannot be served exits as PAGE_FAULT with the negative errno (resume_action
preset to FAULT), and the next VCPU_RUN does not read
``page_fault.resume_action``: the access runs again and faults again unless
memory was added; EXPECTS_WAKEUP waits for the vCPU's wakeup interrupt;
``immediate_exit`` set is EINTR.

A signal to the thread (``Host.pthread_kill``) ends VCPU_RUN with EINTR
wherever it is: waiting for run_lock or a wakeup, or inside ``vcpu_run``
(the IPI makes the hypervisor return); it wins over an exit just filled in
(the driver's -ERESTARTSYS), which the next VCPU_RUN then resumes.

The Android profiles page in from user bindings (``GunyahVm.demand_page``).
android14-6.1's run page has no resume_action: after an MMIO exit the next
VCPU_RUN completes the access (a read with ``mmio.data``) and byte 37 is
never read or written; there is no PAGE_FAULT exit (a page-fault state is
run on, as any state that driver does not know); an unknown vCPU ioctl is
EINVAL there, not ENOTTY.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import struct
import threading
from dataclasses import dataclass, field

from kernel.arch.arm64.platform import FileMapping
from kernel.fs import File, FileOperations
from kernel.gunyah.rsc_mgr_h import GunyahRmVmStatus as VmStatus
from kernel.include.linux.gunyah import GunyahError, GunyahResourceType, gunyah_error_remap
from kernel.include.linux.gunyah import GunyahVcpuResumeAction as Resume
from kernel.include.linux.gunyah import GunyahVcpuState as State
from kernel.mm import PAGE_SIZE
from kernel.mmap import os_mmap, user_address
from kernel.uaccess import KernelMemory
from uapi.linux import gunyah as gh

LOCK_POLL = 0.05  # seconds between looks for a signal while waiting for run_lock
RUN_ON = (0, 0, 0)  # the resume data of a vcpu_run that simply goes on
# Demand paging answering "already provided" this many times in a row, with the
# guest faulting on: the hypervisor and the driver disagree about a page.
STUCK_LIMIT = 1000

# The driver's own state of a vCPU between two VCPU_RUNs.
UNKNOWN, READY, MMIO_READ, MMIO_WRITE, SYSTEM_DOWN = (
    "unknown",
    "ready",
    "mmio_read",
    "mmio_write",
    "down",
)


def _run_page() -> tuple[int, mmap.mmap]:
    """One zeroed page in a memfd: the kernel's mapping, and the file users map."""
    fd = os.memfd_create("gh-vcpu-run", os.MFD_CLOEXEC)
    os.ftruncate(fd, PAGE_SIZE)
    return fd, mmap.mmap(fd, PAGE_SIZE)


@dataclass
class GunyahVcpu:
    vm: object
    id: int
    page: tuple[int, mmap.mmap] = field(default_factory=_run_page)
    resource: object = None  # the VCPU resource the ticket got at START
    state: str = UNKNOWN
    mmio_addr: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    runner: int | None = None  # the thread inside VCPU_RUN
    eagain_run: int = 0  # demand pagings in a row that found the page provided
    unbound: bool = False
    kernel_memory: KernelMemory | None = None  # the kernel's mapping is no user memory
    _run: object = None  # the run page as struct gunyah_vcpu_run, made once

    def __post_init__(self):
        self.kernel_memory = KernelMemory(user_address(self.page[1]), PAGE_SIZE)
        self._run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", self.page[1])

    @property
    def run(self):
        """The run page as ``struct gunyah_vcpu_run *``: one view, made with the
        page and released by :meth:`free_run_page` (a view per use cost several
        microseconds an exit)."""
        if self._run is None:
            self._run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", self.page[1])
        return self._run

    def free_run_page(self) -> None:
        fd, mapping = self.page
        if self._run is not None:  # the view holds the mapping's buffer
            gh.ffi.release(self._run)
            self._run = None
        with contextlib.suppress(BufferError):  # a caller's view may still be alive
            mapping.close()
        if mapping.closed:
            self.kernel_memory = None
        os.close(fd)

    @property
    def capid(self) -> int | None:
        return self.resource.cap_id if self.resource is not None else None

    # resource ticket
    def populate(self, resource) -> bool:
        if self.resource is not None:
            return False
        self.resource = resource
        self.vm.host.gunyah.firmware.request_irq(resource.virq, lambda _v: self.ready.set())
        return True

    def unbind(self) -> None:
        """REMOVE_FUNCTION: the fd stays, VCPU_RUN on it is ENODEV."""
        self.unbound = True
        self.vm.remove_ticket((GunyahResourceType.VCPU, self.id))

    def unpopulate(self):
        """Give the resource up (returned); a VCPU_RUN in progress ends."""
        if not self.page[1].closed:
            self.run.immediate_exit = 1
        self.ready.set()
        runner = self.runner
        if runner is not None:  # bring it out of the hypervisor to see immediate_exit
            self.vm.host.gunyah.firmware.send_ipi(runner)
        resource, self.resource = self.resource, None
        if resource is not None:
            self.vm.host.gunyah.firmware.free_irq(resource.virq)
        return resource

    # VCPU_RUN
    def gunyah_vcpu_run(self) -> int:
        if self.unbound:
            raise OSError(errno.ENODEV, "vCPU function removed")
        signals = self.vm.host.signals
        self._lock_interruptible(signals)
        self.runner = threading.get_ident()
        try:
            if self.capid is None:
                raise OSError(errno.ENODEV, "VM not started or no such vCPU")
            if self.state == SYSTEM_DOWN:
                return 0
            if self.state == UNKNOWN and not self._check_system():
                return 0
            resume = self._resume()
            try:
                ret = self._loop(resume, signals)
            except OSError as e:
                if e.errno != errno.EINTR or not signals.pending():
                    raise
            if signals.pending():  # -ERESTARTSYS: it wins over EINTR and over an exit
                raise signals.deliver()
            return ret
        finally:
            self.runner = None
            self.run_lock.release()

    def _lock_interruptible(self, signals) -> None:
        """mutex_lock_interruptible(run_lock): another thread may be running this vCPU."""
        if self.run_lock.acquire(blocking=False):
            return
        while not self.run_lock.acquire(timeout=LOCK_POLL):
            if signals.pending():
                raise signals.deliver()

    def _resume(self) -> tuple[int, int, int]:
        run = self.run
        if self.state not in (MMIO_READ, MMIO_WRITE):
            self.state = READY
            return (0, 0, 0)
        # android14-6.1's run page has no resume_action: every access is emulated
        has_action = self.vm.profile.resume_action
        action = run.mmio.resume_action if has_action else gh.GUNYAH_VCPU_RESUME_HANDLED
        if action == gh.GUNYAH_VCPU_RESUME_HANDLED:
            data = bytes(gh.ffi.buffer(run.mmio.data))[: min(run.mmio.len, 8)]
            value = int.from_bytes(data.ljust(8, b"\0"), "little")
            resume = (value if self.state == MMIO_READ else 0, Resume.EMULATE, 0)
        elif action == gh.GUNYAH_VCPU_RESUME_FAULT:
            resume = (0, Resume.FAULT, 0)
        elif action == gh.GUNYAH_VCPU_RESUME_RETRY and self.vm.profile.mmio_retry:
            self.vm.demand_page(self.mmio_addr, self.state == MMIO_WRITE)
            resume = (0, Resume.RETRY, 0)
        else:
            raise OSError(errno.EINVAL, "resume_action")
        self.state = READY
        return resume

    def _loop(self, resume: tuple[int, int, int], signals) -> int:
        hcall = self.vm.host.gunyah.hcall
        run = self.run
        while not signals.pending():
            if run.immediate_exit:
                raise OSError(errno.EINTR, os.strerror(errno.EINTR))
            capid = self.capid  # once: REMOVE_FUNCTION may take it from another thread
            if capid is None:
                raise OSError(errno.ENODEV, "vCPU resource gone")
            err, state, data = hcall.gunyah_hypercall_vcpu_run(capid, resume)
            resume = RUN_ON
            if err == GunyahError.RETRY:
                continue
            if err:
                raise OSError(gunyah_error_remap(err), "vcpu_run")
            resume = self._handle(state, data)
            if resume is None:
                return 0
        return 0  # a signal: the caller turns it into EINTR

    def _handle(self, state: int, data: tuple[int, int, int]) -> tuple[int, int, int] | None:
        """The resume data to run on with, or None: the run page holds an exit for
        userspace. android14-6.1 knows no page-fault state: as for any state it
        does not know, it runs the vCPU again (the guest faults on until
        ``immediate_exit`` or a signal ends VCPU_RUN)."""
        if state in (State.ADDRSPACE_VMMIO_READ, State.ADDRSPACE_VMMIO_WRITE):
            return self._mmio(state, *data)
        if state == State.ADDRSPACE_PAGE_FAULT and self.vm.profile.resume_action:
            return self._page_fault(data[0], bool(data[1]))
        if state in (State.EXPECTS_WAKEUP, State.POWERED_OFF):
            self.vm.rm.run_notifs()  # an exit the RM reported needs no worker's turn
            if not self._check_system():
                return None
            signals = self.vm.host.signals
            with signals.interruptible(self.ready.set):
                if not signals.pending():
                    self.ready.wait()
            self.ready.clear()
        if state == State.FAULT:  # an unrecoverable vCPU is down for good
            self._status_exit()
            return None
        return RUN_ON if self._check_system() else None

    def _demand_page(self, addr: int, write: bool) -> int:
        """gunyah_gmem_demand_page for the guest's access: 0 or a negative errno.
        "Already provided" (EAGAIN) STUCK_LIMIT times in a row while the guest keeps
        faulting means the driver and the hypervisor disagree about the page: a bug
        of the model, raised (EIO and ``Host.bugs``) rather than spun on forever."""
        ret = self.vm.demand_page(addr, write)
        self.eagain_run = self.eagain_run + 1 if ret == -errno.EAGAIN else 0
        if self.eagain_run > STUCK_LIMIT:
            raise RuntimeError(f"the guest faults on at {addr:#x}, which the driver provided")
        return ret

    def _mmio(self, state: int, addr: int, size: int, value: int) -> tuple[int, int, int] | None:
        """A VMMIO access: paged in, or taken by an ioeventfd, or an MMIO exit (None)."""
        write = state == State.ADDRSPACE_VMMIO_WRITE
        ret = self._demand_page(addr, write)
        if ret in (0, -errno.EAGAIN):
            return (0, Resume.RETRY, 0)
        if write and self.vm.io_handlers(addr, min(size, 8), value):
            return (0, Resume.EMULATE, 0)
        run = self.run
        run.exit_reason = gh.GUNYAH_VCPU_EXIT_MMIO
        run.mmio.phys_addr, run.mmio.len, run.mmio.is_write = addr, min(size, 8), int(write)
        data = value.to_bytes(8, "little") if write else bytes(8)
        gh.ffi.memmove(run.mmio.data, data, 8)
        if self.vm.profile.resume_action:  # byte 37 is padding on android14-6.1
            run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_HANDLED
        self.state, self.mmio_addr = (MMIO_WRITE if write else MMIO_READ), addr
        return None

    def _page_fault(self, addr: int, write: bool) -> tuple[int, int, int] | None:
        """A page fault: paged in, or a PAGE_FAULT exit (None) carrying the errno."""
        ret = self._demand_page(addr, write)
        if ret in (0, -errno.EAGAIN):
            return RUN_ON
        run = self.run
        run.exit_reason = gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
        run.page_fault.phys_addr, run.page_fault.attempt = addr, ret
        run.page_fault.resume_action = gh.GUNYAH_VCPU_RESUME_FAULT
        return None  # the state stays READY: the next VCPU_RUN reruns the access

    def _check_system(self) -> bool:
        """gunyah_vcpu_check_system: True while the VM runs; else the run page gets
        the STATUS exit. Under ``status_lock``: a START in progress is waited for."""
        with self.vm.status_lock:
            if self.vm.vm_status == VmStatus.RUNNING:
                return True
            self._status_exit()
            return False

    def _status_exit(self) -> None:
        """The STATUS exit of a VM that is down; the vCPU is SYSTEM_DOWN from now on."""
        vm, run = self.vm, self.run
        run.exit_reason = gh.GUNYAH_VCPU_EXIT_STATUS
        run.status.status = vm.remapped_status()
        info = vm.exit_info
        run.status.exit_info.type = info[0]
        run.status.exit_info.reason_size = info[1]
        reason = info[2][: gh.GUNYAH_VM_MAX_EXIT_REASON_SIZE].ljust(8, b"\0")
        gh.ffi.memmove(run.status.exit_info.reason, reason, 8)
        self.state = SYSTEM_DOWN


class VcpuFops(FileOperations):
    def ioctl(self, file: File, cmd: int, arg) -> int:
        vcpu: GunyahVcpu = file.private
        if cmd == gh.GUNYAH_VCPU_RUN:
            return vcpu.gunyah_vcpu_run()
        if cmd == gh.GUNYAH_VCPU_MMAP_SIZE:
            return PAGE_SIZE
        err = vcpu.vm.profile.vcpu_unknown_ioctl  # EINVAL on android14-6.1
        raise OSError(err, os.strerror(err))

    def mmap(self, file: File, length: int, offset: int, prot: int, flags: int):
        if offset != 0 or length > PAGE_SIZE:
            raise OSError(errno.EINVAL, "the vCPU run page is one page at offset 0")
        kw = os_mmap(prot, flags)
        return FileMapping(file.private.page[0], PAGE_SIZE, kw["flags"], kw["prot"])

    def release(self, file: File) -> None:
        vcpu: GunyahVcpu = file.private
        vcpu.free_run_page()
        vcpu.vm.put()


VCPU_FOPS = VcpuFops()


def bind(vm, arg: bytes) -> tuple[int, GunyahVcpu]:
    """The GUNYAH_FN_VCPU function's bind: a new vCPU fd (EINVAL unless arg is 4
    bytes, EEXIST for an id already bound, ENODEV if the VM is going away)."""
    if len(arg) != 4:
        raise OSError(errno.EINVAL, "gunyah_fn_vcpu_arg is 4 bytes")
    (vcpu_id,) = struct.unpack("<I", arg)
    vcpu = GunyahVcpu(vm, vcpu_id)
    vm.get()
    try:
        vm.add_ticket((GunyahResourceType.VCPU, vcpu_id), vcpu)
    except OSError:
        vm.put()
        vcpu.free_run_page()
        raise
    return vm.host.fdtable.install(File(VCPU_FOPS, vcpu, f"gh-vcpu:{vcpu_id}")), vcpu


def compare(vcpu: GunyahVcpu, arg: bytes, profile=None) -> bool:
    return len(arg) == 4 and struct.unpack("<I", arg)[0] == vcpu.id
