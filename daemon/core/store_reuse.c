// SPDX-License-Identifier: Apache-2.0
/*
 * Memory reused in place.  A sealed memfd (F_SEAL_WRITE) can never be written again, so
 * every object used to need fresh memory, which the kernel zeroes: a program that puts
 * without pause paid for zeroing as well as copying each object (0.60x the memcpy floor on
 * two cores, where the two share the memory bandwidth).  Ray's store reuses freed memory in
 * place and pays only the copy.  With `pool-reuse` (on by default, where the pool is on),
 * the memory of a freed object of REUSE_MIN bytes or more goes back to the pool, as it is,
 * for the next object of about its size; nobody may see it change, and the kernel says
 * when nobody can:
 *
 * - The writer gets its own open file of the memfd (a reopen through /proc/self/fd, which
 *   the kernel counts in the inode's i_writecount); readers get a read-only one (counted
 *   in i_readcount), through which nothing can be written, mapped writable, resized or
 *   sealed.  krayd keeps the memfd itself (o->mem), which no count includes.
 * - A write lease (F_SETLEASE F_WRLCK) is granted only to a file that is the only one open
 *   for writing and while no file is open read-only; an open file stays open while a
 *   mapping of it lives (in any process, whatever its descriptors).  So a lease on a fresh
 *   writable reopen proves that no writer and no reader holds the object: at the seal
 *   (the writer let go, as F_SEAL_WRITE proves), and when the object is freed (every
 *   reader let go, however it behaves) before its memory goes back to the pool.  Where the
 *   lease is refused the memory is let go as before.
 *
 * Objects with lazy readers, objects published in /dev/kray (which wants F_SEAL_WRITE) and
 * objects in hugetlb memfds are sealed for good, as are all objects where reuse is off.
 * A new object's memory then holds an old object's bytes until its writer writes it, as
 * in Ray's store.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/store.h"

#define REUSE_MIN (1ull << 20) /* below it zeroing costs less than the checks */

static int reopen(int fd, int flags)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags | O_CLOEXEC);
}

/* 1 when no file of memfd but krayd's own is open (or mapped) anywhere, 0 when one is,
 * -1 when the kernel cannot say (no /proc, leases off). */
static int unshared(int memfd)
{
	int fd = reopen(memfd, O_RDWR), r;

	if (fd < 0)
		return -1;
	r = fcntl(fd, F_SETLEASE, F_WRLCK) ? (errno == EAGAIN ? 0 : -1) : 1;
	close(fd); /* (and the lease with it) */
	return r;
}

bool store_reusable(struct krayd *d, uint64_t size)
{
	return d->cfg.pool_reuse && size >= REUSE_MIN && d->kmod_fd < 0 && pool_budget(d->pool);
}

int store_writer_fd(struct krayd *d, int memfd, uint64_t size)
{
	int fd = -1;

	if (store_reusable(d, size))
		fd = reopen(memfd, O_RDWR);
	if (fd < 0)
		fd = fcntl(memfd, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

int store_seal_reuse(struct krayd *d, struct obj *o)
{
	struct timespec ms = { 0, 1000000 };
	struct statfs fs;
	int ro, r = -1;

	/* (A hugetlb memfd, hugepages = 1, is rounded up to whole pages and cannot be written
	 * with write(2): not one for the pool.) */
	if (!store_reusable(d, o->size) || o->lazy || fstatfs(o->fd, &fs) ||
	    fs.f_type == HUGETLBFS_MAGIC)
		return 1;
	for (int i = 0; i < STORE_SEAL_TRIES && !(r = unshared(o->fd)); i++)
		nanosleep(&ms, NULL);
	if (r < 0)
		return 1;
	if (!r) {
		errno = EBUSY;
		return -1;
	}
	ro = reopen(o->fd, O_RDONLY);
	if (ro < 0)
		return 1;
	o->mem = o->fd;
	o->fd = ro;
	return 0;
}

void store_free_mem(struct krayd *d, struct obj *o)
{
	if (o->mem < 0) {
		store_io_close(d, o->fd, o->size);
	} else {
		close(o->fd); /* (o->mem holds the pages) */
		if (unshared(o->mem) != 1 || !pool_give(d->pool, o->mem, o->size))
			store_io_close(d, o->mem, o->size);
	}
	o->fd = o->mem = -1;
}
