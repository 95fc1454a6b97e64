"""Story: the Qualcomm QEMU RFC's sequence (spec gunyah-ack.md §12) on android14-6.1.

The RFC imports the late 6.1 header. Accelerator init opens the device and
creates the VM; the memory listener hands RAM (moved to 2 GiB) over with
SET_USER_MEM_REGION, label = slot 0, R|X|W; GICv3 realize binds a LEVEL irqfd
per SPI (label = SPI index) and the DTB gets a doorbell for each; an
ioeventfd with DATAMATCH passed correctly as 1 is added and removed again;
machine_done sets the DTB with size = slot end - DTB start; each vCPU thread
adds its vCPU and maps 4096 bytes without asking MMAP_SIZE; there is no boot
context, so the guest enters at the first byte of the DTB's slot with X0 the
DTB; START; the run loop serves MMIO in place and stops at the STATUS exit of
the guest's PSCI SYSTEM_OFF.

On android15-6.6 the same calls leave the entry to the RM too, but there the
DTB's parcel is the DTB's own pages (§6), so the guest would enter at the
DTB's first byte: the RFC needs SET_BOOT_CONTEXT there, which it never calls.
"""

import os

from kernel.mmap import MAP_SHARED
from tests.aarch64 import assemble
from tests.kernel.gunyah.ackvm import (
    MMIO,
    RWX,
    SYSTEM_OFF,
    add_fn,
    anonymous,
    boot,
    region,
    remove_fn,
    set_dtb,
)
from tests.kernel.gunyah.rmhelper import vm_config_dtb
from uapi.linux import gunyah_ack as ack

RAM_IPA, RAM_SIZE = 0x8000_0000, 8 << 20
DTB_IPA = RAM_IPA + (4 << 20)
SPIS, NR_VCPUS = 4, 2
GUEST = f"""
    ldr x9, ={MMIO:#x}
    str x0, [x9]                    // X0: the DTB
    ldr w1, [x9, #4]                // a read the run loop answers in place
    str w1, [x9, #8]
{SYSTEM_OFF}
"""


class QemuRfc:
    """The RFC's calls up to and including START (steps 1 to 7 of §12)."""

    def __init__(self, host):
        self.host, self.maps, self.vcpus = host, [], []
        self.dev = host.open("/dev/gunyah", os.O_RDWR)
        self.vm = vm = host.ioctl(self.dev, ack.GH_CREATE_VM, 0)
        ram, uaddr = anonymous(host, RAM_SIZE)
        self.maps.append(ram)
        code = assemble(GUEST)
        ram[0 : len(code)] = code
        blob = vm_config_dtb(NR_VCPUS, tuple((spi, spi) for spi in range(SPIS)))
        ram[DTB_IPA - RAM_IPA : DTB_IPA - RAM_IPA + len(blob)] = blob
        assert region(host, vm, 0, RAM_IPA, RAM_SIZE, uaddr, RWX) == 0
        self.evts = [host.eventfd() for _ in range(SPIS)]
        for spi, evt in enumerate(self.evts):
            irqfd = {"fd": evt, "label": spi, "flags": ack.GH_IRQFD_LEVEL}
            assert add_fn(host, vm, ack.GH_FN_IRQFD, "struct gh_fn_irqfd_arg", irqfd) == 0
        io = {
            "fd": self.evts[0],
            "addr": MMIO + 0x40,
            "len": 4,
            "flags": ack.GH_IOEVENTFD_DATAMATCH,
            "datamatch": 7,
        }
        ctype = "struct gh_fn_ioeventfd_arg"
        assert add_fn(host, vm, ack.GH_FN_IOEVENTFD, ctype, io) == 0
        assert remove_fn(host, vm, ack.GH_FN_IOEVENTFD, ctype, io) == 0
        assert set_dtb(host, vm, DTB_IPA, RAM_IPA + RAM_SIZE - DTB_IPA) == 0
        for index in range(NR_VCPUS):
            fd = add_fn(host, vm, ack.GH_FN_VCPU, "struct gh_fn_vcpu_arg", {"id": index})
            self.vcpus.append(fd)
            self.maps.append(host.mmap(fd, 4096, 3, MAP_SHARED))  # no MMAP_SIZE
        assert host.ioctl(vm, ack.GH_VM_START, 0) == 0

    def close(self):
        for fd in (*self.vcpus, self.vm, self.dev, *self.evts):
            self.host.close(fd)
        for mapping in self.maps:
            self.host.munmap(mapping)
        assert self.host.mm.pinned == {}


def test_qemu_rfc_boots_to_system_off_on_android14():
    host = boot("ack-6.1")
    try:
        rfc = QemuRfc(host)
        run = ack.ffi.from_buffer("struct gh_vcpu_run *", rfc.maps[1])
        seen = []
        while True:
            assert host.ioctl(rfc.vcpus[0], ack.GH_VCPU_RUN, 0) == 0
            if run.exit_reason != ack.GH_VCPU_EXIT_MMIO:
                break
            mmio = run.mmio
            data = int.from_bytes(bytes(mmio.data)[: mmio.len], "little")
            seen.append((mmio.phys_addr, mmio.len, mmio.is_write, data if mmio.is_write else None))
            if not mmio.is_write:
                ack.ffi.memmove(mmio.data, (0x5EED).to_bytes(8, "little"), 8)
        assert run.exit_reason == ack.GH_VCPU_EXIT_STATUS
        assert (run.status.status, run.status.exit_info.type) == (ack.GH_VM_STATUS_EXITED, 1)
        assert seen == [
            (MMIO, 8, 1, DTB_IPA),  # entered at the slot's first byte with X0 the DTB
            (MMIO + 4, 4, 0, None),
            (MMIO + 8, 4, 1, 0x5EED),
        ]
        del run
        rfc.close()
    finally:
        host.shutdown()


def test_qemu_rfc_on_android15_leaves_the_entry_at_the_dtb():
    lines = []
    host = boot("ack-6.6", trace=lines.append)
    try:
        rfc = QemuRfc(host)
        layout = next(line for line in lines if "VM_SET_ADDRESS_LAYOUT{" in line)
        assert f"range_base={DTB_IPA:#x}," in layout  # the image: the DTB's own pages
        assert not any("VM_SET_BOOT_CONTEXT" in line for line in lines)
        rfc.close()
    finally:
        host.shutdown()
