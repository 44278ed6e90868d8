/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's state: the daemon itself (struct krayd).  Each thing it tracks has the header of
 * the core file that owns it: conn.h (connections, the loop), store.h (objects), task.h,
 * sched.h (the queue, jobs), actor.h, worker.h, getreq.h, proto.h; ext.h is how the parts
 * outside the core plug in.  Everything runs on the one io_uring loop thread, so nothing
 * here is locked.
 *
 * struct krayd owns the connections, the workers, the object table and the task queue.
 */
#ifndef KRAYD_KRAYD_H
#define KRAYD_KRAYD_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/freelist.h"
#include "../../common/oidmap.h"
#include "../../common/wire.h"
#include "core/config.h"
#include "core/ext.h"

#define LOOP_TIMERS 8
/* A node's custom resources: its own (at most KRAY_RESOURCES_MAX) and its placement groups'
 * (core/pgroup.c). */
#define KRAYD_NODE_RES_MAX 128

struct io_uring;
struct conn;
struct conn_kind;
struct worker;
struct task;
struct fnstat;
struct pgroup;
struct job;
struct actor;
struct obj;
struct pool;
struct store_io;
struct room_wait;
struct getreq;
struct listener;
struct loop_watch;
struct kbpf;
struct kfast;
struct cluster;
struct kray_frame_hdr;
struct kbuf;

/* A handler of one frame type (proto_on()). */
typedef int (*proto_handler)(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);

struct krayd {
	struct config cfg;
	struct io_uring *ring; /* loop.c's */
	int listen_fd, signal_fd;
	int metrics_fd; /* -1: no metrics endpoint */
	int kmod_fd; /* /dev/kray, attached as this node's daemon; -1: not used */
	uint32_t node;
	uint32_t next_client, next_worker;
	uint32_t warm_job; /* the last driver that connected with a code path (sched_warm()) */
	bool stopping;

	struct conn *conns, *dirty;
	struct worker *workers;
	unsigned nworkers, starting, start_failures;
	unsigned nest_stalls; /* dispatch rounds with every pool worker blocked (sched.c) */
	uint64_t nest_failed; /* tasks failed for nesting past the raised worker limit */
	uint64_t jobs_ended; /* jobs ended with their driver (cancel.c) */
	uint64_t actors_adopted; /* actors hosted by an idle pool worker (actor.c) */
	uint64_t tasks_timed_out; /* tasks ended by their timeout (timeout.c) */
	int64_t next_timeout; /* the earliest deadline of a task with a timeout; 0: none */
	struct oidmap job_index; /* {job, 0, 0, 0} -> struct job * (job.c) */
	uint64_t vnow; /* the rank of the last task taken from the ready queue (job.h) */
	struct fnstat *fns;

	struct actor *actors;
	struct oidmap actor_index; /* actor id -> struct actor * (actor.c) */
	struct actor *done_head, *done_tail; /* done actors, oldest first (actor.c) */
	unsigned ndone;
	uint32_t actor_slots_milli; /* CPU slots held by placed actors and group bundles */
	struct node_resource {
		struct wire_resource r; /* name and total */
		uint64_t used_milli;
	} res[KRAYD_NODE_RES_MAX]; /* this node's custom resources, then its groups' */
	int nres, nres_own; /* all of them; the node's own (the first nres_own) */
	struct pgroup *pgs; /* placement groups made here (core/pgroup.c) */
	uint32_t next_pg;
	struct oidmap objs; /* oid -> struct obj * */
	/* Freed structs made again for the next tasks (common/freelist.h). */
	struct freelist task_fl, obj_fl, dep_fl;
	struct obj *lru_head, *lru_tail; /* large objects in memory */
	struct pool *pool;
	int spill_lock; /* the spill dir, flock()ed while krayd runs (store_spill.c); or -1 */
	bool thp; /* large objects in shmem transparent huge pages (store_mem.c) */
	struct store_io *sio; /* the spill thread (store_io.c); NULL: spills on the loop */
	struct lazyd *lazy; /* lazy restore's thread (store_lazy.c); NULL: off */
	uint64_t spilling_bytes; /* bytes of objects being written to disk now */
	struct room_wait *room_head, *room_tail; /* waiting for spills to make room */
	int room_err; /* a spill failed while others ran: waiters get it (store_mem.c) */
	struct obj **io_fire; /* objects whose waiters wake on the next drain (held) */
	unsigned nio_fire, capio_fire;
	struct dep *io_orphans; /* waiters of objects freed while they were restored */
	struct task *qhead, *qtail; /* ready queue */
	struct getreq *gets; /* gets not answered yet */
	struct getreq *gets_gone; /* answered (their connection went), objects still pending */
	struct oidmap cancelled; /* tasks cancelled before they reached this node's lists */
	struct oidmap waiting; /* tasks (not actor calls) waiting for arguments: id -> task */
	struct timeline *tl; /* the task timeline ring (timeline.c); NULL: off */

