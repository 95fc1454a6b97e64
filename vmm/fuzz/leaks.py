"""What a booted host holds, to compare before and after a VM's life (Gunyah and GenieZone)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

# Threads a host keeps once started: the kernel's eventfd wait queue.
LONG_LIVED = ("eventfd-wq",)


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


@dataclass(frozen=True)
class GzHoldings:
    """What a GenieZone host holds: the host's side (RAM, pins, fds, mappings of
    its RAM, the driver's VMs) and EL2's (VMs, VMIDs, vCPUs on the scheduler,
    the pages VMs and EL2 hold, its page pool), and threads."""

    free_ram: int
    pinned: tuple  # (pa, pins) per page a driver pinned
    fds: tuple
    host_maps: int
    driver_vms: int
    el2_vms: tuple
    vmids: tuple
    vcpus: int
    guest_pages: int  # PFNs mapped to a VM
    el2_shared: tuple  # PFNs EL2 uses with the host (vCPU areas, PFN buffers)
    pool_used: int  # EL2 pages holding stage-2 tables
    threads: int


def gz_holdings(host) -> GzHoldings:
    gz = host.gzvm.firmware.geniezone
    threads = [t for t in threading.enumerate() if t.name not in LONG_LIVED]
    with gz.lock:
        return GzHoldings(
            free_ram=host.gzvm.mm.free_bytes,
            pinned=tuple(sorted((pa, pins) for pa, (_, pins) in host.mm.pinned.items())),
            fds=tuple(sorted(host.fdtable.fds())),
            host_maps=len(gz.host_maps),
            driver_vms=len(host.gzvm.vm_list),
            el2_vms=tuple(sorted(gz.vms)),
            vmids=tuple(sorted(gz.vmids)),
            vcpus=len(gz.scheduler.order),
            guest_pages=len(gz.owners),
            el2_shared=tuple(sorted(gz.shared)),
            pool_used=gz.pool.used,
            threads=len(threads),
        )


def gz_leaked(before: GzHoldings, after: GzHoldings) -> dict:
    """The fields that differ: what the VM left behind."""
    return {
        name: (getattr(before, name), getattr(after, name))
        for name in GzHoldings.__dataclass_fields__
        if getattr(before, name) != getattr(after, name)
    }
