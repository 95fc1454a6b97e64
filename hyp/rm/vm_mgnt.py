"""VM management (the RM's src/vm_mgnt and src/vm_creation): the VM state machine.

A VM goes NONE -> LOAD (VM_ALLOCATE) -> INIT (VM_CONFIG_IMAGE: the DTB
parcel is taken and its devicetree read) -> READY (VM_INIT: address space,
VIC and vCPUs are created with hypercalls, the DTB parcel mapped at the
image base and overlaid) -> RUNNING (VM_START) -> EXITED (VM_STOP, or the
guest's PSCI SYSTEM_OFF/RESET) -> RESET (VM_RESET: everything it had is
destroyed and its parcels released) and back to NONE with VM_DEALLOCATE.
A request in any other state is VM_STATE; only the VM's owner may drive it.
State changes are announced with NOTIFY_VM_STATUS, exits with
NOTIFY_VM_EXITED (exit type and reason words).

A VM given no SET_ADDRESS_LAYOUT (the Android 6.1 driver's sequence) has its
image parcel mapped at the ``memory`` node's ``base-address`` of its config
DT, and each ``shm`` vdevice's parcel (by label) at the vdevice's ``base``;
those parcels go back to their owner at reset (who reclaims them with
MEM_RECLAIM) instead of ending with the VM. VM_SET_FIRMWARE_MEM names the
parcel and range of a protected VM's firmware; it is checked and recorded,
and no firmware is run (see Documentation/rm.rst).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from hyp.gunyah.errors import Error
from hyp.gunyah.object import DoorbellRights, MemextentRights, ThreadRights
from hyp.rm import vm_config
from hyp.rm.hypercall import HypercallFailed
from hyp.rm.rm_types import (
    DYNAMIC_VMIDS,
    EXIT_FLAG_RESTART,
    AuthMech,
    ExitCode,
    ExitType,
    MsgId,
    OsState,
    ResourceType,
    RmError,
    RmFailure,
    VmState,
    require,
)

_VMID = struct.Struct("<HH")
_STOP = struct.Struct("<HBBI")
_CONFIG_IMAGE = struct.Struct("<HHIQQQQ")
_FIRMWARE_MEM = struct.Struct("<HHIQQ")
ACL_W = 2  # the W of a memparcel ACL entry (R 4, W 2, X 1)
_BOOT_CONTEXT = struct.Struct("<HBBIQ")
_ADDRESS_LAYOUT = struct.Struct("<HHIQQ")
_DEMAND_PAGING = struct.Struct("<HHI")
_RANGE = struct.Struct("<QQ")
RESOURCE = struct.Struct("<BBHIIQIIQQ")
STATUS = struct.Struct("<HHBBH")
EXITED = struct.Struct("<HHI")

PAGE_SIZE = 0x1000
RANGE_ID_IMAGE = 0
REG_SET_X, REG_SET_PC = 0, 1
MAX_EXPLICIT_VMID = 64
FIRST_HOST_VIRQ = 64
THREAD_RIGHTS = ThreadRights.AFFINITY | ThreadRights.YIELD_TO | ThreadRights.POWER
ATTRS_RWX_WB = 7 | 7 << 4 | 0xF << 16
GUEST_VIRQS = 64
# The guest's RM link interrupts: the last two SPIs of its VIC.
GUEST_RM_TX_VIRQ, GUEST_RM_RX_VIRQ = 32 + GUEST_VIRQS - 2, 32 + GUEST_VIRQS - 1
_VM_EXIT = struct.Struct("<HBB")
DONATE_TO_SIBLING, DONATE_TO_PROTECTED, DONATE_FROM_PROTECTED = 2, 3, 4
MAP_PARTIAL, MAP_PRIVATE, MAP_VMMIO = 1 << 0, 1 << 1, 1 << 2
# Memory extent resources Linux expects, by label.
EXTENT_LABELS = {0: "guest_private", 1: "host_shared", 2: "host_private", 3: "guest_shared"}
EXTENT_RIGHTS = MemextentRights.MAP | MemextentRights.DONATE | MemextentRights.LOOKUP


def unpack(layout: struct.Struct, payload: bytes) -> tuple:
    require(len(payload) == layout.size, RmError.MSG_INVALID, f"{len(payload)} bytes")
    return layout.unpack(payload)


@dataclass
class Vm:
    vmid: int
    owner: int
    state: VmState = VmState.LOAD
    os_state: OsState = OsState.NONE
    dtb_parcel: object = None
    dtb_offset: int = 0
    dtb_size: int = 0
    image_base: int | None = None
    image_size: int = 0
    config: vm_config.VmConfig | None = None
    boot_context: dict = field(default_factory=dict)
    demand_ranges: list = field(default_factory=list)
    caps: dict = field(default_factory=dict)  # RM-side capabilities by role
    vcpus: list = field(default_factory=list)
    resources: list = field(default_factory=list)  # (type, label, host cap, virq)
    taken: list = field(default_factory=list)  # host pages moved to the VM: (pa, size)
    link: object = None  # its RM link
    exit: tuple[int, int] | None = None
    auth: int = 0
    firmware: tuple | None = None  # (parcel, offset, size) of VM_SET_FIRMWARE_MEM
    legacy_image: bool = False  # image placed by the DT: no SET_ADDRESS_LAYOUT came


class VmManager:
    def __init__(self, rm):
        self.rm = rm
        self.vms: dict[int, Vm] = {}
        self._next_virq = FIRST_HOST_VIRQ
        handlers = {
            MsgId.VM_ALLOCATE: self.allocate,
            MsgId.VM_DEALLOCATE: self.deallocate,
            MsgId.VM_CONFIG_IMAGE: self.config_image,
            MsgId.VM_INIT: self.init,
            MsgId.VM_SET_BOOT_CONTEXT: self.set_boot_context,
            MsgId.VM_SET_CONTEXT: self.set_boot_context,
            MsgId.VM_SET_DEMAND_PAGING: self.set_demand_paging,
            MsgId.VM_SET_FIRMWARE_MEM: self.set_firmware_mem,
            MsgId.VM_SET_ADDRESS_LAYOUT: self.set_address_layout,
            MsgId.VM_GET_HYP_RESOURCES: self.get_hyp_resources,
            MsgId.VM_START: self.start,
            MsgId.VM_STOP: self.stop,
            MsgId.VM_RESET: self.reset,
            MsgId.VM_GET_VMID: self.get_vmid,
            MsgId.VM_GET_STATE: self.get_state,
            MsgId.VM_EXIT: self.vm_exit,
        }
        rm.handlers.update(handlers)
        rm.gunyah.vm_listeners.append(self.on_vm_event)

    # lookups
    def vm(self, caller: int, vmid: int, *states: VmState) -> Vm:
        vm = self.vms.get(vmid)
        require(vm is not None, RmError.VMID_INVALID, f"vmid {vmid:#x}")
        require(vm.owner == caller, RmError.DENIED, "not the VM's owner")
        require(not states or vm.state in states, RmError.VM_STATE, vm.state.name)
        return vm

    def _vmid_only(self, caller: int, payload: bytes, *states: VmState) -> Vm:
        vmid, _ = unpack(_VMID, payload)
        return self.vm(caller, vmid, *states)

    # VM_ALLOCATE .. VM_DEALLOCATE
    def allocate(self, caller: int, payload: bytes) -> bytes:
        vmid, _ = unpack(_VMID, payload)
        if vmid == 0:
            free = [v for v in DYNAMIC_VMIDS if v not in self.vms]
            require(free, RmError.NORESOURCE, "no free VMID")
            vmid, reply = free[0], struct.pack("<I", free[0])
        else:
            require(vmid < MAX_EXPLICIT_VMID, RmError.VMID_INVALID, "explicit VMID")
            require(vmid not in self.vms, RmError.IN_USE, f"vmid {vmid} taken")
            reply = b""
        self.vms[vmid] = Vm(vmid, caller)
        return reply

    def deallocate(self, caller: int, payload: bytes) -> bytes:
        vm = self._vmid_only(caller, payload, VmState.LOAD, VmState.RESET, VmState.INIT_FAILED)
        self._destroy(vm)
        del self.vms[vm.vmid]
        return b""

    def config_image(self, caller: int, payload: bytes) -> bytes:
        vmid, auth, handle, img_off, img_size, dtb_off, dtb_size = unpack(_CONFIG_IMAGE, payload)
        vm = self.vm(caller, vmid, VmState.LOAD)
        require(auth in (AuthMech.NONE, AuthMech.ANDROID), RmError.ARGUMENT_INVALID, "auth")
        parcel = self.rm.memparcels.get(caller, handle)
        require(parcel.complete and not parcel.users, RmError.MEM_INUSE, "parcel busy")
        rights = parcel.rights(vmid)
        require(rights is not None, RmError.DENIED, "parcel not for this VM")
        # The RM writes its overlay into the DTB: the VM's own copy must be writable.
        require(rights & ACL_W, RmError.DENIED, "the DTB parcel is read-only")
        require(0 < dtb_size and dtb_off + dtb_size <= parcel.size, RmError.ARGUMENT_INVALID)
        require(img_off + img_size <= parcel.size, RmError.ARGUMENT_INVALID, "image")
        try:
            vm.config = vm_config.parse(self.rm.read_parcel(parcel, dtb_off, dtb_size))
        except RmFailure:
            vm.state = VmState.INIT_FAILED
            raise
        parcel.users.add(vmid)
        vm.dtb_parcel, vm.dtb_offset, vm.dtb_size = parcel, dtb_off, dtb_size
        vm.auth = auth
        vm.state = VmState.INIT
        return b""

    def set_firmware_mem(self, caller: int, payload: bytes) -> bytes:
        """VM_SET_FIRMWARE_MEM {vmid, reserved, mem_handle, fw_offset, fw_size}: in
        INIT, for an ANDROID-authenticated VM, a range of a parcel given to it."""
        vmid, _, handle, offset, size = unpack(_FIRMWARE_MEM, payload)
        vm = self.vm(caller, vmid, VmState.INIT)
        require(vm.auth == AuthMech.ANDROID, RmError.ARGUMENT_INVALID, "not a protected VM")
        parcel = self.rm.memparcels.get(caller, handle)
        require(parcel.rights(vmid) is not None, RmError.DENIED, "parcel not for this VM")
        require(0 < size and offset + size <= parcel.size, RmError.ARGUMENT_INVALID, "range")
        vm.firmware = (parcel, offset, size)
        return b""

    def set_demand_paging(self, caller: int, payload: bytes) -> bytes:
        require(len(payload) >= _DEMAND_PAGING.size, RmError.MSG_INVALID)
        vmid, _, count = _DEMAND_PAGING.unpack_from(payload)
        require(len(payload) == _DEMAND_PAGING.size + count * _RANGE.size, RmError.MSG_INVALID)
        vm = self.vm(caller, vmid, VmState.INIT)
        ranges = [
            _RANGE.unpack_from(payload, _DEMAND_PAGING.size + i * _RANGE.size) for i in range(count)
        ]
        for base, size in ranges:
            require(size and not (base | size) % PAGE_SIZE, RmError.ARGUMENT_INVALID, "range")
        vm.demand_ranges = ranges
        return b""

    def set_address_layout(self, caller: int, payload: bytes) -> bytes:
        vmid, _, range_id, base, size = unpack(_ADDRESS_LAYOUT, payload)
        vm = self.vm(caller, vmid, VmState.INIT)
        require(range_id == RANGE_ID_IMAGE, RmError.ARGUMENT_INVALID, "range id")
        require(not (base | size) % PAGE_SIZE and size, RmError.ARGUMENT_INVALID, "alignment")
        require(size >= vm.dtb_parcel.size, RmError.ARGUMENT_INVALID, "smaller than the image")
        vm.image_base, vm.image_size = base, size
        return b""

    def init(self, caller: int, payload: bytes) -> bytes:
        vmid, pad = unpack(_VMID, payload)
        require(pad == 0, RmError.ARGUMENT_INVALID, "padding")
        vm = self.vm(caller, vmid, VmState.INIT)
        try:
            self._create(vm)
        except (RmFailure, HypercallFailed) as e:
            vm.state = VmState.INIT_FAILED
            self._destroy(vm)
            if isinstance(e, HypercallFailed):
                raise RmFailure(RmError.NOMEM, str(e)) from None
            raise
        vm.state = VmState.READY
        return b""

    def set_boot_context(self, caller: int, payload: bytes) -> bytes:
        """One register of the boot vCPU, written at once: the hypervisor decides
        which registers exist (ARGUMENT_INVALID for one it refuses)."""
        vmid, reg_set, index, _, value = unpack(_BOOT_CONTEXT, payload)
        vm = self.vm(caller, vmid, VmState.READY)
        try:
            self.rm.hvc.vcpu_register_write(vm.vcpus[0], reg_set, index, value, 0)
        except HypercallFailed as e:
            raise RmFailure(RmError.ARGUMENT_INVALID, str(e)) from None
        vm.boot_context[(reg_set, index)] = value
        return b""

    def get_hyp_resources(self, caller: int, payload: bytes) -> bytes:
        vm = self._vmid_only(caller, payload, VmState.READY, VmState.RUNNING, VmState.EXITED)
        entries = [
            RESOURCE.pack(rtype, 0, vm.vmid, 0, label, cap, 0, virq, 0, 0)
            for rtype, label, cap, virq in vm.resources
        ]
        return struct.pack("<I", len(entries)) + b"".join(entries)

    def start(self, caller: int, payload: bytes) -> bytes:
        vm = self._vmid_only(caller, payload, VmState.READY)
        if self.rm.policy == "retail":
            vm.state = VmState.INIT_FAILED
            raise RmFailure(RmError.NORESOURCE, "retail policy: unprotected VMs are refused")
        hvc = self.rm.hvc
        pc = vm.boot_context.get((REG_SET_PC, 0), vm.image_base)
        x0 = vm.boot_context.get((REG_SET_X, 0), vm.image_base + vm.dtb_offset)
        hvc.vcpu_poweron(vm.vcpus[0], pc, x0, 0)
        self._set_state(vm, VmState.RUNNING, OsState.BOOT)
        return b""

    def stop(self, caller: int, payload: bytes) -> bytes:
        vmid, flags, _, reason = unpack(_STOP, payload)
        vm = self.vm(caller, vmid, VmState.RUNNING, VmState.PAUSED)
        require(flags & ~1 == 0, RmError.ARGUMENT_INVALID, "flags")
        for vcpu in vm.vcpus:
            self.rm.hvc.vcpu_poweroff(vcpu, 0)
        self._exited(vm, ExitType.VM_STOP_FORCED, ExitCode.NORMAL, extra=(reason,))
        return b""

    def reset(self, caller: int, payload: bytes) -> bytes:
        vm = self._vmid_only(caller, payload, VmState.EXITED, VmState.READY, VmState.INIT_FAILED)
        vm.state = VmState.RESETTING
        self._destroy(vm)
        self._set_state(vm, VmState.RESET, OsState.NONE)
        return b""

    def vm_exit(self, caller: int, payload: bytes) -> bytes:
        """VM_EXIT from a running guest: le16 exit flags, u8 exit code, u8 reserved."""
        flags, code, reserved = unpack(_VM_EXIT, payload)
        vm = self.vms.get(caller)
        require(vm is not None and vm.state == VmState.RUNNING, RmError.VM_STATE)
        require(reserved == 0 and code in ExitCode._value2member_map_, RmError.ARGUMENT_INVALID)
        require(code != ExitCode.UNKNOWN_ERROR, RmError.ARGUMENT_INVALID, "exit code")
        for vcpu in vm.vcpus:
            self.rm.hvc.vcpu_poweroff(vcpu, 0)
        self._exited(vm, ExitType.VM_EXIT, ExitCode(code), flags)
        return b""

    def get_vmid(self, caller: int, payload: bytes) -> bytes:
        require(payload == b"", RmError.MSG_INVALID, "payload")
        return struct.pack("<I", caller)

    def get_state(self, caller: int, payload: bytes) -> bytes:
        vm = self._vmid_only(caller, payload)
        return struct.pack("<I", vm.state | vm.os_state << 8)

    # building and tearing down
    def _create(self, vm: Vm) -> None:
        rm, hvc, caps = self.rm, self.rm.hvc, self.rm.caps
        config = vm.config
        if vm.image_base is None:  # no SET_ADDRESS_LAYOUT: the DT places the image
            require(config.mem_base is not None, RmError.ARGUMENT_INVALID, "no image address")
            vm.image_base, vm.image_size = config.mem_base, vm.dtb_parcel.size
            vm.legacy_image = True
        vm.caps["addrspace"] = space = rm.create("addrspace")
        hvc.addrspace_configure(space, vm.vmid, 0)
        hvc.object_activate(space, 0)
        for base, size in vm.demand_ranges:
            hvc.addrspace_configure_demand(space, base, size, 0, 0)
        vm.caps["vic"] = vic = rm.create("vic")
        hvc.vic_configure(vic, config.vcpus, GUEST_VIRQS, 0, 0)
        hvc.object_activate(vic, 0)
        vm.caps["cspace"] = guest_cspace = rm.create("cspace")
        hvc.object_activate(guest_cspace, 0)
        vm.link = rm.create_link(vm.vmid, vic, guest_cspace, GUEST_RM_TX_VIRQ, GUEST_RM_RX_VIRQ)
        for index in range(config.vcpus):
            vcpu = rm.create("thread")
            vm.caps[f"vcpu{index}"] = vcpu
            hvc.vcpu_configure(vcpu, 0, 0)
            hvc.vcpu_set_affinity(vcpu, index, 0)
            hvc.addrspace_attach_thread(space, vcpu, 0)
            hvc.vic_attach_vcpu(vic, vcpu, index, 0)
            hvc.cspace_attach_thread(guest_cspace, vcpu, 0)
            hvc.object_activate(vcpu, 0)
            virq = self._host_virq()
            hvc.vcpu_bind_virq(vcpu, caps["host_vic"], virq, 1, 0)
            host_cap = rm.give_host(vcpu, THREAD_RIGHTS)
            vm.vcpus.append(vcpu)
            vm.resources.append((ResourceType.VIRTUAL_CPU, index, host_cap, virq))
        vm.resources.append((ResourceType.ADDR_SPACE, 0, rm.give_host(space, 0x7), 0))
        vm.caps["guest_private"] = rm.sparse_extent()
        vm.caps["guest_shared"] = rm.sparse_extent()
        for label, role in EXTENT_LABELS.items():
            cap = rm.give_host(vm.caps.get(role) or rm.caps[role], EXTENT_RIGHTS)
            vm.resources.append((ResourceType.MEM_EXTENT, label, cap, 0))
        self._create_doorbell_check(config)
        for doorbell in config.doorbells:
            self._create_doorbell(vm, doorbell)
        self._map_parcel(vm, vm.dtb_parcel, vm.image_base)
        if vm.legacy_image:
            for label, base in config.shm:
                self._map_parcel(vm, self._labelled_parcel(vm, label), base)
        dtb = rm.read_parcel(vm.dtb_parcel, vm.dtb_offset, vm.dtb_size)
        vdevices = [
            (
                bell.name,
                {"compatible": "gunyah-doorbell", "interrupts": [0, bell.virq - 32, bell.trigger]},
            )
            for bell in config.doorbells
        ]
        vdevices.append(("gunyah-resource-mgr@0", _rm_node(vm.link)))
        merged = vm_config.overlay(dtb, vm.dtb_size, config.vcpus, rm.gunyah.boot_info, vdevices)
        rm.write_parcel(vm.dtb_parcel, vm.dtb_offset, merged)

    def _map_parcel(self, vm: Vm, parcel, ipa: int) -> None:
        """Move the parcel's pages to the VM and map them from ``ipa`` on, the way
        the host provides memory: a lent parcel to the guest's private extent
        (protected, the host loses it), a shared one to its shared extent. The
        host can then take the pages back by hypercall, as demand-paged memory."""
        hvc, host = self.rm.hvc, self.rm.caps["host_private"]
        role, donate, flags = (
            ("guest_private", DONATE_TO_PROTECTED, MAP_PARTIAL | MAP_PRIVATE)
            if parcel.lend
            else ("guest_shared", DONATE_TO_SIBLING, MAP_PARTIAL | MAP_VMMIO)
        )
        guest = vm.caps[role]
        for base, size in parcel.sgl:
            hvc.memextent_donate(donate, host, guest, base, size, 0)
            vm.taken.append((base, size, role))
            hvc.addrspace_map(vm.caps["addrspace"], guest, ipa, ATTRS_RWX_WB, flags, base, size)
            ipa += size

    def _labelled_parcel(self, vm: Vm, label: int):
        """The owner's complete, untaken parcel for this VM with ``label`` (an
        ``shm`` vdevice's); ARGUMENT_INVALID if there is none."""
        for parcel in self.rm.memparcels.parcels.values():
            mine = parcel.owner == vm.owner and parcel.rights(vm.vmid) is not None
            if mine and parcel.label == label and parcel.complete and not parcel.users:
                parcel.users.add(vm.vmid)
                return parcel
        raise RmFailure(RmError.ARGUMENT_INVALID, f"no parcel labelled {label}")

    def _give_back(self, vm: Vm) -> None:
        """The parcel pages the VM's extents still hold go back to the host. Pages
        the host already took back by hypercall are the host's again: the donation
        is refused (MEMDB_NOT_OWNER) and nothing is given twice."""
        for base, size, role in vm.taken:
            back = DONATE_FROM_PROTECTED if role == "guest_private" else DONATE_TO_SIBLING
            try:
                self.rm.hvc.memextent_donate(
                    back, vm.caps[role], self.rm.caps["host_private"], base, size, 0
                )
            except HypercallFailed as e:
                if e.error != Error.MEMDB_NOT_OWNER:
                    raise
        vm.taken.clear()

    def _create_doorbell(self, vm: Vm, doorbell) -> None:
        """A doorbell vdevice: the guest takes its SPI, the host gets the send side."""
        rm, hvc = self.rm, self.rm.hvc
        cap = rm.create("doorbell")
        vm.caps[f"doorbell{doorbell.label}"] = cap
        hvc.object_activate(cap, 0)
        hvc.doorbell_bind_virq(cap, vm.caps["vic"], doorbell.virq, 0)
        host_cap = rm.give_host(cap, DoorbellRights.SEND | DoorbellRights.RECEIVE)
        vm.resources.append((ResourceType.DOORBELL_SRC, doorbell.label, host_cap, 0))

    def _create_doorbell_check(self, config) -> None:
        taken = {bell.virq for bell in config.doorbells}
        require(
            not taken & {GUEST_RM_TX_VIRQ, GUEST_RM_RX_VIRQ},
            RmError.ARGUMENT_INVALID,
            "a doorbell uses the RM link's interrupt",
        )

    def _host_virq(self) -> int:
        self._next_virq += 1
        return self._next_virq - 1

    def _destroy(self, vm: Vm) -> None:
        """Delete every capability the VM's objects have, host copies first."""
        for _, _, host_cap, _ in vm.resources:
            self.rm.take_back(host_cap)
        self._give_back(vm)
        if vm.link is not None:
            self.rm.destroy_link(vm.link)
            vm.link = None
        for cap in reversed(list(vm.caps.values())):
            self.rm.hvc.cspace_delete_cap_from(self.rm.caps["cspace"], cap, 0)
        vm.caps.clear()
        vm.vcpus.clear()
        vm.resources.clear()
        self.rm.memparcels.release_from(vm, keep=vm.legacy_image)
        vm.dtb_parcel, vm.firmware, vm.legacy_image = None, None, False

    # exits
    def _set_state(self, vm: Vm, state: VmState, os_state: OsState) -> None:
        vm.state, vm.os_state = state, os_state
        self.rm.notify(MsgId.NOTIFY_VM_STATUS, STATUS.pack(vm.vmid, 0, state, os_state, 0))

    def _exited(
        self,
        vm: Vm,
        exit_type: ExitType,
        code: ExitCode,
        flags: int = 0,
        extra: tuple[int, ...] = (),
    ) -> None:
        """EXITED, and NOTIFY_VM_EXITED with reason word 0 (flags | code << 16) and ``extra``."""
        vm.state, vm.os_state = VmState.EXITED, OsState.HALTED
        vm.exit = (exit_type, code)
        words = struct.pack(f"<{1 + len(extra)}I", (flags & 0xFFFF) | code << 16, *extra)
        self.rm.notify(MsgId.NOTIFY_VM_EXITED, EXITED.pack(vm.vmid, exit_type, len(words)) + words)

    def on_vm_event(self, vcpu, kind: str, a: int, b: int) -> None:
        """The hypervisor reports a guest's PSCI SYSTEM_OFF or SYSTEM_RESET(2)."""
        vm = self.vms.get(vcpu.addrspace.vmid)
        if vm is None or vm.state != VmState.RUNNING:
            return
        if kind == "system_off":
            self._exited(vm, ExitType.PLATFORM_OFF, ExitCode.NORMAL)
        else:
            reset2 = not a >> 63
            exit_type = ExitType.PSCI_SYSTEM_RESET2 if reset2 else ExitType.PLATFORM_RESET
            self._exited(vm, exit_type, ExitCode.NORMAL, flags=EXIT_FLAG_RESTART)


def _rm_node(link) -> dict:
    """The guest's ``gunyah-resource-mgr`` node: its queue capids and interrupts."""
    caps = (link.peer_tx_capid, link.peer_rx_capid)
    return {
        "compatible": "gunyah-resource-manager",
        "reg": [w for cap in caps for w in (cap >> 32, cap & 0xFFFF_FFFF)],
        "interrupts": [0, link.peer_tx_virq - 32, 1, 0, link.peer_rx_virq - 32, 1],
    }
