/*
 * hello: the first guest. It says which hypervisor it runs on (the SMCCC
 * vendor-hyp UID, smccc.S; on Gunyah also hyp_identify's API version and
 * variant) and its command line (/chosen/bootargs, fdt.c), prints over the PL011 UART, brings every other
 * vCPU up with PSCI CPU_ON, one at a time, each printing its MPIDR and
 * turning itself off (the first waits with PSCI AFFINITY_INFO, which lets
 * the others run), then asks for PSCI SYSTEM_OFF.
 *
 * Stage-1 MMU off; each CPU gets 4 KiB of stack for the C console
 * routines (console.c). At entry x0 holds the DTB address and x1 the
 * number of CPUs (the VMM's boot state).
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
	.set HYP_GUNYAH, 1
	.set GUNYAH_HYP_IDENTIFY, 0xc6008000
	.set STACK_SIZE, 4096
	.set MAX_CPUS, 64

	.section .text.boot, "ax"
	.global _start
_start:
	mov	x19, x1				// CPU count from the VMM
	mov	x23, x0				// the DTB
	mov	x0, #0
	bl	set_stack
	adr	x0, banner
	bl	console_puts
	mov	x0, x23
	bl	fdt_bootargs
	cbz	x0, 3f				// no /chosen/bootargs
	ldrb	w1, [x0]
	cbz	w1, 3f				// an empty one
	mov	x23, x0
	adr	x0, bootargs
	bl	console_puts
	mov	x0, x23
	bl	console_puts
	mov	x0, #'\n'
	bl	console_putc
3:
	bl	vendor_hyp
	mov	x20, x0
	adr	x0, running
	bl	console_puts
	mov	x0, x20
	bl	hyp_name
	bl	console_puts
	mov	x0, #'\n'
	bl	console_putc
	cmp	x20, #HYP_GUNYAH		// hyp_identify is Gunyah's call only
	b.ne	1f
	ldr	x0, =GUNYAH_HYP_IDENTIFY
	hvc	#0
	mov	x20, x0				// api_info
	adr	x0, api
	bl	console_puts
	and	x0, x20, #0x3fff
	bl	console_putdec
	adr	x0, variant
	bl	console_puts
	lsr	x0, x20, #56
	bl	console_puthex
	mov	x0, #'\n'
	bl	console_putc
1:	mrs	x0, mpidr_el1
	bl	say_hello			// CPU 0
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
	bl	console_puts
all_done:
	adr	x0, bye
	bl	console_puts
	ldr	w0, =PSCI_SYSTEM_OFF
	hvc	#0
	b	.

secondary:					// x0: the context, its number
	bl	set_stack
	mrs	x0, mpidr_el1
	bl	say_hello
	ldr	w0, =PSCI_CPU_OFF
	hvc	#0
	b	.

set_stack:					// x0: the CPU number
	adr	x1, stacks
	add	x0, x0, #1
	add	x1, x1, x0, lsl #12		// the top of its STACK_SIZE bytes
	mov	sp, x1
	ret

	.ltorg
banner:	.asciz	"hello: guest running\n"
bootargs: .asciz	"hello: bootargs: "
running: .asciz	"hello: running on "
api:	.asciz	"hello: hyp_identify: API "
variant: .asciz	", variant "
failed:	.asciz	"hello: PSCI CPU_ON failed\n"
bye:	.asciz	"hello: every cpu said hello; PSCI SYSTEM_OFF\n"

	.bss
	.balign	16
stacks:	.skip	STACK_SIZE * MAX_CPUS
