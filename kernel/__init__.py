"""The host Linux kernel model: syscalls, files and the Gunyah drivers.

``kernel.boot()`` powers the machine on (SoC, hypervisor, Resource
Manager), probes Gunyah, connects to the RM and returns a
:class:`~kernel.syscalls.Host`: the syscall surface of one process with
/dev/gunyah. ``rm_policy="retail"`` makes the RM refuse unprotected VMs;
``trace`` (a callable taking one line) receives every ioctl, RM call and
vCPU exit of the hypervisor, strace-style; ``faults`` (a
:class:`~kernel.fault_inject.FaultPlan`) arms the injection points of every
RM call and hypercall wrapper.

``hypervisor`` says which EL2 the SoC runs: ``"gunyah"`` (the default) or
``"geniezone"``, which raises NotImplementedError until hyp/geniezone and
the gzvm driver exist; any other value is a ValueError. Both are raised
before anything is powered on.
"""

from __future__ import annotations

HYPERVISORS = ("gunyah", "geniezone")


def boot(
    rm_policy: str = "default",
    dram_size: int | None = None,
    trace=None,
    faults=None,
    hypervisor: str = "gunyah",
):
    if hypervisor not in HYPERVISORS:
        raise ValueError(f"unknown hypervisor {hypervisor!r}: expected one of {HYPERVISORS}")
    if hypervisor == "geniezone":
        raise NotImplementedError("GenieZone: not yet")

    from kernel.arch.arm64.platform import power_on
    from kernel.gunyah.gunyah_host import GunyahHost
    from kernel.syscalls import Host

    firmware = power_on(dram_size, rm_policy)
    try:
        host = Host(GunyahHost.probe(firmware))
        if faults is not None:
            host.gunyah.rm.faults = host.gunyah.hcall.faults = faults
        if trace is not None:
            host.trace = host.gunyah.rm.trace = trace
            firmware.trace_guest_exits(trace)
        return host
    except BaseException:
        firmware.shutdown()
        raise
