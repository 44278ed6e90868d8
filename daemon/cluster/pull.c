// SPDX-License-Identifier: Apache-2.0
/*
 * Objects between any two nodes: who pulls a large object from whom (issue 19).
 *
 * Owner side: a task forwarded with a large argument this node owns does not push the
 * bytes; the owner tells the task's node where a copy lives (OBJ_WHERE PULL) and keeps,
 * per object, the nodes that have or are getting a copy for a task of theirs (struct
 * located): its holders.  A holder's copy lives as long as the tasks it came for
 * (the link holds it for them, as a pushed argument), so the owner drops a holder when
 * the last of its tasks there is done (pull_task_gone()).  Holders are handed out
 * least-loaded: a node with a complete copy (the owner's own included) serving fewer than
 * FANOUT pulls, else a node still receiving its copy that serves fewer than FANOUT (it
 * sends once it has it: a broadcast becomes a tree), else the least loaded of all.  So a
 * broadcast to N nodes sends about FANOUT copies out of any one node, not N.
 *
 * Puller side: OBJ_WHERE PULL makes a pending copy held by the owner's link (as a pushed
 * argument is) and asks the holder for it (FETCH, linking to it on demand); the answer is
 * an OBJ_PUSH (xfer.c fills the copy).  When the copy is complete the owner hears it
 * (HAVE).  A holder that refuses (it no longer has the object: an error answer) or whose
 * link goes mid-object is replaced by the owner, which always has it while the task
 * lives; when the owner's link goes too, the copy becomes an ObjectLost error.
 *
 * Holder side: a FETCH is answered with the object (a pending copy once it is complete)
 * or with an error value when this node has no copy: a forged or stale FETCH never waits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/task.h"
#include "core/store.h"

#define FANOUT 2

struct holder {
	uint32_t node;
	uint32_t from; /* the node it was told to pull from (0: this one) */
	uint16_t tasks; /* its tasks that hold the copy */
	uint16_t load; /* pulls handed to it and not yet complete */
	bool complete;
	uint32_t seq; /* its number (kray_msg_obj_where) */
};

/* Owner side: the copies of one of this node's objects on other nodes. */
struct located {
	uint16_t self_load;
	uint32_t next_seq;
	unsigned n, cap;
	struct holder *h;
};

/* Puller side: a copy being fetched. */
struct dpull {
	struct kray_oid id;
	uint32_t owner; /* the owner's node */
	uint32_t link; /* the link of the holder asked */
	uint32_t owner_link; /* the link the owner's PULL came over */
	uint32_t seq; /* the number the owner gave this copy */
};

static void send_where(struct link *l, const struct kray_oid *id, uint64_t size, uint32_t holder,
		       uint32_t kind, uint32_t seq, uint32_t from)
{
	struct kray_msg_obj_where m = {
		.oid = *id, .size = size, .holder = holder, .kind = kind, .seq = seq, .from = from
	};

	net_send_fixed(l, KRAY_MSG_OBJ_WHERE, &m, sizeof(m));
}

static struct located *loc_get(struct krayd *d, const struct kray_oid *id, bool add)
{
	uint64_t *v = oidmap_get(&d->cl->located, id);
	struct located *loc;
	bool fresh;

	if (v || !add)
		return v ? (struct located *)(uintptr_t)*v : NULL;
	loc = calloc(1, sizeof(*loc));
	if (!loc)
		abort();
	*oidmap_upsert(&d->cl->located, id, &fresh) = (uint64_t)(uintptr_t)loc;
	return loc;
}

static struct holder *holder_find(struct located *loc, uint32_t node)
{
	for (unsigned i = 0; i < loc->n; i++)
		if (loc->h[i].node == node)
			return &loc->h[i];
	return NULL;
}

/* One pull that holder node (0: this one) served, or gave up, is over. */
static void unload(struct located *loc, uint32_t node)
{
	struct holder *h = node ? holder_find(loc, node) : NULL;

	if (!node && loc->self_load)
		loc->self_load--;
	else if (h && h->load)
		h->load--;
}

