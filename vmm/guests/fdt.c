/*
 * Just enough of the flattened devicetree format for the bundled guests
 * to find the GICv3 where the hypervisor put it (Gunyah's RM adds the node
 * to the VMM's DT, a GenieZone VMM writes it at its GZVM_CREATE_DEVICE
 * addresses) and the command line the VMM put in /chosen. Freestanding C, byte loads only (the MMU is off: device
 * memory takes no unaligned access).
 */
#include <stdint.h>

#define FDT_MAGIC 0xd00dfeedU
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* Whether the string list (a compatible property) holds want. */
static int has_string(const char *list, uint32_t len, const char *want)
{
	uint32_t i = 0;

	while (i < len) {
		if (streq(list + i, want))
			return 1;
		while (i < len && list[i])
			i++;
		i++;
	}
	return 0;
}

/*
 * The GICv3 of the devicetree at dtb: the first node compatible with
 * "arm,gic-v3" whose reg (two address and two size cells, as the root
 * has) holds the distributor then the redistributors. bases[0] = the
 * distributor, bases[1] = the first redistributor frame (vCPU 0's).
 * Returns 0, or -1 when the blob is no devicetree or has no such node.
 */
int fdt_gic(const uint8_t *dtb, uint64_t bases[2])
{
	const uint8_t *structs, *reg = 0;
	const char *strings;
	uint32_t off = 0, size, tag, len;
	int gic = 0;

	if (be32(dtb) != FDT_MAGIC)
		return -1;
	structs = dtb + be32(dtb + 8);
	strings = (const char *)dtb + be32(dtb + 12);
	size = be32(dtb + 36);
	while (off + 4 <= size) {
		tag = be32(structs + off);
		off += 4;
		switch (tag) {
		case FDT_BEGIN_NODE:
		case FDT_END_NODE:
			/* A node's properties come before its children: they are all seen. */
			if (gic && reg) {
				bases[0] = be64(reg);
				bases[1] = be64(reg + 16);
				return 0;
			}
			gic = 0;
			reg = 0;
			if (tag == FDT_BEGIN_NODE) {
				while (off < size && structs[off])
					off++;
				off = (off + 4) & ~3U;
			}
			break;
		case FDT_PROP:
			len = be32(structs + off);
			if (streq(strings + be32(structs + off + 4), "compatible"))
				gic = has_string((const char *)structs + off + 8, len, "arm,gic-v3");
			else if (streq(strings + be32(structs + off + 4), "reg") && len >= 32)
				reg = structs + off + 8;
			off += 8 + ((len + 3) & ~3U);
			break;
		case FDT_NOP:
			break;
		default:
			return -1;
		}
	}
	return -1;
}

/*
 * The bootargs property of the node named "chosen" in the devicetree at
 * dtb (a NUL-terminated string in the blob), or 0 when the blob is no
 * devicetree or has none. A node's properties come before its children,
 * so the last node begun is the one a property belongs to.
 */
const char *fdt_bootargs(const uint8_t *dtb)
{
	const uint8_t *structs;
	const char *strings, *node = "";
	uint32_t off = 0, size, tag, len;

	if (be32(dtb) != FDT_MAGIC)
		return 0;
	structs = dtb + be32(dtb + 8);
	strings = (const char *)dtb + be32(dtb + 12);
	size = be32(dtb + 36);
	while (off + 4 <= size) {
		tag = be32(structs + off);
		off += 4;
		switch (tag) {
		case FDT_BEGIN_NODE:
			node = (const char *)structs + off;
			while (off < size && structs[off])
				off++;
			off = (off + 4) & ~3U;
			break;
		case FDT_PROP:
			len = be32(structs + off);
			if (len && streq(node, "chosen") &&
			    streq(strings + be32(structs + off + 4), "bootargs"))
				return (const char *)structs + off + 8;
			off += 8 + ((len + 3) & ~3U);
			break;
		case FDT_END_NODE:
		case FDT_NOP:
			break;
		default:
			return 0;
		}
	}
	return 0;
}
