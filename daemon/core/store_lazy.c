// SPDX-License-Identifier: Apache-2.0
/*
 * Lazy restore (issue 14): a get of a spilled object is answered at once with a mapping
 * whose pages are read from the spill file when they are first touched.
 *
 * Restoring a 1 GiB object before the reply costs a fraction of a second, even when the
 * reader wants a few bytes of it.  So when a client says it has a userfaultfd (the GET's
 * uffd field) krayd takes a copy of it (pidfd_getfd()), creates an empty memfd of the
 * object's size and replies with that (KRAY_WV_LAZY).  The client maps it (never populated),
 * registers the mapping with its userfaultfd in MISSING mode, and tells krayd where
 * (KRAY_MSG_LAZY_MAP) before it touches a byte.  A touch of a page that is not in the memfd
 * yet stops the reader's thread and queues a fault on that userfaultfd, which this file's
 * thread reads: it reads the pages around the fault (lazy-first-read, 64 KiB) from the spill
 * file into a buffer, puts them in the memfd's page cache (every mapping of the memfd sees
 * them) and wakes the reader (UFFDIO_WAKE), whose retried fault now finds the page; then it
 * reads and puts in the rest of the fault's chunk (LAZY_CHUNK, 2 MiB), so a reader waits for
 * one small read, and the disk is still read in large ranges.  A bit per page says what is
 * in: no page is read or put twice.  A reader going through in order has the chunks after
 * its fault filled between faults (LAZY_FILL_AHEAD).  Filled once,
 * pages serve every reader, and a reader that is killed midway leaves nothing half done (a
 * chunk counts as filled only once all of it was read).
 *
 * A page must appear whole or not at all: another reader (or another thread of the faulting
 * one) may touch any page of the chunk while it is filled, and a present page does not
 * fault.  So the chunk is not written through a plain mapping (a write fault makes the page
 * present, as zeros, before its bytes are in; with THP the whole 2 MiB at once).  krayd's own
 * mapping of the memfd is registered with krayd's own userfaultfd, and the chunk goes in
 * with UFFDIO_COPY, which adds each page to the page cache only once it is copied.  The
 * price: the lazy memfd has 4 KiB pages (UFFDIO_COPY makes no huge pages).
 *
 * A chunk that cannot be read (the spill file was truncated or damaged behind krayd's back)
 * is poisoned in the faulting reader (UFFDIO_POISON): that reader gets SIGBUS at that address
 * and no other process does; the object is lost from then on (store_lazy_drain()), so later
 * gets say why.  When every chunk is in and no reader maps it any more, the memfd is sealed
 * and becomes the object's memory (promoted: as if restored eagerly).  An object freed, or restored eagerly for someone that
 * cannot map lazily, while readers still map its lazy memfd is detached: the thread then fills
 * the rest in the background (so the readers never see a page that is not the object's) and
 * lets go.  A reader's connection that closes takes its ranges with it.
 *
 * The same machinery serves objects that come from another node (store_lazy_net.c): a
 * `net` lazy memfd has no spill file; the loop puts its pages as the transfer brings them
 * and wakes its readers, and this thread only wakes faults on pages that are in already.
 *
 * Locking: one mutex over every struct lazy, lz_conn and range; the loop takes it for its
 * few calls; the thread holds it except while it reads and puts a range (fill_range()).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/store.h"
#include "core/worker.h"
#include "core/log.h"
#include "core/store_lazy.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef UFFDIO_POISON /* Linux 6.6; Debian 12's headers are older */
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, 0x08, struct uffdio_poison)
#endif

static void wake_thread(struct lazyd *z)
{
	uint64_t one = 1;

	if (write(z->efd, &one, sizeof(one)) != sizeof(one))
		log_warn_ratelimited("lazy restore: eventfd: %s", strerror(errno));
}

/* Puts len bytes (whole pages) of src at dst, in krayd's registered mapping of a lazy memfd:
 * each page enters the page cache whole (UFFDIO_COPY).  Returns 0 or an errno. */
int lazy_put_pages(struct lazyd *z, char *dst, const uint8_t *src, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		struct uffdio_copy c = { .dst = (uint64_t)(uintptr_t)(dst + done),
					 .src = (uint64_t)(uintptr_t)(src + done),
					 .len = len - done,
					 .mode = UFFDIO_COPY_MODE_DONTWAKE };

		if (!ioctl(z->uffd, UFFDIO_COPY, &c))
			break;
		if (c.copy > 0) /* part of it went in (EAGAIN): go on from there */
			done += (uint64_t)c.copy;
		else if (errno == EEXIST) /* (never put twice: have(); skip a page that is in) */
			done += 4096;
		else if (errno != EAGAIN && errno != EINTR)
			return errno;
	}
	return 0;
}

/* Chunk i of lz cannot be had: the object is lost from now on.  Locked. */
static int chunk_bad(struct lazy *lz, uint32_t i, int err, bool read_err, bool short_read)
{
	lz->chunk[i] = CH_BAD;
	if (!lz->broken)
		snprintf(lz->why, sizeof(lz->why),
			 short_read ? "its spill file was truncated behind krayd's back (%s)" :
			 read_err   ? "reading its spill file: %s" :
				      "filling its memory: %s",
			 short_read ? "short read" : strerror(err));
	lz->broken = true;
	return short_read ? -EIO : -err;
}

/* Reads the pages of [off, end) of lz that are not in yet from its spill file into the
 * memfd, with one read (from the first missing page to the last) and a UFFDIO_COPY per run
 * of missing pages: no page is put twice.  [off, end) lies in one chunk; off is page-aligned,
 * end is too or is the object's size.  Called locked, by the thread; the lock is let go
 * during the read (the loop may take it meanwhile: only the thread frees a struct lazy or
 * unmaps lz->map, and only it writes lz->chunk and lz->have), so the caller holds no range
 * across it. */
