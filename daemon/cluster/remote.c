// SPDX-License-Identifier: Apache-2.0
/*
 * Tasks that run on another node.
 *
 * Owner side: a task that needs custom resources this node does not have is forwarded,
 * once its arguments exist, to a live node that has them (node_pick()): its argument
 * objects are pushed first (xfer.c), then FWD_TASK.  The task stays here, in cl->fwd,
 * holding its arguments, until FWD_DONE; its return objects stay here too (pending), and
 * the other node pushes their values back, so a get here works as for a local task.  If
 * the link it went over closes (the node died, or the head declared it dead), the task
 * is retried elsewhere within max_retries, or fails with WORKER_DIED: a driver never
 * waits on a dead node.
 *
 * Running side: a forwarded task is a normal task here, with the owner's task id, its
 * arguments held by the link (they were pushed), its job mapped to a local job with the
 * owner's code path, and its return objects held by the link until they go back: small
 * ones pushed, large ones kept here until pulled (lineage.c).  Calls of actors on other
 * nodes travel the same way (ractor.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/task.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/sched.h"
#include "core/pgroup.h"

static bool local_has(struct krayd *d, const struct task *t)
{
	return node_here_has(d, t->res, t->nres);
}

/* t's resources as a submit gives them ("CPU:2,GPU:0.5"; CPU only when not 1), for
 * FWD_TASK (at most 255 bytes) and messages.  Returns the length. */
static size_t res_text(const struct task *t, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	if (t->cpu_milli != 1000)
		off = node_res_add(buf, off, len, "CPU", t->cpu_milli);
	for (unsigned i = 0; i < t->nres; i++)
		off = node_res_add(buf, off, len, t->res[i].name, t->res[i].milli);
	return off;
}

/* Sends t over l: its argument objects, then the task. */
static void send_task(struct krayd *d, struct link *l, struct task *t)
{
	const char *path = job_code_path(d, t->job);
	struct kray_msg_fwd_task m = { .task = t->id,
				       .actor = t->rem.ractor_id,
				       .job = t->job,
				       .num_returns = t->num_returns,
				       .nargs = t->nargs,
				       .max_retries = t->max_retries,
				       .name_len = t->fn->name_len,
				       .timeout_ms = t->timeout_ms };
	char res[256]; /* res_len is 8 bits; the submit's own text fitted */
	struct task_arg a;
	struct kbuf *b;

	if (!path)
		path = "";
	m.path_len = (uint32_t)strlen(path);
	m.res_len = (uint8_t)res_text(t, res, sizeof(res));
	for (task_arg_first(&a, t); task_arg_next(&a);) {
		struct obj *o;

		if (a.v.type != KRAY_WT_REF && a.v.type != KRAY_WT_ACTOR)
			continue;
		o = store_get(d, &a.id); /* held by t, ready */
		if (a.v.type == KRAY_WT_ACTOR)
			gactor_lent(d, &a.id); /* one of ours: the head may restart it */
		if (!pull_send_arg(d, l, o)) /* a large one of ours: pulled from a holder */
			xfer_push(l, o, KRAY_PUSH_ARG);
	}
	b = net_out(l);
	WIRE_FRAME(b, KRAY_MSG_FWD_TASK, 0, WIRE_FIXED(m),
		   WIRE_PADDED(t->fn->name, t->fn->name_len), WIRE_PADDED(path, m.path_len),
		   WIRE_PADDED(res, m.res_len), WIRE_RAW(t->args, t->args_len));
	net_flush(l);
}

static void fwd_add(struct krayd *d, struct task *t)
{
	struct cluster *cl = d->cl;
	bool fresh;

	t->rem.fwd_prev = NULL;
	t->next = cl->fwd;
	if (cl->fwd)
		cl->fwd->rem.fwd_prev = t;
	cl->fwd = t;
	*oidmap_upsert(&cl->fwd_index, &t->id, &fresh) = (uint64_t)(uintptr_t)t;
	node_sent(d, t->rem.fwd_node, 1);
}

static void fwd_del(struct krayd *d, struct task *t)
{
	struct cluster *cl = d->cl;

	if (t->rem.fwd_prev)
		t->rem.fwd_prev->next = t->next;
	else
		cl->fwd = t->next;
	if (t->next)
		t->next->rem.fwd_prev = t->rem.fwd_prev;
	t->next = t->rem.fwd_prev = NULL;
	oidmap_del(&cl->fwd_index, &t->id);
	node_sent(d, t->rem.fwd_node, -1);
	pull_task_gone(d, t); /* its node's copies of its arguments go with it */
}

