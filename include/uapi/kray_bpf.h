/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * The BPF maps kray pins under /sys/fs/bpf/kray/<node>/ (KRAY_BPF_PIN_ROOT): the one
 * definition of their keys and values, shared by the programs in bpf/, krayd
 * (daemon/bpf_*.c), `kray top` and the tests.  Fixed-width types, explicit padding and
 * _Static_assert'ed sizes, as for the wire frames: a map value is an ABI.
 *
 * Who writes what:
 *  - workers (hash, pid -> kray_worker_stats): krayd inserts a zeroed entry for each pool
 *    worker it starts and deletes it when the worker is reaped; the sched_* tracepoint
 *    programs update only entries that exist, so only kray workers are accounted.
 *  - winfo (hash, pid -> kray_worker_info): krayd's view of the worker (what it runs, how
 *    many tasks it finished), refreshed at most every 100 ms, off the tasks' path.
 *  - submits (mmapable array, worker slot -> __u64): krayd stores, in its mapping and
 *    without a system call, the submit time of a task it sends to an idle worker; the
 *    sched_switch program swaps it for 0 and turns it into a dispatch-latency sample when
 *    that worker next gets a CPU.  A worker's slot is in its `workers` entry.
 *  - dispatch (array[1], kray_hist): submit-to-start latency of tasks, log2 of us.
 *  - sched (array[1], kray_sched_state): krayd's scheduling decision from the metrics.
 */
#ifndef KRAY_UAPI_BPF_H
#define KRAY_UAPI_BPF_H

#ifndef __VMLINUX_H__ /* BPF programs get the types from vmlinux.h */
#include <linux/types.h>
#endif

#include "kray_wire.h" /* struct kray_oid */

#define KRAY_BPF_PIN_ROOT "/sys/fs/bpf/kray"
#define KRAY_BPF_HIST_SLOTS 32 /* slot i: values in [2^i, 2^(i+1)) microseconds; 0: < 2 us */
#define KRAY_BPF_MAX_WORKERS 4096
#define KRAY_BPF_FN_LEN 48

/* Per worker thread, written by the tracepoint programs (all times CLOCK_MONOTONIC ns). */
struct kray_worker_stats {
	__u32 worker_id; /* krayd's id of the worker */
	__u32 slot; /* its index in `submits` */
	__u64 oncpu_ns; /* time spent running, up to its last switch out */
	__u64 oncpu_since; /* when it last got a CPU; 0 while off CPU */
	__u64 runnable_since; /* when it last became runnable without a CPU; 0: not waiting */
	__u64 rq_wait_ns; /* total time runnable but not running */
	__u64 rq_waits; /* number of waits in rq_hist */
	__u64 nvcsw; /* switched out because it blocked (voluntary) */
	__u64 nivcsw; /* switched out while runnable (preempted: involuntary) */
	__u64 rq_hist[KRAY_BPF_HIST_SLOTS]; /* run-queue waits, log2 microseconds */
};
_Static_assert(sizeof(struct kray_worker_stats) == 64 + 8 * KRAY_BPF_HIST_SLOTS,
	       "kray_worker_stats layout");

/* Per worker, written by krayd when it hands the worker work and when it gets results. */
struct kray_worker_info {
	__u32 worker_id;
	__u32 busy; /* tasks in flight on it */
	__u64 tasks_done; /* results received from it */
	char fn[KRAY_BPF_FN_LEN]; /* function of the task it runs (NUL-padded); "" idle */
};
_Static_assert(sizeof(struct kray_worker_info) == 16 + KRAY_BPF_FN_LEN, "kray_worker_info");

struct kray_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 slot[KRAY_BPF_HIST_SLOTS];
};
_Static_assert(sizeof(struct kray_hist) == 16 + 8 * KRAY_BPF_HIST_SLOTS, "kray_hist layout");

/* krayd's reading of the metrics (daemon/bpf/bpf_sched.c) and what it decided. */
struct kray_sched_state {
	__u64 sampled_ns; /* when krayd last sampled the workers */
	__u64 wait_permille; /* run-queue wait / (wait + on-CPU) of busy workers, last window */
	__u32 oversubscribed; /* 1: krayd queues tasks instead of starting workers */
	__u32 threshold_permille; /* the wait share above which it does */
	__u64 spawns_deferred; /* dispatch rounds that queued instead of starting workers */
	__u64 windows_over; /* sample windows that found the CPUs oversubscribed */
};
_Static_assert(sizeof(struct kray_sched_state) == 40, "kray_sched_state layout");

