/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * The shared-memory ring of the fast path (`fastpath-ring = on`, docs/fastpath.md "The
 * ring"): one memfd that krayd creates and hands, with the `fast_workers` map, to the
 * pool workers, to plain actors' workers and to the drivers that run as krayd's user.  A
 * driver claims an idle worker in `fast_workers` exactly as the BPF program does (IDLE
 * -> CLAIMING -> FAST, compare-and-swap on its own mapping of the map; for an actor
 * call, the worker whose entry names the actor), writes the FAST_EXEC frame into the
 * worker's request area and wakes it with a futex; the worker writes the FAST_RESULT
 * frame into the driver's result area and wakes the driver.  The frames are the socket
 * fast path's, byte for byte.
 *
 * Layout: KRAY_FAST_WORKERS worker areas, then KRAY_FAST_DRIVERS driver areas, each
 * KRAY_RING_AREA bytes (header, then one frame of at most KRAY_FAST_FRAME_MAX).  Every
 * u32 below that is named a futex word is waited on with FUTEX_WAIT (not private: the
 * mapping is shared between processes).
 */
#ifndef KRAY_UAPI_RING_H
#define KRAY_UAPI_RING_H

#include <linux/types.h>

#include "kray_bpf.h"
#include "kray_wire.h"

/* A worker's area: the request a driver wrote, and the worker's wake-up words. */
struct kray_ring_worker {
	__u32 req_seq; /* futex word: a driver bumps it after writing a request */
	__u32 kd_seq; /* futex word: krayd bumps it after it sent the worker frames */
	__u32 sleeping; /* 1 while the worker sleeps on the two words above */
	__u32 driver; /* the driver slot of the request */
	__u32 seq; /* the driver's sequence number of the request (its result area's) */
	__u32 req_len; /* bytes of the frame in req */
	__u64 pad[5];
	__u8 req[KRAY_FAST_FRAME_MAX]; /* the FAST_EXEC frame, header included */
};

/* A driver's area: where the result of its ring call comes. */
struct kray_ring_driver {
	__u32 res_seq; /* futex word: set to `want`'s sequence number when res holds it */
	__u32 want; /* the sequence number the driver waits for; 0: none.  The worker (or
		     * krayd, for a dead worker) moves it to seq | KRAY_RING_BUSY before it
		     * writes res; a driver that gives up moves it to 0 first, and the
		     * result then goes by the socket path (a late call). */
	__u32 res_len;
	__u32 pad0;
	__u64 calls; /* ring calls this slot's drivers made (krayd sums them: fast_tasks) */
	__u64 bounced; /* calls that found no idle worker (fast_bounced) */
	__u64 pad[4];
	__u8 res[KRAY_FAST_FRAME_MAX]; /* FAST_RESULT or FAST_LOST frame, header included */
};

#define KRAY_RING_BUSY 0x80000000u /* want: the result is being written */
#define KRAY_RING_SEQ_MASK 0x7fffffffu

_Static_assert(sizeof(struct kray_ring_worker) == 64 + KRAY_FAST_FRAME_MAX, "ring worker");
_Static_assert(sizeof(struct kray_ring_driver) == 64 + KRAY_FAST_FRAME_MAX, "ring driver");

#define KRAY_RING_AREA (64 + KRAY_FAST_FRAME_MAX)
#define KRAY_RING_LEN ((KRAY_FAST_WORKERS + KRAY_FAST_DRIVERS) * (__u64)KRAY_RING_AREA)
#define KRAY_RING_WORKER_OFF(slot) ((__u64)(slot)*KRAY_RING_AREA)
#define KRAY_RING_DRIVER_OFF(slot) ((KRAY_FAST_WORKERS + (__u64)(slot)) * KRAY_RING_AREA)

#endif
