// SPDX-License-Identifier: Apache-2.0
/*
 * The /dev/kray test that runs inside the qemu guest (tests/kmod/run-qemu.sh boots it),
 * statically linked, as root, right after /init has loaded kray.ko with max_bytes=8M.
 *
 * Each test prints "KRAY-TEST ok <name>" or "KRAY-TEST FAIL <name>: <what>" at the start
 * of a line on the serial console, and the run ends with "KRAY-TEST DONE pass=N fail=M":
 * the host script decides from these (qemu's exit code says nothing about the guest).
 * Tests run in order and share one daemon session (node 7); the last one unloads the
 * module with objects still published.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uapi/kray_kmod.h"
#include "../fixtures/pattern.h"

#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define NODE 7
#define OTHER_UID 1000

static int npass, nfail, cur_failed;
static const char *cur;
static int dmn = -1; /* the daemon session of NODE, for every test */

static void failf(int line, const char *fmt, ...)
{
	va_list ap;

	if (!cur_failed)
		printf("KRAY-TEST FAIL %s: line %d: ", cur, line);
	else
		printf("KRAY-TEST      %s: line %d: ", cur, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	cur_failed = 1;
}

#define CHECK(c)                                                                         \
	do {                                                                             \
		if (!(c))                                                                \
			failf(__LINE__, "%s (errno %d %s)", #c, errno, strerror(errno)); \
	} while (0)
/* An ioctl that must fail with errno e. */
#define FAILS(e, call)                                                                            \
	do {                                                                                      \
		errno = 0;                                                                        \
		long r_ = (call);                                                                 \
		if (r_ != -1 || errno != (e))                                                     \
			failf(__LINE__, "%s: got %ld errno %d (%s), wanted errno %d (%s)", #call, \
			      r_, errno, strerror(errno), (e), strerror(e));                      \
	} while (0)

static void begin(const char *name)
{
	cur = name;
	cur_failed = 0;
}

static void end(void)
{
	if (cur_failed) {
		nfail++;
	} else {
		npass++;
		printf("KRAY-TEST ok %s\n", cur);
	}
	fflush(stdout);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dev_open(void)
{
	return open(KRAY_KMOD_DEVICE, O_RDWR | O_CLOEXEC);
}

static struct kray_oid oid(uint32_t node, uint32_t seq)
{
	return (struct kray_oid){ node, 1, seq, KRAY_OID_PUT };
}

/* A memfd of size bytes holding pattern seed, with the given seals (-1: all four). */
static int make_memfd(size_t size, uint64_t seed, int seals)
{
	int fd = memfd_create("kray-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p;

	if (fd < 0 || ftruncate(fd, (off_t)size))
		return -1;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	pattern_fill(p, 0, size, seed);
	munmap(p, size);
	if (fcntl(fd, F_ADD_SEALS, seals < 0 ? ALL_SEALS : seals))
		return -1;
	return fd;
}

static int publish(int sess, struct kray_oid id, int fd, uint32_t scope, uint32_t scope_id)
{
	struct kray_kmod_publish a = {
		.size = sizeof(a), .oid = id, .fd = fd, .scope = scope, .scope_id = scope_id
	};

	return ioctl(sess, KRAY_IOC_PUBLISH, &a);
}

/* Publishes a fresh sealed object of size bytes (pattern seed) and closes the memfd. */
static int publish_new(int sess, struct kray_oid id, size_t size, uint64_t seed, uint32_t scope,
		       uint32_t scope_id)
{
	int fd = make_memfd(size, seed, -1), r;

	if (fd < 0)
		return -1;
	r = publish(sess, id, fd, scope, scope_id);
	close(fd);
	return r;
}

static int withdraw(int sess, struct kray_oid id)
{
	struct kray_kmod_withdraw a = { .size = sizeof(a), .oid = id };

	return ioctl(sess, KRAY_IOC_WITHDRAW, &a);
}

/* The fd the module hands out, or -1 with errno; *ret_size its size. */
static int get(int sess, struct kray_oid id, uint64_t *ret_size)
{
	struct kray_kmod_get a = { .size = sizeof(a), .oid = id };

	if (ioctl(sess, KRAY_IOC_GET, &a))
		return -1;
	if (ret_size)
		*ret_size = a.ret_size;
	return a.ret_fd;
}

/* Whether fd maps read-only to size bytes of pattern seed. */
static int bytes_ok(int fd, size_t size, uint64_t seed)
{
	uint8_t *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	int ok = 1;

	if (p == MAP_FAILED)
		return 0;
	for (size_t i = 0; i < size && ok; i++)
		ok = p[i] == pattern_byte(seed, i);
	munmap(p, size);
	return ok;
}

static long wait_ids(int sess, const struct kray_oid *ids, uint32_t n, uint32_t k,
		     int64_t timeout_ms, uint8_t *ready)
{
	struct kray_kmod_wait a = { .size = sizeof(a),
				    .n = n,
				    .k = k,
				    .timeout_ms = timeout_ms,
				    .ids = (uintptr_t)ids,
				    .ready = (uintptr_t)ready };

	return ioctl(sess, KRAY_IOC_WAIT, &a);
}

static int list(int sess, uint32_t node, struct kray_kmod_entry *e, uint32_t max)
{
	struct kray_kmod_list a = {
		.size = sizeof(a), .node = node, .max = max, .entries = (uintptr_t)e
	};

	return ioctl(sess, KRAY_IOC_LIST, &a) ? -1 : (int)a.ret_total;
}

static void version(struct kray_kmod_version *v)
{
	memset(v, 0, sizeof(*v));
	CHECK(ioctl(dmn, KRAY_IOC_VERSION, v) == 0);
}

static int count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Runs fn in a child (as uid if uid >= 0) and returns its exit status (0: passed). */
static int in_child(int uid, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (uid >= 0 && setresuid(uid, uid, uid))
			_exit(90);
		_exit(fn(arg));
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* ---- the tests ------------------------------------------------------------------- */

static void t_version(void)
{
	struct kray_kmod_version v;

	begin("version");
	version(&v);
	CHECK(v.size == sizeof(v));
	CHECK(v.abi == KRAY_KMOD_ABI);
	CHECK(v.max_bytes == 8u << 20); /* insmod kray.ko max_bytes=8388608 */
	CHECK(v.max_objects == 65536);
	CHECK(v.objects == 0 && v.used_bytes == 0);
	end();
}

static void t_attach(void)
{
	struct kray_kmod_attach a = { .size = sizeof(a), .node = NODE };
	int other = dev_open();

	begin("attach");
	CHECK(ioctl(dmn, KRAY_IOC_ATTACH, &a) == 0);
	FAILS(EBUSY, ioctl(dmn, KRAY_IOC_ATTACH, &a)); /* attached already */
	FAILS(EBUSY, ioctl(other, KRAY_IOC_ATTACH, &a)); /* NODE has a daemon */
	a.node = 0;
	FAILS(EINVAL, ioctl(other, KRAY_IOC_ATTACH, &a));
	close(other);
	end();
}

static void t_publish_get_map(void)
{
	const size_t size = 3 * 4096 + 123;
	struct kray_kmod_version v;
	struct kray_kmod_publish a = {
		.size = sizeof(a), .oid = oid(NODE, 1), .scope = KRAY_KMOD_SCOPE_UID, .scope_id = 0
	};
	int fd = make_memfd(size, 11, -1), plain = dev_open(), got;
	uint64_t got_size = 0;
	void *p;

	begin("publish-get-map");
	a.fd = fd;
	CHECK(fd >= 0);
	CHECK(ioctl(dmn, KRAY_IOC_PUBLISH, &a) == 0);
	CHECK(a.ret_size == size);
	FAILS(EEXIST, ioctl(dmn, KRAY_IOC_PUBLISH, &a));
	close(fd); /* the table holds its own reference */
	version(&v);
	CHECK(v.objects == 1 && v.used_bytes == size);

	got = get(plain, oid(NODE, 1), &got_size); /* one system call */
	CHECK(got >= 0);
	CHECK(got_size == size);
	CHECK(bytes_ok(got, size, 11));
	CHECK((fcntl(got, F_GETFL) & O_ACCMODE) == O_RDONLY);
	CHECK(fcntl(got, F_GETFD) & FD_CLOEXEC);
	CHECK((fcntl(got, F_GET_SEALS) & ALL_SEALS) == ALL_SEALS);
	/* Read-only: no writable mapping, no write. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, got, 0);
	CHECK(p == MAP_FAILED && errno == EACCES);
	FAILS(EBADF, write(got, "x", 1));
	close(got);
	FAILS(ENOENT, get(plain, oid(NODE, 999), NULL));
	close(plain);
	end();
}

static int withdraw_if_unused(int sess, struct kray_oid id)
{
	struct kray_kmod_withdraw a = { .size = sizeof(a),
					.flags = KRAY_KMOD_WITHDRAW_IF_UNUSED,
					.oid = id };

	return ioctl(sess, KRAY_IOC_WITHDRAW, &a);
}

/* A withdraw for spilling sees who holds what a get handed out. */
static void t_in_use(void)
{
	int own = make_memfd(8192, 5, -1), plain = dev_open(), got;
	void *mine, *theirs;

	begin("withdraw-if-unused");
	CHECK(publish(dmn, oid(NODE, 5), own, KRAY_KMOD_SCOPE_UID, 0) == 0);
	/* The daemon's own fd and mapping do not count. */
	mine = mmap(NULL, 8192, PROT_READ, MAP_SHARED, own, 0);
	CHECK(mine != MAP_FAILED);
	got = get(plain, oid(NODE, 5), NULL);
	CHECK(got >= 0);
	FAILS(EBUSY, withdraw_if_unused(dmn, oid(NODE, 5)));
	theirs = mmap(NULL, 8192, PROT_READ, MAP_SHARED, got, 0);
	CHECK(theirs != MAP_FAILED);
	close(got);
	FAILS(EBUSY, withdraw_if_unused(dmn, oid(NODE, 5))); /* the mapping holds it */
	munmap(theirs, 8192);
	CHECK(withdraw_if_unused(dmn, oid(NODE, 5)) == 0);
	FAILS(ENOENT, get(plain, oid(NODE, 5), NULL));
	munmap(mine, 8192);
	close(own);
	close(plain);
	end();
}

static void t_unsealed(void)
{
	int plain = dev_open(), pipes[2];
	int partial = make_memfd(4096, 1, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	int none = make_memfd(4096, 1, 0);
	int nosealing = memfd_create("x", MFD_CLOEXEC);

	begin("refuse-unsealed");
	CHECK(partial >= 0 && none >= 0 && nosealing >= 0 && !pipe(pipes));
	FAILS(EBADFD, publish(dmn, oid(NODE, 20), partial, KRAY_KMOD_SCOPE_UID, 0));
	FAILS(EBADFD, publish(dmn, oid(NODE, 20), none, KRAY_KMOD_SCOPE_UID, 0));
	/* Without MFD_ALLOW_SEALING a memfd is born with F_SEAL_SEAL only. */
	FAILS(EBADFD, publish(dmn, oid(NODE, 20), nosealing, KRAY_KMOD_SCOPE_UID, 0));
	FAILS(EINVAL, publish(dmn, oid(NODE, 20), pipes[0], KRAY_KMOD_SCOPE_UID, 0));
	FAILS(EBADF, publish(dmn, oid(NODE, 20), -1, KRAY_KMOD_SCOPE_UID, 0));
	FAILS(EBADF, publish(dmn, oid(NODE, 20), 999, KRAY_KMOD_SCOPE_UID, 0));
	/* Only a daemon publishes. */
	int fd = make_memfd(4096, 1, -1);

	FAILS(EPERM, publish(plain, oid(NODE, 20), fd, KRAY_KMOD_SCOPE_UID, 0));
	FAILS(ENOENT, get(plain, oid(NODE, 20), NULL));
	close(fd);
	close(partial);
	close(none);
	close(nosealing);
	close(pipes[0]);
	close(pipes[1]);
	close(plain);
	end();
}

/* In a child running as OTHER_UID: object 1 (uid 0) is refused, object 2 (its uid) not. */
static int scope_child(void *arg)
{
	int s = dev_open(), fd;

	(void)arg;
	if (s < 0)
		return 1;
	errno = 0;
	if (get(s, oid(NODE, 1), NULL) != -1 || errno != EACCES)
		return 2;
	fd = get(s, oid(NODE, 2), NULL);
	if (fd < 0 || !bytes_ok(fd, 5000, 22))
		return 3;
	/* Waits see only what the caller may get. */
	struct kray_oid ids[2] = { oid(NODE, 1), oid(NODE, 2) };
	uint8_t ready[2];

	if (wait_ids(s, ids, 2, 1, 0, ready) != 1 || ready[0] || !ready[1])
		return 4;
	return 0;
}

static void t_scope(void)
{
	struct kray_kmod_session js = { .size = sizeof(js), .job = 5 };
	int plain = dev_open(), j5, j6;

	begin("scope");
	CHECK(publish_new(dmn, oid(NODE, 2), 5000, 22, KRAY_KMOD_SCOPE_UID, OTHER_UID) == 0);
	CHECK(in_child(OTHER_UID, scope_child, NULL) == 0);
	/* Root is not above the scope: uid scope means that uid. */
	FAILS(EACCES, get(plain, oid(NODE, 2), NULL));
	/* The daemon of the node may always get its own objects (adoption needs that). */
	int fd = get(dmn, oid(NODE, 2), NULL);

	CHECK(fd >= 0 && bytes_ok(fd, 5000, 22));
	close(fd);

	/* Job scope: only a job session of this node for that job. */
	CHECK(publish_new(dmn, oid(NODE, 3), 6000, 33, KRAY_KMOD_SCOPE_JOB, 5) == 0);
	CHECK(ioctl(dmn, KRAY_IOC_SESSION, &js) == 0);
	j5 = js.ret_fd;
	js.job = 6;
	CHECK(ioctl(dmn, KRAY_IOC_SESSION, &js) == 0);
	j6 = js.ret_fd;
	CHECK(j5 >= 0 && j6 >= 0 && (fcntl(j5, F_GETFD) & FD_CLOEXEC));
	FAILS(EACCES, get(plain, oid(NODE, 3), NULL));
	FAILS(EACCES, get(j6, oid(NODE, 3), NULL));
	fd = get(j5, oid(NODE, 3), NULL);
	CHECK(fd >= 0 && bytes_ok(fd, 6000, 33));
	close(fd);
	/* A job session is no daemon, and only a daemon makes sessions. */
	FAILS(EPERM, publish_new(j5, oid(NODE, 4), 100, 1, KRAY_KMOD_SCOPE_JOB, 5));
	FAILS(EPERM, ioctl(plain, KRAY_IOC_SESSION, &js));
	FAILS(EPERM, ioctl(j5, KRAY_IOC_SESSION, &js));
	FAILS(EPERM, withdraw(plain, oid(NODE, 3)));
	close(j5);
	close(j6);
	close(plain);
	end();
}

/* The waiter of t_wait: 2 of 3 ids, published by the parent while it sleeps. */
static int wait_child(void *arg)
{
	const struct kray_oid *ids = arg;
	int s = dev_open();
	uint8_t ready[3] = { 9, 9, 9 };
	int64_t t0 = now_ms();
	long r = wait_ids(s, ids, 3, 2, 20000, ready);
	int64_t took = now_ms() - t0;

	printf("KRAY-INFO wait 2 of 3: returned %ld after %lld ms, ready %d%d%d\n", r,
	       (long long)took, ready[0], ready[1], ready[2]);
	fflush(stdout);
	if (r != 2)
		return 1;
	if (ready[0] != 1 || ready[1] != 0 || ready[2] != 1)
		return 2;
	return took >= 150 ? 0 : 3; /* it did wait for the publishes */
}

static void t_wait(void)
{
	struct kray_oid ids[3] = { oid(NODE, 30), oid(NODE, 31), oid(NODE, 32) };
	uint8_t ready[3];
	pid_t pid;
	int st;

	begin("wait-2-of-3");
	pid = fork();
	if (pid == 0)
		_exit(wait_child(ids));
	CHECK(pid > 0);
	usleep(200 * 1000);
	CHECK(publish_new(dmn, ids[0], 100, 30, KRAY_KMOD_SCOPE_UID, 0) == 0);
	usleep(100 * 1000);
	CHECK(publish_new(dmn, ids[2], 100, 32, KRAY_KMOD_SCOPE_UID, 0) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Already there: a zero timeout answers at once. */
	CHECK(wait_ids(dmn, ids, 3, 2, 0, ready) == 2);
	end();
}

static void t_timeout(void)
{
	struct kray_oid ids[2] = { oid(NODE, 30), oid(NODE, 31) };
	uint8_t ready[2] = { 9, 9 };
	int64_t t0 = now_ms(), took;

	begin("wait-timeout");
	FAILS(ETIMEDOUT, wait_ids(dmn, ids, 2, 2, 300, ready));
	took = now_ms() - t0;
	printf("KRAY-INFO wait timeout 300 ms: took %lld ms\n", (long long)took);
	CHECK(took >= 250 && took < 5000);
	CHECK(ready[0] == 1 && ready[1] == 0); /* filled in on timeout too */
	FAILS(ETIMEDOUT, wait_ids(dmn, ids + 1, 1, 1, 0, ready));
	end();
}

/* Bad arguments to every command: sizes, flags, padding, counts, pointers, ids. */
static void t_bad_args(void)
{
	void *bad = (void *)16, *unmapped;
	struct kray_kmod_version vv;
	int plain = dev_open(), fds0 = count_fds();
	struct kray_oid ids[2] = { oid(NODE, 1), oid(NODE, 2) };
	uint8_t ready[2];

	begin("bad-args");
	unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	version(&vv);

	/* Unknown commands, and known numbers with the wrong size or direction. */
	FAILS(ENOTTY, ioctl(dmn, _IO(KRAY_KMOD_IOC, 0x7f), 0));
	FAILS(ENOTTY, ioctl(dmn, 0, 0));
	FAILS(ENOTTY, ioctl(dmn, _IOWR(KRAY_KMOD_IOC, 0x04, char[39]), ids));
	FAILS(ENOTTY, ioctl(dmn, _IOR(KRAY_KMOD_IOC, 0x04, struct kray_kmod_get), ids));
	FAILS(ENOTTY, ioctl(dmn, _IOWR('T', 0x02, struct kray_kmod_publish), ids));

	/* Every command: NULL, a low address, an unmapped page. */
	unsigned long cmds[] = { KRAY_IOC_VERSION,  KRAY_IOC_ATTACH, KRAY_IOC_PUBLISH,
				 KRAY_IOC_WITHDRAW, KRAY_IOC_GET,    KRAY_IOC_WAIT,
				 KRAY_IOC_LIST,	    KRAY_IOC_ADOPT,  KRAY_IOC_SESSION };
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		FAILS(EFAULT, ioctl(dmn, cmds[i], NULL));
		FAILS(EFAULT, ioctl(dmn, cmds[i], bad));
		FAILS(EFAULT, ioctl(dmn, cmds[i], unmapped));
	}

	/* size fields: 0, one less, huge; flags and padding not 0. */
	{
		struct kray_kmod_attach a = { .size = 0, .node = 99 };

		FAILS(EINVAL, ioctl(plain, KRAY_IOC_ATTACH, &a));
		a.size = sizeof(a) - 1;
		FAILS(EINVAL, ioctl(plain, KRAY_IOC_ATTACH, &a));
		a.size = 0xffffffff;
		FAILS(EINVAL, ioctl(plain, KRAY_IOC_ATTACH, &a));
		a.size = sizeof(a);
		a.flags = 1;
		FAILS(EINVAL, ioctl(plain, KRAY_IOC_ATTACH, &a));
		a.flags = 0;
		a.pad = 1;
		FAILS(EINVAL, ioctl(plain, KRAY_IOC_ATTACH, &a));
	}
	{
		int fd = make_memfd(100, 1, -1);
		struct kray_kmod_publish a = { .size = sizeof(a) + 8,
					       .oid = oid(NODE, 40),
					       .fd = fd,
					       .scope = KRAY_KMOD_SCOPE_UID };

		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_PUBLISH, &a));
		a.size = sizeof(a);
		a.flags = 0x80000000u;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_PUBLISH, &a));
		a.flags = 0;
		a.pad = 7;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_PUBLISH, &a));
		a.pad = 0;
		a.scope = 0;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_PUBLISH, &a));
		a.scope = 3;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_PUBLISH, &a));
		a.scope = KRAY_KMOD_SCOPE_UID;
		a.scope_id = 0xffffffffu; /* (uid_t)-1 is no uid */
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_PUBLISH, &a));
		close(fd);
	}
	{
		struct kray_kmod_withdraw a = { .size = sizeof(a),
						.flags = 2,
						.oid = oid(NODE, 1) };

		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_WITHDRAW, &a));
		a.flags = 0;
		a.size = 16;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_WITHDRAW, &a));
		FAILS(ENOENT, withdraw(dmn, oid(NODE, 12345)));
		FAILS(ENOENT, withdraw(dmn, (struct kray_oid){ 0xffffffff, 0xffffffff, 0xffffffff,
							       0xffffffff }));
	}
	{
		struct kray_kmod_get a = { .size = sizeof(a), .flags = 1, .oid = oid(NODE, 1) };

		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_GET, &a));
		a.flags = 0;
		a.pad = 1;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_GET, &a));
		a.pad = 0;
		a.size = 0;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_GET, &a));
	}
	{
		/* Counts: zero, k > n, past the limit, huge; pointers: NULL, bad, short. */
		FAILS(EINVAL, wait_ids(dmn, ids, 0, 0, 0, ready));
		FAILS(EINVAL, wait_ids(dmn, ids, 2, 0, 0, ready));
		FAILS(EINVAL, wait_ids(dmn, ids, 2, 3, 0, ready));
		FAILS(E2BIG, wait_ids(dmn, ids, KRAY_KMOD_WAIT_MAX + 1, 1, 0, ready));
		FAILS(E2BIG, wait_ids(dmn, ids, 0xffffffffu, 1, 0, ready));
		FAILS(E2BIG, wait_ids(dmn, ids, 0xffffffffu, 0xffffffffu, 0, ready));
		FAILS(EINVAL, wait_ids(dmn, ids, 2, 1, -2, ready));
		FAILS(EFAULT, wait_ids(dmn, NULL, 2, 1, 0, ready));
		FAILS(EFAULT, wait_ids(dmn, bad, 2, 1, 0, ready));
		FAILS(EFAULT, wait_ids(dmn, ids, 2, 1, 0, NULL));
		FAILS(EFAULT, wait_ids(dmn, ids, 2, 1, 0, unmapped));
		/* ids run into an unmapped page */
		FAILS(EFAULT,
		      wait_ids(dmn, (struct kray_oid *)((char *)unmapped - 16), 2, 1, 0, ready));
		struct kray_kmod_wait w = { .size = sizeof(w),
					    .flags = 1,
					    .n = 1,
					    .k = 1,
					    .ids = (uintptr_t)ids,
					    .ready = (uintptr_t)ready };
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_WAIT, &w));
	}
	{
		struct kray_kmod_entry e[2];
		struct kray_kmod_list a = { .size = sizeof(a),
					    .max = KRAY_KMOD_LIST_MAX + 1,
					    .entries = (uintptr_t)e };

		FAILS(E2BIG, ioctl(dmn, KRAY_IOC_LIST, &a));
		a.max = 0xffffffffu;
		FAILS(E2BIG, ioctl(dmn, KRAY_IOC_LIST, &a));
		a.max = 2;
		a.flags = 4;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_LIST, &a));
		a.flags = 0;
		a.pad = 4;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_LIST, &a));
		a.pad = 0;
		a.entries = 0;
		FAILS(EFAULT, ioctl(dmn, KRAY_IOC_LIST, &a));
		a.entries = (uintptr_t)unmapped;
		FAILS(EFAULT, ioctl(dmn, KRAY_IOC_LIST, &a));
		/* max 0 counts without writing. */
		a.max = 0;
		a.entries = 0;
		CHECK(ioctl(dmn, KRAY_IOC_LIST, &a) == 0 && a.ret_total == vv.objects);
	}
	{
		struct kray_kmod_adopt a = { .size = sizeof(a), .from_node = 0 };

		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_ADOPT, &a));
		a.from_node = NODE; /* its own node has a daemon: itself */
		FAILS(EBUSY, ioctl(dmn, KRAY_IOC_ADOPT, &a));
		a.from_node = 555;
		FAILS(EPERM, ioctl(plain, KRAY_IOC_ADOPT, &a));
		a.flags = 1;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_ADOPT, &a));
	}
	{
		struct kray_kmod_session a = { .size = sizeof(a) - 4, .job = 1 };

		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_SESSION, &a));
		a.size = sizeof(a);
		a.flags = 1;
		FAILS(EINVAL, ioctl(dmn, KRAY_IOC_SESSION, &a));
	}
	/* A get or session whose result cannot be written back leaves no fd behind: the
	 * struct is readable but not writable (a read-only page). */
	{
		struct kray_kmod_get *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
						MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct kray_kmod_session *rs = (void *)((char *)ro + 512);

		*ro = (struct kray_kmod_get){ .size = sizeof(*ro), .oid = oid(NODE, 1) };
		*rs = (struct kray_kmod_session){ .size = sizeof(*rs), .job = 1 };
		struct kray_kmod_publish *rp = (void *)((char *)ro + 1024);
		struct kray_kmod_adopt *ra = (void *)((char *)ro + 2048);
		int fd = make_memfd(100, 1, -1);

		*rp = (struct kray_kmod_publish){ .size = sizeof(*rp),
						  .oid = oid(NODE, 41),
						  .fd = fd,
						  .scope = KRAY_KMOD_SCOPE_UID };
		*ra = (struct kray_kmod_adopt){ .size = sizeof(*ra), .from_node = 555 };
		mprotect(ro, 4096, PROT_READ);
		FAILS(EFAULT, ioctl(dmn, KRAY_IOC_GET, ro));
		FAILS(EFAULT, ioctl(dmn, KRAY_IOC_SESSION, rs));
		FAILS(EFAULT, ioctl(dmn, KRAY_IOC_PUBLISH, rp)); /* and nothing published: */
		FAILS(ENOENT, get(dmn, oid(NODE, 41), NULL));
		FAILS(EFAULT, ioctl(dmn, KRAY_IOC_ADOPT, ra));
		munmap(ro, 4096);
		close(fd);
	}
	/* Nothing changed, nothing leaked. */
	struct kray_kmod_version v2;

	version(&v2);
	CHECK(v2.objects == vv.objects && v2.used_bytes == vv.used_bytes);
	CHECK(count_fds() == fds0);
	munmap(unmapped, 4096);
	close(plain);
	end();
}

