"""The host Linux kernel model: syscalls, files, the Gunyah and GenieZone drivers.

:func:`boot` powers a simulated machine on and returns a
:class:`~kernel.syscalls.Host`, the syscall surface of one process on it.
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
    guest_exceptions=None,
    warn=None,
    uapi: str = "v16",
):
    """Power a machine on and return a :class:`~kernel.syscalls.Host` on it.

    With Gunyah (the default) this builds the SoC, starts the hypervisor at EL2
    and the Resource Manager VM, probes Gunyah by hypercall, connects to the RM
    and registers /dev/gunyah (and /sys/hypervisor). Call ``Host.shutdown()`` to
    power off; until then the machine's threads run.

    :param rm_policy: the RM's policy, Gunyah only: ``"default"`` or ``"retail"``
        (the RM refuses unprotected VMs: VM_START fails). Anything else is a
        ValueError.
    :param dram_size: bytes of host DRAM (default 8 GiB; the DRAM is one sparse
        memfd, so untouched memory costs nothing).
    :param trace: a :class:`~kernel.trace.Tracer` (lines and a trace-event
        timeline), or a callable taking one line (``print``, ``list.append``),
        which gets a Tracer's lines: every ioctl with its struct decoded
        (``ioctl(4, GUNYAH_VM_START, 0) = 0``), every RM call with its payload,
        every vCPU exit and event of the interrupt path, strace-style, from
        whichever thread makes them. Anything else but None is a TypeError
        (``trace=True``: use ``trace=print``).
    :param faults: a :class:`~kernel.fault_inject.FaultPlan` arming the
        injection points of every RM call and hypercall wrapper, Gunyah only
        (with GenieZone, arm ``host.gzvm.hvc.faults`` after boot).
    :param hypervisor: what runs at EL2: ``"gunyah"`` or ``"geniezone"``
        (MediaTek GenieZone, no RM; the host's driver registers /dev/gzvm, and
        there is no /dev/gunyah nor /sys/hypervisor). ``Host.gunyah`` or
        ``Host.gzvm`` is the driver state of whichever it is, the other None.
        Anything else is a ValueError, as are ``rm_policy`` or ``faults`` with
        GenieZone.
    :param guest_exceptions: a callable taking a dict, given every synchronous
        exception any guest vCPU takes to its EL1 as the hypervisor enters it
        (``event`` "guest_exception": ``vcpu``, ``esr``, ``far``, ``elr``,
        ``pc``, ``insn``, ``spsr``, ``vector``, ``regs`` X0..X30, ``sp``) and
        every fault a vCPU stops on for the host (``event`` "guest_fault":
        ``vcpu``, ``why``, ``pc``, ``insn``, ``spsr``, ``regs``, ``sp``): what a
        VMM needs for a guest's oops. It is called in the vCPU's thread with the
        hypervisor's lock held, so it must only record. It is the simulator's
        window into EL2; no device gives a VMM this.
    :param warn: a callable taking one line, given each warning the kernel logs
        (``Host.dmesg`` keeps every line), e.g. an irqfd written while no
        doorbell has its label: what a console would show.
    :param uapi: which Gunyah driver generation /dev/gunyah is, Gunyah only:
        ``"v16"`` (the upstream series: guest_memfd and MAP_MEM), ``"ack-6.1"``
        or ``"ack-6.6"`` (the Android Common Kernel's drivers: user memory
        through GH_VM_SET_USER_MEM_REGION / GH_VM_ANDROID_LEND_USER_MEM, see
        Documentation/kernel.rst). Anything else is a ValueError, as is a uapi
        other than v16 with GenieZone.

    Every bad argument is refused before anything is powered on. Example::

        import kernel
        from uapi.linux import gunyah as gh

        lines = []
        host = kernel.boot(trace=lines.append)
        dev = host.open("/dev/gunyah")
        vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
        host.shutdown()
        assert lines[0].startswith("ioctl(")
    """
    if hypervisor not in HYPERVISORS:
        raise ValueError(f"unknown hypervisor {hypervisor!r}: expected one of {HYPERVISORS}")
    if trace is not None and not isinstance(trace, Tracer):
        if not callable(trace):
            raise TypeError(
                f"trace must be a callable taking one line (e.g. print), not {type(trace).__name__}"
            )
        trace = Tracer(trace)
    from kernel.gunyah.profile import gunyah_profile

    profile = gunyah_profile(uapi)
    if hypervisor == "geniezone":
        if rm_policy != "default" or faults is not None:
            raise ValueError("GenieZone has no Resource Manager: no rm_policy, no RM faults")
        if uapi != "v16":
            raise ValueError(f"uapi {uapi!r} is a /dev/gunyah driver: not with GenieZone")
        return _boot_geniezone(dram_size, trace, guest_exceptions, warn)

    from kernel.arch.arm64.platform import power_on
    from kernel.gunyah.gunyah_host import GunyahHost
    from kernel.syscalls import Host

    firmware = power_on(dram_size, rm_policy)
    try:
        drivers = GunyahHost.probe(firmware, profile)
        host = _watched(Host(drivers), trace, guest_exceptions, warn)
        if faults is not None:
            host.gunyah.rm.faults = host.gunyah.hcall.faults = faults
        if trace is not None:
            host.gunyah.rm.trace = trace
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
        return _watched(Host(GzvmDriver.probe(firmware)), trace, guest_exceptions, warn)
    except BaseException:
        firmware.shutdown()
        raise


def rm_fault_points() -> frozenset[str]:
    """The RM calls ``boot(faults=...)`` can make fail (kernel.fault_inject's points)."""
    from kernel.fault_inject import POINTS
    from kernel.gunyah import rsc_mgr_rpc  # noqa: F401 (its calls are the points)

    return frozenset(p for p in POINTS if p.startswith("gunyah_rm_"))


def _watched(host, trace, guest_exceptions, warn):
    """``host`` with boot's observers attached: the trace (the kernel's lines and the
    hypervisor's exits), the guest-exception sink and the warning hook."""
    host.warn = warn
    firmware = host.drivers.firmware
    if trace is not None:
        host.trace = trace
        firmware.trace_guest_exits(trace.hyp_line)
    if guest_exceptions is not None:
        firmware.watch_guest_exceptions(guest_exceptions)
    return host
