// SPDX-License-Identifier: GPL-2.0-only
/*
 * gunyah-ack-vmm: a small VMM for the /dev/gunyah of Android Common Kernels
 * (the GH_ UAPI, linux/gunyah_ack.h), in crosvm's order of calls.
 *
 *   gunyah-ack-vmm [--vcpus N] [--mem SIZE] --dtb FILE GUEST.elf
 *
 * Guest RAM is the VMM's own anonymous memory, loaded (the ELF's segments,
 * the VM config DT at its end) and lent to the VM with
 * GH_VM_ANDROID_LEND_USER_MEM (label 0): the host must not touch it once the
 * VM runs. The virtio console's shared window is more anonymous memory,
 * shared with GH_VM_SET_USER_MEM_REGION (label 1, which the DT's shm
 * vdevice names: write the DT with `gunyah-sim dtb --uapi ...`). Its
 * interrupt is an irqfd on doorbell 1, its QueueNotify an ioeventfd.
 * The boot context is the ELF's entry and X1 = the number of vCPUs; where
 * the driver has no GH_VM_SET_BOOT_CONTEXT (ENOTTY, android14-6.1) the
 * Resource Manager starts the guest at the first byte of the region holding
 * the DTB, so the entry must be there, as crosvm requires, and X1 stays 0.
 * The run page is the older one: an MMIO read is answered in mmio.data by
 * the next GH_VCPU_RUN, and nothing can refuse an access (a read of no
 * device gets 0, a write to none is dropped).
 * Exit status as gunyah-vmm's (common.c): 0 when the guest powers off.
 */
#include <errno.h>
#include <linux/gunyah_ack.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

#define MAX_VCPUS 64
#define EXIT_TYPE_PLATFORM_OFF 1 /* the RM's exit type of a PSCI SYSTEM_OFF */
#define RAM_LABEL 0
#define SHARED_LABEL 1

static struct vcpu vcpus[MAX_VCPUS];

/* Anonymous memory of the VMM, zeroed. */
static uint8_t *anonymous(uint64_t size, const char *what)
{
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		die(true, "mmap %s", what);
	return mem;
}

/* [ipa, ipa+size) of the guest is the VMM's memory at mem: lent, or shared. */
static void user_mem_region(int vm, unsigned long request, __u32 label, __u32 flags, uint64_t ipa,
			    uint64_t size, uint8_t *mem)
{
	struct gh_userspace_memory_region region = {
		.label = label,
		.flags = flags,
		.guest_phys_addr = ipa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)mem,
	};

	if (ioctl(vm, request, &region))
		die(true, "%s %#llx",
		    request == GH_VM_ANDROID_LEND_USER_MEM ? "GH_VM_ANDROID_LEND_USER_MEM" :
							     "GH_VM_SET_USER_MEM_REGION",
		    (unsigned long long)ipa);
}

/* A VM function; returns what ADD_FUNCTION returns (a vCPU's fd, or 0). */
static int add_function(int vm, __u32 type, const void *arg, __u32 arg_size, const char *what)
{
	struct gh_fn_desc desc = { .type = type, .arg_size = arg_size, .arg = (uintptr_t)arg };
	int ret = ioctl(vm, GH_VM_ADD_FUNCTION, &desc);

	if (ret < 0)
		die(true, "GH_VM_ADD_FUNCTION %s", what);
	return ret;
}

/* One boot register; false if the driver has no GH_VM_SET_BOOT_CONTEXT (ENOTTY). */
static bool set_boot_reg(int vm, unsigned int set, unsigned int index, uint64_t value)
{
	struct gh_vm_boot_context ctx = {
		.reg = GH_VM_BOOT_CONTEXT_REG(set, index),
		.value = value,
	};

	if (!ioctl(vm, GH_VM_SET_BOOT_CONTEXT, &ctx))
		return true;
	if (errno != ENOTTY)
		die(true, "GH_VM_SET_BOOT_CONTEXT");
	return false;
}

/* The boot context, or where the driver has none, the check that the RM's own will do. */
static void set_boot_context(int vm, const struct guest *guest, unsigned int vcpus)
{
	if (set_boot_reg(vm, REG_SET_PC, 0, guest->entry)) {
		set_boot_reg(vm, REG_SET_X, 1, vcpus);
		return;
	}
	if (guest->entry != RAM_BASE)
		die(false, "entry %#llx: without GH_VM_SET_BOOT_CONTEXT the guest starts at %#llx",
		    (unsigned long long)guest->entry, RAM_BASE);
}

static void create_vcpu(int vm, struct vcpu *vcpu, unsigned int id)
{
	struct gh_fn_vcpu_arg arg = { .id = id };
	int size;

	vcpu->id = id;
	vcpu->fd = add_function(vm, GH_FN_VCPU, &arg, sizeof(arg), "vCPU");
	size = ioctl(vcpu->fd, GH_VCPU_MMAP_SIZE);
	if (size < 0)
		die(true, "GH_VCPU_MMAP_SIZE");
	vcpu->run_size = size;
	vcpu->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED)
		die(true, "mmap vCPU %u run page", id);
	vcpu->immediate_exit = &((struct gh_vcpu_run *)vcpu->run)->immediate_exit;
}

