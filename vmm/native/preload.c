/*
 * The preload library of `gunyah-sim exec`: a native program's calls on the
 * simulated device reach the model running in the gunyah-sim process.
 *
 * Interposed: open, open64, openat, openat64 (and their _2 fortify forms) of
 * the device path; ioctl, mmap, mmap64, munmap, close, dup, dup2, dup3,
 * fcntl(F_DUPFD, F_DUPFD_CLOEXEC), fallocate, read, write and poll on model
 * fds. Any
 * other fd goes to libc after one table lookup.
 *
 * A model fd is a real socket of the program (the server holds the peer), so
 * the kernel numbers it, dup/fork/CLOEXEC work and the last close is seen by
 * the server as a hang-up. Each thread talks to the server on its own
 * SOCK_SEQPACKET channel; a request is sent with every signal blocked, and the
 * reply is awaited in ppoll with the thread's own mask, so a signal that
 * arrives during the call runs its handler and is then reported to the server
 * (on the control socket), which interrupts the request in the model.
 *
 * The wire format is the one vmm/native/preload.py describes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif

enum { OP_OPEN = 1, OP_IOCTL, OP_MMAP, OP_MUNMAP, OP_CLOSE, OP_READ, OP_WRITE, OP_POLL, OP_ACK,
       OP_FALLOCATE, OP_LOOKUP };
enum { CTL_HELLO = 1, CTL_INTR };
enum { REPLY_DONE = 0, REPLY_MAPFIX, REPLY_REVOKE };

#define DATA_MAX 65536 /* bytes one read or write of a model fd carries */
#define FD_MAX 65536
#define MAPS_MAX 1024
#define CHANS_MAX 1024

struct request {
	uint32_t op, seq;
	int64_t a[6];
};

struct reply {
	int64_t ret;
	int32_t err;
	uint32_t kind;
	int64_t b[4];
};

struct ctl_msg {
	uint32_t op, pad;
	int64_t pid, tid, seq;
};

struct model_fd {
	uint64_t ino; /* of the socket; 0: not a model fd */
	int64_t id;   /* the server's name of the file */
};

struct model_map {
	uintptr_t addr;
	size_t len;
};

static struct model_fd fds[FD_MAX];
static uint64_t asked[FD_MAX]; /* st_ino of a socket the server said is no model file */
static struct model_map maps[MAPS_MAX];
static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static int chans[CHANS_MAX]; /* every thread's channel + 1 (0: free slot) */
static int ctl_fd = -1;
static char *device;
static pthread_key_t chan_key;
static __thread int chan = -1;
static __thread uint32_t seq;
static __thread int in_call; /* a handler's call would wait on our reply */

