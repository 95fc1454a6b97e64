/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * Userspace ABI of the Gunyah VM manager, generation v16 (GUNYAH_ names,
 * guest_memfd memory, boot context, page-fault exits, resume actions).
 *
 * Written for gunyah-sim from the facts of the v16 "virt: gunyah" series;
 * every layout below is the one a v16/v17 kernel expects. This header is the
 * single source of the v16 ABI in gunyah-sim: uapi/linux/gunyah.py loads it.
 */
#ifndef _UAPI_LINUX_GUNYAH_H
#define _UAPI_LINUX_GUNYAH_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define GUNYAH_IOCTL_TYPE 'G'

/*
 * ioctls for /dev/gunyah fds:
 */

/**
 * GUNYAH_CREATE_VM - create a VM; the argument must be 0.
 *
 * Returns a new VM fd (O_CLOEXEC). No Resource Manager call happens yet.
 */
#define GUNYAH_CREATE_VM _IO(GUNYAH_IOCTL_TYPE, 0x0)

/**
 * enum gunyah_mem_flags - flags of struct gunyah_create_mem_args
 * @GHMF_CLOEXEC: the new guest_memfd is close-on-exec
 * @GHMF_ALLOW_HUGEPAGE: back the guest_memfd with 2 MiB folios where it can
 */
enum gunyah_mem_flags {
	GHMF_CLOEXEC = 1UL << 0,
	GHMF_ALLOW_HUGEPAGE = 1UL << 1,
};

/**
 * struct gunyah_create_mem_args - argument of GUNYAH_CREATE_GUEST_MEM
 * @flags: GHMF_* flags; any other bit is EINVAL
 * @size: size of the guest_memfd in bytes; page aligned, immutable
 * @reserved: not checked by v16
 */
struct gunyah_create_mem_args {
	__u64 flags;
	__u64 size;
	__u64 reserved[6];
};

/**
 * GUNYAH_CREATE_GUEST_MEM - create a guest_memfd; returns its fd.
 */
#define GUNYAH_CREATE_GUEST_MEM \
	_IOW(GUNYAH_IOCTL_TYPE, 0x8, struct gunyah_create_mem_args)

/*
 * ioctls for VM fds:
 */

/**
 * struct gunyah_vm_dtb_config - where the VM configuration DT lives
 * @guest_phys_addr: IPA of the DTB; must lie inside a guest_memfd binding
 * @size: bytes reserved for the DTB, including room for the RM's overlay
 */
struct gunyah_vm_dtb_config {
	__u64 guest_phys_addr;
	__u64 size;
};

/**
 * GUNYAH_VM_SET_DTB_CONFIG - tell the VM where its configuration DT is.
 */
#define GUNYAH_VM_SET_DTB_CONFIG \
	_IOW(GUNYAH_IOCTL_TYPE, 0x2, struct gunyah_vm_dtb_config)

/**
 * GUNYAH_VM_START - start the VM; idempotent once it runs.
 */
#define GUNYAH_VM_START _IO(GUNYAH_IOCTL_TYPE, 0x3)

/**
 * enum gunyah_fn_type - kind of a VM function
 * @GUNYAH_FN_VCPU: a vCPU; ADD_FUNCTION returns its fd
 * @GUNYAH_FN_IRQFD: an eventfd that rings a doorbell into the guest
 * @GUNYAH_FN_IOEVENTFD: an eventfd signalled by a guest MMIO write
 */
enum gunyah_fn_type {
	GUNYAH_FN_VCPU = 1,
	GUNYAH_FN_IRQFD,
	GUNYAH_FN_IOEVENTFD,
};

/* Largest gunyah_fn_desc.arg_size the kernel accepts. */
#define GUNYAH_FN_MAX_ARG_SIZE 256

/**
 * struct gunyah_fn_vcpu_arg - argument of a GUNYAH_FN_VCPU function
 * @id: vCPU index; also the label of its vCPU resource
 */
struct gunyah_fn_vcpu_arg {
	__u32 id;
};

