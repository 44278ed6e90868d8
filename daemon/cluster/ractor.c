// SPDX-License-Identifier: Apache-2.0
/*
 * Actors that live on another node.
 *
 * An actor whose resources only another node has is created there (FWD_ACTOR) under the
 * creator's id; the creator's node keeps its handle object and a `struct ractor` saying
 * where it lives and over which link the other node holds a handle for us.  Calls are
 * tasks with `ractor` set, sent in order over that link (remote.c); kills and the last
 * release are forwarded.  A node that found the actor by name (lookup.c) has a ractor
 * too, without the creation record.  When the actor's node dies, the creator creates it
 * again on another node within max_restarts (ractor_link_gone()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/sched.h"
#include "core/pgroup.h"

int remote_actor_create(struct conn *c, const struct wire_actor_create *m,
			const struct wire_resource *res, int nres, uint32_t node,
			struct kray_oid *ret_id)
{
	struct krayd *d = c->d;
	struct kray_oid id = { d->node, c->id, m->m.seq, KRAY_OID_ACTOR };
	uint32_t job = m->m.job && job_code_path(d, m->m.job) ? m->m.job : c->job;
	const char *path = job_code_path(d, job);
	struct kray_msg_fwd_actor f = { .actor = id, .job = job };
	struct link *l;
	struct wire_rd r;
	struct wire_value v;
	struct kbuf *b;
	struct obj *h;
	struct ractor *ra;
	bool refs = false;
	size_t off;

	if (!node)
		node = pg_node_for(d, res, nres); /* a placement group's bundle's node */
	if (!node || node == d->node)
		node = node_pick(d, res, nres, 0, NULL);
	l = node ? net_link_to(d, node) : NULL;
	if (!node)
		return -ENOENT;
	if (!l)
		return -EHOSTUNREACH;
	if (!path)
		path = "";
	f.path_len = (uint32_t)strlen(path);
	/* Constructor arguments that are objects go ahead of it; the other node's link
	 * holds them for the actor's life. */
	wire_rd_init(&r, m->args.p, m->args.left);
	for (unsigned i = 0; i < m->m.nargs && !wire_rd_value(&r, &v); i++) {
		struct kray_oid aid;
		struct obj *o;

		if (v.type != KRAY_WT_REF && v.type != KRAY_WT_ACTOR)
			continue;
		memcpy(&aid, v.data, sizeof(aid));
		o = store_get(d, &aid);
		if (!o || o->state != OBJ_READY || !oidmap_get(&c->refs, &aid))
			return -EINVAL; /* must exist already to go with it */
		xfer_push(l, o, KRAY_PUSH_ARG);
		refs = true;
	}
	ra = ractor_get(d, &id, true);
	ra->link = l->id;
	ra->node = node;
	ra->nres = nres;
	memcpy(ra->res, res, (size_t)nres * sizeof(*res));
	ra->max_restarts = m->m.max_restarts;
	ra->max_task_retries = m->m.max_task_retries;
	b = net_out(l);
	off = WIRE_FRAME_OPEN(b, KRAY_MSG_FWD_ACTOR, 0, WIRE_FIXED(f),
			      WIRE_PADDED(path, f.path_len), WIRE_FIXED(m->m),
			      WIRE_PADDED(m->cls, m->m.class_len),
			      WIRE_PADDED(m->name, m->m.name_len), WIRE_PADDED(m->ns, m->m.ns_len),
			      WIRE_PADDED(m->res, m->m.res_len), WIRE_RAW(m->args.p, m->args.left));
	/* What it takes to create it again elsewhere (the body just written); not kept
	 * when its constructor takes objects (they would have to be kept too). */
	if (!refs)
		kbuf_put(&ra->create, b->data + off + sizeof(struct kray_frame_hdr),
			 b->len - off - sizeof(struct kray_frame_hdr));
	wire_end(b, off);
	net_flush(l);

	/* The handle here, as for a local actor; its calls go to that node. */
	h = store_create(d, &id);
	store_conn_ref(c, h);
	if (m->m.detached)
		store_ref(h);
	v = (struct wire_value){ .type = KRAY_WT_ACTOR, .data = &id, .len = sizeof(id) };
	store_seal(d, h, &v);
	log_debug("actor %u.%u.%u ('%.*s') placed on node %08x", id.node, id.owner, id.seq,
		  m->m.class_len, m->cls, node);
	*ret_id = id;
	return 0;
}

