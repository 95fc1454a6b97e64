/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * Userspace ABI of the MediaTek GenieZone VM manager, /dev/gzvm, as the
 * newest LKML posting (v13) and Android Common Kernels define it.
 *
 * Written for gunyah-sim from the facts of those headers. Kernel-only
 * helpers (GENMASK, FIELD_PREP) are spelt as plain constants so that the
 * header compiles in userspace; the values are the same.
 * uapi/linux/gzvm.py loads it.
 */
#ifndef _UAPI_LINUX_GZVM_H
#define _UAPI_LINUX_GZVM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define GZVM_IOC_MAGIC 0x92

/* Capabilities, for GZVM_CHECK_EXTENSION and GZVM_ENABLE_CAP. */
#define GZVM_CAP_VM_GPA_SIZE 0xa5
#define GZVM_CAP_PROTECTED_VM 0xffbadab1
#define GZVM_CAP_BLOCK_BASED_DEMAND_PAGING 0x9201
#define GZVM_CAP_ENABLE_DEMAND_PAGING 0x9202
#define GZVM_CAP_ENABLE_IDLE 0x9203

/* Sub-commands of GZVM_CAP_PROTECTED_VM, in gzvm_enable_cap.args[0]. */
#define GZVM_CAP_PVM_SET_PVMFW_GPA 0
#define GZVM_CAP_PVM_GET_PVMFW_SIZE 1
#define GZVM_CAP_PVM_SET_PROTECTED_VM 2

/*
 * ioctls for /dev/gzvm fds:
 */

/**
 * GZVM_CREATE_VM - create a VM; the argument is the VM type (0).
 */
#define GZVM_CREATE_VM _IO(GZVM_IOC_MAGIC, 0x01)

/**
 * GZVM_CHECK_EXTENSION - the argument points to a __u64 capability; the
 * answer is written back through it. Valid on VM fds too.
 */
#define GZVM_CHECK_EXTENSION _IO(GZVM_IOC_MAGIC, 0x03)

/*
 * ioctls for VM fds:
 */

/**
 * struct gzvm_memory_region - a memory region without a userspace address
 * @slot: slot number
 * @flags: region flags
 * @guest_phys_addr: IPA of the region
 * @memory_size: bytes
 */
struct gzvm_memory_region {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
};

#define GZVM_SET_MEMORY_REGION \
	_IOW(GZVM_IOC_MAGIC, 0x40, struct gzvm_memory_region)

/**
 * GZVM_CREATE_VCPU - create a vCPU; the argument is its id (0..7).
 */
#define GZVM_CREATE_VCPU _IO(GZVM_IOC_MAGIC, 0x41)

/**
 * struct gzvm_userspace_memory_region - userspace memory for guest RAM
 * @slot: slot number
 * @flags: passed to EL2 as the region's purpose
 * @guest_phys_addr: IPA of the region
 * @memory_size: bytes
 * @userspace_addr: host virtual address of the memory
 */
struct gzvm_userspace_memory_region {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
};

#define GZVM_SET_USER_MEMORY_REGION \
	_IOW(GZVM_IOC_MAGIC, 0x46, struct gzvm_userspace_memory_region)

/* Fields of gzvm_irq_level.irq, the KVM_IRQ_LINE layout of arm64. */
#define GZVM_IRQ_VCPU2_SHIFT 28
#define GZVM_IRQ_VCPU2_MASK 0xf
#define GZVM_IRQ_TYPE_SHIFT 24
#define GZVM_IRQ_TYPE_MASK 0xf
#define GZVM_IRQ_VCPU_SHIFT 16
#define GZVM_IRQ_VCPU_MASK 0xff
#define GZVM_IRQ_NUM_SHIFT 0
#define GZVM_IRQ_NUM_MASK 0xffff

/* Interrupt types of the irq field (ignored by the driver). */
#define GZVM_IRQ_TYPE_CPU 0
#define GZVM_IRQ_TYPE_SPI 1
#define GZVM_IRQ_TYPE_PPI 2

/* Lines of a GZVM_IRQ_TYPE_CPU interrupt. */
#define GZVM_IRQ_CPU_IRQ 0
#define GZVM_IRQ_CPU_FIQ 1

/**
 * struct gzvm_irq_level - raise or lower an interrupt line
 * @irq: line, encoded with the GZVM_IRQ_* fields
 * @status: the same word, read back
 * @level: 1 to raise, 0 to lower
 */
struct gzvm_irq_level {
	union {
		__u32 irq;
		__s32 status;
	};
	__u32 level;
};

#define GZVM_IRQ_LINE _IOW(GZVM_IOC_MAGIC, 0x61, struct gzvm_irq_level)

/* Flags of struct gzvm_irqfd. */
#define GZVM_IRQFD_FLAG_DEASSIGN (1UL << 0)
#define GZVM_IRQFD_FLAG_RESAMPLE (1UL << 1)

/**
 * struct gzvm_irqfd - bind an eventfd to an interrupt line
 * @fd: an eventfd
 * @gsi: SPI number counted from 0
 * @flags: GZVM_IRQFD_FLAG_*
 * @resamplefd: eventfd signalled when a level interrupt is acked
 * @pad: must be zero
 */
