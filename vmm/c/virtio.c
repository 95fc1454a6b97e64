// SPDX-License-Identifier: GPL-2.0-only
/*
 * A virtio console (virtio 1.x, port 0 only) on the virtio-mmio transport
 * (section 4.2) with split virtqueues (section 2.7), at VIRTIO_BASE.
 *
 * The guest programs the registers through MMIO exits; its QueueNotify
 * writes never exit: they signal the notify eventfd (an ioeventfd) that
 * the event thread polls, with standard input.
 * Queue 0 (receiveq) takes standard input, queue 1 (transmitq) goes to
 * stdout; every returned buffer raises the device's interrupt by a write
 * to the irqfd. Rings and buffers must lie in the shared window, the only
 * guest memory the VMM sees: a descriptor outside it is returned unused.
 * End of input is a Ctrl-D (0x04) for the guest.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm.h"

#define MAGIC 0x74726976 /* "virt" */
#define VERSION 2
#define VENDOR 0x554d4551
#define DEVICE_ID_CONSOLE 3
#define F_VERSION_1_HIGH 1 /* VIRTIO_F_VERSION_1 is bit 32: bit 0 of the high word */
#define STATUS_FEATURES_OK 8
#define STATUS_DRIVER_OK 4
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define MAX_QUEUE 64
#define RECEIVEQ 0
#define TRANSMITQ 1
#define NUM_QUEUES 2
#define CTRL_D 4

enum {
	REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR = 0x00c,
	REG_DEV_FEATURES = 0x010, REG_DEV_FEATURES_SEL = 0x014,
	REG_DRV_FEATURES = 0x020, REG_DRV_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030, REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060, REG_INTERRUPT_ACK = 0x064, REG_STATUS = 0x070,
	REG_QUEUE_DESC = 0x080, REG_QUEUE_DRIVER = 0x090, REG_QUEUE_DEVICE = 0x0a0,
};

struct virtqueue {
	uint32_t num;
	bool ready;
	uint16_t last_avail;
	uint64_t desc, driver, device;
};

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *shared; /* the VMM's view of the shared window */
static int irqfd = -1;
static struct virtqueue queues[NUM_QUEUES];
static uint32_t status, interrupt_status, queue_sel;
static uint32_t dev_features_sel, drv_features_sel, drv_features_high;
static uint8_t input[4096]; /* typed, not yet in a receive buffer */
static size_t input_len;
static int stop_fd = -1; /* ends the event thread */
static pthread_t event_thread;

/* The VMM's address of guest [addr, addr + len), or NULL outside the window. */
static void *guest(uint64_t addr, uint64_t len)
{
	if (!shared || addr < SHARED_BASE || len > SHARED_SIZE ||
	    addr - SHARED_BASE > SHARED_SIZE - len)
		return NULL;
	return shared + (addr - SHARED_BASE);
}

static void reset(void)
{
	status = interrupt_status = queue_sel = 0;
	dev_features_sel = drv_features_sel = drv_features_high = 0;
	memset(queues, 0, sizeof(queues));
}

static void raise_interrupt(void)
{
	uint64_t one = 1;

	interrupt_status |= 1;
	if (write(irqfd, &one, sizeof(one)) != sizeof(one))
		perror("virtio: irqfd");
}

/* The next available chain's head, or -1 (none, or rings outside the window). */
static int pop(struct virtqueue *q)
{
	uint16_t *avail = guest(q->driver, 4 + 2 * q->num);
	uint16_t head;

	if (!q->ready || !q->num || !avail)
		return -1;
	if (__atomic_load_n(&avail[1], __ATOMIC_ACQUIRE) == q->last_avail)
		return -1;
	head = avail[2 + q->last_avail % q->num];
	q->last_avail++;
	return head % q->num;
}

