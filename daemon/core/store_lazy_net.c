// SPDX-License-Identifier: Apache-2.0
/*
 * Lazy gets of objects that come from another node (issue 14 item 4): a get answered with
 * a mapping as soon as the object's transfer starts, whose pages appear as its chunks come.
 *
 * When a large object's OBJ_PUSH arrives and a local get waits for it over a connection
 * that has a userfaultfd (xfer.c, getreq.c's get_lazy_wanted()), the receiver makes a lazy
 * memfd for it (a `struct lazy` with `net` set and no spill file) and answers those gets at
 * once with it (KRAY_WV_LAZY), as for a spilled object: the reader maps it, registers it
 * with its userfaultfd and touches it; libclient does not know the difference.  The object
 * itself is still received as before, straight into its own memfd (xfer.c: one copy, socket
 * to object); after each chunk the loop puts the chunk's pages into the lazy memfd as well
 * (UFFDIO_COPY from the object's mapping, so a page appears whole or not at all) and wakes
 * every reader's faults in that range.  A fault on a page that has not come yet waits for
 * the stream to reach it (the fault thread leaves it queued); one on a page that is in, or
 * on a lost object, is woken at once.  One copy more than the direct receive, and only for
 * objects someone gets lazily while they arrive; the lazy memfd's room is counted in the
 * store as a lazy restore's is, and it goes when its readers let go of it.
 *
 * The holder's link going in the middle leaves the object pending (xfer_link_gone()) and the
 * lazy memfd keeps the pages it has: the copy that the owner then has sent (another holder,
 * or a rebuild from lineage) fills in only what is missing, and whatever seals the object
 * whole fills the rest from the object's own memfd (store_lazy_net_fill()).  When the object
 * ends as an error instead (lost: no holder left), or nobody can fill it any more, the lazy
 * memfd is cut to nothing: a reader that touches what never came gets SIGBUS at that address
 * (never a hang, never in another process), pages it already read are gone too (the object
 * is lost), and its next get says why.
 *
 * MINOR mode (lazy-minor = auto, the default where the kernel has shmem minor faults): no
 * lazy memfd and no second copy.  The readers map the object's own memfd (a dup of it is
 * lz->memfd), registered with their userfaultfd in MISSING and MINOR mode, so that a page
 * the receive has written (or is writing) into the page cache is still not seen by a
 * reader until krayd says so.  A put then only marks the pages in and wakes the readers'
 * faults there; the retried fault comes back as a minor one, and the fault thread maps
 * the pages that are in from there on (up to 4 MiB) with UFFDIO_CONTINUE.  Their mappings
 * count as writable (a userfaultfd registration needs VM_MAYWRITE, and a mapping from a
 * read-only descriptor is refused: EPERM), so F_SEAL_WRITE fails while they last: the
 * object is sealed with F_SEAL_FUTURE_WRITE|SHRINK|GROW then (store_large.c), and for good
 * when the last lazy reader lets go (lazy_free()).  A copy sent again from another holder
 * goes into a new memfd of the object: its pages that the readers lack are copied into
 * lz->memfd through krayd's plain mapping of it (and lz->memfd is counted in the store
 * from then on, as a lazy memfd is).  Readers whose userfaultfd has no minor faults
 * (KRAY_LAZY_MINOR=0) never get it: they wait for the whole object.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/store.h"
#include "core/log.h"
#include "core/store_lazy.h"

struct lazy *store_lazy_new_net(struct krayd *d, const struct kray_oid *id, uint64_t size)
{
	uint8_t *asked = d->lazy ? calloc((size + KRAY_CHUNK - 1) / KRAY_CHUNK, 1) : NULL;
	struct lazy *lz = asked ? lazy_make(d->lazy, size, false) : NULL;

	if (!lz) {
		free(asked);
		return NULL;
	}
	lz->asked = asked;
	lz->id = *id;
	lz->net = true; /* lz->o stays NULL: the object is the loop's (store_unlazy()) */
	lazy_link(d->lazy, lz);
	pthread_mutex_lock(&d->lazy->lock);
	d->lazy->net_missing++;
	pthread_mutex_unlock(&d->lazy->lock);
	return lz;
}

