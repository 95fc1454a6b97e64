"""Story: crosvm's boot sequence on an Android /dev/gunyah (spec gunyah-ack.md §11), both profiles.

crosvm opens the device, creates the VM, hands over its regions sorted by
address with the index as label (RAM lent for a protected VM, shared
otherwise; the static swiotlb always shared), adds each vCPU (MMAP_SIZE,
then a shared mapping of the run page), binds an irqfd per interrupt line
(label = irq), registers ioevents (its DATAMATCH flag built as
``1 << GH_IOEVENTFD_DATAMATCH`` = 2 is refused with EINVAL on every
generation; the virtio-pci AnyLength one, len 0 and flags 0, works), sets
the DTB at RAM end - 2 MiB with 2 MiB of room and the boot PC (ENOTTY on
6.1, accepted because the payload is at RAM's first byte), starts the VM
and runs its vCPU until the guest's PSCI SYSTEM_OFF arrives as a STATUS
exit (EXITED, PSCI_POWER_OFF). Then the balloon's RECLAIM_REGION (6.6
only), the irqfd removed by label and the ioevent by address, and every fd
closed. One exception, which the model shows rather than hides: on 6.6 a
shared binding's pages are never executable (§5.2's table), so an
unprotected VM, whose RAM is shared, cannot run its first instruction and
VCPU_RUN ends in a PAGE_FAULT exit, which crosvm treats as an error.
A hypervisor-loaded pvmfw (SET_FW_CONFIG) makes the VM an
ANDROID-authenticated one: the RM hears VM_SET_FIRMWARE_MEM and, on 6.6,
no boot context.
"""

import errno
import gc
import os
import re

import pytest

from kernel.mmap import MAP_SHARED
from tests.aarch64 import assemble
from tests.gunyahvm import errno_of
from tests.kernel.gunyah.ackvm import (
    MMIO,
    PROFILES,
    RWX,
    SYSTEM_OFF,
    add_fn,
    anonymous,
    boot,
    boot_reg,
    region,
    remove_fn,
    set_dtb,
    set_fw,
)
from tests.kernel.gunyah.rmhelper import vm_config_dtb
from uapi.linux import gunyah_ack as ack

PVMFW_IPA, PVMFW_SIZE = 0x7FC0_0000, 0x40_0000
RAM_IPA, RAM_SIZE = 0x8000_0000, 8 << 20
SWIOTLB_IPA, SWIOTLB_SIZE = RAM_IPA + RAM_SIZE, 0x10_0000
FDT_IPA, FDT_ROOM = RAM_IPA + RAM_SIZE - 0x20_0000, 0x20_0000
IRQ, NR_VCPUS = 5, 2
BALLOON_IPA = RAM_IPA + 0x10_0000
GUEST = f"""
    ldr x9, ={MMIO:#x}
    str x0, [x9]                    // the FDT address the RM put in X0
{SYSTEM_OFF}
"""


