/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * Userspace ABI of the Gunyah VM manager as Android Common Kernels and
 * crosvm speak it: GH_ names, memory through GH_VM_SET_USER_MEM_REGION,
 * the Android 'A' ioctls, and the Android bit layout of the GUNYAH_MEM_*
 * map flags. The vCPU run page is the older one: no resume action and no
 * page-fault exit.
 *
 * Written for gunyah-sim from the facts of the android14-6.1 header and
 * crosvm's bindings; uapi/linux/gunyah_ack.py loads it.
 */
#ifndef _UAPI_LINUX_GUNYAH_ACK_H
#define _UAPI_LINUX_GUNYAH_ACK_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define GH_IOCTL_TYPE 'G'

/**
 * GH_CREATE_VM - create a VM; the argument must be 0. Returns a VM fd.
 */
#define GH_CREATE_VM _IO(GH_IOCTL_TYPE, 0x0)

/* Guest permissions of struct gh_userspace_memory_region.flags. */
#define GH_MEM_ALLOW_READ (1UL << 0)
#define GH_MEM_ALLOW_WRITE (1UL << 1)
#define GH_MEM_ALLOW_EXEC (1UL << 2)

/**
 * struct gh_userspace_memory_region - userspace memory given to a VM
 * @label: identifies the region; one label per region
 * @flags: GH_MEM_ALLOW_* permissions of the guest
 * @guest_phys_addr: IPA of the region; page aligned
 * @memory_size: bytes; page aligned
 * @userspace_addr: host virtual address of the memory; page aligned
 */
struct gh_userspace_memory_region {
	__u32 label;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
};

/**
 * GH_VM_SET_USER_MEM_REGION - share userspace memory with the VM.
 */
#define GH_VM_SET_USER_MEM_REGION \
	_IOW(GH_IOCTL_TYPE, 0x1, struct gh_userspace_memory_region)

/**
 * struct gh_vm_dtb_config - where the VM configuration DT lives
 * @guest_phys_addr: IPA of the DTB, inside a memory region
 * @size: bytes reserved for the DTB and the RM's overlay
 */
struct gh_vm_dtb_config {
	__u64 guest_phys_addr;
	__u64 size;
};

#define GH_VM_SET_DTB_CONFIG _IOW(GH_IOCTL_TYPE, 0x2, struct gh_vm_dtb_config)

/**
 * GH_VM_START - start the VM.
 */
#define GH_VM_START _IO(GH_IOCTL_TYPE, 0x3)

/* Kinds of VM function (struct gh_fn_desc.type). */
#define GH_FN_VCPU 1
#define GH_FN_IRQFD 2
#define GH_FN_IOEVENTFD 3

/* Largest gh_fn_desc.arg_size the kernel accepts. */
#define GH_FN_MAX_ARG_SIZE 256

/**
 * struct gh_fn_vcpu_arg - argument of a GH_FN_VCPU function
 * @id: vCPU index
 */
struct gh_fn_vcpu_arg {
	__u32 id;
};

/* struct gh_fn_irqfd_arg.flags: a level interrupt. */
#define GH_IRQFD_LEVEL (1UL << 0)

/**
 * struct gh_fn_irqfd_arg - argument of a GH_FN_IRQFD function
 * @fd: an eventfd
 * @label: label of the doorbell in the VM configuration DT
 * @flags: GH_IRQFD_LEVEL
 * @padding: padding, keep zero
 */
struct gh_fn_irqfd_arg {
	__u32 fd;
	__u32 label;
	__u32 flags;
	__u32 padding;
};

/* struct gh_fn_ioeventfd_arg.flags: match the written value too. */
#define GH_IOEVENTFD_DATAMATCH (1UL << 0)

/**
 * struct gh_fn_ioeventfd_arg - argument of a GH_FN_IOEVENTFD function
 * @datamatch: value to match with GH_IOEVENTFD_DATAMATCH
 * @addr: guest physical address of the register
 * @len: access length: 0 (any), 1, 2, 4 or 8
 * @fd: an eventfd
 * @flags: GH_IOEVENTFD_DATAMATCH
 * @padding: padding, keep zero
 */
struct gh_fn_ioeventfd_arg {
	__u64 datamatch;
	__u64 addr;
	__u32 len;
	__s32 fd;
	__u32 flags;
	__u32 padding;
};

/**
 * struct gh_fn_desc - a VM function to add or remove
 * @type: GH_FN_*
 * @arg_size: bytes at @arg, at most GH_FN_MAX_ARG_SIZE
 * @arg: user pointer to the type's argument structure
 */
struct gh_fn_desc {
	__u32 type;
	__u32 arg_size;
	__u64 arg;
};

#define GH_VM_ADD_FUNCTION _IOW(GH_IOCTL_TYPE, 0x4, struct gh_fn_desc)
#define GH_VM_REMOVE_FUNCTION _IOW(GH_IOCTL_TYPE, 0x7, struct gh_fn_desc)