static void push(struct virtqueue *q, uint16_t head, uint32_t written)
{
	uint16_t *used = guest(q->device, 4 + 8 * q->num);
	uint32_t entry[2] = { head, written };
	uint16_t idx;

	if (!used)
		return;
	idx = used[1];
	memcpy(&used[2] + 4 * (idx % q->num), entry, sizeof(entry));
	__atomic_store_n(&used[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE); /* after the entry */
}

/* Descriptor index of q, or NULL outside the window. */
static struct vring_desc *descriptor(struct virtqueue *q, uint16_t index)
{
	return guest(q->desc + 16 * (uint64_t)index, sizeof(struct vring_desc));
}

static void drain_transmitq(void)
{
	struct virtqueue *q = &queues[TRANSMITQ];
	bool returned = false;
	int head;

	while ((head = pop(q)) >= 0) {
		struct vring_desc *d = descriptor(q, head);

		for (uint32_t n = 0; d && n < q->num; n++) { /* a loop in the chain ends it */
			void *data = guest(d->addr, d->len);

			if (data && !(d->flags & DESC_F_WRITE))
				fwrite(data, 1, d->len, stdout);
			if (!(d->flags & DESC_F_NEXT))
				break;
			d = descriptor(q, d->next % q->num);
		}
		fflush(stdout);
		push(q, head, 0);
		returned = true;
	}
	if (returned)
		raise_interrupt();
}

static void fill_receiveq(void)
{
	struct virtqueue *q = &queues[RECEIVEQ];
	bool returned = false;
	int head;

	while (input_len && (head = pop(q)) >= 0) {
		struct vring_desc *d = descriptor(q, head);
		uint32_t written = 0;

		for (uint32_t n = 0; d && n < q->num && input_len; n++) {
			void *data = guest(d->addr, d->len);
			size_t take = input_len < d->len ? input_len : d->len;

			if (data && (d->flags & DESC_F_WRITE)) {
				memcpy(data, input, take);
				memmove(input, input + take, input_len - take);
				input_len -= take;
				written += take;
			}
			if (!(d->flags & DESC_F_NEXT))
				break;
			d = descriptor(q, d->next % q->num);
		}
		push(q, head, written);
		returned = true;
	}
	if (returned)
		raise_interrupt();
}

static bool live(void)
{
	return status & STATUS_DRIVER_OK;
}

static void notify(void)
{
	if (!live())
		return;
	drain_transmitq();
	fill_receiveq();
}

uint64_t virtio_mmio_read(uint64_t offset)
{
	struct virtqueue *q;
	uint64_t value = 0;

	pthread_mutex_lock(&lock);
	q = queue_sel < NUM_QUEUES ? &queues[queue_sel] : NULL;
	switch (offset) {
	case REG_MAGIC: value = MAGIC; break;
	case REG_VERSION: value = VERSION; break;
	case REG_DEVICE_ID: value = DEVICE_ID_CONSOLE; break;
	case REG_VENDOR: value = VENDOR; break;
	case REG_DEV_FEATURES: value = dev_features_sel == 1 ? F_VERSION_1_HIGH : 0; break;
	case REG_QUEUE_NUM_MAX: value = q ? MAX_QUEUE : 0; break;
	case REG_QUEUE_READY: value = q ? q->ready : 0; break;
	case REG_INTERRUPT_STATUS: value = interrupt_status; break;
	case REG_STATUS: value = status; break;
	} /* the rest, the console's config (no features) included, reads 0 */
	pthread_mutex_unlock(&lock);
	return value;
}

static void set_queue_addr(struct virtqueue *q, uint64_t offset, uint64_t value)
{
	uint64_t *addr = (offset & ~4ULL) == REG_QUEUE_DESC ? &q->desc
		       : (offset & ~4ULL) == REG_QUEUE_DRIVER ? &q->driver : &q->device;
	int shift = offset & 4 ? 32 : 0;

	*addr = (*addr & ~(0xffffffffULL << shift)) | (value & 0xffffffffULL) << shift;
}

void virtio_mmio_write(uint64_t offset, uint64_t value)
{
	struct virtqueue *q;

	pthread_mutex_lock(&lock);
	q = queue_sel < NUM_QUEUES ? &queues[queue_sel] : NULL;
	switch (offset) {
	case REG_QUEUE_NOTIFY: notify(); break;
	case REG_INTERRUPT_ACK: interrupt_status &= ~value; break;
	case REG_DEV_FEATURES_SEL: dev_features_sel = value & 1; break;
	case REG_DRV_FEATURES_SEL: drv_features_sel = value & 1; break;
	case REG_DRV_FEATURES:
		if (drv_features_sel == 1)
			drv_features_high = value;
		break;
	case REG_QUEUE_SEL: queue_sel = value; break;
	case REG_STATUS:
		if (!value)
			reset();
		else if ((value & STATUS_FEATURES_OK) && !(drv_features_high & F_VERSION_1_HIGH))
			status = value & ~STATUS_FEATURES_OK; /* a legacy driver: refused */
		else
			status = value;
		break;
	case REG_QUEUE_NUM:
		if (q)
			q->num = value < MAX_QUEUE ? value : MAX_QUEUE;
		break;
	case REG_QUEUE_READY:
		if (q)
			q->ready = value & 1;
		break;
	case REG_QUEUE_DESC: case REG_QUEUE_DESC + 4:
	case REG_QUEUE_DRIVER: case REG_QUEUE_DRIVER + 4:
	case REG_QUEUE_DEVICE: case REG_QUEUE_DEVICE + 4:
		if (q)
			set_queue_addr(q, offset, value);
		break;
	}
	pthread_mutex_unlock(&lock);
}

/* How many more bytes of input may be read. */
static size_t room(void)
{
	size_t free;

	pthread_mutex_lock(&lock);
	free = sizeof(input) - input_len;
	pthread_mutex_unlock(&lock);
	return free;
}

/* Bytes typed (at most room()), for the receive queue. */
static void feed(const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&lock);
	memcpy(input + input_len, data, len);
	input_len += len;
	if (live())
		fill_receiveq();
	pthread_mutex_unlock(&lock);
}