static int fill_range(struct lazyd *z, struct lazy *lz, uint64_t off, uint64_t end)
{
	uint64_t p0 = off / 4096, p1 = (end + 4095) / 4096, len, done = 0;
	uint32_t i = (uint32_t)(off / LAZY_CHUNK);
	uint8_t *buf;
	ssize_t n = 0;
	int err = 0;

	if (lz->chunk[i] == CH_BAD || !lz->map)
		return -EIO;
	while (p0 < p1 && lazy_have(lz, p0))
		p0++;
	while (p1 > p0 && lazy_have(lz, p1 - 1))
		p1--;
	if (p0 == p1)
		return 0;
	off = p0 * 4096;
	end = p1 * 4096 < lz->size ? p1 * 4096 : lz->size;
	len = end - off;
	/* MINOR mode: read straight into the memfd (no bounce, no UFFDIO_COPY): readers see
	 * the pages only once they are marked in and resolved.  (Pages of the run that are
	 * in already are read again: the same bytes.) */
	buf = lz->minor ? (uint8_t *)lz->map + off : z->bounce + off % LAZY_CHUNK;
	pthread_mutex_unlock(&z->lock);
	while (done < len) {
		n = pread(lz->spill, buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = errno;
			break;
		}
		done += (uint64_t)n;
	}
	if (!lz->minor)
		memset(buf + len, 0, p1 * 4096 - end); /* the tail of the last page */
	for (uint64_t p = p0, q; done == len && !err && !lz->minor && p < p1; p = q) {
		for (q = p; q < p1 && lazy_have(lz, q) == lazy_have(lz, p); q++)
			;
		if (!lazy_have(lz, p))
			err = lazy_put_pages(z, lz->map + p * 4096, buf + (p - p0) * 4096,
					     (q - p) * 4096);
	}
	pthread_mutex_lock(&z->lock);
	if (done < len || err)
		return chunk_bad(lz, i, err, done < len && n < 0, done < len && n >= 0);
	for (uint64_t p = p0; p < p1; p++)
		lz->have[p / 64] |= 1ull << (p % 64);
	z->restored += len;
	return 0;
}

/* Fills what chunk i of lz still lacks: from offset from (in it) to its end, then its start.
 * Called locked, by the thread (see fill_range()). */
static int fill(struct lazyd *z, struct lazy *lz, uint32_t i, uint64_t from)
{
	uint64_t off = (uint64_t)i * LAZY_CHUNK, end = off + LAZY_CHUNK;
	int r;

	if (end > lz->size)
		end = lz->size;
	if (lz->chunk[i] == CH_FILLED)
		return 0;
	from = from > off && from < end ? from & ~4095ull : off;
	r = fill_range(z, lz, from, end);
	if (!r && from > off)
		r = fill_range(z, lz, off, from);
	if (r)
		return r;
	lz->chunk[i] = CH_FILLED;
	lz->nfilled++;
	/* A sequential reader's next faults find the file in the page cache. */
	if (end < lz->size)
		posix_fadvise(lz->spill, (off_t)end, LAZY_AHEAD, POSIX_FADV_WILLNEED);
	return 0;
}

/* Makes [addr, addr + len) of reader lc fault with SIGBUS; without UFFDIO_POISON (Linux
 * < 6.6) the memfd is truncated, so that every reader's touch of it does. */
static void poison(struct lazyd *z, struct lz_conn *lc, struct lazy *lz, uint64_t addr,
		   uint64_t len, bool or_truncate)
{
	struct uffdio_poison p = { .range = { .start = addr, .len = len } };

	if (z->poison_ok && !ioctl(lc->uffd, UFFDIO_POISON, &p))
		return;
	if (errno == EEXIST || errno == ESRCH || errno == ENOENT || !or_truncate)
		return;
	z->poison_ok = false;
	if (lz->minor && !lz->room)
		return;
	if (ftruncate(lz->memfd, 0))
		log_warn_ratelimited("lazy restore: cannot fail a reader: %s", strerror(errno));
}

/* Poisons what reader lc (its range of lz at base) lacks of chunk i: each run of pages not
 * in (a present page would refuse it: EEXIST).  A memfd that is the object's own (MINOR
 * mode) is never truncated. */
void lazy_poison_chunk(struct lazyd *z, struct lz_conn *lc, struct lazy *lz, uint64_t base,
		       uint32_t i, bool or_truncate)
{
	uint64_t p0 = (uint64_t)i * (LAZY_CHUNK / 4096), p1 = p0 + LAZY_CHUNK / 4096;
	uint64_t last = (lz->size + 4095) / 4096;

	if (p1 > last)
		p1 = last;
	for (uint64_t p = p0, q; p < p1; p = q) {
		for (q = p; q < p1 && lazy_have(lz, q) == lazy_have(lz, p); q++)
			;
		if (!lazy_have(lz, p))
			poison(z, lc, lz, base + p * 4096, (q - p) * 4096, or_truncate);
	}
}

void lazy_wake_range(struct lz_conn *lc, uint64_t addr, uint64_t len)
{
	struct uffdio_range r = { .start = addr, .len = len };

	/* ESRCH/ENOENT: the reader is gone or unmapped it; nothing waits. */
	if (ioctl(lc->uffd, UFFDIO_WAKE, &r) && errno != ESRCH && errno != ENOENT &&
	    errno != EINVAL)
		log_warn_ratelimited("lazy restore: UFFDIO_WAKE: %s", strerror(errno));
}

void lazy_resolve(struct lz_conn *lc, uint64_t addr, uint64_t len)
{
	uint64_t done = 0;
	bool skipped = false;

	if (!lc->minor) {
		lazy_wake_range(lc, addr, len);
		return;
	}
	while (done < len) {
		struct uffdio_continue c = { .range = { .start = addr + done, .len = len - done } };

		if (!ioctl(lc->uffd, UFFDIO_CONTINUE, &c))
			break;
		if (c.mapped > 0) { /* part of it (EAGAIN): go on from there */
			done += (uint64_t)c.mapped;
		} else if (errno == EEXIST) { /* mapped already (another fault's range) */
			done += 4096;
			skipped = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			/* ESRCH/ENOENT: the reader is gone or unmapped it; nothing waits. */
			if (errno != ESRCH && errno != ENOENT && errno != EFAULT)
				log_warn_ratelimited("lazy get: UFFDIO_CONTINUE: %s",
						     strerror(errno));
			skipped = true;
			break;
		}
	}
	if (skipped) /* (a fault on a page mapped meanwhile may wait still) */
		lazy_wake_range(lc, addr, len);
}

