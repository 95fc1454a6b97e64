"""The VM manager (drivers/virt/gunyah/vm_mgr.c): /dev/gunyah and VM fds.

/dev/gunyah: GUNYAH_CREATE_VM (argument 0, else EINVAL; no RM call yet) and
GUNYAH_CREATE_GUEST_MEM. A VM fd: SET_DTB_CONFIG, SET_BOOT_CONTEXT, MAP_MEM,
ADD_FUNCTION/REMOVE_FUNCTION and START; anything else is ENOTTY.

START runs the driver's sequence against the RM once (VM_ALLOCATE, the DTB
parcel lent with MEM_LEND or MEM_SHARE, CONFIG_IMAGE, SET_DEMAND_PAGING for
lent bindings, SET_ADDRESS_LAYOUT, INIT, the boot context, GET_HYP_RESOURCES
handed to tickets, VM_START); it is idempotent while running, and after a
failed start or an exit it is ENODEV. The VM object outlives its fd while
vCPU fds hold references; on the last one the release sequence runs in
reverse: force-stop, remove functions, reclaim memory, VM_RESET (waiting for
RESET), VM_DEALLOCATE.

With an Android profile (``kernel.boot(uapi="ack-6.1"|"ack-6.6")``) memory
comes from the VMM's own mappings instead of guest_memfd, and the
generation's own ioctls, START sequence and teardown are vm_mgr_ack.py's;
/dev/gunyah then has no CREATE_GUEST_MEM and a VM fd no MAP_MEM (ENOTTY),
and SET_BOOT_CONTEXT exists only where the profile has it.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field

from kernel.fs import File, FileOperations
from kernel.gunyah import ioeventfd, irqfd, rsc_mgr, vcpu, vm_mgr_ack, vm_mgr_mem
from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah import vm_mgr_mem_android as mem_android
from kernel.gunyah.guest_memfd import gunyah_guest_mem_create
from kernel.gunyah.rsc_mgr_h import GunyahRmAcl
from kernel.gunyah.rsc_mgr_h import GunyahRmVmStatus as VmStatus
from kernel.include.linux.gunyah import (
    GUNYAH_VMID_INVAL,
    GunyahResourceType,
)
from kernel.kref import Kref
from kernel.mm import PAGE_SIZE
from kernel.uaccess import copy_from_user
from uapi.linux import gunyah as gh


@dataclass(eq=False)
class GunyahVm:
    """struct gunyah_vm. Each field's comment names the lock that guards it.

    ``status_lock`` is held by START for its whole sequence, so a VCPU_RUN
    that checks the status waits for START to finish; RM notifications
    change the status under it too, and ``status_changed`` (on the same
    lock) wakes whoever waits for a new status.
    """

    host: object  # set at creation, never changes
    vmid: int = GUNYAH_VMID_INVAL  # status_lock
    vm_status: VmStatus = VmStatus.NO_STATE  # status_lock
    exit_info: tuple[int, int, bytes] = (0, 0, b"")  # status_lock: (type, size, reason)
    boot_context: dict[int, int] = field(default_factory=dict)  # status_lock
    parcel: object = None  # status_lock (START), then release only
    parcel_pages: tuple = (None, 0)  # as parcel: (guest_memfd File, offset) while the RM holds them
    dtb: tuple[int, int] = (0, 0)  # none, as in v16: START reads it once under status_lock
    status_lock: threading.RLock = field(default_factory=threading.RLock)
    status_changed: threading.Condition = field(init=False)
    bindings: list = field(default_factory=list)  # bindings_lock
    provided: dict = field(default_factory=dict)  # bindings_lock: first gfn -> Folio
    bindings_lock: threading.RLock = field(default_factory=threading.RLock)
    # resources_lock; ``tickets`` is filled by START and only read after it
    tickets: dict = field(default_factory=dict)  # (type, label) -> capid of VM-wide resources
    ticket_owners: dict = field(default_factory=dict)  # (type, label) -> function
    unclaimed: dict = field(default_factory=dict)  # resources no ticket took yet
    resources_lock: threading.RLock = field(default_factory=threading.RLock)
    functions: list = field(default_factory=list)  # fn_lock
    fn_lock: threading.Lock = field(default_factory=threading.Lock)
    io_handler_list: list = field(default_factory=list)  # mmio_handler_lock
    # held while a handler is matched and run, so REMOVE waits for a write in progress
    mmio_handler_lock: threading.Lock = field(default_factory=threading.Lock)
    # Android profiles only: authentication, firmware and user memory
    auth: int = 0  # status_lock: the RM auth mechanism of CONFIG_IMAGE
    fw: tuple[int, int] = (0, 0)  # as dtb: (gpa, size) of SET_FW_CONFIG
    mem_regions: list = field(default_factory=list)  # bindings_lock: 6.1 GhVmMem, newest first
    user_bindings: list = field(default_factory=list)  # bindings_lock: 6.6 GunyahVmBinding
    android_parcels: list = field(default_factory=list)  # status_lock: parcels of pinned pages
    user_pages: object = None  # the owner of demand-paged user pages
    kref: Kref = field(init=False)
    nb: object = field(init=False)  # the notifier_block: the one object (un)registered

    def __post_init__(self):
        self.status_changed = threading.Condition(self.status_lock)
        # ``self.notified`` makes a new bound method at each use, and the chain
        # unregisters by identity, as the kernel's does the notifier_block.
        self.nb = self.notified
        self.kref = Kref(lambda: gunyah_vm_release(self))
        self.user_pages = mem_android.PinnedUserPages(self.host.mm, self.host.gunyah.firmware)

    @property
    def rm(self):
        return self.host.gunyah.rm

    @property
    def profile(self):
        return self.host.gunyah.profile

    def demand_page(self, gpa: int, write: bool) -> int:
        """Give the guest the page at ``gpa`` from its bindings: 0 or a negative errno
        (ENOENT where the profile has no demand paging)."""
        if self.profile.memory == "bindings":
            return mem_android.gunyah_demand_page(self, gpa, write)
        if self.profile.memory == "pinned":
            return -errno.ENOENT
        return vm_mgr_mem.gunyah_gmem_demand_page(self, gpa, write)

    # references
    def get(self) -> None:
        """A reference; ENODEV once the last one is gone."""
        if not self.kref.get_unless_zero():
            raise OSError(errno.ENODEV, "VM is going away")

    def put(self) -> None:
        self.kref.put()

    # tickets
    def add_ticket(self, key: tuple[int, int], owner) -> None:
        """Take the ticket for ``key`` (EEXIST if taken); a waiting resource populates it."""
        with self.resources_lock:
            if key in self.ticket_owners:
                raise OSError(errno.EEXIST, f"{GunyahResourceType(key[0]).name} {key[1]} is taken")
            self.ticket_owners[key] = owner
            resource = self.unclaimed.pop(key, None)
            if resource is not None:
                owner.populate(resource)

    def remove_ticket(self, key: tuple[int, int]) -> None:
        """The owner lets its resource go; it waits, unclaimed, for the next ticket."""
        with self.resources_lock:
            owner = self.ticket_owners.pop(key, None)
            if owner is not None:
                resource = owner.unpopulate()
                if resource is not None:
                    self.unclaimed[key] = resource

    def offer(self, resource) -> None:
        """A resource from GET_HYP_RESOURCES goes to its ticket, or waits unclaimed."""
        key = (resource.type, resource.resource_label)
        with self.resources_lock:
            owner = self.ticket_owners.get(key)
            if resource.type in (GunyahResourceType.MEM_EXTENT, GunyahResourceType.ADDR_SPACE):
                self.tickets[key] = resource.cap_id
            elif owner is None or not owner.populate(resource):
                self.unclaimed[key] = resource

    def reclaim_file(self, gmem, offset: int, length: int, lent_only: bool) -> None:
        vm_mgr_mem.reclaim_file(self, gmem, offset, length, lent_only)

    def io_handlers(self, addr: int, size: int, value: int) -> bool:
        """Give a guest MMIO write to the in-kernel handler that matches it (True if one
        did); a handler being removed meanwhile is either run whole or not found."""
        with self.mmio_handler_lock:
            for handler in self.io_handler_list:
                if handler.matches(addr, size, value):
                    handler.write(addr, size, value)
                    return True
        return False

    def remapped_status(self) -> int:
        if self.vm_status == VmStatus.INIT_FAILED:
            return gh.GUNYAH_VM_STATUS_LOAD_FAILED
        if self.vm_status == VmStatus.EXITED:
            return gh.GUNYAH_VM_STATUS_EXITED
        return gh.GUNYAH_VM_STATUS_CRASHED

    # RM notifications (the rsc_mgr notifier chain)
    def notified(self, msg_id: int, payload: bytes) -> None:
        if len(payload) < 4 or struct.unpack_from("<H", payload)[0] != self.vmid:
            return
        if msg_id == rpc.NOTIFY_VM_EXITED and len(payload) >= 8:
            _, exit_type, size = struct.unpack_from("<HHI", payload)
            self._set_status(VmStatus.EXITED, (exit_type, size, payload[8 : 8 + min(size, 8)]))
        elif msg_id == rpc.NOTIFY_VM_STATUS and payload[4:5] == bytes([VmStatus.RESET]):
            self._set_status(VmStatus.RESET)

    def _set_status(self, status: VmStatus, exit_info: tuple | None = None) -> None:
        with self.status_changed:
            self.vm_status = status
            if exit_info is not None:
                self.exit_info = exit_info
            self.status_changed.notify_all()
        for f in list(self.functions):
            if f.type == gh.GUNYAH_FN_VCPU:
                f.instance.ready.set()  # a vCPU waiting for a wakeup sees the VM down

    def wait_status(self, done) -> None:
        """Wait for the RM to report a status ``done`` accepts; a report that never
        comes is logged after ``RM_TIMEOUT`` (release goes on, it cannot fail)."""
        self.rm.run_notifs()  # a report already received needs no worker's turn
        with self.status_changed:
            timeout = rsc_mgr.RM_TIMEOUT
            if not self.status_changed.wait_for(lambda: done(self.vm_status), timeout):
                self.host.printk(f"gunyah_vm_mgr: VM {self.vmid}: no status from the RM")


def _struct(ctype: str, arg):
    data = bytearray(copy_from_user(arg, gh.ffi.sizeof(ctype)))
    return gh.ffi.from_buffer(f"{ctype} *", data)


# START
def gunyah_vm_ensure_started(vm: GunyahVm) -> int:
    with vm.status_lock:
        if vm.vm_status == VmStatus.RUNNING:
            return 0
        if vm.vm_status != VmStatus.NO_STATE:
            raise OSError(errno.ENODEV, "VM failed to start or has exited")
        if vm.profile.android:
            vm_mgr_ack.gunyah_vm_android_start(vm)
        else:
            _start(vm)
        return 0


def _start(vm: GunyahVm) -> None:
    rm = vm.rm
    vm.rm.gunyah_rm_notifier_register(vm.nb)
    try:
        vm.vmid = rpc.gunyah_rm_alloc_vmid(rm, 0)
    except OSError:
        vm.rm.gunyah_rm_notifier_unregister(vm.nb)
        raise
    vm.vm_status = VmStatus.LOAD
    gpa, size = vm.dtb
    parcel_start, pages = gpa // PAGE_SIZE, size // PAGE_SIZE
    vm.parcel, parcel_start, pages = _share_dtb_parcel(vm, parcel_start, pages)
    rpc.gunyah_rm_vm_configure(
        rm, vm.vmid, 0, vm.parcel.mem_handle, 0, 0, gpa - parcel_start * PAGE_SIZE, size
    )
    lent = [(b.gfn * PAGE_SIZE, b.nr * PAGE_SIZE) for b in vm.bindings if not b.share]
    if lent:
        rpc.gunyah_rm_vm_set_demand_paging(rm, vm.vmid, lent)
    rpc.gunyah_rm_vm_set_address_layout(rm, vm.vmid, 0, parcel_start * PAGE_SIZE, pages * PAGE_SIZE)
    try:
        rpc.gunyah_rm_vm_init(rm, vm.vmid)
    except OSError:
        vm.vm_status = VmStatus.INIT_FAILED
        raise
    vm.vm_status = VmStatus.READY
    for reg, value in sorted(vm.boot_context.items()):
        reg_set, index = reg >> gh.GUNYAH_VM_BOOT_CONTEXT_REG_SHIFT & 0xFF, reg & 0xFF
        rpc.gunyah_rm_vm_set_boot_context(rm, vm.vmid, reg_set, index, value)
    for resource in rpc.gunyah_rm_get_hyp_resources(rm, vm.vmid):
        vm.offer(resource)
    rpc.gunyah_rm_vm_start(rm, vm.vmid)
    vm_mgr_mem.gunyah_vm_parcel_to_paged(vm, parcel_start, pages)
    _put_parcel_pages(vm, returned=True)  # the bindings hold the file from now on
    vm.vm_status = VmStatus.RUNNING


def _share_dtb_parcel(vm: GunyahVm, start: int, pages: int):
    """The DTB's pages, rounded out to whole folios, as an RM parcel: lent (one
    ACL entry) unless the binding shares. Returns (parcel, first gfn, pages).
    EINVAL under a page, ENOENT outside a binding, ENOMEM past the file's end
    (no folio there, as for demand paging), EPERM for lent pages the host has
    mapped."""
    if pages == 0:
        raise OSError(errno.EINVAL, "DTB size is less than a page")
    binding = vm_mgr_mem.find_binding(vm, start)
    if binding is None or start + pages > binding.end:
        raise OSError(errno.ENOENT, "the DTB is not inside a guest_memfd binding")
    if vm_mgr_mem.gunyah_gmem_get_folio(binding, start + pages - 1) is None:
        raise OSError(errno.ENOMEM, "the DTB lies past the end of its guest_memfd")
    start, pages = vm_mgr_mem.folio_range(binding, start, pages)
    offset = (binding.i_off + start - binding.gfn) * PAGE_SIZE
    if not binding.share and binding.file.private.host_mapped(offset, pages * PAGE_SIZE):
        raise OSError(errno.EPERM, "the DTB's pages are mapped by the host: they cannot be lent")
    flags = binding.flags  # ALLOW_READ/WRITE/EXEC become the RM's rights R 4, W 2, X 1
    acl_perms = (
        (GunyahRmAcl.R if flags & gh.GUNYAH_MEM_ALLOW_READ else 0)
        | (GunyahRmAcl.W if flags & gh.GUNYAH_MEM_ALLOW_WRITE else 0)
        | (GunyahRmAcl.X if flags & gh.GUNYAH_MEM_ALLOW_EXEC else 0)
    )
    acl = [(vm.vmid, acl_perms)]
    if binding.share:
        acl.append((rpc.gunyah_rm_get_vmid(vm.rm), GunyahRmAcl.RWX))
    parcel = rpc.GunyahRmMemParcel(acl=acl, mem_entries=[(binding.pa(start), pages * PAGE_SIZE)])
    rpc.gunyah_rm_mem_share(vm.rm, parcel)
    # the parcel pins its pages (a file reference) until the RM gives them back
    vm.parcel_pages = (binding.file.get(), offset)
    return parcel, start, pages


# functions
KMALLOC_MAX_SIZE = 4 << 20  # the largest argument the kernel can allocate (arm64, 4K pages)


@dataclass
class Function:
    type: int
    instance: object


# GUNYAH_FN_* -> the module that implements it: bind(vm, arg), compare(instance, arg)
FUNCTION_TYPES = {
    gh.GUNYAH_FN_VCPU: vcpu,
    gh.GUNYAH_FN_IRQFD: irqfd,
    gh.GUNYAH_FN_IOEVENTFD: ioeventfd,
}


def _fn_desc(arg):
    return _struct("struct gunyah_fn_desc", arg)


def _fn_arg(desc) -> bytes:
    """The function's argument, copied in: EFAULT, or ENOMEM above what kmalloc gives."""
    if desc.arg_size > KMALLOC_MAX_SIZE:
        raise OSError(errno.ENOMEM, "arg_size")
    return copy_from_user(desc.arg, desc.arg_size) if desc.arg_size else b""


