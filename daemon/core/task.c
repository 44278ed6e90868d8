// SPDX-License-Identifier: Apache-2.0
/*
 * Task life cycle: a submit creates the task's return objects, takes a hold on every
 * argument object and waits for the pending ones; the scheduler runs it; its result (or
 * its failure) seals the return objects and drops the holds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/krayd.h"
#include "core/worker.h"
#include "core/conn.h"
#include "core/task.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/sched.h"
#include "core/log.h"

struct task_err {
	struct krayd *d;
	struct obj *obj; /* an argument that is an error */
	unsigned arg;
};

/* Calls fn for each REF argument of t.  Stops early when fn returns nonzero. */
static int for_each_ref(struct task *t,
			int (*fn)(struct task *, unsigned, struct kray_oid *, void *), void *arg)
{
	struct task_arg a;

	for (task_arg_first(&a, t); task_arg_next(&a);) {
		/* Actor handles are held like refs (the actor must outlive the call) but
		 * passed as they are; their objects are always ready. */
		if (a.v.type != KRAY_WT_REF && a.v.type != KRAY_WT_ACTOR)
			continue;
		int ret = fn(t, a.i, &a.id, arg);

		if (ret)
			return ret;
	}
	return 0;
}

static int check_exists(struct task *t, unsigned i, struct kray_oid *id, void *arg)
{
	struct krayd *d = arg;

	if (id->node == t->id.node && id->owner == t->id.owner && id->seq == t->id.seq) {
		/* It would wait for itself forever. */
		task_fail(d, t, KRAY_WE_BAD_ARGS, "argument %u of '%.*s' is its own result", i,
			  t->fn->name_len, t->fn->name);
		return 1;
	}
	if (store_get(d, id) && (!t->submitter || oidmap_get(&t->submitter->refs, id)))
		return 0;
	if (store_get(d, id)) /* it exists, but the submitter holds no ref to it */
		task_fail(d, t, KRAY_WE_OBJECT_LOST,
			  "argument %u of '%.*s': object %u.%u.%u.%u is not held by the caller", i,
			  t->fn->name_len, t->fn->name, id->node, id->owner, id->seq, id->index);
	else if (id->index == KRAY_OID_ACTOR)
		task_fail(d, t, KRAY_WE_ACTOR_DIED,
			  "argument %u of '%.*s': actor %u.%u.%u has no handle left (released)", i,
			  t->fn->name_len, t->fn->name, id->node, id->owner, id->seq);
	else
		task_fail(d, t, KRAY_WE_OBJECT_LOST,
			  "argument %u of '%.*s': object %u.%u.%u.%u does not exist (never "
			  "created, or released by its owner)",
			  i, t->fn->name_len, t->fn->name, id->node, id->owner, id->seq, id->index);
	return 1;
}

static int hold(struct task *t, unsigned i, struct kray_oid *id, void *arg)
{
	struct task_err *e = arg;
	struct obj *o = store_get(e->d, id);

	(void)t;
	store_ref(o);
	if (o->state == OBJ_READY && o->type == KRAY_WT_ERROR && !e->obj) {
		e->obj = o;
		e->arg = i;
	}
	return 0;
}

static int release(struct task *t, unsigned i, struct kray_oid *id, void *arg)
{
	struct krayd *d = arg;
	struct obj *o = store_get(d, id);

	(void)t;
	(void)i;
	if (o)
		store_unref(d, o);
	return 0;
}

static void task_dep_ready(struct krayd *d, struct task *t, struct obj *o);

static void dep_ready(struct krayd *d, void *arg, struct obj *o)
{
	task_dep_ready(d, arg, o);
}

static int wait_for(struct task *t, unsigned i, struct kray_oid *id, void *arg)
{
	struct krayd *d = arg;
	struct obj *o = store_get(d, id);

	(void)i;
	/* A spilled argument is restored now, on the spill thread, and waited for like a
	 * pending one (a task queued long may find it spilled again: sched.c's exec_fits()
	 * then restores it on the loop). */
	if (o->state == OBJ_READY && !store_want(d, o))
		return 0;
	store_wait(d, o, dep_ready, t);
	t->deps_left++;
	if (o->state != OBJ_READY)
		ext_obj_wanted(d, o);
	return 0;
}