/* Resolves reader lc's fault at offset off of lz (its range rg): the pages in from there on
 * (up to LAZY_RESOLVE), mapped at once (minor) or woken.  The lock is let go during the
 * ioctls (only the thread frees lc and lz; the addresses are all it uses of rg). */
#define LAZY_RESOLVE (4ull << 20)
static void resolve_from(struct lazyd *z, struct lz_conn *lc, struct lazy *lz, uint64_t base,
			 uint64_t off)
{
	uint64_t p = off / 4096, q = p, last = (lz->size + 4095) / 4096;

	while (q < last && q - p < LAZY_RESOLVE / 4096 && lazy_have(lz, q))
		q++;
	if (q == p)
		q = p + 1;
	if (!lc->minor) {
		lazy_wake_range(lc, base + p * 4096, (q - p) * 4096);
		return;
	}
	pthread_mutex_unlock(&z->lock);
	lazy_resolve(lc, base + p * 4096, (q - p) * 4096);
	pthread_mutex_lock(&z->lock);
}

/* The part of reader range rg that chunk i covers. */
static void chunk_span(const struct lz_range *rg, uint32_t i, uint64_t *ret_addr, uint64_t *ret_len)
{
	uint64_t off = (uint64_t)i * LAZY_CHUNK, len = rg->len - off;

	*ret_addr = rg->base + off;
	*ret_len = len < LAZY_CHUNK ? len : LAZY_CHUNK;
}

/* A fault at addr in reader lc: resolved, or false when no range holds addr (yet). */
static bool fault(struct lazyd *z, struct lz_conn *lc, uint64_t addr)
{
	struct lz_range *rg;
	struct lazy *lz;
	uint64_t a, len, off, base;
	uint32_t i;

	for (rg = lc->ranges; rg; rg = rg->next)
		if (addr >= rg->base && addr - rg->base < rg->len)
			break;
	if (!rg)
		return false;
	z->faults++;
	lz = rg->lz;
	if (lz->net) {
		/* Filled by its stream (store_lazy_net.c), which wakes this fault when its page
		 * comes (a minor reader's fault then comes back, as a minor one); a page in
		 * already is resolved now, and one of a lost object is woken (its memfd
		 * truncated: the retried fault gets SIGBUS) or, for the object's own memfd
		 * (MINOR mode), poisoned. */
		off = addr - rg->base;
		if (lz->broken && lz->minor && off < lz->size)
			lazy_poison_chunk(z, lc, lz, rg->base, (uint32_t)(off / LAZY_CHUNK), false);
		if (lz->broken)
			lazy_wake_range(lc, addr, 4096);
		else if (lazy_have(lz, off / 4096))
			resolve_from(z, lc, lz, rg->base, off);
		else if (off < lz->size)
			lazy_net_ask(z, lz, addr - rg->base); /* the stream has not reached it */
		return true;
	}
	i = (uint32_t)((addr - rg->base) / LAZY_CHUNK);
	if (i >= lz->nchunks)
		i = lz->nchunks - 1;
	chunk_span(rg, i, &a, &len);
	base = rg->base;
	off = addr - base < lz->size ? addr - base : (uint64_t)i * LAZY_CHUNK;
	/* (rg may go while fill() reads: not used after it; lc and lz stay) */
	if (lz->chunk[i] == CH_MISSING && z->first) {
		/* The head first: the pages around the fault, read and put in alone, and the
		 * reader goes on while the rest of the chunk follows. */
		uint64_t h0 = off / z->first * z->first, h1 = h0 + z->first;

		if (h0 < (uint64_t)i * LAZY_CHUNK)
			h0 = (uint64_t)i * LAZY_CHUNK;
		if (h1 > (uint64_t)(i + 1) * LAZY_CHUNK)
			h1 = (uint64_t)(i + 1) * LAZY_CHUNK;
		if (h1 > lz->size)
			h1 = lz->size;
		if (!fill_range(z, lz, h0, h1))
			lazy_resolve(lc, base + h0, (h1 - h0 + 4095) & ~4095ull);
		off = h1;
	}
	if (fill(z, lz, i, off)) {
		lazy_poison_chunk(z, lc, lz, base, i, true);
		return true;
	}
	lazy_resolve(lc, a, len);
	/* A reader going through in order: the thread fills the chunks after this one
	 * between faults, so that the reader's next ones find them (background()). */
	if (z->first && i > 0 && lz->chunk[i - 1] == CH_FILLED) {
		lz->ahead = i + 1;
		lz->ahead_end = i + 1 + LAZY_FILL_AHEAD < lz->nchunks ? i + 1 + LAZY_FILL_AHEAD :
									lz->nchunks;
	}
	return true;
}

void lazy_net_ask(struct lazyd *z, struct lazy *lz, uint64_t off)
{
	uint32_t k = (uint32_t)(off / KRAY_CHUNK);

	if (lz->asked[k] || lz->nwants == LAZY_WANTS_MAX)
		return; /* (asked already; or many are: the stream brings the rest in order) */
	lz->asked[k] = 1;
	lz->wants[lz->nwants++] = k;
	z->kick_loop = true;
}

void lazy_wake_readers(struct lazyd *z, struct lazy *lz, uint64_t off, uint64_t end)
{
	for (struct lz_conn *lc = z->conns; lc; lc = lc->next)
		for (struct lz_range *rg = lc->ranges; rg && !lc->dead; rg = rg->next)
			if (rg->lz == lz && off < rg->len)
				lazy_wake_range(lc, rg->base + off,
						(end < rg->len ? end : rg->len) - off);
}

