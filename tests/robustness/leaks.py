"""What a booted host holds, to compare before and after a VM's life."""

from __future__ import annotations

import threading
from dataclasses import dataclass

# Threads a host keeps once started: the hypervisor's watchdog, the kernel's eventfd wait queue.
LONG_LIVED = ("gunyah-watchdog", "eventfd-wq")


@dataclass(frozen=True)
class Holdings:
    rm_vms: tuple
    memparcels: tuple
    vmids: tuple
    vcpus: int
    host_caps: int
    root_caps: int
    fds: tuple
    free_ram: int
    threads: int
    dram_owners: tuple  # the memory database: (start, end, owner id) per range of DRAM


def holdings(host) -> Holdings:
    firmware = host.gunyah.firmware
    gunyah, rm = firmware.gunyah, firmware.rm
    threads = [t for t in threading.enumerate() if t.name not in LONG_LIVED]
    return Holdings(
        rm_vms=tuple(sorted(rm.vm_manager.vms)),
        memparcels=tuple(sorted(rm.memparcels.parcels)),
        vmids=tuple(sorted(gunyah.vmids)),
        vcpus=len(gunyah.scheduler.order),
        host_caps=len(firmware.host.cspace.caps),
        root_caps=len(gunyah.root.cspace.caps),
        fds=tuple(sorted(host.fdtable.fds())),
        free_ram=host.gunyah.mm.free_bytes,
        threads=len(threads),
        dram_owners=tuple((s, e, id(o)) for s, e, o in gunyah.memdb.ranges()),
    )


def leaked(before: Holdings, after: Holdings) -> dict:
    """The fields that differ: what the VM left behind."""
    return {
        name: (getattr(before, name), getattr(after, name))
        for name in Holdings.__dataclass_fields__
        if getattr(before, name) != getattr(after, name)
    }