struct gzvm_irqfd {
	__u32 fd;
	__u32 gsi;
	__u32 flags;
	__u32 resamplefd;
	__u8 pad[16];
};

#define GZVM_IRQFD _IOW(GZVM_IOC_MAGIC, 0x76, struct gzvm_irqfd)

/* Flags of struct gzvm_ioeventfd. */
#define GZVM_IOEVENTFD_FLAG_DATAMATCH (1UL << 0)
#define GZVM_IOEVENTFD_FLAG_PIO (1UL << 1)
#define GZVM_IOEVENTFD_FLAG_DEASSIGN (1UL << 2)
#define GZVM_IOEVENTFD_VALID_FLAG_MASK 7

/**
 * struct gzvm_ioeventfd - bind an eventfd to a guest MMIO write
 * @datamatch: value to match with GZVM_IOEVENTFD_FLAG_DATAMATCH
 * @addr: guest physical address
 * @len: access length: 0, 1, 2, 4 or 8
 * @fd: an eventfd
 * @flags: GZVM_IOEVENTFD_FLAG_*
 * @pad: padding
 */
struct gzvm_ioeventfd {
	__u64 datamatch;
	__u64 addr;
	__u32 len;
	__s32 fd;
	__u32 flags;
	__u8 pad[36];
};

#define GZVM_IOEVENTFD _IOW(GZVM_IOC_MAGIC, 0x79, struct gzvm_ioeventfd)

/**
 * struct gzvm_enable_cap - enable a capability of a VM
 * @cap: GZVM_CAP_*
 * @args: the capability's arguments (hypercall registers x3..x7)
 */
struct gzvm_enable_cap {
	__u64 cap;
	__u64 args[5];
};

#define GZVM_ENABLE_CAP _IOW(GZVM_IOC_MAGIC, 0xa3, struct gzvm_enable_cap)

/**
 * enum gzvm_device_type - devices GZVM_CREATE_DEVICE can create
 * @GZVM_DEV_TYPE_ARM_VGIC_V3_DIST: the GICv3 distributor
 * @GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST: the GICv3 redistributors
 * @GZVM_DEV_TYPE_MAX: number of types
 */
enum gzvm_device_type {
	GZVM_DEV_TYPE_ARM_VGIC_V3_DIST = 0,
	GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST = 1,
	GZVM_DEV_TYPE_MAX,
};

/**
 * struct gzvm_create_device - create an emulated device
 * @dev_type: enum gzvm_device_type
 * @id: device id
 * @flags: device flags
 * @dev_addr: IPA of the device
 * @dev_reg_size: bytes of its registers
 * @attr_addr: user address of extra attributes
 * @attr_size: bytes of attributes, at most a page
 */
struct gzvm_create_device {
	__u32 dev_type;
	__u32 id;
	__u64 flags;
	__u64 dev_addr;
	__u64 dev_reg_size;
	__u64 attr_addr;
	__u64 attr_size;
};

#define GZVM_CREATE_DEVICE \
	_IOWR(GZVM_IOC_MAGIC, 0xe0, struct gzvm_create_device)

/**
 * struct gzvm_dtb_config - where the guest's devicetree lives
 * @dtb_addr: guest physical address of the DTB
 * @dtb_size: bytes
 */
struct gzvm_dtb_config {
	__u64 dtb_addr;
	__u64 dtb_size;
};

#define GZVM_SET_DTB_CONFIG _IOW(GZVM_IOC_MAGIC, 0xff, struct gzvm_dtb_config)

/*
 * ioctls for vCPU fds:
 */

/* Exit reasons, struct gzvm_vcpu_run.exit_reason. */
enum {
	GZVM_EXIT_UNKNOWN = 0x92920000,
	GZVM_EXIT_MMIO = 0x92920001,
	GZVM_EXIT_HYPERCALL = 0x92920002,
	GZVM_EXIT_IRQ = 0x92920003,
	GZVM_EXIT_EXCEPTION = 0x92920004,
	GZVM_EXIT_DEBUG = 0x92920005,
	GZVM_EXIT_FAIL_ENTRY = 0x92920006,
	GZVM_EXIT_INTERNAL_ERROR = 0x92920007,
	GZVM_EXIT_SYSTEM_EVENT = 0x92920008,
	GZVM_EXIT_SHUTDOWN = 0x92920009,
	GZVM_EXIT_GZ = 0x9292000a,
	GZVM_EXIT_IDLE = 0x9292000b,
	GZVM_EXIT_IPI = 0x9292000d,
};

/* Exception codes, struct gzvm_vcpu_run.exception.exception. */
enum {
	GZVM_EXCEPTION_UNKNOWN = 0x0,
	GZVM_EXCEPTION_PAGE_FAULT = 0x1,
};

/* Guest hypercalls the VMM may see in hypercall.args[0]. */
#define GZVM_HVC_PTP 0x86000001
#define GZVM_HVC_MEM_RELINQUISH 0xc6000009

