/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How the parts outside krayd's core (the cluster, the BPF glue, the kmod glue) plug into
 * it: each fills in one table of hooks at start and adds it with ext_add().  The core
 * never names a symbol of theirs; it calls the ext_*() functions below, which call every
 * added table's hook, in the order the tables were added, and combine the answers as each
 * comment says.  A NULL hook is skipped; with no table added, each ext_*() gives the
 * answer of a single node without BPF or /dev/kray.  This is sched_ext's shape: one
 * designated-initializer table per part, so what a part does to the core reads in one
 * place (daemon/cluster/cluster.c, daemon/bpf/bpf_metrics.c, daemon/bpf/bpf_fast.c,
 * daemon/kmod/kmod.c).
 *
 * Frames a part answers (the fast path's, KMOD_PIN, KV) are registered separately with
 * proto_on() (core/proto.h); timers and before-sleep work are hooks here.
 */
#ifndef KRAYD_CORE_EXT_H
#define KRAYD_CORE_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct krayd;
struct conn;
struct task;
struct obj;
struct worker;
struct actor;
struct kbuf;
struct kray_oid;
struct kray_wire_stats;
struct wire_actor_create;
struct wire_place;
struct wire_resource;
struct pgroup;

#define EXT_MAX 6 /* groups, the cluster, BPF metrics, the fast path, /dev/kray, the dashboard */

/* One node's answer to ext_gather(): its JSON, or ok false (it did not answer in time). */
struct ext_part {
	uint32_t node;
	bool ok;
	struct kbuf *text;
};
/* What ext_gather() calls once: c (NULL if it closed meanwhile) and the other nodes'
 * answers (freed after it returns). */
typedef void (*ext_gather_fn)(struct conn *c, const struct ext_part *parts, unsigned n);

struct ext {
	const char *name;

	/* The loop.  next_deadline: when tick must run next (CLOCK_MONOTONIC ns), -1 for
	 * never; the loop sleeps until the earliest of them.  before_dispatch: every loop
	 * turn, before the scheduler starts queued tasks. */
	int64_t (*next_deadline)(struct krayd *d);
	void (*tick)(struct krayd *d, int64_t now);
	void (*before_dispatch)(struct krayd *d);

	/* Placement.  place: takes t instead of the local queue (runs it elsewhere, or fails
	 * it for want of a node that can); true when taken. */
	bool (*place)(struct krayd *d, struct task *t);
	/* Placement groups (core/pgroup.c).  pg_place: places pending g across nodes, or
	 * starts to (true), false to place it on this node alone.  pg_removed: g goes; its
	 * bundles on other nodes are given back. */
	bool (*pg_place)(struct krayd *d, struct pgroup *g);
	void (*pg_removed)(struct krayd *d, struct pgroup *g);

	/* Workers.  worker_claim: krayd wants idle w for an EXEC (false: another path gave it
	 * work first).  worker_busy: w runs work krayd did not send (it holds a CPU slot).
	 * worker_pass: w, busy that way, may take a task after its own.  worker_settle: after
	 * a dispatch round (queued: tasks wait).  worker_retire: krayd would stop idle w
	 * (false: keep it).  worker_gone: w was reaped; true when it ran such work.
	 * may_start: false to queue tasks rather than start a worker now (the part counts it).
	 * exec_sent: idle w was sent t.  result: w sent a result.  worker_sent: bytes krayd
	 * sent on w's connection went out (the fast path's ring wakes a sleeping worker).
	 * worker_unpooled: w, a pool worker adopted by an actor (retired from the parts
	 * first), answered its constructor: what it had as a pool worker (its fast connection)
	 * is let go, so that it may ask again as the actor's. */
	bool (*worker_claim)(struct krayd *d, struct worker *w);
	bool (*worker_busy)(struct krayd *d, const struct worker *w);
	bool (*worker_pass)(struct krayd *d, struct worker *w);
	void (*worker_settle)(struct krayd *d, struct worker *w, bool queued);
	bool (*worker_retire)(struct krayd *d, struct worker *w);
	void (*worker_started)(struct krayd *d, struct worker *w);
	bool (*worker_gone)(struct krayd *d, struct worker *w, const char *how);
	bool (*may_start)(struct krayd *d);
	void (*exec_sent)(struct krayd *d, struct worker *w, const struct task *t);
	void (*result)(struct krayd *d, struct worker *w);
	void (*worker_sent)(struct krayd *d, struct worker *w);
	void (*worker_unpooled)(struct krayd *d, struct worker *w);

	/* Tasks.  task_done: t, run here for another node (t->rem.from_link), ended.
	 * task_cancel: task tid was cancelled here (KRAY_CANCEL_* flags): the part cancels
	 * it where it went, and with RECURSIVE the tasks it submitted that went elsewhere. */
	void (*task_done)(struct krayd *d, struct task *t);
	void (*task_cancel)(struct krayd *d, const struct kray_oid *tid, uint32_t flags);

	/* Objects.  obj_wanted: something waits for o, made and kept elsewhere.  obj_settled:
	 * o, made elsewhere, arrived or is being freed.  obj_published: large o is sealed in
	 * memory.  obj_withdraw: o's memory goes (if_unused: only when no reader maps it
	 * through the part; returns 0 or -EBUSY).  obj_range_wanted: a lazy reader of pending
	 * o, which arrives from elsewhere, waits for [off, off + len): asked for first. */
	void (*obj_wanted)(struct krayd *d, struct obj *o);
	void (*obj_range_wanted)(struct krayd *d, struct obj *o, uint64_t off, uint64_t len);
	void (*obj_settled)(struct krayd *d, struct obj *o);
	void (*obj_published)(struct krayd *d, struct obj *o);
	int (*obj_withdraw)(struct krayd *d, struct obj *o, bool if_unused);

	/* Actors.  actor_changed: actor a of this node was born or died (named or not).
	 * actor_place: an actor this node cannot host, or with a scheduling strategy pl
	 * (returns 0 with *ret_id when another node took it, 1 when it is this node's,
	 * -ENOENT when no node can, -EHOSTDOWN when pl's node affinity cannot be met, or
	 * -errno).  actor_known: id lives elsewhere.  actor_released: the
	 * last local handle of id (not an actor of this node) went.  actor_kill: id lives
	 * elsewhere (0, or -ENOENT).  actor_lookup / actor_claim: a GET_ACTOR of a name this
	 * node does not know, an ACTOR_CREATE of a name it has not claimed; true when the
	 * part answers the client (later). */
	void (*actor_changed)(struct krayd *d, struct actor *a, bool alive);
	int (*actor_place)(struct conn *c, const struct wire_actor_create *m,
			   const struct wire_resource *res, int nres, const struct wire_place *pl,
			   struct kray_oid *ret_id);
	bool (*actor_known)(struct krayd *d, const struct kray_oid *id);
	void (*actor_released)(struct krayd *d, const struct kray_oid *id);
	int (*actor_kill)(struct krayd *d, const struct kray_oid *id, bool no_restart);
	bool (*actor_lookup)(struct conn *c, uint64_t req, const char *name, size_t len,
			     const char *ns, size_t ns_len);
	bool (*actor_claim)(struct conn *c, uint64_t req, const struct wire_actor_create *m,
			    const uint8_t *body, uint32_t len);

	/* Clients.  driver_changed: a driver said hello (alive) or went.  conn_gone: any
	 * client connection closed. */
	void (*driver_changed)(struct conn *c, bool alive);
	void (*conn_gone)(struct conn *c);

	/* Introspection: counters for STATUS, the LIST_NODES text, Prometheus lines.
	 * node_summary: this node's workers, tasks and actors as JSON (the dashboard's), for
	 * another node's dashboard.  gather: asks every other live node for its what
	 * (KRAY_QUERY_SUMMARY, KRAY_QUERY_TIMELINE) and calls done once they all answered or
	 * node-timeout-ms passed; returns 0, or -ENOENT when there are no other nodes. */
	void (*stats)(struct krayd *d, struct kray_wire_stats *st);
	void (*describe_nodes)(struct krayd *d, struct kbuf *b);
	void (*render_metrics)(struct krayd *d, struct kbuf *b);
	void (*node_summary)(struct krayd *d, struct kbuf *b);
	int (*gather)(struct conn *c, uint32_t what, ext_gather_fn done);
};

/* Adds e (kept, not copied).  Returns 0, or -ENOSPC past EXT_MAX tables. */
int ext_add(struct krayd *d, const struct ext *e);
bool ext_pg_place(struct krayd *d, struct pgroup *g);
void ext_pg_removed(struct krayd *d, struct pgroup *g);

int64_t ext_next_deadline(struct krayd *d); /* the earliest; -1: none */
void ext_tick(struct krayd *d, int64_t now);
void ext_before_dispatch(struct krayd *d);
bool ext_place(struct krayd *d, struct task *t); /* the first that takes t */
bool ext_worker_claim(struct krayd *d, struct worker *w); /* all grant (none: true) */
bool ext_worker_busy(struct krayd *d, const struct worker *w); /* any */
bool ext_worker_pass(struct krayd *d, struct worker *w); /* any */
bool ext_can_pass(struct krayd *d); /* some part has worker_pass */
void ext_worker_settle(struct krayd *d, struct worker *w, bool queued);
bool ext_worker_retire(struct krayd *d, struct worker *w); /* all agree (none: true) */
void ext_worker_started(struct krayd *d, struct worker *w);
void ext_worker_sent(struct krayd *d, struct worker *w);
void ext_worker_unpooled(struct krayd *d, struct worker *w);
bool ext_worker_gone(struct krayd *d, struct worker *w, const char *how); /* any */
bool ext_may_start(struct krayd *d); /* all agree (none: true) */
void ext_exec_sent(struct krayd *d, struct worker *w, const struct task *t);
void ext_result(struct krayd *d, struct worker *w);
void ext_task_done(struct krayd *d, struct task *t);
void ext_task_cancel(struct krayd *d, const struct kray_oid *tid, uint32_t flags);
void ext_obj_wanted(struct krayd *d, struct obj *o);
void ext_obj_settled(struct krayd *d, struct obj *o);
void ext_obj_range_wanted(struct krayd *d, struct obj *o, uint64_t off, uint64_t len);
void ext_obj_published(struct krayd *d, struct obj *o);
int ext_obj_withdraw(struct krayd *d, struct obj *o, bool if_unused); /* first error */
void ext_actor_changed(struct krayd *d, struct actor *a, bool alive);
/* The first part's answer other than -ENOENT; -ENOENT when none has one. */
int ext_actor_place(struct conn *c, const struct wire_actor_create *m, const struct wire_place *pl,
		    const struct wire_resource *res, int nres, struct kray_oid *ret_id);
bool ext_actor_known(struct krayd *d, const struct kray_oid *id);
void ext_actor_released(struct krayd *d, const struct kray_oid *id);
int ext_actor_kill(struct krayd *d, const struct kray_oid *id, bool no_restart);
bool ext_actor_lookup(struct conn *c, uint64_t req, const char *name, size_t len, const char *ns,
		      size_t ns_len);
bool ext_actor_claim(struct conn *c, uint64_t req, const struct wire_actor_create *m,
		     const uint8_t *body, uint32_t len);
void ext_driver_changed(struct conn *c, bool alive);
void ext_conn_gone(struct conn *c);
void ext_stats(struct krayd *d, struct kray_wire_stats *st);
void ext_describe_nodes(struct krayd *d, struct kbuf *b);
void ext_render_metrics(struct krayd *d, struct kbuf *b);
void ext_node_summary(struct krayd *d, struct kbuf *b); /* the first that has one; else {} */
int ext_gather(struct conn *c, uint32_t what, ext_gather_fn done); /* first not -ENOENT */

#endif
