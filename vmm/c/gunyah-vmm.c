// SPDX-License-Identifier: GPL-2.0-only
/*
 * gunyah-vmm: a small VMM for /dev/gunyah (the v16 UAPI, linux/gunyah.h).
 *
 *   gunyah-vmm [--vcpus N] [--mem SIZE] --dtb FILE GUEST.elf
 *
 * Guest RAM is one guest_memfd, loaded (the ELF's segments, the VM config
 * DT at its end) through a mapping that is gone before MAP_MEM lends it to
 * the guest. The virtio console's shared window is a second guest_memfd,
 * shared, which the VMM maps; its interrupt is an irqfd on doorbell 1 (the
 * DT's bell-1) and its QueueNotify an ioeventfd. The boot vCPU starts at
 * the ELF's entry with X1 = the number of vCPUs (the Resource Manager sets
 * X0 to the DTB). One thread per vCPU runs VCPU_RUN on its mmap'ed run
 * page and serves MMIO exits (devices.c); the event thread serves the
 * virtio console (virtio.c).
 * Exit 0 when the guest powers off; 1, with one line, when the VM crashes
 * or a vCPU cannot go on; 2 for bad usage, or a guest or DTB that cannot
 * be read (common.c).
 */
#include <linux/gunyah.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

#define MAX_VCPUS 64
#define EXIT_TYPE_PLATFORM_OFF 1 /* the RM's exit type of a PSCI SYSTEM_OFF */

static struct vcpu vcpus[MAX_VCPUS];

static int create_guest_mem(int dev, uint64_t size)
{
	struct gunyah_create_mem_args args = { .flags = GHMF_CLOEXEC, .size = size };
	int fd = ioctl(dev, GUNYAH_CREATE_GUEST_MEM, &args);

	if (fd < 0)
		die(true, "GUNYAH_CREATE_GUEST_MEM");
	return fd;
}

/* A VM function; returns what ADD_FUNCTION returns (a vCPU's fd, or 0). */
static int add_function(int vm, __u32 type, const void *arg, __u32 arg_size, const char *what)
{
	struct gunyah_fn_desc desc = { .type = type, .arg_size = arg_size, .arg = (uintptr_t)arg };
	int ret = ioctl(vm, GUNYAH_VM_ADD_FUNCTION, &desc);

	if (ret < 0)
		die(true, "GUNYAH_VM_ADD_FUNCTION %s", what);
	return ret;
}

static void map_mem(int vm, int gmem, uint64_t ipa, uint64_t size, __u32 flags)
{
	struct gunyah_map_mem_args map = {
		.guest_addr = ipa,
		.flags = flags,
		.guest_mem_fd = gmem,
		.size = size,
	};

	if (ioctl(vm, GUNYAH_VM_MAP_MEM, &map))
		die(true, "GUNYAH_VM_MAP_MEM %#llx", (unsigned long long)ipa);
}

static void set_boot_reg(int vm, unsigned int set, unsigned int index, uint64_t value)
{
	struct gunyah_vm_boot_context ctx = {
		.reg = GUNYAH_VM_BOOT_CONTEXT_REG(set, index),
		.value = value,
	};

	if (ioctl(vm, GUNYAH_VM_SET_BOOT_CONTEXT, &ctx))
		die(true, "GUNYAH_VM_SET_BOOT_CONTEXT");
}

static void create_vcpu(int vm, struct vcpu *vcpu, unsigned int id)
{
	struct gunyah_fn_vcpu_arg arg = { .id = id };
	int size;

	vcpu->id = id;
	vcpu->fd = add_function(vm, GUNYAH_FN_VCPU, &arg, sizeof(arg), "vCPU");
	size = ioctl(vcpu->fd, GUNYAH_VCPU_MMAP_SIZE);
	if (size < 0)
		die(true, "GUNYAH_VCPU_MMAP_SIZE");
	vcpu->run_size = size;
	vcpu->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED)
		die(true, "mmap vCPU %u run page", id);
	vcpu->immediate_exit = &((struct gunyah_vcpu_run *)vcpu->run)->immediate_exit;
}

static void handle_mmio(struct gunyah_vcpu_run *run)
{
	bool found = mmio_exit(run->mmio.phys_addr, run->mmio.len, run->mmio.is_write, run->mmio.data);

	run->mmio.resume_action = found ? GUNYAH_VCPU_RESUME_HANDLED : GUNYAH_VCPU_RESUME_FAULT;
}

/* The VM is down: a clean power-off, or a line saying how it went down. */
static void handle_status(struct vcpu *vcpu)
{
	struct gunyah_vcpu_run *run = vcpu->run;

	if (run->status.status == GUNYAH_VM_STATUS_EXITED &&
	    run->status.exit_info.type == EXIT_TYPE_PLATFORM_OFF) {
		guest_powered_off();
		return;
	}
	if (!guest_is_off())
		vcpu_fail(vcpu, "the VM %s (status %u, exit type %u)",
			  run->status.status == GUNYAH_VM_STATUS_CRASHED ? "crashed" : "is down",
			  run->status.status, run->status.exit_info.type);
}

