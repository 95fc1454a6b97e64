// SPDX-License-Identifier: GPL-2.0-only
/*
 * The devices of the sample VMMs, served on MMIO exits by whichever vCPU
 * thread took the exit (one lock for the PL011 and the mailbox; the
 * virtio console, virtio.c, has its own).
 *
 * PL011 (UART_BASE): UARTDR writes go to stdout; UARTFR says the
 * transmitter is empty and the receiver too; the PrimeCell id registers
 * read as a PL011's; other registers read 0 and ignore writes.
 *
 * Mailbox (MAILBOX_BASE), the holding-cell guest's: its command word reads
 * WHO (7), then OFF (6) from then on; the result of WHO (+0x20: 1 Gunyah,
 * 2 GenieZone) is printed as a line; other reads are 0, other writes ignored.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "vmm.h"

#define PL011_SIZE 0x1000
#define UARTDR 0x000
#define UARTFR 0x018
#define FR_RXFE (1 << 4)
#define FR_TXFE (1 << 7)
#define UART_ID_BASE 0xfe0

#define MAILBOX_SIZE 0x40
#define MAILBOX_COMMAND 0x00
#define MAILBOX_RESULT 0x20
#define CMD_OFF 6
#define CMD_WHO 7

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int mailbox_command; /* the last one read: 0 before the first */

static uint64_t pl011_read(uint64_t offset)
{
	/* UARTPeriphID0..3, UARTPCellID0..3 (PL011 r1p5) */
	static const uint8_t id[8] = { 0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

	if (offset == UARTFR)
		return FR_TXFE | FR_RXFE;
	if (offset >= UART_ID_BASE && offset < UART_ID_BASE + 32 && !(offset & 3))
		return id[(offset - UART_ID_BASE) / 4];
	return 0;
}

static void pl011_write(uint64_t offset, uint64_t value)
{
	if (offset == UARTDR)
		putchar(value & 0xff);
}

static uint64_t mailbox_read(uint64_t offset)
{
	if (offset != MAILBOX_COMMAND)
		return 0;
	mailbox_command = mailbox_command ? CMD_OFF : CMD_WHO;
	return mailbox_command;
}

static void mailbox_write(uint64_t offset, uint64_t value)
{
	static const char *const names[] = { "another hypervisor", "Gunyah", "GenieZone" };

	if (mailbox_command == CMD_WHO && offset == MAILBOX_RESULT)
		printf("holding-cell: running on %s\n", names[value < 3 ? value : 0]);
}

static bool inside(uint64_t addr, uint64_t base, uint64_t size)
{
	return addr >= base && addr - base < size;
}

bool mmio_read(uint64_t addr, unsigned int len, uint64_t *value)
{
	bool found = true;

	(void)len;
	if (inside(addr, VIRTIO_BASE, VIRTIO_SIZE)) {
		*value = virtio_mmio_read(addr - VIRTIO_BASE);
		return true;
	}
	pthread_mutex_lock(&lock);
	if (inside(addr, UART_BASE, PL011_SIZE))
		*value = pl011_read(addr - UART_BASE);
	else if (inside(addr, MAILBOX_BASE, MAILBOX_SIZE))
		*value = mailbox_read(addr - MAILBOX_BASE);
	else
		found = false;
	pthread_mutex_unlock(&lock);
	return found;
}

bool mmio_write(uint64_t addr, unsigned int len, uint64_t value)
{
	bool found = true;

	(void)len;
	if (inside(addr, VIRTIO_BASE, VIRTIO_SIZE)) {
		virtio_mmio_write(addr - VIRTIO_BASE, value);
		return true;
	}
	pthread_mutex_lock(&lock);
	if (inside(addr, UART_BASE, PL011_SIZE))
		pl011_write(addr - UART_BASE, value);
	else if (inside(addr, MAILBOX_BASE, MAILBOX_SIZE))
		mailbox_write(addr - MAILBOX_BASE, value);
	else
		found = false;
	pthread_mutex_unlock(&lock);
	return found;
}

bool mmio_exit(uint64_t addr, unsigned int len, bool is_write, uint8_t data[8])
{
	uint64_t value = 0;
	bool found;

	len = len < 8 ? len : 8;
	if (is_write) {
		memcpy(&value, data, len);
		return mmio_write(addr, len, value);
	}
	found = mmio_read(addr, len, &value);
	if (len < 8)
		value &= (1ULL << (8 * len)) - 1;
	memcpy(data, &value, 8);
	return found;
}

static void kick(int sig)
{
	(void)sig; /* only there to interrupt a blocked run */
}

void kick_handler_install(void)
{
	struct sigaction sa = { .sa_handler = kick };

	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
}