struct ractor *ractor_get(struct krayd *d, const struct kray_oid *id, bool add)
{
	uint64_t *v;
	bool fresh;
	struct ractor *ra;

	if (!add) {
		v = oidmap_get(&d->cl->ractors, id);
		return v ? (struct ractor *)(uintptr_t)*v : NULL;
	}
	v = oidmap_upsert(&d->cl->ractors, id, &fresh);
	if (!fresh)
		return (struct ractor *)(uintptr_t)*v;
	ra = calloc(1, sizeof(*ra));
	if (!ra)
		abort();
	ra->id = *id;
	*v = (uint64_t)(uintptr_t)ra;
	return ra;
}

static void ractor_free(struct ractor *ra)
{
	kbuf_free(&ra->create);
	free(ra);
}

bool remote_actor_known(struct krayd *d, const struct kray_oid *id)
{
	return ractor_get(d, id, false) != NULL;
}

void remote_actor_gone(struct krayd *d, const struct kray_oid *id)
{
	struct ractor *ra = ractor_get(d, id, false);
	struct link *l = ra ? net_link_by_id(d, ra->link) : NULL, *hl;
	struct kray_msg_refs m = { .n = 1 };
	struct kbuf *b;

	if (!ra)
		return;
	oidmap_del(&d->cl->ractors, id);
	if (ra->hold_link && (hl = net_link_by_id(d, ra->hold_link)) && hl != l) {
		b = net_out(hl);
		WIRE_FRAME(b, KRAY_MSG_PEER_RELEASE, 0, WIRE_FIXED(m), WIRE_FIXED(*id));
		net_flush(hl);
	}
	ractor_free(ra);
	if (!l)
		return;
	b = net_out(l);
	WIRE_FRAME(b, KRAY_MSG_PEER_RELEASE, 0, WIRE_FIXED(m), WIRE_FIXED(*id));
	net_flush(l);
}

static void ractor_lent(struct link *l, const struct kray_oid *id, uint32_t host)
{
	struct krayd *d = l->d;
	struct kray_msg_actor_attach a = { .actor = *id }; /* token 0: no answer awaited */
	struct kray_msg_refs m = { .n = 1 };
	struct ractor *ra;
	struct link *to;
	struct kbuf *b;

	if (host != d->node && !ractor_get(d, id, false)) {
		ra = ractor_get(d, id, true);
		ra->node = host;
		if (!host || host == l->node) {
			ra->link = l->id; /* its node holds our handle: l's hold */
			return;
		}
		to = net_link_to(d, host);
		if (to) {
			/* Frames on a link keep their order: the host holds a handle for us
			 * before our first call reaches it, and l's hold goes with ours. */
			ra->link = to->id;
			ra->hold_link = l->id;
			net_send_fixed(to, KRAY_MSG_ACTOR_ATTACH, &a, sizeof(a));
			return;
		}
		ra->link = 0; /* its node is not reachable: calls fail (ACTOR_DIED) */
	}
	/* The actor is here (or known here already): l's hold is not needed. */
	b = net_out(l);
	WIRE_FRAME(b, KRAY_MSG_PEER_RELEASE, 0, WIRE_FIXED(m), WIRE_FIXED(*id));
	net_flush(l);
}

void ractor_adopt(struct link *l)
{
	struct lent_handle h;

	while (kbuf_pending(&l->lent) >= sizeof(h)) {
		memcpy(&h, l->lent.data + l->lent.off, sizeof(h));
		kbuf_consume(&l->lent, sizeof(h));
		ractor_lent(l, &h.id, h.host);
	}
}