void lazy_net_fail_locked(struct lazyd *z, struct lazy *lz, const char *why)
{
	if (!lz->broken)
		snprintf(lz->why, sizeof(lz->why), "%s", why);
	lz->broken = true;
	if (lz->minor) { /* the object's own memfd: what never came is poisoned instead */
		for (struct lz_conn *lc = z->conns; lc; lc = lc->next)
			for (struct lz_range *rg = lc->ranges; rg && !lc->dead; rg = rg->next)
				for (uint32_t i = 0; rg->lz == lz && i < lz->nchunks; i++)
					if (lz->chunk[i] != CH_FILLED)
						lazy_poison_chunk(z, lc, lz, rg->base, i, true);
		lazy_wake_readers(z, lz, 0, (lz->size + 4095) & ~4095ull);
		return;
	}
	/* Past its end every touch is SIGBUS, before the userfaultfd is asked (shmem). */
	if (ftruncate(lz->memfd, 0))
		log_warn_ratelimited("lazy get: cannot fail its readers: %s", strerror(errno));
	lazy_wake_readers(z, lz, 0, (lz->size + 4095) & ~4095ull);
}

static void read_faults(struct lazyd *z, struct lz_conn *lc)
{
	struct uffd_msg m[16];

	for (;;) {
		ssize_t n = read(lc->uffd, m, sizeof(m));

		if (n <= 0)
			return; /* EAGAIN: all read */
		for (size_t k = 0; k < (size_t)n / sizeof(m[0]); k++) {
			uint64_t addr = m[k].arg.pagefault.address & ~4095ull;

			if (m[k].event != UFFD_EVENT_PAGEFAULT || fault(z, lc, addr))
				continue;
			if (lc->npending < LAZY_PENDING_MAX) {
				if (!(lc->npending & (lc->npending - 1)) || !lc->npending) {
					unsigned cap = lc->npending ? lc->npending * 2 : 8;
					uint64_t *p = realloc(lc->pending, cap * sizeof(*p));

					if (!p)
						continue;
					lc->pending = p;
				}
				lc->pending[lc->npending++] = addr;
			}
		}
	}
}

/* Faults that came before the KRAY_MSG_LAZY_MAP that names their range. */
static void retry_pending(struct lazyd *z, struct lz_conn *lc)
{
	unsigned keep = 0;

	for (unsigned i = 0; i < lc->npending; i++)
		if (!fault(z, lc, lc->pending[i]))
			lc->pending[keep++] = lc->pending[i];
	lc->npending = keep;
}

static void drop_ranges_of(struct lazyd *z, struct lazy *lz)
{
	for (struct lz_conn *lc = z->conns; lc; lc = lc->next)
		for (struct lz_range **pp = &lc->ranges; *pp;) {
			struct lz_range *rg = *pp;

			if (rg->lz != lz) {
				pp = &rg->next;
				continue;
			}
			*pp = rg->next;
			free(rg);
			lz->nranges--;
		}
}

/* Readers of lz whose mappings take minor faults would wait forever on a page nobody
 * resolves once lz is gone: the pages that are in are mapped for them now, and what is not
 * in is poisoned (SIGBUS). */
static void settle_range(struct lazyd *z, struct lz_conn *lc, struct lz_range *rg)
{
	struct lazy *lz = rg->lz;
	uint64_t last = (lz->size + 4095) / 4096;

	for (uint64_t p = 0, q; p < last; p = q) {
		for (q = p; q < last && lazy_have(lz, q) == lazy_have(lz, p); q++)
			;
		if (lazy_have(lz, p))
			lazy_resolve(lc, rg->base + p * 4096, (q - p) * 4096);
		else
			poison(z, lc, lz, rg->base + p * 4096, (q - p) * 4096, false);
	}
}

static void settle_minor_readers(struct lazyd *z, struct lazy *lz)
{
	for (struct lz_conn *lc = z->conns; lc && lz->nranges; lc = lc->next)
		for (struct lz_range *rg = lc->ranges; rg && lc->minor && !lc->dead; rg = rg->next)
			if (rg->lz == lz)
				settle_range(z, lc, rg);
}

static void lazy_free(struct lazyd *z, struct lazy *lz)
{
	for (struct lazy **pp = &z->all; *pp; pp = &(*pp)->next)
		if (*pp == lz) {
			*pp = lz->next;
			break;
		}
	settle_minor_readers(z, lz);
	drop_ranges_of(z, lz);
	if (lz->map)
		munmap(lz->map, lz->size);
	/* The object's own memfd (MINOR mode), sealed against future writes only while lazy
	 * readers mapped it: sealed for good now that they are gone (EBUSY: a reader still
	 * maps it after all; it stays F_SEAL_FUTURE_WRITE). */
	if (lz->minor && !lz->room && lz->memfd >= 0 && !lz->broken && lz->nfilled == lz->nchunks &&
	    fcntl(lz->memfd, F_GET_SEALS) >= 0 &&
	    (fcntl(lz->memfd, F_GET_SEALS) & F_SEAL_FUTURE_WRITE) &&
	    !(fcntl(lz->memfd, F_GET_SEALS) & F_SEAL_SEAL) &&
	    fcntl(lz->memfd, F_ADD_SEALS, STORE_SEALS) && errno != EBUSY)
		log_warn_ratelimited("lazy get: sealing an object: %s", strerror(errno));
	if (lz->memfd >= 0)
		close(lz->memfd);
	if (lz->spill >= 0)
		close(lz->spill);
	free(lz->chunk);
	free(lz->have);
	free(lz->asked);
	free(lz);
}

/* lz is whole: krayd's writable mapping goes (F_SEAL_WRITE refuses while it is there) and
 * the memfd is sealed, for the loop to promote.  Readers' mappings count as writable too (a
 * userfaultfd needs VM_MAYWRITE): while one lasts the seal fails with EBUSY, and the memfd
 * stays a lazy one (whole: no fault comes) until the readers let go (store_lazy_settle()).
 * Locked. */