def gunyah_vm_add_function(vm: GunyahVm, arg) -> int:
    """ADD_FUNCTION: bind's result (a vCPU fd, or 0); EINVAL for arg_size above
    GUNYAH_FN_MAX_ARG_SIZE, ENOENT for an unknown type."""
    desc = _fn_desc(arg)
    if desc.arg_size > gh.GUNYAH_FN_MAX_ARG_SIZE:
        raise OSError(errno.EINVAL, "arg_size")
    fn_type, fn_arg = desc.type, _fn_arg(desc)
    fn = FUNCTION_TYPES.get(fn_type)
    if fn is None:
        raise OSError(errno.ENOENT, f"no function of type {fn_type}")
    with vm.fn_lock:
        ret, instance = fn.bind(vm, fn_arg)
        vm.functions.append(Function(fn_type, instance))
    return ret


def gunyah_vm_remove_function(vm: GunyahVm, arg) -> int:
    """REMOVE_FUNCTION: every instance of the type that compares equal; ENOENT if none
    (an argument of the wrong size compares equal to nothing: no EINVAL here)."""
    desc = _fn_desc(arg)
    if desc.arg_size == 0 and vm.profile.remove_empty_ok:
        return 0  # android14-6.1 removes nothing and says so with 0
    fn_type, fn_arg = desc.type, _fn_arg(desc)
    fn = FUNCTION_TYPES.get(fn_type)
    with vm.fn_lock:
        matches = [
            f
            for f in vm.functions
            if f.type == fn_type and fn.compare(f.instance, fn_arg, vm.profile)
        ]
        if not matches:
            raise OSError(errno.ENOENT, "no such function")
        for f in matches:
            vm.functions.remove(f)
            f.instance.unbind()
    return 0