static void *events(void *arg)
{
	int notify_fd = (int)(intptr_t)arg;
	struct pollfd fds[3] = {
		{ .fd = stop_fd, .events = POLLIN },
		{ .fd = notify_fd, .events = POLLIN },
		{ .fd = STDIN_FILENO, .events = POLLIN },
	};
	bool input_open = true;
	uint64_t count;

	for (;;) {
		/* Input waits in its file while the guest has not taken what came before. */
		size_t free = room();

		fds[2].fd = input_open && free ? STDIN_FILENO : -1;
		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("virtio: poll");
			return NULL;
		}
		/* A notify comes before the stop: the guest's last words are written
		 * before the vCPU that powers the VM off gets back to the VMM. */
		if (fds[1].revents && read(notify_fd, &count, sizeof(count)) == sizeof(count)) {
			pthread_mutex_lock(&lock);
			notify();
			pthread_mutex_unlock(&lock);
		}
		if (fds[0].revents)
			return NULL;
		if (fds[2].revents) {
			uint8_t data[sizeof(input)];
			ssize_t n = read(STDIN_FILENO, data, free);

			if (n > 0) {
				feed(data, n);
			} else {
				feed((const uint8_t[]){ CTRL_D }, 1); /* end of input */
				input_open = false;
			}
		}
	}
}

void virtio_console_start(uint8_t *window, int interrupt_fd, int notify_fd)
{
	shared = window;
	irqfd = interrupt_fd;
	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (stop_fd < 0)
		die(true, "eventfd");
	if (pthread_create(&event_thread, NULL, events, (void *)(intptr_t)notify_fd))
		die(false, "cannot start the event thread");
}

void virtio_console_stop(void)
{
	uint64_t one = 1;

	if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
		die(true, "eventfd");
	pthread_join(event_thread, NULL);
	close(stop_fd);
}