/* Whether t has an argument that is a large object here: it runs where that is. */
static bool has_large_arg(struct krayd *d, const struct task *t)
{
	struct task_arg a;

	for (task_arg_first(&a, t); task_arg_next(&a);) {
		struct obj *o;

		if (a.v.type != KRAY_WT_REF)
			continue;
		o = store_get(d, &a.id);
		if (o && o->type == KRAY_WT_FD)
			return true;
	}
	return false;
}

/*
 * Spillback for load: a task this node could run, but only after num_cpus others already
 * queued here, goes to a node that is less loaded (by its last report and what we sent it
 * since), unless one of its arguments is a large object here (moving it would cost more
 * than waiting; Ray prefers the node that holds the arguments too).  Returns that node or 0.
 */
static uint32_t spill_target(struct krayd *d, struct task *t)
{
	double here, there = 0;
	unsigned cpus = d->cfg.num_cpus > 0 ? (unsigned)d->cfg.num_cpus : 1;
	unsigned busy = 0;
	uint32_t node;

	/* Another node's CPU count is not known here: tasks of more than one CPU stay. */
	if (!d->cl || d->st.tasks_queued < cpus || t->cpu_milli > 1000)
		return 0;
	for (struct worker *w = d->workers; w; w = w->next)
		if (w->inflight && !w->blocked && !w->actor)
			busy++;
	here = (double)(d->st.tasks_queued + busy) / cpus;
	node = node_pick(d, t->res, t->nres, 0, &there);
	if (!node || there + 1.0 / cpus >= here || has_large_arg(d, t))
		return 0;
	return node;
}

bool remote_take(struct krayd *d, struct task *t)
{
	char need[256];
	uint32_t node;
	struct link *l;

	if (t->rem.from_link || t->actor)
		return false; /* sent here by another node, or an actor's call: runs here */
	if (t->streaming) {
		/* A streaming call stays on its owner's node: its items go to the owner's
		 * connection (task_yield()), which no link carries yet. */
		if (t->place.node && t->place.node != d->node && !t->place.soft) {
			task_fail(d, t, KRAY_WE_UNSCHEDULABLE,
				  "'%.*s' is a streaming generator, which runs on its caller's "
				  "node, and its node affinity names node %08x",
				  t->fn->name_len, t->fn->name, t->place.node);
			return true;
		}
		if (!t->nres || local_has(d, t))
			return false;
		res_text(t, need, sizeof(need));
		task_fail(d, t, KRAY_WE_BAD_ARGS,
			  "'%.*s' is a streaming generator, which runs on its caller's node, "
			  "and this node lacks the resources '%s' it needs",
			  t->fn->name_len, t->fn->name, need);
		return true;
	}
	if (t->rem.ractor) {
		struct ractor *ra = ractor_get(d, &t->rem.ractor_id, false);

		/* Its node died and the head is asked where it lives now: the call waits,
		 * in its order, for the answer (ractor_located()). */
		if (ra && ra->locating) {
			ractor_park(d, ra, t);
			return true;
		}
		/* Over the link that created it: the calls keep their order, and the
		 * actor's node holds its handle for that link. */
		l = ra ? net_link_by_id(d, ra->link) : NULL;
		if (!l) {
			task_fail(d, t, KRAY_WE_ACTOR_DIED, "the node of actor %u.%u.%u is gone",
				  t->rem.ractor_id.node, t->rem.ractor_id.owner,
				  t->rem.ractor_id.seq);
			return true;
		}
		node = l->node;
		goto send;
	}
	/* Its scheduling strategy first (SPREAD, node affinity): a node, or as without. */
	if (t->place.node || t->place.spread) {
		char why[96];

		if (node_place(d, t->res, t->nres, &t->place, &node, why, sizeof(why))) {
			task_fail(d, t, KRAY_WE_UNSCHEDULABLE,
				  "'%.*s' cannot be scheduled by its node affinity: %s",
				  t->fn->name_len, t->fn->name, why);
			return true;
		}
		if (node == d->node)
			return false;
		if (node && (l = net_link_to(d, node)))
			goto send;
		if (node && !t->place.soft && !t->place.spread) {
			task_fail(d, t, KRAY_WE_UNSCHEDULABLE,
				  "'%.*s' cannot be scheduled by its node affinity: no link to "
				  "node %08x",
				  t->fn->name_len, t->fn->name, node);
			return true;
		}
	}
	/* A task of a placement group made here goes to its bundle's node. */
	node = t->nres ? pg_node_for(d, t->res, t->nres) : 0;
	if (node && node != d->node) {
		if (!(l = net_link_to(d, node))) {
			task_fail(d, t, KRAY_WE_BAD_ARGS,
				  "no link to node %08x, which holds the placement group bundle "
				  "'%.*s' needs",
				  node, t->fn->name_len, t->fn->name);
			return true;
		}
		goto send;
	}
	if (!t->nres || local_has(d, t)) {
		node = spill_target(d, t);
		if (!node || !(l = net_link_to(d, node)))
			return false;
		goto send;
	}
	node = d->cl ? node_pick(d, t->res, t->nres, t->rem.fwd_node, NULL) : 0;
	if (!node && d->cl && t->rem.fwd_node)
		node = node_pick(d, t->res, t->nres, 0,
				 NULL); /* the one it ran on is the only one */
	l = node ? net_link_to(d, node) : NULL;
	if (!l) {
		res_text(t, need, sizeof(need));
		task_fail(d, t, KRAY_WE_BAD_ARGS,
			  "no live node has the resources '%s' that '%.*s' "
			  "needs",
			  need, t->fn->name_len, t->fn->name);
		return true;
	}
send:
	send_task(d, l, t);
	t->rem.fwd_node = node;
	t->rem.fwd_link = l->id;
	fwd_add(d, t);
	d->cl->forwarded++;
	log_debug("task %u.%u ('%.*s') forwarded to node %08x", t->id.owner, t->id.seq,
		  t->fn->name_len, t->fn->name, node);
	return true;
}

