// SPDX-License-Identifier: Apache-2.0
/*
 * Actors the head restarts when their node dies, as Ray's GCS actor manager does.
 *
 * Host side: a node that creates an actor for another node (FWD_ACTOR), and may see it
 * restarted elsewhere (max_restarts not 0, no constructor argument that is an object, no
 * hard node affinity), gives the head its creation record (ACTOR_RECORD ADD: the
 * FWD_ACTOR body), keeps it in cl->recorded (sent again when it joins a head again), and
 * tells the head when the actor ends for good there (ACTOR_RECORD GONE).
 *
 * Head side: cl->gactors, actor id -> struct gactor.  When a node dies (declare_dead() in
 * gcs.c), the head decides once, for each actor recorded on it, on its loop: a live node
 * that has its resources creates it again (ACTOR_RESTART, the same body, over that node's
 * link to the head, which holds the new handle for a while), or it is dead (max_restarts
 * spent, no node).  A named actor's entry moves with it.
 *
 * Holder side (ractor.c): every node that held a handle asks the head where the actor
 * lives now (ACTOR_LOCATE); the head answers (ACTOR_LOCATED) once it has decided (an
 * asker that lost the actor before the head saw its node die waits for that, at most
 * node-timeout-ms), the holder attaches to the new node (ACTOR_ATTACH) and sends its
 * waiting calls there.  The head's hold on the new incarnation goes after two
 * node-timeout-ms, by when every holder has attached, so a restarted actor still ends
 * when its last handle goes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/job.h"
#include "core/task.h"

/* A creation record on the head. */
struct gactor {
	struct kray_oid id;
	uint32_t host; /* the node that runs it now */
	uint16_t restarts;
	int16_t max_restarts, max_task_retries;
	struct wire_resource res[KRAY_RESOURCES_MAX];
	int nres;
	char cls[64];
	struct kbuf body; /* the FWD_ACTOR body */
	int64_t release_at; /* the head's hold on the restarted actor goes then (0: none) */
	uint32_t *waiters; /* links that asked where it lives (0: this node) */
	size_t nwait, cap_wait;
	int64_t wait_until; /* the asked-about host is alive: answer by then */
};

static int64_t timeout_ns(struct krayd *d)
{
	return (int64_t)d->cfg.node_timeout_ms * 1000000;
}

static struct gactor *gfind(struct krayd *d, const struct kray_oid *id)
{
	uint64_t *v = oidmap_get(&d->cl->gactors, id);

	return v ? (struct gactor *)(uintptr_t)*v : NULL;
}

static void answer(struct krayd *d, uint32_t link, const struct kray_msg_actor_locate *m)
{
	struct link *l;

	if (!link) {
		ractor_located(d, m); /* the head holds a handle itself */
		return;
	}
	l = net_link_by_id(d, link);
	if (l && l->c && !l->c->closed)
		net_send_fixed(l, KRAY_MSG_ACTOR_LOCATED, m, sizeof(*m));
}

static void answer_waiters(struct krayd *d, struct gactor *g, uint8_t status)
{
	struct kray_msg_actor_locate m = { .actor = g->id,
					   .node = status == KRAY_ALOC_AT ? g->host : 0,
					   .restarts = g->restarts,
					   .status = status,
					   .max_task_retries = g->max_task_retries };
	uint32_t *w = g->waiters;
	size_t n = g->nwait;

	g->waiters = NULL;
	g->nwait = g->cap_wait = 0;
	g->wait_until = 0;
	for (size_t i = 0; i < n; i++)
		answer(d, w[i], &m);
	free(w);
}

static void gdrop(struct krayd *d, struct gactor *g)
{
	oidmap_del(&d->cl->gactors, &g->id);
	kbuf_free(&g->body);
	free(g->waiters);
	free(g);
}

