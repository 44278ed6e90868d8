// SPDX-License-Identifier: Apache-2.0
/*
 * The pool of pre-faulted memfds.  On this VM a page fault costs 15-35 µs, so writing a
 * fresh memfd runs at a fraction of memcpy speed.  A filler thread keeps memfds whose
 * pages are already allocated and zeroed (written once through a mapping it then drops),
 * so a writer pays only for mapping them.  A memfd sealed for good (F_SEAL_WRITE) serves
 * one object: the pool refills.
 *
 * What to fill is learned from demand: every take of size S asks for another memfd of
 * size S, as long as the pool stays within its budget.  The loop thread never waits for
 * the filler: a take that finds nothing suitable makes a fresh memfd at once, and (S at
 * most `pool-size`) grows the budget by S, up to `pool-max`, so that a program that
 * creates bursts of objects finds its next burst ready (a burst of four 100 MiB puts ran
 * at 0.56x the memcpy floor with the 256 MiB budget, whose two memfds the first two puts
 * took).  The budget goes back to `pool-size`, and the memfds beyond it are let go, after
 * POOL_SHRINK_NS without a take: pre-faulted memory is not kept idle for good.
 *
 * Zeroing memory and a writer's copy into a new object both run at memory speed: side by
 * side on two cores each slows the other (a 100 MiB put that found a memfd ready copied
 * 1.3-1.6x slower than the memcpy floor while the filler refilled the memfd it took).  So
 * the filler steps aside while objects are being written (between CREATE, or a
 * transfer's first chunk, and the seal: pool_write_begins/ends()), until a deadline
 * that each writer sets from its size (POOL_YIELD_NS_PER_GB: 1 GB/s, the slowest writer
 * worth waiting for; POOL_YIELD_MIN_NS at least, POOL_YIELD_MAX_NS at most from its
 * start), so that a writer that holds its object long, or writers that never all stop,
 * cannot keep the pool empty.  Nor does it while the pool is empty and the last take
 * found it so (a program that puts without pause).
 *
 * With pool-reuse, the memory of freed objects comes back (pool_give(), store_reuse.c) as
 * it is, in place of a refill: a program that puts and frees objects of one size without
 * pause finds its memory ready, not zeroed, as in Ray's store.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/store.h"
#include "core/log.h"
#include "../../common/hugemap.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define POOL_MAX 64
#define POOL_YIELD_NS_PER_GB 1000000000ll
#define POOL_YIELD_MIN_NS (50 * 1000000ll)
#define POOL_YIELD_MAX_NS (2000 * 1000000ll)
#define POOL_SHRINK_NS (30 * 1000000000ll)

struct seg {
	int fd;
	uint64_t size;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	uint64_t budget, bytes, ordered; /* bytes ready, bytes asked for */
	uint64_t given; /* bytes of freed objects taken back (pool_give()), ever */
	uint64_t base, max; /* the budget's floor (pool-size) and ceiling (pool-max) */
	int64_t taken; /* CLOCK_MONOTONIC ns: the last take */
	int64_t shrink_ns; /* back to base this long after it (POOL_SHRINK_NS) */
	struct seg ready[POOL_MAX];
	unsigned nready;
	uint64_t orders[POOL_MAX]; /* sizes to fill */
	unsigned norders;
	bool stop;
	bool huge; /* shmem THP: pages pre-faulted 2 MiB at a time (a writer maps them whole) */
	unsigned writing; /* objects being written (pool_write_begins()) */
	bool last_missed; /* the last take found nothing ready */
	int64_t yield_until; /* CLOCK_MONOTONIC ns: the filler steps aside until then */
};

