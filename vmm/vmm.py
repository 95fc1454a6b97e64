"""The sample VMM's run loop: one VM on any Host, its vCPU threads, its devices, its exits.

:class:`Vmm` is written once against the hypervisor interface
(``vmm/hypervisor.py``); the backend (Gunyah by default, ``vmm/gunyah.py``;
GenieZone, ``vmm/geniezone.py``) is the only part that knows a driver's
ioctls. The VMM describes the machine (RAM, vCPUs, a PL011 and a
virtio-mmio console, the shared window of the virtqueues; the holding-cell
guest's mailbox, which scripts that guest, is on its bus too), loads the image
and the backend's DTB (at the end of RAM) into guest-private memory, sets
the boot state (PC = the image's entry, X0 = the DTB, X1 = the number of
vCPUs), binds the console's irqfd and its QueueNotify ioeventfd, creates
the vCPUs, starts the VM and runs one thread per vCPU. Every exit is
handled in :meth:`Vmm.handle_exit`; MMIO goes to the device mapped at its
address. The run ends when the VM is down (or a vCPU
cannot go on: then the others are kicked with
:meth:`~vmm.hypervisor.Vcpu.request_exit` and a signal), and everything is
closed in reverse order of creation.
"""

from __future__ import annotations

import collections
import errno
import select
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from vmm.devices import mailbox, virtio_mmio
from vmm.devices.pl011 import SIZE as PL011_SIZE
from vmm.devices.pl011 import Pl011
from vmm.devices.virtio_console import VirtioConsole
from vmm.devices.virtio_mmio import GuestMemory, VirtioMmio
from vmm.geniezone import GenieZone
from vmm.gunyah import Gunyah
from vmm.host import Host
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
from vmm.loader import ImageError, is_arm64_image, load_image
from vmm.vm_config import TIMER_PPIS, MmioDevice, SharedWindow, VmLayout

RAM_BASE = 0x8000_0000
UART_BASE = 0x0900_0000
VIRTIO_BASE, VIRTIO_SPI = 0x0A00_0000, 16
UART_SPI = 17  # a Linux VM's: its PL011 driver sends through the TX interrupt
MAILBOX_BASE = 0x0B00_0000  # the holding-cell guest's; in no DT (the guest knows it)
# The virtqueues and their buffers: below RAM, so no size of RAM reaches the window.
SHARED_BASE, SHARED_SIZE = 0x7000_0000, 0x1_0000
DTB_ROOM = 0x1_0000  # the DTB and the RM's overlay, at the end of RAM
# A Linux VM's timer node names the virtual timer's PPI: Linux at EL1 then takes
# CNTV_*, which the hypervisor emulates on its virtual clock.
LINUX_TIMER_PPIS = TIMER_PPIS
APB_CLOCK = 24_000_000
KICK_SIGNAL = signal.SIGUSR1
# How long the main thread waits on a vCPU thread before it looks again: a signal for
# the main thread's handler (Ctrl-C) may be delivered to another thread, which does
# not wake a blocked join.
JOIN_POLL = 0.1


@dataclass
class VmmConfig:
    """A VM: its image (an arm64 Linux ``Image`` makes it a Linux VM: see :func:`layout`),
    vCPUs, RAM, command line and, for Linux, an initramfs."""

    image: bytes
    name: str = "image"
    vcpus: int = 1
    mem: int = 64 << 20
    cmdline: str = ""
    initrd: bytes = b""

    @property
    def linux(self) -> bool:
        return is_arm64_image(self.image)


@dataclass
class Report:
    status: str = "running"
    exit_type: str = ""
    exit_reason: bytes = b""
    vcpus: int = 0
    exits: collections.Counter = field(default_factory=collections.Counter)
    mmio: collections.Counter = field(default_factory=collections.Counter)  # exits by address
    seconds: float = 0.0
    problem: str = ""

    @property
    def clean(self) -> bool:
        return self.status == "exited" and self.exit_type == "platform_off" and not self.problem

    def lines(self) -> list[str]:
        exits = ", ".join(f"{n} {k}" for k, n in sorted(self.exits.items())) or "none"
        out = [
            f"VM {self.status}: {self.exit_type or '-'}"
            + (f" (reason {self.exit_reason.hex()})" if self.exit_reason else ""),
            f"vCPUs {self.vcpus}, exits: {exits}, run time {self.seconds * 1000:.1f} ms",
        ]
        if self.problem:
            out.append(f"problem: {self.problem}")
        return out