/* The head takes (or replaces) the record of actor x on host. */
static void record_add(struct krayd *d, uint32_t host, uint16_t restarts,
		       const struct wire_fwd_actor *x, const uint8_t *body, uint32_t len)
{
	uint64_t *v;
	bool fresh;
	struct gactor *g;
	int nres;

	v = oidmap_upsert(&d->cl->gactors, &x->f.actor, &fresh);
	if (fresh) {
		g = calloc(1, sizeof(*g));
		if (!g)
			abort();
		g->id = x->f.actor;
		*v = (uint64_t)(uintptr_t)g;
	} else {
		g = (struct gactor *)(uintptr_t)*v;
		g->body.len = g->body.off = 0;
	}
	g->host = host;
	if (restarts > g->restarts)
		g->restarts = restarts;
	g->max_restarts = x->c.m.max_restarts;
	g->max_task_retries = x->c.m.max_task_retries;
	nres = wire_parse_placed(x->c.res, x->c.m.res_len, g->res, NULL);
	g->nres = nres < 0 ? 0 : nres;
	snprintf(g->cls, sizeof(g->cls), "%.*s", (int)x->c.m.class_len, x->c.cls);
	kbuf_put(&g->body, body, len);
}

/* ---- host side ---------------------------------------------------------------------- */

static void send_record(struct krayd *d, struct link *head, const struct kbuf *rec)
{
	struct kbuf *b = net_out(head);

	wire_frame(b, KRAY_MSG_ACTOR_RECORD, 0,
		   &WIRE_RAW(rec->data + rec->off, rec->len - rec->off), 1);
	net_flush(head);
	(void)d;
}

static struct link *head_link(struct krayd *d)
{
	struct link *l = d->cl->head_link;

	return l && l->up && l->c && !l->c->closed ? l : NULL;
}

/* Host: keeps actor x's record (restarts so far), and gives it to the head. */
static void keep_record(struct krayd *d, const struct wire_fwd_actor *x, uint16_t restarts,
			const uint8_t *fwd, uint32_t fwd_len)
{
	struct kray_msg_actor_record m = {
		.actor = x->f.actor, .host = d->node, .restarts = restarts, .op = KRAY_AREC_ADD
	};
	struct kbuf *rec;
	uint64_t *v;
	bool fresh;
	struct link *head;

	v = oidmap_upsert(&d->cl->recorded, &x->f.actor, &fresh);
	if (!fresh) {
		rec = (struct kbuf *)(uintptr_t)*v;
		rec->len = rec->off = 0;
	} else {
		rec = calloc(1, sizeof(*rec));
		if (!rec)
			abort();
		*v = (uint64_t)(uintptr_t)rec;
	}
	kbuf_put(rec, &m, sizeof(m));
	kbuf_put(rec, fwd, fwd_len);
	if (d->cfg.head) {
		record_add(d, d->node, restarts, x, fwd, fwd_len);
		return;
	}
	head = head_link(d);
	if (head)
		send_record(d, head, rec);
}

/* x's FWD_ACTOR body with each constructor argument that is an object replaced by its
 * value, as the worker receives it (a small plain value: the head keeps no objects).
 * Returns false when one is not such a value (large, an error, holding refs, a handle). */
static bool body_by_value(struct krayd *d, const struct wire_fwd_actor *x, struct kbuf *b)
{
	struct wire_rd r = x->c.args;
	struct wire_value v;

	kbuf_put(b, &x->f, sizeof(x->f));
	wire_put_padded(b, x->path, x->f.path_len);
	kbuf_put(b, &x->c.m, sizeof(x->c.m));
	wire_put_padded(b, x->c.cls, x->c.m.class_len);
	wire_put_padded(b, x->c.name, x->c.m.name_len);
	wire_put_padded(b, x->c.ns, x->c.m.ns_len);
	wire_put_padded(b, x->c.res, x->c.m.res_len);
	for (unsigned i = 0; i < x->c.m.nargs; i++) {
		const uint8_t *at = r.p;
		struct kray_oid id;
		struct obj *o;

		if (wire_rd_value(&r, &v))
			return false;
		if (v.type == KRAY_WT_ACTOR)
			return false;
		if (v.type != KRAY_WT_REF) {
			kbuf_put(b, at, (size_t)(r.p - at));
			continue;
		}
		memcpy(&id, v.data, sizeof(id));
		o = store_get(d, &id);
		if (!o || o->state != OBJ_READY || o->type > KRAY_WT_BYTES || o->ncontained)
			return false;
		wire_put_value(b, o->type, o->err, o->scalar, o->data, o->len);
	}
	return true;
}