static long shmem_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Shmem: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* max_bytes bounds the table; an object's memory goes with its last holder. */
static void t_memory(void)
{
	const size_t big = 5u << 20, mid = 4u << 20;
	struct kray_kmod_version v;
	long base, held, after;
	int fd, got;
	void *p;

	begin("memory-bound-and-release");
	fd = make_memfd(mid, 51, -1); /* held all along: counted in base */
	base = shmem_kb();
	CHECK(publish_new(dmn, oid(NODE, 50), big, 50, KRAY_KMOD_SCOPE_UID, 0) == 0);
	/* 5 MiB + what is there + 4 MiB > 8 MiB */
	FAILS(ENOSPC, publish(dmn, oid(NODE, 51), fd, KRAY_KMOD_SCOPE_UID, 0));
	held = shmem_kb();
	printf("KRAY-INFO Shmem %ld kB before, %ld kB with a 5 MiB object published\n", base, held);
	CHECK(held - base >= 5 * 1024 - 64);

	/* The gotten fd and its mapping outlive the table entry. */
	got = get(dmn, oid(NODE, 50), NULL);
	CHECK(got >= 0);
	p = mmap(NULL, big, PROT_READ, MAP_SHARED, got, 0);
	CHECK(p != MAP_FAILED);
	close(got);
	CHECK(withdraw(dmn, oid(NODE, 50)) == 0);
	FAILS(ENOENT, withdraw(dmn, oid(NODE, 50)));
	CHECK(((uint8_t *)p)[big - 1] == pattern_byte(50, big - 1));
	CHECK(shmem_kb() - base >= 5 * 1024 - 64); /* the mapping still holds it */
	munmap(p, big);
	after = shmem_kb();
	for (int i = 0; i < 50 && after - base > 1024; i++) {
		usleep(20 * 1000);
		after = shmem_kb();
	}
	printf("KRAY-INFO Shmem %ld kB after the last holder went\n", after);
	CHECK(after - base < 1024);

	/* Room again: the 4 MiB one fits now. */
	CHECK(publish(dmn, oid(NODE, 51), fd, KRAY_KMOD_SCOPE_UID, 0) == 0);
	close(fd);
	CHECK(withdraw(dmn, oid(NODE, 51)) == 0);

	/* max_objects, changed at run time through sysfs. */
	FILE *f = fopen("/sys/module/kray/parameters/max_objects", "we");

	version(&v);
	CHECK(f && fprintf(f, "%u\n", v.objects) > 0 && !fclose(f));
	FAILS(ENOSPC, publish_new(dmn, oid(NODE, 52), 100, 52, KRAY_KMOD_SCOPE_UID, 0));
	f = fopen("/sys/module/kray/parameters/max_objects", "we");
	CHECK(f && fprintf(f, "65536\n") > 0 && !fclose(f));
	CHECK(publish_new(dmn, oid(NODE, 52), 100, 52, KRAY_KMOD_SCOPE_UID, 0) == 0);
	end();
}