/* A MINOR-mode lazy object of size bytes over (a dup of) objfd, none of its pages in, not
 * linked; NULL when objfd cannot be one (hugetlb: minor faults there are hugetlbfs's, in
 * huge pages: the MISSING path). */
static struct lazy *minor_alloc(uint64_t size, int objfd)
{
	struct statfs fs;
	struct stat st;
	struct lazy *lz;

	if (objfd < 0 || fstatfs(objfd, &fs) || fs.f_type == HUGETLBFS_MAGIC || fstat(objfd, &st) ||
	    (uint64_t)st.st_size != size)
		return NULL;
	lz = calloc(1, sizeof(*lz));
	if (!lz)
		return NULL;
	lz->spill = -1;
	lz->size = size;
	lz->nchunks = (uint32_t)((size + LAZY_CHUNK - 1) / LAZY_CHUNK);
	lz->chunk = calloc(lz->nchunks, 1);
	lz->have = calloc((size / 4096 + 64) / 64, sizeof(*lz->have));
	lz->asked = calloc((size + KRAY_CHUNK - 1) / KRAY_CHUNK, 1);
	lz->memfd = fcntl(objfd, F_DUPFD_CLOEXEC, 0);
	if (!lz->chunk || !lz->have || !lz->asked || lz->memfd < 0) {
		if (lz->memfd >= 0)
			close(lz->memfd);
		free(lz->chunk);
		free(lz->have);
		free(lz->asked);
		free(lz);
		return NULL;
	}
	lz->ino = (uint64_t)st.st_ino;
	lz->net = true;
	lz->minor = true;
	return lz;
}

struct lazy *store_lazy_new_net_minor(struct krayd *d, const struct kray_oid *id, uint64_t size,
				      int objfd)
{
	struct lazyd *z = d->lazy;
	struct lazy *lz = z && z->minor ? minor_alloc(size, objfd) : NULL;

	if (!lz)
		return NULL;
	lz->id = *id;
	lazy_link(z, lz);
	pthread_mutex_lock(&z->lock);
	z->net_minor++;
	pthread_mutex_unlock(&z->lock);
	return lz;
}

int store_lazy_mapped_late(struct conn *c, struct obj *o, const struct kray_oid *id, uint64_t addr,
			   uint64_t len)
{
	/* (Not one sealed for reuse: such a reader never had it lazily.) */
	bool whole = o->type == KRAY_WT_FD && o->fd >= 0 && o->mem < 0;
	struct lazy *lz;

	if (!c->d->lazy || !store_conn_lazy_minor(c))
		return 0; /* (MISSING mode: its pages are all there, or its memfd was cut) */
	if ((addr & 4095) || !len || (whole && (len < o->size || len - o->size >= 4096)))
		return -EINVAL;
	/* A whole MINOR-mode lazy object over the object's memfd, detached: freed (and the
	 * object sealed for good) once its reader lets go. */
	lz = whole ? minor_alloc(o->size, o->fd) : NULL;
	if (lz) {
		lz->id = *id;
		memset(lz->chunk, CH_FILLED, lz->nchunks);
		lz->nfilled = lz->nchunks;
		for (uint64_t p = 0; p < (o->size + 4095) / 4096; p++)
			lz->have[p / 64] |= 1ull << (p % 64);
		lz->detached = true;
	}
	return lazy_mapped_late(c, lz, whole, id, addr, len);
}

/* Whether srcfd is lz's own memfd (MINOR mode: the pages are in place).  Otherwise minor lz
 * needs krayd's plain mapping, to copy them in; its memfd is counted in the store from then
 * on (*ret_room: the bytes to add; it is not the object's any more).  Returns 0 or -errno. */
