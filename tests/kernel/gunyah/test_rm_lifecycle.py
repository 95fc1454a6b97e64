"""A VM's whole life through the RM, from the host kernel's RM calls to guest code
running and the exit notification."""

import struct
import threading

import fdt
import pytest

from kernel.gunyah import rsc_mgr_rpc as rpc
from kernel.gunyah.rsc_mgr import RmError
from tests.aarch64 import assemble
from tests.kernel.gunyah.rmhelper import Host, vm_config_dtb

IMAGE_IPA = 0x8000_0000
PARCEL_PA = 0x8000_0000 + (256 << 20)
PARCEL_SIZE = 0x4000
DTB_OFFSET = 0x2000
GUEST = "ldr x0, =0x84000008\n hvc #0\n b ."  # PSCI SYSTEM_OFF


@pytest.fixture
def host():
    h = Host()
    yield h
    h.close()


def lend_image(host, vmid, dtb, guest=GUEST):
    memory = host.firmware.gunyah.dram
    memory.write(PARCEL_PA, assemble(guest))
    memory.write(PARCEL_PA + DTB_OFFSET, dtb)
    parcel = rpc.GunyahRmMemParcel(acl=[(vmid, 7)], mem_entries=[(PARCEL_PA, PARCEL_SIZE)])
    return rpc.gunyah_rm_mem_share(host.rm, parcel), parcel


def test_probe_finds_gunyah_api_1(host):
    assert host.info.api_version == 1
    assert rpc.gunyah_rm_get_vmid(host.rm) == 3  # the host is VMID_HLOS


def test_vm_lifecycle_runs_guest_code_and_reports_its_exit(host):
    events = []
    exited = threading.Event()

    def notified(msg_id, payload):
        events.append((msg_id, payload))
        if msg_id == rpc.NOTIFY_VM_EXITED:
            exited.set()

    host.rm.gunyah_rm_notifier_register(notified)
    vmid = rpc.gunyah_rm_alloc_vmid(host.rm, 0)
    assert 0x80 <= vmid < 0xC0
    handle, _ = lend_image(host, vmid, vm_config_dtb(vcpus=2))
    rpc.gunyah_rm_vm_configure(host.rm, vmid, 0, handle, 0, 0, DTB_OFFSET, 0x1000)
    rpc.gunyah_rm_vm_set_address_layout(host.rm, vmid, 0, IMAGE_IPA, PARCEL_SIZE)
    rpc.gunyah_rm_vm_init(host.rm, vmid)
    resources = rpc.gunyah_rm_get_hyp_resources(host.rm, vmid)
    vcpus = sorted((r.resource_label, r) for r in resources if r.type == 4)
    assert [label for label, _ in vcpus] == [0, 1]
    assert all(r.virq >= 64 for _, r in vcpus)
    rpc.gunyah_rm_vm_start(host.rm, vmid)
    cap = vcpus[0][1].cap_id
    woken = []
    host.firmware.request_irq(vcpus[0][1].virq, woken.append)
    err, state, data = host.hcall.gunyah_hypercall_vcpu_run(cap, (0, 0, 0))
    assert (err, state, data[0]) == (0, 2, 1)  # POWERED_OFF, exited
    assert exited.wait(5)
    exit_msg = next(p for m, p in events if m == rpc.NOTIFY_VM_EXITED)
    vm, exit_type, reason_size = struct.unpack_from("<HHI", exit_msg)
    assert (vm, exit_type, reason_size) == (vmid, 1, 4)  # PLATFORM_OFF
    rpc.gunyah_rm_vm_reset(host.rm, vmid)
    host.rm.flush_notifs()
    statuses = [struct.unpack_from("<HHBB", p) for m, p in events if m == rpc.NOTIFY_VM_STATUS]
    assert statuses[-1][:3] == (vmid, 0, 11)  # RESET
    assert host.firmware.rm.memparcels.parcels == {}  # the reset ended the image parcel
    rpc.gunyah_rm_dealloc_vmid(host.rm, vmid)
    with pytest.raises(RmError):
        rpc.gunyah_rm_vm_start(host.rm, vmid)


def test_illegal_transitions_are_vm_state(host):
    vmid = rpc.gunyah_rm_alloc_vmid(host.rm, 0)
    with pytest.raises(RmError) as e:
        rpc.gunyah_rm_vm_start(host.rm, vmid)
    assert e.value.rm_error == 0x14 and e.value.errno == 74  # VM_STATE -> EBADMSG