static void seal_whole(struct lazy *lz)
{
	if (lz->map) {
		munmap(lz->map, lz->size);
		lz->map = NULL;
	}
	if (!fcntl(lz->memfd, F_ADD_SEALS, STORE_SEALS)) {
		lz->sealed = true;
		return;
	}
	if (errno == EBUSY)
		return;
	snprintf(lz->why, sizeof(lz->why), "sealing it: %s", strerror(errno));
	lz->broken = true;
}

/* Background work, one chunk per object per call: chunks ahead of a sequential reader, and
 * detached objects that readers still map filled to the end (then freed); returns whether
 * more is left.  Faults are served between calls. */
static bool background(struct lazyd *z, struct krayd *d)
{
	bool more = false, kick = false;

	for (struct lazy *lz = z->all, *next; lz; lz = next) {
		next = lz->next;
		if (lz->o && lz->map && lz->nfilled == lz->nchunks && !lz->broken) {
			seal_whole(lz);
			kick = lz->sealed;
		}
		if (lz->o && lz->broken)
			kick = true;
		while (!lz->detached && lz->ahead < lz->ahead_end &&
		       lz->chunk[lz->ahead] == CH_FILLED)
			lz->ahead++;
		if (!lz->detached && lz->ahead < lz->ahead_end && !lz->broken && lz->map) {
			fill(z, lz, lz->ahead++, 0);
			more = true;
			continue;
		}
		if (!lz->detached)
			continue;
		if (lz->minor && lz->nranges && !lz->broken)
			continue; /* its readers' faults are resolved until they let go */
		if (lz->nranges && !lz->broken && lz->nfilled < lz->nchunks && !lz->net) {
			uint32_t i = 0;

			while (lz->chunk[i] != CH_MISSING)
				i++;
			fill(z, lz, i, 0);
			more = true;
			continue;
		}
		if (lz->nranges && lz->broken && !lz->net) /* what cannot be read: SIGBUS */
			for (struct lz_conn *lc = z->conns; lc; lc = lc->next)
				for (struct lz_range *rg = lc->ranges; rg; rg = rg->next)
					for (uint32_t i = 0; rg->lz == lz && i < lz->nchunks; i++)
						if (lz->chunk[i] != CH_FILLED)
							lazy_poison_chunk(z, lc, lz, rg->base, i,
									  true);
		lazy_free(z, lz); /* whole (or failed) and nobody waits on the thread for it */
	}
	if (kick)
		store_io_kick(d);
	return more;
}

static void reap_conns(struct lazyd *z)
{
	for (struct lz_conn **pp = &z->conns; *pp;) {
		struct lz_conn *lc = *pp;

		if (!lc->dead) {
			pp = &lc->next;
			continue;
		}
		*pp = lc->next;
		epoll_ctl(z->epfd, EPOLL_CTL_DEL, lc->uffd, NULL);
		close(lc->uffd);
		free(lc->pending);
		free(lc);
	}
}

static void *lazy_thread(void *arg)
{
	struct krayd *d = arg;
	struct lazyd *z = d->lazy;
	bool busy = false, kick;

	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(z->epfd, ev, 16, busy ? 0 : -1);

		pthread_mutex_lock(&z->lock);
		if (z->stop) {
			pthread_mutex_unlock(&z->lock);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct lz_conn *lc = ev[i].data.ptr;

			if (!lc) {
				uint64_t v;

				if (read(z->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_warn_ratelimited("lazy restore: eventfd: %s",
							     strerror(errno));
				continue;
			}
			for (struct lz_conn *c = z->conns; c; c = c->next)
				if (c == lc && !lc->dead)
					read_faults(z, lc);
		}
		for (struct lz_conn *lc = z->conns; lc; lc = lc->next)
			if (lc->npending && !lc->dead)
				retry_pending(z, lc);
		reap_conns(z);
		busy = background(z, d);
		kick = z->kick_loop;
		z->kick_loop = false;
		pthread_mutex_unlock(&z->lock);
		if (kick)
			store_io_kick(d); /* chunks to ask for first: store_lazy_net_asks() */
	}
	return NULL;
}

/* A userfaultfd for krayd's own mappings, with its API handshake; -errno if none. */
static int own_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY), r;

	if (u < 0 && errno == EINVAL) /* before Linux 5.11 */
		u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u < 0)
		return -errno;
	if (ioctl(u, UFFDIO_API, &api)) {
		r = -errno;
		close(u);
		return r;
	}
	return u;
}

int store_lazy_start(struct krayd *d)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct lazyd *z;
	int u;

	if (!d->cfg.lazy_restore || !d->sio) {
		log_info("lazy restore off (%s)",
			 !d->cfg.lazy_restore ? "lazy-restore = off" : "spill-thread = off");
		return 0;
	}
	/* krayd's own userfaultfd (its mappings are never touched, only filled): a process
	 * that may not use userfaultfd cannot use it for its readers either. */
	u = own_uffd();
	if (u < 0) {
		log_info("lazy restore off: userfaultfd: %s (vm.unprivileged_userfaultfd?)",
			 strerror(-u));
		return 0;
	}
	z = calloc(1, sizeof(*z));
	if (!z) {
		close(u);
		return -ENOMEM;
	}
	z->uffd = u;
	{
		struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MINOR_SHMEM };
		int m = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

		z->minor_kernel = m >= 0 && !ioctl(m, UFFDIO_API, &api);
		if (m >= 0)
			close(m);
	}
	z->minor = z->minor_kernel && d->cfg.lazy_minor;
	pthread_mutex_init(&z->lock, NULL);
	z->poison_ok = true;
	/* The head of a fault: whole pages, at most a chunk (a chunk's size: the old order). */
	z->first = d->cfg.lazy_first_read < LAZY_CHUNK ?
			   (d->cfg.lazy_first_read + 4095) & ~4095ull :
			   0;
	z->bounce = malloc(LAZY_CHUNK);
	z->epfd = epoll_create1(EPOLL_CLOEXEC);
	z->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!z->bounce || z->epfd < 0 || z->efd < 0 ||
	    epoll_ctl(z->epfd, EPOLL_CTL_ADD, z->efd, &ev))
		goto err;
	d->lazy = z;
	if (pthread_create(&z->thread, NULL, lazy_thread, d)) {
		d->lazy = NULL;
		goto err;
	}
	log_info("lazy restore on: spilled objects are read back as they are touched; lazy gets "
		 "from other nodes in %s",
		 z->minor	 ? "MINOR mode (the object's own memfd, UFFDIO_CONTINUE)" :
		 z->minor_kernel ? "MISSING mode (a second memfd: lazy-minor = off)" :
				   "MISSING mode (a second memfd: no shmem minor faults)");
	return 0;