int remote_on_done(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_fwd_done m;
	struct task *t;
	uint64_t *v;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed fwd done", -EBADMSG);
	v = oidmap_get(&d->cl->fwd_index, &m.task);
	if (!v)
		return 0; /* retried elsewhere already */
	t = (struct task *)(uintptr_t)*v;
	if (t->rem.fwd_link != l->id)
		return 0; /* an answer from a link it is no longer on */
	fwd_del(d, t);
	/* Returns the other node did not send (it cannot happen, but a get must never
	 * wait for them) become errors. */
	for (unsigned i = 0; i < t->num_returns; i++) {
		struct kray_oid id = t->id;
		struct obj *o;

		id.index = i;
		o = store_get(d, &id);
		if (o && o->state == OBJ_PENDING && !o->writer && !o->remote_link) {
			static const char msg[] = "the node that ran the task did not return it";

			store_seal_error(d, o, KRAY_WE_OBJECT_LOST, msg, sizeof(msg) - 1);
		}
	}
	d->st.tasks_finished++;
	if (t->rem.held_remote) {
		/* Its large returns are still on that node: keep the task, to run it again
		 * if the node dies before they are pulled. */
		bool fresh;

		*oidmap_upsert(&d->cl->lineage, &t->id, &fresh) = (uint64_t)(uintptr_t)t;
		return 0;
	}
	task_free(d, t);
	return 0;
}

static int by_seq(const void *a, const void *b)
{
	const struct task *x = *(struct task *const *)a, *y = *(struct task *const *)b;

	if (x->id.owner != y->id.owner)
		return x->id.owner < y->id.owner ? -1 : 1;
	return x->id.seq < y->id.seq ? -1 : x->id.seq > y->id.seq;
}