static int minor_source(struct lazy *lz, int srcfd, bool *ret_in_place, uint64_t *ret_room)
{
	struct stat st;

	*ret_room = 0;
	*ret_in_place = srcfd >= 0 && !fstat(srcfd, &st) && (uint64_t)st.st_ino == lz->ino;
	if (*ret_in_place || lz->map)
		return 0;
	lz->map = mmap(NULL, lz->size, PROT_READ | PROT_WRITE, MAP_SHARED, lz->memfd, 0);
	if (lz->map == MAP_FAILED) {
		lz->map = NULL;
		return -errno;
	}
	if (!lz->room) {
		lz->room = true;
		*ret_room = lz->size;
	}
	return 0;
}

/* Whether every page of KRAY_CHUNK k of lz is in.  Locked. */
static bool chunk_in(const struct lazy *lz, uint32_t k)
{
	uint64_t p0 = (uint64_t)k * (KRAY_CHUNK / 4096), p1 = p0 + KRAY_CHUNK / 4096;
	uint64_t last = (lz->size + 4095) / 4096;

	for (uint64_t p = p0; p < p1 && p < last; p++)
		if (!lazy_have(lz, p))
			return false;
	return true;
}

void store_lazy_net_asks(struct krayd *d,
			 void (*ask)(struct krayd *d, const struct kray_oid *id,
				     const struct lazy *lz, uint64_t off, uint64_t len))
{
	struct lazyd *z = d->lazy;
	struct {
		struct kray_oid id;
		const struct lazy *lz;
		uint64_t off, len;
	} w[LAZY_WANTS_MAX];
	unsigned n;

	if (!z)
		return;
	do {
		n = 0;
		pthread_mutex_lock(&z->lock);
		for (struct lazy *lz = z->all; lz && n < LAZY_WANTS_MAX; lz = lz->next) {
			unsigned take = 0;

			for (; take < lz->nwants && n < LAZY_WANTS_MAX; take++) {
				uint64_t off = (uint64_t)lz->wants[take] * KRAY_CHUNK;

				if (lz->broken || chunk_in(lz, lz->wants[take]))
					continue;
				w[n].id = lz->id;
				w[n].lz = lz;
				w[n].off = off;
				w[n++].len =
					lz->size - off < KRAY_CHUNK ? lz->size - off : KRAY_CHUNK;
			}
			memmove(lz->wants, lz->wants + take,
				(lz->nwants - take) * sizeof(lz->wants[0]));
			lz->nwants -= take;
		}
		pthread_mutex_unlock(&z->lock);
		for (unsigned i = 0; i < n; i++) /* (lz only compared there: it may be gone) */
			ask(d, &w[i].id, w[i].lz, w[i].off, w[i].len);
	} while (n == LAZY_WANTS_MAX);
}

void store_lazy_net_reask(struct krayd *d, struct lazy *lz)
{
	struct lazyd *z = d->lazy;
	uint32_t nk = (uint32_t)((lz->size + KRAY_CHUNK - 1) / KRAY_CHUNK);
	unsigned n;

	pthread_mutex_lock(&z->lock);
	lz->nwants = 0;
	for (uint32_t k = 0; k < nk && lz->nwants < LAZY_WANTS_MAX; k++)
		if (lz->asked[k] && !chunk_in(lz, k))
			lz->wants[lz->nwants++] = k;
	n = lz->nwants;
	pthread_mutex_unlock(&z->lock);
	if (n)
		store_io_kick(d); /* asked at the loop's next drain (store_lazy_net_asks()) */
}

void store_lazy_net_fail(struct krayd *d, struct lazy *lz, const char *why)
{
	pthread_mutex_lock(&d->lazy->lock);
	lazy_net_fail_locked(d->lazy, lz, why);
	pthread_mutex_unlock(&d->lazy->lock);
}

/* Puts the pages of [p, q) that src (the bytes from offset off to end) has into lz: whole
 * pages straight from src, the last one (end not on a page) through a page of zeros.
 * Returns 0 or an errno. */
