/*
 * holding-cell: a guest a host test drives one step at a time.
 *
 * It loops: read a command and two arguments from the MMIO mailbox (three
 * MMIO read exits the test answers), do it, write the outcome back (MMIO
 * write exits). Its first exit is always the read of the command word.
 *
 * Mailbox at 0x0b000000: +0x00 command, +0x08 arg0, +0x10 arg1 (reads);
 * +0x18 status, +0x20 result, +0x28.. an exception report (writes).
 *
 *   0 OK        status 0
 *   1 FAIL      status 1
 *   2 READ      result = 64-bit load from arg0
 *   3 WRITE     64-bit store of arg1 to arg0, then status 0
 *   4 LOOPBACK  result = arg0
 *   5 HVC       hvc #0 with x0 = arg0, x1 = arg1; result = x0 after it,
 *               then x1, x2, x3 to +0x28, +0x30, +0x38
 *   6 OFF       PSCI SYSTEM_OFF
 *   7 WHO       result = the hypervisor it runs on, from the SMCCC vendor-hyp
 *               UID (smccc.S: 1 Gunyah, 2 GenieZone, 0 another)
 *   other       status 2
 *
 * A synchronous exception is reported (+0x28 ESR_EL1, +0x30 FAR_EL1,
 * +0x38 ELR_EL1, then status 3) and the loop starts again.
 */
	.set MAILBOX, 0x0b000000
	.set PSCI_SYSTEM_OFF, 0x84000008

	.section .text.boot, "ax"
	.global _start
_start:
	adr	x8, vectors
	msr	vbar_el1, x8
	isb
	ldr	x9, =MAILBOX
loop:
	ldr	x10, [x9]			// the command
	ldr	x11, [x9, #0x08]
	ldr	x12, [x9, #0x10]
	cmp	x10, #7
	b.hi	unknown
	adr	x13, table
	ldr	w14, [x13, x10, lsl #2]
	add	x13, x13, x14
	br	x13
table:
	.word	cmd_ok - table, cmd_fail - table, cmd_read - table, cmd_write - table
	.word	cmd_loopback - table, cmd_hvc - table, cmd_off - table, cmd_who - table
cmd_ok:
	str	xzr, [x9, #0x18]
	b	loop
cmd_fail:
	mov	x0, #1
	str	x0, [x9, #0x18]
	b	loop
cmd_read:
	ldr	x0, [x11]
	str	x0, [x9, #0x20]
	b	loop
cmd_write:
	str	x12, [x11]
	str	xzr, [x9, #0x18]
	b	loop
cmd_loopback:
	str	x11, [x9, #0x20]
	b	loop
cmd_hvc:
	mov	x0, x11
	mov	x1, x12
	mov	x2, #0
	mov	x3, #0
	hvc	#0
	str	x0, [x9, #0x20]
	str	x1, [x9, #0x28]
	str	x2, [x9, #0x30]
	str	x3, [x9, #0x38]
	b	loop
cmd_off:
	ldr	w0, =PSCI_SYSTEM_OFF
	hvc	#0
	b	.
cmd_who:
	bl	vendor_hyp
	str	x0, [x9, #0x20]
	b	loop
unknown:
	mov	x0, #2
	str	x0, [x9, #0x18]
	b	loop

	.balign	0x800
vectors:
	.skip	0x200				// synchronous, current EL with SP_ELx
	ldr	x9, =MAILBOX
	mrs	x0, esr_el1
	str	x0, [x9, #0x28]
	mrs	x0, far_el1
	str	x0, [x9, #0x30]
	mrs	x0, elr_el1
	str	x0, [x9, #0x38]
	mov	x0, #3
	str	x0, [x9, #0x18]
	adr	x0, loop
	msr	elr_el1, x0
	eret
	.ltorg