void gactor_created(struct krayd *d, const struct wire_fwd_actor *x, const uint8_t *body,
		    uint32_t len)
{
	struct wire_resource res[KRAY_RESOURCES_MAX];
	struct wire_place pl;
	struct wire_fwd_actor y;
	struct kbuf b = { 0 };

	(void)body;
	(void)len;
	if (!x->c.m.max_restarts)
		return;
	/* A hard node affinity keeps it where it is (Ray's rule). */
	if (wire_parse_placed(x->c.res, x->c.m.res_len, res, &pl) >= 0 && pl.node && !pl.soft)
		return;
	if (body_by_value(d, x, &b) && !wire_dec_fwd_actor(b.data, b.len, &y))
		keep_record(d, &y, 0, b.data, (uint32_t)b.len);
	else
		log_info("actor %u.%u.%u ('%.*s'): a constructor argument is not a small plain "
			 "value; not restarted on another node if this one dies",
			 x->f.actor.node, x->f.actor.owner, x->f.actor.seq, x->c.m.class_len,
			 x->c.cls);
	kbuf_free(&b);
}

void gactor_local(struct krayd *d, struct actor *a)
{
	const char *path = job_code_path(d, a->ctor->job);
	struct kray_msg_fwd_actor f = { .actor = a->id, .job = a->ctor->job };
	struct kray_msg_actor_create m = { .seq = a->id.seq,
					   .job = a->ctor->job,
					   .max_restarts = a->max_restarts,
					   .max_task_retries = a->max_task_retries,
					   .max_concurrency = a->max_concurrency,
					   .nargs = a->ctor->nargs,
					   .num_cpus_milli = a->slots_milli,
					   .detached = a->detached,
					   .class_len = a->ctor->fn->name_len };
	struct wire_fwd_actor x;
	struct kbuf b = { 0 };
	char res[256];
	size_t off = 0;

	if (!d->cl || d->cfg.head || a->id.node != d->node || !a->max_restarts ||
	    a->state == A_DEAD || oidmap_get(&d->cl->recorded, &a->id))
		return;
	if (!path)
		path = "";
	res[0] = 0;
	for (int i = 0; i < a->nres; i++)
		off = node_res_add(res, off, sizeof(res), a->res[i].name, a->res[i].milli);
	f.path_len = (uint32_t)strlen(path);
	m.name_len = a->name ? (uint8_t)strlen(a->name) : 0;
	m.ns_len = a->ns ? (uint8_t)strlen(a->ns) : 0;
	m.res_len = (uint8_t)off;
	/* The FWD_ACTOR body another node would have sent for it. */
	kbuf_put(&b, &f, sizeof(f));
	wire_put_padded(&b, path, f.path_len);
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, a->ctor->fn->name, m.class_len);
	wire_put_padded(&b, a->name, m.name_len);
	wire_put_padded(&b, a->ns, m.ns_len);
	wire_put_padded(&b, res, m.res_len);
	if (a->ctor->args_len)
		kbuf_put(&b, a->ctor->args, a->ctor->args_len);
	if (!wire_dec_fwd_actor(b.data, b.len, &x))
		gactor_created(d, &x, b.data, (uint32_t)b.len);
	else
		log_warn("actor %u.%u.%u: its creation record does not decode; not restarted on "
			 "another node if this one dies",
			 a->id.node, a->id.owner, a->id.seq);
	kbuf_free(&b);
}

void gactor_lent(struct krayd *d, const struct kray_oid *id)
{
	struct actor *a = id->node == d->node ? actor_find(d, id) : NULL;

	if (a)
		gactor_local(d, a);
}

void gactor_ended(struct krayd *d, const struct kray_oid *id)
{
	uint64_t *v = oidmap_get(&d->cl->recorded, id);
	struct kray_msg_actor_record m = { .actor = *id, .host = d->node, .op = KRAY_AREC_GONE };
	struct gactor *g;
	struct link *head;

	if (!v)
		return;
	kbuf_free((struct kbuf *)(uintptr_t)*v);
	free((struct kbuf *)(uintptr_t)*v);
	oidmap_del(&d->cl->recorded, id);
	if (d->cfg.head) {
		g = gfind(d, id);
		if (g && g->host == d->node)
			gdrop(d, g);
		return;
	}
	head = head_link(d);
	if (head)
		net_send_fixed(head, KRAY_MSG_ACTOR_RECORD, &m, sizeof(m));
}

