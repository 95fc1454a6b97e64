"""A host kernel's RM link on real firmware, and a VM configuration DT to lend."""

from __future__ import annotations

from hyp.platform import boot_firmware
from kernel.arch.arm64.gunyah_hypercall import GunyahHypercall
from kernel.gunyah.gunyah import gunyah_probe
from kernel.gunyah.rsc_mgr import GunyahRm, RmNode
from vmm.vm_config import DoorbellVdevice, VmLayout, build_dtb


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
        bugs = list(self.firmware.rm.bugs)
        self.firmware.shutdown()
        assert not bugs, bugs


def vm_config_dtb(vcpus: int = 1, doorbells: tuple[tuple[int, int], ...] = ()) -> bytes:
    """A VM config DT with ``vcpus`` CPUs and doorbells given as (label, SPI number)."""
    bells = [DoorbellVdevice(label, spi) for label, spi in doorbells]
    return build_dtb(VmLayout(0x8000_0000, 0x1000_0000, vcpus, doorbells=bells), "test")
