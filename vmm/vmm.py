"""The sample VMM: one VM on any Host, its vCPU threads, its devices, its exits.

:class:`Vmm` uses only the ioctl ABI of uapi/ and a Host (``kernel.boot()``
or :class:`vmm.host.LinuxHost`). It builds the VM config DT, loads the
image into a guest_memfd lent to the guest, places the DTB at the end of
RAM, sets the boot context (PC = the image's entry, X1 = the number of
vCPUs), adds one vCPU function per vCPU, starts the VM and runs one thread
per vCPU. Every exit is handled in :meth:`Vmm.handle_exit`; MMIO goes to
the device mapped at its address. The run ends when the VM reports its
status (or a vCPU cannot go on: then the others are kicked with
``immediate_exit`` and a signal), and everything is closed in reverse
order of creation.
"""

from __future__ import annotations

import collections
import errno
import select
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from uapi.linux import gunyah as gh
from vmm.devices import virtio_mmio
from vmm.devices.pl011 import SIZE as PL011_SIZE
from vmm.devices.pl011 import Pl011
from vmm.devices.virtio_console import VirtioConsole
from vmm.devices.virtio_mmio import GuestMemory, VirtioMmio
from vmm.loader import load_image
from vmm.vm_config import DoorbellVdevice, MmioDevice, SharedWindow, VmLayout, build_dtb

RAM_BASE = 0x8000_0000
UART_BASE = 0x0900_0000
VIRTIO_BASE, VIRTIO_SPI, VIRTIO_LABEL = 0x0A00_0000, 16, 1
SHARED_BASE, SHARED_SIZE = 0xC000_0000, 0x1_0000  # where virtqueues and their buffers live
DTB_ROOM = 0x1_0000  # the DTB and the RM's overlay, at the end of RAM
KICK_SIGNAL = signal.SIGUSR1
PAGE = 4096
EXIT_NAMES = {
    gh.GUNYAH_VCPU_EXIT_MMIO: "mmio",
    gh.GUNYAH_VCPU_EXIT_STATUS: "status",
    gh.GUNYAH_VCPU_EXIT_PAGE_FAULT: "page_fault",
}
STATUS_NAMES = {
    gh.GUNYAH_VM_STATUS_LOAD_FAILED: "load failed",
    gh.GUNYAH_VM_STATUS_EXITED: "exited",
    gh.GUNYAH_VM_STATUS_CRASHED: "crashed",
}
EXIT_TYPES = {  # the RM's exit types (spec section 4.6)
    0: "vm_exit",
    1: "platform_off",
    2: "platform_reset",
    3: "psci_system_reset2",
    4: "watchdog_bite",
    5: "software_error",
    6: "async_hw_error",
    7: "vm_stop_forced",
}


@dataclass
class VmmConfig:
    image: bytes
    name: str = "image"
    vcpus: int = 1
    mem: int = 64 << 20
    cmdline: str = ""


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


