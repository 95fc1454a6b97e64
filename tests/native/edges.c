/*
 * Edge cases of `gunyah-sim exec`, one per command: edges CMD [N].
 * Each prints one line a test compares; exit status 0 unless noted.
 *
 *   mmrace N      N threads, each mmap/munmap of its own guest_memfd 1000 times
 *   gzslot N      a GenieZone memslot over the program's own memory:
 *                 1 a kernel address; 2 8K of a 12K mapping, then all 12K;
 *                 3 a PROT_READ page, then a write to it; 4 the program's text;
 *                 5 8K of shared anonymous memory (its own VMA)
 *   gzrace N      N threads, each 5 times: fresh anonymous memory of its own,
 *                 written, then a memslot over it (neighbouring mappings may
 *                 merge into one VMA: EINVAL then); prints how many were EFAULT
 *   scm           a VM fd passed over a unix socket (SCM_RIGHTS), to a forked
 *                 child and to the program itself: each one's ioctl errno
 *   open          open's errno for /dev/gunyah with O_CREAT|O_EXCL, with
 *                 O_DIRECTORY, and for /dev/gunyah/x
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/gunyah.h>
#include <linux/gzvm.h>

static int dev;

static void *mmrace_thread(void *unused)
{
	struct gunyah_create_mem_args args = { .size = 8192 };
	int gmem = ioctl(dev, GUNYAH_CREATE_GUEST_MEM, &args);

	(void)unused;
	for (int i = 0; i < 1000; i++) {
		char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);

		if (m == MAP_FAILED || munmap(m, 8192))
			return (void *)(intptr_t)errno;
	}
	close(gmem);
	return NULL;
}

static int mmrace(int n)
{
	pthread_t threads[16];
	int failed = 0;

	dev = open("/dev/gunyah", O_RDWR);
	for (int i = 0; i < n; i++)
		pthread_create(&threads[i], NULL, mmrace_thread, NULL);
	for (int i = 0; i < n; i++) {
		void *err;

		pthread_join(threads[i], &err);
		failed |= err != NULL;
	}
	close(dev);
	printf("mmrace: %s\n", failed ? "failed" : "ok");
	return 0;
}

static sigjmp_buf fault_jump;

static void on_fault(int sig)
{
	siglongjmp(fault_jump, sig);
}

__attribute__((noinline)) static int text_probe(int x)
{
	return x * 3 + 1;
}

static int memslot(int vm, uintptr_t addr, uint64_t size)
{
	struct gzvm_userspace_memory_region r = {
		.guest_phys_addr = 0x80000000, .memory_size = size, .userspace_addr = addr
	};

	errno = 0;
	return ioctl(vm, GZVM_SET_USER_MEMORY_REGION, &r) ? errno : 0;
}

/* Fresh private anonymous memory between two PROT_NONE pages: its own VMA, which no
 * neighbouring anonymous mapping can merge with, whatever the process's layout. */