/*
 * The fast path for synchronous calls (bpf/fastpath.bpf.c, daemon/bpf/bpf_fast.c,
 * docs/fastpath.md).  Wire types 40-46 are its frames (kray_wire.h).
 *
 *  - fast_socks (sockmap): krayd's ends of the fast connections, a driver's at its slot,
 *    a worker's at KRAY_FAST_DRIVERS + its slot.  Not pinned (it holds sockets).
 *  - fast_workers (mmapable array, slot -> kray_fast_worker): the idle-worker claim.  The
 *    program moves a worker IDLE -> CLAIMING -> FAST when it steers a task to it and
 *    FAST -> IDLE when the result passes; krayd takes it IDLE -> DAEMON before it sends
 *    an EXEC and gives it back when the worker is idle and no task waits in its queue.
 *    Both sides change the
 *    state only with compare-and-swap (krayd on its mapping), so a worker is never given
 *    two tasks at once by the two paths.  The rest of the entry is the program's
 *    bookkeeping of the task it runs, read by krayd when a worker dies.
 *  - fast_drivers (mmapable array, slot -> kray_fast_driver): the token of each driver's
 *    fast connection (0: slot free) and its counters.
 *  - fast_stats (array[1], kray_fast_stats): what the program did, summed.
 *  - fast_actors (hash, actor id -> worker slot): the workers of plain synchronous actors
 *    that take fast method calls; krayd adds one when the actor's worker opens its fast
 *    connection and deletes it when that worker goes.  An actor's worker is never claimed
 *    for a task, only for its own actor's calls (its entry's `actor`).
 */
#define KRAY_FAST_DRIVERS 256 /* fast connections of drivers */
#define KRAY_FAST_WORKERS 256 /* pool and actor workers that can take fast calls */

enum kray_fast_state {
	KRAY_FW_OFF = 0, /* no fast connection, or retired: never claimed */
	KRAY_FW_IDLE = 1, /* claimable by either side */
	KRAY_FW_DAEMON = 2, /* krayd uses it (tasks in flight, or kept for its queue) */
	KRAY_FW_FAST = 3, /* runs a fast task */
	KRAY_FW_FAST_DAEMON = 4, /* runs a fast task and krayd has sent it tasks too */
	KRAY_FW_CLAIMING = 5, /* the program is writing down the task it steers to it; it
			       * then moves it to FAST, or sends the task back if krayd took it
			       * OFF meanwhile: FAST always comes with the entry written */
};

struct kray_fast_worker {
	__u32 state; /* enum kray_fast_state */
	__u32 driver; /* the driver slot of the fast task it runs (or ran last) */
	__u64 token; /* its fast connection's token; 0: none */
	struct kray_oid task; /* the fast task it runs (or ran last) */
	__u64 start_ns; /* when the program steered that task to it */
	__u64 tasks; /* fast tasks steered to it */
	struct kray_oid actor; /* the actor it hosts (index KRAY_OID_ACTOR); all zero: a pool
				* worker.  Set by krayd before the entry leaves OFF. */
};
_Static_assert(sizeof(struct kray_fast_worker) == 64, "kray_fast_worker layout");

struct kray_fast_driver {
	__u64 token; /* 0: slot free */
	__u64 tasks; /* its fast tasks steered to a worker */
	__u64 bounced; /* its fast tasks sent back: no idle worker */
	__u64 pad;
};
_Static_assert(sizeof(struct kray_fast_driver) == 32, "kray_fast_driver layout");

struct kray_fast_stats {
	__u64 steered; /* FAST_EXEC frames sent to a worker */
	__u64 results; /* FAST_RESULT frames sent to their driver */
	__u64 bounced; /* FAST_EXEC frames sent back to their driver */
	__u64 dropped; /* malformed frames, wrong tokens, results nobody waits for */
};
_Static_assert(sizeof(struct kray_fast_stats) == 32, "kray_fast_stats layout");

#endif
