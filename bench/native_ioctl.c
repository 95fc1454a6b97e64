/*
 * The cost of an ioctl on a model fd under `gunyah-sim exec`, against a plain
 * ioctl on a real fd in the same process: prints the best of three runs of N
 * calls of each, in nanoseconds per call ("MODEL_NS PLAIN_NS").
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "linux/gunyah.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double best_ns(int fd, unsigned long request, void *arg, int n)
{
	double best = 1e30;

	for (int run = 0; run < 3; run++) {
		double start = now_ns();

		for (int i = 0; i < n; i++)
			if (ioctl(fd, request, arg) < 0)
				exit(1);
		if ((now_ns() - start) / n < best)
			best = (now_ns() - start) / n;
	}
	return best;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000, pipefd[2], queued;
	int dev = open("/dev/gunyah", O_RDWR | O_CLOEXEC);
	int vm = ioctl(dev, GUNYAH_CREATE_VM, 0);
	struct gunyah_fn_vcpu_arg id = { 0 };
	struct gunyah_fn_desc fn = { GUNYAH_FN_VCPU, sizeof(id), (uintptr_t)&id };
	int vcpu = ioctl(vm, GUNYAH_VM_ADD_FUNCTION, &fn);

	if (dev < 0 || vm < 0 || vcpu < 0 || pipe(pipefd))
		return 1;
	printf("%.1f %.1f\n", best_ns(vcpu, GUNYAH_VCPU_MMAP_SIZE, NULL, n),
	       best_ns(pipefd[0], FIONREAD, &queued, n));
	close(vcpu);
	close(vm);
	close(dev);
	return 0;
}
