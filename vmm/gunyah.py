"""The Gunyah backend of the VMM's hypervisor interface: /dev/gunyah, v16 UAPI.

Everything that knows the Gunyah ioctls is here: CREATE_VM and
CREATE_GUEST_MEM on the device, MAP_MEM (RAM lent, the shared window
shared), SET_DTB_CONFIG and SET_BOOT_CONTEXT, the VM functions (vCPU,
irqfd, ioeventfd) added with ADD_FUNCTION, START, and the vCPU's run page
with its GUNYAH_VCPU_EXIT_* reasons, which :meth:`GunyahVcpu.run` turns
into the interface's exits.

The VM config DT is Gunyah's (``vmm/vm_config.py``): the RM reads it, then
adds the GIC. On Gunyah the VMM raises an interrupt only through a
doorbell, so every device interrupt of the layout gets a doorbell vdevice
(labels from 1, in device order) and :meth:`GunyahVm.irqfd` binds its
label.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import replace

from uapi.linux import gunyah as gh
from vmm.hypervisor import (
    BootState,
    DeviceHypervisor,
    Exit,
    MmioRead,
    MmioWrite,
    SystemEvent,
    Vcpu,
    VcpuError,
    Vm,
)
from vmm.vm_config import DoorbellVdevice, VmLayout, build_dtb

EXIT_NAMES = {
    gh.GUNYAH_VCPU_EXIT_MMIO: "mmio",
    gh.GUNYAH_VCPU_EXIT_STATUS: "status",
    gh.GUNYAH_VCPU_EXIT_PAGE_FAULT: "page_fault",
}
STATUS_NAMES = {
    gh.GUNYAH_VM_STATUS_LOAD_FAILED: "load failed",
    gh.GUNYAH_VM_STATUS_EXITED: "exited",
    gh.GUNYAH_VM_STATUS_CRASHED: "crashed",
}
EXIT_TYPES = {  # the RM's exit types (spec section 4.6)
    0: "vm_exit",
    1: "platform_off",
    2: "platform_reset",
    3: "psci_system_reset2",
    4: "watchdog_bite",
    5: "software_error",
    6: "async_hw_error",
    7: "vm_stop_forced",
}


def with_doorbells(layout: VmLayout) -> VmLayout:
    """``layout`` with a doorbell vdevice for every device interrupt, labels from 1 in
    device order: the irqfds' doorbells, which the VM config DT must describe."""
    spis = [dev.spi for dev in layout.devices if dev.spi is not None]
    bells = [DoorbellVdevice(label, spi) for label, spi in enumerate(spis, 1)]
    return replace(layout, doorbells=bells)


class Gunyah(DeviceHypervisor):
    """/dev/gunyah."""

    DEVICE = "/dev/gunyah"

    @staticmethod
    def device_tree(layout: VmLayout, name: str) -> bytes:
        """The VM config DT a VM of ``layout`` gets (what :meth:`GunyahVm.device_tree`
        returns), with no device opened: for a VMM that builds the VM itself."""
        return build_dtb(with_doorbells(layout), name)

    def create_vm(self, layout: VmLayout, name: str) -> GunyahVm:
        return GunyahVm(self, layout, name)


