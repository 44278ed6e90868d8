// SPDX-License-Identifier: Apache-2.0
/*
 * The reader's half of lazy restore (krayd's store_lazy.c, docs/objects.md "Lazy restore").
 *
 * A client that has a userfaultfd names it in its GETs; krayd takes a copy of it and may then
 * answer a get of a spilled object with an empty memfd (KRAY_WV_LAZY) that it fills as the
 * reader touches it.  Here: the userfaultfd (one per handle, made with its connection and kept:
 * the copy krayd holds serves its faults), and a lazy memfd's mapping, registered in MISSING
 * mode before anything can touch it, then announced to krayd (KRAY_MSG_LAZY_MAP).  No thread:
 * the faults are krayd's to serve.  KRAY_LAZY=0 in the environment turns it off (eager
 * restores, as with lazy-restore = off in krayd).
 *
 * Where the kernel has shmem minor faults, the userfaultfd asks for them
 * (UFFD_FEATURE_MINOR_SHMEM) and every lazy mapping is registered in MISSING and MINOR mode:
 * krayd may then hand out the object's own memfd, whose pages it writes through its own
 * mapping, and a page in its page cache is seen by this process only once krayd has
 * resolved the fault with UFFDIO_CONTINUE (no second copy).  krayd reads which features
 * the userfaultfd has from its fdinfo.  KRAY_LAZY_MINOR=0 asks for MISSING mode only (krayd
 * then hands out a separate memfd filled with UFFDIO_COPY, the path before).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* This process's id without a system call per get (glibc does not cache getpid()):
 * read once, and again in the child of each fork(). */
static pid_t self_pid;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void self_forked(void)
{
	self_pid = getpid();
}

static void self_init(void)
{
	self_pid = getpid();
	pthread_atfork(NULL, NULL, self_forked);
}

static pid_t self(void)
{
	pthread_once(&self_once, self_init);
	return self_pid;
}

#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif
#ifndef UFFDIO_REGISTER_MODE_MINOR
#define UFFDIO_REGISTER_MODE_MINOR ((__u64)1 << 2)
#endif

/* The API handshake of fresh userfaultfd fd, with minor faults on shmem where the kernel has
 * them and the environment does not say KRAY_LAZY_MINOR=0 (the handshake is made once: a
 * refused feature needs a new userfaultfd).  Returns fd, or -1 (closed). */
static int uffd_api(int fd, bool *ret_minor)
{
	const char *env = getenv("KRAY_LAZY_MINOR");
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MINOR_SHMEM };

	*ret_minor = false;
	if (!(env && !strcmp(env, "0")) && !ioctl(fd, UFFDIO_API, &api)) {
		*ret_minor = true;
		return fd;
	}
	close(fd);
	return -1;
}

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) { /* vm.unprivileged_userfaultfd = 0: /dev/userfaultfd may allow it */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev < 0)
			return -1;
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
		if (fd < 0)
			return -1;
	}
	return fd;
}

static int uffd_new(bool *ret_minor)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = uffd_open();

	if (fd < 0)
		return -1;
	if (uffd_api(fd, ret_minor) >= 0)
		return fd;
	fd = uffd_open(); /* (MINOR refused: MISSING only) */
	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -1;
	}
	return fd;
}

uint32_t kc_lazy_uffd(struct kray *k)
{
	const char *env = getenv("KRAY_LAZY");

	if (env && !strcmp(env, "0"))
		return 0;
	/* A forked child shares the parent's fd but not its memory: its own, or none. */
	if (k->uffd_pid != self()) {
		k->uffd_pid = self();
		k->uffd = uffd_new(&k->uffd_minor);
	}
	return k->uffd >= 0 ? (uint32_t)k->uffd + 1 : 0;
}

int kc_lazy_register(struct kray *k, void *addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING |
			(k->uffd_minor ? UFFDIO_REGISTER_MODE_MINOR : 0),
	};

	if (k->uffd < 0 || k->uffd_pid != self())
		return -EBADF;
	if (ioctl(k->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	return 0;
}

int kc_lazy_announce(struct kray *k, const kray_ref *id, void *addr, size_t len)
{
	struct kray_msg_lazy_map m = { .addr = (uintptr_t)addr, .len = len };
	const char *hold = getenv("KRAY_TEST_LAZY_ANNOUNCE_MS");
	size_t off;
	int r;

	/* A test's hook: the announce held back, so that the object is whole (and krayd's lazy
	 * state of it gone) before krayd hears of the mapping (test_cluster_lazy). */
	if (hold)
		usleep((useconds_t)atoi(hold) * 1000);
	memcpy(&m.id, id, sizeof(m.id));
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_LAZY_MAP, 0, WIRE_FIXED(m));
	r = kc_end(k, off);
	/* Sent before anything touches the mapping: krayd serves its faults by this. */
	return r ? r : kc_flush(k);
}

void kc_lazy_close(struct kray *k)
{
	if (k->uffd >= 0 && k->uffd_pid == self())
		close(k->uffd);
	k->uffd = -1;
	k->uffd_pid = 0;
}
