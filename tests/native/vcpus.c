/*
 * A threaded native VMM: a VM with the guest code and VM config DT given as
 * files, N vCPU threads in GUNYAH_VCPU_RUN at once.
 *
 *   vcpus CODE DTB N kick   pthread_kill every vCPU thread (no immediate_exit)
 *                           and print each VCPU_RUN's outcome: "vcpu I: RET ERRNO"
 *   vcpus CODE DTB N hang   print "running" once every thread is about to
 *                           enter VCPU_RUN, then wait to be killed
 *   vcpus CODE DTB N nested as kick, the handler making a model call of its own
 *                           (the first error it got: "handler: ERRNO")
 *   vcpus CODE DTB N broken as kick, after a pipe took the place of every
 *                           descriptor but the program's own
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "linux/gunyah.h"

#define RAM_IPA 0x80000000ULL
#define RAM_SIZE 0x200000ULL
#define DTB_OFFSET 0x10000ULL
#define DTB_SIZE 0x2000ULL
#define MAX_VCPUS 8

static struct {
	pthread_t thread;
	int fd;
	struct gunyah_vcpu_run *run;
	long ret;
	int err;
} vcpus[MAX_VCPUS];

static pthread_barrier_t ready;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int check(int ret, const char *what)
{
	if (ret < 0)
		die(what);
	return ret;
}

static void load(void *at, const char *path)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		die(path);
	if (!fread(at, 1, RAM_SIZE - DTB_OFFSET, f) && ferror(f))
		die(path);
	fclose(f);
}

static void *vcpu_thread(void *arg)
{
	long i = (long)arg;

	pthread_barrier_wait(&ready);
	vcpus[i].ret = ioctl(vcpus[i].fd, GUNYAH_VCPU_RUN, 0);
	vcpus[i].err = errno;
	return NULL;
}

static int dev, nested, handler_err;

static void kicked(int sig)
{
	int err = errno;

	(void)sig;
	if (nested && ioctl(vcpus[0].fd, GUNYAH_VCPU_MMAP_SIZE, 0) < 0 && !handler_err)
		handler_err = errno;
	errno = err;
}

/* a pipe over every descriptor 3..255 the program did not open itself */
static void break_descriptors(int vm, int ram, int n)
{
	int p[2];

	if (pipe(p))
		die("pipe");
	for (int fd = 3; fd < 256; fd++) {
		int ours = fd == dev || fd == vm || fd == ram || fd == p[0] || fd == p[1];

		for (int i = 0; i < n; i++)
			ours |= fd == vcpus[i].fd;
		if (!ours)
			dup2(p[0], fd);
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = kicked }; /* no SA_RESTART, as a VMM's kick */
	int vm, ram, n;
	char *image;

	if (argc != 5)
		return 2;
	n = atoi(argv[3]);
	sigaction(SIGUSR1, &sa, NULL);
	dev = check(open("/dev/gunyah", O_RDWR | O_CLOEXEC), "open");
	vm = check(ioctl(dev, GUNYAH_CREATE_VM, 0), "CREATE_VM");
	struct gunyah_create_mem_args mem = { .size = RAM_SIZE };
	ram = check(ioctl(dev, GUNYAH_CREATE_GUEST_MEM, &mem), "CREATE_GUEST_MEM");
	image = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ram, 0);
	if (image == MAP_FAILED)
		die("mmap guest_memfd");
	load(image, argv[1]);
	load(image + DTB_OFFSET, argv[2]);
	munmap(image, RAM_SIZE);
	struct gunyah_map_mem_args map = {
		.guest_addr = RAM_IPA,
		.flags = GUNYAH_MEM_FORCE_LEND | GUNYAH_MEM_ALLOW_RWX,
		.guest_mem_fd = ram,
		.size = RAM_SIZE,
	};
	check(ioctl(vm, GUNYAH_VM_MAP_MEM, &map), "MAP_MEM");
	struct gunyah_vm_dtb_config dtb = { RAM_IPA + DTB_OFFSET, DTB_SIZE };
	check(ioctl(vm, GUNYAH_VM_SET_DTB_CONFIG, &dtb), "SET_DTB_CONFIG");
	struct gunyah_vm_boot_context pc = { .reg = GUNYAH_VM_BOOT_CONTEXT_REG(REG_SET_PC, 0),
					     .value = RAM_IPA };
	check(ioctl(vm, GUNYAH_VM_SET_BOOT_CONTEXT, &pc), "SET_BOOT_CONTEXT");
	for (int i = 0; i < n; i++) {
		struct gunyah_fn_vcpu_arg id = { i };
		struct gunyah_fn_desc fn = { GUNYAH_FN_VCPU, sizeof(id), (uintptr_t)&id };

		vcpus[i].fd = check(ioctl(vm, GUNYAH_VM_ADD_FUNCTION, &fn), "ADD_FUNCTION");
		vcpus[i].run = mmap(NULL, check(ioctl(vcpus[i].fd, GUNYAH_VCPU_MMAP_SIZE, 0), "size"),
				    PROT_READ | PROT_WRITE, MAP_SHARED, vcpus[i].fd, 0);
		if (vcpus[i].run == MAP_FAILED)
			die("mmap run");
	}
	check(ioctl(vm, GUNYAH_VM_START, 0), "START");
	nested = !strcmp(argv[4], "nested");
	pthread_barrier_init(&ready, NULL, n + 1);
	for (long i = 0; i < n; i++)
		pthread_create(&vcpus[i].thread, NULL, vcpu_thread, (void *)i);
	pthread_barrier_wait(&ready);
	if (!strcmp(argv[4], "hang")) {
		printf("running\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	if (nested || !strcmp(argv[4], "broken"))
		usleep(200000); /* the threads wait for their replies */
	if (!strcmp(argv[4], "broken"))
		break_descriptors(vm, ram, n);
	/* a signal alone ends VCPU_RUN (one sent before the thread got in is lost:
	 * send until it is out) */
	for (int i = 0; i < n; i++) {
		while (pthread_tryjoin_np(vcpus[i].thread, NULL) == EBUSY) {
			pthread_kill(vcpus[i].thread, SIGUSR1);
			usleep(20000);
		}
		printf("vcpu %d: %ld %d\n", i, vcpus[i].ret, vcpus[i].ret < 0 ? vcpus[i].err : 0);
	}
	if (nested)
		printf("handler: %d\n", handler_err);
	for (int i = 0; i < n; i++) {
		munmap(vcpus[i].run, 4096);
		close(vcpus[i].fd);
	}
	close(ram);
	close(vm);
	close(dev);
	return 0;
}
