"""The host Linux kernel model: syscalls, files, the Gunyah and GenieZone drivers.

``kernel.boot()`` powers the machine on (SoC, hypervisor, Resource
Manager), probes Gunyah, connects to the RM and returns a
:class:`~kernel.syscalls.Host`: the syscall surface of one process with
/dev/gunyah. ``rm_policy="retail"`` makes the RM refuse unprotected VMs;
``trace`` (a :class:`~kernel.trace.Tracer`, or a callable taking one
line, which gets a Tracer's lines) receives every ioctl with its struct
decoded, RM call with its payload, vCPU exit of the hypervisor and event of
the interrupt path, strace-style; ``faults`` (a
:class:`~kernel.fault_inject.FaultPlan`) arms the injection points of every
RM call and hypercall wrapper.

``hypervisor`` says which EL2 the SoC runs: ``"gunyah"`` (the default) or
``"geniezone"``: MediaTek GenieZone at EL2 (no RM) and a host whose driver
probed it and registered /dev/gzvm (there is no /dev/gunyah then, nor
/sys/hypervisor; ``Host.gzvm`` is the driver's state, ``Host.gunyah`` is
None). ``rm_policy`` is Gunyah's alone (ValueError with GenieZone), as is
``faults``; a GenieZone fault plan is ``host.gzvm.hvc.faults``. Any other
``hypervisor`` is a ValueError. Both are raised before anything is powered
on.
"""

from __future__ import annotations

from kernel.trace import Tracer

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
    if trace is not None and not isinstance(trace, Tracer):
        trace = Tracer(trace)
    if hypervisor == "geniezone":
        if rm_policy != "default" or faults is not None:
            raise ValueError("GenieZone has no Resource Manager: no rm_policy, no RM faults")
        return _boot_geniezone(dram_size, trace)

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
            firmware.trace_guest_exits(trace.hyp_line)
        return host
    except BaseException:
        firmware.shutdown()
        raise


def _boot_geniezone(dram_size: int | None, trace):
    from kernel.arch.arm64.geniezone.platform import power_on
    from kernel.geniezone.gzvm_main import GzvmDriver
    from kernel.syscalls import Host

    firmware = power_on(dram_size)
    try:
        host = Host(GzvmDriver.probe(firmware))
        if trace is not None:
            host.trace = trace
            firmware.trace_guest_exits(trace.hyp_line)
        return host
    except BaseException:
        firmware.shutdown()
        raise