void task_release_holds(struct krayd *d, struct task *t)
{
	if (t->holds)
		for_each_ref(t, release, d);
	t->holds = false;
}

void task_free(struct krayd *d, struct task *t)
{
	oidmap_del(&d->cancelled, &t->id);
	if (t->deps_left && !t->actor)
		oidmap_del(&d->waiting, &t->id);
	task_release_holds(d, t);
	if (t->jp)
		job_drop(d, t->jp);
	free(t->res);
	free(t->args);
	freelist_put(&d->task_fl, t);
}

void task_fail_from_arg(struct krayd *d, struct task *t, struct obj *o, unsigned arg)
{
	task_fail(d, t, o->err, "argument %u of '%.*s' is an error: %.*s", arg, t->fn->name_len,
		  t->fn->name, (int)o->len, (const char *)o->data);
}

struct obj *task_error_arg(struct krayd *d, struct task *t, unsigned *ret_arg)
{
	struct task_arg a;

	for (task_arg_first(&a, t); task_arg_next(&a);) {
		struct obj *o = a.v.type == KRAY_WT_REF ? store_get(d, &a.id) : NULL;

		if (o && o->type == KRAY_WT_ERROR) {
			*ret_arg = a.i;
			return o;
		}
	}
	return NULL;
}

int task_resolve(struct krayd *d, struct conn *submitter, struct task *t)
{
	struct task_err e = { .d = d };
	int r;

	/* Arguments must be refs the submitter holds, not just objects that exist.  A failed
	 * check has failed (and freed) t. */
	t->submitter = submitter;
	r = for_each_ref(t, check_exists, d);
	if (r)
		return -1;
	t->submitter = NULL;
	for_each_ref(t, hold, &e);
	t->holds = true;
	if (e.obj) {
		task_fail_from_arg(d, t, e.obj, e.arg);
		return -1;
	}
	for_each_ref(t, wait_for, d);
	if (!t->deps_left)
		return 0;
	d->st.tasks_waiting++;
	if (!t->actor) {
		bool fresh;

		*oidmap_upsert(&d->waiting, &t->id, &fresh) = (uintptr_t)t;
	}
	return 1;
}

static int unwait(struct task *t, unsigned i, struct kray_oid *id, void *arg)
{
	struct krayd *d = arg;
	struct obj *o = store_get(d, id);

	(void)i;
	if (o && store_awaited(o))
		store_unwait(d, o, dep_ready, t);
	return 0;
}

void task_unwait(struct krayd *d, struct task *t)
{
	if (!t->deps_left)
		return;
	for_each_ref(t, unwait, d);
	if (!t->actor)
		oidmap_del(&d->waiting, &t->id);
	t->deps_left = 0;
	d->st.tasks_waiting--;
}

struct task *task_waiting(struct krayd *d, const struct kray_oid *id)
{
	uint64_t *v = oidmap_get(&d->waiting, id);

	return v ? (struct task *)(uintptr_t)*v : NULL;
}

/*
 * Takes t's resources from a submit's text "NAME:QTY,..." (checked by the decoder):
 * "CPU" is the number of CPU slots it holds while it runs (1 if not given, as in Ray;
 * fractions and 0 are allowed), the others are custom resources.  A task that needs more
 * CPUs than this node has fails (BAD_ARGS; returns -1), as it would wait forever.
 */
int task_set_resources(struct krayd *d, struct task *t, const char *s, size_t len)
{
	struct wire_resource res[KRAY_RESOURCES_MAX];
	int n = len ? wire_parse_placed(s, len, res, &t->place) : 0;

	t->cpu_milli = 1000;
	for (int i = 0; i < n; i++) {
		if (strcmp(res[i].name, "CPU"))
			continue;
		t->cpu_milli = (uint32_t)(res[i].milli < UINT32_MAX ? res[i].milli : UINT32_MAX);
		res[i--] = res[--n];
	}
	if (n > 0) {
		t->res = malloc((size_t)n * sizeof(*res));
		if (!t->res)
			abort();
		memcpy(t->res, res, (size_t)n * sizeof(*res));
		t->nres = (uint8_t)n;
	}
	if (t->cpu_milli > (uint64_t)d->cfg.num_cpus * 1000) {
		task_fail(d, t, KRAY_WE_BAD_ARGS,
			  "'%.*s' needs %.3g CPUs and this node has %d (it would never run)",
			  t->fn->name_len, t->fn->name, t->cpu_milli / 1000.0, d->cfg.num_cpus);
		return -1;
	}
	return 0;
}

