"""The hypercall conduit to GenieZone (arch/arm64/geniezone/hvc.c, gzvm_arch_common.h).

Every call is ``hvc #0`` with the SMCCC fast-call id 0xFB001000 + function
(SMC64, owner 59: the numbering of LKML v11+ and the ACK), x1..x7 the
arguments; x0 comes back as a signed GenieZone status and x1..x3 as
results. ``gzvm_hypcall_wrapper`` is the only caller of the firmware; it
is error-injectable by function name (``faults["MAP_GUEST"] = -8`` makes
that call answer ERR_INVALID_ARGS without reaching EL2), the shape of the
kernel's fail_function on it.
"""

from __future__ import annotations

from enum import IntEnum

MASK64 = (1 << 64) - 1
SMC_ENTITY_MTK = 59
ARM_SMCCC_FAST_CALL, ARM_SMCCC_SMC_64 = 1 << 31, 1 << 30
GZVM_HCALL_BASE = 0x1000


class GzvmFunc(IntEnum):
    """``enum gzvm_func``: the function numbers of spec §2 (v13/ACK)."""

    CREATE_VM = 0
    DESTROY_VM = 1
    CREATE_VCPU = 2
    DESTROY_VCPU = 3
    SET_MEMREGION = 4
    RUN = 5
    GET_ONE_REG = 8
    SET_ONE_REG = 9
    IRQ_LINE = 10
    CREATE_DEVICE = 11
    PROBE = 12
    ENABLE_CAP = 13
    INFORM_EXIT = 14
    MEMREGION_PURPOSE = 15
    SET_DTB_CONFIG = 16
    MAP_GUEST = 17
    MAP_GUEST_BLOCK = 18
    GET_STATISTICS = 19


def gzvm_hfn_id(func: GzvmFunc) -> int:
    """The SMCCC function id of ``func``: 0xFB001000 + func."""
    return ARM_SMCCC_FAST_CALL | ARM_SMCCC_SMC_64 | SMC_ENTITY_MTK << 24 | GZVM_HCALL_BASE + func


def _signed(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


class GzvmHypercall:
    """The host's conduit to EL2, bound to one machine's firmware."""

    def __init__(self, firmware):
        self.firmware = firmware
        self.faults: dict = {}  # function name -> GenieZone status to answer instead

    def gzvm_hypcall_wrapper(self, func: GzvmFunc, *args: int) -> tuple[int, int, int, int]:
        """(status, x1, x2, x3) of one hypercall; ``status`` is the signed x0."""
        fault = self.faults.get(func.name)
        if fault is not None:
            return fault, 0, 0, 0
        regs = [gzvm_hfn_id(func)] + [a & MASK64 for a in args]
        out = self.firmware.hvc(regs + [0] * (8 - len(regs)))
        out = list(out) + [0] * (4 - len(out))
        return _signed(out[0]), out[1], out[2], out[3]