/**
 * enum gunyah_irqfd_flags - flags of struct gunyah_fn_irqfd_arg
 * @GUNYAH_IRQFD_FLAGS_LEVEL: level interrupt, re-asserted until the guest acks
 */
enum gunyah_irqfd_flags {
	GUNYAH_IRQFD_FLAGS_LEVEL = 1UL << 0,
};

/**
 * struct gunyah_fn_irqfd_arg - argument of a GUNYAH_FN_IRQFD function
 * @fd: an eventfd
 * @label: label of the doorbell vdevice in the VM configuration DT
 * @flags: GUNYAH_IRQFD_FLAGS_*
 * @padding: padding, keep zero
 */
struct gunyah_fn_irqfd_arg {
	__u32 fd;
	__u32 label;
	__u32 flags;
	__u32 padding;
};

/**
 * enum gunyah_ioeventfd_flags - flags of struct gunyah_fn_ioeventfd_arg
 * @GUNYAH_IOEVENTFD_FLAGS_DATAMATCH: fire only when the written value and
 *                                    length equal @datamatch and @len
 */
enum gunyah_ioeventfd_flags {
	GUNYAH_IOEVENTFD_FLAGS_DATAMATCH = 1UL << 0,
};

/**
 * struct gunyah_fn_ioeventfd_arg - argument of a GUNYAH_FN_IOEVENTFD function
 * @datamatch: value to match with GUNYAH_IOEVENTFD_FLAGS_DATAMATCH
 * @addr: guest physical address of the register
 * @len: access length: 0 (any, without datamatch), 1, 2, 4 or 8
 * @fd: an eventfd
 * @flags: GUNYAH_IOEVENTFD_FLAGS_*
 * @padding: padding, keep zero
 */
struct gunyah_fn_ioeventfd_arg {
	__u64 datamatch;
	__u64 addr;
	__u32 len;
	__s32 fd;
	__u32 flags;
	__u32 padding;
};

/**
 * struct gunyah_fn_desc - a VM function to add or remove
 * @type: enum gunyah_fn_type
 * @arg_size: bytes at @arg, at most GUNYAH_FN_MAX_ARG_SIZE
 * @arg: user pointer to the type's argument structure
 */
struct gunyah_fn_desc {
	__u32 type;
	__u32 arg_size;
	__u64 arg;
};

/**
 * GUNYAH_VM_ADD_FUNCTION - add a VM function; vCPUs return a new fd.
 */
#define GUNYAH_VM_ADD_FUNCTION _IOW(GUNYAH_IOCTL_TYPE, 0x4, struct gunyah_fn_desc)

/**
 * GUNYAH_VM_REMOVE_FUNCTION - remove every function of that type whose
 * argument compares equal.
 */
#define GUNYAH_VM_REMOVE_FUNCTION \
	_IOW(GUNYAH_IOCTL_TYPE, 0x7, struct gunyah_fn_desc)

/**
 * enum gunyah_map_flags - flags of struct gunyah_map_mem_args
 * @GUNYAH_MEM_DEFAULT_ACCESS: let the kernel choose (it lends)
 * @GUNYAH_MEM_FORCE_LEND: the host loses access while the guest has it
 * @GUNYAH_MEM_FORCE_SHARE: host and guest both keep access
 * @GUNYAH_MEM_ALLOW_READ: the guest may read
 * @GUNYAH_MEM_ALLOW_WRITE: the guest may write
 * @GUNYAH_MEM_ALLOW_EXEC: the guest may execute
 * @GUNYAH_MEM_ALLOW_RWX: all three
 * @GUNYAH_MEM_UNMAP: remove (part of) an existing binding instead
 *
 * The access kind sits in the bits of GUNYAH_MEM_ACCESS_MASK; the
 * permissions sit above it. Android kernels use the same names with other
 * bit positions.
 */