static int fresh(uint64_t size)
{
	int fd = memfd_create("kray-object", MFD_ALLOW_SEALING | MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/*
 * Allocates and zeroes every page of fd (in huge pages with huge, where shmem allows),
 * POOL_SLICE bytes per madvise().  MADV_POPULATE_WRITE holds the process's mmap lock for
 * as long as it runs, and clearing memory the hypervisor took back runs at 0.4-1 GB/s on
 * our VMs (docs/cluster.md "Transfer speed"): one call for a 1 GiB memfd could keep every
 * mmap and munmap of the loop (a node link mapping the object it receives) waiting for
 * 1-2.5 s.  In slices the loop waits for one at most.
 */
#define POOL_SLICE (2ul << 20)

/* Waits while objects are being written, until the writers' deadline, unless the pool is
 * empty and the last take found it so: that writer faults fresh memory in anyway, and
 * refilling beside it is what lets the next one find a memfd (100 MiB Python puts back to
 * back: 0.59-0.66x the memcpy floor against 0.53-0.56x stepping aside always). */
static void yield_to_writers(struct pool *pl)
{
	pthread_mutex_lock(&pl->lock);
	while (pl->writing && !(pl->last_missed && !pl->nready) && !pl->stop &&
	       now_ns() < pl->yield_until) {
		struct timespec until = { pl->yield_until / 1000000000,
					  pl->yield_until % 1000000000 };

		pthread_cond_timedwait(&pl->cond, &pl->lock, &until);
	}
	pthread_mutex_unlock(&pl->lock);
}

static int prefault(struct pool *pl, int fd, uint64_t size)
{
	uint8_t *p = kray_map_huge(fd, size, PROT_READ | PROT_WRITE, 0, pl->huge);
	long pg = sysconf(_SC_PAGESIZE);

	if (p == MAP_FAILED)
		return -errno;
	for (uint64_t off = 0; off < size; off += POOL_SLICE) {
		uint64_t n = size - off < POOL_SLICE ? size - off : POOL_SLICE;

		yield_to_writers(pl);

		if (madvise(p + off, n, MADV_POPULATE_WRITE))
			for (uint64_t o = 0; o < n; o += (uint64_t)pg)
				((volatile uint8_t *)p)[off + o] = 0;
	}
	munmap(p, size);
	return 0;
}

/* Back to the base budget: the ready memfds beyond it go, the largest first.  Under the
 * lock. */
static void shrink(struct pool *p)
{
	p->budget = p->base;
	while (p->bytes > p->budget) {
		unsigned big = 0;

		for (unsigned i = 1; i < p->nready; i++)
			if (p->ready[i].size > p->ready[big].size)
				big = i;
		close(p->ready[big].fd);
		p->bytes -= p->ready[big].size;
		p->ready[big] = p->ready[--p->nready];
	}
}

static void *filler(void *arg)
{
	struct pool *p = arg;

	pthread_setname_np(pthread_self(), "krayd-pool");
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		uint64_t size;
		int fd;

		if (!p->norders) {
			if (p->budget > p->base) {
				int64_t at = p->taken + p->shrink_ns;
				struct timespec until = { at / 1000000000, at % 1000000000 };

				if (now_ns() >= at)
					shrink(p);
				else
					pthread_cond_timedwait(&p->cond, &p->lock, &until);
			} else {
				pthread_cond_wait(&p->cond, &p->lock);
			}
			continue;
		}
		size = p->orders[--p->norders];
		pthread_mutex_unlock(&p->lock);
		fd = fresh(size);
		if (fd >= 0 && prefault(p, fd, size)) {
			close(fd);
			fd = -1;
		}
		pthread_mutex_lock(&p->lock);
		p->ordered -= size;
		if (fd < 0)
			continue;
		/* (Freed objects' memory may have filled it meanwhile: pool_give().) */
		if (p->stop || p->nready == POOL_MAX || p->bytes + size > p->budget) {
			close(fd);
			continue;
		}
		p->ready[p->nready++] = (struct seg){ fd, size };
		p->bytes += size;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *pool_start(uint64_t budget, uint64_t max, bool huge)
{
	struct pool *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;

	if (!p)
		return NULL;
	p->budget = p->base = budget;
	p->max = budget ? (max > budget ? max : budget) : 0;
	p->shrink_ns = POOL_SHRINK_NS;
	p->huge = huge;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (budget && pthread_create(&p->thread, NULL, filler, p)) {
		log_warn("no pre-fault thread: new objects fault their pages in");
		p->budget = 0;
	}
	return p;
}

int pool_take(struct pool *p, uint64_t size, bool back, bool *ret_ready)
{
	int fd = -1;
	unsigned best = POOL_MAX;

	if (ret_ready)
		*ret_ready = false;
	if (!p->budget)
		return fresh(size);
	pthread_mutex_lock(&p->lock);
	/* The smallest ready memfd that fits without wasting more than a quarter. */
	for (unsigned i = 0; i < p->nready; i++)
		if (p->ready[i].size >= size && p->ready[i].size - size <= size / 4 &&
		    (best == POOL_MAX || p->ready[i].size < p->ready[best].size))
			best = i;
	p->last_missed = best == POOL_MAX;
	if (!p->last_missed) {
		fd = p->ready[best].fd;
		p->bytes -= p->ready[best].size;
		p->ready[best] = p->ready[--p->nready];
	} else if (p->budget < p->max && size <= p->base) {
		/* A miss: room for one more of this size next time (for objects up to the base
		 * budget: a larger one is not worth keeping as much memory idle for). */
		p->budget = p->budget + size < p->max ? p->budget + size : p->max;
	}
	p->taken = now_ns();
	/* Expect another of this size, unless this memory comes back for it (a refill would
	 * zero memory beside the writer's copy, only to be let go: bytes + size > budget). */
	if (!(back && !p->last_missed) && p->bytes + p->ordered + size <= p->budget &&
	    p->norders < POOL_MAX) {
		p->orders[p->norders++] = size;
		p->ordered += size;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	if (ret_ready)
		*ret_ready = fd >= 0;
	return fd >= 0 ? fd : fresh(size);
}

bool pool_give(struct pool *p, int fd, uint64_t size)
{
	bool kept = false;

	if (!p->budget)
		return false;
	pthread_mutex_lock(&p->lock);
	if (!p->stop && p->nready < POOL_MAX && p->bytes + size <= p->budget) {
		/* It stands in for a refill of about its size that has not begun. */
		for (unsigned i = 0; i < p->norders; i++)
			if (p->orders[i] <= size && size - p->orders[i] <= p->orders[i] / 4) {
				p->ordered -= p->orders[i];
				p->orders[i] = p->orders[--p->norders];
				break;
			}
		p->ready[p->nready++] = (struct seg){ fd, size };
		p->bytes += size;
		p->given += size;
		kept = true;
	}
	pthread_mutex_unlock(&p->lock);
	return kept;
}

void pool_write_begins(struct pool *p, uint64_t size)
{
	int64_t now, ns;

	if (!p || !p->budget)
		return;
	now = now_ns();
	ns = (int64_t)(size * (double)POOL_YIELD_NS_PER_GB / 1e9);
	ns = ns < POOL_YIELD_MIN_NS ? POOL_YIELD_MIN_NS :
	     ns > POOL_YIELD_MAX_NS ? POOL_YIELD_MAX_NS :
				      ns;
	pthread_mutex_lock(&p->lock);
	if (!p->writing++ || p->yield_until < now + ns)
		p->yield_until = now + ns;
	pthread_mutex_unlock(&p->lock);
}

void pool_write_ends(struct pool *p)
{
	if (!p || !p->budget)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->writing && !--p->writing)
		pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void pool_shrink_after(struct pool *p, int64_t ns)
{
	pthread_mutex_lock(&p->lock);
	p->shrink_ns = ns;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* *v, a field of p, read under p's lock. */
static uint64_t read_locked(struct pool *p, const uint64_t *v)
{
	uint64_t b;

	pthread_mutex_lock(&p->lock);
	b = *v;
	pthread_mutex_unlock(&p->lock);
	return b;
}

uint64_t pool_budget(struct pool *p)
{
	return read_locked(p, &p->budget);
}

uint64_t pool_given(struct pool *p)
{
	return read_locked(p, &p->given);
}

uint64_t pool_bytes(struct pool *p)
{
	return read_locked(p, &p->bytes);
}

void pool_stop(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->budget)
		pthread_join(p->thread, NULL);
	for (unsigned i = 0; i < p->nready; i++)
		close(p->ready[i].fd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