#define REAL(ret, name, ...)                                                   \
	static ret (*real_##name)(__VA_ARGS__);                                \
	static ret (*get_##name(void))(__VA_ARGS__)                            \
	{                                                                      \
		if (!real_##name)                                              \
			real_##name = dlsym(RTLD_NEXT, #name);                 \
		return real_##name;                                            \
	}

REAL(int, open, const char *, int, ...)
REAL(int, ioctl, int, unsigned long, ...)
REAL(void *, mmap, void *, size_t, int, int, int, off_t)
REAL(int, munmap, void *, size_t)
REAL(int, close, int)
REAL(int, dup, int)
REAL(int, dup2, int, int)
REAL(int, dup3, int, int, int)
REAL(int, fcntl, int, int, ...)
REAL(ssize_t, read, int, void *, size_t)
REAL(ssize_t, write, int, const void *, size_t)
REAL(int, poll, struct pollfd *, nfds_t, int)

static int (*real_openat_fn)(int, const char *, int, ...);

static int real_openat_call(int dirfd, const char *path, int flags, mode_t mode)
{
	if (!real_openat_fn)
		real_openat_fn = dlsym(RTLD_NEXT, "openat");
	return real_openat_fn(dirfd, path, flags, mode);
}

/*
 * A handler that interrupted a model call of its thread may not make one: the
 * thread's channel is awaiting the first call's reply.
 */
static int nested_call(void)
{
	static int said;

	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "gunyah-sim: a model call from a signal handler inside another "
				"model call of the same thread fails with EIO\n");
	errno = EIO;
	return -1;
}

static int gone(void)
{
	static int said;

	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "gunyah-sim: the simulator is gone; model calls fail with EIO\n");
	errno = EIO;
	return -1;
}

/* ------------------------------------------------------------ model fds */

static int64_t model_id(int fd)
{
	struct stat st;
	uint64_t ino;

	if (fd < 0 || fd >= FD_MAX)
		return -1;
	ino = __atomic_load_n(&fds[fd].ino, __ATOMIC_ACQUIRE);
	if (!ino)
		return -1;
	/* a raw close and a reuse of the number: another file now */
	if (fstat(fd, &st) || st.st_ino != ino) {
		__atomic_store_n(&fds[fd].ino, 0, __ATOMIC_RELEASE);
		return -1;
	}
	return fds[fd].id;
}

static void install(int fd, int64_t id)
{
	struct stat st;

	if (fd < 0 || fd >= FD_MAX || fstat(fd, &st))
		return;
	fds[fd].id = id;
	__atomic_store_n(&fds[fd].ino, (uint64_t)st.st_ino, __ATOMIC_RELEASE);
}

static void forget(int fd)
{
	if (fd >= 0 && fd < FD_MAX)
		__atomic_store_n(&fds[fd].ino, 0, __ATOMIC_RELEASE);
}

static void remember_map(uintptr_t addr, size_t len)
{
	pthread_mutex_lock(&maps_lock);
	for (int i = 0; i < MAPS_MAX; i++)
		if (!maps[i].len) {
			maps[i] = (struct model_map){ addr, len };
			break;
		}
	pthread_mutex_unlock(&maps_lock);
}

/* 1: [addr, addr+len) was a whole model mapping, now forgotten */
static int forget_map(uintptr_t addr, size_t len)
{
	size_t pages = (len + 4095) & ~(size_t)4095;
	int found = 0;

	pthread_mutex_lock(&maps_lock);
	for (int i = 0; i < MAPS_MAX; i++)
		if (maps[i].len && maps[i].addr == addr &&
		    ((maps[i].len + 4095) & ~(size_t)4095) == pages) {
			maps[i].len = 0;
			found = 1;
			break;
		}
	pthread_mutex_unlock(&maps_lock);
	return found;
}

/* ------------------------------------------------------------- channels */

static int send_fd_msg(int sock, const void *msg, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static void drop_chan(void *unused)
{
	(void)unused;
	if (chan < 0)
		return;
	for (int i = 0; i < CHANS_MAX; i++)
		__atomic_compare_exchange_n(&chans[i], &(int){ chan + 1 }, 0, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	get_close()(chan);
	chan = -1;
}

static int open_chan(void)
{
	struct ctl_msg hello = { CTL_HELLO, 0, getpid(), syscall(SYS_gettid), 0 };
	int sv[2];

	if (ctl_fd < 0)
		return gone();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	if (send_fd_msg(ctl_fd, &hello, sizeof(hello), sv[1])) {
		get_close()(sv[0]);
		get_close()(sv[1]);
		return gone();
	}
	get_close()(sv[1]);
	chan = sv[0];
	for (int i = 0; i < CHANS_MAX; i++)
		if (__atomic_compare_exchange_n(&chans[i], &(int){ 0 }, chan + 1, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			break;
	pthread_setspecific(chan_key, &chan); /* the destructor closes it at thread exit */
	return 0;
}

/* a forked child has only the forking thread: the parent's channels are not its own */
static void atfork_child(void)
{
	for (int i = 0; i < CHANS_MAX; i++) {
		int c = chans[i];

		chans[i] = 0;
		if (c)
			get_close()(c - 1);
	}
	chan = -1;
}

static int recv_reply(struct reply *rp, void *data, size_t cap, size_t *got, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov[2] = { { rp, sizeof(*rp) }, { data, cap } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = data ? 2 : 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
	struct cmsghdr *c;

	*fd = -1;
	if (n < (ssize_t)sizeof(*rp))
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	if (got)
		*got = n - sizeof(*rp);
	return 0;
}

/*
 * Adoption: the server made [b1, b1+b2), one whole VMA of our own anonymous
 * memory, the model's (memfd at offset b3). Copy what is there into the memfd,
 * then map it over the same range with the VMA's protection b0: contents,
 * address and access unchanged for the program. The copy goes through
 * process_vm_readv on ourselves, so a range that is not mapped is an error
 * (the ioctl's EFAULT), never a crash.
 */
static void mapfix(const struct reply *rp, int memfd)
{
	struct request ack = { OP_ACK, seq, { 0 } };
	void *addr = (void *)rp->b[1];
	size_t len = rp->b[2];
	void *copy = get_mmap()(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, rp->b[3]);
	struct iovec local = { copy, len }, remote = { addr, len };

	if (copy == MAP_FAILED) {
		ack.a[0] = errno;
	} else {
		if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)len)
			ack.a[0] = EFAULT;
		else if (get_mmap()(addr, len, (int)rp->b[0], MAP_SHARED | MAP_FIXED, memfd,
				    rp->b[3]) == MAP_FAILED)
			ack.a[0] = errno;
		else
			remember_map((uintptr_t)addr, len);
		get_munmap()(copy, len);
	}
	get_close()(memfd);
	send(chan, &ack, sizeof(ack), MSG_NOSIGNAL);
}

/*
 * Revocation: the pages of [b1, b1+b2), adopted memory, were lent and the host
 * lost them. Zeroed private pages take their place, as in the model's own
 * mapping: what the guest writes there is out of our reach from now on.
 */
static void revoke_pages(const struct reply *rp)
{
	struct request ack = { OP_ACK, seq, { 0 } };

	if (get_mmap()((void *)rp->b[1], rp->b[2], PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		ack.a[0] = errno;
	send(chan, &ack, sizeof(ack), MSG_NOSIGNAL);
}

/*
 * One request and its reply: ret (errno set and -1 on error). ``out``/``cap``
 * take the data a reply carries, ``*fd`` a descriptor it carries (or -1).
 */
static int64_t call(struct request *rq, const void *extra, size_t len, void *out,
		    size_t cap, size_t *got, int *fd)
{
	struct iovec iov[2] = { { rq, sizeof(*rq) }, { (void *)extra, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = extra ? 2 : 1 };
	struct pollfd pfd;
	sigset_t all, old;
	struct reply rp;

	*fd = -1;
	if (in_call)
		return nested_call();
	if (chan < 0 && open_chan())
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	in_call = 1;
	rq->seq = ++seq;
	if (sendmsg(chan, &mh, MSG_NOSIGNAL) < 0)
		goto dead;
	for (;;) {
		pfd = (struct pollfd){ chan, POLLIN, 0 };
		if (ppoll(&pfd, 1, NULL, &old) < 0) {
			struct ctl_msg intr = { CTL_INTR, 0, getpid(), syscall(SYS_gettid), seq };

			if (errno != EINTR)
				goto dead;
			/* a handler ran: the request in the model is interrupted too */
			if (send(ctl_fd, &intr, sizeof(intr), MSG_NOSIGNAL) != sizeof(intr))
				goto dead;
			continue;
		}
		if (recv_reply(&rp, out, cap, got, fd))
			goto dead;
		if (rp.kind == REPLY_MAPFIX) {
			mapfix(&rp, *fd);
			*fd = -1;
			continue;
		}
		if (rp.kind == REPLY_REVOKE) {
			revoke_pages(&rp);
			continue;
		}
		break;
	}
	in_call = 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	memcpy(rq->a, rp.b, sizeof(rp.b)); /* the reply's extra values, for the caller */
	if (rp.err) {
		errno = rp.err;
		return -1;
	}
	return rp.ret;
dead:
	in_call = 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return gone();
}

/*
 * model_id, and for a socket it does not know (a model fd that came over a
 * unix socket, SCM_RIGHTS) the server's answer, kept: a socket is asked
 * about once, any other fd never.
 */
static int64_t received_id(int fd)
{
	struct request rq = { OP_LOOKUP, 0, { 0 } };
	int64_t id = model_id(fd);
	struct stat st;
	int none;

	if (id >= 0 || fd < 0 || fd >= FD_MAX || fstat(fd, &st) || !S_ISSOCK(st.st_mode) ||
	    __atomic_load_n(&asked[fd], __ATOMIC_ACQUIRE) == (uint64_t)st.st_ino || ctl_fd < 0)
		return id;
	rq.a[0] = (int64_t)st.st_dev;
	rq.a[1] = (int64_t)st.st_ino;
	id = call(&rq, NULL, 0, NULL, 0, NULL, &none);
	if (id < 0) {
		__atomic_store_n(&asked[fd], (uint64_t)st.st_ino, __ATOMIC_RELEASE);
		return -1;
	}
	install(fd, id);
	return id;
}

/* -------------------------------------------------------- interposers */

/* the checks of a path walk and open that end at a character device */
static int open_refused(const char *path, int flags)
{
	if (path[strlen(device)] == '/' || flags & O_DIRECTORY)
		errno = ENOTDIR;
	else if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		errno = EEXIST;
	else
		return 0;
	return -1;
}

static int model_open(const char *path, int flags)
{
	struct request rq = { OP_OPEN, 0, { flags } };
	int64_t id;
	int fd;

	if (open_refused(path, flags))
		return -1;
	id = call(&rq, NULL, 0, NULL, 0, NULL, &fd);
	if (id < 0)
		return -1;
	if (!(flags & O_CLOEXEC))
		get_fcntl()(fd, F_SETFD, 0);
	install(fd, id);
	return fd;
}

/* the device, or a path under it ("/dev/gunyah/x": ENOTDIR, as a device gives) */
static int is_device(const char *path)
{
	size_t n = device ? strlen(device) : 0;

	return n && path && !strncmp(path, device, n) && (path[n] == '\0' || path[n] == '/');
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device(path))
		return model_open(path, flags);
	return get_open()(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device(path))
		return model_open(path, flags);
	return real_openat_call(dirfd, path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int __open_2(const char *path, int flags)
{
	return open(path, flags);
}

int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

int __openat_2(int dirfd, const char *path, int flags)
{
	return openat(dirfd, path, flags);
}

int __openat64_2(int dirfd, const char *path, int flags) __attribute__((alias("__openat_2")));

int ioctl(int fd, unsigned long request, ...)
{
	struct request rq = { OP_IOCTL, 0, { 0 } };
	va_list ap;
	void *arg;
	int64_t id, ret;
	int newfd;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	id = received_id(fd);
	if (id < 0)
		return get_ioctl()(fd, request, arg);
	rq.a[0] = id;
	rq.a[1] = (uint32_t)request;
	rq.a[2] = (int64_t)(uintptr_t)arg;
	rq.a[3] = fd;
	ret = call(&rq, NULL, 0, NULL, 0, NULL, &newfd);
	if (ret < 0 || newfd < 0)
		return ret;
	if (!rq.a[1]) /* the new file is not close-on-exec */
		get_fcntl()(newfd, F_SETFD, 0);
	install(newfd, ret);
	return newfd;
}

static void model_munmap(uintptr_t addr)
{
	struct request rq = { OP_MUNMAP, 0, { (int64_t)addr } };
	int fd;

	call(&rq, NULL, 0, NULL, 0, NULL, &fd);
}

static void *model_mmap(int64_t id, void *addr, size_t len, int prot, int flags, off_t off)
{
	int fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	struct request rq = { OP_MMAP, 0, { id, 0, (int64_t)len, prot, flags, off } };
	void *where, *p;
	int memfd, err;

	/* the address first, so the model's VMA is where the program sees it */
	where = get_mmap()(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | fixed, -1, 0);
	if (where == MAP_FAILED)
		return MAP_FAILED;
	rq.a[1] = (int64_t)(uintptr_t)where;
	if (call(&rq, NULL, 0, NULL, 0, NULL, &memfd) < 0) {
		err = errno;
		get_munmap()(where, len);
		errno = err;
		return MAP_FAILED;
	}
	flags = (flags & ~MAP_FIXED_NOREPLACE) | MAP_FIXED;
	p = get_mmap()(where, len, prot, flags, memfd, rq.a[0]);
	err = errno;
	get_close()(memfd);
	if (p == MAP_FAILED) {
		model_munmap((uintptr_t)where);
		get_munmap()(where, len);
		errno = err;
		return MAP_FAILED;
	}
	remember_map((uintptr_t)p, len);
	return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int64_t id = flags & MAP_ANONYMOUS ? -1 : received_id(fd);

	if (id < 0)
		return get_mmap()(addr, len, prot, flags, fd, off);
	return model_mmap(id, addr, len, prot, flags, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

/*
 * The model's unmap comes first: once the real munmap frees the address,
 * another thread's mmap may get it, and the model must not hold it then.
 */
int munmap(void *addr, size_t len)
{
	if (forget_map((uintptr_t)addr, len))
		model_munmap((uintptr_t)addr);
	return get_munmap()(addr, len);
}

/* the last reference may be gone: the server releases the file before it answers */
static void sync_close(void)
{
	struct request rq = { OP_CLOSE, 0, { 0 } };
	int fd;

	call(&rq, NULL, 0, NULL, 0, NULL, &fd);
}

int close(int fd)
{
	int model = model_id(fd) >= 0;
	int ret, err;

	if (!model)
		return get_close()(fd);
	forget(fd);
	ret = get_close()(fd);
	err = errno;
	sync_close();
	errno = err;
	return ret;
}

static int copied(int oldfd, int newfd)
{
	int64_t id;

	if (newfd < 0)
		return newfd;
	id = model_id(oldfd);
	if (id >= 0)
		install(newfd, id);
	return newfd;
}

int dup(int fd)
{
	return copied(fd, get_dup()(fd));
}

int dup2(int oldfd, int newfd)
{
	int was_model = oldfd != newfd && model_id(newfd) >= 0;
	int ret;

	if (oldfd != newfd)
		forget(newfd);
	ret = copied(oldfd, get_dup2()(oldfd, newfd));
	if (was_model)
		sync_close();
	return ret;
}

int dup3(int oldfd, int newfd, int flags)
{
	int was_model = oldfd != newfd && model_id(newfd) >= 0;
	int ret;

	if (oldfd != newfd)
		forget(newfd);
	ret = copied(oldfd, get_dup3()(oldfd, newfd, flags));
	if (was_model)
		sync_close();
	return ret;
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;
	int ret;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	ret = get_fcntl()(fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return copied(fd, ret);
	return ret;
}

int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

ssize_t read(int fd, void *buf, size_t n)
{
	struct request rq = { OP_READ, 0, { 0 } };
	int64_t id = model_id(fd);
	size_t got = 0;
	int64_t ret;
	int none;

	if (id < 0)
		return get_read()(fd, buf, n);
	rq.a[0] = id;
	rq.a[1] = n < DATA_MAX ? n : DATA_MAX;
	ret = call(&rq, NULL, 0, buf, rq.a[1], &got, &none);
	return ret < 0 ? -1 : (ssize_t)got;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	struct request rq = { OP_WRITE, 0, { 0 } };
	int64_t id = model_id(fd);
	int none;

	if (id < 0)
		return get_write()(fd, buf, n);
	rq.a[0] = id;
	n = n < DATA_MAX ? n : DATA_MAX;
	rq.a[1] = n;
	return call(&rq, buf, n, NULL, 0, NULL, &none);
}

int fallocate(int fd, int mode, off_t offset, off_t len)
{
	struct request rq = { OP_FALLOCATE, 0, { 0, mode, offset, len } };
	int64_t id = model_id(fd);
	int none;

	if (id < 0)
		return ((int (*)(int, int, off_t, off_t))dlsym(RTLD_NEXT, "fallocate"))(fd, mode,
										   offset, len);
	rq.a[0] = id;
	return call(&rq, NULL, 0, NULL, 0, NULL, &none);
}

int fallocate64(int fd, int mode, off_t offset, off_t len) __attribute__((alias("fallocate")));

/*
 * Model files are ready or not at once (none waits): they are asked first,
 * and the real poll of the others waits only if no model file is ready.
 */
int poll(struct pollfd *pfds, nfds_t n, int timeout)
{
	int ready = 0, any = 0, ret;
	int64_t ids[n ? n : 1];

	for (nfds_t i = 0; i < n; i++) {
		struct request rq = { OP_POLL, 0, { 0 } };
		int none;

		ids[i] = model_id(pfds[i].fd);
		if (ids[i] < 0)
			continue;
		any = 1;
		rq.a[0] = ids[i];
		rq.a[1] = pfds[i].events;
		ret = call(&rq, NULL, 0, NULL, 0, NULL, &none);
		if (ret < 0)
			return -1;
		pfds[i].revents = ret;
		ready += ret != 0;
	}
	if (!any)
		return get_poll()(pfds, n, timeout);
	struct pollfd others[n];
	nfds_t k = 0;

	for (nfds_t i = 0; i < n; i++)
		if (ids[i] < 0)
			others[k++] = pfds[i];
	ret = get_poll()(others, k, ready ? 0 : timeout);
	if (ret < 0)
		return -1;
	k = 0;
	for (nfds_t i = 0; i < n; i++)
		if (ids[i] < 0)
			pfds[i].revents = others[k++].revents;
	return ready + ret;
}

__attribute__((constructor)) static void native_init(void)
{
	const char *ctl = getenv("GUNYAH_SIM_CTL");
	const char *dev = getenv("GUNYAH_SIM_DEVICE");
	const char *server = getenv("GUNYAH_SIM_SERVER");

	if (!ctl || !dev || !server)
		return;
	ctl_fd = atoi(ctl);
	device = strdup(dev);
	/* the server reads and writes our memory (process_vm_readv/writev) */
	prctl(PR_SET_PTRACER, (unsigned long)atol(server), 0, 0, 0);
	get_fcntl()(ctl_fd, F_SETFD, FD_CLOEXEC);
	unsetenv("GUNYAH_SIM_CTL"); /* a program it execs is no client */
	pthread_key_create(&chan_key, drop_chan);
	pthread_atfork(NULL, NULL, atfork_child);
}
