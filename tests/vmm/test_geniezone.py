"""The GenieZone backend (vmm/geniezone.py) on the simulated /dev/gzvm, with real guests.

The host is booted with GenieZone at EL2 (``kernel.boot(hypervisor="geniezone")``).
Single-vCPU tests drive the backend the way the run loop does, in the
test's own thread; the others run the whole VMM (``vmm/vmm.py``) or the CLI.
The pieces that need no /dev/gzvm come first: register ids, the boot
registers, and how each GZVM_RUN exit becomes the interface's.
"""

import errno
import os
import subprocess
import sys

import pytest

from tests.aarch64 import assemble
from tests.holdingcell import (
    HYP_GENIEZONE,
    LOOPBACK,
    MAILBOX,
    OFF,
    READ,
    RESULT,
    STATUS,
    WHO,
    WRITE,
)
from tests.vmm.test_gunyah import Mailbox
from uapi.linux import gzvm as gz
from vmm.devices.virtio_mmio import QUEUE_NOTIFY
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
from vmm.guests import image
from vmm.hypervisor import BootState, MmioRead, MmioWrite, SystemEvent, VcpuError
from vmm.loader import load_image
from vmm.vm_config import MmioDevice, VmLayout
from vmm.vmm import VIRTIO_BASE, Vmm, VmmConfig

RAM, RAM_SIZE, DTB_ROOM = 0x8000_0000, 0x20_0000, 0x1_0000
NOWHERE = 0x4000_0000
SHARED = 0xC000_0000


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


def boot(host, guest: str, devices=(), shared: int = 0):
    """A one-vCPU VM of the bundled ``guest``, ready to run: (hypervisor, vm, vcpu, the
    VMM's view of ``shared`` bytes of shared memory at SHARED, or None)."""
    gz = GenieZone(host)
    vm = gz.create_vm(VmLayout(RAM, RAM_SIZE, 1, devices=list(devices)), guest)
    loaded = load_image(image(guest), RAM, RAM_SIZE - DTB_ROOM, guest)
    dtb_addr = RAM + RAM_SIZE - DTB_ROOM
    contents = [(addr, data) for addr, data, _ in loaded.segments]
    vm.add_memory(RAM, RAM_SIZE, [*contents, (dtb_addr, vm.device_tree())])
    view = vm.add_shared_memory(SHARED, shared) if shared else None
    vm.set_boot_state(BootState(loaded.entry, dtb_addr, DTB_ROOM, {1: 1}))
    vcpu = vm.create_vcpu(0)
    vm.start()
    return gz, vm, vcpu, view


def close(gz, vm):
    vm.close()
    gz.close()


def test_holding_cell_runs_on_geniezone_and_knows_it(gzhost):
    gz, vm, vcpu, shared = boot(gzhost, "holding-cell", shared=0x1_0000)
    shared[0:8] = (0x5EE).to_bytes(8, "little")
    cell = Mailbox(vcpu)
    assert cell.command(WHO)[0] == {RESULT: HYP_GENIEZONE}  # GenieZone's vendor-hyp UID
    assert cell.command(LOOPBACK, 0xFEED_F00D)[0] == {RESULT: 0xFEED_F00D}
    assert cell.command(READ, SHARED)[0] == {RESULT: 0x5EE}  # the guest sees the VMM's write
    assert cell.command(WRITE, SHARED + 8, 77)[0] == {STATUS: 0}
    assert shared[8:16] == (77).to_bytes(8, "little")  # and the VMM the guest's
    last = cell.command(OFF)[2]
    assert last == SystemEvent("exited", "platform_off", reason="system_event")
    close(gz, vm)


def test_an_aborted_mmio_read_returns_zero_on_geniezone(gzhost):
    gz, vm, vcpu, _ = boot(gzhost, "holding-cell")
    cell = Mailbox(vcpu)
    writes, elsewhere, _ = cell.command(READ, NOWHERE)
    assert elsewhere == [MmioRead(NOWHERE, 8, reason="mmio")]
    assert writes == {RESULT: 0}  # no abort to inject: read as zero, and the loop goes on
    close(gz, vm)


def test_request_exit_makes_every_later_run_eintr(gzhost):
    gz, vm, vcpu, _ = boot(gzhost, "holding-cell")
    Mailbox(vcpu)
    vcpu.request_exit()
    for _ in range(2):
        with pytest.raises(OSError) as e:
            vcpu.run()
        assert e.value.errno == errno.EINTR
    close(gz, vm)