/* The holder for a new pull by node `to`, by the rule at the top (0: this node). */
static uint32_t pick(struct located *loc, uint32_t to)
{
	struct holder *best = NULL;
	bool self = loc->self_load < FANOUT;

	/* A complete copy serving fewer than FANOUT: the least loaded, another node before
	 * the owner when as loaded (the owner's bytes spread out). */
	for (unsigned i = 0; i < loc->n; i++) {
		struct holder *h = &loc->h[i];

		if (h->node == to || !h->complete || h->load >= FANOUT)
			continue;
		if (self && h->load > loc->self_load)
			continue;
		if (!best || h->load < best->load)
			best = h;
	}
	if (best)
		return best->node;
	if (self)
		return 0;
	/* A copy still arriving that serves fewer than FANOUT: the oldest of the least
	 * loaded (it sends once it has the object). */
	for (unsigned i = 0; i < loc->n; i++) {
		struct holder *h = &loc->h[i];

		if (h->node != to && !h->complete && h->load < FANOUT &&
		    (!best || h->load < best->load))
			best = h;
	}
	if (best)
		return best->node;
	/* Everyone serves FANOUT already: the least loaded complete copy. */
	for (unsigned i = 0; i < loc->n; i++) {
		struct holder *h = &loc->h[i];

		if (h->node != to && h->complete && h->load < loc->self_load &&
		    (!best || h->load < best->load))
			best = h;
	}
	return best ? best->node : 0;
}

bool pull_send_arg(struct krayd *d, struct link *l, struct obj *o)
{
	struct located *loc;
	struct holder *h;
	uint32_t from;

	if (o->type != KRAY_WT_FD || o->state != OBJ_READY || o->id.node != d->node || !l->node ||
	    !d->cfg.direct_pull)
		return false;
	loc = loc_get(d, &o->id, true);
	h = holder_find(loc, l->node);
	if (h) {
		/* It has a copy for another task, or is getting one: this task holds it too. */
		h->tasks++;
		send_where(l, &o->id, o->size, d->node, KRAY_WHERE_PULL, h->seq, 0);
		return true;
	}
	from = pick(loc, l->node);
	if (loc->n == loc->cap) {
		loc->cap = loc->cap ? loc->cap * 2 : 4;
		loc->h = realloc(loc->h, loc->cap * sizeof(*loc->h));
		if (!loc->h)
			abort();
	}
	h = from ? holder_find(loc, from) : NULL;
	if (h)
		h->load++;
	else
		loc->self_load++;
	loc->h[loc->n++] = (struct holder){
		.node = l->node, .from = from, .tasks = 1, .seq = ++loc->next_seq
	};
	d->cl->where_sent++;
	send_where(l, &o->id, o->size, from ? from : d->node, KRAY_WHERE_PULL, loc->next_seq,
		   h ? h->seq : 0);
	return true;
}

void pull_task_gone(struct krayd *d, struct task *t)
{
	struct task_arg a;

	if (!d->cl->located.n)
		return;
	for (task_arg_first(&a, t); task_arg_next(&a);) {
		struct located *loc;
		struct holder *h;

		if (a.v.type != KRAY_WT_REF || a.id.node != d->node)
			continue;
		loc = loc_get(d, &a.id, false);
		h = loc ? holder_find(loc, t->rem.fwd_node) : NULL;
		if (!h || --h->tasks)
			continue;
		/* Its copy goes with its last task there. */
		if (!h->complete)
			unload(loc, h->from);
		*h = loc->h[--loc->n];
		if (loc->n)
			continue;
		oidmap_del(&d->cl->located, &a.id);
		free(loc->h);
		free(loc);
	}
}

/* Owner side: node l->node's copy of id is complete. */
static void on_have(struct link *l, const struct kray_msg_obj_where *m)
{
	struct located *loc = m->oid.node == l->d->node ? loc_get(l->d, &m->oid, false) : NULL;
	struct holder *h = loc ? holder_find(loc, l->node) : NULL;

	if (!h || h->complete || h->seq != m->seq)
		return; /* gone since, said twice, or of a copy handed out before */
	h->complete = true;
	unload(loc, h->from);
}

