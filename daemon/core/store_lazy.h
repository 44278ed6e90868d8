/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: lazy memfds filled through userfaultfd, shared by store_lazy.c (the fault
 * thread; spilled objects read back from their spill file) and store_lazy_net.c (objects
 * that come from another node, filled as their chunks arrive).  Private to those two.
 */
#ifndef KRAYD_CORE_STORE_LAZY_H
#define KRAYD_CORE_STORE_LAZY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/wire.h"

#define LAZY_CHUNK (2ull << 20) /* read per fault: ~40-100 us per fault, so never 4 KiB */
#define LAZY_AHEAD (8ull << 20) /* the disk reads ahead of a fault this far (WILLNEED) */
#define LAZY_FILL_AHEAD 8 /* chunks filled ahead of a sequential reader's fault */
#define LAZY_PENDING_MAX 4096 /* faults of a connection not yet matched to a range */
#define LAZY_WANTS_MAX 64 /* a net lazy memfd's chunks asked for and not yet sent for */

enum { CH_MISSING, CH_FILLED, CH_BAD };

struct lazy {
	struct obj *o; /* the loop's; NULL once detached */
	int memfd, spill;
	uint64_t size;
	char *map; /* krayd's writable mapping of memfd; NULL once promoted or freed */
	uint8_t *chunk; /* CH_* per LAZY_CHUNK */
	uint64_t *have; /* a bit per page put in (the thread's; the head of a fault comes first) */
	uint32_t nchunks, nfilled;
	uint32_t ahead, ahead_end; /* chunks filled ahead of a sequential reader (the thread's) */
	unsigned nranges;
	bool broken; /* a chunk could not be read */
	bool sealed; /* whole, unmapped and sealed: the loop promotes it */
	bool detached; /* the object let go: filled in the background, then freed */
	bool net; /* filled by a transfer from another node (store_lazy_net.c), not a file */
	/* net, MINOR mode: memfd is (a dup of) the object's own memfd, written in place by the
	 * receive, or through map (krayd's plain mapping, made when a page comes from another
	 * memfd: a new copy after the holder died); readers' faults are resolved with
	 * UFFDIO_CONTINUE over the pages that are in.  Only readers whose userfaultfd has
	 * minor faults map it (store_lazy_takes()). */
	bool minor;
	bool room; /* minor: its memfd is counted in the store (a lazy restore's; or a net one's
		    * that is not the object's any more) */
	uint64_t ino; /* minor: memfd's inode (a source fd with the same one is in place) */
	/* net: the object's id; per KRAY_CHUNK of the transfer, whether a reader's fault asked
	 * for it first; and those chunks (their numbers) for the loop to ask the sender for
	 * (the thread adds, store_lazy_net_asks() takes) */
	struct kray_oid id;
	uint8_t *asked;
	uint32_t wants[LAZY_WANTS_MAX];
	unsigned nwants;
	char why[192];
	struct lazy *next; /* lzd->all */
};

struct lz_range {
	struct lz_range *next;
	struct lazy *lz;
	struct kray_oid id;
	uint64_t base, len;
};

struct lz_conn {
	struct lz_conn *next;
	int uffd; /* krayd's copy of the reader's userfaultfd */
	uint32_t no; /* its number in the reader, + 1 */
	bool dead; /* the connection went: the thread closes uffd */
	bool minor; /* uffd has shmem minor faults: the reader registers MISSING|MINOR, and its
		     * faults on pages that are in are resolved with UFFDIO_CONTINUE */
	struct lz_range *ranges;
	uint64_t *pending; /* fault addresses that matched no range yet */
	unsigned npending;
};

struct lazyd {
	pthread_mutex_t lock;
	pthread_t thread;
	int epfd, efd;
	int uffd; /* krayd's own: its mappings of lazy memfds are filled with UFFDIO_COPY */
	uint8_t *bounce; /* LAZY_CHUNK: a chunk read from disk (the thread's) */
	uint64_t first; /* lazy-first-read, in pages' bytes: the head of a fault (0: none) */
	bool stop, poison_ok;
	bool minor_kernel; /* the kernel has shmem minor faults (UFFD_FEATURE_MINOR_SHMEM) */
	bool minor; /* and lazy-minor = auto: net lazy memfds in MINOR mode */
	uint64_t net_minor, net_missing; /* net lazy memfds made in MINOR / MISSING mode */
	uint64_t spill_minor, spill_missing; /* and lazy restores */
	uint64_t net_put_ns, net_puts; /* the loop's time in store_lazy_net_put(), and calls */
	bool kick_loop; /* a net lazy memfd has chunks to ask for: the loop is woken */
	struct lz_conn *conns;
	struct lazy *all;
	uint64_t restored; /* bytes read back from disk by faults */
	uint64_t faults;
};

/* store_lazy_mapped_late()'s end: lz (whole, not linked yet) serves reader c's range from
 * now on; without lz, the range is mapped at once (whole) or poisoned.  0. */
int lazy_mapped_late(struct conn *c, struct lazy *lz, bool whole, const struct kray_oid *id,
		     uint64_t addr, uint64_t len);

static inline bool lazy_have(const struct lazy *lz, uint64_t page)
{
	return lz->have[page / 64] >> (page % 64) & 1;
}

/* Puts len bytes (whole pages) of src at dst, in krayd's registered mapping of a lazy memfd:
 * each page enters the page cache whole (UFFDIO_COPY).  Returns 0 or an errno. */
int lazy_put_pages(struct lazyd *z, char *dst, const uint8_t *src, uint64_t len);
/* A lazy memfd of size bytes, mapped by krayd and registered with its userfaultfd; not
 * linked yet (lazy_link()).  NULL on failure. */
struct lazy *lazy_make(struct lazyd *z, uint64_t size, bool minor);
/* lz joins z->all: the thread serves its readers' faults from now on. */
void lazy_link(struct lazyd *z, struct lazy *lz);
/* Wakes the faults of every reader of lz in [off, end) (object offsets).  Locked. */
void lazy_wake_readers(struct lazyd *z, struct lazy *lz, uint64_t off, uint64_t end);
/* lz (net: store_lazy_net.c) cannot be whole any more (why): its memfd is cut to nothing, so
 * that every touch of what is not in gets SIGBUS, and its readers' faults are woken.
 * Locked. */
void lazy_net_fail_locked(struct lazyd *z, struct lazy *lz, const char *why);
/* A reader faulted at offset off of net lz, which has not come yet: its KRAY_CHUNK is asked
 * for first (once), by the loop (store_lazy_net_asks()).  Locked. */
void lazy_net_ask(struct lazyd *z, struct lazy *lz, uint64_t off);
/* Wakes reader lc's faults in [addr, addr + len). */
void lazy_wake_range(struct lz_conn *lc, uint64_t addr, uint64_t len);
/* Lets reader lc's faults in [addr, addr + len), whose pages are all in, go on: mapped with
 * UFFDIO_CONTINUE where its mappings are registered for minor faults (a wake alone would
 * bring the fault back as a minor one), else woken. */
void lazy_resolve(struct lz_conn *lc, uint64_t addr, uint64_t len);
/* Makes what reader lc (its range of lz at base) lacks of LAZY_CHUNK i fault with SIGBUS. */
void lazy_poison_chunk(struct lazyd *z, struct lz_conn *lc, struct lazy *lz, uint64_t base,
		       uint32_t i, bool or_truncate);

#endif
