"""The sample VMM's run loop: over a scripted hypervisor backend (on the running kernel's
eventfds, no ioctl), and on the simulated host, where a refused START is a clean OSError
and nothing is left."""

import errno
import threading

import pytest

import kernel
from tests.robustness.leaks import holdings, leaked
from vmm.devices.pl011 import FR_RXFE, FR_TXFE
from vmm.devices.virtio_mmio import QUEUE_NOTIFY
from vmm.guests import image
from vmm.host import LinuxHost
from vmm.hypervisor import (
    BootState,
    Hypervisor,
    MmioRead,
    MmioWrite,
    SystemEvent,
    Vcpu,
    VcpuError,
    Vm,
)
from vmm.loader import load_image
from vmm.vmm import (
    DTB_ROOM,
    SHARED_BASE,
    SHARED_SIZE,
    UART_BASE,
    VIRTIO_BASE,
    VIRTIO_SPI,
    Vmm,
    VmmConfig,
)


def test_a_refused_start_unwinds_everything():
    host = kernel.boot(rm_policy="retail", dram_size=1 << 30)  # no unprotected VMs
    try:
        before = holdings(host)
        with pytest.raises(OSError) as e:
            Vmm(host, VmmConfig(image("hello"), "hello", vcpus=2)).run()
        assert e.value.errno == errno.ENODEV
        host.eventfd_wq.quiesce()
        left = leaked(before, holdings(host))
        assert left == {}
        assert host.bugs == []
    finally:
        host.shutdown()


class Scripted(Hypervisor):
    """A hypervisor whose vCPUs replay scripted exits; it records what the run loop asks of it.

    A script item is an exit to return, or BLOCK: run until request_exit, then EINTR.
    """

    def __init__(self, host, scripts):
        self.scripts, self.calls, self.vcpus = scripts, [], []

    def create_vm(self, layout, name):
        self.calls.append(("create_vm", len(layout.devices), layout.vcpus, name))
        return ScriptedVm(self)

    def close(self):
        self.calls.append(("close hypervisor",))


class ScriptedVm(Vm):
    def __init__(self, hyp):
        self.hyp, self.calls = hyp, hyp.calls

    def device_tree(self):
        return b"DTB"

    def add_memory(self, ipa, size, contents=()):
        self.calls.append(("add_memory", ipa, size, list(contents)[-1]))

    def add_shared_memory(self, ipa, size):
        self.calls.append(("add_shared_memory", ipa, size))
        return bytearray(size)

    def set_boot_state(self, boot):
        self.calls.append(("set_boot_state", boot))

    def create_vcpu(self, index):
        vcpu = ScriptedVcpu(index, list(self.hyp.scripts[index]))
        self.hyp.vcpus.append(vcpu)
        return vcpu

    def irqfd(self, efd, spi):
        self.calls.append(("irqfd", spi))

    def ioeventfd(self, efd, addr, size, datamatch=None):
        self.calls.append(("ioeventfd", addr, size, datamatch))

    def start(self):
        self.calls.append(("start",))

    def close(self):
        self.calls.append(("close vm",))


BLOCK = object()


class ScriptedVcpu(Vcpu):
    def __init__(self, index, script):
        self.index, self.script, self.answers = index, script, []
        self.exit_requested = threading.Event()

    def run(self):
        if self.exit_requested.is_set():
            raise OSError(errno.EINTR, "immediate exit")
        step = self.script.pop(0)
        if step is BLOCK:
            assert self.exit_requested.wait(30)
            raise OSError(errno.EINTR, "interrupted")
        return step

    def set_mmio_data(self, value):
        self.answers.append(value)

    def abort_mmio(self):
        self.answers.append("abort")

    def request_exit(self):
        self.exit_requested.set()


def run_scripted(*scripts):
    out, hyp = [], []

    def backend(host):
        hyp.append(Scripted(host, scripts))
        return hyp[0]

    config = VmmConfig(image("hello"), "hello", vcpus=len(scripts), mem=1 << 20)
    report = Vmm(LinuxHost(), config, out.append, hypervisor=backend).run()
    return report, hyp[0], b"".join(out)


def test_the_run_loop_serves_exits_with_its_devices_and_no_ioctl():
    fr = UART_BASE + 0x18
    report, hyp, out = run_scripted(
        [
            MmioWrite(UART_BASE, 1, ord("h"), reason="mmio"),
            MmioWrite(UART_BASE, 1, ord("i"), reason="mmio"),
            MmioRead(fr, 4, reason="mmio"),
            MmioRead(0x4000_0000, 4, reason="mmio"),  # no device there
            SystemEvent("exited", "platform_off", b"\0\0", reason="off"),
        ]
    )
    assert out == b"hi"
    assert hyp.vcpus[0].answers == [FR_TXFE | FR_RXFE, "abort"]
    assert report.clean and report.lines()[0] == "VM exited: platform_off (reason 0000)"
    assert report.exits == {"mmio": 4, "off": 1}
    assert report.mmio == {UART_BASE: 2, fr: 1, 0x4000_0000: 1}
    dtb_addr = 0x8000_0000 + (1 << 20) - DTB_ROOM
    entry = load_image(image("hello"), 0x8000_0000, 1 << 20).entry
    notify = VIRTIO_BASE + QUEUE_NOTIFY
    assert hyp.calls == [
        ("create_vm", 2, 1, "hello"),
        ("add_memory", 0x8000_0000, 1 << 20, (dtb_addr, b"DTB")),
        ("add_shared_memory", SHARED_BASE, SHARED_SIZE),
        ("set_boot_state", BootState(entry, dtb_addr, DTB_ROOM, {1: 1})),
        ("irqfd", VIRTIO_SPI),
        ("ioeventfd", notify, 4, None),  # one for every queue (GenieZone takes one per address)
        ("start",),
        ("close vm",),
        ("close hypervisor",),
    ]


def test_a_vcpu_that_cannot_go_on_stops_the_others():
    report, hyp, _ = run_scripted([BLOCK], [VcpuError("stuck", reason="page_fault")])
    assert report.problem == "vCPU 1: stuck"
    assert report.status == "stopped by the VMM" and not report.clean
    assert report.exits == {"page_fault": 1}
    assert all(vcpu.exit_requested.is_set() for vcpu in hyp.vcpus)


def test_an_interrupt_before_the_vcpus_run_stops_them_at_once_and_unwinds_everything():
    host = kernel.boot(dram_size=1 << 30)
    try:
        before = holdings(host)
        vmm = Vmm(host, VmmConfig(image("virtio-console"), "virtio-console", vcpus=2))
        vmm.interrupt("interrupted")  # the guest would otherwise wait for input for ever
        report = vmm.run()
        assert (report.status, report.problem) == ("stopped by the VMM", "interrupted")
        host.eventfd_wq.quiesce()
        assert leaked(before, holdings(host)) == {}
    finally:
        host.shutdown()
