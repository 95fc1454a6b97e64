"""A host kernel's RM link on real firmware, and a VM configuration DT to lend."""

from __future__ import annotations

import struct

import libfdt

from hyp.platform import boot_firmware
from kernel.arch.arm64.gunyah_hypercall import GunyahHypercall
from kernel.gunyah.gunyah import gunyah_probe
from kernel.gunyah.rsc_mgr import GunyahRm, RmNode


class Host:
    """The pieces of a booted host the RM tests need."""

    def __init__(self, dram_size: int = 1 << 30, rm_policy: str = "default"):
        self.firmware = boot_firmware(dram_size, rm_policy)
        self.hcall = GunyahHypercall(self.firmware)
        self.info = gunyah_probe(self.hcall)
        self.rm = GunyahRm(
            self.hcall, RmNode.from_dt(self.firmware.host_dt), self.firmware.request_irq
        )

    def close(self) -> None:
        """Shut down; a bug the RM survived (answered NOMEM) fails the test here."""
        faults = list(self.firmware.rm.faults)
        self.firmware.shutdown()
        assert not faults, faults


def vm_config_dtb(vcpus: int = 1, doorbells: tuple[tuple[int, int], ...] = ()) -> bytes:
    """A VM config DT with ``vcpus`` CPUs and doorbells given as (label, SPI number)."""
    sw = libfdt.FdtSw()
    sw.finish_reservemap()
    with sw.add_node(""):
        sw.property_u32("#address-cells", 2)
        sw.property_u32("#size-cells", 2)
        with sw.add_node("gunyah-vm-config"):
            sw.property_string("image-name", "test")
            sw.property_string("os-type", "linux")
            with sw.add_node("memory"):
                sw.property("base-address", struct.pack(">Q", 0x8000_0000))
                sw.property("size-max", struct.pack(">Q", 0x1000_0000))
            with sw.add_node("vdevices"):
                sw.property_string("generate", "/hypervisor")
                for label, spi in doorbells:
                    with sw.add_node(f"bell-{label}"):
                        sw.property_string("vdevice-type", "doorbell")
                        sw.property_string("generate", f"/hypervisor/bell-{label}")
                        sw.property_u32("label", label)
                        sw.property("peer-default", b"")
                        sw.property("interrupts", struct.pack(">3I", 0, spi, 1))
        with sw.add_node("cpus"):
            sw.property_u32("#address-cells", 1)
            sw.property_u32("#size-cells", 0)
            for i in range(vcpus):
                with sw.add_node(f"cpu@{i}"):
                    sw.property_string("device_type", "cpu")
                    sw.property_u32("reg", i)
    fdt = sw.as_fdt()
    fdt.pack()
    return bytes(fdt.as_bytearray())
