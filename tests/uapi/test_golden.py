"""The ABI pinned by numbers written from the spec, independent of our code.

Every ioctl number and record size of the three generations, the run-page
layouts, and the constants whose values differ between generations.
"""

import pytest

from uapi.linux import gunyah, gunyah_ack, gzvm

V16_IOCTLS = {
    "GUNYAH_CREATE_VM": 0x00004700,
    "GUNYAH_CREATE_GUEST_MEM": 0x40404708,
    "GUNYAH_VM_SET_DTB_CONFIG": 0x40104702,
    "GUNYAH_VM_START": 0x00004703,
    "GUNYAH_VM_ADD_FUNCTION": 0x40104704,
    "GUNYAH_VCPU_RUN": 0x00004705,
    "GUNYAH_VCPU_MMAP_SIZE": 0x00004706,
    "GUNYAH_VM_REMOVE_FUNCTION": 0x40104707,
    "GUNYAH_VM_MAP_MEM": 0x40204709,
    "GUNYAH_VM_SET_BOOT_CONTEXT": 0x4010470A,
}

ACK_IOCTLS = {
    "GH_CREATE_VM": 0x4700,
    "GH_VM_SET_USER_MEM_REGION": 0x40204701,
    "GH_VM_SET_DTB_CONFIG": 0x40104702,
    "GH_VM_START": 0x4703,
    "GH_VM_ADD_FUNCTION": 0x40104704,
    "GH_VCPU_RUN": 0x4705,
    "GH_VCPU_MMAP_SIZE": 0x4706,
    "GH_VM_REMOVE_FUNCTION": 0x40104707,
    "GH_VM_SET_BOOT_CONTEXT": 0x4010470A,
    "GH_ANDROID_TENTATIVE_UAPI": 0x4110,
    "GH_VM_ANDROID_LEND_USER_MEM": 0x40204111,
    "GH_VM_ANDROID_SET_FW_CONFIG": 0x40104112,
    "GH_VM_RECLAIM_REGION": 0x40104113,
    "GH_ANDROID_CREATE_CMA_MEM_FD": 0x4114,
    "GH_VM_ANDROID_MAP_CMA_MEM": 0x40284115,
    "GH_VM_ANDROID_SET_AUTH_TYPE": 0x40104116,
    "GH_VM_CHECK_EXTENSION": 0x4117,
}

GZVM_IOCTLS = {
    "GZVM_CREATE_VM": 0x00009201,
    "GZVM_CHECK_EXTENSION": 0x00009203,
    "GZVM_SET_MEMORY_REGION": 0x40189240,
    "GZVM_CREATE_VCPU": 0x00009241,
    "GZVM_SET_USER_MEMORY_REGION": 0x40209246,
    "GZVM_IRQ_LINE": 0x40089261,
    "GZVM_IRQFD": 0x40209276,
    "GZVM_IOEVENTFD": 0x40409279,
    "GZVM_RUN": 0x00009280,
    "GZVM_ENABLE_CAP": 0x403092A3,
    "GZVM_GET_ONE_REG": 0x401092AB,
    "GZVM_SET_ONE_REG": 0x401092AC,
    "GZVM_CREATE_DEVICE": 0xC03092E0,
    "GZVM_SET_DTB_CONFIG": 0x401092FF,
}

V16_SIZES = {
    "struct gunyah_create_mem_args": 64,
    "struct gunyah_vm_dtb_config": 16,
    "struct gunyah_fn_desc": 16,
    "struct gunyah_fn_vcpu_arg": 4,
    "struct gunyah_fn_irqfd_arg": 16,
    "struct gunyah_fn_ioeventfd_arg": 32,
    "struct gunyah_map_mem_args": 32,
    "struct gunyah_vm_boot_context": 16,
    "struct gunyah_vm_exit_info": 16,
    "struct gunyah_vcpu_run": 40,
}

ACK_SIZES = {
    "struct gh_userspace_memory_region": 32,
    "struct gh_vm_dtb_config": 16,
    "struct gh_fn_desc": 16,
    "struct gh_fn_vcpu_arg": 4,
    "struct gh_fn_irqfd_arg": 16,
    "struct gh_fn_ioeventfd_arg": 32,
    "struct gh_vm_boot_context": 16,
    "struct gh_vm_exit_info": 16,
    "struct gh_vcpu_run": 40,
    "struct gh_vm_firmware_config": 16,
    "struct gunyah_address_range": 16,
    "struct gunyah_map_cma_mem_args": 40,
    "struct gunyah_auth_desc": 16,
    "struct gunyah_qtvm_auth_arg": 24,
}

GZVM_SIZES = {
    "struct gzvm_memory_region": 24,
    "struct gzvm_userspace_memory_region": 32,
    "struct gzvm_irq_level": 8,
    "struct gzvm_create_device": 48,
    "struct gzvm_enable_cap": 48,
    "struct gzvm_one_reg": 16,
    "struct gzvm_irqfd": 32,
    "struct gzvm_ioeventfd": 64,
    "struct gzvm_dtb_config": 16,
    "struct gzvm_vcpu_run": 264,
}

GENERATIONS = [
    pytest.param(gunyah, V16_IOCTLS, V16_SIZES, id="v16"),
    pytest.param(gunyah_ack, ACK_IOCTLS, ACK_SIZES, id="ack"),
    pytest.param(gzvm, GZVM_IOCTLS, GZVM_SIZES, id="gzvm"),
]


@pytest.mark.parametrize(("module", "ioctls", "sizes"), GENERATIONS)
def test_every_ioctl_number(module, ioctls, sizes):
    assert module.IOCTLS == ioctls
    for name, value in ioctls.items():
        assert getattr(module, name) == value


