// SPDX-License-Identifier: Apache-2.0
/*
 * Requests a local client makes that another node answers: looking up a named actor that
 * lives elsewhere (the head's table says where, then that node is asked to hold a handle
 * for our link: ACTOR_ATTACH), and the cluster's key-value table (kept by the head).
 *
 * Each is a `struct pending` with a token that travels instead of the client's request
 * id; the client's connection is named by id, since it may close before the answer.  A
 * request unanswered after node-timeout-ms is answered -ETIMEDOUT (pend_expire()), so a
 * client never waits on a node that went away.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/proto.h"

static void kv_answer(struct conn *c, uint64_t req, int status, const void *val, uint32_t len)
{
	struct kray_msg_kv m = { .status = status, .value_len = len };
	WIRE_FRAME(&c->out, KRAY_MSG_KV_REPLY, req, WIRE_FIXED(m), WIRE_PADDED(val, len));
	conn_flush_later(c);
}

static void answer_fail(struct krayd *d, struct pending *p, int status, const char *why)
{
	struct conn *c = pend_conn(d, p);

	if (!c)
		return;
	if (p->kind == PEND_KV)
		kv_answer(c, p->req, status, NULL, 0);
	else
		actor_reply(c, p->req, status, NULL, why);
}

static void claim_expired(struct krayd *d, struct pending *p);

void pend_expire(struct krayd *d, int64_t now)
{
	struct pending **pp;

	if (d->cfg.head)
		lookup_names_changed(d, now); /* those that waited for a name: answered */
	pp = &d->cl->pend;

	while (*pp) {
		struct pending *p = *pp;

		if (now < p->deadline) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		if (p->kind == PEND_CLAIM)
			claim_expired(d, p);
		answer_fail(d, p, -ETIMEDOUT, "the node that knows did not answer in time");
		pend_free(p);
	}
}

/* A handle here for the actor on host, for client c (the host holds one for our link). */
static void give_handle(struct krayd *d, struct conn *c, struct pending *p, struct link *l)
{
	struct obj *h = store_get(d, &p->actor);

	if (!h) {
		struct wire_value v = { .type = KRAY_WT_ACTOR,
					.data = &p->actor,
					.len = sizeof(p->actor) };

		h = store_create(d, &p->actor);
		store_conn_ref(c, h); /* before the seal: an unreferenced object is dropped */
		store_seal(d, h, &v);
	} else {
		store_conn_ref(c, h);
	}
	struct ractor *ra = ractor_get(d, &p->actor, false);

	if (!ra) {
		ra = ractor_get(d, &p->actor, true);
		ra->link = l->id;
		ra->node = p->host;
	}
	actor_reply(c, p->req, 0, &p->actor, NULL);
}

static int on_reply(struct krayd *d, const uint8_t *body, uint32_t len);

/* On the head, lookup p of name: the table is here, straight to the actor's node. */
static void head_lookup(struct krayd *d, struct pending *p, const char *name, size_t len,
			const char *ns, size_t ns_len)
{
	struct gname *g = gcs_find_name(d, name, len, ns, ns_len);
	struct node_entry *host = g ? node_find(d, g->host) : NULL;
	struct kray_msg_gcs_lookup_reply rep = { .status = -ENOENT, .token = p->token };

	if (g && host && host->m.alive && g->host != d->node) {
		rep.status = 0;
		rep.host = g->host;
		rep.actor = g->id;
	}
	on_reply(d, (const uint8_t *)&rep, sizeof(rep));
}

void lookup_names_changed(struct krayd *d, int64_t now)
{
	struct pending **pp = &d->cl->pend;
	struct pending *ready = NULL;

	/* Out of the list first: on_reply() takes each from it again by its token. */
	while (*pp) {
		struct pending *p = *pp;
		const char *name = (const char *)p->create.data;
		size_t len = p->kind == PEND_NAME ? strlen(name) : 0;

		if (p->kind != PEND_NAME ||
		    (now < p->deadline &&
		     gcs_name_claimed(
			     gcs_find_name(d, name, len, name + len + 1, p->create.len - len - 1),
			     now))) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = ready;
		ready = p;
	}
	while (ready) {
		struct pending *p = ready;
		const char *name = (const char *)p->create.data;
		size_t len = strlen(name);
		char nm[KRAY_NAME_MAX + 1], ns[KRAY_NAME_MAX + 1];
		size_t ns_len = p->create.len - len - 1;

		ready = p->next;
		memcpy(nm, name, len + 1);
		memcpy(ns, name + len + 1, ns_len);
		kbuf_free(&p->create);
		p->kind = PEND_LOOKUP;
		p->next = d->cl->pend;
		d->cl->pend = p;
		head_lookup(d, p, nm, len, ns, ns_len);
	}
}

