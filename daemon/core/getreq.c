// SPDX-License-Identifier: Apache-2.0
/*
 * Pending gets.  A get is answered when the last of its objects is sealed, or with
 * -ETIMEDOUT at its deadline.  Each pending object holds a dep pointing at the get, so a
 * get outlives its answer (and its connection) until every dep has fired; `done` says it
 * was answered.  A worker's get blocks the worker: its CPU slot is free until the answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/store.h"
#include "core/task.h"
#include "core/getreq.h"
#include "core/worker.h"
#include "core/sched.h"

static void unlink_get(struct krayd *d, struct getreq *g)
{
	struct getreq **head = g->orphan ? &d->gets_gone : &d->gets;

	if (g->prev)
		g->prev->next = g->next;
	else if (*head == g)
		*head = g->next;
	if (g->next)
		g->next->prev = g->prev;
	g->next = g->prev = NULL;
}

static void maybe_free(struct krayd *d, struct getreq *g)
{
	if (g->done && !g->deps) {
		if (g->orphan)
			unlink_get(d, g);
		free(g->ids);
		free(g);
	}
}

static void reply_get(struct conn *c, struct getreq *g, int status)
{
	struct krayd *d = c->d;
	struct kray_msg_get_reply m = { .status = status, .n = status ? 0 : g->n };
	size_t off = WIRE_FRAME_OPEN(&c->out, KRAY_MSG_GET_REPLY, g->req, WIRE_FIXED(m));

	c->lazy_get = g->lazy; /* (store_send_value() asks the connection) */
	for (uint32_t i = 0; i < m.n; i++) {
		struct obj *o = store_get(d, &g->ids[i]);
		const struct kray_oid *id = &g->ids[i];

		/* (a pending one mapped lazily while it comes: store_lazy_net.c) */
		if (o && (o->state == OBJ_READY || (o->lazy && g->lazy)) &&
		    oidmap_get(&c->refs, id)) {
			store_send_value(c, o);
		} else {
			wire_put_errorf(&c->out, KRAY_WE_OBJECT_LOST,
					"object %u.%u.%u.%u is not held by this process (never "
					"received, or released)",
					id->node, id->owner, id->seq, id->index);
		}
	}
	conn_end_frame(c, off);
}

static void reply_wait(struct conn *c, struct getreq *g, int status)
{
	struct kray_msg_wait_reply m = { .n = g->n, .status = status };
	size_t off = WIRE_FRAME_OPEN(&c->out, KRAY_MSG_WAIT_REPLY, g->req, WIRE_FIXED(m));

	for (uint32_t i = 0; i < g->n; i++) {
		struct obj *o = store_get(c->d, &g->ids[i]);
		/* One that is missing or not held is "ready": a get says why at once. */
		uint8_t ready = !status &&
				(!o || o->state == OBJ_READY || !oidmap_get(&c->refs, &g->ids[i]));

		kbuf_put(&c->out, &ready, 1);
	}
	kbuf_put(&c->out, NULL, KRAY_PAD8(g->n) - g->n);
	conn_end_frame(c, off);
}

static void finish(struct krayd *d, struct getreq *g, int status)
{
	struct conn *c = g->conn;

	g->done = true;
	unlink_get(d, g);
	if (!c)
		return;
	if (c->worker)
		sched_blocked(c->worker, false);
	if (g->wait)
		reply_wait(c, g, status == -ECANCELED ? status : 0);
	else
		reply_get(c, g, status);
	conn_flush_later(c);
}

static void dep_ready(struct krayd *d, void *arg, struct obj *o);

/* Whether get (or wait) g of c waits for o: a get does not wait for an object that it
 * can map lazily while it comes from another node (store_lazy_net.c). */
static bool awaits(struct conn *c, const struct getreq *g, const struct obj *o)
{
	if (g->wait)
		return o->state != OBJ_READY;
	return store_awaited(o) && !(o->state != OBJ_READY && o->lazy && g->lazy && c->lazy &&
				     store_lazy_takes(o->lazy, c));
}

/* A get of g's that may take o lazily now. */
static bool takes_lazily(const struct dep *dep, const struct obj *o)
{
	const struct getreq *g = dep->arg;

	return dep->ready == dep_ready && !g->done && g->lazy && g->conn && g->conn->lazy &&
	       (!o->lazy || store_lazy_takes(o->lazy, g->conn));
}

bool get_lazy_minor_ok(struct krayd *d, struct obj *o)
{
	(void)d;
	for (const struct dep *dep = o->deps; dep; dep = dep->next)
		if (takes_lazily(dep, o) &&
		    !store_conn_lazy_minor(((struct getreq *)dep->arg)->conn))
			return false;
	return true;
}

bool get_lazy_wanted(struct krayd *d, struct obj *o)
{
	(void)d;
	for (const struct dep *dep = o->deps; dep; dep = dep->next)
		if (takes_lazily(dep, o))
			return true;
	return false;
}

void get_lazy_now(struct krayd *d, struct obj *o)
{
	for (;;) {
		struct getreq *g = NULL;
		unsigned n;

		for (const struct dep *dep = o->deps; dep && !g; dep = dep->next)
			if (takes_lazily(dep, o))
				g = dep->arg;
		if (!g)
			return;
		n = store_unwait(d, o, dep_ready, g);
		g->deps -= n;
		g->missing -= n < g->missing ? n : g->missing;
		if (!g->missing)
			finish(d, g, 0);
		maybe_free(d, g);
	}
}

