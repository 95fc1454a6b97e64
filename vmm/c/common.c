// SPDX-License-Identifier: GPL-2.0-only
/*
 * The sample VMMs' command line, guest loader and vCPU threads.
 *
 * The loader puts an AArch64 ELF64's PT_LOAD segments at their physical
 * addresses, the DTB file at the end of RAM (vmm.h). Bad input (usage, an
 * image or DTB that cannot be read or does not fit) is one line on stderr
 * and exit 2, before the device is opened.
 *
 * The vCPU threads run their vCPU through the driver's struct vcpu_ops
 * until it is done. The first one that cannot go on says why in one line
 * and kicks the others out of their runs: immediate_exit for the next run,
 * KICK_SIGNAL for the one under way.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

#define DEFAULT_MEM (64ULL << 20)
#define MAX_IMAGE (64 << 20)

static const char *prog = "vmm";

/* The vCPU threads' shared state: set before the threads start. */
static struct vcpu *vcpus;
static unsigned int nr_vcpus;
static const struct vcpu_ops *ops;
static int threads_started; /* every vCPU thread exists: kick_all may signal them */
static int failed; /* a vCPU could not go on: the others are kicked */
static int powered_off;

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

static void __attribute__((format(printf, 1, 2), noreturn)) bad_input(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void __attribute__((noreturn)) usage_error(const char *what)
{
	bad_input("%s (usage: %s [--vcpus N] [--mem SIZE] --dtb FILE GUEST.elf)", what, prog);
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
			if (*end || opt->vcpus < 1 || opt->vcpus > max_vcpus)
				bad_input("--vcpus %s: between 1 and %u", optarg, max_vcpus);
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

/* The whole file, at most limit bytes (else one line, exit 2). */
static uint8_t *read_file(const char *path, size_t limit, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data;

	if (!f)
		bad_input("%s: %s", path, strerror(errno));
	data = malloc(limit + 1);
	if (!data)
		die(true, "%s", path);
	*size = fread(data, 1, limit + 1, f);
	if (ferror(f))
		bad_input("%s: %s", path, strerror(errno));
	fclose(f);
	if (*size > limit)
		bad_input("%s: larger than %zu bytes", path, limit);
	return data;
}

/* Whether [addr, addr + size) lies in the ram_size bytes of RAM from RAM_BASE. */
static bool fits(uint64_t addr, uint64_t size, uint64_t ram_size)
{
	return addr >= RAM_BASE && size <= ram_size && addr - RAM_BASE <= ram_size - size;
}

/* The ELF's program header i (the headers are checked to lie in the file). */
static const Elf64_Phdr *phdr(const struct guest *guest, int i)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)guest->elf;

	return (const Elf64_Phdr *)(guest->elf + eh->e_phoff) + i;
}

static void check_elf(const struct options *opt, const struct guest *guest)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)guest->elf;
	const char *path = opt->image;
	size_t size = guest->elf_size;
	int loaded = 0;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		bad_input("%s: not an ELF file", path);
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_AARCH64)
		bad_input("%s: not an AArch64 ELF64", path);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		bad_input("%s: bad program headers", path);
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = phdr(guest, i);

		if (ph->p_type != PT_LOAD || !ph->p_memsz)
			continue;
		if (ph->p_filesz > ph->p_memsz || ph->p_offset > size ||
		    size - ph->p_offset < ph->p_filesz)
			bad_input("%s: segment %d is outside the file", path, i);
		if (!fits(ph->p_paddr, ph->p_memsz, opt->mem - DTB_ROOM))
			bad_input("%s: %#llx+%#llx does not fit in RAM %#llx+%#llx (more --mem?)",
				  path, (unsigned long long)ph->p_paddr,
				  (unsigned long long)ph->p_memsz, RAM_BASE,
				  (unsigned long long)(opt->mem - DTB_ROOM));
		loaded++;
	}
	if (!loaded)
		bad_input("%s: nothing to load", path);
}

