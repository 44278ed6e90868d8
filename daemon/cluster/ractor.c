// SPDX-License-Identifier: Apache-2.0
/*
 * Actors that live on another node.
 *
 * An actor whose resources only another node has is created there (FWD_ACTOR) under the
 * creator's id; the creator's node keeps its handle object and a `struct ractor` saying
 * where it lives and over which link the other node holds a handle for us.  Calls are
 * tasks with `ractor` set, sent in order over that link (remote.c); kills and the last
 * release are forwarded.  A node that found the actor by name (lookup.c) has a ractor
 * too.  When the actor's node dies, every node that holds a handle asks the head where it
 * lives now (ACTOR_LOCATE): the head restarts it once, within max_restarts, from the
 * creation record its node gave it (gactor.c), and each holder's calls go there.
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
#include "core/task.h"
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
	}
	ra = ractor_get(d, &id, true);
	ra->link = l->id;
	ra->node = node;
	ra->max_restarts = m->m.max_restarts;
	ra->max_task_retries = m->m.max_task_retries;
	b = net_out(l);
	off = WIRE_FRAME_OPEN(b, KRAY_MSG_FWD_ACTOR, 0, WIRE_FIXED(f),
			      WIRE_PADDED(path, f.path_len), WIRE_FIXED(m->m),
			      WIRE_PADDED(m->cls, m->m.class_len),
			      WIRE_PADDED(m->name, m->m.name_len), WIRE_PADDED(m->ns, m->m.ns_len),
			      WIRE_PADDED(m->res, m->m.res_len), WIRE_RAW(m->args.p, m->args.left));
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

/* Fails the calls that waited for the head's answer, in their order. */
static void fail_parked(struct krayd *d, struct ractor *ra, const char *why)
{
	for (size_t i = 0; i < ra->nparked; i++) {
		struct task *t = ra->parked[i];

		if (d->stopping)
			task_free(d, t);
		else
			task_fail(d, t, KRAY_WE_ACTOR_DIED, "actor %u.%u.%u: %s", ra->id.node,
				  ra->id.owner, ra->id.seq, why);
	}
	ra->nparked = 0;
}

static void ractor_free(struct krayd *d, struct ractor *ra)
{
	fail_parked(d, ra, "its last handle here was released while it restarted");
	free(ra->parked);
	free(ra);
}

void ractor_park(struct krayd *d, struct ractor *ra, struct task *t)
{
	(void)d;
	if (ra->nparked == ra->cap_parked) {
		ra->cap_parked = ra->cap_parked ? 2 * ra->cap_parked : 8;
		ra->parked = realloc(ra->parked, ra->cap_parked * sizeof(*ra->parked));
		if (!ra->parked)
			abort();
	}
	ra->parked[ra->nparked++] = t;
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
	ractor_free(d, ra);
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

int remote_on_kill(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_kill m;
	struct actor *a;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed forwarded kill", -EBADMSG);
	a = actor_find(l->d, &m.actor);
	/* Its creator's node, or a node that holds a handle to it through this link (found
	 * by name, lent, attached after a restart): as ray.kill() from any handle. */
	if (a && (m.actor.node == l->node || oidmap_get(&l->c->refs, &m.actor)))
		actor_kill(l->d, a, m.no_restart != 0);
	return 0;
}

/* Actors this node holds handles to that lived at the other end of l: the head says where
 * they live now (it restarts them, once, within their max_restarts: gactor.c); their calls
 * wait for the answer.  Without a head to ask, their calls fail. */
void ractor_link_gone(struct krayd *d, struct link *l)
{
	struct cluster *cl = d->cl;
	bool head = d->cfg.head || (cl->head_link && cl->head_link != l && cl->head_link->up);
	struct kray_oid *ids = NULL;
	size_t n = 0, cap = 0;

	/* The answers may come at once (on the head) and fail calls: walk a copy. */
	oidmap_for_each (&cl->ractors, s) {
		struct ractor *ra = (struct ractor *)(uintptr_t)s->val;

		if (!(l->to_head && ra->locating) && ra->link != l->id)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ids = realloc(ids, cap * sizeof(*ids));
			if (!ids)
				abort();
		}
		ids[n++] = ra->id;
	}
	for (size_t i = 0; i < n; i++) {
		struct ractor *ra = ractor_get(d, &ids[i], false);

		if (!ra)
			continue;
		if (l->to_head && ra->locating) {
			/* The head went before it answered. */
			struct kray_msg_actor_locate m = { .actor = ra->id,
							   .status = KRAY_ALOC_UNREACHABLE };

			ractor_located(d, &m);
			continue;
		}
		ra->link = 0;
		if (!head || ra->no_restart)
			continue;
		ra->locating = true; /* asked after the calls in flight are parked: gactor_ask() */
		ra->asked = false;
	}
	free(ids);
}

