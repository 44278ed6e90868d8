// SPDX-License-Identifier: Apache-2.0
/*
 * Actors: stateful class instances, each in a worker process of its own.
 *
 * Creation registers the actor (and its name) at once and answers the creator; the
 * actor is then placed (its CPU slots, if it asked for any, must be free), a worker is
 * started for it, and the constructor runs there once its arguments exist.  Method calls
 * queue on the actor in submission order and go to its worker, max_concurrency at a time;
 * a call waits at the head of the queue until its arguments exist, so no later call
 * overtakes it.
 *
 * When the actor's process dies, calls in flight are retried within max_task_retries and
 * the actor restarts within max_restarts (the constructor runs again); otherwise it is
 * dead, and every queued and later call fails with the reason.  A constructor error is
 * final: it is the error of every call.  The handle is the object with the actor's id:
 * when nothing references it any more, or when the creator exits (unless detached), the
 * actor is stopped and its destructor runs.  Actor structs, constructor arguments
 * included, live until krayd exits: a dead actor's reason answers late calls, and its
 * constructor may still be in flight when it dies.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/task.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/sched.h"
#include "core/log.h"

#define ACTOR_PIPELINE 64

struct actor *actor_find(struct krayd *d, const struct kray_oid *id)
{
	uint64_t *v = oidmap_get(&d->actor_index, id);

	return v ? (struct actor *)(uintptr_t)*v : NULL;
}

static void actor_link(struct krayd *d, struct actor *a)
{
	bool fresh;

	a->next = d->actors;
	if (a->next)
		a->next->pprev = &a->next;
	a->pprev = &d->actors;
	d->actors = a;
	*oidmap_upsert(&d->actor_index, &a->id, &fresh) = (uint64_t)(uintptr_t)a;
}

static void actor_free(struct krayd *d, struct actor *a)
{
	while (a->qhead) {
		struct task *t = a->qhead;

		a->qhead = t->next;
		task_free(d, t);
	}
	if (a->ctor)
		task_free(d, a->ctor);
	free(a->name);
	free(a->ns);
	free(a->death);
	free(a);
}

static void actor_unlink_free(struct krayd *d, struct actor *a)
{
	*a->pprev = a->next;
	if (a->next)
		a->next->pprev = a->pprev;
	oidmap_del(&d->actor_index, &a->id);
	actor_free(d, a);
}

/* Once an actor is dead with no handle, process or call left, nothing refers to its record
 * but the listings (kray status, the state API): it joins the done actors, and the oldest
 * beyond dead-actors-kept are freed, so that weeks of short-lived actors do not grow
 * krayd. */
static void done_if_forgotten(struct krayd *d, struct actor *a)
{
	if (a->done || a->state != A_DEAD || !a->unheld || a->w || a->qhead || a->inflight)
		return;
	a->done = true;
	if (d->done_tail)
		d->done_tail->done_next = a;
	else
		d->done_head = a;
	d->done_tail = a;
	d->ndone++;
	/* Not a itself: the caller still uses it. */
	while (d->ndone > (unsigned)d->cfg.dead_actors_kept && d->done_head != a) {
		struct actor *old = d->done_head;

		d->done_head = old->done_next;
		d->ndone--;
		actor_unlink_free(d, old);
	}
}

static bool name_eq(const char *s, const char *p, size_t len)
{
	return s && strlen(s) == len && !memcmp(s, p, len);
}

struct actor *actor_by_name(struct krayd *d, const char *name, size_t len, const char *ns,
			    size_t ns_len)
{
	for (struct actor *a = d->actors; a; a = a->next)
		if (a->state != A_DEAD && name_eq(a->name, name, len) &&
		    name_eq(a->ns, ns ? ns : "", ns_len))
			return a;
	return NULL;
}

unsigned actor_count(struct krayd *d, enum actor_state state)
{
	unsigned n = 0;

	for (struct actor *a = d->actors; a; a = a->next)
		n += a->state == state;
	return n;
}

/* Fails the queued calls that can be failed now (those still waiting for arguments are
 * failed when they stop waiting: their dependencies point at them). */
