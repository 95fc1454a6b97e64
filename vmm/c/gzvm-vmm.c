// SPDX-License-Identifier: GPL-2.0-only
/*
 * gzvm-vmm: a small VMM for /dev/gzvm (MediaTek GenieZone, linux/gzvm.h).
 *
 *   gzvm-vmm [--vcpus N] [--mem SIZE] --dtb FILE GUEST.elf
 *
 * Guest RAM is an anonymous private mapping the VMM keeps, given to the VM
 * as memslot 0 with SET_USER_MEMORY_REGION; the ELF's segments and the DTB
 * (at its end) are written into it first. The virtio console's shared
 * window is memslot 1, its interrupt a GZVM_IRQFD on SPI VIRTIO_SPI, its
 * QueueNotify a GZVM_IOEVENTFD. The GICv3 is made with
 * CREATE_DEVICE at crosvm's layout (the distributor just below 1 GiB, one
 * redistributor frame per vCPU below it): the DTB must say the same, as
 * `gunyah-sim dtb --hypervisor geniezone` does. The boot vCPU gets PSTATE,
 * PC = the ELF's entry, X0 = the DTB and X1 = the number of vCPUs with
 * SET_ONE_REG; there is no START, vCPU 0's first GZVM_RUN starts the guest.
 * One thread per vCPU runs GZVM_RUN on its own struct gzvm_vcpu_run and
 * serves MMIO exits (devices.c; where no device answers, a read gets 0);
 * the event thread serves the virtio console (virtio.c).
 * Exit 0 when the guest powers off; 1, with one line, when it crashes or a
 * vCPU cannot go on; 2 for bad usage, or a guest or DTB that cannot be
 * read (common.c).
 */
#include <linux/gzvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

#define MAX_VCPUS 8 /* the driver's GZVM_MAX_VCPUS */
#define VM_TYPE_LINUX 0
#define GICD_BASE 0x3fff0000ULL
#define GICD_SIZE 0x10000ULL
#define GICR_SIZE 0x20000ULL
/* EL1 with SP_EL1 (EL1h), D, A, I and F masked: the boot vCPU's PSTATE. */
#define PSTATE_EL1H_DAIF 0x3c5
/* ONE_REG ids of the core registers: struct user_pt_regs in 32-bit words. */
#define CORE_REG(word) (GZVM_REG_ARCH_ARM64 | GZVM_REG_SIZE_U64 | GZVM_REG_TYPE_GENERAL2 | (word))
#define REG_X(n) CORE_REG(2 * (n))
#define REG_PC CORE_REG(64)
#define REG_PSTATE CORE_REG(66)

static struct vcpu vcpus[MAX_VCPUS];
static struct gzvm_vcpu_run runs[MAX_VCPUS]; /* the VMM's own: GZVM_RUN copies them in and out */

static void create_device(int vm, __u32 type, uint64_t addr, uint64_t size)
{
	struct gzvm_create_device dev = { .dev_type = type, .dev_addr = addr, .dev_reg_size = size };

	if (ioctl(vm, GZVM_CREATE_DEVICE, &dev))
		die(true, "GZVM_CREATE_DEVICE %u", type);
}

/*
 * Shared anonymous memory of size bytes, memslot slot at ipa; returns the VMM's
 * view. Shared, so that it is a VMA of its own: GenieZone takes only a whole
 * VMA as a memslot, and private anonymous neighbours merge into one.
 */
static uint8_t *add_memslot(int vm, __u32 slot, uint64_t ipa, uint64_t size)
{
	uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		die(true, "mmap guest memory");
	struct gzvm_userspace_memory_region region = {
		.slot = slot,
		.guest_phys_addr = ipa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, GZVM_SET_USER_MEMORY_REGION, &region))
		die(true, "GZVM_SET_USER_MEMORY_REGION %#llx", (unsigned long long)ipa);
	return mem;
}

/* The virtio console's irqfd (SPI VIRTIO_SPI) and QueueNotify ioeventfd. */
static void bind_virtio_console(int vm, int irqfd, int notify)
{
	struct gzvm_irqfd irq = { .fd = irqfd, .gsi = VIRTIO_SPI };
	struct gzvm_ioeventfd io = {
		.addr = VIRTIO_BASE + VIRTIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = notify,
	};

	if (ioctl(vm, GZVM_IRQFD, &irq))
		die(true, "GZVM_IRQFD");
	if (ioctl(vm, GZVM_IOEVENTFD, &io))
		die(true, "GZVM_IOEVENTFD");
}

static void set_reg(int fd, uint64_t id, uint64_t value)
{
	struct gzvm_one_reg reg = { .id = id, .addr = (uintptr_t)&value };

	if (ioctl(fd, GZVM_SET_ONE_REG, &reg))
		die(true, "GZVM_SET_ONE_REG %#llx", (unsigned long long)id);
}

