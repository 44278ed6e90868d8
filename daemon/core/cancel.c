// SPDX-License-Identifier: Apache-2.0
/*
 * Cancelling tasks (kray_cancel, Ray's ray.cancel).
 *
 * Where the task is decides what cancelling does:
 *  - in the ready queue, waiting for its arguments (d->waiting), or an actor call in its
 *    actor's queue: it is taken out and fails with KRAY_WE_CANCELLED at once;
 *  - not on this node's lists yet (its return object is pending): its id is noted in
 *    d->cancelled and it fails when it arrives, instead of running;
 *  - in a worker's in-flight list: it is marked, and its result will be replaced by the
 *    cancellation error.  If it is running (the list's head): with KRAY_CANCEL_FORCE its
 *    worker is killed, and the death is a cancellation, not a fault to retry; without,
 *    the worker is sent KRAY_CANCEL_SIGNAL naming the task, which interrupts a Python
 *    task (KeyboardInterrupt, as in Ray) and leaves a C one running to its end; a get or
 *    wait it is blocked in returns -ECANCELED at once (get_cancel_conn()), so that a task
 *    waiting for a signal, a queue or a child is interrupted too.
 * With KRAY_CANCEL_RECURSIVE the tasks it submitted (tasks whose parent it is: queued,
 * waiting for arguments or in flight) are cancelled the same way.  A finished task is
 * left alone.  In a cluster the cluster part cancels it, and its children, on the nodes
 * they were sent to (ext task_cancel).
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/krayd.h"
#include "core/worker.h"
#include "core/task.h"
#include "core/store.h"
#include "core/sched.h"
#include "core/actor.h"
#include "core/conn.h"
#include "core/getreq.h"
#include "core/log.h"

_Static_assert(KRAY_CANCEL_SIGNAL == SIGUSR2, "the cancel signal is SIGUSR2");

#define CANCEL_DEPTH_MAX 64 /* recursion through generations of children */

static struct task *unlink_queued(struct krayd *d, const struct kray_oid *tid)
{
	struct task *prev = NULL;

	for (struct task **pp = &d->qhead; *pp; prev = *pp, pp = &(*pp)->next)
		if (oid_eq(&(*pp)->id, tid))
			return sched_unqueue(d, pp, prev);
	return NULL;
}

/* Marks t, running on w, cancelled; returns true if it was found there. */
static bool cancel_inflight(struct krayd *d, const struct kray_oid *tid, uint32_t flags)
{
	for (struct worker *w = d->workers; w; w = w->next) {
		unsigned pos = 0;

		if (w->state == W_DEAD)
			continue;
		for (struct task *t = w->head; t; t = t->next, pos++) {
			if (!oid_eq(&t->id, tid))
				continue;
			if (w->actor) {
				/* As Ray: a call queued in the actor's process fails; a running
				 * one is told (kray_ctx_cancelled(), Ray's is_canceled()) and
				 * interrupted only where its process can end it cleanly (an
				 * async actor's coroutine: the worker's host decides,
				 * kray_host_opts.cancel), never killed (the actor's state is at
				 * stake).  Either way its caller gets the cancellation. */
				if (w->conn) {
					struct kray_msg_cancel m = { .oid = *tid };

					t->cancelled = true;
					WIRE_FRAME(&w->conn->out, KRAY_MSG_CANCEL, 0,
						   WIRE_FIXED(m));
					conn_flush_later(w->conn);
				}
				return true;
			}
			t->cancelled = true;
			if (t != w->head || w->pid <= 0)
				return true; /* not started: it fails when it comes back */
			if (flags & KRAY_CANCEL_FORCE) {
				log_info("cancel: killing worker %u (pid %d) running '%.*s'", w->id,
					 (int)w->pid, t->fn->name_len, t->fn->name);
				kill(w->pid, SIGKILL); /* reaped as any death: tasks_lost() */
			} else {
				/* A request: a Python task is interrupted, a C one runs on. */
				union sigval v = { .sival_ptr =
							   (void *)(uintptr_t)((uint64_t)t->id.owner
										       << 32 |
									       t->id.seq) };

				sigqueue(w->pid, KRAY_CANCEL_SIGNAL, v);
				/* Blocked in a get or wait: that call returns -ECANCELED. */
				if (w->conn)
					get_cancel_conn(w->conn);
			}
			return true;
		}
	}
	return false;
}

struct kids {
	struct kray_oid *id;
	size_t n, cap;
};

static void add_id(struct kids *k, const struct kray_oid *id)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 16;
		k->id = realloc(k->id, k->cap * sizeof(*k->id));
		if (!k->id)
			abort();
	}
	k->id[k->n++] = *id;
}

static void add_kid(struct kids *k, const struct task *c, const struct kray_oid *tid)
{
	if (oid_eq(&c->parent, tid))
		add_id(k, &c->id);
}

