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
#include <errno.h>
#include <fcntl.h>
#include <linux/gzvm.h>
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

struct vcpu {
	unsigned int id;
	int fd;
	struct gzvm_vcpu_run run;
	pthread_t thread;
};

static struct vcpu vcpus[MAX_VCPUS];
static unsigned int nr_vcpus;
static int threads_started; /* every vCPU thread exists: kick_all may signal them */
static int failed; /* a vCPU could not go on: the others are kicked */
static int powered_off;

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

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd < 0)
		die(true, "eventfd");
	return fd;
}

static void set_reg(int fd, uint64_t id, uint64_t value)
{
	struct gzvm_one_reg reg = { .id = id, .addr = (uintptr_t)&value };

	if (ioctl(fd, GZVM_SET_ONE_REG, &reg))
		die(true, "GZVM_SET_ONE_REG %#llx", (unsigned long long)id);
}

/*
 * Every vCPU out of its run: immediate_exit for the next one, a signal for
 * this one (GZVM_RUN copies the struct back, so the flag is set each time
 * before a run as well).
 */
static void kick_all(void)
{
	if (!__atomic_load_n(&threads_started, __ATOMIC_SEQ_CST))
		return; /* main kicks them once they exist */
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		vcpus[i].run.immediate_exit = 1;
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
	fprintf(stderr, "gzvm-vmm: vCPU %u: ", id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kick_all();
}

static void handle_mmio(struct gzvm_vcpu_run *run)
{
	uint64_t value = 0;
	unsigned int len = run->mmio.size < 8 ? run->mmio.size : 8;

	if (run->mmio.is_write) {
		memcpy(&value, run->mmio.data, len);
		mmio_write(run->mmio.phys_addr, len, value);
		return;
	}
	if (!mmio_read(run->mmio.phys_addr, len, &value))
		value = 0; /* GZVM_RUN cannot refuse an access */
	if (len < 8)
		value &= (1ULL << (8 * len)) - 1;
	memcpy(run->mmio.data, &value, sizeof(run->mmio.data));
}

/* false: the VM is down, this vCPU is done. */
static bool handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run.system_event.type) {
	case GZVM_SYSTEM_EVENT_SHUTDOWN:
		__atomic_store_n(&powered_off, 1, __ATOMIC_SEQ_CST);
		return false;
	case GZVM_SYSTEM_EVENT_CRASH:
		fail(vcpu->id, "the VM crashed");
		return false;
	default:
		fail(vcpu->id, "system event %u", vcpu->run.system_event.type);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct gzvm_vcpu_run *run = &vcpu->run;

	while (!__atomic_load_n(&failed, __ATOMIC_SEQ_CST)) {
		if (ioctl(vcpu->fd, GZVM_RUN, run) < 0) {
			if (errno != EINTR)
				fail(vcpu->id, "GZVM_RUN: %s", strerror(errno));
			continue;
		}
		switch (run->exit_reason) {
		case GZVM_EXIT_MMIO:
			handle_mmio(run);
			break;
		case GZVM_EXIT_SYSTEM_EVENT:
			if (!handle_system_event(vcpu))
				return NULL;
			break;
		case GZVM_EXIT_EXCEPTION:
			fail(vcpu->id, "exception %u at guest address %#llx", run->exception.exception,
			     (unsigned long long)run->exception.fault_gpa);
			return NULL;
		default:
			fail(vcpu->id, "exit reason %#x", run->exit_reason);
			return NULL;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct guest guest;
	int dev, vm, irqfd, notify;
	uint8_t *ram, *window;

	parse_options(argc, argv, MAX_VCPUS, &opt);
	read_guest(&opt, &guest);
	setvbuf(stdout, NULL, _IOLBF, 0);
	kick_handler_install();

	dev = open("/dev/gzvm", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		die(true, "/dev/gzvm");
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

	nr_vcpus = opt.vcpus;
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		vcpus[i].id = i;
		vcpus[i].fd = ioctl(vm, GZVM_CREATE_VCPU, i);
		if (vcpus[i].fd < 0)
			die(true, "GZVM_CREATE_VCPU %u", i);
	}
	set_reg(vcpus[0].fd, REG_PSTATE, PSTATE_EL1H_DAIF);
	set_reg(vcpus[0].fd, REG_PC, guest.entry);
	set_reg(vcpus[0].fd, REG_X(0), guest.dtb_addr);
	set_reg(vcpus[0].fd, REG_X(1), opt.vcpus);
	virtio_console_start(window, irqfd, notify);

	for (unsigned int i = 0; i < nr_vcpus; i++)
		if (pthread_create(&vcpus[i].thread, NULL, vcpu_thread, &vcpus[i]))
			die(false, "cannot start the thread of vCPU %u", i);
	__atomic_store_n(&threads_started, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&failed, __ATOMIC_SEQ_CST))
		kick_all();
	for (unsigned int i = 0; i < nr_vcpus; i++)
		pthread_join(vcpus[i].thread, NULL);

	/* Teardown in reverse order of creation; closing the VM unpins its memory. */
	virtio_console_stop();
	for (unsigned int i = nr_vcpus; i-- > 0;)
		close(vcpus[i].fd);
	close(notify);
	close(irqfd);
	close(vm);
	munmap(window, SHARED_SIZE);
	munmap(ram, opt.mem);
	close(dev);
	fflush(stdout);
	return powered_off && !failed ? 0 : 1;
}