/* The item object a streaming call's owner waits on next: (t, 1 + items so far), pending,
 * held by the owner's connection c. */
static void stream_slot(struct conn *c, struct task *t)
{
	struct kray_oid id = t->id;
	struct obj *o;

	id.index = 1 + t->stream_n;
	o = store_get(c->d, &id);
	if (!o)
		o = store_create(c->d, &id);
	store_conn_ref(c, o);
}

/* The connection of t's owner, if it is still here. */
static struct conn *stream_owner(struct krayd *d, const struct task *t)
{
	if (t->id.node != d->node)
		return NULL;
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->id == t->id.owner && (c->role == ROLE_DRIVER || c->role == ROLE_WORKER))
			return c;
	return NULL;
}

/* A streaming call ended: its pending item object says how (KRAY_WE_STREAM_END, or the
 * call's error), and no other is made. */
static void stream_end(struct krayd *d, struct task *t, uint8_t err, const char *msg, size_t len)
{
	struct kray_oid id = t->id;
	struct obj *o;

	id.index = 1 + t->stream_n;
	o = store_get(d, &id);
	if (o && o->state == OBJ_PENDING)
		store_seal_error(d, o, err, msg, len);
}

void task_submit(struct conn *c, const struct wire_submit *s)
{
	struct krayd *d = c->d;
	struct task *t = freelist_get(&d->task_fl, sizeof(*t));
	struct actor *a = NULL;

	if (!t)
		abort();
	t->id = (struct kray_oid){ d->node, c->id, s->m.seq, 0 };
	task_set_job(d, t, s->m.job && job_get(d, s->m.job) ? s->m.job : c->job);
	t->fn = sched_fn(d, s->name, s->m.name_len);
	t->num_returns = s->m.num_returns;
	t->streaming = s->m.flags & KRAY_SUBMIT_STREAMING;
	if (s->m.flags & KRAY_SUBMIT_RETRY)
		d->st.tasks_retried++; /* its first try was a fast call (docs/fastpath.md) */
	t->nargs = s->m.nargs;
	t->max_retries = s->m.max_retries;
	t->timeout_ms = s->m.actor.index == KRAY_OID_ACTOR ? 0 : s->m.timeout_ms;
	/* A worker submits on behalf of the task it runs: kray_cancel(recursive) finds it. */
	if (c->role == ROLE_WORKER && c->worker && c->worker->head)
		t->parent = c->worker->head->id;
	t->submit_ns = loop_now(d);
	d->st.tasks_submitted++;

	/* The return objects exist from now on, held by the submitter. */
	for (unsigned i = 0; i < t->num_returns; i++) {
		struct kray_oid id = t->id;
		struct obj *o;
		bool fresh;

		id.index = i;
		o = store_get(d, &id);
		if (!o)
			o = store_create(d, &id);
		store_ref(o);
		(*oidmap_upsert(&c->refs, &id, &fresh))++;
	}
	if (t->streaming)
		stream_slot(c, t);
	if (s->args.left) {
		t->args = malloc(s->args.left);
		if (!t->args)
			abort();
		memcpy(t->args, s->args.p, s->args.left);
	}
	t->args_len = (uint32_t)s->args.left;
	if (task_set_resources(d, t, s->res, s->m.res_len))
		return;
	if (s->m.actor.index == KRAY_OID_ACTOR) {
		a = actor_find(d, &s->m.actor);
		if (!a && ext_actor_known(d, &s->m.actor)) {
			/* An actor on another node: the call goes there (remote.c). */
			if (!oidmap_get(&c->refs, &s->m.actor)) {
				task_fail(d, t, KRAY_WE_OBJECT_LOST,
					  "this process holds no handle to the actor (released?)");
				return;
			}
			t->rem.ractor = true;
			t->rem.ractor_id = s->m.actor;
			if (t->streaming) {
				task_fail(d, t, KRAY_WE_BAD_ARGS,
					  "streaming calls to an actor on another node are not "
					  "supported: call it from its own node, or use "
					  "num_returns='dynamic'");
				return;
			}
		} else if (!a || a->state == A_DEAD) {
			task_fail(d, t, a ? a->death_err : KRAY_WE_ACTOR_DIED, "%s",
				  a ? actor_death(a) : "no such actor");
			return;
		}
		if (a && !oidmap_get(&c->refs, &s->m.actor)) {
			task_fail(d, t, KRAY_WE_OBJECT_LOST,
				  "this process holds no handle to the actor (released?)");
			return;
		}
		t->actor = a;
		/* Its first try was a fast call whose worker died (docs/fastpath.md): it
		 * counts, as a call in flight when the actor died (actor_worker_died). */
		if (a && (s->m.flags & KRAY_SUBMIT_RETRY)) {
			t->attempts = 1;
			if (a->max_task_retries >= 0 && t->attempts > a->max_task_retries) {
				task_fail(d, t, KRAY_WE_ACTOR_DIED,
					  "actor '%.*s' died while running '%.*s' (fast path)",
					  a->ctor->fn->name_len, a->ctor->fn->name, t->fn->name_len,
					  t->fn->name);
				return;
			}
		}
	}
	switch (task_resolve(d, c, t)) {
	case -1:
		return;
	case 0:
		if (a)
			actor_enqueue(d, a, t);
		else
			sched_enqueue(d, t, false);
		return;
	default:
		if (a)
			actor_enqueue(d, a, t); /* waits at its place in the actor's queue */
		return;
	}
}