class Crosvm:
    """crosvm's calls, one method per step of §11."""

    def __init__(self, uapi: str, protected: bool, pvmfw: bool = False, trace=None):
        self.host = boot(uapi, trace=trace)
        self.protected, self.pvmfw = protected, pvmfw
        self.maps, self.fds, self.runs = [], [], []

    def open_and_create(self):
        self.dev = self.host.open("/dev/gunyah", os.O_RDWR | os.O_CLOEXEC)
        self.vm = self.host.ioctl(self.dev, ack.GH_CREATE_VM, 0)

    def regions(self):
        layout = [(RAM_IPA, RAM_SIZE, self.protected), (SWIOTLB_IPA, SWIOTLB_SIZE, False)]
        if self.pvmfw:
            layout.insert(0, (PVMFW_IPA, PVMFW_SIZE, self.protected))
        for label, (ipa, size, lend) in enumerate(sorted(layout)):
            mapping, uaddr = anonymous(self.host, size)
            self.maps.append(mapping)
            if ipa == RAM_IPA:
                self.ram = mapping
            region(self.host, self.vm, label, ipa, size, uaddr, RWX, lend)
        self.next_label = len(layout)
        code = assemble(GUEST)
        self.ram[0 : len(code)] = code
        blob = vm_config_dtb(NR_VCPUS, ((IRQ, IRQ),))
        self.ram[FDT_IPA - RAM_IPA : FDT_IPA - RAM_IPA + len(blob)] = blob
        if self.pvmfw:
            assert set_fw(self.host, self.vm, PVMFW_IPA, PVMFW_SIZE) == 0

    def vcpus(self):
        for index in range(NR_VCPUS):
            arg = {"id": index}
            fd = add_fn(self.host, self.vm, ack.GH_FN_VCPU, "struct gh_fn_vcpu_arg", arg)
            size = self.host.ioctl(fd, ack.GH_VCPU_MMAP_SIZE, 0)
            page = self.host.mmap(fd, size, 3, MAP_SHARED)
            self.fds.append(fd)
            self.maps.append(page)
            self.runs.append(ack.ffi.from_buffer("struct gh_vcpu_run *", page))

    def devices(self):
        self.irq_evt = self.host.eventfd()
        self.io_evt = self.host.eventfd()
        irqfd = {"fd": self.irq_evt, "label": IRQ, "flags": 1}
        assert add_fn(self.host, self.vm, ack.GH_FN_IRQFD, "struct gh_fn_irqfd_arg", irqfd) == 0
        datamatch = {"fd": self.io_evt, "addr": MMIO + 0x50, "len": 4, "flags": 2, "datamatch": 1}
        ctype = "struct gh_fn_ioeventfd_arg"
        refused = errno_of(add_fn, self.host, self.vm, ack.GH_FN_IOEVENTFD, ctype, datamatch)
        assert refused == errno.EINVAL  # 1 << GH_IOEVENTFD_DATAMATCH is 2: no such flag
        any_length = {"fd": self.io_evt, "addr": MMIO + 0x100, "len": 0, "flags": 0}
        assert add_fn(self.host, self.vm, ack.GH_FN_IOEVENTFD, ctype, any_length) == 0

    def init_arch(self):
        assert set_dtb(self.host, self.vm, FDT_IPA, FDT_ROOM) == 0
        try:
            boot_reg(self.host, self.vm, ack.REG_SET_PC, 0, RAM_IPA)
            self.boot_context = True
        except OSError as e:
            assert e.errno == errno.ENOTTY  # accepted: the payload is at offset 0
            self.boot_context = False
        assert self.host.ioctl(self.vm, ack.GH_VM_START, 0) == 0

    def run_until_exit(self):
        run, mmio = self.runs[0], []
        for _ in range(10):
            assert self.host.ioctl(self.fds[0], ack.GH_VCPU_RUN, 0) == 0
            if run.exit_reason == ack.GH_VCPU_EXIT_MMIO:
                mmio.append((run.mmio.phys_addr, int.from_bytes(bytes(run.mmio.data), "little")))
                continue
            if run.exit_reason != ack.GH_VCPU_EXIT_STATUS:
                return mmio, run.exit_reason, None
            return mmio, run.status.status, run.status.exit_info.type
        raise AssertionError("no STATUS exit")

    def balloon_inflate(self):
        reclaim = ack.ffi.new(
            "struct gunyah_address_range *", {"guest_phys_addr": BALLOON_IPA, "size": 0x1000}
        )
        try:
            return self.host.ioctl(self.vm, ack.GH_VM_RECLAIM_REGION, reclaim)
        except OSError as e:
            return e.errno

    def unregister(self):
        ctype = "struct gh_fn_irqfd_arg"
        assert remove_fn(self.host, self.vm, ack.GH_FN_IRQFD, ctype, {"label": IRQ}) == 0
        ctype = "struct gh_fn_ioeventfd_arg"
        assert (
            remove_fn(self.host, self.vm, ack.GH_FN_IOEVENTFD, ctype, {"addr": MMIO + 0x100}) == 0
        )

    def teardown(self):
        self.runs.clear()
        gc.collect()  # cffi views of the run pages must be gone before munmap
        for fd in (*self.fds, self.vm, self.dev, self.irq_evt, self.io_evt):
            self.host.close(fd)
        for mapping in self.maps:
            self.host.munmap(mapping)
        assert self.host.mm.pinned == {}
        self.host.shutdown()