/* A head this node joins (again) learns the records of the actors it runs. */
void gactor_reregister(struct krayd *d, struct link *head)
{
	oidmap_for_each (&d->cl->recorded, s)
		send_record(d, head, (const struct kbuf *)(uintptr_t)s->val);
}

/* An actor another node creates here (FWD_ACTOR): the head gets its record. */
int remote_on_actor(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct wire_fwd_actor x;
	const char *why = NULL;
	uint32_t job;

	if (wire_dec_fwd_actor(body, len, &x))
		return conn_fail(l->c, "malformed forwarded actor", -EBADMSG);
	if (x.f.actor.node != l->node)
		return conn_fail(l->c, "a forwarded actor must be its sender's", -EPERM);
	job = node_map_job(d, l->node, x.f.job, x.path, x.f.path_len);
	if (actor_create_as(l->c, &x.c, &x.f.actor, job, &why)) {
		log_warn("actor '%.*s' from node %08x not created: %s", x.c.m.class_len, x.c.cls,
			 l->node, why ? why : "refused");
		return 0;
	}
	gactor_created(d, &x, body, len); /* the head may restart it elsewhere */
	return 0;
}

int gactor_on_restart(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct wire_fwd_actor x;
	const char *why = NULL;
	uint32_t job;

	if (wire_dec_actor_record(KRAY_MSG_ACTOR_RESTART, body, len, &x))
		return conn_fail(l->c, "malformed actor restart", -EBADMSG);
	if (!l->to_head || d->cfg.head)
		return conn_fail(l->c, "only the head restarts actors", -EPROTO);
	/* Its job, as when its creator's node sent it (FWD_JOB_END from there ends it). */
	job = node_map_job(d, x.f.actor.node, x.f.job, x.path, x.f.path_len);
	if (ractor_get(d, &x.f.actor, false))
		why = "this node holds a handle to it";
	else if (!actor_create_as(l->c, &x.c, &x.f.actor, job, &why)) {
		log_info("actor %u.%u.%u ('%.*s') restarted here by the head (restart %u)",
			 x.f.actor.node, x.f.actor.owner, x.f.actor.seq, x.c.m.class_len, x.c.cls,
			 x.rec.restarts);
		keep_record(d, &x, x.rec.restarts, body + sizeof(x.rec),
			    len - (uint32_t)sizeof(x.rec));
		return 0;
	}
	log_warn("actor %u.%u.%u ('%.*s') not restarted here: %s", x.f.actor.node, x.f.actor.owner,
		 x.f.actor.seq, x.c.m.class_len, x.c.cls, why ? why : "refused");
	struct kray_msg_actor_record m = { .actor = x.f.actor,
					   .host = d->node,
					   .op = KRAY_AREC_GONE };

	net_send_fixed(l, KRAY_MSG_ACTOR_RECORD, &m, sizeof(m));
	return 0;
}

/* ---- head side ---------------------------------------------------------------------- */

int gactor_on_record(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct krayd *d = l->d;
	struct wire_fwd_actor x;
	struct gactor *g;

	if (!d->cfg.head)
		return conn_fail(l->c, "this node is not the head", -EPROTO);
	if (wire_dec_actor_record(h->type, body, h->len, &x))
		return conn_fail(l->c, "malformed actor record", -EBADMSG);
	if (x.rec.host != l->node)
		return conn_fail(l->c, "an actor record must be its sender's", -EPERM);
	g = gfind(d, &x.rec.actor);
	if (x.rec.op == KRAY_AREC_GONE) {
		/* Only the node that runs it now: an older incarnation's end is news no more. */
		if (g && g->host == l->node) {
			answer_waiters(d, g, KRAY_ALOC_NONE);
			gdrop(d, g);
		}
		return 0;
	}
	record_add(d, l->node, x.rec.restarts, &x, body + sizeof(x.rec),
		   h->len - (uint32_t)sizeof(x.rec));
	return 0;
}