# release
def gunyah_vm_release(vm: GunyahVm) -> None:
    """The release sequence of the last reference, whatever order fds closed in.

    Like the driver it cannot fail: an RM call that fails is logged to
    ``Host.dmesg`` and the sequence goes on. (After a start that failed
    between VM_CONFIG_IMAGE and VM_INIT the RM holds the VM in INIT, where
    it accepts neither VM_RESET nor VM_DEALLOCATE: the VM stays in the RM,
    as it does on a device.)
    """
    with vm.rm.notifs_deferred():  # wait_status runs what the RM reports meanwhile
        if vm.profile.android:
            vm_mgr_ack.gunyah_vm_android_release(vm, _dealloc_vmid, _logged)
        else:
            _release(vm)


def _release(vm: GunyahVm) -> None:
    rm = vm.rm
    with ExitStack() as later:
        if vm.vm_status > VmStatus.NO_STATE:
            later.callback(_dealloc_vmid, vm)
        running = vm.vm_status == VmStatus.RUNNING
        if running and _logged(vm, rpc.gunyah_rm_vm_stop, rm, vm.vmid):
            vm.wait_status(lambda s: s != VmStatus.RUNNING)
        if vm.vm_status == VmStatus.LOAD and vm.parcel is not None:
            _put_parcel_pages(vm, _logged(vm, rpc.gunyah_rm_mem_reclaim, rm, vm.parcel))
        for f in list(vm.functions):
            f.instance.unbind()
        vm.functions.clear()
        vm_mgr_mem.remove_all_bindings(vm)
        resettable = vm.vm_status in (VmStatus.EXITED, VmStatus.READY, VmStatus.INIT_FAILED)
        if resettable and _logged(vm, rpc.gunyah_rm_vm_reset, rm, vm.vmid):
            vm.wait_status(lambda s: s == VmStatus.RESET)
            _put_parcel_pages(vm, returned=True)
        _put_parcel_pages(vm, returned=False)