void remote_link_gone(struct link *l)
{
	struct krayd *d = l->d;
	struct task *t, *next, **calls = NULL;
	size_t ncalls = 0, cap = 0;

	for (t = d->cl->fwd; t; t = next) {
		next = t->next;
		if (t->rem.fwd_link != l->id)
			continue;
		fwd_del(d, t);
		if (t->rem.ractor) {
			struct ractor *ra = ractor_get(d, &t->rem.ractor_id, false);

			if (ra && ra->locating) {
				/* The head's answer says whether it may run again (it knows
				 * the creator's max_task_retries: ractor_located()). */
				t->attempts++;
				ractor_park(d, ra, t);
				continue;
			}
			if (ra && ra->link &&
			    (ra->max_task_retries < 0 || t->attempts < ra->max_task_retries)) {
				/* Sent again to the restarted actor, in their first order. */
				if (ncalls == cap) {
					cap = cap ? cap * 2 : 16;
					calls = realloc(calls, cap * sizeof(*calls));
					if (!calls)
						abort();
				}
				t->attempts++;
				calls[ncalls++] = t;
				continue;
			}
			task_fail(
				d, t, KRAY_WE_ACTOR_DIED,
				"node %08x, where actor %u.%u.%u lived, is gone%s", t->rem.fwd_node,
				t->rem.ractor_id.node, t->rem.ractor_id.owner, t->rem.ractor_id.seq,
				ra && ra->link ? " (it restarted; this call's retries are spent)" :
						 "");
		} else if (t->max_retries < 0 || t->attempts < t->max_retries) {
			t->attempts++;
			d->st.tasks_retried++;
			log_info("task %u.%u: node %08x is gone; retrying it elsewhere",
				 t->id.owner, t->id.seq, t->rem.fwd_node);
			sched_enqueue(d, t, true); /* remote_take() picks another node */
		} else {
			task_fail(d, t, KRAY_WE_WORKER_DIED,
				  "node %08x died while it ran '%.*s' (retries exhausted: %d)",
				  t->rem.fwd_node, t->fn->name_len, t->fn->name, t->max_retries);
		}
	}
	if (ncalls)
		qsort(calls, ncalls, sizeof(*calls), by_seq);
	for (size_t i = 0; i < ncalls; i++) {
		d->st.tasks_retried++;
		sched_enqueue(d, calls[i], false); /* -> remote_take(): the actor's new node */
	}
	free(calls);
}

int remote_on_task(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct wire_fwd_task f;
	struct task *t;

	if (wire_dec_fwd_task(body, len, &f))
		return conn_fail(l->c, "malformed forwarded task", -EBADMSG);
	if (f.m.task.node != l->node || f.m.task.index)
		return conn_fail(l->c, "a forwarded task must be its sender's", -EPERM);
	t = calloc(1, sizeof(*t));
	if (!t)
		abort();
	t->id = f.m.task;
	task_set_job(d, t, node_map_job(d, l->node, f.m.job, f.path, f.m.path_len));
	t->fn = sched_fn(d, f.name, f.m.name_len);
	t->num_returns = f.m.num_returns;
	t->nargs = f.m.nargs;
	t->max_retries = f.m.max_retries;
	t->timeout_ms = f.m.actor.index == KRAY_OID_ACTOR ? 0 : f.m.timeout_ms;
	t->rem.from_link = l->id;
	t->submit_ns = now_ns();
	d->st.tasks_submitted++;
	d->cl->received++;
	/* Its returns are held by the link until they have been pushed back. */
	for (unsigned i = 0; i < t->num_returns; i++) {
		struct kray_oid id = t->id;
		struct obj *o;

		id.index = i;
		o = store_get(d, &id);
		if (!o)
			o = store_create(d, &id);
		store_conn_ref(l->c, o);
	}
	if (f.args.left) {
		t->args = malloc(f.args.left);
		if (!t->args)
			abort();
		memcpy(t->args, f.args.p, f.args.left);
	}
	t->args_len = (uint32_t)f.args.left;
	if (task_set_resources(d, t, f.res, f.m.res_len))
		return 0; /* failed, and answered */
	if (f.m.actor.index == KRAY_OID_ACTOR) {
		struct actor *a = actor_find(d, &f.m.actor);

		if (!a || a->state == A_DEAD) {
			task_fail(d, t, a ? a->death_err : KRAY_WE_ACTOR_DIED, "%s",
				  a ? actor_death(a) : "no such actor on its node");
			return 0;
		}
		t->actor = a;
	}
	/* Its arguments were pushed ahead of it and are held by the link. */
	switch (task_resolve(d, l->c, t)) {
	case -1:
		break; /* failed, and answered */
	case 0:
		if (t->actor)
			actor_enqueue(d, t->actor, t);
		else
			sched_enqueue(d, t, false);
		break;
	default:
		if (t->actor)
			actor_enqueue(d, t->actor, t); /* waits at its place in the queue */
		break;
	}
	return 0;
}

