/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the sample VMMs (gunyah-vmm.c, gunyah-ack-vmm.c, gzvm-vmm.c) share:
 * the machine they give the guest, their command line, the guest loader,
 * the vCPU threads and the devices they serve on MMIO exits. Each VMM
 * file holds only its driver's calls: how to make the VM, its memory and
 * vCPUs, how to run a vCPU and what its exits mean (struct vcpu_ops).
 *
 * The machine: RAM at RAM_BASE, the DTB in its last DTB_ROOM bytes, a
 * PL011 console at UART_BASE, a virtio-mmio console at VIRTIO_BASE (SPI
 * VIRTIO_SPI, its rings in the SHARED_BASE window), a command mailbox at
 * MAILBOX_BASE (what the holding-cell guest talks to). The DTB must describe the same machine:
 * write it with `gunyah-sim dtb` for the same --vcpus and --mem.
 */
#ifndef VMM_H
#define VMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAM_BASE 0x80000000ULL
#define DTB_ROOM 0x10000ULL
#define UART_BASE 0x09000000ULL
#define MAILBOX_BASE 0x0b000000ULL
#define VIRTIO_BASE 0x0a000000ULL
#define VIRTIO_SIZE 0x200ULL
#define VIRTIO_SPI 16
#define VIRTIO_QUEUE_NOTIFY 0x050
/* The virtqueues and their buffers, shared with the VMM: below RAM. */
#define SHARED_BASE 0x70000000ULL
#define SHARED_SIZE 0x10000ULL
#define PAGE_SIZE 4096ULL

struct options {
	unsigned int vcpus;
	uint64_t mem;
	const char *dtb;
	const char *image;
};

/* Parse argv; on bad usage print one line and exit 2. */
void parse_options(int argc, char **argv, unsigned int max_vcpus, struct options *opt);

/* Print "PROG: message" (and strerror(errno) when with_errno) and exit 1. */
void die(bool with_errno, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* The guest's ELF and DTB files, read and checked. */
struct guest {
	uint8_t *elf;
	size_t elf_size;
	uint8_t *dtb;
	size_t dtb_size;
	uint64_t entry; /* the ELF's entry point */
	uint64_t dtb_addr; /* where the DTB goes: the last DTB_ROOM bytes of RAM */
};

/*
 * Read opt->image (an AArch64 ELF64 whose PT_LOAD segments fit in RAM below
 * the DTB room) and opt->dtb (a devicetree blob of at most DTB_ROOM bytes).
 * Bad input: one line, exit 2.
 */
void read_guest(const struct options *opt, struct guest *guest);

/* Copy the segments and the DTB into ram, the VMM's view of guest RAM from RAM_BASE. */
void load_guest(const struct guest *guest, uint8_t *ram);

/*
 * What every VMM's main does first: parse argv (at most max_vcpus), read
 * the guest, line-buffer stdout, install the kick handler, then open
 * device. Returns the device's fd; bad input exits 2 before the device is
 * opened, a device that cannot be opened exits 1.
 */
int vmm_init(int argc, char **argv, unsigned int max_vcpus, const char *device,
	     struct options *opt, struct guest *guest);

/* A new eventfd, close-on-exec (else die). */
int new_eventfd(void);

/* One vCPU of the VM, run by a thread of its own (common.c). */
struct vcpu {
	unsigned int id;
	int fd;
	void *run; /* the driver's run struct: its mmap'ed page, or the VMM's own */
	size_t run_size; /* the mapping's size; 0 when run is the VMM's own */
	uint8_t *immediate_exit; /* the run struct's flag: 1, the next run returns at once */
	pthread_t thread;
};

/* What a driver's vCPU does; the loop around it is common.c's. */
struct vcpu_ops {
	const char *run_name; /* the run ioctl's name, for its errors */
	int (*run)(struct vcpu *vcpu); /* one run: the ioctl's return (-1 and errno) */
	bool (*exit)(struct vcpu *vcpu); /* the exit of a run: false, this vCPU is done */
};

/*
 * Run vcpus[0..nr) until each is done or one fails, one thread each, and
 * join them. Returns the VMM's exit status: 0 when the guest powered off
 * and no vCPU failed, else 1.
 */
int run_vcpus(struct vcpu *vcpus, unsigned int nr, const struct vcpu_ops *ops);

/*
 * From a vCPU thread, the first problem: "PROG: vCPU N: message" on
 * stderr and every vCPU stops; later problems say nothing.
 */
void vcpu_fail(const struct vcpu *vcpu, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The guest powered off cleanly (an exit handler says so; later exits may ask). */
void guest_powered_off(void);
bool guest_is_off(void);

/* Unmap the run pages of vcpus[0..nr) (where mapped) and close their fds, last first. */
void close_vcpus(struct vcpu *vcpus, unsigned int nr);

/*
 * The devices at their guest addresses, for a vCPU thread's MMIO exit.
 * false: no device there (the guest gets an abort). Thread-safe.
 */
bool mmio_read(uint64_t addr, unsigned int len, uint64_t *value);
bool mmio_write(uint64_t addr, unsigned int len, uint64_t value);

/*
 * An MMIO exit's access on its run struct's 8 data bytes (len is capped at
 * 8): a write takes len bytes from data; a read leaves the value in data,
 * its len bytes and zeroes above (0 where no device answers). Returns
 * whether a device answered.
 */
bool mmio_exit(uint64_t addr, unsigned int len, bool is_write, uint8_t data[8]);

/* The virtio console (virtio.c): its registers, served on MMIO exits. */
uint64_t virtio_mmio_read(uint64_t offset);
void virtio_mmio_write(uint64_t offset, uint64_t value);

/*
 * Before the VM starts: the VMM's view of the shared window, the eventfd
 * bound as the device's irqfd and the one bound as its QueueNotify
 * ioeventfd; starts the event thread, which serves the notifies and feeds
 * standard input to the guest.
 */
void virtio_console_start(uint8_t *window, int irqfd, int notify);

/* After the vCPUs: the event thread ends (the eventfds stay the caller's). */
void virtio_console_stop(void);

/* The signal that kicks a vCPU thread out of its run (no-op handler, no SA_RESTART). */
#define KICK_SIGNAL SIGUSR1
void kick_handler_install(void);

#endif
