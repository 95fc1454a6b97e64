"""The Android Gunyah backend of the VMM's hypervisor interface: /dev/gunyah, ``GH_`` UAPI.

What a VMM written against the Android Common Kernel's driver does (the
android14-6.1 and android15-6.6 generations, uapi/linux/gunyah_ack.h):
guest memory is the VMM's own anonymous memory, given to the VM with
GH_VM_ANDROID_LEND_USER_MEM (RAM, label 0, which the host then loses) or
GH_VM_SET_USER_MEM_REGION (the shared window, label 1). The android14-6.1 RM
places only the region holding the DTB by itself: the shared window is
described in the VM config DT as an ``shm`` vdevice (its label and guest
address), as crosvm describes its swiotlb. The boot state goes by GH_VM_SET_DTB_CONFIG and,
where the driver has it, GH_VM_SET_BOOT_CONTEXT; where it is ENOTTY (6.1)
the RM starts the guest at the first byte of the DTB's region with X0 the
DTB and nothing else set, so the entry must be there (ValueError otherwise,
crosvm's rule) and X1.. stay 0. The run page is read with the older layout:
an MMIO read is completed by writing ``mmio.data`` and running again, with
no resume_action, so a refused access reads 0 and a write is dropped.
The VM config DT, doorbells and functions are the v16 backend's.
"""

from __future__ import annotations

import errno
import mmap
import struct

import fdt

from uapi.linux import gunyah_ack as ack
from vmm.gunyah import Gunyah, GunyahVcpu, GunyahVm
from vmm.hypervisor import BootState, Exit, VcpuError
from vmm.vm_config import VmLayout

MAP_ANONYMOUS = 0x20
RWX = ack.GH_MEM_ALLOW_READ | ack.GH_MEM_ALLOW_WRITE | ack.GH_MEM_ALLOW_EXEC
RAM_LABEL, SHARED_LABEL = 0, 1


class GunyahAndroid(Gunyah):
    """/dev/gunyah of an Android kernel."""

    @staticmethod
    def device_tree(layout: VmLayout, name: str) -> bytes:
        """The v16 backend's DT, plus an ``shm`` vdevice for the shared window
        (what :meth:`GunyahAndroidVm.device_tree` returns), with no device opened."""
        tree = fdt.parse_dtb(Gunyah.device_tree(layout, name))
        if layout.shared is not None:
            base = struct.pack(">Q", layout.shared.base)
            tree.get_node("/gunyah-vm-config/vdevices").append(
                fdt.Node(
                    f"shm-{SHARED_LABEL}",
                    fdt.PropStrings("vdevice-type", "shm"),
                    fdt.PropWords("label", SHARED_LABEL),
                    fdt.Property("peer-default"),
                    fdt.PropBytes("base", data=base),
                )
            )
        return tree.to_dtb(version=17)

    def create_vm(self, layout: VmLayout, name: str) -> GunyahAndroidVm:
        return GunyahAndroidVm(self, layout, name)