void lookup_start(struct conn *c, uint64_t req, const char *name, size_t len, const char *ns,
		  size_t ns_len)
{
	struct krayd *d = c->d;
	struct kray_msg_gcs_lookup m = { .name_len = (uint8_t)len, .ns_len = (uint8_t)ns_len };
	struct link *head = d->cl->head_link;
	struct pending *p;
	struct kbuf *b;

	if (d->cfg.head) {
		struct gname *g = gcs_find_name(d, name, len, ns, ns_len);

		p = pend_new(d, PEND_LOOKUP, c, req);
		if (gcs_name_claimed(g, now_ns())) {
			/* Its actor is not registered yet: wait for it (lookup_names_changed()). */
			p->kind = PEND_NAME;
			p->deadline = g->claimed_until;
			kbuf_put(&p->create, name, len);
			kbuf_put(&p->create, "", 1);
			kbuf_put(&p->create, ns, ns_len);
			return;
		}
		head_lookup(d, p, name, len, ns, ns_len);
		return;
	}
	if (!head || !head->up) {
		actor_reply(c, req, -ENOENT, NULL,
			    "no live actor has this name here, and the head is not reachable");
		return;
	}
	p = pend_new(d, PEND_LOOKUP, c, req);
	m.token = p->token;
	b = net_out(head);
	WIRE_FRAME(b, KRAY_MSG_GCS_LOOKUP, 0, WIRE_FIXED(m), WIRE_PADDED(name, len),
		   WIRE_PADDED(ns, ns_len));
	net_flush(head);
}

/*
 * The name of ACTOR_CREATE a (claimed for id claim) is this node's to use, unless
 * taken_by names the node of the live actor that has it: creates the actor and answers
 * client c (gone: NULL).  A creation that fails gives the name back.
 */
static void claimed(struct krayd *d, struct conn *c, uint64_t req,
		    const struct wire_actor_create *a, const struct kray_oid *claim, bool taken,
		    uint32_t taken_by)
{
	struct kray_oid id;
	const char *why = NULL;
	char msg[96];
	int r;

	if (taken) {
		snprintf(msg, sizeof(msg), "an actor with this name lives on node %08x", taken_by);
		if (c)
			actor_reply(c, req, -EEXIST, NULL, msg);
		return;
	}
	r = c ? actor_create(c, a, &id, &why) : -ENOTCONN;
	if (r)
		gcs_name_release(d, claim, a->name, a->m.name_len, a->ns ? a->ns : "", a->m.ns_len);
	if (c)
		actor_reply(c, req, r, r ? NULL : &id, why);
}

/*
 * A named actor in a cluster: its name must be free on every node, so the head, which
 * keeps the names, is asked to give it to this actor first (a lookup with claim set; on
 * the head itself, at once).  The ACTOR_CREATE is kept meanwhile and run when the answer
 * comes (claim_done()); the client waits for its reply as for any lookup.  Two nodes
 * that claim one name at once are answered in turn: the second is told it is taken.
 */
void claim_start(struct conn *c, uint64_t req, const struct wire_actor_create *m,
		 const uint8_t *body, uint32_t len)
{
	struct krayd *d = c->d;
	struct kray_msg_gcs_lookup q = { .name_len = m->m.name_len,
					 .ns_len = m->m.ns_len,
					 .claim = 1,
					 .actor = { d->node, c->id, m->m.seq, KRAY_OID_ACTOR } };
	struct link *head = d->cl->head_link;
	struct pending *p;
	struct kbuf *b;

	if (d->cfg.head) {
		struct gname *g = gcs_claim(d, m->name, m->m.name_len, m->ns ? m->ns : "",
					    m->m.ns_len, &q.actor, d->node);

		claimed(d, c, req, m, &q.actor, g != NULL, g ? g->host : 0);
		return;
	}
	if (!head || !head->up) {
		actor_reply(c, req, -EAGAIN, NULL,
			    "the head is not reachable, and a name is the cluster's: it must "
			    "say the name is free");
		return;
	}
	p = pend_new(d, PEND_CLAIM, c, req);
	p->actor = q.actor;
	kbuf_put(&p->create, body, len);
	q.token = p->token;
	b = net_out(head);
	WIRE_FRAME(b, KRAY_MSG_GCS_LOOKUP, 0, WIRE_FIXED(q), WIRE_PADDED(m->name, m->m.name_len),
		   WIRE_PADDED(m->ns ? m->ns : "", m->m.ns_len));
	net_flush(head);
}