/**
 * enum gh_vm_boot_context_reg - register sets of the boot context
 * @REG_SET_X: X0..X31
 * @REG_SET_PC: the program counter
 * @REG_SET_SP: a stack pointer
 */
enum gh_vm_boot_context_reg {
	REG_SET_X = 0,
	REG_SET_PC = 1,
	REG_SET_SP = 2,
};

#define GH_VM_BOOT_CONTEXT_REG_SHIFT 8
#define GH_VM_BOOT_CONTEXT_REG(reg, idx) \
	(((reg & 0xff) << GH_VM_BOOT_CONTEXT_REG_SHIFT) | (idx & 0xff))

/**
 * struct gh_vm_boot_context - one register of the initial vCPU state
 * @reg: GH_VM_BOOT_CONTEXT_REG(set, index)
 * @reserved: keep zero
 * @value: the register's value
 */
struct gh_vm_boot_context {
	__u32 reg;
	__u32 reserved;
	__u64 value;
};

#define GH_VM_SET_BOOT_CONTEXT \
	_IOW(GH_IOCTL_TYPE, 0xa, struct gh_vm_boot_context)

/**
 * enum gh_vm_status - why a VM is down, in a STATUS exit
 * @GH_VM_STATUS_LOAD_FAILED: the VM failed to initialise
 * @GH_VM_STATUS_EXITED: the VM exited
 * @GH_VM_STATUS_CRASHED: the VM is down for another reason
 */
enum gh_vm_status {
	GH_VM_STATUS_LOAD_FAILED = 1,
	GH_VM_STATUS_EXITED = 2,
	GH_VM_STATUS_CRASHED = 3,
};

#define GH_VM_MAX_EXIT_REASON_SIZE 8u

/**
 * struct gh_vm_exit_info - how a VM exited, as the RM reported it
 * @type: RM exit type
 * @padding: padding
 * @reason_size: bytes of @reason the RM sent
 * @reason: the first bytes of the RM's exit reason words
 */
struct gh_vm_exit_info {
	__u16 type;
	__u16 padding;
	__u32 reason_size;
	__u8 reason[GH_VM_MAX_EXIT_REASON_SIZE];
};

/* Why GH_VCPU_RUN returned 0 (struct gh_vcpu_run.exit_reason). */
#define GH_VCPU_EXIT_UNKNOWN 0
#define GH_VCPU_EXIT_MMIO 1
#define GH_VCPU_EXIT_STATUS 2

/**
 * struct gh_vcpu_run - the page shared by a vCPU fd's mmap (older layout)
 * @immediate_exit: set by userspace: make GH_VCPU_RUN return EINTR
 * @padding: padding
 * @exit_reason: GH_VCPU_EXIT_*
 * @mmio: GH_VCPU_EXIT_MMIO
 * @mmio.phys_addr: guest address of the access
 * @mmio.data: bytes written by the guest, or to return to a read
 * @mmio.len: access length in bytes
 * @mmio.is_write: 1 for a write, 0 for a read
 * @status: GH_VCPU_EXIT_STATUS
 * @status.status: enum gh_vm_status
 * @status.exit_info: how the VM exited
 */
struct gh_vcpu_run {
	__u8 immediate_exit;
	__u8 padding[7];

	__u32 exit_reason;

	union {
		struct {
			__u64 phys_addr;
			__u8 data[8];
			__u32 len;
			__u8 is_write;
		} mmio;

		struct {
			enum gh_vm_status status;
			struct gh_vm_exit_info exit_info;
		} status;
	};
};

#define GH_VCPU_RUN _IO(GH_IOCTL_TYPE, 0x5)
#define GH_VCPU_MMAP_SIZE _IO(GH_IOCTL_TYPE, 0x6)

/*
 * Android ioctls, type 'A'.
 */
#define GH_ANDROID_IOCTL_TYPE 'A'

/**
 * enum gunyah_map_flags - map flags of GH_VM_ANDROID_MAP_CMA_MEM
 * @GUNYAH_MEM_ALLOW_READ: the guest may read
 * @GUNYAH_MEM_ALLOW_WRITE: the guest may write
 * @GUNYAH_MEM_ALLOW_EXEC: the guest may execute
 * @GUNYAH_MEM_ALLOW_RWX: all three
 * @GUNYAH_MEM_DEFAULT_ACCESS: let the kernel choose
 * @GUNYAH_MEM_FORCE_LEND: the host loses access while the guest has it
 * @GUNYAH_MEM_FORCE_SHARE: host and guest both keep access
 * @GUNYAH_MEM_UNMAP: remove a mapping instead
 *
 * The Android layout: permissions in the low bits, the access kind in the
 * bits of GUNYAH_MEM_ACCESS_MASK above them. The v16 header uses the same
 * names the other way round.
 */