/* A reader racing the daemon: gets, maps and checks, and waits, for ids that come and go.
 * Any answer but the object's bytes, ENOENT or a timeout is a failure. */
static int stress_reader(void *arg)
{
	int s = dev_open(), *seconds = arg;
	int64_t end = now_ms() + *seconds * 1000;
	unsigned x = (unsigned)getpid(), gets = 0;

	if (s < 0)
		return 1;
	while (now_ms() < end) {
		uint32_t i = (x = x * 1103515245u + 12345u) >> 16 & 63;
		struct kray_oid ids[4];
		uint8_t ready[4];
		uint64_t size;
		int fd;

		for (uint32_t j = 0; j < 4; j++)
			ids[j] = oid(NODE, 1000 + (i + j) % 64);
		fd = get(s, ids[0], &size);

		if (fd >= 0) {
			if (size != 4096 + i || !bytes_ok(fd, (size_t)size, 1000 + i))
				return 2;
			close(fd);
			gets++;
		} else if (errno != ENOENT) {
			return 3;
		}
		long r = wait_ids(s, ids, 4, 1, 1, ready);

		if (r < 0 && errno != ETIMEDOUT)
			return 4;
	}
	printf("KRAY-INFO stress reader %d: %u gets\n", (int)getpid(), gets);
	return 0;
}