err:
	log_warn("lazy restore off: %s", strerror(errno));
	if (z->epfd >= 0)
		close(z->epfd);
	if (z->efd >= 0)
		close(z->efd);
	close(z->uffd);
	free(z->bounce);
	pthread_mutex_destroy(&z->lock);
	free(z);
	return 0;
}

void store_lazy_stop(struct krayd *d)
{
	struct lazyd *z = d->lazy;

	if (!z)
		return;
	pthread_mutex_lock(&z->lock);
	z->stop = true;
	pthread_mutex_unlock(&z->lock);
	wake_thread(z);
	pthread_join(z->thread, NULL);
	/* Readers left (krayd stops): what they have not touched cannot come any more. */
	for (struct lazy *lz = z->all; lz; lz = lz->next)
		if (lz->nranges && lz->nfilled < lz->nchunks) {
			if (lz->net)
				lazy_net_fail_locked(z, lz, "krayd stopped");
			lz->broken = true;
			lz->detached = true;
			lz->nfilled = lz->nchunks; /* background() poisons, then frees */
		}
	pthread_mutex_lock(&z->lock);
	background(z, d);
	while (z->all)
		lazy_free(z, z->all);
	pthread_mutex_unlock(&z->lock);
	for (struct lz_conn *lc = z->conns; lc; lc = lc->next)
		lc->dead = true;
	reap_conns(z);
	close(z->epfd);
	close(z->efd);
	close(z->uffd);
	free(z->bounce);
	pthread_mutex_destroy(&z->lock);
	free(z);
	d->lazy = NULL;
}

/* A pidfd of the process at the other end of c (the worker krayd started, or the peer of an
 * accepted unix socket), or -errno. */
static int peer_pidfd(struct conn *c)
{
	socklen_t len = sizeof(int);
	int pfd = -1;

	if (c->worker)
		return c->worker->pid > 0 ? (int)syscall(SYS_pidfd_open, c->worker->pid, 0) :
					    -ESRCH;
	if (c->spawned)
		return -ESRCH;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &pfd, &len))
		return -errno;
	return pfd;
}

#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif

/* Whether userfaultfd fd (a reader's) was made with shmem minor faults: then libkray
 * registers its lazy mappings in MISSING and MINOR mode.  Its fdinfo says ("API:\t<api>:
 * <features>:<ioctls>", hex). */
static bool uffd_has_minor(int fd)
{
	char path[64], line[128];
	unsigned long long api, ioctls;
	unsigned features;
	bool minor = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "API:\t%llx:%x:%llx", &api, &features, &ioctls) == 3)
			minor = features & UFFD_FEATURE_MINOR_SHMEM;
	fclose(f);
	return minor;
}

/* Whether fd is a userfaultfd. */
static bool is_uffd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "anon_inode:[userfaultfd]");
}

void store_lazy_conn(struct conn *c, uint32_t uffd_no)
{
	struct lazyd *z = c->d->lazy;
	struct epoll_event ev = { .events = EPOLLIN };
	struct lz_conn *lc = c->lazy;
	int pfd, fd;

	if (!z || !uffd_no || (lc && lc->no == uffd_no) || c->lazy_refused)
		return;
	pfd = peer_pidfd(c);
	fd = pfd >= 0 ? (int)syscall(SYS_pidfd_getfd, pfd, (int)(uffd_no - 1), 0) : -1;
	if (fd < 0 || !is_uffd(fd)) {
		log_debug("lazy restore: no userfaultfd from client %u (%s): eager restores", c->id,
			  fd < 0 ? strerror(errno) : "not a userfaultfd");
		if (fd >= 0)
			close(fd);
		if (pfd >= 0)
			close(pfd);
		c->lazy_refused = true;
		return;
	}
	close(pfd);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) || fcntl(fd, F_SETFD, FD_CLOEXEC)) {
		close(fd);
		c->lazy_refused = true;
		return;
	}
	pthread_mutex_lock(&z->lock);
	if (lc) /* a new userfaultfd: the old one's ranges are gone with it */
		lc->dead = true;
	lc = calloc(1, sizeof(*lc));
	if (lc) {
		lc->uffd = fd;
		lc->no = uffd_no;
		lc->minor = z->minor_kernel && uffd_has_minor(fd);
		ev.data.ptr = lc;
		if (epoll_ctl(z->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			free(lc);
			lc = NULL;
		}
	}
	if (lc) {
		lc->next = z->conns;
		z->conns = lc;
	} else {
		close(fd);
		c->lazy_refused = true;
	}
	c->lazy = lc;
	pthread_mutex_unlock(&z->lock);
	wake_thread(z);
}

struct lazy *lazy_make(struct lazyd *z, uint64_t size, bool minor)
{
	struct lazy *lz = calloc(1, sizeof(*lz));

