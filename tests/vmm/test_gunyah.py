"""The Gunyah backend (vmm/gunyah.py) on the simulated /dev/gunyah, with real guests.

Each test drives the backend the way the run loop does, one vCPU in the
test's own thread, and checks the interface's exits against what the
guest does.
"""

import errno

import fdt
import pytest

from tests.holdingcell import LOOPBACK, MAILBOX, OFF, READ, RESULT, STATUS
from tests.robustness.leaks import holdings, leaked
from vmm.devices.pl011 import SIZE as PL011_SIZE
from vmm.devices.pl011 import Pl011
from vmm.guests import image
from vmm.gunyah import Gunyah
from vmm.hypervisor import BootState, MmioRead, MmioWrite, SystemEvent
from vmm.loader import load_image
from vmm.vm_config import MmioDevice, VmLayout

RAM, RAM_SIZE, DTB_ROOM = 0x8000_0000, 0x20_0000, 0x1_0000
UART = 0x0900_0000
NOWHERE = 0x4000_0000
SHARED = 0xC000_0000


def boot(host, guest: str, devices=(), shared: int = 0):
    """A started one-vCPU VM of the bundled ``guest``, with ``shared`` bytes of shared memory
    at SHARED: (hypervisor, vm, vcpu, the VMM's view of the shared memory or None)."""
    gunyah = Gunyah(host)
    vm = gunyah.create_vm(VmLayout(RAM, RAM_SIZE, 1, devices=list(devices)), guest)
    loaded = load_image(image(guest), RAM, RAM_SIZE - DTB_ROOM, guest)
    dtb_addr = RAM + RAM_SIZE - DTB_ROOM
    contents = [(addr, data) for addr, data, _ in loaded.segments]
    vm.add_memory(RAM, RAM_SIZE, [*contents, (dtb_addr, vm.device_tree())])
    view = vm.add_shared_memory(SHARED, shared) if shared else None
    vm.set_boot_state(BootState(loaded.entry, dtb_addr, DTB_ROOM, {1: 1}))
    vcpu = vm.create_vcpu(0)
    vm.start()
    return gunyah, vm, vcpu, view


def close(gunyah, vm):
    vm.close()
    gunyah.close()


def test_hello_prints_through_mmio_exits_and_powers_off(host):
    out = []
    uart = Pl011(out.append)
    gunyah, vm, vcpu, _ = boot(host, "hello", [MmioDevice("pl011", ("arm,pl011",), UART, 0x1000)])
    reasons = set()
    while True:
        done = vcpu.run()
        reasons.add(done.reason)
        if isinstance(done, SystemEvent):
            break
        assert UART <= done.addr < UART + PL011_SIZE, done
        if isinstance(done, MmioWrite):
            uart.mmio_write(done.addr - UART, done.size, done.value)
        else:
            vcpu.set_mmio_data(uart.mmio_read(done.addr - UART, done.size))
    assert done == SystemEvent("exited", "platform_off", bytes(4), reason="status")
    assert reasons == {"mmio", "status"}
    text = b"".join(out).decode()
    assert "hello: running on Gunyah\nhello: hyp_identify: API 1, variant 0x48\n" in text
    assert "hello from cpu 0, MPIDR 0x80000000" in text
    close(gunyah, vm)


class Mailbox:
    """The holding-cell guest's mailbox, served through the backend's exits."""

    def __init__(self, vcpu):
        self.vcpu = vcpu
        assert vcpu.run() == MmioRead(MAILBOX, 8, reason="mmio")  # it waits for a command

    def command(self, *words: int):
        """Answer the command's three reads; then the writes it made, by offset, and the
        exits elsewhere, up to its next read of the command word (or the VM's end)."""
        for word in (*words, 0, 0)[:3]:
            self.vcpu.set_mmio_data(word)
            last = self.vcpu.run()
        writes, elsewhere = {}, []
        for _ in range(64):
            if last == MmioRead(MAILBOX, 8, reason="mmio") or isinstance(last, SystemEvent):
                return writes, elsewhere, last
            if isinstance(last, MmioWrite) and MAILBOX <= last.addr < MAILBOX + 0x40:
                writes[last.addr - MAILBOX] = last.value
            else:
                elsewhere.append(last)
                self.vcpu.abort_mmio()
            last = self.vcpu.run()
        raise AssertionError("the guest never came back to its mailbox")


