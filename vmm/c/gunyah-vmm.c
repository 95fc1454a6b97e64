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
#include <errno.h>
#include <fcntl.h>
#include <linux/gunyah.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

#define MAX_VCPUS 64
#define EXIT_TYPE_PLATFORM_OFF 1 /* the RM's exit type of a PSCI SYSTEM_OFF */

struct vcpu {
	unsigned int id;
	int fd;
	struct gunyah_vcpu_run *run;
	size_t run_size;
	pthread_t thread;
};

static struct vcpu vcpus[MAX_VCPUS];
static unsigned int nr_vcpus;
static int threads_started; /* every vCPU thread exists: kick_all may signal them */
static int failed; /* a vCPU could not go on: the others are kicked */
static int powered_off;

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
}

/* Every vCPU out of its run: immediate_exit for the next one, a signal for this one. */
static void kick_all(void)
{
	if (!__atomic_load_n(&threads_started, __ATOMIC_SEQ_CST))
		return; /* main kicks them once they exist */
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		vcpus[i].run->immediate_exit = 1;
		pthread_kill(vcpus[i].thread, KICK_SIGNAL);
	}
}

/* The first problem: one line on stderr, and every vCPU stops (later ones say nothing). */
static void __attribute__((format(printf, 2, 3))) fail(unsigned int id, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(&failed, 1, __ATOMIC_SEQ_CST))
		return;
	fflush(stdout);
	fprintf(stderr, "gunyah-vmm: vCPU %u: ", id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kick_all();
}

static void handle_mmio(struct gunyah_vcpu_run *run)
{
	uint64_t value = 0;
	unsigned int len = run->mmio.len < 8 ? run->mmio.len : 8;
	bool found;

	if (run->mmio.is_write) {
		memcpy(&value, run->mmio.data, len);
		found = mmio_write(run->mmio.phys_addr, len, value);
	} else {
		found = mmio_read(run->mmio.phys_addr, len, &value);
		memcpy(run->mmio.data, &value, sizeof(run->mmio.data));
	}
	run->mmio.resume_action = found ? GUNYAH_VCPU_RESUME_HANDLED : GUNYAH_VCPU_RESUME_FAULT;
}

/* The VM is down: a clean power-off, or a line saying how it went down. */
static void handle_status(struct vcpu *vcpu)
{
	struct gunyah_vcpu_run *run = vcpu->run;

	if (run->status.status == GUNYAH_VM_STATUS_EXITED &&
	    run->status.exit_info.type == EXIT_TYPE_PLATFORM_OFF) {
		__atomic_store_n(&powered_off, 1, __ATOMIC_SEQ_CST);
		return;
	}
	if (!__atomic_load_n(&powered_off, __ATOMIC_SEQ_CST))
		fail(vcpu->id, "the VM %s (status %u, exit type %u)",
		     run->status.status == GUNYAH_VM_STATUS_CRASHED ? "crashed" : "is down",
		     run->status.status, run->status.exit_info.type);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct gunyah_vcpu_run *run = vcpu->run;

	while (!__atomic_load_n(&failed, __ATOMIC_SEQ_CST)) {
		if (ioctl(vcpu->fd, GUNYAH_VCPU_RUN) < 0) {
			if (errno != EINTR)
				fail(vcpu->id, "GUNYAH_VCPU_RUN: %s", strerror(errno));
			continue;
		}
		switch (run->exit_reason) {
		case GUNYAH_VCPU_EXIT_MMIO:
			handle_mmio(run);
			break;
		case GUNYAH_VCPU_EXIT_STATUS:
			handle_status(vcpu);
			return NULL;
		case GUNYAH_VCPU_EXIT_PAGE_FAULT:
			fail(vcpu->id, "guest address %#llx cannot be paged in (%s)",
			     (unsigned long long)run->page_fault.phys_addr,
			     strerror(-run->page_fault.attempt));
			return NULL;
		default:
			fail(vcpu->id, "unknown exit reason %u", run->exit_reason);
			return NULL;
		}
	}
	return NULL;
}

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

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd < 0)
		die(true, "eventfd");
	return fd;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct guest guest;
	int dev, vm, gmem, shared_gmem, irqfd, notify;
	uint8_t *ram, *window;

	parse_options(argc, argv, MAX_VCPUS, &opt);
	read_guest(&opt, &guest);
	setvbuf(stdout, NULL, _IOLBF, 0);
	kick_handler_install();

	dev = open("/dev/gunyah", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		die(true, "/dev/gunyah");
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

	nr_vcpus = opt.vcpus;
	for (unsigned int i = 0; i < nr_vcpus; i++)
		create_vcpu(vm, &vcpus[i], i);
	virtio_console_start(window, irqfd, notify);
	if (ioctl(vm, GUNYAH_VM_START))
		die(true, "GUNYAH_VM_START");

	for (unsigned int i = 0; i < nr_vcpus; i++)
		if (pthread_create(&vcpus[i].thread, NULL, vcpu_thread, &vcpus[i]))
			die(false, "cannot start the thread of vCPU %u", i);
	__atomic_store_n(&threads_started, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&failed, __ATOMIC_SEQ_CST))
		kick_all();
	for (unsigned int i = 0; i < nr_vcpus; i++)
		pthread_join(vcpus[i].thread, NULL);

	/* Teardown in reverse order of creation. */
	virtio_console_stop();
	for (unsigned int i = nr_vcpus; i-- > 0;) {
		munmap(vcpus[i].run, vcpus[i].run_size);
		close(vcpus[i].fd);
	}
	munmap(window, SHARED_SIZE);
	close(shared_gmem);
	close(notify);
	close(irqfd);
	close(gmem);
	close(vm);
	close(dev);
	fflush(stdout);
	return powered_off && !failed ? 0 : 1;
}
