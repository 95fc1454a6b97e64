// SPDX-License-Identifier: GPL-2.0-only
/*
 * The sample VMMs' command line and guest loader: an AArch64 ELF64's
 * PT_LOAD segments at their physical addresses, the DTB file at the end
 * of RAM (vmm.h).
 */
#include <elf.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm.h"

#define DEFAULT_MEM (64ULL << 20)
#define MAX_IMAGE (64 << 20)

static const char *prog = "vmm";

void die(bool with_errno, const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (with_errno)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	exit(1);
}

static void usage_error(const char *what)
{
	fprintf(stderr, "%s: %s (usage: %s [--vcpus N] [--mem SIZE] --dtb FILE GUEST.elf)\n",
		prog, what, prog);
	exit(2);
}

/* "64M", "128K", "1G" or bytes; a multiple of the page size, at least two DTB rooms. */
static uint64_t parse_size(const char *text)
{
	char *end;
	unsigned long long size = strtoull(text, &end, 0);

	switch (*end) {
	case 'G': case 'g': size <<= 10; /* fall through */
	case 'M': case 'm': size <<= 10; /* fall through */
	case 'K': case 'k': size <<= 10; end++;
	}
	if (end == text || *end || size % PAGE_SIZE || size < 2 * DTB_ROOM)
		usage_error("--mem: a multiple of 4K, at least 128K (e.g. 64M)");
	return size;
}

void parse_options(int argc, char **argv, unsigned int max_vcpus, struct options *opt)
{
	static const struct option longopts[] = {
		{ "vcpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "dtb", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	*opt = (struct options){ .vcpus = 1, .mem = DEFAULT_MEM };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opt->vcpus = strtoul(optarg, &end, 10);
			if (*end || opt->vcpus < 1 || opt->vcpus > max_vcpus) {
				fprintf(stderr, "%s: --vcpus %s: between 1 and %u\n", prog, optarg,
					max_vcpus);
				exit(2);
			}
			break;
		case 'm':
			opt->mem = parse_size(optarg);
			break;
		case 'd':
			opt->dtb = optarg;
			break;
		default:
			usage_error("bad option");
		}
	}
	if (optind != argc - 1)
		usage_error("one guest image");
	if (!opt->dtb)
		usage_error("--dtb is required (gunyah-sim dtb writes one)");
	opt->image = argv[optind];
}

/* The whole file, at most limit bytes (else one line, exit 1). */
static uint8_t *read_file(const char *path, size_t limit, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = malloc(limit + 1);

	if (!f)
		die(true, "%s", path);
	if (!data)
		die(true, "%s", path);
	*size = fread(data, 1, limit + 1, f);
	if (ferror(f))
		die(true, "%s", path);
	fclose(f);
	if (*size > limit)
		die(false, "%s: larger than %zu bytes", path, limit);
	return data;
}

/* Copy [addr, addr + len) of the guest from src, zero-filling up to memsz. */
static void place(uint8_t *ram, uint64_t ram_size, const char *what, uint64_t addr,
		  const void *src, uint64_t len, uint64_t memsz)
{
	if (addr < RAM_BASE || memsz > ram_size || addr - RAM_BASE > ram_size - memsz)
		die(false, "%s: %#llx+%#llx does not fit in RAM %#llx+%#llx (more --mem?)", what,
		    (unsigned long long)addr, (unsigned long long)memsz,
		    (unsigned long long)RAM_BASE, (unsigned long long)ram_size);
	memcpy(ram + (addr - RAM_BASE), src, len);
	memset(ram + (addr - RAM_BASE) + len, 0, memsz - len);
}

static uint64_t load_elf(const char *path, uint8_t *ram, uint64_t room)
{
	size_t size;
	uint8_t *data = read_file(path, MAX_IMAGE, &size);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)data;
	uint64_t entry;
	int loaded = 0;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		die(false, "%s: not an ELF file", path);
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_AARCH64)
		die(false, "%s: not an AArch64 ELF64", path);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		die(false, "%s: bad program headers", path);
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + eh->e_phoff) + i;

		if (ph->p_type != PT_LOAD || !ph->p_memsz)
			continue;
		if (ph->p_filesz > ph->p_memsz || ph->p_offset > size ||
		    size - ph->p_offset < ph->p_filesz)
			die(false, "%s: segment %d is outside the file", path, i);
		place(ram, room, path, ph->p_paddr, data + ph->p_offset, ph->p_filesz,
		      ph->p_memsz);
		loaded++;
	}
	if (!loaded)
		die(false, "%s: nothing to load", path);
	entry = eh->e_entry;
	free(data);
	return entry;
}

uint64_t load_guest(const struct options *opt, uint8_t *ram, uint64_t *dtb_addr)
{
	static const uint8_t fdt_magic[4] = { 0xd0, 0x0d, 0xfe, 0xed };
	uint64_t entry = load_elf(opt->image, ram, opt->mem - DTB_ROOM);
	size_t size;
	uint8_t *dtb = read_file(opt->dtb, DTB_ROOM, &size);

	if (size < sizeof(fdt_magic) || memcmp(dtb, fdt_magic, sizeof(fdt_magic)))
		die(false, "%s: not a devicetree blob", opt->dtb);
	*dtb_addr = RAM_BASE + opt->mem - DTB_ROOM;
	place(ram, opt->mem, opt->dtb, *dtb_addr, dtb, size, size);
	free(dtb);
	return entry;
}