def _put_parcel_pages(vm: GunyahVm, returned: bool) -> None:
    """Unpin the DTB parcel's pages (if still pinned): the RM gave them back
    (MEM_RECLAIM in LOAD, VM_RESET before start completed) or, if not
    ``returned``, keeps them: they are leaked, never reused."""
    file, offset = vm.parcel_pages
    if file is None:
        return
    if not returned:
        file.private.leak(offset, sum(size for _, size in vm.parcel.mem_entries))
    file.put()
    vm.parcel_pages = (None, 0)


def _logged(vm: GunyahVm, call, *args) -> bool:
    """Make an RM call of the release path; a failure is logged (dev_warn), not raised."""
    try:
        call(*args)
        return True
    except OSError as e:
        vm.host.printk(f"gunyah_vm_mgr: {call.__name__} for VM {vm.vmid}: {e}")
        return False


def _dealloc_vmid(vm: GunyahVm) -> None:
    vm.rm.gunyah_rm_notifier_unregister(vm.nb)
    _logged(vm, rpc.gunyah_rm_dealloc_vmid, vm.rm, vm.vmid)


class VmFops(FileOperations):
    def ioctl(self, file: File, cmd: int, arg) -> int:
        vm: GunyahVm = file.private
        profile = vm.profile
        if cmd == gh.GUNYAH_VM_SET_DTB_CONFIG:
            config = _struct("struct gunyah_vm_dtb_config", arg)
            if config.guest_phys_addr + config.size >= 1 << 64:
                raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))
            vm.dtb = (config.guest_phys_addr, config.size)
            return 0
        if cmd == gh.GUNYAH_VM_SET_BOOT_CONTEXT and profile.boot_context:
            return gunyah_vm_set_boot_context(vm, _struct("struct gunyah_vm_boot_context", arg))
        if cmd == gh.GUNYAH_VM_START:
            with vm.rm.notifs_deferred():  # the RM's reports would wait for status_lock
                return gunyah_vm_ensure_started(vm)
        if cmd == gh.GUNYAH_VM_MAP_MEM and not profile.android:
            return vm_mgr_mem.gunyah_vm_map_mem(vm, _struct("struct gunyah_map_mem_args", arg))
        if cmd == gh.GUNYAH_VM_ADD_FUNCTION:
            return gunyah_vm_add_function(vm, arg)
        if cmd == gh.GUNYAH_VM_REMOVE_FUNCTION:
            return gunyah_vm_remove_function(vm, arg)
        if profile.android:
            return vm_mgr_ack.gunyah_vm_android_ioctl(vm, cmd, arg)
        return super().ioctl(file, cmd, arg)

    def release(self, file: File) -> None:
        file.private.put()