static int by_seq(const void *a, const void *b)
{
	const struct task *x = *(struct task *const *)a, *y = *(struct task *const *)b;

	if (x->id.owner != y->id.owner)
		return x->id.owner < y->id.owner ? -1 : 1;
	return x->id.seq < y->id.seq ? -1 : x->id.seq > y->id.seq;
}

void ractor_located(struct krayd *d, const struct kray_msg_actor_locate *m)
{
	struct ractor *ra = ractor_get(d, &m->actor, false);
	struct kray_msg_actor_attach a = { .actor = m->actor }; /* token 0: no answer awaited */
	static const char *const why[] = {
		[KRAY_ALOC_AT] = "its new node is not reachable",
		[KRAY_ALOC_NONE] = "its node is gone, and it is not restartable (max_restarts 0, "
				   "constructor arguments that are objects, or node affinity)",
		[KRAY_ALOC_SPENT] = "its node is gone and its max_restarts are spent",
		[KRAY_ALOC_NOWHERE] = "its node is gone and no live node has its resources",
		[KRAY_ALOC_UNREACHABLE] = "its node is not reachable from this one",
	};
	struct task **calls;
	struct link *to;
	size_t n;

	if (!ra || !ra->locating)
		return;
	ra->locating = false;
	to = m->status == KRAY_ALOC_AT && m->node != d->node ? net_link_to(d, m->node) : NULL;
	if (!to) {
		ra->no_restart = true;
		fail_parked(d, ra, why[m->status <= KRAY_ALOC_UNREACHABLE ? m->status : 0]);
		return;
	}
	log_info("actor %u.%u.%u lives on node %08x now (restart %u)", ra->id.node, ra->id.owner,
		 ra->id.seq, m->node, m->restarts);
	ra->node = m->node;
	ra->link = to->id;
	ra->restarts = m->restarts;
	ra->max_task_retries = m->max_task_retries;
	/* Frames on a link keep their order: the new node holds a handle for us before our
	 * first call reaches it. */
	net_send_fixed(to, KRAY_MSG_ACTOR_ATTACH, &a, sizeof(a));
	calls = ra->parked;
	n = ra->nparked;
	ra->parked = NULL;
	ra->nparked = ra->cap_parked = 0;
	/* In their first order (those in flight were parked after later ones, if any). */
	if (n)
		qsort(calls, n, sizeof(*calls), by_seq);
	for (size_t i = 0; i < n; i++) {
		struct task *t = calls[i];

		/* A call in flight when its node died runs again within max_task_retries;
		 * the others were never sent. */
		if (m->max_task_retries >= 0 && t->attempts > m->max_task_retries)
			task_fail(d, t, KRAY_WE_ACTOR_DIED,
				  "actor %u.%u.%u: its node died while it ran this call (it "
				  "restarted on node %08x; max_task_retries %d)",
				  ra->id.node, ra->id.owner, ra->id.seq, m->node,
				  m->max_task_retries);
		else
			sched_enqueue(d, t, false); /* -> remote_take(): the new node */
	}
	free(calls);
}

int ractor_on_located(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_actor_locate m;

	if (wire_dec_fixed(body, len, &m, sizeof(m)) || m.status > KRAY_ALOC_UNREACHABLE)
		return conn_fail(l->c, "malformed actor location", -EBADMSG);
	if (!l->to_head)
		return conn_fail(l->c, "only the head says where an actor lives", -EPROTO);
	ractor_located(l->d, &m);
	return 0;
}

void ractor_fini(struct krayd *d)
{
	oidmap_for_each (&d->cl->ractors, s)
		ractor_free(d, (struct ractor *)(uintptr_t)s->val);
	oidmap_free(&d->cl->ractors);
}