@pytest.mark.parametrize(("module", "ioctls", "sizes"), GENERATIONS)
def test_every_record_size(module, ioctls, sizes):
    assert set(module.HEADER.records) == set(sizes)
    assert {name: module.ffi.sizeof(name) for name in sizes} == sizes


def _offsets(module, record, paths):
    ffi = module.ffi
    return {p: ffi.offsetof(record, *p.split(".")) for p in paths}


def test_v16_run_page_layout():
    want = {
        "immediate_exit": 0,
        "exit_reason": 8,
        "mmio.phys_addr": 16,
        "mmio.data": 24,
        "mmio.len": 32,
        "mmio.is_write": 36,
        "mmio.resume_action": 37,
        "status.status": 16,
        "status.exit_info": 20,
        "page_fault.phys_addr": 16,
        "page_fault.attempt": 24,
        "page_fault.resume_action": 28,
    }
    assert _offsets(gunyah, "struct gunyah_vcpu_run", want) == want


def test_ack_run_page_has_no_resume_action_or_page_fault():
    ffi = gunyah_ack.ffi
    fields = dict(ffi.typeof("struct gh_vcpu_run").fields)
    assert set(fields) == {"immediate_exit", "padding", "exit_reason", "mmio", "status"}
    assert [n for n, _ in fields["mmio"].type.fields] == ["phys_addr", "data", "len", "is_write"]


def test_gzvm_run_layout():
    want = {
        "exit_reason": 0,
        "immediate_exit": 4,
        "padding1": 5,
        "mmio.phys_addr": 8,
        "mmio.data": 16,
        "mmio.size": 24,
        "mmio.reg_nr": 32,
        "mmio.is_write": 36,
        "exception.fault_gpa": 16,
        "exception.reserved": 24,
        "hypercall.args": 8,
        "system_event.data": 16,
        "padding": 8,
    }
    assert _offsets(gzvm, "struct gzvm_vcpu_run", want) == want


def test_map_flag_layouts_conflict_between_generations():
    v16 = {
        "GUNYAH_MEM_FORCE_LEND": 1,
        "GUNYAH_MEM_FORCE_SHARE": 2,
        "GUNYAH_MEM_ACCESS_MASK": 7,
        "GUNYAH_MEM_ALLOW_READ": 0x10,
        "GUNYAH_MEM_ALLOW_WRITE": 0x20,
        "GUNYAH_MEM_ALLOW_EXEC": 0x40,
        "GUNYAH_MEM_ALLOW_RWX": 0x70,
        "GUNYAH_MEM_UNMAP": 0x100,
    }
    ack = {
        "GUNYAH_MEM_FORCE_LEND": 0x10,
        "GUNYAH_MEM_FORCE_SHARE": 0x20,
        "GUNYAH_MEM_ACCESS_MASK": 0x70,
        "GUNYAH_MEM_ALLOW_READ": 1,
        "GUNYAH_MEM_ALLOW_WRITE": 2,
        "GUNYAH_MEM_ALLOW_EXEC": 4,
        "GUNYAH_MEM_ALLOW_RWX": 7,
        "GUNYAH_MEM_UNMAP": 0x100,
    }
    assert {k: getattr(gunyah, k) for k in v16} == v16
    assert {k: getattr(gunyah_ack, k) for k in ack} == ack
    assert (gunyah_ack.GH_MEM_ALLOW_READ, gunyah_ack.GH_MEM_ALLOW_WRITE) == (1, 2)
    assert gunyah_ack.GH_MEM_ALLOW_EXEC == 4


def test_v16_constants():
    assert (gunyah.GUNYAH_FN_VCPU, gunyah.GUNYAH_FN_IRQFD, gunyah.GUNYAH_FN_IOEVENTFD) == (1, 2, 3)
    assert (gunyah.GHMF_CLOEXEC, gunyah.GHMF_ALLOW_HUGEPAGE) == (1, 2)
    assert gunyah.GUNYAH_FN_MAX_ARG_SIZE == 256
    assert gunyah.GUNYAH_VCPU_EXIT_PAGE_FAULT == 3
    assert gunyah.GUNYAH_VCPU_RESUME_RETRY == 2
    assert gunyah.GUNYAH_VM_STATUS_CRASHED == 3
    assert gunyah.GUNYAH_VM_BOOT_CONTEXT_REG(gunyah.REG_SET_PC, 0) == 0x100
    assert gunyah.GUNYAH_VM_BOOT_CONTEXT_REG(gunyah.REG_SET_SP, 2) == 0x202
    assert gunyah.GUNYAH_VM_BOOT_CONTEXT_REG(gunyah.REG_SET_X, 31) == 0x1F


def test_gzvm_constants():
    assert gzvm.GZVM_EXIT_UNKNOWN == 0x92920000
    assert gzvm.GZVM_EXIT_SYSTEM_EVENT == 0x92920008
    assert gzvm.GZVM_EXIT_IPI == 0x9292000D
    assert gzvm.GZVM_CAP_PROTECTED_VM == 0xFFBADAB1
    assert gzvm.GZVM_CAP_VM_GPA_SIZE == 0xA5
    assert gzvm.GZVM_HVC_MEM_RELINQUISH == 0xC6000009
    assert gzvm.GZVM_REG_ARCH_ARM64 | gzvm.GZVM_REG_SIZE_U64 | gzvm.GZVM_REG_TYPE_GENERAL2 == (
        0x6030000000100000
    )
    assert gzvm.GZVM_IOEVENTFD_VALID_FLAG_MASK == 7