	if (!lz)
		return NULL;
	lz->memfd = lz->spill = -1;
	lz->size = size;
	lz->nchunks = (uint32_t)((size + LAZY_CHUNK - 1) / LAZY_CHUNK);
	lz->chunk = calloc(lz->nchunks, 1);
	lz->have = calloc((size / 4096 + 64) / 64, sizeof(*lz->have));
	/* Fresh, never the pool's: a pre-faulted page would never fault. */
	lz->memfd = memfd_create("kray-lazy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (!lz->chunk || !lz->have || lz->memfd < 0 || ftruncate(lz->memfd, (off_t)size))
		goto err;
	lz->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, lz->memfd, 0);
	if (lz->map == MAP_FAILED) {
		lz->map = NULL;
		goto err;
	}
	if (minor) {
		/* MINOR mode: krayd's mapping is a plain one, read into straight from the file;
		 * a reader sees a page only once it is in and resolved (UFFDIO_CONTINUE), so it
		 * may be a huge page (thp). */
		madvise(lz->map, size, MADV_HUGEPAGE);
		lz->minor = lz->room = true;
		return lz;
	}
	/* Missing pages of krayd's own mapping are filled by UFFDIO_COPY only (krayd never
	 * touches them): see the top of this file. */
	struct uffdio_register reg = { .range = { .start = (uint64_t)(uintptr_t)lz->map,
						  .len = (size + 4095) & ~4095ull },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(z->uffd, UFFDIO_REGISTER, &reg)) {
		log_warn_ratelimited("lazy restore: registering its memory: %s", strerror(errno));
		munmap(lz->map, size);
		lz->map = NULL;
		goto err;
	}
	return lz;
err:
	if (lz->memfd >= 0)
		close(lz->memfd);
	free(lz->chunk);
	free(lz->have);
	free(lz);
	return NULL;
}

void lazy_link(struct lazyd *z, struct lazy *lz)
{
	pthread_mutex_lock(&z->lock);
	lz->next = z->all;
	z->all = lz;
	pthread_mutex_unlock(&z->lock);
}

struct lazy *store_lazy_new(struct krayd *d, struct obj *o, const char *path, bool minor)
{
	struct lazyd *z = d->lazy;
	struct lazy *lz;
	struct stat st;
	int spill = open(path, O_RDONLY | O_CLOEXEC);

	/* (the eager restore says what is wrong with the file) */
	if (spill < 0)
		return NULL;
	minor = minor && z->minor;
	if (fstat(spill, &st) || (uint64_t)st.st_size != o->size ||
	    !(lz = lazy_make(z, o->size, minor))) {
		close(spill);
		return NULL;
	}
	lz->spill = spill;
	/* No readahead of the kernel's own (read_ahead_kb may be megabytes: a fault's head
	 * would wait for it); fill() asks for what comes next (WILLNEED). */
	posix_fadvise(lz->spill, 0, 0, POSIX_FADV_RANDOM);
	lz->o = o;
	lazy_link(z, lz);
	pthread_mutex_lock(&z->lock);
	if (minor)
		z->spill_minor++;
	else
		z->spill_missing++;
	pthread_mutex_unlock(&z->lock);
	return lz;
}

int store_lazy_fd(const struct lazy *lz)
{
	return lz->memfd;
}

uint64_t store_lazy_size(const struct lazy *lz)
{
	return lz->size;
}

bool store_lazy_takes(const struct lazy *lz, const struct conn *c)
{
	return !lz->minor || (c->lazy && c->lazy->minor);
}

bool store_conn_lazy_minor(const struct conn *c)
{
	return c->lazy && c->lazy->minor;
}

uint64_t store_lazy_room(const struct lazy *lz)
{
	return !lz->minor || lz->room ? lz->size : 0;
}

bool store_lazy_in_place(const struct lazy *lz)
{
	return lz->minor && !lz->room;
}

int store_lazy_describe(struct krayd *d, char *buf, size_t len)
{
	struct lazyd *z = d->lazy;
	uint64_t mi = 0, mc = 0, ns = 0, puts = 0, si = 0, sc = 0;

	if (z) {
		pthread_mutex_lock(&z->lock);
		mi = z->net_minor;
		mc = z->net_missing;
		ns = z->net_put_ns;
		puts = z->net_puts;
		si = z->spill_minor;
		sc = z->spill_missing;
		pthread_mutex_unlock(&z->lock);
	}
	return snprintf(buf, len,
			"lazy gets from other nodes: mode %s; %llu in place (MINOR), %llu through "
			"a second memfd (MISSING); the loop's puts: %llu, %.3f ms; lazy restores: "
			"%llu MINOR, %llu MISSING\n",
			!z	 ? "off" :
			z->minor ? "minor" :
				   "missing",
			(unsigned long long)mi, (unsigned long long)mc, (unsigned long long)puts,
			(double)ns / 1e6, (unsigned long long)si, (unsigned long long)sc);
}

/* Reader c's range [addr, addr + len) of lz, from now on; lz linked first when link (a
 * late reader's, store_lazy_mapped_late()).  0 or -ENOMEM. */
static int add_range(struct conn *c, struct lazy *lz, const struct kray_oid *id, uint64_t addr,
		     uint64_t len, bool link)
{
	struct lazyd *z = c->d->lazy;
	struct lz_range *rg = calloc(1, sizeof(*rg));

	if (!rg)
		return -ENOMEM;
	*rg = (struct lz_range){ .lz = lz, .id = *id, .base = addr, .len = len };
	pthread_mutex_lock(&z->lock);
	if (link) {
		lz->next = z->all;
		z->all = lz;
	}
	rg->next = c->lazy->ranges;
	c->lazy->ranges = rg;
	lz->nranges++;
	pthread_mutex_unlock(&z->lock);
	wake_thread(z); /* faults that came first are retried */
	return 0;
}

int store_lazy_mapped(struct conn *c, struct lazy *lz, const struct kray_oid *id, uint64_t addr,
		      uint64_t len)
{
	if (!c->d->lazy || !c->lazy)
		return 0; /* (no userfaultfd: it never sent lazily) */
	if (len < lz->size || len - lz->size >= 4096 || (addr & 4095))
		return -EINVAL;
	return add_range(c, lz, id, addr, len, false);
}