/* Puller side. */
static struct dpull *dpull_get(struct krayd *d, const struct kray_oid *id)
{
	uint64_t *v = oidmap_get(&d->cl->dpulls, id);

	return v ? (struct dpull *)(uintptr_t)*v : NULL;
}

/* The copy a dpull filled is sealed (or the fetch failed: an error): the owner may hand it
 * out now. */
static void dpull_ready(struct krayd *d, void *arg, struct obj *o)
{
	struct dpull *p = arg;
	struct link *ol = net_link_by_id(d, p->owner_link);

	if (o->type == KRAY_WT_FD && ol && ol->c && !ol->c->closed)
		send_where(ol, &o->id, o->size, d->node, KRAY_WHERE_HAVE, p->seq, 0);
	oidmap_del(&d->cl->dpulls, &p->id);
	free(p);
	store_unref(d, o); /* the fetch's hold */
}

/* Asks p's holder (the owner when holder is 0 or cannot be reached) for its object, the
 * copy numbered from there. */
static void fetch(struct krayd *d, struct dpull *p, uint32_t holder, uint64_t size, uint32_t from)
{
	struct link *l =
		holder && holder != p->owner && holder != d->node ? net_link_to(d, holder) : NULL;

	if (!l)
		l = net_link_by_id(d, p->owner_link);
	p->link = l->id;
	d->cl->fetched++;
	send_where(l, &p->id, size, l->node, KRAY_WHERE_FETCH, 0, l->node == p->owner ? 0 : from);
}

static int on_pull(struct link *l, const struct kray_msg_obj_where *m)
{
	struct krayd *d = l->d;
	struct obj *o;
	struct dpull *p;
	bool fresh;

	if (m->oid.node != l->node || m->oid.index == KRAY_OID_ACTOR || !m->size ||
	    m->size > KRAY_OBJECT_MAX)
		return conn_fail(l->c, "an object's location must come from its owner", -EPERM);
	o = store_get(d, &m->oid);
	if (o) {
		/* A copy here already, or on its way: held for this task too.  A copy on its
		 * way takes the new number (its source is older than either). */
		store_conn_ref(l->c, o);
		p = dpull_get(d, &m->oid);
		if (p)
			p->seq = m->seq;
		return 0;
	}
	o = store_create(d, &m->oid);
	o->stub = true; /* freed with its last hold, even while pending */
	store_conn_ref(l->c, o); /* the copy is the link's until its task is done */
	p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	p->id = m->oid;
	p->owner = l->node;
	p->owner_link = l->id;
	p->seq = m->seq;
	*oidmap_upsert(&d->cl->dpulls, &p->id, &fresh) = (uint64_t)(uintptr_t)p;
	store_ref(o);
	store_wait(d, o, dpull_ready, p);
	fetch(d, p, m->holder, m->size, m->from);
	return 0;
}

/* Holder side: a pending copy asked for is complete (or failed): sent over the link. */
static void served_ready(struct krayd *d, void *arg, struct obj *o)
{
	struct link *l = net_link_by_id(d, (uint32_t)(uintptr_t)arg);

	if (l && l->c && !l->c->closed)
		xfer_push(l, o, KRAY_PUSH_ANSWER);
	store_unref(d, o); /* the wait's hold */
}

static void on_fetch(struct link *l, const struct kray_msg_obj_where *m)
{
	struct krayd *d = l->d;
	struct obj *o = store_get(d, &m->oid);
	struct dpull *p = o ? dpull_get(d, &m->oid) : NULL;
	char msg[160];

	d->cl->served++;
	if (o && o->state == OBJ_READY && o->type == KRAY_WT_FD) {
		xfer_push(l, o, KRAY_PUSH_ANSWER);
		return;
	}
	if (o && o->state == OBJ_PENDING && p && m->from && p->seq == m->from) {
		/* Still arriving here: sent once it has. */
		store_ref(o);
		store_wait(d, o, served_ready, (void *)(uintptr_t)l->id);
		return;
	}
	snprintf(msg, sizeof(msg), "node %08x holds no copy of object %u.%u.%u.%u", d->node,
		 m->oid.node, m->oid.owner, m->oid.seq, m->oid.index);
	xfer_push_error(l, &m->oid, msg);
}