enum gunyah_map_flags {
	GUNYAH_MEM_DEFAULT_ACCESS = 0,
	GUNYAH_MEM_FORCE_LEND = 1,
	GUNYAH_MEM_FORCE_SHARE = 2,
#define GUNYAH_MEM_ACCESS_MASK 0x7

	GUNYAH_MEM_ALLOW_READ = 1UL << 4,
	GUNYAH_MEM_ALLOW_WRITE = 1UL << 5,
	GUNYAH_MEM_ALLOW_EXEC = 1UL << 6,
	GUNYAH_MEM_ALLOW_RWX = (GUNYAH_MEM_ALLOW_READ | GUNYAH_MEM_ALLOW_WRITE |
				GUNYAH_MEM_ALLOW_EXEC),

	GUNYAH_MEM_UNMAP = 1UL << 8,
};

/**
 * struct gunyah_map_mem_args - bind guest_memfd pages to guest addresses
 * @guest_addr: IPA of the first page; page aligned
 * @flags: enum gunyah_map_flags
 * @guest_mem_fd: fd from GUNYAH_CREATE_GUEST_MEM
 * @offset: offset into the guest_memfd; page aligned
 * @size: bytes; page aligned
 */
struct gunyah_map_mem_args {
	__u64 guest_addr;
	__u32 flags;
	__u32 guest_mem_fd;
	__u64 offset;
	__u64 size;
};

/**
 * GUNYAH_VM_MAP_MEM - bind (or with GUNYAH_MEM_UNMAP unbind) guest memory.
 */
#define GUNYAH_VM_MAP_MEM _IOW(GUNYAH_IOCTL_TYPE, 0x9, struct gunyah_map_mem_args)

/**
 * enum gunyah_vm_boot_context_reg - register sets of the boot context
 * @REG_SET_X: general purpose registers X0..X31
 * @REG_SET_PC: the program counter (index 0)
 * @REG_SET_SP: a stack pointer (index 0..2)
 */
enum gunyah_vm_boot_context_reg {
	REG_SET_X = 0,
	REG_SET_PC = 1,
	REG_SET_SP = 2,
};

#define GUNYAH_VM_BOOT_CONTEXT_REG_SHIFT 8
#define GUNYAH_VM_BOOT_CONTEXT_REG(reg, idx)                  \
	(((reg & 0xff) << GUNYAH_VM_BOOT_CONTEXT_REG_SHIFT) | \
	 (idx & 0xff))

/**
 * struct gunyah_vm_boot_context - one register of the initial vCPU state
 * @reg: GUNYAH_VM_BOOT_CONTEXT_REG(set, index)
 * @reserved: not checked by v16
 * @value: the register's value
 */
struct gunyah_vm_boot_context {
	__u32 reg;
	__u32 reserved;
	__u64 value;
};

/**
 * GUNYAH_VM_SET_BOOT_CONTEXT - set a boot register; only before START.
 */
#define GUNYAH_VM_SET_BOOT_CONTEXT \
	_IOW(GUNYAH_IOCTL_TYPE, 0xa, struct gunyah_vm_boot_context)

/*
 * ioctls for vCPU fds:
 */

/**
 * enum gunyah_vm_status - why a VM is down, in a STATUS exit
 * @GUNYAH_VM_STATUS_LOAD_FAILED: the VM failed to initialise
 * @GUNYAH_VM_STATUS_EXITED: the VM exited; see exit_info
 * @GUNYAH_VM_STATUS_CRASHED: the VM is down for another reason
 */
enum gunyah_vm_status {
	GUNYAH_VM_STATUS_LOAD_FAILED = 1,
	GUNYAH_VM_STATUS_EXITED = 2,
	GUNYAH_VM_STATUS_CRASHED = 3,
};

/* The RM sends 4 bytes of exit reason today. */
#define GUNYAH_VM_MAX_EXIT_REASON_SIZE 8u

/**
 * struct gunyah_vm_exit_info - how a VM exited, as the RM reported it
 * @type: RM exit type (VM_EXIT 0, PLATFORM_OFF 1, PLATFORM_RESET 2, ...)
 * @padding: padding
 * @reason_size: bytes of @reason the RM sent
 * @reason: the first bytes of the RM's exit reason words
 */