def test_retail_policy_refuses_unprotected_vms():
    host = Host(rm_policy="retail")
    try:
        vmid = rpc.gunyah_rm_alloc_vmid(host.rm, 0)
        handle, _ = lend_image(host, vmid, vm_config_dtb())
        rpc.gunyah_rm_vm_configure(host.rm, vmid, 0, handle, 0, 0, DTB_OFFSET, 0x1000)
        rpc.gunyah_rm_vm_set_address_layout(host.rm, vmid, 0, IMAGE_IPA, PARCEL_SIZE)
        rpc.gunyah_rm_vm_init(host.rm, vmid)
        with pytest.raises(RmError) as e:
            rpc.gunyah_rm_vm_start(host.rm, vmid)
        assert e.value.errno == 19  # NORESOURCE -> ENODEV
    finally:
        host.close()


VM_EXIT_GUEST = f"""
    ldr x9, ={IMAGE_IPA + 0x1000:#x}
    ldr x1, [x9]                    // our send queue, from the RM node of our DT
    add x3, x9, #8                  // a VM_EXIT request, below
    ldr x0, =0xc600801b             // msgqueue_send
    mov x2, #12
    mov x4, #1                      // PUSH
    mov x5, #0
    hvc #0
    b .
"""
VM_EXIT_REQUEST = bytes.fromhex("210101008500005600000100")  # flags 0, SOFTWARE_ERROR


def test_guest_vm_exit_over_its_own_rm_link(host):
    events, exited = [], threading.Event()
    host.rm.gunyah_rm_notifier_register(
        lambda m, p: (events.append((m, p)), m == rpc.NOTIFY_VM_EXITED and exited.set())
    )
    vmid = rpc.gunyah_rm_alloc_vmid(host.rm, 0)
    handle, _ = lend_image(host, vmid, vm_config_dtb())
    rpc.gunyah_rm_vm_configure(host.rm, vmid, 0, handle, 0, 0, DTB_OFFSET, 0x1000)
    rpc.gunyah_rm_vm_set_address_layout(host.rm, vmid, 0, IMAGE_IPA, PARCEL_SIZE)
    rpc.gunyah_rm_vm_init(host.rm, vmid)
    dram = host.firmware.gunyah.dram
    tree = fdt.parse_dtb(dram.read(PARCEL_PA + DTB_OFFSET, 0x1000))
    hi, lo = tree.get_property("reg", "/hypervisor/gunyah-resource-mgr@0").data[:2]
    dram.write(PARCEL_PA, assemble(VM_EXIT_GUEST))
    dram.write(PARCEL_PA + 0x1000, struct.pack("<Q", hi << 32 | lo) + VM_EXIT_REQUEST)
    rpc.gunyah_rm_vm_start(host.rm, vmid)
    vcpu = next(r for r in rpc.gunyah_rm_get_hyp_resources(host.rm, vmid) if r.type == 4)
    err, state, _ = host.hcall.gunyah_hypercall_vcpu_run(vcpu.cap_id, (0, 0, 0))
    assert (err, state) == (0, 2)  # POWERED_OFF: the RM stopped the VM
    assert exited.wait(5)
    payload = next(p for m, p in events if m == rpc.NOTIFY_VM_EXITED)
    assert struct.unpack("<HHII", payload) == (vmid, 0, 4, 1 << 16)  # VM_EXIT, SOFTWARE_ERROR
    rpc.gunyah_rm_vm_reset(host.rm, vmid)


@pytest.mark.parametrize(
    ("guest", "exit_type", "word0"),
    [
        ("ldr x0, =0x84000009\n hvc #0\n b .", 2, 1),  # SYSTEM_RESET: PLATFORM_RESET, RESTART
        ("ldr x0, =0xc4000012\n mov x1, #0\n hvc #0\n b .", 3, 1),  # SYSTEM_RESET2
    ],
)
def test_guest_resets_are_exits_with_restart(host, guest, exit_type, word0):
    events = []
    host.rm.gunyah_rm_notifier_register(lambda m, p: events.append((m, p)))
    vmid = rpc.gunyah_rm_alloc_vmid(host.rm, 0)
    handle, _ = lend_image(host, vmid, vm_config_dtb(), guest)
    rpc.gunyah_rm_vm_configure(host.rm, vmid, 0, handle, 0, 0, DTB_OFFSET, 0x1000)
    rpc.gunyah_rm_vm_set_address_layout(host.rm, vmid, 0, IMAGE_IPA, PARCEL_SIZE)
    rpc.gunyah_rm_vm_init(host.rm, vmid)
    rpc.gunyah_rm_vm_start(host.rm, vmid)
    vcpu = next(r for r in rpc.gunyah_rm_get_hyp_resources(host.rm, vmid) if r.type == 4)
    err, state, _ = host.hcall.gunyah_hypercall_vcpu_run(vcpu.cap_id, (0, 0, 0))
    assert (err, state) == (0, 0x100)  # PSCI_SYSTEM_RESET
    host.rm.flush_notifs()
    payload = next(p for m, p in events if m == rpc.NOTIFY_VM_EXITED)
    assert struct.unpack("<HHII", payload) == (vmid, exit_type, 4, word0)
