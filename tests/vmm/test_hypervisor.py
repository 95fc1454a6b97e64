"""The hypervisor interface (vmm/hypervisor.py): its methods, its exit types, its boot state."""

import dataclasses

import pytest

from vmm.hypervisor import (
    BootState,
    Exit,
    Hypervisor,
    MmioRead,
    MmioWrite,
    SystemEvent,
    Vcpu,
    VcpuError,
    Vm,
)


def test_the_interface_a_backend_implements():
    assert Hypervisor.__abstractmethods__ == {"create_vm", "close"}
    assert Vm.__abstractmethods__ == {
        "device_tree",
        "add_memory",
        "add_shared_memory",
        "set_boot_state",
        "create_vcpu",
        "irqfd",
        "ioeventfd",
        "start",
        "close",
    }
    assert Vcpu.__abstractmethods__ == {"run", "set_mmio_data", "abort_mmio", "request_exit"}


def test_a_backend_missing_a_method_cannot_be_made():
    class Half(Vcpu):
        def run(self):
            return VcpuError("never", reason="none")

    with pytest.raises(TypeError, match="abort_mmio"):
        Half()


def test_leaving_a_vm_or_hypervisor_closes_it_even_on_an_error():
    closed = []

    class Device(Hypervisor):
        def create_vm(self, layout, name):
            raise NotImplementedError

        def close(self):
            closed.append(self)

    device = Device()
    with pytest.raises(RuntimeError), device as entered:
        assert entered is device
        raise RuntimeError
    assert closed == [device]


def test_every_exit_names_the_hypervisors_reason_by_keyword():
    read = MmioRead(0x0900_0018, 4, reason="mmio")
    assert (read.addr, read.size, read.reason) == (0x0900_0018, 4, "mmio")
    assert MmioWrite(0x0900_0000, 1, 0x41, reason="mmio").value == 0x41
    down = SystemEvent("exited", "platform_off", reason="status")
    assert (down.status, down.exit_type, down.detail) == ("exited", "platform_off", b"")
    assert VcpuError("stuck", reason="page_fault").problem == "stuck"
    for cls in (MmioRead, MmioWrite, SystemEvent, VcpuError):
        assert issubclass(cls, Exit)
        reason = next(f for f in dataclasses.fields(cls) if f.name == "reason")
        assert reason.kw_only and reason.default is dataclasses.MISSING
    with pytest.raises(TypeError):
        MmioRead(0x0900_0000, 4)  # no reason


def test_exits_are_values():
    assert MmioRead(0x1000, 4, reason="mmio") == MmioRead(0x1000, 4, reason="mmio")
    assert MmioRead(0x1000, 4, reason="mmio") != MmioWrite(0x1000, 4, 0, reason="mmio")
    with pytest.raises(dataclasses.FrozenInstanceError):
        MmioRead(0x1000, 4, reason="mmio").addr = 0


def test_boot_state_sets_x1_to_x30_and_leaves_x0_to_the_dtb():
    boot = BootState(0x8000_0000, 0x83FF_0000, 0x1_0000, {1: 4, 30: 7})
    assert (boot.pc, boot.dtb_addr, boot.dtb_size, dict(boot.x)) == (
        0x8000_0000,
        0x83FF_0000,
        0x1_0000,
        {1: 4, 30: 7},
    )
    assert BootState(0, 0, 0).x == {}
    for index in (0, 31, -1):
        with pytest.raises(ValueError, match=f"X{index}: boot state sets X1 to X30"):
            BootState(0x8000_0000, 0x83FF_0000, 0x1_0000, {index: 1})
