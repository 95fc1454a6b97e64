"""The GenieZone backend of the VMM's hypervisor interface: /dev/gzvm (spec sections 1 and 4.1).

Everything that knows the gzvm ioctls is here, used the way crosvm's
GenieZone backend uses them: CREATE_VM, one memslot per memory range
(SET_USER_MEMORY_REGION over an anonymous private mapping the VMM keeps:
the driver pins its pages as the guest touches them), the GICv3 made with
CREATE_DEVICE (distributor, then redistributors) at crosvm's layout
(:meth:`vmm.vm_config.GicV3.below_1g`), SET_DTB_CONFIG, the boot vCPU's
PC, X0 (the DTB), X1..X30 and PSTATE with SET_ONE_REG, GZVM_IRQFD with the
SPI as gsi, GZVM_IOEVENTFD, and GZVM_RUN on the backend's own 264-byte
struct gzvm_vcpu_run (nothing is mmap-able), whose GZVM_EXIT_* reasons
:meth:`GenieZoneVcpu.run` turns into the interface's exits.

Where GenieZone differs from the interface's wording (Documentation/vmm.rst):
the DTB goes to the guest as it is, so it describes the whole machine
(``build_gic_dtb``); there is no START ioctl (the first GZVM_RUN of vCPU 0
starts the guest); guest RAM stays mapped in the VMM (GenieZone does not
take it from the host for a VM that is not protected); and a GZVM_RUN
cannot refuse an MMIO access, so :meth:`GenieZoneVcpu.abort_mmio` makes a
read return 0 and drops a write, as crosvm does where no device answers.
At most :data:`MAX_VCPUS` vCPUs (the driver's GZVM_MAX_VCPUS).
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable
from contextlib import ExitStack

from uapi.linux import gzvm as gz
from vmm.hypervisor import (
    BootState,
    DeviceHypervisor,
    Exit,
    MmioRead,
    MmioWrite,
    SystemEvent,
    Vcpu,
    VcpuError,
    Vm,
)
from vmm.vm_config import GicV3, VmLayout, build_gic_dtb

MAX_VCPUS = 8
VM_TYPE_LINUX = 0  # the only vm_type there is (crosvm passes 0)
ANONYMOUS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
READ_WRITE = mmap.PROT_READ | mmap.PROT_WRITE
# What the boot vCPU's PSTATE is at reset: EL1 with SP_EL1 (EL1h), D, A, I and F masked.
PSTATE_EL1H_DAIF = 0x3C5
EXIT_NAMES = {
    gz.GZVM_EXIT_UNKNOWN: "unknown",
    gz.GZVM_EXIT_MMIO: "mmio",
    gz.GZVM_EXIT_HYPERCALL: "hypercall",
    gz.GZVM_EXIT_IRQ: "irq",
    gz.GZVM_EXIT_EXCEPTION: "exception",
    gz.GZVM_EXIT_DEBUG: "debug",
    gz.GZVM_EXIT_FAIL_ENTRY: "fail_entry",
    gz.GZVM_EXIT_INTERNAL_ERROR: "internal_error",
    gz.GZVM_EXIT_SYSTEM_EVENT: "system_event",
    gz.GZVM_EXIT_SHUTDOWN: "shutdown",
    gz.GZVM_EXIT_GZ: "gz",
    gz.GZVM_EXIT_IDLE: "idle",
    gz.GZVM_EXIT_IPI: "ipi",
}
# The system events that end the VM: (status, exit_type) in the interface's words.
SYSTEM_EVENTS = {
    gz.GZVM_SYSTEM_EVENT_SHUTDOWN: ("exited", "platform_off"),
    gz.GZVM_SYSTEM_EVENT_RESET: ("exited", "platform_reset"),
    gz.GZVM_SYSTEM_EVENT_CRASH: ("crashed", "crash"),
}


def core_reg(index: int) -> int:
    """The ONE_REG id of 64-bit core register ``index`` (struct user_pt_regs in 32-bit
    words, KVM's scheme: Xn is 2n, SP 62, PC 64, PSTATE 66)."""
    return gz.GZVM_REG_ARCH_ARM64 | gz.GZVM_REG_SIZE_U64 | gz.GZVM_REG_TYPE_GENERAL2 | index


REG_SP, REG_PC, REG_PSTATE = core_reg(62), core_reg(64), core_reg(66)


def reg_x(n: int) -> int:
    return core_reg(2 * n)


def boot_registers(boot: BootState) -> list[tuple[int, int]]:
    """(ONE_REG id, value) for the boot vCPU: PSTATE, PC, X0 = the DTB, then X1..X30."""
    regs = [(REG_PSTATE, PSTATE_EL1H_DAIF), (REG_PC, boot.pc), (reg_x(0), boot.dtb_addr)]
    return regs + [(reg_x(n), value) for n, value in sorted(boot.x.items())]


def decode_exit(run) -> Exit:
    """The interface's exit for a struct gzvm_vcpu_run after GZVM_RUN returned 0.

    MMIO -> MmioRead/MmioWrite; SYSTEM_EVENT SHUTDOWN/RESET/CRASH ->
    SystemEvent (``detail``: its data words, little-endian); anything else,
    including other system events, an exception the kernel did not handle
    and a hypercall it did not serve, is a VcpuError.
    """
    code = run.exit_reason
    reason = EXIT_NAMES.get(code, f"{code:#x}")
    if code == gz.GZVM_EXIT_MMIO:
        mmio = run.mmio
        size = mmio.size
        if size not in (1, 2, 4, 8):
            return VcpuError(f"MMIO at {mmio.phys_addr:#x} of {size} bytes", reason=reason)
        if mmio.is_write:
            value = int.from_bytes(bytes(mmio.data)[:size], "little")
            return MmioWrite(mmio.phys_addr, size, value, reason=reason)
        return MmioRead(mmio.phys_addr, size, reason=reason)
    if code == gz.GZVM_EXIT_SYSTEM_EVENT:
        event = run.system_event
        if event.type not in SYSTEM_EVENTS:
            return VcpuError(f"system event {event.type}", reason=reason)
        status, exit_type = SYSTEM_EVENTS[event.type]
        words = event.data[0 : min(event.ndata, len(event.data))]
        detail = b"".join(word.to_bytes(8, "little") for word in words)
        return SystemEvent(status, exit_type, detail, reason=reason)
    if code == gz.GZVM_EXIT_EXCEPTION:
        exc = run.exception
        problem = (
            f"exception {exc.exception} (error {exc.error_code}) at guest address "
            f"{exc.fault_gpa:#x} that the kernel did not handle"
        )
        return VcpuError(problem, reason=reason)
    if code == gz.GZVM_EXIT_HYPERCALL:
        return VcpuError(f"guest hypercall {run.hypercall.args[0]:#x} nobody serves", reason=reason)
    if code == gz.GZVM_EXIT_INTERNAL_ERROR:
        return VcpuError(f"internal error {run.internal.suberror}", reason=reason)
    if code == gz.GZVM_EXIT_FAIL_ENTRY:
        why = run.fail_entry.hardware_entry_failure_reason
        return VcpuError(f"entry failed ({why:#x}) on CPU {run.fail_entry.cpu}", reason=reason)
    return VcpuError(f"exit {reason}", reason=reason)


class GenieZone(DeviceHypervisor):
    """/dev/gzvm."""

    DEVICE = "/dev/gzvm"

    @staticmethod
    def device_tree(layout: VmLayout, name: str) -> bytes:
        """The whole DTB a VM of ``layout`` gets (what :meth:`GenieZoneVm.device_tree`
        returns; ``name`` is in no node), with no device opened: for a VMM that builds
        the VM itself. ValueError: more vCPUs than :data:`MAX_VCPUS`."""
        if not 1 <= layout.vcpus <= MAX_VCPUS:
            raise ValueError(f"{layout.vcpus} vCPUs: GenieZone runs 1 to {MAX_VCPUS}")
        return build_gic_dtb(layout, GicV3.below_1g(layout.vcpus))

    def create_vm(self, layout: VmLayout, name: str) -> GenieZoneVm:
        return GenieZoneVm(self, layout, name)


class GenieZoneVm(Vm):
    """A VM fd, its GICv3, memslots over the VMM's anonymous mappings, vCPU fds.

    ValueError: more vCPUs than :data:`MAX_VCPUS`. OSError: what the driver
    refused (the VM made so far is closed first).
    """

    def __init__(self, geniezone: GenieZone, layout: VmLayout, name: str):
        if not 1 <= layout.vcpus <= MAX_VCPUS:
            raise ValueError(f"{layout.vcpus} vCPUs: GenieZone runs 1 to {MAX_VCPUS}")
        self.host, self._layout = geniezone.host, layout
        self.gic = GicV3.below_1g(layout.vcpus)
        self._spis = {dev.spi for dev in layout.devices if dev.spi is not None}
        self._slots = 0
        self._boot: BootState | None = None
        self._boot_vcpu: GenieZoneVcpu | None = None
        self.fd = self.host.ioctl(geniezone.fd, gz.GZVM_CREATE_VM, VM_TYPE_LINUX)
        with ExitStack() as stack:
            stack.callback(self.host.close, self.fd)
            gic = self.gic
            self._create_device(gz.GZVM_DEV_TYPE_ARM_VGIC_V3_DIST, gic.dist_base, gic.dist_size)
            # Per vCPU, as crosvm passes it: the driver and EL2 take the size of one frame.
            self._create_device(
                gz.GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST, gic.redist_base, gic.redist_size
            )
            self._stack = stack.pop_all()

    def _create_device(self, dev_type: int, addr: int, size: int) -> None:
        fields = {"dev_type": dev_type, "dev_addr": addr, "dev_reg_size": size}
        dev = gz.ffi.new("struct gzvm_create_device *", fields)
        self.host.ioctl(self.fd, gz.GZVM_CREATE_DEVICE, dev)

    def device_tree(self) -> bytes:
        return GenieZone.device_tree(self._layout, "")

    def add_memory(self, ipa: int, size: int, contents: Iterable[tuple[int, bytes]] = ()) -> None:
        self._memslot(ipa, size, contents)  # the VMM keeps no view; the mapping lives to close

    def add_shared_memory(self, ipa: int, size: int):
        return self._memslot(ipa, size, ())

    def _memslot(self, ipa: int, size: int, contents: Iterable[tuple[int, bytes]]):
        """An anonymous mapping of ``size`` bytes holding ``contents``, made memslot
        ``self._slots`` at ``ipa`` (the driver wants exactly one VMA of that size)."""
        mapping = self.host.mmap(-1, size, READ_WRITE, ANONYMOUS)
        self._stack.callback(self.host.munmap, mapping)
        for addr, data in contents:
            if not ipa <= addr <= addr + len(data) <= ipa + size:
                raise ValueError(f"{addr:#x}+{len(data):#x} is outside {ipa:#x}+{size:#x}")
            mapping[addr - ipa : addr - ipa + len(data)] = data
        fields = {
            "slot": self._slots,
            "guest_phys_addr": ipa,
            "memory_size": size,
            "userspace_addr": self.host.user_address(mapping),
        }
        region = gz.ffi.new("struct gzvm_userspace_memory_region *", fields)
        self.host.ioctl(self.fd, gz.GZVM_SET_USER_MEMORY_REGION, region)
        self._slots += 1
        return mapping

    def set_boot_state(self, boot: BootState) -> None:
        """SET_DTB_CONFIG now; the registers go to vCPU 0 with SET_ONE_REG once it exists."""
        fields = {"dtb_addr": boot.dtb_addr, "dtb_size": boot.dtb_size}
        dtb = gz.ffi.new("struct gzvm_dtb_config *", fields)
        self.host.ioctl(self.fd, gz.GZVM_SET_DTB_CONFIG, dtb)
        self._boot = boot
        if self._boot_vcpu is not None:
            self._boot_vcpu.set_registers(boot_registers(boot))

    def create_vcpu(self, index: int) -> GenieZoneVcpu:
        """GZVM_CREATE_VCPU; vCPU 0 gets the boot registers (the others start where PSCI
        CPU_ON says, with the state EL2 gives them)."""
        fd = self.host.ioctl(self.fd, gz.GZVM_CREATE_VCPU, index)
        self._stack.callback(self.host.close, fd)
        vcpu = GenieZoneVcpu(self.host, index, fd)
        if index == 0:
            self._boot_vcpu = vcpu
            if self._boot is not None:
                vcpu.set_registers(boot_registers(self._boot))
        return vcpu

    def irqfd(self, efd: int, spi: int) -> None:
        if spi not in self._spis:
            raise ValueError(f"SPI {spi} is no device's interrupt")
        arg = gz.ffi.new("struct gzvm_irqfd *", {"fd": efd, "gsi": spi})
        self.host.ioctl(self.fd, gz.GZVM_IRQFD, arg)

    def ioeventfd(self, efd: int, addr: int, size: int, datamatch: int | None = None) -> None:
        fields = {"fd": efd, "addr": addr, "len": size}
        if datamatch is not None:
            fields.update(flags=gz.GZVM_IOEVENTFD_FLAG_DATAMATCH, datamatch=datamatch)
        arg = gz.ffi.new("struct gzvm_ioeventfd *", fields)
        self.host.ioctl(self.fd, gz.GZVM_IOEVENTFD, arg)

    def start(self) -> None:
        """Nothing to call: GenieZone has no START, vCPU 0's first GZVM_RUN starts the guest.

        ValueError: no boot state, or no vCPU 0, to start from.
        """
        if self._boot is None or self._boot_vcpu is None:
            raise ValueError("start: set the boot state and create vCPU 0 first")

    def close(self) -> None:
        """Close the vCPUs, unmap the memory, close the VM (the driver then releases
        its pinned pages and EL2's VM), in reverse order of creation."""
        self._boot_vcpu = None
        self._stack.close()


class GenieZoneVcpu(Vcpu):
    """A vCPU fd and the struct gzvm_vcpu_run the backend keeps for it (GZVM_RUN's argument)."""

    def __init__(self, host, index: int, fd: int):
        self.host, self.index, self.fd = host, index, fd
        self._run = gz.ffi.new("struct gzvm_vcpu_run *")
        self._exit_requested = False

    def set_registers(self, regs: list[tuple[int, int]]) -> None:
        """SET_ONE_REG for each (id, 64-bit value)."""
        value = gz.ffi.new("uint64_t *")
        reg = gz.ffi.new("struct gzvm_one_reg *", {"addr": int(gz.ffi.cast("uintptr_t", value))})
        for reg_id, word in regs:
            value[0], reg.id = word, reg_id
            self.host.ioctl(self.fd, gz.GZVM_SET_ONE_REG, reg)

    def run(self) -> Exit:
        """GZVM_RUN on the backend's run struct, and its exit as the interface's."""
        # GZVM_RUN copies the whole struct back when it returns, so a request made
        # while it ran is set again here.
        if self._exit_requested:
            self._run.immediate_exit = 1
        self.host.ioctl(self.fd, gz.GZVM_RUN, self._run)
        return decode_exit(self._run)

    def set_mmio_data(self, value: int) -> None:
        mmio = self._run.mmio
        size = min(mmio.size, 8)
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(8, "little")
        gz.ffi.memmove(mmio.data, data, 8)

    def abort_mmio(self) -> None:
        """GZVM_RUN has no way to refuse an access: a read gets 0, a write is dropped."""
        gz.ffi.memmove(self._run.mmio.data, bytes(8), 8)

    def request_exit(self) -> None:
        self._exit_requested = True
        self._run.immediate_exit = 1
