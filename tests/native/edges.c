/*
 * Edge cases of `gunyah-sim exec`, one per command: edges CMD [N].
 * Each prints one line a test compares; exit status 0 unless noted.
 *
 *   mmrace N      N threads, each mmap/munmap of its own guest_memfd 1000 times
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
#include <sys/socket.h>
#include <sys/syscall.h>
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

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int n = argc > 2 ? atoi(argv[2]) : 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(cmd, "mmrace"))
		return mmrace(n);
	fprintf(stderr, "edges: unknown command %s\n", cmd);
	return 2;
}