static void fail_queue(struct krayd *d, struct actor *a)
{
	struct task **pp = &a->qhead;

	a->qtail = NULL;
	while (*pp) {
		struct task *t = *pp;

		if (t->deps_left) {
			a->qtail = t;
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		t->next = NULL;
		task_fail(d, t, a->death_err, "%s", actor_death(a));
	}
}

struct node_resource *node_res(struct krayd *d, const char *name)
{
	for (int i = 0; i < d->nres; i++)
		if (!strcmp(d->res[i].r.name, name))
			return &d->res[i];
	return NULL;
}

static void unplace(struct krayd *d, struct actor *a)
{
	if (!a->placed)
		return;
	a->placed = false;
	d->actor_slots_milli -= a->slots_milli;
	for (int i = 0; i < a->nres; i++)
		node_res(d, a->res[i].name)->used_milli -= a->res[i].milli;
}

/* What a's placement waits for, or NULL when everything it needs is free. */
static const char *missing(struct krayd *d, struct actor *a, char *buf, size_t len)
{
	uint32_t cap = (uint32_t)d->cfg.num_cpus * 1000;

	if (d->actor_slots_milli + a->slots_milli > cap) {
		snprintf(buf, len, "waiting for %.3g CPU slots (%.3g of %d free)",
			 a->slots_milli / 1000.0, (cap - d->actor_slots_milli) / 1000.0,
			 d->cfg.num_cpus);
		return buf;
	}
	for (int i = 0; i < a->nres; i++) {
		struct node_resource *n = node_res(d, a->res[i].name);

		if (n->used_milli + a->res[i].milli > n->r.milli) {
			snprintf(buf, len, "waiting for %.3g %s (%.3g of %.3g free)",
				 a->res[i].milli / 1000.0, a->res[i].name,
				 (n->r.milli - n->used_milli) / 1000.0, n->r.milli / 1000.0);
			return buf;
		}
	}
	return NULL;
}

static void place_pending(struct krayd *d);

static void fast_settle(struct krayd *d, struct actor *a);

const char *actor_death(const struct actor *a)
{
	return a->death ? a->death : "the actor died (no memory was left to say why)";
}

/* The actor is dead for good: err and the formatted reason answer every call from now. */
static void actor_dead(struct krayd *d, struct actor *a, uint8_t err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void actor_dead(struct krayd *d, struct actor *a, uint8_t err, const char *fmt, ...)
{
	va_list ap;

	if (a->state == A_DEAD)
		return;
	va_start(ap, fmt);
	free(a->death);
	a->death = wire_errmsg_v(NULL, fmt, ap);
	va_end(ap);
	a->death_err = err;
	a->state = A_DEAD;
	/* It never runs its constructor again: its record need not keep its job's. */
	job_drop(d, a->ctor->jp);
	a->ctor->jp = NULL;
	ext_actor_changed(d, a, false);
	log_debug("actor %u.%u dead: %.200s", a->id.owner, a->id.seq, actor_death(a));
	fast_settle(d, a); /* no fast call from now on */
	if (a->w && a->w->conn) {
		/* Still running (its handle went, or its creator exited): let it run its
		 * destructor and exit; it is reaped like any worker. */
		wire_frame(&a->w->conn->out, KRAY_MSG_ACTOR_STOP, 0, NULL, 0);
		conn_flush_later(a->w->conn);
	}
	unplace(d, a);
	fail_queue(d, a);
	/* What kept it alive or what it kept: its constructor's arguments (other actors'
	 * handles among them) and, if detached, krayd's own hold on its handle. */
	if (!a->ctor->deps_left)
		task_release_holds(d, a->ctor);
	if (a->detached) {
		struct obj *h = store_get(d, &a->id);

		a->detached = false;
		if (h)
			store_unref(d, h);
	}
	place_pending(d);
}

/* Starts a's process if the CPU slots and resources it needs are free. */
static void try_place(struct krayd *d, struct actor *a)
{
	struct worker *w;
	char why[160];

	if (a->state != A_PENDING || a->ctor->deps_left || d->stopping)
		return;
	if (!a->placed) {
		if (missing(d, a, why, sizeof(why)))
			return; /* waits: `kray status` says for what */
		a->placed = true;
		d->actor_slots_milli += a->slots_milli;
		for (int i = 0; i < a->nres; i++)
			node_res(d, a->res[i].name)->used_milli += a->res[i].milli;
	}
	/* An idle pool worker hosts it if one is there (its process, runtime and code are
	 * ready); the pool is refilled behind it (sched_refill(), once the constructor
	 * answered).  Else a worker is started for it. */
	w = d->cfg.actor_adopt ? sched_adopt(d, a) : NULL;
	if (w) {
		worker_adopt(w, a);
		a->state = A_STARTING;
		d->actors_adopted++;
		log_debug("actor %u.%u adopts idle worker %u (pid %d)", a->id.owner, a->id.seq,
			  w->id, (int)w->pid);
		actor_worker_ready(d, w); /* its constructor, now; the pool refills after it */
		return;
	}
	if (worker_spawn_actor(d, a)) {
		actor_dead(d, a, KRAY_WE_INTERNAL, "actor '%.*s' cannot start a worker",
			   a->ctor->fn->name_len, a->ctor->fn->name);
		return;
	}
	a->state = A_STARTING;
}

static void place_pending(struct krayd *d)
{
	for (struct actor *a = d->actors; a; a = a->next)
		if (a->state == A_PENDING)
			try_place(d, a);
}

int actor_create(struct conn *c, const struct wire_actor_create *m, struct kray_oid *ret_id,
		 const char **ret_why)
{
	struct krayd *d = c->d;
	struct kray_oid id = { d->node, c->id, m->m.seq, KRAY_OID_ACTOR };
	struct wire_resource res[KRAY_RESOURCES_MAX];
	struct wire_place pl;
	int nres = wire_parse_placed(m->res, m->m.res_len, res, &pl);
	bool elsewhere = pl.spread || (pl.node && pl.node != d->node);
	int r;

	/* An actor needing resources only another node has is placed there, and one with a
	 * scheduling strategy where that says. */
	for (int i = 0; i < nres && !elsewhere; i++) {
		struct node_resource *n = node_res(d, res[i].name);

		elsewhere = !n || n->r.milli < res[i].milli;
	}
	if (elsewhere) {
		if (store_get(d, &id)) {
			*ret_why = "actor id reused";
			return -EEXIST;
		}
		r = ext_actor_place(c, m, &pl, res, nres < 0 ? 0 : nres, ret_id);
		if (r == -EHOSTDOWN) {
			*ret_why = "its node affinity names a node that is not alive or lacks "
				   "its resources";
			return r;
		}
		if (r <= 0 && r != -ENOENT) {
			*ret_why = "no link to the node that has its resources";
			return r;
		}
		/* 1: this node's; -ENOENT: no node has them, refused below */
	}
	r = actor_create_as(c, m, &id, m->m.job && job_code_path(d, m->m.job) ? m->m.job : c->job,
			    ret_why);
	if (!r)
		*ret_id = id;
	return r;
}

int actor_create_as(struct conn *c, const struct wire_actor_create *m, const struct kray_oid *idp,
		    uint32_t job, const char **ret_why)
{
	struct krayd *d = c->d;
	struct kray_oid id = *idp;
	uint64_t need = m->m.num_cpus_milli;
	struct actor *a;
	struct task *t;
	struct obj *h;

	if (store_get(d, &id)) {
		*ret_why = "actor id reused";
		return -EEXIST;
	}
	if (m->m.name_len &&
	    actor_by_name(d, m->name, m->m.name_len, m->ns ? m->ns : "", m->m.ns_len)) {
		*ret_why = "an actor with this name exists in this namespace";
		return -EEXIST;
	}
	if (need > (uint64_t)d->cfg.num_cpus * 1000) {
		*ret_why = "it needs more CPUs than this node has";
		return -EINVAL;
	}
	struct wire_resource res[KRAY_RESOURCES_MAX];
	int nres = wire_parse_placed(m->res, m->m.res_len, res, NULL); /* placed already */

	if (nres < 0) {
		*ret_why = "resources are not NAME:QTY,... (at most 16, 3 decimals)";
		return -EINVAL;
	}
	for (int i = 0; i < nres; i++) {
		struct node_resource *n = node_res(d, res[i].name);

		if (!n || n->r.milli < res[i].milli) {
			*ret_why = "it needs a custom resource this node does not have (or not "
				   "that much)";
			return -EINVAL;
		}
	}
	a = calloc(1, sizeof(*a));
	t = calloc(1, sizeof(*t));
	if (!a || !t)
		abort();
	a->id = id;
	a->owner = c->id;
	a->detached = m->m.detached;
	a->max_restarts = m->m.max_restarts;
	a->max_task_retries = m->m.max_task_retries;
	a->max_concurrency = m->m.max_concurrency;
	a->slots_milli = m->m.num_cpus_milli;
	a->nres = nres;
	memcpy(a->res, res, (size_t)nres * sizeof(*res));
	if (m->m.name_len && (!(a->name = strndup(m->name, m->m.name_len)) ||
			      !(a->ns = strndup(m->ns ? m->ns : "", m->m.ns_len))))
		abort();
	/* The constructor is a task the actor keeps, to run again at each restart. */
	t->id = id;
	t->id.index = 0;
	task_set_job(d, t, job);
	t->fn = sched_fn(d, m->cls, m->m.class_len);
	t->nargs = m->m.nargs;
	t->ctor = true;
	t->actor = a;
	if (m->args.left) {
		t->args = malloc(m->args.left);
		if (!t->args)
			abort();
		memcpy(t->args, m->args.p, m->args.left);
	}
	t->args_len = (uint32_t)m->args.left;
	a->ctor = t;
	actor_link(d, a);

	/* The handle: an object with the actor's id, held by the creator (and by krayd
	 * itself for a detached actor). */
	h = store_create(d, &id);
	store_conn_ref(c, h);
	if (a->detached)
		store_ref(h);
	struct wire_value v = { .type = KRAY_WT_ACTOR, .data = &id, .len = sizeof(id) };

	store_seal(d, h, &v);
	a->state = A_PENDING;
	ext_actor_changed(d, a, true);
	if (task_resolve(d, c, t) == 0)
		try_place(d, a);
	return 0;
}

void actor_ctor_ready(struct krayd *d, struct actor *a)
{
	struct obj *err;
	unsigned arg;

	if (a->state == A_DEAD)
		return;
	err = task_error_arg(d, a->ctor, &arg);
	if (err) {
		task_fail_from_arg(d, a->ctor, err, arg); /* -> actor_ctor_failed() */
		return;
	}
	try_place(d, a);
}

void actor_ctor_failed(struct krayd *d, struct actor *a, uint8_t err, const char *msg, size_t len)
{
	actor_dead(d, a, err == KRAY_WE_NONE ? KRAY_WE_TASK : err,
		   "actor '%.*s' could not be constructed: %.*s", a->ctor->fn->name_len,
		   a->ctor->fn->name, (int)len, msg);
}

void actor_worker_ready(struct krayd *d, struct worker *w)
{
	struct actor *a = w->actor;

	if (a->state != A_STARTING || a->w != w) {
		/* The actor died while this process was starting: it has nothing to host. */
		conn_close(w->conn, "its actor is gone");
		return;
	}
	sched_send_exec(d, w, a->ctor);
}

void actor_enqueue(struct krayd *d, struct actor *a, struct task *t)
{
	t->next = NULL;
	if (a->qtail)
		a->qtail->next = t;
	else
		a->qhead = t;
	a->qtail = t;
	actor_dispatch(d, a);
}

struct task *actor_unqueue(struct krayd *d, const struct kray_oid *id)
{
	for (struct actor *a = d->actors; a; a = a->next) {
		struct task *prev = NULL;

		for (struct task **pp = &a->qhead; *pp; prev = *pp, pp = &(*pp)->next) {
			struct task *t = *pp;

			if (!oid_eq(&t->id, id))
				continue;
			*pp = t->next;
			if (a->qtail == t)
				a->qtail = prev;
			t->next = NULL;
			task_unwait(d, t);
			/* A call that waited at the head may have held later ones back. */
			actor_dispatch(d, a);
			return t;
		}
	}
	return NULL;
}

/* As in Ray, an actor whose handles are all gone still answers the calls made before:
 * `A.remote().f.remote()` works.  It ends when the last of them is done. */
static void end_if_unheld(struct krayd *d, struct actor *a)
{
	if (a->unheld && a->state != A_DEAD && !a->qhead && !a->inflight)
		actor_dead(d, a, KRAY_WE_ACTOR_DIED, "actor '%.*s' ended: no handle to it remains",
			   a->ctor->fn->name_len, a->ctor->fn->name);
}

/*
 * The fast path's claim on the actor's worker (docs/fastpath.md, "Actor calls"): claimable
 * by its own callers' fast calls only while it is alive, idle and nothing waits for it
 * here; held (or retired, once dead) otherwise, so a fast call never overtakes a queued one.
 */
static void fast_settle(struct krayd *d, struct actor *a)
{
	struct worker *w = a->w;

	if (!w || !w->fast_slot)
		return;
	if (a->state == A_DEAD)
		ext_worker_retire(d, w);
	else
		ext_worker_settle(d, w, a->qhead != NULL || a->state != A_ALIVE);
}

void actor_dispatch(struct krayd *d, struct actor *a)
{
	if (a->state == A_DEAD) {
		fail_queue(d, a);
		done_if_forgotten(d, a);
		return;
	}
	/* Beyond the calls that may run, up to ACTOR_PIPELINE more wait in the worker, in
	 * order: a stream of calls then costs one round trip per batch, not per call. */
	while (a->state == A_ALIVE && a->qhead &&
	       a->inflight < (unsigned)a->max_concurrency + ACTOR_PIPELINE && a->w && a->w->conn &&
	       !a->w->conn->closed) {
		struct task *t = a->qhead;
		struct obj *err;
		unsigned arg;

		if (t->deps_left)
			break; /* later calls wait behind it */
		a->qhead = t->next;
		if (!a->qhead)
			a->qtail = NULL;
		t->next = NULL;
		err = task_error_arg(d, t, &arg);
		if (err) {
			task_fail_from_arg(d, t, err, arg);
			continue;
		}
		if (a->w->fast_slot) /* it may run a fast call: this one runs next */
			ext_worker_pass(d, a->w);
		if (!sched_send_exec(d, a->w, t))
			a->inflight++;
	}
	fast_settle(d, a);
	end_if_unheld(d, a);
}

void actor_result(struct conn *c, struct task *t, const struct wire_result *r)
{
	struct krayd *d = c->d;
	struct actor *a = t->actor;

	if (t->ctor) {
		struct wire_rd rd = r->values;
		struct wire_value v;

		t->next = NULL;
		/* An adopted pool worker let go of its pool fast connection before it ran the
		 * constructor: its slot is freed now (it may ask for an actor's). */
		ext_worker_unpooled(d, c->worker);
		if (r->m.n == 1 && !wire_rd_value(&rd, &v) && v.type == KRAY_WT_ERROR) {
			actor_ctor_failed(d, a, v.err, v.data, v.len);
			return;
		}
		if (a->state == A_STARTING) {
			a->state = A_ALIVE;
			actor_dispatch(d, a);
		}
		return;
	}
	a->inflight--;
	if (t->cancelled) /* cancelled while it waited in the actor's process */
		task_fail_cancelled(d, t);
	else
		task_finish(c, t, r->values, r->m.n);
	actor_dispatch(d, a);
}

void actor_worker_died(struct krayd *d, struct worker *w, const char *how)
{
	struct actor *a = w->actor;
	struct task *t = w->head, *retry = NULL, **tail = &retry;
	bool restart;

	w->head = w->tail = NULL;
	w->inflight = 0;
	a->w = NULL;
	a->inflight = 0;
	restart = a->state != A_DEAD && !a->no_restart &&
		  (a->max_restarts < 0 || a->restarts < a->max_restarts);
	/* The first max_concurrency calls it held may have been running: again after the
	 * restart if their retries allow.  The rest had not started: queued as they were. */
	for (unsigned i = 0; t; i++) {
		struct task *next = t->next;

		t->next = NULL;
		if (t->ctor) {
			t = next;
			continue;
		}
		if (t->cancelled) { /* as Ray: a cancelled call is not retried */
			task_fail_cancelled(d, t);
			t = next;
			continue;
		}
		if (i < a->max_concurrency)
			t->attempts++;
		if (i >= a->max_concurrency ||
		    (restart && (a->max_task_retries < 0 || t->attempts <= a->max_task_retries))) {
			*tail = t;
			tail = &t->next;
			if (i < a->max_concurrency)
				d->st.tasks_retried++;
		} else {
			task_fail(d, t, KRAY_WE_ACTOR_DIED,
				  "actor '%.*s' died while running '%.*s' (pid %d %s)",
				  a->ctor->fn->name_len, a->ctor->fn->name, t->fn->name_len,
				  t->fn->name, (int)w->pid, how);
		}
		t = next;
	}
	if (retry) {
		struct task *last = retry;

		while (last->next)
			last = last->next;
		last->next = a->qhead;
		if (!a->qhead)
			a->qtail = last;
		a->qhead = retry;
	}
	if (a->state == A_DEAD) {
		fail_queue(d, a);
		done_if_forgotten(d, a);
		return;
	}
	if (!restart) {
		actor_dead(d, a, KRAY_WE_ACTOR_DIED, "actor '%.*s' died: pid %d %s%s",
			   a->ctor->fn->name_len, a->ctor->fn->name, (int)w->pid, how,
			   a->no_restart   ? " (killed)" :
			   a->max_restarts ? "; no restarts left" :
					     "");
		return;
	}
	a->restarts++;
	log_info("actor '%.*s' (pid %d) %s: restarting (%u of %d)", a->ctor->fn->name_len,
		 a->ctor->fn->name, (int)w->pid, how, a->restarts, a->max_restarts);
	a->state = A_PENDING;
	try_place(d, a);
}

int actor_kill(struct krayd *d, struct actor *a, bool no_restart)
{
	struct worker *w = a->w;

	if (a->state == A_DEAD)
		return -ENOENT;
	if (no_restart)
		a->no_restart = true;
	if (a->no_restart || (a->max_restarts >= 0 && a->restarts >= a->max_restarts)) {
		/* Dead now, not when the process is reaped: its name is free at once and
		 * every later call fails. */
		actor_dead(d, a, KRAY_WE_ACTOR_DIED, "actor '%.*s' was killed",
			   a->ctor->fn->name_len, a->ctor->fn->name);
	}
	if (w)
		kill(w->pid, SIGKILL); /* the reaper retries or fails what it was running */
	return 0;
}

void actor_handle_gone(struct krayd *d, const struct kray_oid *id)
{
	struct actor *a = actor_find(d, id);

	if (!a)
		ext_actor_released(d, id); /* its node drops the handle this node held */
	if (!a)
		return;
	a->unheld = true;
	end_if_unheld(d, a);
	done_if_forgotten(d, a);
}

void actor_owner_gone(struct krayd *d, uint32_t owner)
{
	for (struct actor *a = d->actors; a; a = a->next)
		if (a->owner == owner && !a->detached && a->state != A_DEAD)
			actor_dead(d, a, KRAY_WE_ACTOR_DIED,
				   "actor '%.*s' ended: its creator exited", a->ctor->fn->name_len,
				   a->ctor->fn->name);
}

void actor_fini(struct krayd *d)
{
	while (d->actors) {
		struct actor *a = d->actors;

		d->actors = a->next;
		actor_free(d, a);
	}
	oidmap_free(&d->actor_index);
}

/* One line per actor for `kray status`: id, class, name, state and why. */
const char *actor_waits_for(struct krayd *d, const struct actor *a, char *buf, size_t len)
{
	if (a->state == A_PENDING && a->ctor->deps_left)
		snprintf(buf, len, "waiting for %d constructor argument%s", a->ctor->deps_left,
			 a->ctor->deps_left == 1 ? "" : "s");
	else if (a->state == A_PENDING && !a->placed && missing(d, (struct actor *)a, buf, len))
		;
	else if (a->state == A_PENDING && d->stopping)
		snprintf(buf, len, "krayd is stopping");
	else if (a->state == A_PENDING)
		snprintf(buf, len, "waiting for its worker process to be started");
	else if (a->state == A_STARTING && a->w && a->w->conn) /* connected (or adopted) */
		snprintf(buf, len, "running its constructor in worker process %d", (int)a->w->pid);
	else if (a->state == A_STARTING)
		snprintf(buf, len,
			 "waiting for its worker process (pid %d) to start and run its "
			 "constructor",
			 a->w ? (int)a->w->pid : 0);
	else
		return NULL;
	return buf;
}

void actor_describe(struct krayd *d, struct kbuf *b)
{
	static const char *const states[] = { "pending", "starting", "alive", "dead" };

	for (struct actor *a = d->actors; a; a = a->next) {
		char line[1024], why[600] = "";
		int n;

		if (a->state == A_DEAD && !store_get(d, &a->id))
			continue; /* dead and forgotten: nobody holds a handle */
		if (actor_waits_for(d, a, why, sizeof(why)))
			;
		else if (a->state == A_DEAD)
			snprintf(why, sizeof(why), "%s", actor_death(a));
		else if (a->w)
			snprintf(why, sizeof(why), "pid %d, %u call%s in flight, %u restart%s",
				 (int)a->w->pid, a->inflight, a->inflight == 1 ? "" : "s",
				 a->restarts, a->restarts == 1 ? "" : "s");
		n = snprintf(line, sizeof(line), "%u.%u.%u %.*s %s%s%s %s: %s\n", a->id.node,
			     a->id.owner, a->id.seq, a->ctor->fn->name_len, a->ctor->fn->name,
			     a->name ? a->ns : "", a->name ? "/" : "", a->name ? a->name : "-",
			     states[a->state], why);
		kbuf_put(b, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
}
