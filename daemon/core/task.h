/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: tasks (task.c, cancel.c).
 *
 * A task is owned by exactly one place at a time: the dependency wait (deps_left > 0), the
 * ready queue, or a worker's in-flight list.  What only the cluster uses lives in its own
 * part (struct task_remote).
 */
#ifndef KRAYD_CORE_TASK_H
#define KRAYD_CORE_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../../common/wire.h"

#include "core/krayd.h"

/* Per-function statistics, interned by name: drive how deep krayd pipelines tasks. */
struct fnstat {
	char *name;
	uint8_t name_len;
	uint64_t avg_ns; /* moving average of the run time; 0 = not known yet */
	uint64_t runs;
	struct fnstat *next;
};

/* What the cluster keeps of a task (daemon/cluster/remote.c, lineage.c): the core reads
 * only from_link (a task run here for another node goes back there when it ends). */
struct task_remote {
	uint32_t fwd_node; /* owner side: the node it was forwarded to (0: none) */
	uint32_t fwd_link; /* owner side: the id of the link it went over */
	struct task *fwd_prev; /* owner side: in the forwarded list (next is the other way) */
	uint32_t from_link; /* run here for another node: the id of the link it came from */
	bool ractor; /* owner side: a call of an actor on another node (ractor_id) */
	uint16_t held_remote; /* owner side: its returns still kept by the node that ran it:
			       * the task is kept as their lineage */
	struct kray_oid ractor_id;
};

/*
 * Walks a task's arguments in order (they were validated at submit, so a walk never stops
 * part way):
 *
 *	struct task_arg a;
 *
 *	for (task_arg_first(&a, t); task_arg_next(&a);)
 *		use a.i (its index), a.v (the value) and, for a REF or ACTOR value, a.id;
 */
struct task_arg {
	struct wire_rd r;
	unsigned i, n;
	struct wire_value v;
	struct kray_oid id;
};

struct task {
	struct kray_oid id; /* index 0 */
	uint32_t job;
	struct job *jp; /* its record, which it holds (task_set_job()); NULL: none */
	uint64_t rank; /* its place in the fair ready queue (job.h) */
	struct fnstat *fn;
	uint16_t num_returns, nargs;
	int16_t max_retries;
	uint16_t attempts; /* worker deaths so far */
	bool cancelled; /* kray_cancel(): fails with KRAY_WE_CANCELLED instead of finishing */
	bool streaming; /* KRAY_SUBMIT_STREAMING: items come with YIELD (task_yield()) */
	uint32_t stream_n; /* items sealed so far: item i is (id, index 1 + i) */
	bool timed_out; /* ran past timeout_ms: its worker was killed (timeout.c) */
	uint32_t timeout_ms; /* 0: none */
	int64_t deadline_ns; /* while it runs, with a timeout */
	struct kray_oid parent; /* the task whose worker submitted it (all zero: a driver) */
	int deps_left;
	bool holds; /* holds a reference on each REF argument */
	bool ctor; /* an actor's constructor (owned by the actor, never queued) */
	struct actor *actor; /* a method call (or constructor) of this actor */
	struct conn *submitter; /* only while its arguments are checked */
	int64_t submit_ns; /* when it was submitted (dispatch latency, starvation guard) */
	int64_t sent_ns; /* when its EXEC was queued (only with the timeline on) */
	struct wire_resource *res; /* custom resources it needs (a node that has them runs it) */
	uint8_t nres;
	struct wire_place place; /* its scheduling strategy in a cluster (remote_take()) */
	bool res_held; /* its custom resources are taken from the node's while it runs */
	uint32_t cpu_milli; /* CPU slots it holds while it runs, in thousandths (1000 unless
			     * submitted with "CPU:n"; 0 runs beside the slots) */
	struct task_remote rem; /* the cluster's part (daemon/cluster/), zero on a single node */
	uint8_t *args; /* the submit's encoded arguments */
	uint32_t args_len;
	struct task *next; /* ready queue, actor queue or worker in-flight list */
};

static inline void task_arg_first(struct task_arg *a, const struct task *t)
{
	wire_rd_init(&a->r, t->args, t->args_len);
	a->n = t->nargs;
	a->i = (unsigned)-1;
}

static inline bool task_arg_next(struct task_arg *a)
{
	if (++a->i >= a->n || wire_rd_value(&a->r, &a->v))
		return false;
	if (a->v.type == KRAY_WT_REF || a->v.type == KRAY_WT_ACTOR)
		memcpy(&a->id, a->v.data, sizeof(a->id));
	return true;
}

/* task.c */
void task_submit(struct conn *c, const struct wire_submit *s);
void task_finish(struct conn *from, struct task *t, struct wire_rd values, uint32_t n);
/* An item of the streaming call t, from the worker running it (YIELD). */
void task_yield(struct conn *from, struct task *t, const struct wire_yield *y);
int task_set_resources(struct krayd *d, struct task *t, const char *s, size_t len);
void task_fail(struct krayd *d, struct task *t, uint8_t err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void task_free(struct krayd *d, struct task *t);
/* Drops t's references on its arguments (a dead actor's constructor keeps its struct). */
void task_release_holds(struct krayd *d, struct task *t);
/* Takes holds on t's ref arguments and registers it on the pending ones.  Returns 1 when
 * it must wait, 0 when it can run, -1 when it failed (a missing or error argument; t is
 * failed and freed, unless it is a constructor: then its actor is). */
int task_resolve(struct krayd *d, struct conn *submitter, struct task *t);
/* The first argument of t that is an error object, or NULL (*ret_arg: its index). */
struct obj *task_error_arg(struct krayd *d, struct task *t, unsigned *ret_arg);
void task_fail_from_arg(struct krayd *d, struct task *t, struct obj *o, unsigned arg);

/* Fails t with KRAY_WE_CANCELLED. */
void task_fail_cancelled(struct krayd *d, struct task *t);
/* The task (not an actor call) with that id waiting for its arguments, or NULL. */
struct task *task_waiting(struct krayd *d, const struct kray_oid *id);
/* t stops waiting for its arguments (it is being cancelled). */
void task_unwait(struct krayd *d, struct task *t);
/* Fails t if it was cancelled while it waited; returns whether it did. */
bool task_cancelled_fail(struct krayd *d, struct task *t);

/* cancel.c */
/* Cancels the task making object id (see kray_cancel()).  flags: KRAY_CANCEL_*. */
void task_cancel(struct krayd *d, const struct kray_oid *id, uint32_t flags);
/* The driver of job went (exit or crash): the job ends, as in Ray.  Its queued tasks fail
 * (KRAY_WE_CANCELLED), its tasks on pool workers are cancelled and the workers running
 * them killed (the pool starts others).  Its non-detached actors end with their creator
 * (actor_owner_gone()); other jobs' tasks and detached actors go on. */
void job_end(struct krayd *d, uint32_t job);

#endif