static void task_dep_ready(struct krayd *d, struct task *t, struct obj *o)
{
	struct obj *err;
	unsigned arg;

	(void)o;
	if (--t->deps_left)
		return;
	d->st.tasks_waiting--;
	if (!t->actor)
		oidmap_del(&d->waiting, &t->id);
	if (t->ctor) {
		actor_ctor_ready(d, t->actor);
		return;
	}
	if (t->actor) {
		actor_dispatch(d, t->actor); /* it decides, in order */
		return;
	}
	if (task_cancelled_fail(d, t))
		return;
	/* An argument that turned out to be an error fails the task, as in Ray. */
	err = task_error_arg(d, t, &arg);
	if (err)
		task_fail_from_arg(d, t, err, arg);
	else
		sched_enqueue(d, t, false);
}

/* Seals return slot i of t. */
static struct obj *ret_obj(struct krayd *d, struct task *t, unsigned i)
{
	struct kray_oid id = t->id;

	id.index = i;
	return store_get(d, &id);
}

/* Seals return slot o with a value the worker sent: an OBJECT value moves the large
 * object the worker created (it must be the worker's own) into the slot. */
static void seal_return(struct conn *from, struct task *t, struct obj *o,
			const struct wire_value *v)
{
	struct krayd *d = from->d;
	struct kray_oid src_id;
	struct obj *src;

	if (!store_holds_refs(from, v)) {
		static const char msg[] = "the result contains a ref its worker does not hold";

		store_seal_error(d, o, KRAY_WE_OBJECT_LOST, msg, sizeof(msg) - 1);
		return;
	}
	if (v->type != KRAY_WT_OBJECT) {
		store_seal(d, o, v);
		return;
	}
	memcpy(&src_id, v->data, sizeof(src_id));
	src = store_get(d, &src_id);
	if (!src || src_id.owner != from->id || src_id.node != d->node || store_move(d, o, src)) {
		static const char msg[] = "the worker returned an object it does not own";

		(void)t;
		store_seal_error(d, o, KRAY_WE_INTERNAL, msg, sizeof(msg) - 1);
	}
	if (src)
		store_conn_unref(from, &src_id);
}

