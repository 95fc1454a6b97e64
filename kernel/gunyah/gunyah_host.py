"""The Gunyah drivers of one booted host: hypercalls, probe result and the RM link.

This is what drivers/virt/gunyah's probe functions leave behind: the
arch hypercall conduit, the hypervisor's identity and the RM device, with
the host's RAM allocator next to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.arch.arm64.gunyah_hypercall import GunyahHypercall
from kernel.gunyah.gunyah import GunyahInfo, gunyah_probe
from kernel.gunyah.profile import V16, GunyahProfile
from kernel.gunyah.rsc_mgr import GunyahRm, RmNode
from kernel.gunyah.vm_mgr import GUNYAH_DEV_FOPS
from kernel.mm import PageAllocator


@dataclass
class GunyahHost:
    firmware: object
    hcall: GunyahHypercall
    info: GunyahInfo
    rm: GunyahRm
    mm: PageAllocator
    profile: GunyahProfile = V16  # the driver generation /dev/gunyah behaves as
    name = "gunyah"

    @property
    def devices(self) -> dict:
        return {"/dev/gunyah": GUNYAH_DEV_FOPS}

    @classmethod
    def probe(cls, firmware, profile: GunyahProfile = V16) -> GunyahHost:
        hcall = GunyahHypercall(firmware)
        info = gunyah_probe(hcall)
        rm = GunyahRm(hcall, RmNode.from_dt(firmware.host_dt), firmware.request_irq)
        mm = PageAllocator(*firmware.memory, firmware.discard_ram)
        return cls(firmware, hcall, info, rm, mm, profile)

    def shutdown(self) -> None:
        self.rm.close()
        self.firmware.shutdown()