/* Publishes and withdraws while three readers get and wait: no crash, no kernel warning,
 * every answer right, and the table's counts exact at the end. */
static void t_stress(void)
{
	struct kray_kmod_version v0, v;
	uint8_t published[64] = { 0 };
	int seconds = 3, ops = 0;
	pid_t pids[3];

	begin("concurrent-stress");
	version(&v0);
	for (int p = 0; p < 3; p++) {
		pids[p] = fork();
		if (pids[p] == 0)
			_exit(stress_reader(&seconds));
	}
	for (int64_t end = now_ms() + seconds * 1000; now_ms() < end; ops++) {
		uint32_t i = (uint32_t)(ops * 7 % 64);

		if (published[i])
			CHECK(withdraw(dmn, oid(NODE, 1000 + i)) == 0);
		else
			CHECK(publish_new(dmn, oid(NODE, 1000 + i), 4096 + i, 1000 + i,
					  KRAY_KMOD_SCOPE_UID, 0) == 0);
		published[i] ^= 1;
	}
	for (int p = 0; p < 3; p++) {
		int st;

		CHECK(waitpid(pids[p], &st, 0) == pids[p] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	version(&v);
	int n = 0;

	for (int i = 0; i < 64; i++)
		n += published[i];
	printf("KRAY-INFO stress: %d publishes and withdraws, %d left published\n", ops, n);
	CHECK(v.objects == v0.objects + (uint32_t)n);
	for (uint32_t i = 0; i < 64; i++)
		if (published[i])
			CHECK(withdraw(dmn, oid(NODE, 1000 + i)) == 0);
	version(&v);
	CHECK(v.objects == v0.objects && v.used_bytes == v0.used_bytes);
	end();
}

/* The "daemon" of node 42: publishes three objects, says so, and waits to be killed. */
static void daemon_child(int ready_fd)
{
	struct kray_kmod_attach a = { .size = sizeof(a), .node = 42 };
	int s = dev_open();

	if (s < 0 || ioctl(s, KRAY_IOC_ATTACH, &a))
		_exit(1);
	for (uint32_t i = 0; i < 3; i++)
		if (publish_new(s, oid(42, 60 + i), 10000 + i, 60 + i, KRAY_KMOD_SCOPE_UID, 0))
			_exit(2);
	if (write(ready_fd, "R", 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

static int foreign_attach_child(void *arg)
{
	struct kray_kmod_attach a = { .size = sizeof(a), .node = 42 };
	int s = dev_open();

	(void)arg;
	errno = 0;
	return ioctl(s, KRAY_IOC_ATTACH, &a) == -1 && errno == EPERM ? 0 : 1;
}

static void t_adopt(void)
{
	struct kray_kmod_entry e[8];
	struct kray_kmod_attach at = { .size = sizeof(at), .node = 42 };
	struct kray_kmod_adopt ad = { .size = sizeof(ad), .from_node = 42 };
	int p[2], d2 = dev_open(), other = dev_open(), n;
	char c;
	pid_t pid;

	begin("kill-daemon-and-adopt");
	CHECK(!pipe(p));
	pid = fork();
	if (pid == 0)
		daemon_child(p[1]);
	CHECK(read(p[0], &c, 1) == 1);
	/* While it lives, its node is its own. */
	FAILS(EBUSY, ioctl(other, KRAY_IOC_ATTACH, &at));
	FAILS(EBUSY, ioctl(dmn, KRAY_IOC_ADOPT, &ad));
	n = list(dmn, 42, e, 8);
	CHECK(n == 3);
	for (int i = 0; i < n && i < 8; i++)
		CHECK(e[i].node == 42 && !(e[i].flags & KRAY_KMOD_ENTRY_ORPHAN));

	kill(pid, SIGKILL);
	CHECK(waitpid(pid, NULL, 0) == pid);
	n = list(dmn, 42, e, 8);
	CHECK(n == 3);
	for (int i = 0; i < n && i < 8; i++)
		CHECK(e[i].flags & KRAY_KMOD_ENTRY_ORPHAN);
	/* Another uid cannot take the orphans over. */
	CHECK(in_child(OTHER_UID, foreign_attach_child, NULL) == 0);

	/* A new daemon (node 43) adopts them. */
	at.node = 43;
	CHECK(ioctl(d2, KRAY_IOC_ATTACH, &at) == 0);
	CHECK(ioctl(d2, KRAY_IOC_ADOPT, &ad) == 0);
	CHECK(ad.ret_count == 3);
	CHECK(list(d2, 42, e, 8) == 0);
	n = list(d2, 43, e, 8);
	CHECK(n == 3);
	for (uint32_t i = 0; i < 3; i++) {
		uint64_t size = 0;
		int fd = get(d2, oid(42, 60 + i), &size);

		CHECK(fd >= 0 && size == 10000 + i && bytes_ok(fd, size, 60 + i));
		close(fd);
	}
	/* Now they are node 43's: node 7's daemon may not withdraw them. */
	FAILS(EPERM, withdraw(dmn, oid(42, 60)));
	CHECK(withdraw(d2, oid(42, 60)) == 0);

	/* The same node again after a restart: attaching to it is adopting it. */
	close(d2); /* objects 61, 62 are orphans of node 43 now */
	d2 = dev_open();
	CHECK(ioctl(d2, KRAY_IOC_ATTACH, &at) == 0);
	n = list(d2, 43, e, 8);
	CHECK(n == 2);
	for (int i = 0; i < n && i < 8; i++)
		CHECK(!(e[i].flags & KRAY_KMOD_ENTRY_ORPHAN));
	int fd = get(d2, oid(42, 62), NULL);

	CHECK(fd >= 0 && bytes_ok(fd, 10002, 62));
	close(fd);
	close(d2); /* 61 and 62 stay published, orphaned, for the unload test */
	close(other);
	close(p[0]);
	close(p[1]);
	end();
}

/* Unloading with objects published (node 7's and node 43's orphans). */
static void t_unload(void)
{
	struct kray_kmod_version v;
	struct stat st;
	int got, kofd;
	uint8_t *p;

	begin("unload-with-objects");
	version(&v);
	printf("KRAY-INFO unloading with %u objects (%llu bytes) published\n", v.objects,
	       (unsigned long long)v.used_bytes);
	CHECK(v.objects >= 5);
	got = get(dmn, oid(NODE, 1), NULL);
	CHECK(got >= 0);
	p = mmap(NULL, 3 * 4096 + 123, PROT_READ, MAP_SHARED, got, 0);
	CHECK(p != MAP_FAILED);
	/* An open session holds the module. */
	FAILS(EWOULDBLOCK, syscall(SYS_delete_module, "kray", O_NONBLOCK));
	close(dmn);
	dmn = -1;
	CHECK(syscall(SYS_delete_module, "kray", O_NONBLOCK) == 0);
	CHECK(stat(KRAY_KMOD_DEVICE, &st) == -1 && errno == ENOENT);
	/* What a process got is still its own. */
	CHECK(p != MAP_FAILED && p[100] == pattern_byte(11, 100));
	CHECK(bytes_ok(got, 3 * 4096 + 123, 11));
	close(got);
	munmap(p, 3 * 4096 + 123);

	/* Loading it again starts from an empty table. */
	kofd = open("/kray.ko", O_RDONLY | O_CLOEXEC);
	CHECK(kofd >= 0 && syscall(SYS_finit_module, kofd, "", 0) == 0);
	close(kofd);
	dmn = dev_open();
	CHECK(dmn >= 0);
	memset(&v, 0xff, sizeof(v));
	CHECK(ioctl(dmn, KRAY_IOC_VERSION, &v) == 0 && v.objects == 0 && v.used_bytes == 0);
	close(dmn);
	CHECK(syscall(SYS_delete_module, "kray", O_NONBLOCK) == 0);
	end();
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	dmn = dev_open();
	if (dmn < 0) {
		printf("KRAY-TEST FAIL open: %s: %s\n", KRAY_KMOD_DEVICE, strerror(errno));
		printf("KRAY-TEST DONE pass=0 fail=1\n");
		return 1;
	}
	t_version();
	t_attach();
	t_publish_get_map();
	t_in_use();
	t_unsealed();
	t_scope();
	t_wait();
	t_timeout();
	t_bad_args();
	t_memory();
	t_stress();
	t_adopt();
	t_unload();
	printf("KRAY-TEST DONE pass=%d fail=%d\n", npass, nfail);
	return nfail ? 1 : 0;
}