def layout(config: VmmConfig) -> VmLayout:
    """The machine the VMM gives a VM of ``config``: RAM, vCPUs, the PL011 and the
    virtio-mmio console, the shared window of the virtqueues. A Linux VM's PL011
    also has an interrupt and its clocks, and the DT a timer and the initramfs."""
    linux = config.linux
    uart_spi = UART_SPI if linux else None
    uart = MmioDevice("pl011", ("arm,pl011", "arm,primecell"), UART_BASE, PL011_SIZE, uart_spi)
    virtio = MmioDevice("virtio_mmio", ("virtio,mmio",), VIRTIO_BASE, virtio_mmio.SIZE, VIRTIO_SPI)
    machine = VmLayout(
        RAM_BASE,
        config.mem,
        config.vcpus,
        config.cmdline,
        devices=[uart, virtio],
        stdout=f"/pl011@{UART_BASE:x}",
        shared=SharedWindow(SHARED_BASE, SHARED_SIZE, "virtio_mmio"),
    )
    if linux:
        machine.timer_ppis, machine.apb_clock = LINUX_TIMER_PPIS, APB_CLOCK
        if config.initrd:
            start = initrd_addr(config)
            machine.initrd = (start, start + len(config.initrd))
    return machine


def initrd_addr(config: VmmConfig) -> int:
    """Where the initramfs goes: page aligned, as high as it fits below the DTB's room."""
    return (RAM_BASE + config.mem - DTB_ROOM - len(config.initrd)) & ~0xFFF


def device_tree(config: VmmConfig, hypervisor: type[Gunyah] | type[GenieZone]) -> bytes:
    """The DTB :meth:`Vmm.run` loads for ``config`` on backend ``hypervisor``, for a VMM
    that builds the VM itself (``gunyah-sim dtb``): it goes in the last
    :data:`DTB_ROOM` bytes of RAM, with that room as its size.

    ValueError: the DT is too large for its room, or the backend refuses the layout.
    """
    return _fitting(hypervisor.device_tree(layout(config), config.name))


def _fitting(dtb: bytes) -> bytes:
    """``dtb``, if it leaves the RM half of :data:`DTB_ROOM` for its overlay (else ValueError)."""
    if len(dtb) > DTB_ROOM // 2:
        raise ValueError(f"the VM config DT is {len(dtb)} bytes, over {DTB_ROOM // 2}")
    return dtb


