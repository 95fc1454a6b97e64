/*
 * hello: the first guest. It probes the hypervisor (SMCCC vendor UID and
 * Gunyah's hyp_identify), prints over the PL011 UART, brings every other
 * vCPU up with PSCI CPU_ON, one at a time, each printing its MPIDR and
 * turning itself off (the first waits with PSCI AFFINITY_INFO, which lets
 * the others run), then asks for PSCI SYSTEM_OFF.
 *
 * Stage-1 MMU off and no stack. At entry x0 holds the DTB address (the
 * RM's) and x1 the number of CPUs (the VMM's boot context).
 */
	.set UART, 0x09000000
	.set UARTDR, 0x00
	.set UARTFR, 0x18
	.set FR_TXFF, 1 << 5
	.set PSCI_CPU_ON, 0xc4000003
	.set PSCI_CPU_OFF, 0x84000002
	.set PSCI_AFFINITY_INFO, 0xc4000004
	.set AFF_OFF, 1
	.set PSCI_SYSTEM_OFF, 0x84000008
	.set SMCCC_VENDOR_UID, 0x8600ff01
	.set GUNYAH_HYP_IDENTIFY, 0xc6008000

	.section .text.boot, "ax"
	.global _start
_start:
	mov	x19, x1				// CPU count from the VMM
	adr	x0, banner
	bl	puts
	ldr	w0, =SMCCC_VENDOR_UID
	hvc	#0
	ldr	w4, =0xcd8fd5c1			// Gunyah's UID, first word
	cmp	w0, w4
	b.ne	not_gunyah
	ldr	w4, =0xdb5f53a4
	cmp	w1, w4
	b.ne	not_gunyah
	adr	x0, found
	bl	puts
	ldr	x0, =GUNYAH_HYP_IDENTIFY
	hvc	#0
	mov	x20, x0				// api_info
	adr	x0, api
	bl	puts
	and	x0, x20, #0x3fff
	bl	putdec
	adr	x0, variant
	bl	puts
	lsr	x0, x20, #56
	bl	puthex
	mov	x0, #'\n'
	bl	putc
	b	1f
not_gunyah:
	adr	x0, other
	bl	puts
1:	bl	say_hello			// CPU 0
	mov	x21, #1				// the next CPU
bring_up:
	cmp	x21, x19
	b.hs	all_done
	mrs	x22, mpidr_el1
	and	x22, x22, #~0xff
	orr	x22, x22, x21			// target: Aff0 = the CPU number
	ldr	x0, =PSCI_CPU_ON
	mov	x1, x22
	adr	x2, secondary
	mov	x3, x21
	hvc	#0
	cbnz	x0, cpu_on_failed
2:	ldr	x0, =PSCI_AFFINITY_INFO		// wait until it has said hello and gone off
	mov	x1, x22
	mov	x2, #0
	hvc	#0
	cmp	x0, #AFF_OFF
	b.ne	2b
	add	x21, x21, #1
	b	bring_up
cpu_on_failed:
	adr	x0, failed
	bl	puts
all_done:
	adr	x0, bye
	bl	puts
	ldr	w0, =PSCI_SYSTEM_OFF
	hvc	#0
	b	.

secondary:					// x0: the context, its number
	bl	say_hello
	ldr	w0, =PSCI_CPU_OFF
	hvc	#0
	b	.

say_hello:					// "hello from cpu N, MPIDR 0x..."
	mov	x23, x30
	adr	x0, hello
	bl	puts
	mrs	x0, mpidr_el1
	and	x0, x0, #0xff
	bl	putdec
	adr	x0, mpidr
	bl	puts
	mrs	x0, mpidr_el1
	bl	puthex
	mov	x0, #'\n'
	bl	putc
	ret	x23

putc:						// w0: one byte
	ldr	x9, =UART
1:	ldr	w10, [x9, #UARTFR]
	tst	w10, #FR_TXFF
	b.ne	1b
	strb	w0, [x9, #UARTDR]
	ret

puts:						// x0: NUL-terminated string
	mov	x11, x30
	mov	x12, x0
1:	ldrb	w0, [x12], #1
	cbz	w0, 2f
	bl	putc
	b	1b
2:	ret	x11

puthex:						// x0 as 0x%x
	mov	x13, x30
	mov	x14, x0
	mov	x0, #'0'
	bl	putc
	mov	x0, #'x'
	bl	putc
	mov	x15, #60
	mov	x16, #0				// a digit printed yet?
1:	lsr	x0, x14, x15
	and	x0, x0, #0xf
	cbnz	x0, 2f
	cbnz	x16, 2f
	cbz	x15, 2f				// always print the last digit
	b	3f
2:	mov	x16, #1
	cmp	x0, #10
	add	x17, x0, #'0'
	add	x0, x0, #('a' - 10)
	csel	x0, x17, x0, lo
	bl	putc
3:	subs	x15, x15, #4
	b.pl	1b
	ret	x13

putdec:						// x0 < 10000 in decimal
	mov	x13, x30
	mov	x14, x0
	mov	x15, #1000
	mov	x16, #0
	mov	x17, #10
1:	udiv	x0, x14, x15
	msub	x14, x0, x15, x14
	cbnz	x0, 2f
	cbnz	x16, 2f
	cmp	x15, #1
	b.ne	3f
2:	mov	x16, #1
	add	x0, x0, #'0'
	bl	putc
3:	udiv	x15, x15, x17
	cbnz	x15, 1b
	ret	x13

	.ltorg
banner:	.asciz	"hello: guest running\n"
found:	.asciz	"hello: Gunyah hypervisor found (SMCCC vendor UID)\n"
other:	.asciz	"hello: not Gunyah (unknown vendor UID)\n"
api:	.asciz	"hello: hyp_identify: API "
variant: .asciz	", variant "
hello:	.asciz	"hello from cpu "
mpidr:	.asciz	", MPIDR "
failed:	.asciz	"hello: PSCI CPU_ON failed\n"
bye:	.asciz	"hello: every cpu said hello; PSCI SYSTEM_OFF\n"