@pytest.mark.parametrize("protected", (False, True), ids=("unprotected", "protected"))
@pytest.mark.parametrize("uapi", PROFILES)
def test_crosvm_boots_to_system_off(uapi, protected):
    vmm = Crosvm(uapi, protected)
    try:
        vmm.open_and_create()
        vmm.regions()
        vmm.vcpus()
        vmm.devices()
        if protected:  # the host loses lent RAM: at START (6.1) or at first touch (6.6)
            assert vmm.ram[0:4] != bytes(4)
        vmm.init_arch()
        assert vmm.boot_context == (uapi == "ack-6.6")
        mmio, status, exit_type = vmm.run_until_exit()
        if uapi == "ack-6.6" and not protected:
            # 6.6 maps a shared binding's pages RW or R, never executable (§5.2): the
            # guest's first fetch from its shared RAM faults, and its vector fetch at
            # IPA 0x200 is a PAGE_FAULT exit (ENOENT), which crosvm treats as an error.
            assert (mmio, status) == ([], 3)
            vmm.unregister()
            return
        assert mmio == [(MMIO, FDT_IPA)]
        assert (status, exit_type) == (ack.GH_VM_STATUS_EXITED, 1)  # PSCI_POWER_OFF
        assert vmm.ram[0:4] == (bytes(4) if protected else assemble(GUEST)[0:4])
        assert vmm.balloon_inflate() == (0 if uapi == "ack-6.6" else errno.ENOTTY)
        vmm.unregister()
    finally:
        vmm.teardown()


RM_CALL = re.compile(r"rm_call\((\w+)(\{[^}]*\})?")


@pytest.mark.parametrize("uapi", PROFILES)
def test_hypervisor_loaded_pvmfw_makes_a_protected_vm(uapi):
    lines = []
    vmm = Crosvm(uapi, protected=True, pvmfw=True, trace=lines.append)
    try:
        vmm.open_and_create()
        vmm.regions()
        vmm.vcpus()
        vmm.devices()
        vmm.init_arch()
        calls = [m.group(1) for m in map(RM_CALL.search, lines) if m]
        configure = next(line for line in lines if "VM_CONFIG_IMAGE{" in line)
        assert "auth_mech=0x2" in configure  # QCOM_ANDROID_PVM
        firmware = next(line for line in lines if "VM_SET_FIRMWARE_MEM{" in line)
        assert f"fw_size={PVMFW_SIZE:#x}" in firmware
        assert "fw_offset=0x0" in firmware
        assert "VM_SET_BOOT_CONTEXT" not in calls  # 6.6 drops it for a PVM; 6.1 has none
        start = calls.index("VM_ALLOCATE")
        if uapi == "ack-6.1":  # every region, newest first; the swiotlb shared with the host
            given = ["VM_GET_VMID", "MEM_SHARE", "MEM_LEND", "MEM_LEND", "VM_CONFIG_IMAGE"]
            rest = ["VM_SET_FIRMWARE_MEM", "VM_INIT"]
        else:  # the firmware's and the DTB's pages only
            given = ["MEM_LEND", "MEM_LEND", "VM_CONFIG_IMAGE", "VM_SET_FIRMWARE_MEM"]
            rest = ["VM_SET_DEMAND_PAGING", "VM_SET_ADDRESS_LAYOUT", "VM_INIT"]
        expected = ["VM_ALLOCATE", *given, *rest, "VM_GET_HYP_RESOURCES", "VM_START"]
        assert calls[start:] == expected
        vmm.unregister()
    finally:
        vmm.teardown()