static int put_run(struct lazyd *z, struct lazy *lz, uint64_t p, uint64_t q, const uint8_t *src,
		   uint64_t off, uint64_t end)
{
	uint64_t whole = end % 4096 && q * 4096 > end ? q - 1 : q;
	uint8_t tail[4096];
	int err = 0;

	if (whole > p)
		err = lazy_put_pages(z, lz->map + p * 4096, src + (p * 4096 - off),
				     (whole - p) * 4096);
	if (!err && whole < q) {
		memset(tail, 0, sizeof(tail));
		memcpy(tail, src + (whole * 4096 - off), end - whole * 4096);
		err = lazy_put_pages(z, lz->map + whole * 4096, tail, sizeof(tail));
	}
	return err;
}

int store_lazy_net_put(struct krayd *d, struct lazy *lz, int srcfd, uint64_t off,
		       const uint8_t *src, uint64_t len)
{
	struct lazyd *z = d->lazy;
	uint64_t end = off + len, p0 = off / 4096, p1 = (end + 4095) / 4096, room = 0;
	bool in_place = false;
	struct timespec t0, t1;
	uint32_t c0, c1;
	int err = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((off & 4095) || end > lz->size || (end % 4096 && end != lz->size))
		return -EINVAL;
	if (lz->broken || (!lz->map && !lz->minor))
		return 0;
	if (lz->minor)
		err = -minor_source(lz, srcfd, &in_place, &room);
	d->st.store_bytes += room;
	/* Only the loop puts pages of a net lazy memfd, and only it sets their bits: the
	 * copies need no lock (the thread only reads the bits).  In MINOR mode a page is
	 * copied with a plain memcpy: readers see it only once it is marked in (CONTINUE). */
	for (uint64_t p = p0, q; p < p1 && !err && !in_place; p = q) {
		for (q = p; q < p1 && lazy_have(lz, q) == lazy_have(lz, p); q++)
			;
		if (lazy_have(lz, p))
			continue;
		if (lz->minor)
			memcpy(lz->map + p * 4096, src + (p * 4096 - off),
			       (q * 4096 < end ? q * 4096 : end) - p * 4096);
		else
			err = put_run(z, lz, p, q, src, off, end);
	}
	pthread_mutex_lock(&z->lock);
	if (err) {
		char why[128];

		snprintf(why, sizeof(why), "filling its lazily mapped memory: %s", strerror(err));
		lazy_net_fail_locked(z, lz, why);
		pthread_mutex_unlock(&z->lock);
		return -err;
	}
	for (uint64_t p = p0; p < p1; p++)
		lz->have[p / 64] |= 1ull << (p % 64);
	/* The chunks this completes (whole: store_unlazy() frees it once nobody maps it). */
	c0 = (uint32_t)(off / LAZY_CHUNK);
	c1 = (uint32_t)((end + LAZY_CHUNK - 1) / LAZY_CHUNK);
	for (uint32_t i = c0; i < c1; i++) {
		uint64_t q0 = (uint64_t)i * (LAZY_CHUNK / 4096), q1 = q0 + LAZY_CHUNK / 4096;
		uint64_t last = (lz->size + 4095) / 4096, q;

		if (q1 > last)
			q1 = last;
		for (q = q0; q < q1 && lazy_have(lz, q); q++)
			;
		if (q == q1 && lz->chunk[i] != CH_FILLED) {
			lz->chunk[i] = CH_FILLED;
			lz->nfilled++;
		}
	}
	lazy_wake_readers(z, lz, p0 * 4096, p1 * 4096);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	z->net_put_ns +=
		(uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
	z->net_puts++;
	pthread_mutex_unlock(&z->lock);
	return 0;
}

int store_lazy_net_fill(struct krayd *d, struct lazy *lz, int fd)
{
	const uint8_t *p;
	bool whole;
	int r;

	pthread_mutex_lock(&d->lazy->lock);
	whole = lz->nfilled == lz->nchunks;
	pthread_mutex_unlock(&d->lazy->lock);
	if (whole || lz->broken)
		return 0;
	p = mmap(NULL, lz->size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	r = store_lazy_net_put(d, lz, fd, 0, p, lz->size);
	munmap((void *)p, lz->size);
	return r;
}
