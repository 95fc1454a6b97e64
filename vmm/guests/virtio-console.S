/*
 * virtio-console: a virtio-mmio console driver in a few hundred bytes.
 *
 * It finds the GICv3 in its devicetree (x0 at entry; fdt.c), sets the
 * device up (virtio 1.x: features, two split virtqueues in the shared
 * window, receive buffers posted), says through the transmit queue which
 * hypervisor it runs on (smccc.S) and greets, then echoes whatever
 * arrives on the receive queue, waking from WFI on the device's interrupt
 * (an irqfd SPI, through the GICv3 CPU interface). A Ctrl-D (0x04) in the
 * input powers the VM off. No devicetree GIC: it stops (a loop).
 *
 * The VMM's layout: device at 0x0a000000, SPI 16 (INTID 48), shared window
 * at 0x70000000 (below RAM, which any --mem leaves clear); per queue q: descriptors at window + q * 0x1000, the
 * driver ring at +0x100, the device ring at +0x200; 8 entries each;
 * receive buffers at window + 0x2000, transmit buffers at + 0x3000, 64
 * bytes each. Stage-1 MMU off, IRQs masked at PSTATE (WFI still wakes);
 * 4 KiB of stack for the C devicetree reader.
 */
	.set VIRTIO, 0x0a000000
	.set SHARED, 0x70000000
	.set STACK_SIZE, 4096
	.set INTID, 48
	.set QN, 8
	.set REG_DRV_FEATURES, 0x20
	.set REG_DRV_FEATURES_SEL, 0x24
	.set REG_QUEUE_SEL, 0x30
	.set REG_QUEUE_NUM, 0x38
	.set REG_QUEUE_READY, 0x44
	.set REG_QUEUE_NOTIFY, 0x50
	.set REG_INTERRUPT_STATUS, 0x60
	.set REG_INTERRUPT_ACK, 0x64
	.set REG_STATUS, 0x70
	.set REG_QUEUE_DESC, 0x80
	.set REG_QUEUE_DRIVER, 0x90
	.set REG_QUEUE_DEVICE, 0xa0
	.set RXBUF, 0x2000
	.set TXBUF, 0x3000
	.set PSCI_SYSTEM_OFF, 0x84000008

	.section .text.boot, "ax"
	.global _start
