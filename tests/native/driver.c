/*
 * A native program that makes the device calls a script on stdin names,
 * through the real libc calls, and prints one line per command (driver.py
 * makes the same calls on a Host; the tests compare the two).
 *
 *   open SLOT [cloexec]          open(DEVICE) -> SLOT          "open: 0|-1 ERRNO"
 *   ioctl SLOT REQUEST ARG [NEW] ioctl(SLOT, REQUEST, ARG)     "ioctl: RET|fd|-1 ERRNO"
 *   mmap SLOT LEN OFF MAP [private]                            "mmap: 0|-1 ERRNO"
 *   munmap MAP | close SLOT | dup SLOT NEW | eventfd SLOT     "<cmd>: 0|-1 ERRNO"
 *   poke MAP OFF VALUE | peek MAP OFF                          "peek: VALUE"
 *   load MAP OFF PATH            a file's bytes into a mapping
 *   read SLOT COUNT | write SLOT VALUE (an eventfd's 8 bytes)  "read: VALUE|-1 ERRNO"
 *   fallocate SLOT MODE OFF LEN                                "fallocate: 0|-1 ERRNO"
 *   cloexec SLOT                 "cloexec: 0|1" (FD_CLOEXEC of the descriptor)
 *   fork-exec SLOT               is SLOT still open in an exec'd child? "fork-exec: 0|1"
 *
 * ARG: an integer, or a struct "s:SIZE=VALUE,...[|SIZE=VALUE,...]" whose
 * VALUE is an integer, $SLOT (its fd number), @MAP (its address) or ^ (the
 * address of the struct after '|').
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS 64

static struct {
	char name[32];
	long value; /* fd, or address of a mapping */
	size_t len;
} slots[SLOTS];

static const char *device;

static long *slot(const char *name)
{
	for (int i = 0; i < SLOTS; i++)
		if (!strcmp(slots[i].name, name))
			return &slots[i].value;
	for (int i = 0; i < SLOTS; i++)
		if (!slots[i].name[0]) {
			snprintf(slots[i].name, sizeof(slots[i].name), "%s", name);
			return &slots[i].value;
		}
	exit(99);
}

static size_t *slot_len(const char *name)
{
	slot(name);
	for (int i = 0; i < SLOTS; i++)
		if (!strcmp(slots[i].name, name))
			return &slots[i].len;
	exit(99);
}

static uint64_t value(const char *text, void *aux)
{
	if (text[0] == '$' || text[0] == '@')
		return (uint64_t)*slot(text + 1);
	if (text[0] == '^')
		return (uint64_t)(uintptr_t)aux;
	return strtoull(text, NULL, 0);
}

/* "SIZE=VALUE,..." into buf */
static void fields(char *spec, uint8_t *buf, void *aux)
{
	size_t at = 0;

	for (char *f = strtok(spec, ","); f; f = strtok(NULL, ",")) {
		int size = atoi(f);
		uint64_t v = value(strchr(f, '=') + 1, aux);

		memcpy(buf + at, &v, size);
		at += size;
	}
}

static void *arg_of(char *text, uint8_t *buf, uint8_t *aux)
{
	char *bar;

	if (strncmp(text, "s:", 2))
		return (void *)(uintptr_t)value(text, NULL);
	bar = strchr(text, '|');
	if (bar) {
		*bar = 0;
		fields(bar + 1, aux, NULL);
	}
	fields(text + 2, buf, aux);
	return buf;
}

static void result(const char *cmd, long ret)
{
	if (ret < 0)
		printf("%s: -1 %d\n", cmd, errno);
	else
		printf("%s: %ld\n", cmd, ret);
}