/* System event types, struct gzvm_vcpu_run.system_event.type. */
#define GZVM_SYSTEM_EVENT_SHUTDOWN 1
#define GZVM_SYSTEM_EVENT_RESET 2
#define GZVM_SYSTEM_EVENT_CRASH 3
#define GZVM_SYSTEM_EVENT_WAKEUP 4
#define GZVM_SYSTEM_EVENT_SUSPEND 5
#define GZVM_SYSTEM_EVENT_SEV_TERM 6
#define GZVM_SYSTEM_EVENT_S2IDLE 7

/**
 * struct gzvm_vcpu_run - exit information, copied in and out by GZVM_RUN
 * @exit_reason: GZVM_EXIT_*
 * @immediate_exit: 1 makes GZVM_RUN return EINTR before entering the guest
 * @padding1: must be zero
 * @mmio: GZVM_EXIT_MMIO
 * @mmio.phys_addr: guest address of the access
 * @mmio.data: written bytes, or the value to return to a read
 * @mmio.size: access size in bytes
 * @mmio.reg_nr: guest register of the access
 * @mmio.is_write: 1 for a write
 * @fail_entry: GZVM_EXIT_FAIL_ENTRY
 * @fail_entry.hardware_entry_failure_reason: why entry failed
 * @fail_entry.cpu: on which CPU
 * @exception: GZVM_EXIT_EXCEPTION
 * @exception.exception: GZVM_EXCEPTION_*
 * @exception.error_code: error code of the exception
 * @exception.fault_gpa: faulting guest address of a page fault
 * @exception.reserved: must be zero for the kernel to handle the fault
 * @hypercall: GZVM_EXIT_HYPERCALL
 * @hypercall.args: SMCCC registers, in and out; args[0] is the function id
 * @internal: GZVM_EXIT_INTERNAL_ERROR
 * @internal.suberror: error code
 * @internal.ndata: used entries of @internal.data
 * @internal.data: details
 * @system_event: GZVM_EXIT_SYSTEM_EVENT
 * @system_event.type: GZVM_SYSTEM_EVENT_*
 * @system_event.ndata: used entries of @system_event.data
 * @system_event.data: details
 * @padding: fixes the size of the union
 */
struct gzvm_vcpu_run {
	__u32 exit_reason;
	__u8 immediate_exit;
	__u8 padding1[3];
	union {
		struct {
			__u64 phys_addr;
			__u8 data[8];
			__u64 size;
			__u32 reg_nr;
			__u8 is_write;
		} mmio;
		struct {
			__u64 hardware_entry_failure_reason;
			__u32 cpu;
		} fail_entry;
		struct {
			__u32 exception;
			__u32 error_code;
			__u64 fault_gpa;
			__u64 reserved[30];
		} exception;
		struct {
			__u64 args[8];
		} hypercall;
		struct {
			__u32 suberror;
			__u32 ndata;
			__u64 data[16];
		} internal;
		struct {
			__u32 type;
			__u32 ndata;
			__u64 data[16];
		} system_event;
		char padding[256];
	};
};

/**
 * GZVM_RUN - run the vCPU; the argument points to a struct gzvm_vcpu_run.
 */
#define GZVM_RUN _IO(GZVM_IOC_MAGIC, 0x80)

/* Register ids of struct gzvm_one_reg, the KVM arm64 ONE_REG scheme. */
#define GZVM_REG_GENERIC 0x0000000000000000ULL
#define GZVM_REG_ARCH_ARM64 0x6000000000000000ULL
#define GZVM_REG_ARCH_MASK 0xff00000000000000ULL
#define GZVM_REG_SIZE_SHIFT 52
#define GZVM_REG_SIZE_MASK 0x00f0000000000000ULL
#define GZVM_REG_SIZE_U8 0x0000000000000000ULL
#define GZVM_REG_SIZE_U16 0x0010000000000000ULL
#define GZVM_REG_SIZE_U32 0x0020000000000000ULL
#define GZVM_REG_SIZE_U64 0x0030000000000000ULL
#define GZVM_REG_SIZE_U128 0x0040000000000000ULL
#define GZVM_REG_SIZE_U256 0x0050000000000000ULL
#define GZVM_REG_SIZE_U512 0x0060000000000000ULL
#define GZVM_REG_SIZE_U1024 0x0070000000000000ULL
#define GZVM_REG_SIZE_U2048 0x0080000000000000ULL
#define GZVM_REG_TYPE_GENERAL2 (0x10 << 16)

/**
 * struct gzvm_one_reg - one guest register
 * @id: GZVM_REG_* id
 * @addr: user pointer to the value
 */
struct gzvm_one_reg {
	__u64 id;
	__u64 addr;
};

#define GZVM_GET_ONE_REG _IOW(GZVM_IOC_MAGIC, 0xab, struct gzvm_one_reg)
#define GZVM_SET_ONE_REG _IOW(GZVM_IOC_MAGIC, 0xac, struct gzvm_one_reg)

#endif /* _UAPI_LINUX_GZVM_H */