_start:
	adr	x1, stack + STACK_SIZE
	mov	sp, x1
	adr	x1, gic_bases
	bl	fdt_gic				// x0: the DTB
	cbnz	x0, failed
	ldr	x19, =VIRTIO
	ldr	x20, =SHARED
	adr	x1, gic_bases
	ldp	x0, x3, [x1]			// the distributor, vCPU 0's redistributor
	bl	gic_init

	str	wzr, [x19, #REG_STATUS]		// reset
	mov	w1, #1				// ACKNOWLEDGE
	str	w1, [x19, #REG_STATUS]
	mov	w1, #3				// | DRIVER
	str	w1, [x19, #REG_STATUS]
	mov	w1, #1
	str	w1, [x19, #REG_DRV_FEATURES_SEL]
	str	w1, [x19, #REG_DRV_FEATURES]	// VIRTIO_F_VERSION_1 (bit 32)
	str	wzr, [x19, #REG_DRV_FEATURES_SEL]
	str	wzr, [x19, #REG_DRV_FEATURES]
	mov	w1, #11				// | FEATURES_OK
	str	w1, [x19, #REG_STATUS]
	ldr	w1, [x19, #REG_STATUS]
	tbz	w1, #3, failed

	mov	w0, #0
	bl	queue_init			// receiveq
	mov	w0, #1
	bl	queue_init			// transmitq

	mov	x2, #0				// post every receive buffer
1:	add	x3, x20, x2, lsl #4		// descriptor i
	add	x4, x20, #RXBUF
	add	x4, x4, x2, lsl #6
	str	x4, [x3]			// addr
	mov	w5, #64
	str	w5, [x3, #8]			// len
	mov	w5, #2				// VRING_DESC_F_WRITE, next 0
	str	w5, [x3, #12]
	add	x6, x20, #0x104
	strh	w2, [x6, x2, lsl #1]		// driver ring[i] = i
	add	x2, x2, #1
	cmp	x2, #QN
	b.lo	1b
	dmb	ish
	mov	w1, #QN
	strh	w1, [x20, #0x102]		// driver ring idx
	mov	w23, #QN			// receive idx posted so far
	mov	w22, #0				// transmit idx
	mov	w21, #0				// receive entries seen

	mov	w1, #15				// | DRIVER_OK
	str	w1, [x19, #REG_STATUS]
	str	wzr, [x19, #REG_QUEUE_NOTIFY]	// receiveq has buffers

	adr	x0, running
	mov	x1, #(running_end - running)
	bl	tx_send
	bl	vendor_hyp
	bl	hyp_name
	bl	tx_send
	adr	x0, greeting - 1		// the newline before it
	mov	x1, #1
	bl	tx_send
	adr	x0, greeting
	mov	x1, #(greeting_end - greeting)
	bl	tx_send

wait:
	wfi
	mrs	x1, S3_0_C12_C12_0		// ICC_IAR1_EL1
	cmp	x1, #1020
	b.hs	received			// spurious: look anyway
	msr	S3_0_C12_C12_1, x1		// ICC_EOIR1_EL1
	ldr	w2, [x19, #REG_INTERRUPT_STATUS]
	str	w2, [x19, #REG_INTERRUPT_ACK]
received:
	ldrh	w3, [x20, #0x202]		// receiveq device ring idx
	cmp	w3, w21
	b.eq	wait
	and	x4, x21, #(QN - 1)
	add	x5, x20, #0x204
	add	x5, x5, x4, lsl #3
	ldr	w25, [x5]			// id
	ldr	w26, [x5, #4]			// len
	add	x27, x20, #RXBUF
	add	x27, x27, x25, lsl #6		// its buffer
	mov	x28, #0				// echo up to a Ctrl-D, if there is one
2:	cmp	x28, x26
	b.hs	3f
	ldrb	w3, [x27, x28]
	cmp	w3, #4
	b.eq	3f
	add	x28, x28, #1
	b	2b
3:	cbz	x28, 4f
	mov	x0, x27
	mov	x1, x28
	bl	tx_send
4:	cmp	x28, x26
	b.lo	power_off
	and	x4, x23, #(QN - 1)		// post the buffer again
	add	x6, x20, #0x104
	strh	w25, [x6, x4, lsl #1]
	add	w23, w23, #1
	dmb	ish
	strh	w23, [x20, #0x102]
	str	wzr, [x19, #REG_QUEUE_NOTIFY]
	add	w21, w21, #1
	and	w21, w21, #0xffff
	b	received

power_off:
	adr	x0, bye
	mov	x1, #(bye_end - bye)
	bl	tx_send
	ldr	w0, =PSCI_SYSTEM_OFF
	hvc	#0
failed:
	b	.

queue_init:					// w0: the queue; its rings at SHARED + q * 0x1000
	str	w0, [x19, #REG_QUEUE_SEL]
	mov	w1, #QN
	str	w1, [x19, #REG_QUEUE_NUM]
	add	x2, x20, x0, lsl #12
	str	w2, [x19, #REG_QUEUE_DESC]
	lsr	x3, x2, #32
	str	w3, [x19, #REG_QUEUE_DESC + 4]
	add	x4, x2, #0x100
	str	w4, [x19, #REG_QUEUE_DRIVER]
	str	w3, [x19, #REG_QUEUE_DRIVER + 4]
	add	x4, x2, #0x200
	str	w4, [x19, #REG_QUEUE_DEVICE]
	str	w3, [x19, #REG_QUEUE_DEVICE + 4]
	mov	w1, #1
	str	w1, [x19, #REG_QUEUE_READY]
	ret

tx_send:					// x0: bytes, x1: length (at most 64)
	add	x9, x20, #0x1000		// transmitq
1:	ldrh	w10, [x9, #0x202]		// wait for a free slot
	sub	w11, w22, w10
	and	w11, w11, #0xffff
	cmp	w11, #QN
	b.hs	1b
	and	x12, x22, #(QN - 1)
	add	x13, x20, #TXBUF
	add	x13, x13, x12, lsl #6		// the slot's buffer
	mov	x14, #0
2:	cmp	x14, x1
	b.hs	3f
	ldrb	w15, [x0, x14]
	strb	w15, [x13, x14]
	add	x14, x14, #1
	b	2b
3:	add	x15, x9, x12, lsl #4		// its descriptor
	str	x13, [x15]
	str	w1, [x15, #8]
	str	wzr, [x15, #12]			// no flags, next 0
	add	x16, x9, #0x104
	strh	w12, [x16, x12, lsl #1]
	add	w22, w22, #1
	dmb	ish
	strh	w22, [x9, #0x102]
	mov	w16, #1
	str	w16, [x19, #REG_QUEUE_NOTIFY]	// an ioeventfd: no exit
	ret

gic_init:					// x0: GICD, x3: GICR of this CPU
	mov	w1, #2
	str	w1, [x0]			// GICD_CTLR.EnableGrp1
	ldr	x2, =(0x6000 + INTID * 8)
	str	xzr, [x0, x2]			// GICD_IROUTER: this CPU
	mov	w1, #(1 << (INTID % 32))
	str	w1, [x0, #(0x100 + INTID / 32 * 4)]	// GICD_ISENABLER
	mov	w1, #(2 << (2 * (INTID % 16)))
	str	w1, [x0, #(0xc00 + INTID / 16 * 4)]	// GICD_ICFGR: edge
	str	wzr, [x3, #0x14]		// GICR_WAKER: awake
	mov	x1, #0xff
	msr	S3_0_C4_C6_0, x1		// ICC_PMR_EL1
	mov	x1, #1
	msr	S3_0_C12_C12_7, x1		// ICC_IGRPEN1_EL1
	isb
	ret

	.ltorg
running:
	.ascii	"virtio-console: running on "
running_end:
	.ascii	"\n"
greeting:
	.ascii	"virtio-console: type and I echo; Ctrl-D ends\n"
greeting_end:
bye:
	.ascii	"\nvirtio-console: bye\n"
bye_end:

	.bss
	.balign	16
gic_bases:
	.skip	16
stack:
	.skip	STACK_SIZE