static void command(char *line)
{
	char *cmd = strtok(line, " \n"), *a = strtok(NULL, " \n"), *b = strtok(NULL, " \n");
	char *c = strtok(NULL, " \n"), *d = strtok(NULL, " \n"), *e = strtok(NULL, " \n");
	static uint8_t buf[4096], aux[4096];

	if (!cmd || cmd[0] == '#')
		return;
	memset(buf, 0, sizeof(buf));
	memset(aux, 0, sizeof(aux));
	if (!strcmp(cmd, "open")) {
		int fd = open(device, O_RDWR | (b && !strcmp(b, "cloexec") ? O_CLOEXEC : 0));

		*slot(a) = fd;
		result(cmd, fd < 0 ? -1 : 0);
	} else if (!strcmp(cmd, "ioctl")) {
		long ret = ioctl((int)*slot(a), strtoul(b, NULL, 0), arg_of(c, buf, aux));

		if (d && ret >= 0) {
			*slot(d) = ret;
			printf("%s: fd\n", cmd);
		} else {
			result(cmd, ret);
		}
	} else if (!strcmp(cmd, "mmap")) {
		size_t len = strtoul(b, NULL, 0);
		int flags = e && !strcmp(e, "private") ? MAP_PRIVATE : MAP_SHARED;
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, (int)*slot(a),
			       strtol(c, NULL, 0));

		*slot(d) = (long)p;
		*slot_len(d) = len;
		result(cmd, p == MAP_FAILED ? -1 : 0);
	} else if (!strcmp(cmd, "anon")) {
		size_t len = strtoul(b, NULL, 0);
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		*slot(a) = (long)p;
		*slot_len(a) = len;
		result(cmd, p == MAP_FAILED ? -1 : 0);
	} else if (!strcmp(cmd, "munmap")) {
		result(cmd, munmap((void *)*slot(a), *slot_len(a)));
	} else if (!strcmp(cmd, "close")) {
		result(cmd, close((int)*slot(a)));
	} else if (!strcmp(cmd, "dup")) {
		int fd = dup((int)*slot(a));

		*slot(b) = fd;
		result(cmd, fd < 0 ? -1 : 0);
	} else if (!strcmp(cmd, "eventfd")) {
		int fd = eventfd(0, EFD_CLOEXEC);

		*slot(a) = fd;
		result(cmd, fd < 0 ? -1 : 0);
	} else if (!strcmp(cmd, "poke")) {
		uint64_t v = strtoull(c, NULL, 0);

		memcpy((char *)*slot(a) + strtoul(b, NULL, 0), &v, 8);
	} else if (!strcmp(cmd, "peek")) {
		uint64_t v;

		memcpy(&v, (char *)*slot(a) + strtoul(b, NULL, 0), 8);
		printf("%s: %#llx\n", cmd, (unsigned long long)v);
	} else if (!strcmp(cmd, "load")) {
		FILE *f = fopen(c, "rb");
		size_t n = fread((char *)*slot(a) + strtoul(b, NULL, 0), 1, 1 << 20, f);

		fclose(f);
		(void)n;
	} else if (!strcmp(cmd, "read")) {
		uint64_t v = 0;
		long n = read((int)*slot(a), &v, 8);

		if (n < 0)
			result(cmd, -1);
		else
			printf("%s: %llu\n", cmd, (unsigned long long)v);
	} else if (!strcmp(cmd, "write")) {
		uint64_t v = strtoull(b, NULL, 0);

		result(cmd, write((int)*slot(a), &v, 8) < 0 ? -1 : 0);
	} else if (!strcmp(cmd, "fallocate")) {
		result(cmd, fallocate((int)*slot(a), strtol(b, NULL, 0), strtol(c, NULL, 0),
				      strtol(d, NULL, 0)));
	} else if (!strcmp(cmd, "cloexec")) {
		printf("%s: %d\n", cmd, !!(fcntl((int)*slot(a), F_GETFD) & FD_CLOEXEC));
	} else if (!strcmp(cmd, "fork-exec")) {
		char probe[64];
		int status;
		pid_t pid;

		snprintf(probe, sizeof(probe), "test -e /proc/self/fd/%ld", *slot(a));
		fflush(stdout);
		pid = fork();
		if (!pid) {
			execl("/bin/sh", "sh", "-c", probe, (char *)NULL);
			_exit(127);
		}
		waitpid(pid, &status, 0);
		printf("%s: %d\n", cmd, WEXITSTATUS(status) == 0);
	} else {
		printf("%s: unknown\n", cmd);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char line[1024];

	device = argc > 1 ? argv[1] : "/dev/gunyah";
	while (fgets(line, sizeof(line), stdin))
		command(line);
	return 0;
}