class Vmm:
    """One VM of ``config`` on ``host``, through the backend ``hypervisor`` makes from the host.

    ``console`` takes every byte the guest writes to the PL011 or the
    virtio console; ``input_fd`` (polled) feeds the virtio console.
    """

    def __init__(
        self,
        host,
        config: VmmConfig,
        console=None,
        input_fd: int | None = None,
        hypervisor: Callable[[Host], Hypervisor] = Gunyah,
    ):
        self.host, self.config, self.input_fd = host, config, input_fd
        self.hypervisor = hypervisor
        console = console or (lambda data: None)
        self.uart = Pl011(console, self._uart_interrupt)
        self.memory = GuestMemory()
        self.virtio_console = VirtioConsole(console)
        self.virtio = VirtioMmio(self.virtio_console, self.memory, self._virtio_interrupt)
        self.virtio_console.transport = self.virtio
        self.bus = {
            UART_BASE: (PL011_SIZE, self.uart),
            VIRTIO_BASE: (virtio_mmio.SIZE, self.virtio),
            MAILBOX_BASE: (mailbox.SIZE, mailbox.Mailbox(console)),
        }
        self._irqfd: int | None = None
        self._uart_irqfd: int | None = None
        self.report = Report(vcpus=config.vcpus)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._vcpus: list[Vcpu] = []
        self._stopping = False
        self._interrupted = ""  # why, once interrupt() is called
        self._joining = False  # the main thread only waits for the vCPU threads

    # building the VM
    def layout(self) -> VmLayout:
        return layout(self.config)

    def run(self) -> Report:
        """Build, start and run the VM until it stops; the report says how it ended.

        ValueError: the image does not fit, or the DT is too large for its
        room. OSError: what the hypervisor's driver refused, after every
        resource is released.
        """
        cfg = self.config
        image = load_image(cfg.image, RAM_BASE, cfg.mem - DTB_ROOM, cfg.name)
        contents = [(addr, data) for addr, data, _ in image.segments]
        boot_regs = {} if cfg.linux else {1: cfg.vcpus}  # Linux: X1-X3 are 0
        if cfg.initrd:
            if not cfg.linux:
                raise ImageError(f"{cfg.name}: an initramfs is for a Linux Image only")
            if initrd_addr(cfg) < image.end:
                raise ImageError(f"{cfg.name}: the kernel and initramfs do not fit (more --mem?)")
            contents.append((initrd_addr(cfg), cfg.initrd))
        with ExitStack() as stack:
            hypervisor = stack.enter_context(self.hypervisor(self.host))
            vm = stack.enter_context(hypervisor.create_vm(self.layout(), cfg.name))
            dtb = _fitting(vm.device_tree())
            dtb_addr = RAM_BASE + cfg.mem - DTB_ROOM
            vm.add_memory(RAM_BASE, cfg.mem, [*contents, (dtb_addr, dtb)])
            shared = vm.add_shared_memory(SHARED_BASE, SHARED_SIZE)
            self.memory.windows.append((SHARED_BASE, shared))
            stack.callback(self.memory.windows.clear)  # no use of the view once the Vm closes
            vm.set_boot_state(BootState(image.entry, dtb_addr, DTB_ROOM, boot_regs))
            notify = self._virtio_eventfds(stack, vm)
            if cfg.linux:
                self._uart_irqfd = self._bind_irqfd(stack, vm, UART_SPI)
            self._vcpus = [vm.create_vcpu(i) for i in range(cfg.vcpus)]
            stack.callback(self._vcpus.clear)
            self._event_loop(stack, notify)
            start = time.perf_counter()
            vm.start()
            self._run_vcpus()
            self.report.seconds = time.perf_counter() - start
        return self.report

    def _virtio_eventfds(self, stack: ExitStack, vm: Vm) -> int:
        """An irqfd for the device's interrupt, one ioeventfd for QueueNotify (any value).

        One, not one per queue with DATAMATCH: GenieZone's driver refuses a
        second ioeventfd at an address (EEXIST, whatever its datamatch), so
        a notify runs every queue, and each finds its work in its rings.
        """
        host = self.host
        self._irqfd = host.eventfd()
        stack.callback(host.close, self._irqfd)
        vm.irqfd(self._irqfd, VIRTIO_SPI)
        notify = host.eventfd()
        stack.callback(host.close, notify)
        vm.ioeventfd(notify, VIRTIO_BASE + virtio_mmio.QUEUE_NOTIFY, 4)
        return notify

    def _bind_irqfd(self, stack: ExitStack, vm: Vm, spi: int) -> int:
        efd = self.host.eventfd()
        stack.callback(self.host.close, efd)
        vm.irqfd(efd, spi)
        return efd

    def _uart_interrupt(self) -> None:
        if self._uart_irqfd is not None:
            self.host.write(self._uart_irqfd, (1).to_bytes(8, "little"))

    def _virtio_interrupt(self) -> None:
        if self._irqfd is not None:
            self.host.write(self._irqfd, (1).to_bytes(8, "little"))

    def _event_loop(self, stack: ExitStack, notify: int) -> None:
        """One thread polls every eventfd (and the input) until the run is over."""
        host = self.host
        stop = host.eventfd()
        stack.callback(host.close, stop)
        thread = threading.Thread(target=self._poll, args=(notify, stop), name="vmm-events")
        thread.start()
        stack.callback(thread.join)
        stack.callback(host.write, stop, (1).to_bytes(8, "little"))

    def _poll(self, notify: int, stop: int) -> None:
        host, watch = self.host, [notify, stop]
        if self.input_fd is not None:
            watch.append(self.input_fd)
        while True:
            for fd, _ in host.poll([(fd, select.POLLIN) for fd in watch]):
                if fd == stop:
                    return
                if fd == self.input_fd:
                    data = host.read(fd, 4096)
                    self.virtio_console.feed(data or b"\x04")  # end of input: a Ctrl-D
                    if not data:
                        watch.remove(fd)
                else:
                    host.read(fd, 8)
                    for index in range(self.virtio_console.num_queues):
                        self.virtio.notify(index)

    # running
    def _run_vcpus(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(KICK_SIGNAL, lambda *_: None)  # a kick only interrupts a run
        self._threads = [
            threading.Thread(target=self._vcpu_thread, args=(vcpu,), name=f"vcpu{vcpu.index}")
            for vcpu in self._vcpus
        ]
        for t in self._threads:
            t.start()
        self._joining = True
        if self._interrupted:  # before the vCPUs ran
            self.stop(self._interrupted)
        for t in self._threads:
            while t.is_alive():
                t.join(JOIN_POLL)

    def _vcpu_thread(self, vcpu: Vcpu) -> None:
        while not self._stopping:
            try:
                vcpu_exit = vcpu.run()
            except OSError as e:
                if e.errno != errno.EINTR:
                    self.stop(f"vCPU {vcpu.index}: run: {e}")
                continue
            with self._lock:
                self.report.exits[vcpu_exit.reason] += 1
            if self.handle_exit(vcpu, vcpu_exit):
                return

    def handle_exit(self, vcpu: Vcpu, vcpu_exit: Exit) -> bool:
        """Every exit of every vCPU, in one place. True: this vCPU is done."""
        match vcpu_exit:
            case MmioRead() | MmioWrite():
                self._mmio(vcpu, vcpu_exit)
                return False
            case SystemEvent():
                with self._lock:
                    self.report.status = vcpu_exit.status
                    self.report.exit_type = vcpu_exit.exit_type
                    self.report.exit_reason = vcpu_exit.detail
                return True
            case VcpuError():
                self.stop(f"vCPU {vcpu.index}: {vcpu_exit.problem}")
                return True
        raise TypeError(f"not an exit of the hypervisor interface: {vcpu_exit!r}")

    def _mmio(self, vcpu: Vcpu, access: MmioRead | MmioWrite) -> None:
        with self._lock:
            self.report.mmio[access.addr] += 1
        found = self._device_at(access.addr)
        if found is None:
            vcpu.abort_mmio()  # nothing there: an abort
            return
        base, device = found
        if isinstance(access, MmioWrite):
            device.mmio_write(access.addr - base, access.size, access.value)
        else:
            vcpu.set_mmio_data(device.mmio_read(access.addr - base, access.size))

    def _device_at(self, addr: int):
        for base, (length, device) in self.bus.items():
            if base <= addr < base + length:
                return base, device
        return None

    def interrupt(self, why: str) -> None:
        """Stop the run as :meth:`stop` does, from a signal handler of the main thread.

        Safe wherever the handler lands: while the vCPUs run the main thread
        only waits for them, holding no lock, so they are stopped at once;
        before, only ``why`` is recorded and the vCPUs stop as soon as they
        are started; after, nothing changes.
        """
        self._interrupted = why
        if self._joining:
            self.stop(why)

    def stop(self, problem: str) -> None:
        """A vCPU cannot go on: record why, and kick every vCPU out of its run."""
        with self._lock:
            if not self.report.problem:
                self.report.problem = problem
            if self.report.status == "running":
                self.report.status = "stopped by the VMM"
            self._stopping = True
        for vcpu in self._vcpus:
            vcpu.request_exit()
        for t in self._threads:
            if t.ident is not None and t.is_alive() and t is not threading.current_thread():
                self.host.pthread_kill(t.ident, KICK_SIGNAL)