class Vmm:
    def __init__(self, host, config: VmmConfig, console=None, input_fd: int | None = None):
        self.host, self.config, self.input_fd = host, config, input_fd
        console = console or (lambda data: None)
        self.uart = Pl011(console)
        self.memory = GuestMemory()
        self.virtio_console = VirtioConsole(console)
        self.virtio = VirtioMmio(self.virtio_console, self.memory, self._virtio_interrupt)
        self.virtio_console.transport = self.virtio
        self.bus = {
            UART_BASE: (PL011_SIZE, self.uart),
            VIRTIO_BASE: (virtio_mmio.SIZE, self.virtio),
        }
        self._irqfd: int | None = None
        self.report = Report(vcpus=config.vcpus)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._runs: list = []
        self._stopping = False

    # building the VM
    def layout(self) -> VmLayout:
        uart = MmioDevice("pl011", ("arm,pl011", "arm,primecell"), UART_BASE, PL011_SIZE)
        virtio = MmioDevice(
            "virtio_mmio", ("virtio,mmio",), VIRTIO_BASE, virtio_mmio.SIZE, VIRTIO_SPI
        )
        return VmLayout(
            RAM_BASE,
            self.config.mem,
            self.config.vcpus,
            self.config.cmdline,
            devices=[uart, virtio],
            doorbells=[DoorbellVdevice(VIRTIO_LABEL, VIRTIO_SPI)],
            stdout=f"/pl011@{UART_BASE:x}",
            shared=SharedWindow(SHARED_BASE, SHARED_SIZE, "virtio_mmio"),
        )

    def run(self) -> Report:
        """Build, start and run the VM until it stops; the report says how it ended."""
        cfg = self.config
        image = load_image(cfg.image, RAM_BASE, cfg.mem - DTB_ROOM, cfg.name)
        dtb = build_dtb(self.layout(), cfg.name)
        if len(dtb) > DTB_ROOM // 2:
            raise ValueError(f"the VM config DT is {len(dtb)} bytes, over {DTB_ROOM // 2}")
        host = self.host
        with ExitStack() as stack:
            dev = host.open("/dev/gunyah")
            stack.callback(host.close, dev)
            vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
            stack.callback(host.close, vm)
            args = gh.ffi.new("struct gunyah_create_mem_args *", {"size": cfg.mem})
            gmem = host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, args)
            stack.callback(host.close, gmem)
            self._load(gmem, image, dtb)
            self._map_ram(vm, gmem)
            self._share_window(stack, dev, vm)
            self._boot_config(vm, image.entry)
            notify = self._virtio_eventfds(stack, vm)
            vcpus = [self._add_vcpu(stack, vm, i) for i in range(cfg.vcpus)]
            stack.callback(vcpus.clear)  # no view of a run page may outlive it
            self._event_loop(stack, notify)
            start = time.perf_counter()
            host.ioctl(vm, gh.GUNYAH_VM_START, 0)
            self._run_vcpus(vcpus)
            self.report.seconds = time.perf_counter() - start
        return self.report

    def _load(self, gmem: int, image, dtb: bytes) -> None:
        """Write the image and the DTB, then unmap: lent memory must not stay host-mapped."""
        cfg = self.config
        mapping = self.host.mmap(gmem, cfg.mem)
        try:
            for addr, data, _ in image.segments:
                mapping[addr - RAM_BASE : addr - RAM_BASE + len(data)] = data
            off = cfg.mem - DTB_ROOM
            mapping[off : off + len(dtb)] = dtb
        finally:
            self.host.munmap(mapping)

    def _map_ram(self, vm: int, gmem: int) -> None:
        flags = gh.GUNYAH_MEM_DEFAULT_ACCESS | gh.GUNYAH_MEM_ALLOW_RWX
        args = gh.ffi.new(
            "struct gunyah_map_mem_args *",
            {"guest_addr": RAM_BASE, "flags": flags, "guest_mem_fd": gmem, "size": self.config.mem},
        )
        self.host.ioctl(vm, gh.GUNYAH_VM_MAP_MEM, args)

    def _share_window(self, stack: ExitStack, dev: int, vm: int) -> None:
        """A guest_memfd shared with the guest and kept mapped: the virtqueues' home."""
        host = self.host
        args = gh.ffi.new("struct gunyah_create_mem_args *", {"size": SHARED_SIZE})
        gmem = host.ioctl(dev, gh.GUNYAH_CREATE_GUEST_MEM, args)
        stack.callback(host.close, gmem)
        flags = gh.GUNYAH_MEM_FORCE_SHARE | gh.GUNYAH_MEM_ALLOW_READ | gh.GUNYAH_MEM_ALLOW_WRITE
        args = gh.ffi.new(
            "struct gunyah_map_mem_args *",
            {"guest_addr": SHARED_BASE, "flags": flags, "guest_mem_fd": gmem, "size": SHARED_SIZE},
        )
        host.ioctl(vm, gh.GUNYAH_VM_MAP_MEM, args)
        mapping = host.mmap(gmem, SHARED_SIZE)
        stack.callback(host.munmap, mapping)
        self.memory.windows.append((SHARED_BASE, mapping))
        stack.callback(self.memory.windows.clear)

    def _virtio_eventfds(self, stack: ExitStack, vm: int) -> dict[int, int]:
        """An irqfd for the device's interrupt, an ioeventfd per queue for QueueNotify."""
        host = self.host
        self._irqfd = host.eventfd()
        stack.callback(host.close, self._irqfd)
        arg = gh.ffi.new("struct gunyah_fn_irqfd_arg *", {"fd": self._irqfd, "label": VIRTIO_LABEL})
        self._add_function(vm, gh.GUNYAH_FN_IRQFD, arg)
        notify = {}
        for index in range(self.virtio_console.num_queues):
            efd = host.eventfd()
            stack.callback(host.close, efd)
            fields = {
                "fd": efd,
                "addr": VIRTIO_BASE + virtio_mmio.QUEUE_NOTIFY,
                "len": 4,
                "flags": gh.GUNYAH_IOEVENTFD_FLAGS_DATAMATCH,
                "datamatch": index,
            }
            self._add_function(
                vm, gh.GUNYAH_FN_IOEVENTFD, gh.ffi.new("struct gunyah_fn_ioeventfd_arg *", fields)
            )
            notify[efd] = index
        return notify

    def _add_function(self, vm: int, fn_type: int, arg) -> int:
        desc = gh.ffi.new(
            "struct gunyah_fn_desc *",
            {
                "type": fn_type,
                "arg_size": gh.ffi.sizeof(arg[0]),
                "arg": int(gh.ffi.cast("uintptr_t", arg)),
            },
        )
        return self.host.ioctl(vm, gh.GUNYAH_VM_ADD_FUNCTION, desc)

    def _virtio_interrupt(self) -> None:
        if self._irqfd is not None:
            self.host.write(self._irqfd, (1).to_bytes(8, "little"))

    def _event_loop(self, stack: ExitStack, notify: dict[int, int]) -> None:
        """One thread polls every eventfd (and the input) until the run is over."""
        host = self.host
        stop = host.eventfd()
        stack.callback(host.close, stop)
        thread = threading.Thread(target=self._poll, args=(notify, stop), name="vmm-events")
        thread.start()
        stack.callback(thread.join)
        stack.callback(host.write, stop, (1).to_bytes(8, "little"))

    def _poll(self, notify: dict[int, int], stop: int) -> None:
        host, watch = self.host, [*notify, stop]
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
                    self.virtio.notify(notify[fd])

    def _boot_config(self, vm: int, entry: int) -> None:
        dtb = gh.ffi.new(
            "struct gunyah_vm_dtb_config *",
            {"guest_phys_addr": RAM_BASE + self.config.mem - DTB_ROOM, "size": DTB_ROOM},
        )
        self.host.ioctl(vm, gh.GUNYAH_VM_SET_DTB_CONFIG, dtb)
        for reg_set, index, value in (
            (gh.REG_SET_PC, 0, entry),
            (gh.REG_SET_X, 1, self.config.vcpus),
        ):
            ctx = gh.ffi.new(
                "struct gunyah_vm_boot_context *",
                {"reg": gh.GUNYAH_VM_BOOT_CONTEXT_REG(reg_set, index), "value": value},
            )
            self.host.ioctl(vm, gh.GUNYAH_VM_SET_BOOT_CONTEXT, ctx)

    def _add_vcpu(self, stack: ExitStack, vm: int, index: int):
        arg = gh.ffi.new("struct gunyah_fn_vcpu_arg *", {"id": index})
        fd = self._add_function(vm, gh.GUNYAH_FN_VCPU, arg)
        stack.callback(self.host.close, fd)
        size = self.host.ioctl(fd, gh.GUNYAH_VCPU_MMAP_SIZE, 0)
        page = self.host.mmap(fd, size)
        stack.callback(self.host.munmap, page)
        run = gh.ffi.from_buffer("struct gunyah_vcpu_run *", page)
        stack.callback(self._runs.clear)  # the run views go before their pages
        self._runs.append(run)
        return fd, run

    # running
    def _run_vcpus(self, vcpus) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(KICK_SIGNAL, lambda *_: None)  # a kick only interrupts VCPU_RUN
        self._threads = [
            threading.Thread(target=self._vcpu_thread, args=(i, fd, run), name=f"vcpu{i}")
            for i, (fd, run) in enumerate(vcpus)
        ]
        for t in self._threads:
            t.start()
        for t in self._threads:
            t.join()

    def _vcpu_thread(self, index: int, fd: int, run) -> None:
        while not self._stopping:
            try:
                self.host.ioctl(fd, gh.GUNYAH_VCPU_RUN, 0)
            except OSError as e:
                if e.errno != errno.EINTR:
                    self.stop(f"vCPU {index}: VCPU_RUN: {e}")
                continue
            with self._lock:
                self.report.exits[EXIT_NAMES.get(run.exit_reason, str(run.exit_reason))] += 1
            if self.handle_exit(index, run):
                return

    def handle_exit(self, index: int, run) -> bool:
        """Every exit of every vCPU, in one place. True: this vCPU is done."""
        reason = run.exit_reason
        if reason == gh.GUNYAH_VCPU_EXIT_MMIO:
            self._mmio(index, run)
            return False
        if reason == gh.GUNYAH_VCPU_EXIT_STATUS:
            self._status(run)
            return True
        if reason == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT:
            self.stop(
                f"vCPU {index}: guest address {run.page_fault.phys_addr:#x} cannot be paged in "
                f"({errno.errorcode.get(-run.page_fault.attempt, run.page_fault.attempt)})"
            )
            return True
        self.stop(f"vCPU {index}: unknown exit reason {reason}")
        return True

    def _mmio(self, index: int, run) -> None:
        addr, size = run.mmio.phys_addr, run.mmio.len
        with self._lock:
            self.report.mmio[addr] += 1
        found = self._device_at(addr)
        if found is None:
            run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_FAULT  # nothing there: an abort
            return
        base, device = found
        if run.mmio.is_write:
            value = int.from_bytes(bytes(run.mmio.data)[:size], "little")
            device.mmio_write(addr - base, size, value)
        else:
            value = device.mmio_read(addr - base, size)
            gh.ffi.memmove(run.mmio.data, value.to_bytes(8, "little"), 8)
        run.mmio.resume_action = gh.GUNYAH_VCPU_RESUME_HANDLED

    def _device_at(self, addr: int):
        for base, (length, device) in self.bus.items():
            if base <= addr < base + length:
                return base, device
        return None

    def _status(self, run) -> None:
        info = run.status.exit_info
        with self._lock:
            self.report.status = STATUS_NAMES.get(run.status.status, str(run.status.status))
            self.report.exit_type = EXIT_TYPES.get(info.type, str(info.type))
            self.report.exit_reason = bytes(info.reason)[: min(info.reason_size, 8)]

    def stop(self, problem: str) -> None:
        """A vCPU cannot go on: record why, and kick every vCPU out of VCPU_RUN."""
        with self._lock:
            if not self.report.problem:
                self.report.problem = problem
            if self.report.status == "running":
                self.report.status = "stopped by the VMM"
            self._stopping = True
        for run in self._runs:
            run.immediate_exit = 1
        for t in self._threads:
            if t.ident is not None and t.is_alive() and t is not threading.current_thread():
                self.host.pthread_kill(t.ident, KICK_SIGNAL)