class GunyahAndroidVm(GunyahVm):
    """A VM fd whose memory is the VMM's anonymous mappings."""

    def __init__(self, gunyah: Gunyah, layout: VmLayout, name: str):
        super().__init__(gunyah, layout, name)
        self._regions: list[tuple[int, int]] = []  # (ipa, size) of each region

    def device_tree(self) -> bytes:
        return GunyahAndroid.device_tree(self._layout, self._name)

    def add_memory(self, ipa: int, size: int, contents=()) -> None:
        mapping = self._anonymous(size)
        for addr, data in contents:
            if not ipa <= addr <= addr + len(data) <= ipa + size:
                raise ValueError(f"{addr:#x}+{len(data):#x} is outside {ipa:#x}+{size:#x}")
            mapping[addr - ipa : addr - ipa + len(data)] = data
        self._region(ack.GH_VM_ANDROID_LEND_USER_MEM, RAM_LABEL, ipa, size, mapping, RWX)

    def add_shared_memory(self, ipa: int, size: int):
        mapping = self._anonymous(size)
        rw = ack.GH_MEM_ALLOW_READ | ack.GH_MEM_ALLOW_WRITE
        self._region(ack.GH_VM_SET_USER_MEM_REGION, SHARED_LABEL, ipa, size, mapping, rw)
        return mapping

    def _anonymous(self, size: int):
        mapping = self.host.mmap(-1, size, 3, mmap.MAP_PRIVATE | MAP_ANONYMOUS)
        self._stack.callback(self.host.munmap, mapping)
        return mapping

    def _region(self, request: int, label: int, ipa: int, size: int, mapping, flags: int):
        fields = {
            "label": label,
            "flags": flags,
            "guest_phys_addr": ipa,
            "memory_size": size,
            "userspace_addr": self.host.user_address(mapping),
        }
        region = ack.ffi.new("struct gh_userspace_memory_region *", fields)
        self.host.ioctl(self.fd, request, region)
        self._regions.append((ipa, size))

    def set_boot_state(self, boot: BootState) -> None:
        """SET_DTB_CONFIG, then the boot context: PC and each X, or, where the driver
        has no SET_BOOT_CONTEXT, nothing (the entry must start the DTB's region)."""
        fields = {"guest_phys_addr": boot.dtb_addr, "size": boot.dtb_size}
        self.host.ioctl(
            self.fd, ack.GH_VM_SET_DTB_CONFIG, ack.ffi.new("struct gh_vm_dtb_config *", fields)
        )
        regs = [(ack.REG_SET_PC, 0, boot.pc)]
        regs += [(ack.REG_SET_X, index, value) for index, value in boot.x.items()]
        for reg_set, index, value in regs:
            ctx = ack.ffi.new(
                "struct gh_vm_boot_context *",
                {"reg": ack.GH_VM_BOOT_CONTEXT_REG(reg_set, index), "value": value},
            )
            try:
                self.host.ioctl(self.fd, ack.GH_VM_SET_BOOT_CONTEXT, ctx)
            except OSError as e:
                if e.errno != errno.ENOTTY:
                    raise
                self._check_entry(boot)
                return

    def _check_entry(self, boot: BootState) -> None:
        base = next((ipa for ipa, size in self._regions if ipa <= boot.dtb_addr < ipa + size), None)
        if boot.pc != base:
            raise ValueError(
                f"entry {boot.pc:#x}: without SET_BOOT_CONTEXT the guest starts at its"
                f" DTB region's first byte {base or 0:#x}"
            )

    def create_vcpu(self, index: int) -> GunyahAndroidVcpu:
        arg = ack.ffi.new("struct gh_fn_vcpu_arg *", {"id": index})
        fd = self._add_function(ack.GH_FN_VCPU, arg)
        self._stack.callback(self.host.close, fd)
        vcpu = GunyahAndroidVcpu(self.host, index, fd)
        self._stack.callback(vcpu.close)
        return vcpu


class GunyahAndroidVcpu(GunyahVcpu):
    """A vCPU fd with the older run page (``struct gh_vcpu_run``: no resume_action).

    Its MMIO and status exits read as the v16 page's (:meth:`GunyahVcpu.run`).
    """

    _ffi, _run_type = ack.ffi, "struct gh_vcpu_run *"
    _MMAP_SIZE, _RUN = ack.GH_VCPU_MMAP_SIZE, ack.GH_VCPU_RUN
    _MAX_EXIT_REASON = ack.GH_VM_MAX_EXIT_REASON_SIZE

    def _other_exit(self, run, code: int, reason: str) -> Exit:
        return VcpuError(f"exit reason {code}, which an Android VMM does not handle", reason=reason)

    def set_mmio_data(self, value: int) -> None:
        ack.ffi.memmove(self._run.mmio.data, value.to_bytes(8, "little"), 8)

    def abort_mmio(self) -> None:
        """The older run page cannot refuse an access: a read gets 0, a write is dropped."""
        ack.ffi.memmove(self._run.mmio.data, bytes(8), 8)