int remote_actor_kill(struct krayd *d, const struct kray_oid *id, bool no_restart)
{
	struct ractor *ra = ractor_get(d, id, false);
	struct link *l = ra ? net_link_by_id(d, ra->link) : NULL;
	struct kray_msg_kill m = { .actor = *id, .no_restart = no_restart };

	if (!l)
		return -ENOENT;
	if (no_restart || (ra->max_restarts >= 0 && ra->restarts >= ra->max_restarts))
		ra->no_restart = true;
	net_send_fixed(l, KRAY_MSG_FWD_KILL, &m, sizeof(m));
	return 0;
}

int remote_on_actor(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_fwd_actor f;
	struct wire_actor_create m;
	struct wire_rd r;
	const void *path = "";
	const char *why = NULL;
	uint32_t job;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &f, sizeof(f)) || f.path_len > KRAY_PATH_MAX ||
	    (f.path_len && wire_rd_bytes(&r, f.path_len, &path)) || memchr(path, 0, f.path_len) ||
	    wire_dec_actor_create(r.p, r.left, &m))
		return conn_fail(l->c, "malformed forwarded actor", -EBADMSG);
	if (f.actor.node != l->node || f.actor.index != KRAY_OID_ACTOR || f.actor.seq != m.m.seq)
		return conn_fail(l->c, "a forwarded actor must be its sender's", -EPERM);
	job = node_map_job(d, l->node, f.job, path, f.path_len);
	if (actor_create_as(l->c, &m, &f.actor, job, &why))
		log_warn("actor '%.*s' from node %08x not created: %s", m.m.class_len, m.cls,
			 l->node, why ? why : "refused");
	return 0;
}

int remote_on_kill(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_kill m;
	struct actor *a;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed forwarded kill", -EBADMSG);
	a = actor_find(l->d, &m.actor);
	if (a && m.actor.node == l->node)
		actor_kill(l->d, a, m.no_restart != 0);
	return 0;
}

/* Actors this node created that lived at the other end of l: created again on another
 * node that has their resources, within their max_restarts (their state starts over, as
 * in any restart). */
void ractor_link_gone(struct krayd *d, struct link *l)
{
	oidmap_for_each (&d->cl->ractors, s) {
		struct ractor *ra = (struct ractor *)(uintptr_t)s->val;
		uint32_t node;
		struct link *to;
		struct kbuf *b;

		if (ra->link != l->id)
			continue;
		ra->link = 0;
		if (!ra->create.len || ra->no_restart ||
		    (ra->max_restarts >= 0 && ra->restarts >= ra->max_restarts))
			continue;
		if (ra->pinned) {
			log_warn("actor %u.%u.%u: its node %08x is gone, and its node affinity "
				 "(soft=False) keeps it from restarting elsewhere",
				 ra->id.node, ra->id.owner, ra->id.seq, ra->node);
			continue;
		}
		node = node_pick(d, ra->res, ra->nres, ra->node, NULL);
		to = node ? net_link_to(d, node) : NULL;
		if (!to) {
			log_warn("actor %u.%u.%u: its node %08x is gone and no other live node has "
				 "its resources",
				 ra->id.node, ra->id.owner, ra->id.seq, ra->node);
			continue;
		}
		log_info("actor %u.%u.%u: its node %08x is gone; restarting it on node %08x (%u "
			 "of %d)",
			 ra->id.node, ra->id.owner, ra->id.seq, ra->node, node, ra->restarts + 1,
			 ra->max_restarts);
		ra->restarts++;
		ra->link = to->id;
		ra->node = node;
		b = net_out(to);
		wire_frame(b, KRAY_MSG_FWD_ACTOR, 0, &WIRE_RAW(ra->create.data, ra->create.len), 1);
		net_flush(to);
	}
}

void ractor_fini(struct krayd *d)
{
	oidmap_for_each (&d->cl->ractors, s)
		ractor_free((struct ractor *)(uintptr_t)s->val);
	oidmap_free(&d->cl->ractors);
}
