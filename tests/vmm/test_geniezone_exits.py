"""The GenieZone backend's pieces that need no /dev/gzvm: register ids and the boot
registers it sets, and how each GZVM_RUN exit becomes the interface's."""

import errno

import pytest

from uapi.linux import gzvm as gz
from vmm.geniezone import (
    PSTATE_EL1H_DAIF,
    REG_PC,
    REG_PSTATE,
    REG_SP,
    GenieZone,
    boot_registers,
    decode_exit,
    reg_x,
)
from vmm.hypervisor import BootState, MmioRead, MmioWrite, SystemEvent, VcpuError


def test_core_register_ids_are_the_spec_values():
    assert reg_x(0) == 0x6030_0000_0010_0000
    assert reg_x(1) == 0x6030_0000_0010_0002
    assert reg_x(30) == 0x6030_0000_0010_003C
    assert REG_SP == 0x6030_0000_0010_003E
    assert REG_PC == 0x6030_0000_0010_0040
    assert REG_PSTATE == 0x6030_0000_0010_0042


def test_the_boot_vcpu_gets_pstate_pc_the_dtb_in_x0_and_x1_to_x30():
    boot = BootState(0x8000_0000, 0x83FF_0000, 0x1_0000, {2: 7, 1: 4})
    assert boot_registers(boot) == [
        (REG_PSTATE, PSTATE_EL1H_DAIF),
        (REG_PC, 0x8000_0000),
        (reg_x(0), 0x83FF_0000),
        (reg_x(1), 4),
        (reg_x(2), 7),
    ]


def _run(reason: int):
    run = gz.ffi.new("struct gzvm_vcpu_run *")
    run.exit_reason = reason
    return run


def test_mmio_exits_carry_address_size_and_written_value():
    run = _run(gz.GZVM_EXIT_MMIO)
    run.mmio.phys_addr, run.mmio.size, run.mmio.is_write = 0x0900_0000, 1, 1
    run.mmio.data[0:8] = b"A\xff\xff\xff\xff\xff\xff\xff"  # only size bytes count
    assert decode_exit(run) == MmioWrite(0x0900_0000, 1, 0x41, reason="mmio")
    run.mmio.is_write, run.mmio.size = 0, 4
    assert decode_exit(run) == MmioRead(0x0900_0000, 4, reason="mmio")
    run.mmio.size = 3
    assert isinstance(decode_exit(run), VcpuError)


def test_system_events_shutdown_reset_and_crash_end_the_vm():
    run = _run(gz.GZVM_EXIT_SYSTEM_EVENT)
    run.system_event.type = gz.GZVM_SYSTEM_EVENT_SHUTDOWN
    assert decode_exit(run) == SystemEvent("exited", "platform_off", reason="system_event")
    run.system_event.type, run.system_event.ndata = gz.GZVM_SYSTEM_EVENT_RESET, 1
    run.system_event.data[0] = 0x1234
    assert decode_exit(run) == SystemEvent(
        "exited", "platform_reset", (0x1234).to_bytes(8, "little"), reason="system_event"
    )
    run.system_event.type, run.system_event.ndata = gz.GZVM_SYSTEM_EVENT_CRASH, 99
    assert decode_exit(run).detail == (0x1234).to_bytes(8, "little") + bytes(8 * 15)
    run.system_event.type = gz.GZVM_SYSTEM_EVENT_SUSPEND
    assert decode_exit(run) == VcpuError("system event 5", reason="system_event")


@pytest.mark.parametrize(
    ("reason", "name"),
    [
        (gz.GZVM_EXIT_EXCEPTION, "exception"),
        (gz.GZVM_EXIT_HYPERCALL, "hypercall"),
        (gz.GZVM_EXIT_INTERNAL_ERROR, "internal_error"),
        (gz.GZVM_EXIT_FAIL_ENTRY, "fail_entry"),
        (gz.GZVM_EXIT_SHUTDOWN, "shutdown"),
        (gz.GZVM_EXIT_IRQ, "irq"),
        (gz.GZVM_EXIT_DEBUG, "debug"),
        (gz.GZVM_EXIT_UNKNOWN, "unknown"),
        (0x1234, "0x1234"),
    ],
)
def test_every_other_exit_is_a_vcpu_error_named_after_it(reason, name):
    run = _run(reason)
    run.exception.fault_gpa = 0x4000_0000
    run.hypercall.args[0] = 0xC600_0009
    got = decode_exit(run)
    assert isinstance(got, VcpuError) and got.reason == name


def test_a_host_without_dev_gzvm_says_enoent(host):
    with pytest.raises(OSError) as e:
        GenieZone(host)  # a Gunyah host
    assert e.value.errno == errno.ENOENT
