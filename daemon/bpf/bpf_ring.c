// SPDX-License-Identifier: Apache-2.0
/*
 * krayd's side of the fast path's shared-memory ring (`fastpath-ring = on`,
 * include/uapi/kray_ring.h, docs/fastpath.md "The ring").
 *
 * krayd is on no ring call's path either.  Its jobs: make the memfd and hand it out with
 * the `fast_workers` map (bpf_fast.c's FAST_OPEN reply), start a new worker's request
 * area from zero (kring_worker_new), wake a worker that sleeps on the ring when it has
 * sent it frames (the worker then sleeps in futex_waitv, not in poll on its socket), and
 * tell a driver that waits on the ring that its worker died, in its result area
 * (FAST_LOST, as bpf_fast.c's tell_lost() does on the socket).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../include/uapi/kray_ring.h"
#include "bpf/bpf_ring.h"
#include "core/krayd.h"
#include "core/conn.h"
#include "core/log.h"

struct kring {
	int memfd, map_fd;
	uint8_t *base;
};

static struct kray_ring_worker *warea(struct kring *r, unsigned slot)
{
	return (struct kray_ring_worker *)(r->base + KRAY_RING_WORKER_OFF(slot));
}

static struct kray_ring_driver *darea(struct kring *r, unsigned slot)
{
	return (struct kray_ring_driver *)(r->base + KRAY_RING_DRIVER_OFF(slot));
}

static void wake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

struct kring *kring_start(struct krayd *d, int map_fd)
{
	struct kring *r;

	if (!d->cfg.fastpath_ring)
		return NULL;
	/* Where the ring cannot be, the fast path's sockets carry the calls (each says why). */
	if (d->cfg.worker_user[0]) {
		log_info("bpf: fast path ring off: workers run as another user (worker-user), "
			 "and the ring is shared with them; the fast path uses its sockets");
		return NULL;
	}
	/* Idle workers sleep in futex_waitv (Linux 5.16); without it they would poll.  With
	 * no futexes it answers EINVAL; ENOSYS (an older kernel) or EPERM (a seccomp filter
	 * that does not know it) say it cannot be used. */
	if (syscall(SYS_futex_waitv, NULL, 0, 0, NULL, 0) < 0 && errno != EINVAL) {
		log_info("bpf: fast path ring off: futex_waitv (Linux 5.16) unavailable: %s; the "
			 "fast path uses its sockets",
			 strerror(errno));
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->memfd = memfd_create("kray-fast-ring", MFD_CLOEXEC);
	if (r->memfd < 0 || ftruncate(r->memfd, (off_t)KRAY_RING_LEN))
		goto err;
	r->base = mmap(NULL, KRAY_RING_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	if (r->base == MAP_FAILED)
		goto err;
	r->map_fd = map_fd;
	log_info("bpf: fast path ring on: drivers of this user call idle workers and plain "
		 "actors through shared memory and futexes; other users' drivers take the daemon "
		 "path (fastpath-ring = off: the fast path's sockets for all)");
	return r;
err:
	log_warn("bpf: fast path ring off: %s; the fast path uses its sockets", strerror(errno));
	if (r->memfd >= 0)
		close(r->memfd);
	free(r);
	return NULL;
}

void kring_stop(struct kring *r)
{
	if (!r)
		return;
	munmap(r->base, KRAY_RING_LEN);
	close(r->memfd);
	free(r);
}

bool kring_may(struct kring *r, struct conn *c, bool worker)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (!r)
		return false;
	if (worker)
		return true; /* krayd's own children, as its user (kring_start) */
	/* A driver may write any worker's request and any driver's result area: only
	 * krayd's own user, on this host (a root krayd: root's drivers only). */
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) || len != sizeof(cr))
		return false;
	return cr.uid == geteuid();
}

int kring_attach(struct kring *r, struct conn *c)
{
	int e = conn_frame_fd(c, r->memfd);

	return e ? e : conn_frame_fd(c, r->map_fd);
}

void kring_stats(struct kring *r, uint64_t *calls, uint64_t *bounced)
{
	if (!r)
		return;
	for (unsigned i = 0; i < KRAY_FAST_DRIVERS; i++) {
		*calls += __atomic_load_n(&darea(r, i)->calls, __ATOMIC_RELAXED);
		*bounced += __atomic_load_n(&darea(r, i)->bounced, __ATOMIC_RELAXED);
	}
}

void kring_worker_new(struct kring *r, unsigned slot)
{
	struct kray_ring_worker *w;

	if (!r || slot >= KRAY_FAST_WORKERS)
		return;
	w = warea(r, slot);
	/* The entry is OFF (no driver claims it, so none writes here), and the slot's last
	 * worker is gone: its counters must not look like a request to the new one. */
	memset(w, 0, offsetof(struct kray_ring_worker, req));
	/* A store with release order (a fence is refused by -fsanitize=thread): what the
	 * memset wrote is seen before anything this thread writes after it, such as the
	 * entry's move to IDLE. */
	__atomic_store_n(&w->req_seq, 0, __ATOMIC_SEQ_CST);
}

void kring_sent(struct kring *r, unsigned slot)
{
	struct kray_ring_worker *w;

	if (!r || slot >= KRAY_FAST_WORKERS)
		return;
	w = warea(r, slot);
	__atomic_fetch_add(&w->kd_seq, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST))
		wake(&w->kd_seq);
}

bool kring_lost(struct kring *r, unsigned slot, const struct kray_fast_worker *e, bool was_fast,
		const char *how)
{
	struct kray_msg_fast_lost m = { .task = e->task };
	struct kray_ring_worker *w;
	struct kray_ring_driver *dr;
	struct kbuf b = { 0 };
	uint32_t seq, want;

	if (!r || slot >= KRAY_FAST_WORKERS || e->driver >= KRAY_FAST_DRIVERS)
		return false;
	w = warea(r, slot);
	dr = darea(r, e->driver);
	if (__atomic_load_n(&w->driver, __ATOMIC_SEQ_CST) != e->driver)
		return false; /* a socket call (or a forged area): the socket path */
	seq = __atomic_load_n(&w->seq, __ATOMIC_SEQ_CST) & KRAY_RING_SEQ_MASK;
	want = seq;
	if (!seq)
		return false;
	/* The driver waits for it (the worker still ran it), or the worker died while it
	 * wrote the result (it gives itself back before it publishes res_seq): krayd writes. */
	if (!(was_fast && __atomic_compare_exchange_n(&dr->want, &want, seq | KRAY_RING_BUSY, false,
						      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) &&
	    (__atomic_load_n(&dr->want, __ATOMIC_SEQ_CST) != (seq | KRAY_RING_BUSY) ||
	     __atomic_load_n(&dr->res_seq, __ATOMIC_SEQ_CST) == seq))
		return false;
	m.len = (uint32_t)strnlen(how, 256);
	WIRE_FRAME(&b, KRAY_MSG_FAST_LOST, 0, WIRE_FIXED(m), WIRE_PADDED(how, m.len));
	if (b.nomem || b.len > KRAY_FAST_FRAME_MAX) {
		kbuf_free(&b);
		abort(); /* a 300-byte frame */
	}
	memcpy(dr->res, b.data, b.len);
	__atomic_store_n(&dr->res_len, (uint32_t)b.len, __ATOMIC_SEQ_CST);
	__atomic_store_n(&dr->res_seq, seq, __ATOMIC_SEQ_CST);
	wake(&dr->res_seq);
	kbuf_free(&b);
	return true;
}