int pull_on_where(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_obj_where m;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed object location", -EBADMSG);
	switch (m.kind) {
	case KRAY_WHERE_PULL:
		return on_pull(l, &m);
	case KRAY_WHERE_FETCH:
		on_fetch(l, &m);
		return 0;
	case KRAY_WHERE_HAVE:
		on_have(l, &m);
		return 0;
	default:
		return conn_fail(l->c, "unknown object location kind", -EBADMSG);
	}
}

/* Fetches p's object again from its owner after the holder over link `from` failed;
 * false when the owner was the one asked (nothing left to ask). */
static bool refetch(struct krayd *d, struct dpull *p, struct obj *o, const char *why)
{
	struct link *ol = net_link_by_id(d, p->owner_link);

	if (!ol || p->link == ol->id)
		return false;
	log_info("object %u.%u.%u.%u: %s; fetching it from its owner %08x", p->id.node, p->id.owner,
		 p->id.seq, p->id.index, why, p->owner);
	d->cl->fallbacks++;
	p->link = ol->id;
	send_where(ol, &p->id, o->size, p->owner, KRAY_WHERE_FETCH, 0, 0);
	return true;
}

bool pull_refused(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct kray_msg_obj_push m;
	struct dpull *p;
	struct obj *o;

	if (h->req != KRAY_PUSH_ANSWER || len < sizeof(m))
		return false; /* xfer_on_push() takes it (and checks it) */
	memcpy(&m, body, sizeof(m));
	if (m.type != KRAY_WT_ERROR || m.nrefs)
		return false;
	p = dpull_get(l->d, &m.oid);
	o = p ? store_get(l->d, &m.oid) : NULL;
	if (!o || o->state != OBJ_PENDING || o->writer || o->fd >= 0)
		return false; /* not a fetch of ours in flight: the error is the answer */
	if (p->link != l->id)
		return true; /* a holder given up on already: the owner answers */
	return refetch(l->d, p, o, "the holder asked has no copy");
}

void pull_link_gone(struct krayd *d, struct link *l)
{
	struct kray_oid *ids = NULL;
	size_t n = 0, cap = 0;

	oidmap_for_each (&d->cl->dpulls, s) {
		struct dpull *p = (struct dpull *)(uintptr_t)s->val;

		if (p->link != l->id && p->owner_link != l->id)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ids = realloc(ids, cap * sizeof(*ids));
			if (!ids)
				abort();
		}
		ids[n++] = p->id;
	}
	for (size_t i = 0; i < n; i++) {
		struct dpull *p = dpull_get(d, &ids[i]);
		struct obj *o = store_get(d, &ids[i]);
		char msg[200];
		int k;

		if (!p || !o || o->state != OBJ_PENDING || o->writer)
			continue;
		if (p->owner_link == l->id)
			p->owner_link = 0; /* its owner is gone: nobody to fall back to */
		else if (p->link == l->id && refetch(d, p, o, "the holder's node is gone"))
			continue;
		else if (p->link != l->id)
			continue; /* the owner went; the holder may still answer */
		k = snprintf(msg, sizeof(msg),
			     "object %u.%u.%u.%u is lost: node %08x, which sent it, is gone and "
			     "its owner cannot be asked",
			     ids[i].node, ids[i].owner, ids[i].seq, ids[i].index, l->node);
		store_seal_error(d, o, KRAY_WE_OBJECT_LOST, msg, (size_t)k); /* dpull_ready() */
	}
	free(ids);
}

void pull_fini(struct krayd *d)
{
	oidmap_for_each (&d->cl->located, s) {
		struct located *loc = (struct located *)(uintptr_t)s->val;

		free(loc->h);
		free(loc);
	}
	oidmap_free(&d->cl->located);
	/* A dpull is freed by its wait (the store's teardown drops the waits with it). */
	oidmap_for_each (&d->cl->dpulls, s)
		free((struct dpull *)(uintptr_t)s->val);
	oidmap_free(&d->cl->dpulls);
}
