/*
 * The PL011 console of the bundled guests, freestanding C: no libc, no
 * floating point, called from assembly with a stack set up.
 */
#include <stdint.h>

#define UART_BASE 0x09000000UL
#define UARTDR 0x00
#define UARTFR 0x18
#define FR_TXFF (1U << 5)

static inline void mmio_write8(uintptr_t addr, uint8_t value)
{
	*(volatile uint8_t *)addr = value;
}

static inline uint32_t mmio_read32(uintptr_t addr)
{
	return *(volatile uint32_t *)addr;
}

void console_putc(char c)
{
	while (mmio_read32(UART_BASE + UARTFR) & FR_TXFF)
		;
	mmio_write8(UART_BASE + UARTDR, (uint8_t)c);
}

void console_puts(const char *s)
{
	while (*s)
		console_putc(*s++);
}

void console_puthex(uint64_t value)
{
	static const char digits[] = "0123456789abcdef";
	int shift = 60;

	console_puts("0x");
	while (shift > 0 && !(value >> shift))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		console_putc(digits[(value >> shift) & 0xf]);
}

void console_putdec(uint64_t value)
{
	char buf[20];
	int n = 0;

	do {
		buf[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value);
	while (n)
		console_putc(buf[--n]);
}

/* "hello from cpu N, MPIDR 0x..." */
void say_hello(uint64_t mpidr)
{
	console_puts("hello from cpu ");
	console_putdec(mpidr & 0xff);
	console_puts(", MPIDR ");
	console_puthex(mpidr);
	console_putc('\n');
}