static int vcpu_run(struct vcpu *vcpu)
{
	return ioctl(vcpu->fd, GUNYAH_VCPU_RUN);
}

static bool vcpu_exit(struct vcpu *vcpu)
{
	struct gunyah_vcpu_run *run = vcpu->run;

	switch (run->exit_reason) {
	case GUNYAH_VCPU_EXIT_MMIO:
		handle_mmio(run);
		return true;
	case GUNYAH_VCPU_EXIT_STATUS:
		handle_status(vcpu);
		return false;
	case GUNYAH_VCPU_EXIT_PAGE_FAULT:
		vcpu_fail(vcpu, "guest address %#llx cannot be paged in (%s)",
			  (unsigned long long)run->page_fault.phys_addr,
			  strerror(-run->page_fault.attempt));
		return false;
	default:
		vcpu_fail(vcpu, "unknown exit reason %u", run->exit_reason);
		return false;
	}
}

static const struct vcpu_ops gunyah_vcpu_ops = {
	.run_name = "GUNYAH_VCPU_RUN",
	.run = vcpu_run,
	.exit = vcpu_exit,
};

/*
 * The virtio console's shared window (a guest_memfd shared, not lent, and
 * mapped by the VMM), its irqfd on doorbell 1 (the DT's bell-1, SPI
 * VIRTIO_SPI) and its QueueNotify ioeventfd. Returns the window's gmem fd.
 */
static int add_virtio_console(int dev, int vm, int irqfd, int notify, uint8_t **window)
{
	struct gunyah_fn_irqfd_arg irq = { .fd = irqfd, .label = 1 };
	struct gunyah_fn_ioeventfd_arg io = {
		.addr = VIRTIO_BASE + VIRTIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = notify,
	};
	int gmem = create_guest_mem(dev, SHARED_SIZE);

	map_mem(vm, gmem, SHARED_BASE, SHARED_SIZE,
		GUNYAH_MEM_FORCE_SHARE | GUNYAH_MEM_ALLOW_READ | GUNYAH_MEM_ALLOW_WRITE);
	*window = mmap(NULL, SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	if (*window == MAP_FAILED)
		die(true, "mmap the shared window");
	add_function(vm, GUNYAH_FN_IRQFD, &irq, sizeof(irq), "irqfd");
	add_function(vm, GUNYAH_FN_IOEVENTFD, &io, sizeof(io), "ioeventfd");
	return gmem;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct guest guest;
	int dev, vm, gmem, shared_gmem, irqfd, notify, status;
	uint8_t *ram, *window;

	dev = vmm_init(argc, argv, MAX_VCPUS, "/dev/gunyah", &opt, &guest);
	vm = ioctl(dev, GUNYAH_CREATE_VM, 0);
	if (vm < 0)
		die(true, "GUNYAH_CREATE_VM");

	gmem = create_guest_mem(dev, opt.mem);
	ram = mmap(NULL, opt.mem, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	if (ram == MAP_FAILED)
		die(true, "mmap guest memory");
	load_guest(&guest, ram);
	munmap(ram, opt.mem); /* lent memory must not stay mapped in the host */
	map_mem(vm, gmem, RAM_BASE, opt.mem, GUNYAH_MEM_DEFAULT_ACCESS | GUNYAH_MEM_ALLOW_RWX);
	irqfd = new_eventfd();
	notify = new_eventfd();
	shared_gmem = add_virtio_console(dev, vm, irqfd, notify, &window);

	struct gunyah_vm_dtb_config dtb = {
		.guest_phys_addr = guest.dtb_addr,
		.size = DTB_ROOM,
	};
	if (ioctl(vm, GUNYAH_VM_SET_DTB_CONFIG, &dtb))
		die(true, "GUNYAH_VM_SET_DTB_CONFIG");
	set_boot_reg(vm, REG_SET_PC, 0, guest.entry);
	set_boot_reg(vm, REG_SET_X, 1, opt.vcpus);

	for (unsigned int i = 0; i < opt.vcpus; i++)
		create_vcpu(vm, &vcpus[i], i);
	virtio_console_start(window, irqfd, notify);
	if (ioctl(vm, GUNYAH_VM_START))
		die(true, "GUNYAH_VM_START");

	status = run_vcpus(vcpus, opt.vcpus, &gunyah_vcpu_ops);

	/* Teardown in reverse order of creation. */
	virtio_console_stop();
	close_vcpus(vcpus, opt.vcpus);
	munmap(window, SHARED_SIZE);
	close(shared_gmem);
	close(notify);
	close(irqfd);
	close(gmem);
	close(vm);
	close(dev);
	fflush(stdout);
	return status;
}