void task_yield(struct conn *from, struct task *t, const struct wire_yield *y)
{
	static const char no_item[] = "the worker sent an item out of order";
	struct krayd *d = from->d;
	struct kray_oid id = t->id;
	struct conn *owner = NULL;
	struct obj *o = NULL;

	id.index = 1 + t->stream_n;
	/* A retried call yields again what its first run did: the first copy stays. */
	if (t->streaming && y->m.index == t->stream_n && id.index + 1 < KRAY_OID_ACTOR)
		o = store_get(d, &id);
	if (!o || o->state != OBJ_PENDING) {
		if (t->streaming && y->m.index > t->stream_n)
			log_warn("task %u.%u: %s", t->id.owner, t->id.seq, no_item);
		if (y->v.type == KRAY_WT_OBJECT) {
			struct kray_oid src;

			memcpy(&src, y->v.data, sizeof(src));
			if (src.owner == from->id && src.node == d->node)
				store_conn_unref(from, &src);
		}
		return;
	}
	t->stream_n++;
	/* The owner waits for the next one, unless it dropped the generator. */
	if (o->refs && (owner = stream_owner(d, t)))
		stream_slot(owner, t);
	seal_return(from, t, o, &y->v);
}

void task_finish(struct conn *from, struct task *t, struct wire_rd values, uint32_t n)
{
	struct krayd *d = from->d;
	struct wire_value v, err = { 0 };

	/* A worker answers with num_returns values, or with one error for all of them. */
	if (n == 1) {
		struct wire_rd peek = values;

		if (!wire_rd_value(&peek, &v) && v.type == KRAY_WT_ERROR)
			err = v;
	}
	if (!err.type && n != t->num_returns) {
		task_fail(d, t, KRAY_WE_INTERNAL, "'%.*s' returned %u values, expected %u",
			  t->fn->name_len, t->fn->name, n, t->num_returns);
		return;
	}
	/* A streaming call's end first: once its completion is ready, every item is. */
	if (t->streaming) {
		static const char end[] = "the stream ended";

		if (err.type)
			stream_end(d, t, err.err, err.data, err.len);
		else
			stream_end(d, t, KRAY_WE_STREAM_END, end, sizeof(end) - 1);
	}
	for (unsigned i = 0; i < t->num_returns; i++) {
		struct obj *o = ret_obj(d, t, i);

		if (!err.type && wire_rd_value(&values, &v))
			break; /* validated by the decoder: cannot happen */
		if (!o)
			continue;
		if (err.type)
			store_seal(d, o, &err);
		else
			seal_return(from, t, o, &v);
	}
	if (err.type)
		d->st.tasks_failed++;
	else
		d->st.tasks_finished++;
	if (t->rem.from_link)
		ext_task_done(d, t); /* run for another node: the returns go back */
	task_free(d, t);
}

void task_fail(struct krayd *d, struct task *t, uint8_t err, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	char *msg;
	const char *text;

	va_start(ap, fmt);
	msg = wire_errmsg_v(&n, fmt, ap);
	va_end(ap);
	text = msg ? msg : wire_errmsg_oom;
	if (!msg)
		n = strlen(wire_errmsg_oom);
	log_debug("task %u.%u failed: %.200s", t->id.owner, t->id.seq, text);
	if (t->ctor) {
		actor_ctor_failed(d, t->actor, err, text, n);
		free(msg);
		return;
	}
	if (t->streaming)
		stream_end(d, t, err, text, n);
	for (unsigned i = 0; i < t->num_returns; i++) {
		struct obj *o = ret_obj(d, t, i);

		if (o)
			store_seal_error(d, o, err, text, n);
	}
	free(msg);
	d->st.tasks_failed++;
	if (t->rem.from_link)
		ext_task_done(d, t);
	task_free(d, t);
}

void task_fail_cancelled(struct krayd *d, struct task *t)
{
	task_fail(d, t, KRAY_WE_CANCELLED, "task '%.*s' was cancelled", t->fn->name_len,
		  t->fn->name);
}

bool task_cancelled_fail(struct krayd *d, struct task *t)
{
	if (!oidmap_get(&d->cancelled, &t->id))
		return false;
	task_fail_cancelled(d, t); /* task_free() forgets the id */
	return true;
}