def test_mmio_answers_and_aborts_reach_the_guest(host):
    gunyah, vm, vcpu, _ = boot(host, "holding-cell")
    cell = Mailbox(vcpu)
    writes, elsewhere, _ = cell.command(LOOPBACK, 0xFEED_F00D)
    assert (writes, elsewhere) == ({RESULT: 0xFEED_F00D}, [])
    writes, elsewhere, _ = cell.command(READ, NOWHERE)
    assert elsewhere == [MmioRead(NOWHERE, 8, reason="mmio")]
    assert writes[STATUS] == 3  # the guest took a synchronous exception
    writes, elsewhere, last = cell.command(OFF)
    assert last == SystemEvent("exited", "platform_off", bytes(4), reason="status")
    close(gunyah, vm)


def test_request_exit_makes_every_later_run_eintr(host):
    gunyah, vm, vcpu, _ = boot(host, "holding-cell")
    Mailbox(vcpu)
    vcpu.request_exit()
    for _ in range(2):
        with pytest.raises(OSError) as e:
            vcpu.run()
        assert e.value.errno == errno.EINTR
    close(gunyah, vm)


def test_each_device_interrupt_gets_a_doorbell_and_only_those_take_an_irqfd(host):
    devices = [
        MmioDevice("pl011", ("arm,pl011",), UART, 0x1000),
        MmioDevice("virtio_mmio", ("virtio,mmio",), 0x0A00_0000, 0x200, 16),
        MmioDevice("virtio_mmio", ("virtio,mmio",), 0x0A00_0200, 0x200, 17),
    ]
    gunyah = Gunyah(host)
    vm = gunyah.create_vm(VmLayout(RAM, RAM_SIZE, 1, devices=devices), "t")
    tree = fdt.parse_dtb(vm.device_tree())
    bells = tree.get_node("/gunyah-vm-config/vdevices")
    for label, spi in ((1, 16), (2, 17)):
        bell = bells.get_subnode(f"bell-{label}")
        assert bell.get_property("label").value == label
        assert list(bell.get_property("interrupts")) == [0, spi, 1]
    efd = host.eventfd()
    vm.irqfd(efd, 17)
    with pytest.raises(ValueError, match="SPI 5 is no device's interrupt"):
        vm.irqfd(efd, 5)
    host.close(efd)
    close(gunyah, vm)


def test_memory_contents_must_lie_in_the_range(host):
    gunyah = Gunyah(host)
    vm = gunyah.create_vm(VmLayout(RAM, RAM_SIZE, 1), "t")
    with pytest.raises(ValueError, match="outside"):
        vm.add_memory(RAM, 0x1000, [(RAM + 0xFFF, b"ab")])
    close(gunyah, vm)


def test_closing_the_vm_returns_everything(host):
    before = holdings(host)
    gunyah, vm, vcpu, shared = boot(host, "holding-cell", shared=0x1_0000)
    shared[0:8] = (0x5EE).to_bytes(8, "little")
    cell = Mailbox(vcpu)
    assert cell.command(READ, SHARED)[0] == {RESULT: 0x5EE}  # the guest sees the VMM's write
    efd = host.eventfd()
    vm.ioeventfd(efd, MAILBOX + 0x38, 8, datamatch=1)
    close(gunyah, vm)
    host.close(efd)
    host.eventfd_wq.quiesce()
    assert leaked(before, holdings(host)) == {}