int lazy_mapped_late(struct conn *c, struct lazy *lz, bool whole, const struct kray_oid *id,
		     uint64_t addr, uint64_t len)
{
	struct lazyd *z = c->d->lazy;
	struct lz_conn *lc = c->lazy;
	unsigned keep = 0;

	/* Served as if it had come in time (sealed for good when it lets go). */
	if (lz && !add_range(c, lz, id, addr, len, true))
		return 0;
	if (lz) { /* out of memory: mapped whole now (and never sealed for good) */
		pthread_mutex_lock(&z->lock);
		lazy_free(z, lz);
		pthread_mutex_unlock(&z->lock);
	}
	/* Mapped whole, or lost: SIGBUS where the reader touches it.  (Only the loop marks lc
	 * dead and only the thread frees it: no lock for the ioctls.) */
	len = (len + 4095) & ~4095ull;
	if (whole) {
		lazy_resolve(lc, addr, len);
	} else {
		struct uffdio_poison p = { .range = { .start = addr, .len = len } };

		if (ioctl(lc->uffd, UFFDIO_POISON, &p) && errno != EEXIST && errno != ESRCH)
			log_warn_ratelimited("lazy get: cannot fail a reader of a lost object: %s",
					     strerror(errno));
	}
	pthread_mutex_lock(&z->lock);
	for (unsigned i = 0; i < lc->npending; i++) /* (those faults are resolved now) */
		if (lc->pending[i] < addr || lc->pending[i] - addr >= len)
			lc->pending[keep++] = lc->pending[i];
	lc->npending = keep;
	pthread_mutex_unlock(&z->lock);
	return 0;
}

void store_lazy_unmapped(struct conn *c, const struct kray_oid *id)
{
	struct lazyd *z = c->d->lazy;

	if (!z || !c->lazy)
		return;
	pthread_mutex_lock(&z->lock);
	for (struct lz_range **pp = &c->lazy->ranges; *pp;) {
		struct lz_range *rg = *pp;

		if (memcmp(&rg->id, id, sizeof(*id))) {
			pp = &rg->next;
			continue;
		}
		*pp = rg->next;
		rg->lz->nranges--;
		free(rg);
	}
	pthread_mutex_unlock(&z->lock);
	wake_thread(z); /* a detached object nobody maps any more is freed */
}

void store_lazy_conn_gone(struct conn *c)
{
	struct lazyd *z = c->d->lazy;
	struct lz_conn *lc = c->lazy;

	if (!z || !lc)
		return;
	pthread_mutex_lock(&z->lock);
	while (lc->ranges) {
		struct lz_range *rg = lc->ranges;

		/* A process that lives on without its connection (kray_shutdown() with values
		 * kept) gets SIGBUS, not zeros, where it touches what was never read. */
		if (lc->minor) /* (no one resolves its minor faults from now on) */
			settle_range(z, lc, rg);
		else
			for (uint32_t i = 0; i < rg->lz->nchunks; i++)
				if (rg->lz->chunk[i] != CH_FILLED)
					lazy_poison_chunk(z, lc, rg->lz, rg->base, i, false);
		lc->ranges = rg->next;
		rg->lz->nranges--;
		free(rg);
	}
	lc->dead = true;
	pthread_mutex_unlock(&z->lock);
	c->lazy = NULL;
	wake_thread(z);
}

void store_lazy_detach(struct krayd *d, struct lazy *lz)
{
	struct lazyd *z = d->lazy;

	pthread_mutex_lock(&z->lock);
	if (lz->net && lz->nfilled < lz->nchunks) /* nothing more comes for it */
		lazy_net_fail_locked(z, lz, "its transfer from another node stopped");
	lz->o = NULL;
	lz->detached = true; /* filled for the readers left, then freed (background()) */
	pthread_mutex_unlock(&z->lock);
	wake_thread(z);
}

/* Sealed lz's memfd, for the loop to promote: every page is there, no fault comes any more.
 * The spill file is closed now, so that the promotion's unlink gives its disk space back at
 * once (a spill that follows must find it).  Locked. */
static int take_whole(struct lazyd *z, struct lazy *lz)
{
	int fd = lz->memfd;

	lz->memfd = -1;
	if (lz->spill >= 0) {
		close(lz->spill);
		lz->spill = -1;
	}
	drop_ranges_of(z, lz);
	lz->o = NULL;
	lz->detached = true;
	return fd;
}

void store_lazy_drain(struct krayd *d,
		      void (*lost)(struct krayd *d, struct obj *o, const char *why),
		      void (*whole)(struct krayd *d, struct obj *o, int fd))
{
	struct lazyd *z = d->lazy;

	if (!z)
		return;
	for (;;) {
		struct obj *o = NULL;
		char why[192];
		int fd = -1;

		pthread_mutex_lock(&z->lock);
		d->st.restored_total += z->restored;
		z->restored = 0;
		for (struct lazy *lz = z->all; lz && !o; lz = lz->next) {
			if (!lz->o)
				continue;
			if (lz->broken) {
				snprintf(why, sizeof(why), "%s", lz->why);
				o = lz->o;
				lz->o = NULL;
				lz->detached = true;
			} else if (lz->sealed) {
				o = lz->o;
				fd = take_whole(z, lz);
			}
		}
		pthread_mutex_unlock(&z->lock);
		if (!o)
			return;
		wake_thread(z);
		if (fd >= 0)
			whole(d, o, fd);
		else
			lost(d, o, why);
	}
}

int store_lazy_settle(struct krayd *d, struct lazy *lz)
{
	struct lazyd *z = d->lazy;
	int fd = -1;

	pthread_mutex_lock(&z->lock);
	if (!lz->map && lz->nfilled == lz->nchunks && !lz->sealed && !lz->broken)
		seal_whole(lz); /* nobody maps it now: it may be sealed */
	if (lz->sealed && lz->o)
		fd = take_whole(z, lz);
	pthread_mutex_unlock(&z->lock);
	if (fd >= 0)
		wake_thread(z); /* (it frees lz) */
	return fd;
}

void store_lazy_status(struct krayd *d)
{
	struct lazyd *z = d->lazy;

	if (!z)
		return;
	pthread_mutex_lock(&z->lock);
	d->st.restored_total += z->restored;
	z->restored = 0;
	pthread_mutex_unlock(&z->lock);
}