/* Restarts g (its node died) on a live node that has its resources, or returns why not. */
static uint8_t restart(struct krayd *d, struct gactor *g)
{
	struct kray_msg_actor_record m = { .actor = g->id, .op = KRAY_AREC_RESTART };
	uint32_t dead = g->host, node;
	struct node_entry *e;
	struct kbuf *b;

	if (g->max_restarts >= 0 && g->restarts >= g->max_restarts) {
		log_warn("actor %u.%u.%u ('%s'): node %08x is gone and its max_restarts (%d) are "
			 "spent",
			 g->id.node, g->id.owner, g->id.seq, g->cls, dead, g->max_restarts);
		return KRAY_ALOC_SPENT;
	}
	node = node_pick(d, g->res, g->nres, dead, NULL);
	e = node ? node_find(d, node) : NULL;
	if (!e || !e->link || !e->link->c || e->link->c->closed) {
		log_warn("actor %u.%u.%u ('%s'): node %08x is gone and no other live node has its "
			 "resources",
			 g->id.node, g->id.owner, g->id.seq, g->cls, dead);
		return KRAY_ALOC_NOWHERE;
	}
	g->restarts++;
	g->host = node;
	m.host = node;
	m.restarts = g->restarts;
	/* Over the link the node reports on: the one whose connection there holds the new
	 * handle, and the one the release goes over (gactor_tick()). */
	b = net_out(e->link);
	WIRE_FRAME(b, KRAY_MSG_ACTOR_RESTART, 0, WIRE_FIXED(m),
		   WIRE_RAW(g->body.data + g->body.off, g->body.len - g->body.off));
	net_flush(e->link);
	g->release_at = now_ns() + 2 * timeout_ns(d);
	/* A named actor is found on its new node from now on. */
	for (struct gname *n = d->cl->names; n; n = n->next)
		if (oid_eq(&n->id, &g->id))
			n->host = node;
	d->cl->restarted++;
	log_info("actor %u.%u.%u ('%s'): node %08x is gone; the head restarts it on node %08x "
		 "(%u of %d)",
		 g->id.node, g->id.owner, g->id.seq, g->cls, dead, node, g->restarts,
		 g->max_restarts);
	return KRAY_ALOC_AT;
}

/* The decision for g, whose node died: restarted, or dropped; the askers are told. */
static void decide(struct krayd *d, struct gactor *g)
{
	uint8_t status = restart(d, g);

	answer_waiters(d, g, status);
	if (status != KRAY_ALOC_AT)
		gdrop(d, g);
}

static void head_locate(struct krayd *d, uint32_t link, const struct kray_oid *id, uint32_t lost_on)
{
	struct gactor *g = gfind(d, id);
	struct kray_msg_actor_locate m = { .actor = *id, .status = KRAY_ALOC_NONE };
	struct node_entry *e;

	if (!g) {
		answer(d, link, &m);
		return;
	}
	e = node_find(d, g->host);
	if (g->host != lost_on && e && e->m.alive) {
		m.node = g->host; /* restarted already */
		m.restarts = g->restarts;
		m.max_task_retries = g->max_task_retries;
		m.status = KRAY_ALOC_AT;
		answer(d, link, &m);
		return;
	}
	if (g->nwait == g->cap_wait) {
		g->cap_wait = g->cap_wait ? 2 * g->cap_wait : 4;
		g->waiters = realloc(g->waiters, g->cap_wait * sizeof(*g->waiters));
		if (!g->waiters)
			abort();
	}
	g->waiters[g->nwait++] = link;
	if (!e || !e->m.alive) {
		decide(d, g); /* its node is dead to the head too (it had not decided yet) */
		return;
	}
	/* Its node is alive to the head: wait for the head to see it die (its link's reset
	 * is on its way), or for node-timeout-ms. */
	if (!g->wait_until)
		g->wait_until = now_ns() + timeout_ns(d);
}

static void locate(struct krayd *d, const struct kray_oid *id, uint32_t node)
{
	struct kray_msg_actor_locate m = { .actor = *id, .node = node };
	struct link *head;

	if (d->cfg.head) {
		head_locate(d, 0, id, node);
		return;
	}
	head = head_link(d);
	if (head) {
		net_send_fixed(head, KRAY_MSG_ACTOR_LOCATE, &m, sizeof(m));
		return;
	}
	m.status = KRAY_ALOC_UNREACHABLE;
	ractor_located(d, &m);
}