class GunyahVm(Vm):
    """A VM fd and what hangs off it: guest_memfds, mappings, vCPU functions."""

    def __init__(self, gunyah: Gunyah, layout: VmLayout, name: str):
        self.host, self._dev = gunyah.host, gunyah.fd
        self.fd = self.host.ioctl(self._dev, gh.GUNYAH_CREATE_VM, 0)
        self._stack = ExitStack()
        self._stack.callback(self.host.close, self.fd)
        self._labels = {bell.spi: bell.label for bell in with_doorbells(layout).doorbells}
        self._layout, self._name = layout, name

    def device_tree(self) -> bytes:
        return Gunyah.device_tree(self._layout, self._name)

    def add_memory(self, ipa: int, size: int, contents: Iterable[tuple[int, bytes]] = ()) -> None:
        gmem = self._guest_mem(size)
        # Loaded through a mapping that goes before MAP_MEM: lent pages must not stay host-mapped.
        mapping = self.host.mmap(gmem, size)
        try:
            for addr, data in contents:
                if not ipa <= addr <= addr + len(data) <= ipa + size:
                    raise ValueError(f"{addr:#x}+{len(data):#x} is outside {ipa:#x}+{size:#x}")
                mapping[addr - ipa : addr - ipa + len(data)] = data
        finally:
            self.host.munmap(mapping)
        self._map(gmem, ipa, size, gh.GUNYAH_MEM_DEFAULT_ACCESS | gh.GUNYAH_MEM_ALLOW_RWX)

    def add_shared_memory(self, ipa: int, size: int):
        gmem = self._guest_mem(size)
        flags = gh.GUNYAH_MEM_FORCE_SHARE | gh.GUNYAH_MEM_ALLOW_READ | gh.GUNYAH_MEM_ALLOW_WRITE
        self._map(gmem, ipa, size, flags)
        mapping = self.host.mmap(gmem, size)
        self._stack.callback(self.host.munmap, mapping)
        return mapping

    def _guest_mem(self, size: int) -> int:
        args = gh.ffi.new("struct gunyah_create_mem_args *", {"size": size})
        gmem = self.host.ioctl(self._dev, gh.GUNYAH_CREATE_GUEST_MEM, args)
        self._stack.callback(self.host.close, gmem)
        return gmem

    def _map(self, gmem: int, ipa: int, size: int, flags: int) -> None:
        fields = {"guest_addr": ipa, "flags": flags, "guest_mem_fd": gmem, "size": size}
        args = gh.ffi.new("struct gunyah_map_mem_args *", fields)
        self.host.ioctl(self.fd, gh.GUNYAH_VM_MAP_MEM, args)

    def set_boot_state(self, boot: BootState) -> None:
        """SET_DTB_CONFIG, then SET_BOOT_CONTEXT for PC and each X: the RM sets X0 itself."""
        fields = {"guest_phys_addr": boot.dtb_addr, "size": boot.dtb_size}
        dtb = gh.ffi.new("struct gunyah_vm_dtb_config *", fields)
        self.host.ioctl(self.fd, gh.GUNYAH_VM_SET_DTB_CONFIG, dtb)
        regs = [(gh.REG_SET_PC, 0, boot.pc)]
        regs += [(gh.REG_SET_X, index, value) for index, value in boot.x.items()]
        for reg_set, index, value in regs:
            ctx = gh.ffi.new(
                "struct gunyah_vm_boot_context *",
                {"reg": gh.GUNYAH_VM_BOOT_CONTEXT_REG(reg_set, index), "value": value},
            )
            self.host.ioctl(self.fd, gh.GUNYAH_VM_SET_BOOT_CONTEXT, ctx)

    def create_vcpu(self, index: int) -> GunyahVcpu:
        arg = gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": index})
        fd = self._add_function(gh.GUNYAH_FN_VCPU, arg)
        self._stack.callback(self.host.close, fd)
        vcpu = GunyahVcpu(self.host, index, fd)
        self._stack.callback(vcpu.close)
        return vcpu

    def irqfd(self, efd: int, spi: int) -> None:
        if spi not in self._labels:
            raise ValueError(f"SPI {spi} is no device's interrupt: no doorbell for it")
        arg = gh.ffi.new("struct gunyah_fn_irqfd_arg *", {"fd": efd, "label": self._labels[spi]})
        self._add_function(gh.GUNYAH_FN_IRQFD, arg)

    def ioeventfd(self, efd: int, addr: int, size: int, datamatch: int | None = None) -> None:
        fields = {"fd": efd, "addr": addr, "len": size}
        if datamatch is not None:
            fields.update(flags=gh.GUNYAH_IOEVENTFD_FLAGS_DATAMATCH, datamatch=datamatch)
        arg = gh.ffi.new("struct gunyah_fn_ioeventfd_arg *", fields)
        self._add_function(gh.GUNYAH_FN_IOEVENTFD, arg)

    def _add_function(self, fn_type: int, arg) -> int:
        desc = gh.ffi.new(
            "struct gunyah_fn_desc *",
            {
                "type": fn_type,
                "arg_size": gh.ffi.sizeof(arg[0]),
                "arg": int(gh.ffi.cast("uintptr_t", arg)),
            },
        )
        return self.host.ioctl(self.fd, gh.GUNYAH_VM_ADD_FUNCTION, desc)

    def start(self) -> None:
        self.host.ioctl(self.fd, gh.GUNYAH_VM_START, 0)

    def close(self) -> None:
        self._stack.close()


