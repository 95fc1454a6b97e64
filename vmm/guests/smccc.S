/*
 * Which hypervisor a guest runs on, from the SMCCC vendor-specific
 * hypervisor service UID (function 0x8600ff01; the UID in w0..w3).
 *
 * vendor_hyp: x0 = HYP_GUNYAH (1), HYP_GENIEZONE (2) or HYP_UNKNOWN (0).
 * hyp_name: x0 such an id; x0 = its name (NUL-terminated), x1 = its length.
 * Both clobber x0..x7 only and need no stack.
 */
	.set SMCCC_VENDOR_HYP_UID, 0x8600ff01
	.set NR_KNOWN, 2

	.text
	.global vendor_hyp
vendor_hyp:
	ldr	w0, =SMCCC_VENDOR_HYP_UID
	hvc	#0
	adr	x4, uids
	mov	x5, #1				// the id of the UID at x4
1:	ldp	w6, w7, [x4], #8
	cmp	w0, w6
	ccmp	w1, w7, #0, eq
	ldp	w6, w7, [x4], #8
	ccmp	w2, w6, #0, eq
	ccmp	w3, w7, #0, eq
	b.eq	2f
	add	x5, x5, #1
	cmp	x5, #NR_KNOWN
	b.ls	1b
	mov	x5, #0				// HYP_UNKNOWN
2:	mov	x0, x5
	ret

	.global hyp_name
hyp_name:
	cmp	x0, #NR_KNOWN
	csel	x0, xzr, x0, hi			// out of range: unknown
	adr	x4, names
	add	x4, x4, x0, lsl #3
	ldr	w5, [x4]			// offset from names
	ldr	w1, [x4, #4]			// length
	adr	x0, names
	add	x0, x0, x5
	ret

	.balign	4
uids:
	.word	0xcd8fd5c1, 0xdb5f53a4, 0x36ce6592, 0x145f3d67	// Gunyah
	.word	0x6d746b67, 0x7a766d5f, 0x656c325f, 0x6d6f6465	// GenieZone (the model's own)
names:						// (offset from names, length) by id
	.word	unknown - names, gunyah - unknown - 1
	.word	gunyah - names, geniezone - gunyah - 1
	.word	geniezone - names, names_end - geniezone - 1
unknown:
	.asciz	"an unknown hypervisor"
gunyah:
	.asciz	"Gunyah"
geniezone:
	.asciz	"GenieZone"
names_end:
