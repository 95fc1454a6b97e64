"""The host Linux kernel model: syscalls, files, the Gunyah and GenieZone drivers.

``kernel.boot()`` powers the machine on (SoC, hypervisor, Resource
Manager), probes Gunyah, connects to the RM and returns a
:class:`~kernel.syscalls.Host`: the syscall surface of one process with
/dev/gunyah. ``rm_policy="retail"`` makes the RM refuse unprotected VMs;
``trace`` (a callable taking one line) receives every ioctl, RM call and
vCPU exit of the hypervisor, strace-style; ``faults`` (a
:class:`~kernel.fault_inject.FaultPlan`) arms the injection points of every
RM call and hypercall wrapper. ``guest_exceptions`` (a callable taking a
dict) is given every synchronous exception any guest vCPU takes to its
EL1, as the hypervisor enters it (``event`` "guest_exception": ``vcpu``,
``esr``, ``far``, ``elr``, ``pc``, ``insn``, ``spsr``, ``vector``,
``regs`` X0..X30, ``sp``; see :mod:`hyp.arch.exception`), and every fault
a vCPU stops on for the host (``event`` "guest_fault": ``vcpu``, ``why``,
``pc``, ``insn``, ``spsr``, ``regs``, ``sp``): what a VMM needs for a
guest's oops. It is
called in the vCPU's thread with the hypervisor's lock held: it must only
record. It is the simulator's window into EL2; no device gives a VMM this.
``warn`` (a callable taking one line) is given each warning the kernel
logs (``Host.dmesg`` keeps every line), e.g. an irqfd written while no
doorbell has its label: a console would show it.

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

HYPERVISORS = ("gunyah", "geniezone")


def boot(
    rm_policy: str = "default",
    dram_size: int | None = None,
    trace=None,
    faults=None,
    hypervisor: str = "gunyah",
    guest_exceptions=None,
    warn=None,
):
    if hypervisor not in HYPERVISORS:
        raise ValueError(f"unknown hypervisor {hypervisor!r}: expected one of {HYPERVISORS}")
    if hypervisor == "geniezone":
        if rm_policy != "default" or faults is not None:
            raise ValueError("GenieZone has no Resource Manager: no rm_policy, no RM faults")
        return _boot_geniezone(dram_size, trace, guest_exceptions, warn)

    from kernel.arch.arm64.platform import power_on
    from kernel.gunyah.gunyah_host import GunyahHost
    from kernel.syscalls import Host

    firmware = power_on(dram_size, rm_policy)
    try:
        host = Host(GunyahHost.probe(firmware))
        host.warn = warn
        if faults is not None:
            host.gunyah.rm.faults = host.gunyah.hcall.faults = faults
        if trace is not None:
            host.trace = host.gunyah.rm.trace = trace
            firmware.trace_guest_exits(trace)
        if guest_exceptions is not None:
            firmware.watch_guest_exceptions(guest_exceptions)
        return host
    except BaseException:
        firmware.shutdown()
        raise


def _boot_geniezone(dram_size: int | None, trace, guest_exceptions, warn):
    from kernel.arch.arm64.geniezone.platform import power_on
    from kernel.geniezone.gzvm_main import GzvmDriver
    from kernel.syscalls import Host

    firmware = power_on(dram_size)
    try:
        host = Host(GzvmDriver.probe(firmware))
        host.warn = warn
        if trace is not None:
            host.trace = trace
            firmware.trace_guest_exits(trace)
        if guest_exceptions is not None:
            firmware.watch_guest_exceptions(guest_exceptions)
        return host
    except BaseException:
        firmware.shutdown()
        raise
