"""The hypervisor interface the sample VMM's run loop is written against.

One backend per hypervisor driver implements it (``vmm/gunyah.py`` for
/dev/gunyah, ``vmm/geniezone.py`` for /dev/gzvm); the run loop
(``vmm/vmm.py``) and the devices never see an ioctl, a run page or an exit
reason number. A :class:`Hypervisor` (an open device) creates a
:class:`Vm`; a Vm owns guest memory, the boot state, its vCPUs and its
eventfd bindings; :meth:`Vcpu.run` returns one of the exits below, which
mean the same on every hypervisor.

Errors: a call that reaches the driver raises what the Host raised, an
OSError carrying the driver's errno; the interface adds no exception type
of its own (a contract broken by the caller is a ValueError).

Lifetimes: Hypervisor and Vm are context managers. Leaving a Vm releases
everything made through it (memory, vCPUs, bindings) in reverse order of
creation, and no view it returned may be used afterwards; leaving the
Hypervisor closes the device. Eventfds belong to the caller: a Vm binds
them, never closes them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vmm.vm_config import VmLayout


@dataclass(frozen=True, kw_only=True)
class Exit:
    """Why :meth:`Vcpu.run` returned.

    ``reason`` is the hypervisor's own name for the exit (Gunyah: ``mmio``,
    ``status``, ``page_fault``; GenieZone: ``mmio``, ``system_event``...),
    what a VMM counts and reports; the type says what the run loop has to do.
    """

    reason: str


@dataclass(frozen=True)
class MmioRead(Exit):
    """A guest load of ``size`` bytes from ``addr`` that neither hypervisor nor kernel handles.

    Before the next :meth:`Vcpu.run` the VMM answers it with
    :meth:`Vcpu.set_mmio_data` or refuses it with :meth:`Vcpu.abort_mmio`.
    """

    addr: int
    size: int


@dataclass(frozen=True)
class MmioWrite(Exit):
    """A guest store of ``value`` (``size`` bytes, zero-extended) to ``addr``.

    A write that matches an ioeventfd never gets here. :meth:`Vcpu.abort_mmio`
    before the next run turns it into an abort in the guest.
    """

    addr: int
    size: int
    value: int


@dataclass(frozen=True)
class SystemEvent(Exit):
    """The VM is down: this vCPU runs no more.

    ``status`` is how it went down (``exited``, ``crashed``, ``load
    failed``), ``exit_type`` what took it down (``platform_off``,
    ``platform_reset``, ``watchdog_bite``...), ``detail`` the bytes the
    hypervisor gave with it.
    """

    status: str
    exit_type: str
    detail: bytes = b""


@dataclass(frozen=True)
class VcpuError(Exit):
    """The vCPU cannot go on (a fault nobody can serve, an exit the backend does not know).

    ``problem`` is one line for the user; the VMM stops the VM.
    """

    problem: str


@dataclass(frozen=True)
class BootState:
    """How the guest starts, by the arm64 boot protocol.

    The boot vCPU starts at ``pc`` with X0 = ``dtb_addr``, the IPA of the
    devicetree blob, which lies in guest RAM with ``dtb_size`` bytes of
    room (the hypervisor may write into that room: Gunyah's RM adds its
    nodes there). ``x`` sets X1 to X30; every other register is the
    hypervisor's reset value. ValueError: a register outside X1..X30.
    """

    pc: int
    dtb_addr: int
    dtb_size: int
    x: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self):
        for index in self.x:
            if not 1 <= index <= 30:
                raise ValueError(f"X{index}: boot state sets X1 to X30 (X0 is the DTB address)")


class Vcpu(ABC):
    """One virtual CPU of a :class:`Vm`, run by one thread of the VMM."""

    index: int  # as given to Vm.create_vcpu

    @abstractmethod
    def run(self) -> Exit:
        """Run the guest until it needs the VMM; the exit says why.

        OSError EINTR: a signal came while the guest ran (the vCPU can be
        run again), or :meth:`request_exit` was called. Other errnos are
        the driver's.
        """

    @abstractmethod
    def set_mmio_data(self, value: int) -> None:
        """The answer to the :class:`MmioRead` just returned: the guest's load gets ``value``."""

    @abstractmethod
    def abort_mmio(self) -> None:
        """Nothing is at the address of the MMIO exit just returned: the guest takes an abort."""

    @abstractmethod
    def request_exit(self) -> None:
        """Stop the vCPU for good: every later :meth:`run` fails with EINTR before the guest runs.

        Safe from any thread. A run already in progress only stops when its
        thread is signalled (the caller's job: send the signal after this call).
        """


class Vm(ABC):
    """A VM being built, then run; closing it releases all it made (see the module docstring)."""

    @abstractmethod
    def device_tree(self) -> bytes:
        """The DTB of the layout the VM was created with, as this hypervisor wants it.

        Load it with :meth:`add_memory` and name it in the :class:`BootState`.
        """

    @abstractmethod
    def add_memory(self, ipa: int, size: int, contents: Iterable[tuple[int, bytes]] = ()) -> None:
        """Guest RAM at [ipa, ipa + size), private to the guest, holding ``contents``.

        ``contents`` are (IPA, bytes) pieces written before the guest can
        run; the VMM keeps no view of this memory (Gunyah lends it: the
        host loses access). ValueError: a piece outside the range.
        """

    @abstractmethod
    def add_shared_memory(self, ipa: int, size: int):
        """Memory at [ipa, ipa + size) the guest and the VMM both see (virtqueues, DMA buffers).

        Returns the VMM's view, a writable buffer of ``size`` bytes, valid
        until the Vm is closed.
        """

    @abstractmethod
    def set_boot_state(self, boot: BootState) -> None:
        """Where and how the guest starts; call once, before :meth:`start`."""

    @abstractmethod
    def create_vcpu(self, index: int) -> Vcpu:
        """vCPU ``index`` (0 is the boot vCPU; the others wait for PSCI CPU_ON)."""

    @abstractmethod
    def irqfd(self, efd: int, spi: int) -> None:
        """Every write to eventfd ``efd`` raises SPI ``spi`` (edge-triggered) in the guest.

        ``spi`` counts from 0 (GIC INTID 32 + spi) and must be the interrupt
        of a device of the layout (ValueError).
        """

    @abstractmethod
    def ioeventfd(self, efd: int, addr: int, size: int, datamatch: int | None = None) -> None:
        """A guest write of ``size`` bytes to ``addr`` (of ``datamatch``, when given) signals
        eventfd ``efd`` and resumes the guest, without an exit."""

    @abstractmethod
    def start(self) -> None:
        """Start the VM: from now on the vCPUs run (OSError: the hypervisor refused it)."""

    @abstractmethod
    def close(self) -> None:
        """Release everything the Vm made, in reverse order of creation."""

    def __enter__(self) -> Vm:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Hypervisor(ABC):
    """An open hypervisor device on a Host; a backend class is constructed with the Host."""

    @abstractmethod
    def create_vm(self, layout: VmLayout, name: str) -> Vm:
        """A new VM for ``layout`` (RAM, vCPUs, devices); ``name`` is the image's name."""

    @abstractmethod
    def close(self) -> None:
        """Close the device; close the VMs it created before (a VM may still need it)."""

    def __enter__(self) -> Hypervisor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DeviceHypervisor(Hypervisor):
    """A backend that is one character device (``DEVICE``), opened on ``host``
    (OSError: no such device) and closed by :meth:`close`."""

    DEVICE: str

    def __init__(self, host):
        self.host = host
        self.fd = host.open(self.DEVICE)

    def close(self) -> None:
        self.host.close(self.fd)