static void handle_mmio(struct gzvm_vcpu_run *run)
{
	/* GZVM_RUN cannot refuse an access: a read of no device gets 0 */
	mmio_exit(run->mmio.phys_addr, run->mmio.size, run->mmio.is_write, run->mmio.data);
}

/* false: the VM is down, this vCPU is done. */
static bool handle_system_event(struct vcpu *vcpu)
{
	struct gzvm_vcpu_run *run = vcpu->run;

	switch (run->system_event.type) {
	case GZVM_SYSTEM_EVENT_SHUTDOWN:
		guest_powered_off();
		return false;
	case GZVM_SYSTEM_EVENT_CRASH:
		vcpu_fail(vcpu, "the VM crashed");
		return false;
	default:
		vcpu_fail(vcpu, "system event %u", run->system_event.type);
		return false;
	}
}

/*
 * GZVM_RUN copies the struct back, so immediate_exit set by a kick during
 * the run is lost; the vCPU loop looks for a failure before each run.
 */
static int vcpu_run(struct vcpu *vcpu)
{
	return ioctl(vcpu->fd, GZVM_RUN, vcpu->run);
}

static bool vcpu_exit(struct vcpu *vcpu)
{
	struct gzvm_vcpu_run *run = vcpu->run;

	switch (run->exit_reason) {
	case GZVM_EXIT_MMIO:
		handle_mmio(run);
		return true;
	case GZVM_EXIT_SYSTEM_EVENT:
		return handle_system_event(vcpu);
	case GZVM_EXIT_EXCEPTION:
		vcpu_fail(vcpu, "exception %u at guest address %#llx", run->exception.exception,
			  (unsigned long long)run->exception.fault_gpa);
		return false;
	default:
		vcpu_fail(vcpu, "exit reason %#x", run->exit_reason);
		return false;
	}
}

static const struct vcpu_ops gzvm_vcpu_ops = {
	.run_name = "GZVM_RUN",
	.run = vcpu_run,
	.exit = vcpu_exit,
};

int main(int argc, char **argv)
{
	struct options opt;
	struct guest guest;
	int dev, vm, irqfd, notify, status;
	uint8_t *ram, *window;

	dev = vmm_init(argc, argv, MAX_VCPUS, "/dev/gzvm", &opt, &guest);
	vm = ioctl(dev, GZVM_CREATE_VM, VM_TYPE_LINUX);
	if (vm < 0)
		die(true, "GZVM_CREATE_VM");
	create_device(vm, GZVM_DEV_TYPE_ARM_VGIC_V3_DIST, GICD_BASE, GICD_SIZE);
	create_device(vm, GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST, GICD_BASE - GICR_SIZE * opt.vcpus,
		      GICR_SIZE);

	ram = add_memslot(vm, 0, RAM_BASE, opt.mem);
	load_guest(&guest, ram);
	window = add_memslot(vm, 1, SHARED_BASE, SHARED_SIZE);
	struct gzvm_dtb_config dtb = { .dtb_addr = guest.dtb_addr, .dtb_size = DTB_ROOM };
	if (ioctl(vm, GZVM_SET_DTB_CONFIG, &dtb))
		die(true, "GZVM_SET_DTB_CONFIG");
	irqfd = new_eventfd();
	notify = new_eventfd();
	bind_virtio_console(vm, irqfd, notify);

	for (unsigned int i = 0; i < opt.vcpus; i++) {
		vcpus[i].id = i;
		vcpus[i].fd = ioctl(vm, GZVM_CREATE_VCPU, i);
		if (vcpus[i].fd < 0)
			die(true, "GZVM_CREATE_VCPU %u", i);
		vcpus[i].run = &runs[i];
		vcpus[i].immediate_exit = &runs[i].immediate_exit;
	}
	set_reg(vcpus[0].fd, REG_PSTATE, PSTATE_EL1H_DAIF);
	set_reg(vcpus[0].fd, REG_PC, guest.entry);
	set_reg(vcpus[0].fd, REG_X(0), guest.dtb_addr);
	set_reg(vcpus[0].fd, REG_X(1), opt.vcpus);
	virtio_console_start(window, irqfd, notify);

	status = run_vcpus(vcpus, opt.vcpus, &gzvm_vcpu_ops);

	/* Teardown in reverse order of creation; closing the VM unpins its memory. */
	virtio_console_stop();
	close_vcpus(vcpus, opt.vcpus);
	close(notify);
	close(irqfd);
	close(vm);
	munmap(window, SHARED_SIZE);
	munmap(ram, opt.mem);
	close(dev);
	fflush(stdout);
	return status;
}