/* Adds the tasks of list (linked by next) whose parent is tid. */
static void collect(struct kids *k, struct task *list, const struct kray_oid *tid)
{
	for (struct task *c = list; c; c = c->next)
		add_kid(k, c, tid);
}

static void cancel_one(struct krayd *d, const struct kray_oid *tid, uint32_t flags, int depth)
{
	struct task *t = unlink_queued(d, tid);
	struct kids kids = { 0 };

	if (!t && (t = task_waiting(d, tid)))
		task_unwait(d, t);
	if (!t)
		t = actor_unqueue(d, tid);
	if (t) {
		task_fail_cancelled(d, t);
	} else if (!cancel_inflight(d, tid, flags)) {
		struct obj *o = store_get(d, tid);
		bool fresh;

		/* Still to come (its return object is pending): fail it when it is ready. */
		if (o && o->state == OBJ_PENDING)
			*oidmap_upsert(&d->cancelled, tid, &fresh) = 1;
	}
	/* It, or tasks it submitted, may run on other nodes: they are cancelled there. */
	ext_task_cancel(d, tid, flags);
	if (!(flags & KRAY_CANCEL_RECURSIVE) || depth >= CANCEL_DEPTH_MAX)
		return;
	/* Collect first: cancelling changes the lists walked here. */
	collect(&kids, d->qhead, tid);
	for (struct worker *w = d->workers; w; w = w->next)
		if (!w->actor)
			collect(&kids, w->head, tid);
	oidmap_for_each (&d->waiting, s)
		add_kid(&kids, (const struct task *)(uintptr_t)s->val, tid);
	for (size_t i = 0; i < kids.n; i++)
		cancel_one(d, &kids.id[i], flags, depth + 1);
	free(kids.id);
}

void task_cancel(struct krayd *d, const struct kray_oid *id, uint32_t flags)
{
	struct kray_oid tid = *id;

	tid.index = 0;
	if (id->index == KRAY_OID_PUT || id->index == KRAY_OID_ACTOR)
		return; /* not made by a task */
	cancel_one(d, &tid, flags, 0);
	sched_dispatch(d);
}

/* Takes the queued tasks of job out of the queue, in order, into a list of their own. */
static struct task *unqueue_job(struct krayd *d, uint32_t job)
{
	struct task **pp = &d->qhead, *prev = NULL, *head = NULL, **tail = &head;

	while (*pp) {
		struct task *t = *pp;

		if (t->job != job) {
			prev = t;
			pp = &t->next;
			continue;
		}
		*tail = sched_unqueue(d, pp, prev);
		tail = &(*tail)->next;
	}
	return head;
}

static void fail_ended(struct krayd *d, struct task *t)
{
	task_fail(d, t, KRAY_WE_CANCELLED,
		  "task '%.*s' was cancelled: the driver of its job exited", t->fn->name_len,
		  t->fn->name);
}

/* Takes the job's tasks that wait for arguments out of d->waiting, and fails them. */
static unsigned drop_waiting(struct krayd *d, uint32_t job)
{
	struct kids ids = { 0 };
	unsigned n = 0;

	oidmap_for_each (&d->waiting, s)
		if (((const struct task *)(uintptr_t)s->val)->job == job)
			add_id(&ids, &s->key);
	for (size_t i = 0; i < ids.n; i++) {
		struct task *t = task_waiting(d, &ids.id[i]); /* not failed by an earlier one */

		if (!t)
			continue;
		task_unwait(d, t);
		fail_ended(d, t);
		n++;
	}
	free(ids.id);
	return n;
}

void job_end(struct krayd *d, uint32_t job)
{
	unsigned dropped = 0, stopped = 0, more;
	struct task *t;

	if (d->stopping)
		return;
	/* Failing a task wakes what waited on its returns, which may queue more of the job's
	 * tasks: take them out, and those that wait for arguments, until none is left. */
	do {
		more = 0;
		for (t = unqueue_job(d, job); t; more++) {
			struct task *next = t->next;

			t->next = NULL;
			fail_ended(d, t);
			t = next;
		}
		more += drop_waiting(d, job);
		dropped += more;
	} while (more);
	for (struct worker *w = d->workers; w; w = w->next) {
		if (w->actor || w->state == W_DEAD)
			continue;
		for (t = w->head; t; t = t->next)
			if (t->job == job)
				t->cancelled = true; /* fails instead of finishing */
		/* The job's code is running: stop it (the pool starts another worker). */
		if (w->head && w->head->job == job && w->pid > 0) {
			kill(w->pid, SIGKILL);
			stopped++;
		}
	}
	d->jobs_ended++;
	if (dropped || stopped)
		log_info("job %u ended with its driver: %u queued task%s dropped, %u worker%s "
			 "running its tasks stopped",
			 job, dropped, dropped == 1 ? "" : "s", stopped, stopped == 1 ? "" : "s");
}