void get_start(struct conn *c, uint64_t req, const struct wire_oids *ids, int64_t timeout_ms,
	       bool wait, uint32_t num_ready)
{
	struct krayd *d = c->d;
	struct getreq *g = calloc(1, sizeof(*g));
	uint32_t pending = 0;

	if (!g || (ids->n && !(g->ids = malloc(ids->n * sizeof(*g->ids)))))
		abort();
	g->conn = c;
	g->req = req;
	g->wait = wait;
	g->lazy = !wait && c->lazy && c->lazy_get;
	g->n = ids->n;
	if (g->n)
		memcpy(g->ids, ids->oids, g->n * sizeof(*g->ids));
	/* A timeout too far away to represent is forever. */
	g->deadline_ns = timeout_ms < 0 || timeout_ms > (INT64_MAX - now_ns()) / 1000000 ?
				 -1 :
				 now_ns() + timeout_ms * 1000000;

	if (c->worker && !c->worker->actor && c->worker->head && c->worker->head->cancelled) {
		finish(d, g, -ECANCELED); /* its task was cancelled: it waits for nothing */
		maybe_free(d, g);
		return;
	}
	/* Only refs this process holds are waited for; the others are errors.  A get also
	 * waits for the restore of a spilled object (started here, on the spill thread). */
	for (uint32_t i = 0; i < g->n; i++) {
		struct obj *o = store_get(d, &g->ids[i]);

		if (!o || !oidmap_get(&c->refs, &g->ids[i]))
			continue;
		if (!wait && o->state == OBJ_READY && !store_want_lazily(c, o))
			store_want(d, o);
		if (awaits(c, g, o))
			pending++;
	}
	/* A get needs every object; a wait needs num_ready of them. */
	if (wait)
		g->missing = num_ready > g->n - pending ? num_ready - (g->n - pending) : 0;
	else
		g->missing = pending;
	for (uint32_t i = 0; i < g->n && g->missing; i++) {
		struct obj *o = store_get(d, &g->ids[i]);

		if (!o || !awaits(c, g, o) || !oidmap_get(&c->refs, &g->ids[i]))
			continue;
		store_wait(d, o, dep_ready, g);
		g->deps++;
		if (o->state != OBJ_READY)
			ext_obj_wanted(d, o); /* kept by the node that made it: fetch it now */
	}
	g->next = d->gets;
	if (d->gets)
		d->gets->prev = g;
	d->gets = g;
	if (!g->missing) {
		finish(d, g, 0);
	} else if (timeout_ms == 0) {
		finish(d, g, -ETIMEDOUT);
	} else if (c->worker && (c->worker->head || ext_worker_busy(d, c->worker))) {
		sched_blocked(c->worker, true); /* a fast task's get blocks it too */
	}
	maybe_free(d, g);
}

static void dep_ready(struct krayd *d, void *arg, struct obj *o)
{
	struct getreq *g = arg;

	(void)o;
	g->deps--;
	if (!g->done && --g->missing == 0)
		finish(d, g, 0);
	maybe_free(d, g);
}

/* g is answered early (timeout, cancel): it stops waiting for its objects, so that it is
 * freed now rather than when they come (if they ever do).  Never from a dep_ready(). */
static void give_up(struct krayd *d, struct getreq *g, int status)
{
	finish(d, g, status);
	for (uint32_t i = 0; i < g->n && g->deps; i++) {
		struct obj *o = store_get(d, &g->ids[i]);

		if (o && store_awaited(o))
			g->deps -= store_unwait(d, o, dep_ready, g);
	}
	maybe_free(d, g);
}

void get_expire(struct krayd *d, int64_t now)
{
	struct getreq *g = d->gets, *next;

	for (; g; g = next) {
		next = g->next;
		if (g->deadline_ns >= 0 && g->deadline_ns <= now)
			give_up(d, g, -ETIMEDOUT);
	}
}

int64_t get_next_deadline(struct krayd *d)
{
	int64_t best = -1;

	for (struct getreq *g = d->gets; g; g = g->next)
		if (g->deadline_ns >= 0 && (best < 0 || g->deadline_ns < best))
			best = g->deadline_ns;
	return best;
}

void get_cancel_conn(struct conn *c)
{
	struct getreq *g = c->d->gets, *next;

	for (; g; g = next) {
		next = g->next;
		if (g->conn == c && !g->done)
			give_up(c->d, g, -ECANCELED);
	}
}

void get_conn_gone(struct conn *c)
{
	struct getreq *g = c->d->gets, *next;

	for (; g; g = next) {
		next = g->next;
		if (g->conn != c)
			continue;
		g->conn = NULL;
		g->done = true;
		unlink_get(c->d, g);
		if (g->deps) { /* freed when they fire, or by get_fini() */
			g->orphan = true;
			g->next = c->d->gets_gone;
			if (g->next)
				g->next->prev = g;
			c->d->gets_gone = g;
		}
		maybe_free(c->d, g);
	}
}

void get_fini(struct krayd *d)
{
	while (d->gets_gone) {
		struct getreq *g = d->gets_gone;

		d->gets_gone = g->next;
		free(g->ids);
		free(g);
	}
}
