"""Story: a VMM written against uapi.linux.gzvm alone boots real AArch64 code on GenieZone.

CREATE_VM -> SET_USER_MEMORY_REGION over an anonymous mapping ->
CREATE_VCPU -> SET_ONE_REG (PC, X0) -> CREATE_DEVICE (GICv3 distributor
and redistributor) -> SET_DTB_CONFIG -> a GZVM_RUN loop: the guest's code
page and a page the VMM wrote 3 MiB in are demand paged by the driver
(no exit), an MMIO write carries X0, an MMIO read is answered by the VMM
and written back, and PSCI SYSTEM_OFF is a SYSTEM_EVENT shutdown exit.
Closing everything leaves nothing: host RAM back, no pinned page, no VM
in EL2.
"""

import kernel
from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE
from tests.aarch64 import assemble
from uapi.linux import gzvm as gz

RAM_IPA, RAM_SIZE, MMIO = 0x8000_0000, 4 << 20, 0x1000_0000
DTB_IPA = RAM_IPA + RAM_SIZE - 0x1000
GUEST = f"""
    ldr x9, ={MMIO:#x}
    str x0, [x9]                 // X0 as SET_ONE_REG gave it
    ldr w1, [x9, #8]             // MMIO read, answered by the VMM
    str x1, [x9, #16]            // ... and written back
    ldr x2, ={RAM_IPA + (3 << 20):#x}
    ldr x3, [x2]                 // a page the VMM wrote, in another 2 MiB block
    str x3, [x9, #24]
    ldr x0, =0x84000008          // PSCI SYSTEM_OFF
    hvc #0
    b .
"""
REG_CORE = gz.GZVM_REG_ARCH_ARM64 | gz.GZVM_REG_SIZE_U64 | gz.GZVM_REG_TYPE_GENERAL2
REG_X0, REG_PC = REG_CORE | 0, REG_CORE | 0x40


def ptr(cdata) -> int:
    return int(gz.ffi.cast("uintptr_t", cdata))


def set_reg(host, vcpu, reg_id, value):
    value_box = gz.ffi.new("uint64_t *", value)
    host.ioctl(
        vcpu, gz.GZVM_SET_ONE_REG, gz.ffi.new("struct gzvm_one_reg *", [reg_id, ptr(value_box)])
    )


def test_first_guest():
    host = kernel.boot(dram_size=1 << 30, hypervisor="geniezone")
    free = host.gzvm.mm.free_bytes
    dev = host.open("/dev/gzvm")
    vm = host.ioctl(dev, gz.GZVM_CREATE_VM, 0)

    ram = host.mmap(-1, RAM_SIZE, 3, MAP_PRIVATE | MAP_ANONYMOUS)
    code = assemble(GUEST)
    ram[: len(code)] = code
    ram[3 << 20 : (3 << 20) + 8] = (0xC0FFEE).to_bytes(8, "little")
    region = gz.ffi.new("struct gzvm_userspace_memory_region *")
    region.slot, region.guest_phys_addr, region.memory_size = 0, RAM_IPA, RAM_SIZE
    region.userspace_addr = ptr(gz.ffi.from_buffer(ram))
    assert host.ioctl(vm, gz.GZVM_SET_USER_MEMORY_REGION, region) == 0

    vcpu = host.ioctl(vm, gz.GZVM_CREATE_VCPU, 0)
    set_reg(host, vcpu, REG_PC, RAM_IPA)
    set_reg(host, vcpu, REG_X0, DTB_IPA)
    for dev_type, base, size in (
        (gz.GZVM_DEV_TYPE_ARM_VGIC_V3_DIST, 0x3FFF_0000, 0x1_0000),
        (gz.GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST, 0x3FFF_0000 - 0x2_0000, 0x2_0000),
    ):
        device = gz.ffi.new("struct gzvm_create_device *")
        device.dev_type, device.dev_addr, device.dev_reg_size = dev_type, base, size
        assert host.ioctl(vm, gz.GZVM_CREATE_DEVICE, device) == 0
    dtb = gz.ffi.new("struct gzvm_dtb_config *", [DTB_IPA, 0x1000])
    assert host.ioctl(vm, gz.GZVM_SET_DTB_CONFIG, dtb) == 0

    run = gz.ffi.new("struct gzvm_vcpu_run *")
    seen = []
    while True:
        assert host.ioctl(vcpu, gz.GZVM_RUN, run) == 0
        if run.exit_reason != gz.GZVM_EXIT_MMIO:
            break
        mmio = run.mmio
        data = int.from_bytes(bytes(mmio.data)[: mmio.size], "little")
        seen.append(
            (mmio.phys_addr - MMIO, mmio.size, mmio.is_write, data if mmio.is_write else None)
        )
        if not mmio.is_write:
            mmio.data[0:4] = b"\x78\x56\x34\x12"
    assert seen == [
        (0, 8, 1, DTB_IPA),
        (8, 4, 0, None),
        (16, 8, 1, 0x12345678),
        (24, 8, 1, 0xC0FFEE),
    ]
    assert run.exit_reason == gz.GZVM_EXIT_SYSTEM_EVENT
    assert run.system_event.type == gz.GZVM_SYSTEM_EVENT_SHUTDOWN
    assert host.mm.pinned  # the guest's pages, pinned by demand paging

    for fd in (vcpu, vm, dev):
        host.close(fd)
    host.munmap(ram)
    assert host.mm.pinned == {}
    assert host.gzvm.mm.free_bytes == free
    assert host.gzvm.vm_list == []
    el2 = host.gzvm.firmware.geniezone
    assert el2.vms == {} and el2.owners == {} and el2.shared == set()
    assert host.bugs == [] and host.dmesg == []
    host.shutdown()