# The registers SET_BOOT_CONTEXT takes: the highest index of each set (v16's
# check; the hypervisor's own is narrower, and START then fails with EINVAL).
BOOT_CONTEXT_REGS = {gh.REG_SET_X: 31, gh.REG_SET_PC: 0, gh.REG_SET_SP: 2}
XA_RETRY_ENTRY = 256 << 2 | 2  # the highest value the xarray refuses to store


def _v16(value: int) -> str:
    """What v16 does with a boot context value it cannot keep as an xarray entry."""
    if value == 0:
        return "v16 erases the register instead (it is not sent to the RM)"
    if value <= XA_RETRY_ENTRY:
        return "v16 refuses it with EINVAL (an xarray internal entry)"
    return "v16 stores it as an xarray internal entry (undefined)"


def gunyah_vm_set_boot_context(vm: GunyahVm, ctx) -> int:
    """Store one boot register, keyed by the whole ``reg`` (bits 31:16 are not
    checked, as in v16); EINVAL for a bad set or index, or after START.

    v16 keeps each value as an xarray entry: 0 erases the register, and a
    value with ``(v & 3) == 2`` is an internal entry (EINVAL up to
    XA_RETRY_ENTRY, undefined above). Every value is kept here, the
    intended behaviour (listed in Documentation/kernel.rst), and those v16
    would mishandle are logged with what v16 would do.
    """
    if vm.profile.android and ctx.reg >> 16:
        raise OSError(errno.EINVAL, "boot context register above bit 15")
    reg_set, index = ctx.reg >> gh.GUNYAH_VM_BOOT_CONTEXT_REG_SHIFT & 0xFF, ctx.reg & 0xFF
    if reg_set not in BOOT_CONTEXT_REGS or index > BOOT_CONTEXT_REGS[reg_set]:
        raise OSError(errno.EINVAL, "boot context register")
    if ctx.value == 0 or ctx.value & 3 == 2:
        vm.host.printk(
            f"gunyah_vm_mgr: boot context {ctx.reg:#x} = {ctx.value:#x}: {_v16(ctx.value)}"
        )
    with vm.status_lock:
        if vm.vm_status != VmStatus.NO_STATE:
            raise OSError(errno.EINVAL, "boot context after start")
        vm.boot_context[ctx.reg] = ctx.value
    return 0


VM_FOPS = VmFops()


class GunyahDevFops(FileOperations):
    """/dev/gunyah."""

    def ioctl(self, file: File, cmd: int, arg) -> int:
        host = file.private
        if cmd == gh.GUNYAH_CREATE_VM:
            if arg != 0:
                raise OSError(errno.EINVAL, "GUNYAH_CREATE_VM takes 0")
            return host.fdtable.install(File(VM_FOPS, GunyahVm(host), "gunyah-vm"))
        if cmd == gh.GUNYAH_CREATE_GUEST_MEM and not host.gunyah.profile.android:
            return gunyah_guest_mem_create(host, arg)
        return super().ioctl(file, cmd, arg)


GUNYAH_DEV_FOPS = GunyahDevFops()