void gactor_ask(struct krayd *d)
{
	struct kray_oid *ids = NULL;
	uint32_t *nodes = NULL;
	size_t n = 0, cap = 0;

	/* The answers may come at once (on the head) and end calls: walk a copy. */
	oidmap_for_each (&d->cl->ractors, s) {
		struct ractor *ra = (struct ractor *)(uintptr_t)s->val;

		if (!ra->locating || ra->asked)
			continue;
		ra->asked = true;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ids = realloc(ids, cap * sizeof(*ids));
			nodes = realloc(nodes, cap * sizeof(*nodes));
			if (!ids || !nodes)
				abort();
		}
		ids[n] = ra->id;
		nodes[n++] = ra->node;
	}
	for (size_t i = 0; i < n; i++)
		locate(d, &ids[i], nodes[i]);
	free(ids);
	free(nodes);
}

int gactor_on_locate(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_actor_locate m;

	if (!l->d->cfg.head)
		return conn_fail(l->c, "this node is not the head", -EPROTO);
	if (wire_dec_fixed(body, len, &m, sizeof(m)) || m.actor.index != KRAY_OID_ACTOR)
		return conn_fail(l->c, "malformed actor locate", -EBADMSG);
	head_locate(l->d, l->id, &m.actor, m.node);
	return 0;
}

void gactor_node_dead(struct krayd *d, uint32_t node)
{
	struct kray_oid *ids = NULL;
	size_t n = 0, cap = 0;

	oidmap_for_each (&d->cl->gactors, s) {
		struct gactor *g = (struct gactor *)(uintptr_t)s->val;

		if (g->host != node)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ids = realloc(ids, cap * sizeof(*ids));
			if (!ids)
				abort();
		}
		ids[n++] = g->id;
	}
	/* Once each, here on the head's loop: the one decision every holder is told. */
	for (size_t i = 0; i < n; i++) {
		struct gactor *g = gfind(d, &ids[i]);

		if (g && g->host == node)
			decide(d, g);
	}
	free(ids);
}

void gactor_tick(struct krayd *d, int64_t now)
{
	struct kray_oid *late = NULL;
	size_t n = 0, cap = 0;

	oidmap_for_each (&d->cl->gactors, s) {
		struct gactor *g = (struct gactor *)(uintptr_t)s->val;
		struct node_entry *e;

		if (g->wait_until && now >= g->wait_until) {
			if (n == cap) {
				cap = cap ? 2 * cap : 8;
				late = realloc(late, cap * sizeof(*late));
				if (!late)
					abort();
			}
			late[n++] = g->id;
		}
		if (g->release_at && now >= g->release_at) {
			struct kray_msg_refs r = { .n = 1 };

			g->release_at = 0;
			e = node_find(d, g->host);
			if (e && e->m.alive && e->link && e->link->c && !e->link->c->closed) {
				struct kbuf *b = net_out(e->link);

				WIRE_FRAME(b, KRAY_MSG_PEER_RELEASE, 0, WIRE_FIXED(r),
					   WIRE_FIXED(g->id));
				net_flush(e->link);
			}
		}
	}
	/* Askers whose actor's node is still alive to the head after node-timeout-ms: it
	 * is alive, and they lost it for another reason.  (Answers may end calls here:
	 * after the walk.) */
	for (size_t i = 0; i < n; i++) {
		struct gactor *g = gfind(d, &late[i]);
		struct node_entry *e = g ? node_find(d, g->host) : NULL;

		if (g && e && e->m.alive)
			answer_waiters(d, g, KRAY_ALOC_UNREACHABLE);
		else if (g)
			g->wait_until = 0;
	}
	free(late);
}

void gactor_describe(struct krayd *d, struct kbuf *b)
{
	char line[160];
	int n;

	n = snprintf(line, sizeof(line),
		     "restartable actors: %zu (restarted on another node: %llu)\n",
		     d->cl->gactors.n, (unsigned long long)d->cl->restarted);
	kbuf_put(b, line, (size_t)n);
}

void gactor_fini(struct krayd *d)
{
	oidmap_for_each (&d->cl->gactors, s) {
		struct gactor *g = (struct gactor *)(uintptr_t)s->val;

		kbuf_free(&g->body);
		free(g->waiters);
		free(g);
	}
	oidmap_free(&d->cl->gactors);
	oidmap_for_each (&d->cl->recorded, s) {
		kbuf_free((struct kbuf *)(uintptr_t)s->val);
		free((struct kbuf *)(uintptr_t)s->val);
	}
	oidmap_free(&d->cl->recorded);
}