	struct kray_wire_stats st;
	/* The parts outside the core: their hook tables (core/ext.h), and the state each
	 * keeps (the core never reads it). */
	const struct conn_kind *client_kind; /* a worker's connection (proto_client) */
	/* The core's own upward calls, wired by main.c, so that worker.c and store.c call
	 * nothing above them: an actor's worker connected (actor_worker_ready); a worker was
	 * reaped (sched_worker_lost); the last handle of an actor went (actor_handle_gone). */
	void (*worker_ready)(struct krayd *d, struct worker *w);
	void (*worker_lost)(struct krayd *d, struct worker *w, const char *how, bool was_starting,
			    bool fast_ran);
	void (*handle_gone)(struct krayd *d, const struct kray_oid *id);
	const struct ext *ext[EXT_MAX];
	unsigned next_ext;
	proto_handler handlers[KRAY_MSG_TYPE_MAX + 1]; /* proto_on() */
	/* What registered with the loop (loop_listen(), loop_timer(), ...). */
	struct {
		struct listener *listeners;
		struct loop_watch *dead_watches; /* freed, their poll's completion awaited */
		struct {
			int64_t (*next)(struct krayd *d);
			void (*run)(struct krayd *d, int64_t now);
		} timers[LOOP_TIMERS];
		unsigned ntimers;
		void (*turn)(struct krayd *d);
		void (*child)(struct krayd *d);
		/* loop_on_event(): an eventfd a thread writes, and what runs when it does. */
		void (*event)(struct krayd *d);
		int event_fd;
		uint64_t event_val;
		/* When the loop took up the completion (or the timers, the turn hook) it runs
		 * now: loop_now(). */
		int64_t now;
		/* Turns of the loop, and the longest time it went without waiting (ns). */
		uint64_t turns;
		int64_t stall_max_ns;
		/* Limits (loop.c): connections and their deadlines, buffers, accept pauses. */
		unsigned nconns, max_clients;
		unsigned ndeadlines; /* connections with a deadline (conn_deadline()) */
		int64_t next_sweep; /* when the deadlines are next checked */
		int64_t accept_paused; /* the fd limit was hit: accepts resume then (0: not) */
		uint64_t buf_bytes; /* bytes held in every connection's buffers */
		uint64_t freed_bytes; /* buffer bytes freed since the last malloc_trim() */
		uint64_t refused_clients, closed_slow, closed_output, closed_greedy, closed_nomem,
			accept_pauses, links_refused; /* counters for the metrics */
	} loop;
	struct kbpf *bpf; /* BPF programs and maps (daemon/bpf.h); NULL: BPF off */
	struct kbpf *bpf_loading; /* the same while a thread loads them (bpf-wait off) */
	struct kfast *fast; /* the BPF fast path (daemon/bpf.h); NULL: off */
	struct cluster *cl; /* NULL: a single node (daemon/cluster/cluster.h) */
	struct dashboard *dash; /* NULL: no dashboard (daemon/dashboard/dashboard.h) */
	struct appmetrics *appm; /* application metrics (core/appmetric.c); NULL: none yet */
};

/* CLOCK_MONOTONIC in ns (loop.c). */
int64_t now_ns(void);

/*
 * The time the loop took up what it is handling now (a completion, the timers, the turn
 * hook): the stamp of the tasks' submits, sends and results.  One clock read per
 * completion, not one per task in it (a burst of 1,000 submits comes in a few receives, and
 * a read of the clock costs about 25 ns on a VM); outside the loop, the clock itself.
 */
static inline int64_t loop_now(const struct krayd *d)
{
	return d->loop.now ? d->loop.now : now_ns();
}

#endif
