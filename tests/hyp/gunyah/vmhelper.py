"""Building VMs at the hypercall level, as the Resource Manager would.

:class:`Hv` makes hypercalls by name through the host's SMCCC door;
:func:`build_vm` creates a memory extent, an address space, a VIC and vCPUs,
maps guest RAM and loads code, with nothing but hypercalls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hyp.gunyah.errors import Error
from hyp.gunyah.hypercalls import BY_NAME
from hyp.gunyah.smccc import hypercall_id
from hyp.hw.board import DRAM_BASE

RAM_IPA = 0x8000_0000
MMIO_IPA = 0x1000_0000
GUEST_PA = DRAM_BASE + 0x1000_0000
ATTRS_RWX_WB = 7 | 7 << 4 | 0xF << 16
MAP_PARTIAL = 1


class Hv:
    """Hypercalls by name from the root caller."""

    def __init__(self, gunyah, caller=None):
        self.g, self.caller = gunyah, caller or gunyah.root

    def raw(self, name: str, *args: int) -> list[int]:
        regs = [hypercall_id(BY_NAME[name].num), *args]
        regs += [0] * (8 - len(regs))
        return self.g.smccc(self.caller, regs)

    def err(self, name: str, *args: int) -> int:
        value = self.raw(name, *args)[0]
        return value - (1 << 64) if value >> 63 else value

    def ok(self, name: str, *args: int) -> list[int]:
        out = self.raw(name, *args)
        assert out[0] == 0, f"{name}: {Error(out[0] if out[0] < 1 << 63 else out[0] - (1 << 64))!r}"
        return out[1:]

    def create(self, kind: str) -> int:
        caps = self.g.root_caps
        return self.ok(f"partition_create_{kind}", caps["partition"], caps["cspace"], 0)[0]


@dataclass
class Vm:
    hv: Hv
    vmid: int
    extent: int
    addrspace: int
    vic: int
    vcpus: list[int] = field(default_factory=list)
    wakeups: dict[int, int] = field(default_factory=dict)

    def run(self, index: int = 0, *resume: int) -> tuple[int, int, int, int]:
        resume = (*resume, 0, 0, 0)[:3]
        out = self.hv.ok("vcpu_run", self.vcpus[index], *resume, 0)
        return tuple(out[:4])

    def write(self, ipa: int, data: bytes) -> None:
        self.hv.g.dram.write(GUEST_PA + ipa - RAM_IPA, data)

    def read(self, ipa: int, size: int) -> bytes:
        return self.hv.g.dram.read(GUEST_PA + ipa - RAM_IPA, size)


def configure_vm(gunyah, vmid: int, vcpus: int, ram: int, base: int, root_caps: bool) -> Vm:
    """A VM whose ``ram`` bytes at PA ``base`` are mapped at RAM_IPA, with
    ``vcpus`` (at most 8) vCPUs, none on, each bound to host VIRQ 32 + 8 *
    ``vmid`` + its index; with ``root_caps`` its vCPUs' hypercalls use the
    root cspace."""
    assert vcpus <= 8
    hv = Hv(gunyah)
    extent = hv.create("memextent")
    hv.ok("memextent_configure", extent, base, ram, 7, 0)
    hv.ok("object_activate", extent, 0)
    space = hv.create("addrspace")
    hv.ok("addrspace_configure", space, vmid, 0)
    hv.ok("object_activate", space, 0)
    vic = hv.create("vic")
    hv.ok("vic_configure", vic, vcpus, 64, 0, 0)
    hv.ok("object_activate", vic, 0)
    vm = Vm(hv, vmid, extent, space, vic)
    for i in range(vcpus):
        vcpu = hv.create("thread")
        hv.ok("vcpu_configure", vcpu, 0, 0)
        hv.ok("vcpu_set_affinity", vcpu, i, 0)
        hv.ok("addrspace_attach_thread", space, vcpu, 0)
        hv.ok("vic_attach_vcpu", vic, vcpu, i, 0)
        if root_caps:
            hv.ok("cspace_attach_thread", gunyah.root_caps["cspace"], vcpu, 0)
        hv.ok("object_activate", vcpu, 0)
        virq = 32 + 8 * vmid + i
        hv.ok("vcpu_bind_virq", vcpu, gunyah.root_caps["host_vic"], virq, 1, 0)
        vm.vcpus.append(vcpu)
        vm.wakeups[virq] = i
    hv.ok("addrspace_map", space, extent, RAM_IPA, ATTRS_RWX_WB, MAP_PARTIAL, 0, ram)
    return vm


def build_vm(gunyah, code: bytes, vcpus: int = 1, ram: int = 1 << 21) -> Vm:
    """VM 1 at GUEST_PA running ``code`` from RAM_IPA on its vCPU 0."""
    vm = configure_vm(gunyah, 1, vcpus, ram, GUEST_PA, root_caps=True)
    vm.write(RAM_IPA, code)
    vm.hv.ok("vcpu_poweron", vm.vcpus[0], RAM_IPA, 0, 0)
    return vm
