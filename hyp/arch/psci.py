"""PSCI for guests (Gunyah hyp/vm/psci, Linux arch/arm64/kvm/psci.c): power
control of a VM's vCPUs.

A VM's vCPUs are what the caller's ``siblings()`` hook returns (for Gunyah,
the vCPUs attached to the same VIC); a target is found by its
``affinity``. CPU_ON powers a sibling on at an entry point, CPU_OFF the
caller, CPU_SUSPEND waits like WFI. SYSTEM_OFF powers every vCPU of the VM
off for good (the host then sees a powered-off exit with "exited" set) and
SYSTEM_RESET/RESET2 make the host see a system-reset exit; both are
reported to the EL2's VM-event listeners (:meth:`~hyp.arch.el2.El2.vm_event`).
"""

from __future__ import annotations

from enum import IntEnum

PSCI_VERSION_1_1 = 0x0001_0001


class Psci(IntEnum):
    VERSION = 0x8400_0000
    CPU_SUSPEND = 0x8400_0001
    CPU_OFF = 0x8400_0002
    CPU_ON = 0x8400_0003
    AFFINITY_INFO = 0x8400_0004
    MIGRATE_INFO_TYPE = 0x8400_0006
    SYSTEM_OFF = 0x8400_0008
    SYSTEM_RESET = 0x8400_0009
    FEATURES = 0x8400_000A
    SYSTEM_RESET2 = 0x8400_0012


class PsciRet(IntEnum):
    SUCCESS = 0
    NOT_SUPPORTED = -1
    INVALID_PARAMETERS = -2
    DENIED = -3
    ALREADY_ON = -4
    INTERNAL_FAILURE = -6


SMC64 = 0x4000_0000
MIGRATE_NOT_REQUIRED = 2
RESET_LEGACY = 1 << 63
RESET2_SMC64 = 1 << 62


def _base(fid: int) -> int:
    return fid & ~SMC64


def is_psci(fid: int) -> bool:
    return 0x8400_0000 <= _base(fid) <= 0x8400_001F


def call(hyp, vcpu, fid: int, args: list[int]) -> int:
    """Handle a PSCI call from ``vcpu`` of the EL2 ``hyp``; returns X0."""
    fn = _base(fid)
    hyp.trace(
        "psci", vcpu=vcpu.trace_name, fn=Psci(fn).name if fn in Psci._value2member_map_ else fn
    )
    handlers = {
        Psci.VERSION: lambda: PSCI_VERSION_1_1,
        Psci.CPU_ON: lambda: _cpu_on(vcpu, args[0], args[1], args[2]),
        Psci.CPU_OFF: lambda: _cpu_off(vcpu),
        Psci.CPU_SUSPEND: lambda: _cpu_suspend(vcpu),
        Psci.AFFINITY_INFO: lambda: _affinity_info(vcpu, args[0]),
        Psci.MIGRATE_INFO_TYPE: lambda: MIGRATE_NOT_REQUIRED,
        Psci.SYSTEM_OFF: lambda: _system_off(hyp, vcpu),
        Psci.SYSTEM_RESET: lambda: _system_reset(hyp, vcpu, RESET_LEGACY, 0),
        Psci.SYSTEM_RESET2: lambda: _system_reset(
            hyp, vcpu, (args[0] & 0xFFFF_FFFF) | (RESET2_SMC64 if fid & SMC64 else 0), args[1]
        ),
        Psci.FEATURES: lambda: (
            0
            if is_psci(args[0]) and _base(args[0]) in Psci._value2member_map_
            else PsciRet.NOT_SUPPORTED
        ),
    }
    handler = handlers.get(fn)
    return int(handler()) if handler else int(PsciRet.NOT_SUPPORTED)


def _find(vcpu, mpidr: int):
    aff = (mpidr & 0xFF_FFFF) | (mpidr >> 32 & 0xFF) << 24
    return next((v for v in vcpu.siblings() if v.affinity == aff), None)


def _cpu_on(vcpu, mpidr: int, entry: int, context: int) -> int:
    target = _find(vcpu, mpidr)
    if target is None or target.core is None:  # no core: not activated yet
        return PsciRet.INVALID_PARAMETERS
    if target.powered:
        return PsciRet.ALREADY_ON
    target.power_on(entry, context)
    return PsciRet.SUCCESS


def _cpu_off(vcpu) -> int:
    vcpu.poweroff()
    return PsciRet.SUCCESS


def _cpu_suspend(vcpu) -> int:
    vcpu.waiting = True
    return PsciRet.SUCCESS


def _affinity_info(vcpu, mpidr: int) -> int:
    target = _find(vcpu, mpidr)
    if target is None:
        return PsciRet.INVALID_PARAMETERS
    return 0 if target.powered else 1


def _system_off(hyp, vcpu) -> int:
    for v in vcpu.siblings():
        v.poweroff(exited=True)
    hyp.vm_event(vcpu, "system_off", 0, 0)
    return PsciRet.SUCCESS


def _system_reset(hyp, vcpu, kind: int, cookie: int) -> int:
    for v in vcpu.siblings():
        v.reset_request = (kind, cookie)
        v.kick()
    hyp.vm_event(vcpu, "system_reset", kind, cookie)
    return PsciRet.SUCCESS