void read_guest(const struct options *opt, struct guest *guest)
{
	static const uint8_t fdt_magic[4] = { 0xd0, 0x0d, 0xfe, 0xed };

	guest->elf = read_file(opt->image, MAX_IMAGE, &guest->elf_size);
	check_elf(opt, guest);
	guest->entry = ((const Elf64_Ehdr *)guest->elf)->e_entry;
	guest->dtb = read_file(opt->dtb, DTB_ROOM, &guest->dtb_size);
	if (guest->dtb_size < sizeof(fdt_magic) || memcmp(guest->dtb, fdt_magic, sizeof(fdt_magic)))
		bad_input("%s: not a devicetree blob", opt->dtb);
	guest->dtb_addr = RAM_BASE + opt->mem - DTB_ROOM;
}

void load_guest(const struct guest *guest, uint8_t *ram)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)guest->elf;

	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = phdr(guest, i);
		uint8_t *to = ram + (ph->p_paddr - RAM_BASE);

		if (ph->p_type != PT_LOAD || !ph->p_memsz)
			continue;
		memcpy(to, guest->elf + ph->p_offset, ph->p_filesz);
		memset(to + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	}
	memcpy(ram + (guest->dtb_addr - RAM_BASE), guest->dtb, guest->dtb_size);
}

int vmm_init(int argc, char **argv, unsigned int max_vcpus, const char *device,
	     struct options *opt, struct guest *guest)
{
	int dev;

	parse_options(argc, argv, max_vcpus, opt);
	read_guest(opt, guest);
	setvbuf(stdout, NULL, _IOLBF, 0);
	kick_handler_install();
	dev = open(device, O_RDWR | O_CLOEXEC);
	if (dev < 0)
		die(true, "%s", device);
	return dev;
}

int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd < 0)
		die(true, "eventfd");
	return fd;
}

/* Every vCPU out of its run: immediate_exit for the next one, a signal for this one. */
static void kick_all(void)
{
	if (!__atomic_load_n(&threads_started, __ATOMIC_SEQ_CST))
		return; /* run_vcpus kicks them once they exist */
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		*vcpus[i].immediate_exit = 1;
		pthread_kill(vcpus[i].thread, KICK_SIGNAL);
	}
}

void vcpu_fail(const struct vcpu *vcpu, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(&failed, 1, __ATOMIC_SEQ_CST))
		return;
	fflush(stdout);
	fprintf(stderr, "%s: vCPU %u: ", prog, vcpu->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kick_all();
}

void guest_powered_off(void)
{
	__atomic_store_n(&powered_off, 1, __ATOMIC_SEQ_CST);
}

bool guest_is_off(void)
{
	return __atomic_load_n(&powered_off, __ATOMIC_SEQ_CST);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;

	while (!__atomic_load_n(&failed, __ATOMIC_SEQ_CST)) {
		if (ops->run(vcpu) < 0) {
			if (errno != EINTR)
				vcpu_fail(vcpu, "%s: %s", ops->run_name, strerror(errno));
			continue;
		}
		if (!ops->exit(vcpu))
			break;
	}
	return NULL;
}

int run_vcpus(struct vcpu *all, unsigned int nr, const struct vcpu_ops *vcpu_ops)
{
	vcpus = all;
	nr_vcpus = nr;
	ops = vcpu_ops;
	for (unsigned int i = 0; i < nr; i++)
		if (pthread_create(&vcpus[i].thread, NULL, vcpu_thread, &vcpus[i]))
			die(false, "cannot start the thread of vCPU %u", i);
	__atomic_store_n(&threads_started, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&failed, __ATOMIC_SEQ_CST))
		kick_all();
	for (unsigned int i = 0; i < nr; i++)
		pthread_join(vcpus[i].thread, NULL);
	return powered_off && !failed ? 0 : 1;
}

void close_vcpus(struct vcpu *all, unsigned int nr)
{
	for (unsigned int i = nr; i-- > 0;) {
		if (all[i].run_size)
			munmap(all[i].run, all[i].run_size);
		close(all[i].fd);
	}
}