struct gunyah_vm_exit_info {
	__u16 type;
	__u16 padding;
	__u32 reason_size;
	__u8 reason[GUNYAH_VM_MAX_EXIT_REASON_SIZE];
};

/**
 * enum gunyah_vcpu_exit - why GUNYAH_VCPU_RUN returned 0
 * @GUNYAH_VCPU_EXIT_UNKNOWN: nothing to report
 * @GUNYAH_VCPU_EXIT_MMIO: the guest accessed an address nobody handles
 * @GUNYAH_VCPU_EXIT_STATUS: the VM is down; see status
 * @GUNYAH_VCPU_EXIT_PAGE_FAULT: the kernel could not page in guest memory
 */
enum gunyah_vcpu_exit {
	GUNYAH_VCPU_EXIT_UNKNOWN,
	GUNYAH_VCPU_EXIT_MMIO,
	GUNYAH_VCPU_EXIT_STATUS,
	GUNYAH_VCPU_EXIT_PAGE_FAULT,
};

/**
 * enum gunyah_vcpu_resume_action - what to do with the access on resume
 * @GUNYAH_VCPU_RESUME_HANDLED: the VMM emulated it (reads: data is filled)
 * @GUNYAH_VCPU_RESUME_FAULT: inject a data abort into the guest
 * @GUNYAH_VCPU_RESUME_RETRY: run the access again
 */
enum gunyah_vcpu_resume_action {
	GUNYAH_VCPU_RESUME_HANDLED = 0,
	GUNYAH_VCPU_RESUME_FAULT,
	GUNYAH_VCPU_RESUME_RETRY,
};

/**
 * struct gunyah_vcpu_run - the page shared by a vCPU fd's mmap
 * @immediate_exit: set by userspace: make GUNYAH_VCPU_RUN return EINTR
 * @padding: padding
 * @exit_reason: enum gunyah_vcpu_exit, set by the kernel
 * @mmio: GUNYAH_VCPU_EXIT_MMIO
 * @mmio.phys_addr: guest address of the access
 * @mmio.data: bytes written by the guest, or to return to a read
 * @mmio.len: access length in bytes
 * @mmio.is_write: 1 for a write, 0 for a read
 * @mmio.resume_action: enum gunyah_vcpu_resume_action, set by userspace
 * @status: GUNYAH_VCPU_EXIT_STATUS
 * @status.status: enum gunyah_vm_status
 * @status.exit_info: how the VM exited
 * @page_fault: GUNYAH_VCPU_EXIT_PAGE_FAULT
 * @page_fault.phys_addr: guest address that could not be paged in
 * @page_fault.attempt: negative errno of the attempt
 * @page_fault.resume_action: preset to GUNYAH_VCPU_RESUME_FAULT
 */
struct gunyah_vcpu_run {
	__u8 immediate_exit;
	__u8 padding[7];

	__u32 exit_reason;

	union {
		struct {
			__u64 phys_addr;
			__u8 data[8];
			__u32 len;
			__u8 is_write;
			__u8 resume_action;
		} mmio;

		struct {
			enum gunyah_vm_status status;
			struct gunyah_vm_exit_info exit_info;
		} status;

		struct {
			__u64 phys_addr;
			__s32 attempt;
			__u8 resume_action;
		} page_fault;
	};
};

/**
 * GUNYAH_VCPU_RUN - run the vCPU until an exit for userspace.
 */
#define GUNYAH_VCPU_RUN _IO(GUNYAH_IOCTL_TYPE, 0x5)

/**
 * GUNYAH_VCPU_MMAP_SIZE - bytes to mmap from a vCPU fd for its run page.
 */
#define GUNYAH_VCPU_MMAP_SIZE _IO(GUNYAH_IOCTL_TYPE, 0x6)

#endif /* _UAPI_LINUX_GUNYAH_H */