void remote_task_done(struct krayd *d, struct task *t)
{
	struct link *l = d->cl ? net_link_by_id(d, t->rem.from_link) : NULL;
	struct kray_msg_fwd_done m = { .task = t->id };
	struct task_arg a;
	struct kbuf *b;

	if (!l)
		return; /* the owner's node is gone, with everything its link held */
	for (unsigned i = 0; i < t->num_returns; i++) {
		struct kray_oid id = t->id;
		struct obj *o;

		id.index = i;
		o = store_get(d, &id);
		if (o && o->state == OBJ_READY && o->type == KRAY_WT_FD) {
			/* A large return stays here, held by the link, until its owner pulls
			 * it (on the first get or use there) or lets it go: as in Ray, the
			 * owner keeps where it is, not the bytes. */
			struct kray_msg_obj_held h = { .oid = id, .size = o->size };

			b = net_out(l);
			WIRE_FRAME(b, KRAY_MSG_OBJ_HELD, 0, WIRE_FIXED(h));
			continue;
		}
		if (o)
			xfer_push(l, o, KRAY_PUSH_ARG);
		store_conn_unref(l->c, &id);
	}
	for (task_arg_first(&a, t); task_arg_next(&a);)
		if (a.v.type == KRAY_WT_REF || a.v.type == KRAY_WT_ACTOR)
			store_conn_unref(l->c, &a.id); /* the push's hold */
	net_send_fixed(l, KRAY_MSG_FWD_DONE, &m, sizeof(m));
}

void remote_fini(struct krayd *d)
{
	while (d->cl->fwd) {
		struct task *t = d->cl->fwd;

		fwd_del(d, t);
		task_free(d, t);
	}
	oidmap_free(&d->cl->fwd_index);
}

static void send_cancel(struct krayd *d, const struct task *t, uint32_t flags)
{
	struct link *l = net_link_by_id(d, t->rem.fwd_link);
	struct kray_msg_cancel m = { .oid = t->id, .flags = flags };

	if (l)
		net_send_fixed(l, KRAY_MSG_FWD_CANCEL, &m, sizeof(m));
}

void remote_cancel(struct krayd *d, const struct kray_oid *tid, uint32_t flags)
{
	uint64_t *v;

	if (!d->cl)
		return;
	v = oidmap_get(&d->cl->fwd_index, tid);
	if (v)
		send_cancel(d, (const struct task *)(uintptr_t)*v, flags);
	if (!(flags & KRAY_CANCEL_RECURSIVE))
		return;
	/* Its children that went to other nodes: there, each cancels its own children. */
	for (struct task *t = d->cl->fwd; t; t = t->next)
		if (oid_eq(&t->parent, tid))
			send_cancel(d, t, flags);
}

int remote_on_cancel(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_cancel m;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed forwarded cancel", -EBADMSG);
	if (m.oid.node != l->node || m.oid.index)
		return 0; /* only a task's owner cancels it */
	task_cancel(l->d, &m.oid, m.flags & (KRAY_CANCEL_FORCE | KRAY_CANCEL_RECURSIVE));
	return 0;
}

void remote_job_end(struct krayd *d, uint32_t job)
{
	struct kray_msg_fwd_job_end m = { .job = job };

	if (!d->cl)
		return;
	for (struct link *l = d->cl->links; l; l = l->next)
		if (l->up && l->c && !l->c->closed)
			net_send_fixed(l, KRAY_MSG_FWD_JOB_END, &m, sizeof(m));
}

int remote_on_job_end(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_fwd_job_end m;
	struct kray_oid key = { 0 };
	uint64_t *v;
	uint32_t job;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed job end", -EBADMSG);
	key.node = l->node;
	key.owner = m.job;
	v = oidmap_get(&d->cl->jobs, &key);
	if (!v)
		return 0; /* none of its tasks came here */
	job = (uint32_t)*v;
	oidmap_del(&d->cl->jobs, &key); /* once: the end does not come back around */
	log_info("job %u of node %08x ended with its driver: its tasks here end too", m.job,
		 l->node);
	job_end(d, job);
	remote_job_end(d, job); /* and those they sent on */
	return 0;
}