class GunyahVcpu(Vcpu):
    """A vCPU fd and its run page (mapped here, unmapped by :meth:`close`).

    The class attributes name the UAPI's run page (its ffi and C type, the
    MMAP_SIZE and RUN ioctls, the longest exit reason); a driver generation
    whose run page decodes MMIO and status exits alike overrides them and
    :meth:`_other_exit`.
    """

    _ffi, _run_type = gh.ffi, "struct gunyah_vcpu_run *"
    _MMAP_SIZE, _RUN = gh.GUNYAH_VCPU_MMAP_SIZE, gh.GUNYAH_VCPU_RUN
    _MAX_EXIT_REASON = gh.GUNYAH_VM_MAX_EXIT_REASON_SIZE

    def __init__(self, host, index: int, fd: int):
        self.host, self.index, self.fd = host, index, fd
        size = host.ioctl(fd, self._MMAP_SIZE, 0)
        self._page = host.mmap(fd, size)
        self._run = self._ffi.from_buffer(self._run_type, self._page)

    def run(self) -> Exit:
        """VCPU_RUN, and the run page's exit as the interface's."""
        self.host.ioctl(self.fd, self._RUN, 0)
        run = self._run
        code = run.exit_reason
        reason = EXIT_NAMES.get(code, str(code))
        if code == gh.GUNYAH_VCPU_EXIT_MMIO:
            mmio = run.mmio
            if mmio.is_write:
                value = int.from_bytes(bytes(mmio.data)[: mmio.len], "little")
                return MmioWrite(mmio.phys_addr, mmio.len, value, reason=reason)
            return MmioRead(mmio.phys_addr, mmio.len, reason=reason)
        if code == gh.GUNYAH_VCPU_EXIT_STATUS:
            status, info = run.status.status, run.status.exit_info
            return SystemEvent(
                STATUS_NAMES.get(status, str(status)),
                EXIT_TYPES.get(info.type, str(info.type)),
                bytes(info.reason)[: min(info.reason_size, self._MAX_EXIT_REASON)],
                reason=reason,
            )
        return self._other_exit(run, code, reason)

    def _other_exit(self, run, code: int, reason: str) -> Exit:
        """An exit neither MMIO nor status: a page fault the kernel could not serve, or unknown."""
        if code == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT:
            fault = run.page_fault
            why = errno.errorcode.get(-fault.attempt, fault.attempt)
            problem = f"guest address {fault.phys_addr:#x} cannot be paged in ({why})"
            return VcpuError(problem, reason=reason)
        return VcpuError(f"unknown exit reason {code}", reason=reason)

    def set_mmio_data(self, value: int) -> None:
        gh.ffi.memmove(self._run.mmio.data, value.to_bytes(8, "little"), 8)
        self._run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_HANDLED

    def abort_mmio(self) -> None:
        self._run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_FAULT

    def request_exit(self) -> None:
        self._run.immediate_exit = 1

    def close(self) -> None:
        """Unmap the run page (the view of it goes first: a mapping in use cannot close)."""
        del self._run
        self.host.munmap(self._page)