/* The head answered a claim: the name is taken (status 0), or it is ours. */
static void claim_done(struct krayd *d, struct pending *p,
		       const struct kray_msg_gcs_lookup_reply *m)
{
	struct wire_actor_create a;

	if (wire_dec_actor_create(p->create.data, p->create.len, &a))
		return; /* decoded once already: cannot happen */
	claimed(d, pend_conn(d, p), p->req, &a, &p->actor,
		!m->status && !oid_eq(&m->actor, &p->actor), m->host);
}

/* A claim the head did not answer in time: whatever it did with it, the name goes back. */
static void claim_expired(struct krayd *d, struct pending *p)
{
	struct wire_actor_create a;

	if (!wire_dec_actor_create(p->create.data, p->create.len, &a))
		gcs_name_release(d, &p->actor, a.name, a.m.name_len, a.ns ? a.ns : "", a.m.ns_len);
}

/* The head's answer (from the head itself: lookup_start()). */
static int on_reply(struct krayd *d, const uint8_t *body, uint32_t len)
{
	struct kray_msg_gcs_lookup_reply m;
	struct kray_msg_actor_attach a = { 0 };
	struct pending *p;
	struct link *to;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return -EBADMSG;
	p = pend_take(d, m.token);
	if (!p)
		return 0; /* expired (a claimed name stays the head's until its holder dies) */
	if (p->kind == PEND_CLAIM) {
		claim_done(d, p, &m);
		pend_free(p);
		return 0;
	}
	if (m.status || m.host == d->node) {
		answer_fail(d, p, -ENOENT, "no live actor has this name in this namespace");
		pend_free(p);
		return 0;
	}
	to = net_link_to(d, m.host);
	if (!to) {
		answer_fail(d, p, -ENOENT, "the named actor's node is not reachable");
		pend_free(p);
		return 0;
	}
	/* Ask its node to hold a handle for our link, then give the client one here. */
	p->kind = PEND_ATTACH;
	p->actor = m.actor;
	p->host = m.host;
	p->next = d->cl->pend;
	d->cl->pend = p;
	a.token = p->token;
	a.actor = m.actor;
	net_send_fixed(to, KRAY_MSG_ACTOR_ATTACH, &a, sizeof(a));
	return 0;
}

int lookup_on_reply(struct link *l, const uint8_t *body, uint32_t len)
{
	return on_reply(l->d, body, len) ? conn_fail(l->c, "malformed lookup reply", -EBADMSG) : 0;
}

/* On the actor's node: hold a handle for this link. */
int lookup_on_attach(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_actor_attach m;
	struct actor *a;
	struct obj *h;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed attach", -EBADMSG);
	a = actor_find(l->d, &m.actor);
	h = a && a->state != A_DEAD ? store_get(l->d, &m.actor) : NULL;
	m.status = h ? 0 : -ENOENT;
	if (h)
		store_conn_ref(l->c, h); /* dropped by PEER_RELEASE or when the link goes */
	net_send_fixed(l, KRAY_MSG_ACTOR_ATTACH_REPLY, &m, sizeof(m));
	return 0;
}

int lookup_on_attach_reply(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_actor_attach m;
	struct pending *p;
	struct conn *c;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed attach reply", -EBADMSG);
	if (!m.token)
		return 0; /* for a handle lent to us (ractor_lent()): its hold stays */
	p = pend_take(d, m.token);
	if (!p)
		goto undo;
	c = pend_conn(d, p);
	if (m.status || !c) {
		if (m.status)
			answer_fail(d, p, -ENOENT, "the named actor is gone");
		pend_free(p);
		goto undo;
	}
	give_handle(d, c, p, l);
	pend_free(p);
	return 0;
undo:
	if (!m.status) {
		/* Nobody here wants the handle it took for us. */
		struct kray_msg_refs r = { .n = 1 };
		struct kbuf *b = net_out(l);
		WIRE_FRAME(b, KRAY_MSG_PEER_RELEASE, 0, WIRE_FIXED(r), WIRE_FIXED(m.actor));
		net_flush(l);
	}
	return 0;
}

int kv_on_reply(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_kv m;
	struct wire_rd r;
	const void *val = NULL;
	struct pending *p;
	struct conn *c;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || m.value_len > KRAY_KV_VALUE_MAX ||
	    (m.value_len && wire_rd_bytes(&r, m.value_len, &val)) || wire_rd_end(&r))
		return conn_fail(l->c, "malformed kv reply", -EBADMSG);
	p = pend_take(d, m.token);
	c = p ? pend_conn(d, p) : NULL;
	if (c)
		kv_answer(c, p->req, m.status, val, m.value_len);
	pend_free(p);
	return 0;
}

void lookup_fini(struct krayd *d)
{
	while (d->cl->pend) {
		struct pending *p = d->cl->pend;

		d->cl->pend = p->next;
		pend_free(p);
	}
}