enum gunyah_map_flags {
	GUNYAH_MEM_ALLOW_READ = 1UL << 0,
	GUNYAH_MEM_ALLOW_WRITE = 1UL << 1,
	GUNYAH_MEM_ALLOW_EXEC = 1UL << 2,
	GUNYAH_MEM_ALLOW_RWX = (GUNYAH_MEM_ALLOW_READ | GUNYAH_MEM_ALLOW_WRITE |
				GUNYAH_MEM_ALLOW_EXEC),
	GUNYAH_MEM_DEFAULT_ACCESS = 0x00,
	GUNYAH_MEM_FORCE_LEND = 0x10,
	GUNYAH_MEM_FORCE_SHARE = 0x20,
#define GUNYAH_MEM_ACCESS_MASK 0x70

	GUNYAH_MEM_UNMAP = 1UL << 8,
};

/**
 * GH_ANDROID_TENTATIVE_UAPI - marks a kernel with the Android ioctls.
 */
#define GH_ANDROID_TENTATIVE_UAPI _IO(GH_ANDROID_IOCTL_TYPE, 0x10)

/**
 * GH_VM_ANDROID_LEND_USER_MEM - lend userspace memory to a protected VM.
 */
#define GH_VM_ANDROID_LEND_USER_MEM \
	_IOW(GH_ANDROID_IOCTL_TYPE, 0x11, struct gh_userspace_memory_region)

/**
 * struct gh_vm_firmware_config - where a protected VM's firmware lives
 * @guest_phys_addr: IPA of the firmware
 * @size: bytes
 */
struct gh_vm_firmware_config {
	__u64 guest_phys_addr;
	__u64 size;
};

#define GH_VM_ANDROID_SET_FW_CONFIG \
	_IOW(GH_ANDROID_IOCTL_TYPE, 0x12, struct gh_vm_firmware_config)

/**
 * struct gunyah_address_range - a range of guest physical addresses
 * @guest_phys_addr: first IPA; page aligned
 * @size: bytes; page aligned
 */
struct gunyah_address_range {
	__u64 guest_phys_addr;
	__u64 size;
};

/**
 * GH_VM_RECLAIM_REGION - take a range of guest memory back from the VM.
 */
#define GH_VM_RECLAIM_REGION \
	_IOW(GH_ANDROID_IOCTL_TYPE, 0x13, struct gunyah_address_range)

/**
 * GH_ANDROID_CREATE_CMA_MEM_FD - on a CMA pool's own misc device: a file of
 * the pool's size (mmap allocates the CMA), for GH_VM_ANDROID_MAP_CMA_MEM.
 */
#define GH_ANDROID_CREATE_CMA_MEM_FD _IO(GH_ANDROID_IOCTL_TYPE, 0x14)

/**
 * struct gunyah_map_cma_mem_args - map memory of a CMA-backed file
 * @label: identifies the mapping
 * @guest_addr: IPA of the first page
 * @flags: enum gunyah_map_flags, Android layout
 * @guest_mem_fd: the backing file
 * @offset: offset into the file
 * @size: bytes
 */
struct gunyah_map_cma_mem_args {
	__u32 label;
	__u64 guest_addr;
	__u32 flags;
	__u32 guest_mem_fd;
	__u64 offset;
	__u64 size;
};

#define GH_VM_ANDROID_MAP_CMA_MEM \
	_IOW(GH_ANDROID_IOCTL_TYPE, 0x15, struct gunyah_map_cma_mem_args)

/**
 * enum gunyah_auth_type - how the RM authenticates a VM's image
 * @GUNYAH_AUTH_ANDROID_PVM: an Android protected VM
 * @GUNYAH_AUTH_QCOM_TRUSTED_VM: a Qualcomm trusted VM
 */
enum gunyah_auth_type {
	GUNYAH_AUTH_ANDROID_PVM = 0,
	GUNYAH_AUTH_QCOM_TRUSTED_VM = 1,
};

/**
 * struct gunyah_qtvm_auth_arg - argument of GUNYAH_AUTH_QCOM_TRUSTED_VM
 * @vm_id: VMID the trusted VM must get
 * @pas_id: peripheral authentication service id of the image
 * @guest_phys_addr: IPA of the image
 * @size: bytes of the image
 */
struct gunyah_qtvm_auth_arg {
	__u16 vm_id;
	__u32 pas_id;
	__u64 guest_phys_addr;
	__u64 size;
};

/**
 * struct gunyah_auth_desc - argument of GH_VM_ANDROID_SET_AUTH_TYPE
 * @type: enum gunyah_auth_type
 * @arg_size: bytes at @arg
 * @arg: user pointer to the type's argument
 */
struct gunyah_auth_desc {
	__u32 type;
	__u32 arg_size;
	__u64 arg;
};

#define GH_VM_ANDROID_SET_AUTH_TYPE \
	_IOW(GH_ANDROID_IOCTL_TYPE, 0x16, struct gunyah_auth_desc)

/* Capabilities for GH_VM_CHECK_EXTENSION. */
#define GH_CAP_VCPU_TIMER_WAKEUP 0

/**
 * GH_VM_CHECK_EXTENSION - returns > 0 if the capability in the argument
 * is supported.
 */
#define GH_VM_CHECK_EXTENSION _IO(GH_ANDROID_IOCTL_TYPE, 0x17)

#endif /* _UAPI_LINUX_GUNYAH_ACK_H */