static char *fenced(size_t size, int prot)
{
	char *guard = mmap(NULL, size + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return mmap(guard + 4096, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static int gzslot(int n)
{
	struct sigaction sa = { .sa_handler = on_fault };
	int gz = open("/dev/gzvm", O_RDWR), vm = ioctl(gz, GZVM_CREATE_VM, 0);
	char *m;

	sigaction(SIGSEGV, &sa, NULL);
	if (n == 1)
		printf("gzslot: %d\n", memslot(vm, (uintptr_t)-4096, 8192));
	if (n == 2) {
		m = fenced(3 * 4096, PROT_READ | PROT_WRITE);
		m[0] = 7;
		printf("gzslot: %d", memslot(vm, (uintptr_t)m, 8192));
		printf(" %d %d\n", memslot(vm, (uintptr_t)m, 3 * 4096), m[0]);
	}
	if (n == 3) {
		m = fenced(4096, PROT_READ);
		printf("gzslot: %d", memslot(vm, (uintptr_t)m, 4096));
		if (!sigsetjmp(fault_jump, 1)) {
			*(volatile char *)m = 1;
			printf(" written\n");
		} else {
			printf(" SIGSEGV\n");
		}
	}
	if (n == 4) {
		uintptr_t page = (uintptr_t)text_probe & ~(uintptr_t)4095;

		printf("gzslot: %d", memslot(vm, page, 4096));
		printf(" %d\n", text_probe(2));
	}
	if (n == 5) {
		m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		m[4096] = 7;
		printf("gzslot: %d %d\n", memslot(vm, (uintptr_t)m, 8192), m[4096]);
	}
	close(vm);
	close(gz);
	return 0;
}

static void send_fd(int sock, int fd)
{
	char byte = 0, cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	sendmsg(sock, &mh, 0);
}

static int recv_fd(int sock)
{
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	int fd = -1;

	if (recvmsg(sock, &mh, 0) > 0 && CMSG_FIRSTHDR(&mh))
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	return fd;
}

/* a NULL config: EFAULT from the VM, ENOTTY from anything else */
static int vm_errno(int fd)
{
	errno = 0;
	ioctl(fd, GUNYAH_VM_SET_DTB_CONFIG, NULL);
	return errno;
}

static int scm(void)
{
	int sv[2], vm, status;
	pid_t child;

	dev = open("/dev/gunyah", O_RDWR);
	vm = ioctl(dev, GUNYAH_CREATE_VM, 0);
	socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	child = fork();
	if (!child)
		_exit(vm_errno(recv_fd(sv[1])));
	send_fd(sv[0], vm);
	waitpid(child, &status, 0);
	send_fd(sv[0], vm);
	printf("scm: %d %d\n", WEXITSTATUS(status), vm_errno(recv_fd(sv[1])));
	return 0;
}

static int open_errno(const char *path, int flags)
{
	int fd;

	errno = 0;
	fd = open(path, flags, 0600);
	if (fd >= 0)
		close(fd);
	return errno;
}

static int gzrace_vm;
static int gzrace_efault;

static void *gzrace_thread(void *arg)
{
	long i = (long)arg;

	for (int k = 0; k < 5; k++) {
		size_t size = 4096 * (1 + i);
		char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct gzvm_userspace_memory_region r = {
			.slot = i, .guest_phys_addr = 0x100000000ull + i * 0x1000000,
			.memory_size = size, .userspace_addr = (uintptr_t)m,
		};

		m[0] = i;
		if (ioctl(gzrace_vm, GZVM_SET_USER_MEMORY_REGION, &r) && errno == EFAULT)
			__atomic_add_fetch(&gzrace_efault, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static int gzrace(int n)
{
	int gz = open("/dev/gzvm", O_RDWR);
	pthread_t threads[16];

	gzrace_vm = ioctl(gz, GZVM_CREATE_VM, 0);
	for (long i = 0; i < n; i++)
		pthread_create(&threads[i], NULL, gzrace_thread, (void *)(i + 2));
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	printf("gzrace: efault %d\n", gzrace_efault);
	close(gzrace_vm);
	close(gz);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int n = argc > 2 ? atoi(argv[2]) : 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(cmd, "mmrace"))
		return mmrace(n);
	if (!strcmp(cmd, "open")) {
		printf("open: %d %d %d\n", open_errno("/dev/gunyah", O_RDWR | O_CREAT | O_EXCL),
		       open_errno("/dev/gunyah", O_RDONLY | O_DIRECTORY),
		       open_errno("/dev/gunyah/x", O_RDWR));
		return 0;
	}
	if (!strcmp(cmd, "scm"))
		return scm();
	if (!strcmp(cmd, "gzslot"))
		return gzslot(n);
	if (!strcmp(cmd, "gzrace"))
		return gzrace(n < 16 ? n : 16);
	fprintf(stderr, "edges: unknown command %s\n", cmd);
	return 2;
}
