/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpf_ring.c: the fast path's shared-memory ring (`fastpath-ring`, include/uapi/kray_ring.h,
 * docs/fastpath.md "The ring").  Used by bpf_fast.c only; all no-ops when the ring is off.
 */
#ifndef KRAYD_BPF_RING_H
#define KRAYD_BPF_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "../../include/uapi/kray_bpf.h"

struct krayd;
struct conn;
struct kring;

/* Makes the ring (a memfd) if `fastpath-ring` is on; NULL (logged) otherwise.  map_fd is
 * `fast_workers`, handed out with it. */
struct kring *kring_start(struct krayd *d, int map_fd);
void kring_stop(struct kring *r);
/* Whether connection c (a driver, or worker when worker) may use the ring: drivers only
 * on this host and as krayd's user, workers only when they run as krayd's user. */
bool kring_may(struct kring *r, struct conn *c, bool worker);
/* Adds the ring's descriptors (the memfd, then the map) to the frame being built on c.
 * 0 or -errno. */
int kring_attach(struct kring *r, struct conn *c);
/* Adds the ring calls drivers made, and those that found no idle worker. */
void kring_stats(struct kring *r, uint64_t *calls, uint64_t *bounced);
/* Worker slot `slot` goes to a new worker (its entry still OFF): its request area's
 * counters start from zero, as the worker's own count of them does (libclient/ring.c), so
 * that a previous worker's requests do not wake it as if one had come.  Else a driver
 * claiming it between the two could find its request dropped. */
void kring_worker_new(struct kring *r, unsigned slot);
/* krayd sent worker slot `slot` frames: wakes it if it sleeps on the ring. */
void kring_sent(struct kring *r, unsigned slot);
/* The worker of slot `slot` died; e is its entry, was_fast whether it said FAST.  If a
 * driver waits on the ring for its task (or it died while it wrote the result), writes
 * FAST_LOST (how) into the driver's result area and wakes it, and returns true.  False:
 * no ring call of its is waited for (the socket path tells a driver that gave up). */
bool kring_lost(struct kring *r, unsigned slot, const struct kray_fast_worker *e, bool was_fast,
		const char *how);

#endif
