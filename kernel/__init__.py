"""The host Linux kernel model: syscalls, files and the Gunyah drivers.

``kernel.boot()`` powers the machine on (SoC, hypervisor, Resource
Manager), probes Gunyah, connects to the RM and returns a
:class:`~kernel.syscalls.Host`: the syscall surface of one process with
/dev/gunyah. ``rm_policy="retail"`` makes the RM refuse unprotected VMs.
"""

from __future__ import annotations


def boot(rm_policy: str = "default", dram_size: int | None = None):
    from kernel.arch.arm64.platform import power_on
    from kernel.gunyah.gunyah_host import GunyahHost
    from kernel.syscalls import Host

    firmware = power_on(dram_size, rm_policy)
    try:
        return Host(GunyahHost.probe(firmware))
    except BaseException:
        firmware.shutdown()
        raise