def test_more_than_8_vcpus_is_refused_before_any_ioctl(gzhost):
    gz = GenieZone(gzhost)
    with pytest.raises(ValueError, match="GenieZone runs 1 to 8"):
        gz.create_vm(VmLayout(RAM, RAM_SIZE, 9), "t")
    gz.close()


def test_only_a_device_spi_takes_an_irqfd(gzhost):
    devices = [MmioDevice("virtio_mmio", ("virtio,mmio",), 0x0A00_0000, 0x200, 16)]
    gz = GenieZone(gzhost)
    vm = gz.create_vm(VmLayout(RAM, RAM_SIZE, 1, devices=devices), "t")
    efd = gzhost.eventfd()
    vm.irqfd(efd, 16)
    with pytest.raises(ValueError, match="SPI 5 is no device's interrupt"):
        vm.irqfd(efd, 5)
    close(gz, vm)
    gzhost.close(efd)


def test_closing_the_vm_returns_the_fds_and_host_ram(gzhost):
    fds = sorted(gzhost.fdtable.fds())
    free = gzhost.drivers.mm.free_bytes
    gz, vm, vcpu, _ = boot(gzhost, "holding-cell", shared=0x1_0000)
    cell = Mailbox(vcpu)
    assert cell.command(LOOPBACK, 1)[0] == {RESULT: 1}
    efd = gzhost.eventfd()
    vm.ioeventfd(efd, MAILBOX + 0x38, 8, datamatch=1)
    close(gz, vm)
    gzhost.close(efd)
    assert sorted(gzhost.fdtable.fds()) == fds
    assert gzhost.drivers.mm.free_bytes == free  # memslots, vCPU pages, pinned pages: all back
    assert gzhost.mm.pinned == {}


def test_the_vmm_boots_hello_on_4_vcpus(gzhost):
    out = []
    config = VmmConfig(image("hello"), "hello", vcpus=4)
    report = Vmm(gzhost, config, out.append, hypervisor=GenieZone).run()
    text = b"".join(out).decode()
    assert report.clean, report.lines()
    assert "hello: running on GenieZone\n" in text
    assert "hyp_identify" not in text  # Gunyah's call, never made here
    for cpu in range(4):
        assert f"hello from cpu {cpu}, MPIDR 0x8000000{cpu}" in text
    assert report.exits["system_event"] >= 1


def test_the_virtio_console_runs_over_ioeventfd_and_irqfd(gzhost):
    r, w = os.pipe()
    os.write(w, b"ping\n" * 20)
    os.close(w)
    out = []
    try:
        config = VmmConfig(image("virtio-console"), "virtio-console")
        vmm = Vmm(gzhost, config, out.append, r, hypervisor=GenieZone)
        report = vmm.run()
    finally:
        os.close(r)
    assert report.clean, report.lines()
    text = b"".join(out).decode()
    assert text.startswith("virtio-console: running on GenieZone\n")
    assert text.count("ping\n") == 20  # echoed: the irqfd's interrupt reached the guest
    assert report.mmio[VIRTIO_BASE + QUEUE_NOTIFY] == 0  # every notify was an ioeventfd


def test_gunyah_sim_run_hypervisor_geniezone():
    p = subprocess.run(
        [sys.executable, "-m", "vmm.cli", "run", "--hypervisor", "geniezone"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "hello: running on GenieZone" in p.stdout
    assert "hello from cpu 3" in p.stdout
    assert "VM exited: platform_off" in p.stderr


def test_a_hypercall_nobody_serves_stops_the_vm_and_kicks_the_waiting_vcpu(gzhost):
    # vCPU 0 makes a vendor-hyp call neither EL2 nor the driver serves; vCPU 1, never
    # turned on, waits in GZVM_RUN until the VMM's request_exit and signal reach it.
    code = assemble("movz x0, #0x0005\nmovk x0, #0xc600, lsl #16\nhvc #0\nb .")
    config = VmmConfig(code, "raw", vcpus=2)
    report = Vmm(gzhost, config, hypervisor=GenieZone).run()
    assert report.status == "stopped by the VMM"
    assert report.problem == "vCPU 0: guest hypercall 0xc6000005 nobody serves"
    assert report.exits["hypercall"] == 1