/* A read's value goes in mmio.data for the next GH_VCPU_RUN (0 where no device is). */
static void handle_mmio(struct gh_vcpu_run *run)
{
	mmio_exit(run->mmio.phys_addr, run->mmio.len, run->mmio.is_write, run->mmio.data);
}

/* The VM is down: a clean power-off, or a line saying how it went down. */
static void handle_status(struct vcpu *vcpu)
{
	struct gh_vcpu_run *run = vcpu->run;

	if (run->status.status == GH_VM_STATUS_EXITED &&
	    run->status.exit_info.type == EXIT_TYPE_PLATFORM_OFF) {
		guest_powered_off();
		return;
	}
	if (!guest_is_off())
		vcpu_fail(vcpu, "the VM %s (status %u, exit type %u)",
			  run->status.status == GH_VM_STATUS_CRASHED ? "crashed" : "is down",
			  run->status.status, run->status.exit_info.type);
}

static int vcpu_run(struct vcpu *vcpu)
{
	return ioctl(vcpu->fd, GH_VCPU_RUN);
}

static bool vcpu_exit(struct vcpu *vcpu)
{
	struct gh_vcpu_run *run = vcpu->run;

	switch (run->exit_reason) {
	case GH_VCPU_EXIT_MMIO:
		handle_mmio(run);
		return true;
	case GH_VCPU_EXIT_STATUS:
		handle_status(vcpu);
		return false;
	default:
		vcpu_fail(vcpu, "unknown exit reason %u", run->exit_reason);
		return false;
	}
}

static const struct vcpu_ops gh_vcpu_ops = {
	.run_name = "GH_VCPU_RUN",
	.run = vcpu_run,
	.exit = vcpu_exit,
};

/* The virtio console's irqfd on doorbell 1 (the DT's bell-1) and its QueueNotify ioeventfd. */
static void add_virtio_console(int vm, int irqfd, int notify)
{
	struct gh_fn_irqfd_arg irq = { .fd = irqfd, .label = 1 };
	struct gh_fn_ioeventfd_arg io = {
		.addr = VIRTIO_BASE + VIRTIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = notify,
	};

	add_function(vm, GH_FN_IRQFD, &irq, sizeof(irq), "irqfd");
	add_function(vm, GH_FN_IOEVENTFD, &io, sizeof(io), "ioeventfd");
}

int main(int argc, char **argv)
{
	struct options opt;
	struct guest guest;
	int dev, vm, irqfd, notify, status;
	uint8_t *ram, *window;

	dev = vmm_init(argc, argv, MAX_VCPUS, "/dev/gunyah", &opt, &guest);
	vm = ioctl(dev, GH_CREATE_VM, 0);
	if (vm < 0)
		die(true, "GH_CREATE_VM");

	ram = anonymous(opt.mem, "guest memory");
	load_guest(&guest, ram);
	user_mem_region(vm, GH_VM_ANDROID_LEND_USER_MEM, RAM_LABEL,
			GH_MEM_ALLOW_READ | GH_MEM_ALLOW_WRITE | GH_MEM_ALLOW_EXEC, RAM_BASE, opt.mem,
			ram);
	window = anonymous(SHARED_SIZE, "the shared window");
	user_mem_region(vm, GH_VM_SET_USER_MEM_REGION, SHARED_LABEL,
			GH_MEM_ALLOW_READ | GH_MEM_ALLOW_WRITE, SHARED_BASE, SHARED_SIZE, window);

	for (unsigned int i = 0; i < opt.vcpus; i++)
		create_vcpu(vm, &vcpus[i], i);
	irqfd = new_eventfd();
	notify = new_eventfd();
	add_virtio_console(vm, irqfd, notify);

	struct gh_vm_dtb_config dtb = {
		.guest_phys_addr = guest.dtb_addr,
		.size = DTB_ROOM,
	};
	if (ioctl(vm, GH_VM_SET_DTB_CONFIG, &dtb))
		die(true, "GH_VM_SET_DTB_CONFIG");
	set_boot_context(vm, &guest, opt.vcpus);
	virtio_console_start(window, irqfd, notify);
	if (ioctl(vm, GH_VM_START))
		die(true, "GH_VM_START");

	status = run_vcpus(vcpus, opt.vcpus, &gh_vcpu_ops);

	/* Teardown in reverse order of creation. */
	virtio_console_stop();
	close(notify);
	close(irqfd);
	close_vcpus(vcpus, opt.vcpus);
	munmap(window, SHARED_SIZE);
	munmap(ram, opt.mem);
	close(vm);
	close(dev);
	fflush(stdout);
	return status;
}
