// SPDX-License-Identifier: Apache-2.0
/*
 * The head's node table (the GCS part of issue 7 that exists so far): every node that
 * registered, its address, resources and last reported load.  Nodes report every
 * heartbeat-ms; the head answers each report with the whole view, so members learn of
 * joins and deaths within one heartbeat.  A node is dead when its link closes (its
 * krayd exited or crashed: the kernel resets the connection) or when it has been silent
 * for node-timeout-ms (a hung or cut-off node); its links are closed, so the tasks sent
 * to it are retried elsewhere (remote.c), and its resources leave the view.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/actor.h"
#include "core/sched.h"

/*
 * The view for link l: the entries that changed since the last view sent on it (all of
 * them on its first), so what the head sends per report grows with what changes, not with
 * the cluster's size.  An entry changes when its node's membership, address, capacity,
 * resources or load (workers busy, tasks queued) does; counters alone (tasks finished,
 * store bytes) go out with its next change.
 */
static void view_frame(struct krayd *d, struct link *l)
{
	struct cluster *cl = d->cl;
	struct kray_msg_refs n = { 0 };
	struct kbuf *b = net_out(l);
	size_t off;
	uint32_t flags = l->view_sent ? KRAY_VIEW_DELTA : 0;

	for (unsigned i = 0; i < cl->nnodes; i++)
		n.n += cl->nodes[i].ver > l->view_sent;
	off = WIRE_FRAME_OPEN(b, KRAY_MSG_NODE_VIEW, 0, WIRE_FIXED(n));
	memcpy(b->data + off + offsetof(struct kray_frame_hdr, flags), &flags, sizeof(flags));
	for (unsigned i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i].ver > l->view_sent)
			node_put_entry(b, &cl->nodes[i]);
	wire_end(b, off);
	l->view_sent = cl->view_ver;
}

/* Whether a view must say again what old said of a node (see view_frame()). */
static bool entry_changed(const struct node_entry *e, const struct kray_msg_node *old,
			  const char *old_res)
{
	return e->m.alive != old->alive || e->m.addr != old->addr || e->m.port != old->port ||
	       e->m.num_cpus != old->num_cpus || e->m.workers != old->workers ||
	       e->m.workers_busy != old->workers_busy || e->m.tasks_queued != old->tasks_queued ||
	       strcmp(e->res_text, old_res);
}

void gcs_entry_changed(struct krayd *d, struct node_entry *e)
{
	e->ver = ++d->cl->view_ver;
}

void gcs_on_report(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct krayd *d = l->d;
	struct kray_msg_node m;
	struct wire_rd r;
	const void *res = NULL;
	struct node_entry *e;
	struct wire_resource parsed[KRAY_RESOURCES_MAX];
	struct kray_msg_node old;
	char old_res[sizeof(e->res_text)];
	int nres;
	bool was_alive;

	wire_rd_init(&r, body, h->len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || (m.res_len && wire_rd_bytes(&r, m.res_len, &res)) ||
	    wire_rd_end(&r) || m.node != l->node ||
	    (nres = wire_parse_resources(res, m.res_len, parsed)) < 0) {
		log_warn_ratelimited("node %08x: malformed report ignored", l->node);
		return;
	}
	e = node_find(d, m.node);
	if (!e)
		e = node_add(d->cl, m.node);
	was_alive = e->m.alive;
	old = e->m;
	memcpy(old_res, e->res_text, sizeof(old_res));
	if (!m.addr) {
		/* It listens on every address: reach it where its link comes from. */
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);

		if (!getpeername(l->c->fd, (struct sockaddr *)&sa, &len))
			m.addr = sa.sin_addr.s_addr;
	}
	m.alive = 1;
	e->m = m;
	e->nres = nres;
	memcpy(e->res, parsed, (size_t)nres * sizeof(*parsed));
	if (m.res_len) /* (res is NULL without resources) */
		memcpy(e->res_text, res, m.res_len);
	e->res_text[m.res_len] = 0;
	e->last_seen = now_ns();
	e->link = l;
	if (!was_alive || entry_changed(e, &old, old_res))
		gcs_entry_changed(d, e);
	if (!was_alive) {
		char addr[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &m.addr, addr, sizeof(addr));
		log_info("node %08x joined from %s:%u (%u CPUs, resources '%s')", m.node, addr,
			 m.port, m.num_cpus, e->res_text);
		if (d->cl->store->node_changed)
			d->cl->store->node_changed(d, e);
	}
	view_frame(d, l);
	net_flush(l);
}

static void declare_dead(struct krayd *d, struct node_entry *e, const char *why)
{
	if (!e->m.alive)
		return;
	e->m.alive = 0;
	e->link = NULL;
	gcs_entry_changed(d, e);
	log_warn("node %08x is dead: %s", e->m.node, why);
	if (d->cl->store->node_changed)
		d->cl->store->node_changed(d, e);
	pgplace_node_dead(d, e->m.node); /* first: the retried work waits for its group */
	gactor_node_dead(d, e->m.node); /* its actors restart elsewhere, once */
	net_drop_node(d, e->m.node);
}

static void name_waits_run(struct krayd *d, int64_t now);

void gcs_tick(struct krayd *d, int64_t now)
{
	struct cluster *cl = d->cl;
	int64_t timeout = (int64_t)d->cfg.node_timeout_ms * 1000000;

	name_waits_run(d, now);
	for (unsigned i = 0; i < cl->nnodes; i++) {
		struct node_entry *e = &cl->nodes[i];

		if (e->m.node == d->node) {
			struct kray_msg_node old = e->m;
			char old_res[sizeof(e->res_text)];

			memcpy(old_res, e->res_text, sizeof(old_res));
			node_self(d, e); /* the head's own entry is always current */
			if (entry_changed(e, &old, old_res))
				gcs_entry_changed(d, e);
		} else if (e->m.alive && now - e->last_seen > timeout)
			declare_dead(d, e, "no heartbeat within node-timeout-ms");
	}
	if (cl->store->tick)
		cl->store->tick(d, now);
	gactor_tick(d, now);
}

void gcs_link_gone(struct link *l)
{
	struct node_entry *e = l->node ? node_find(l->d, l->node) : NULL;

	/* Only the link it reports over says it is gone: links to it for work may close
	 * for other reasons.  A head that stops closes them all itself. */
	if (e && e->link == l && !l->d->stopping)
		declare_dead(l->d, e, "its link to the head closed");
	for (unsigned i = 0; i < l->d->cl->nnodes; i++)
		if (l->d->cl->nodes[i].link == l)
			l->d->cl->nodes[i].link = NULL; /* the struct goes at the next sweep */
}

/* ---- named actors and the key-value table ------------------------------------------ */

struct gname *gcs_find_name(struct krayd *d, const char *name, size_t len, const char *ns,
			    size_t ns_len)
{
	for (struct gname *g = d->cl->names; g; g = g->next)
		if (strlen(g->name) == len && !memcmp(g->name, name, len) &&
		    strlen(g->ns) == ns_len && !memcmp(g->ns, ns, ns_len))
			return g;
	return NULL;
}

struct gkv *gcs_kv_find(struct krayd *d, const char *key, size_t len)
{
	for (struct gkv *e = d->cl->kv; e; e = e->next)
		if (strlen(e->key) == len && !memcmp(e->key, key, len))
			return e;
	return NULL;
}

/* A name or key of n bytes with no NUL in it, padded. */
static int rd_str(struct wire_rd *r, uint8_t n, const void **ret)
{
	*ret = "";
	if (n && (wire_rd_bytes(r, n, ret) || memchr(*ret, 0, n)))
		return -EBADMSG;
	return 0;
}

/*
 * A name is claimed (by its creator's node) before its actor exists, and registered by the
 * actor's node once it does, which may be another node (placed there for its resources):
 * a lookup in between would send the asker to the creator's node, which does not have the
 * actor.  Such lookups wait for the registration, at most name_wait_ns() after the claim.
 */
struct name_wait {
	struct name_wait *next;
	uint32_t link;
	uint64_t token;
	char name[KRAY_NAME_MAX + 1], ns[KRAY_NAME_MAX + 1];
	uint8_t name_len, ns_len;
};

static int64_t name_wait_ns(struct krayd *d)
{
	int64_t ms = d->cfg.node_timeout_ms / 2 < 2000 ? d->cfg.node_timeout_ms / 2 : 2000;

	return ms * 1000000;
}

/* The answer to a plain lookup of name: where its live actor is, or -ENOENT. */
static void lookup_answer(struct krayd *d, const char *name, size_t len, const char *ns,
			  size_t ns_len, struct kray_msg_gcs_lookup_reply *rep)
{
	struct gname *g = gcs_find_name(d, name, len, ns, ns_len);
	struct node_entry *host = g ? node_find(d, g->host) : NULL;

	rep->status = -ENOENT;
	if (g && host && host->m.alive) {
		rep->status = 0;
		rep->host = g->host;
		rep->actor = g->id;
	}
}

static void name_waits_run(struct krayd *d, int64_t now)
{
	struct name_wait **pp = &d->cl->name_waits;

	while (*pp) {
		struct name_wait *w = *pp;
		struct kray_msg_gcs_lookup_reply rep = { .token = w->token };
		struct link *l;

		if (gcs_name_claimed(gcs_find_name(d, w->name, w->name_len, w->ns, w->ns_len),
				     now)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		lookup_answer(d, w->name, w->name_len, w->ns, w->ns_len, &rep);
		l = net_link_by_id(d, w->link);
		if (l)
			net_send_fixed(l, KRAY_MSG_GCS_LOOKUP_REPLY, &rep, sizeof(rep));
		free(w);
	}
}

/* The table's entry for name in ns, made if there is none, held by actor on host. */
static struct gname *claim_name(struct krayd *d, const void *name, size_t len, const void *ns,
				size_t ns_len, const struct kray_oid *actor, uint32_t host)
{
	struct gname *g = gcs_find_name(d, name, len, ns, ns_len);

	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			abort();
		memcpy(g->name, name, len);
		memcpy(g->ns, ns, ns_len);
		g->next = d->cl->names;
		d->cl->names = g;
	}
	g->id = *actor;
	g->host = host;
	return g;
}

struct gname *gcs_claim(struct krayd *d, const char *name, size_t len, const char *ns,
			size_t ns_len, const struct kray_oid *actor, uint32_t host)
{
	struct gname *g = gcs_find_name(d, name, len, ns, ns_len);
	struct node_entry *e = g ? node_find(d, g->host) : NULL;

	if (g && e && e->m.alive && !oid_eq(&g->id, actor))
		return g; /* taken */
	/* Free (or its holder's node is dead): the claimant's from now on, before its
	 * actor registers (that comes next, or the name's release if creation failed). */
	g = claim_name(d, name, len, ns, ns_len, actor, host);
	g->claimed_until = now_ns() + name_wait_ns(d);
	return NULL;
}

bool gcs_name_claimed(const struct gname *g, int64_t now)
{
	return g && g->claimed_until > now;
}

static int apply_actor(struct krayd *d, const uint8_t *body, uint32_t len)
{
	struct kray_msg_gcs_actor m;
	struct wire_rd r;
	const void *name, *ns;
	struct gname *g, **p;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || !m.name_len || rd_str(&r, m.name_len, &name) ||
	    rd_str(&r, m.ns_len, &ns) || wire_rd_end(&r))
		return -EBADMSG;
	g = gcs_find_name(d, name, m.name_len, ns, m.ns_len);
	if (!m.alive) {
		/* Only the actor that has the name gives it up. */
		for (p = &d->cl->names; g && *p; p = &(*p)->next)
			if (*p == g && oid_eq(&g->id, &m.actor)) {
				*p = g->next;
				free(g);
				break;
			}
		return 0;
	}
	/* The latest registration wins: a restarted actor, or a name taken again after
	 * its holder died with a node the head has not declared dead yet.  (A new name
	 * was claimed first: claim_start().) */
	g = claim_name(d, name, m.name_len, ns, m.ns_len, &m.actor, m.host);
	g->detached = m.detached;
	g->claimed_until = 0;
	name_waits_run(d, now_ns()); /* lookups that waited for it */
	return 0;
}

static int apply_kv(struct krayd *d, const uint8_t *body, uint32_t len)
{
	struct kray_msg_kv m;
	struct wire_rd r;
	const void *key, *val = NULL;
	struct gkv *e, **p;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || !m.key_len || rd_str(&r, m.key_len, &key) ||
	    m.value_len > KRAY_KV_VALUE_MAX ||
	    (m.value_len && wire_rd_bytes(&r, m.value_len, &val)) || wire_rd_end(&r) ||
	    (m.op != KRAY_KV_PUT && m.op != KRAY_KV_DEL))
		return -EBADMSG;
	e = gcs_kv_find(d, key, m.key_len);
	if (m.op == KRAY_KV_DEL) {
		for (p = &d->cl->kv; e && *p; p = &(*p)->next)
			if (*p == e) {
				*p = e->next;
				free(e->val);
				free(e);
				break;
			}
		return 0;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			abort();
		memcpy(e->key, key, m.key_len);
		e->next = d->cl->kv;
		d->cl->kv = e;
	}
	free(e->val);
	e->val = malloc(m.value_len ? m.value_len : 1);
	if (!e->val)
		abort();
	if (m.value_len)
		memcpy(e->val, val, m.value_len);
	e->len = m.value_len;
	return 0;
}

static int apply_job(struct krayd *d, const uint8_t *body, uint32_t len)
{
	struct kray_msg_gcs_job m;
	struct wire_rd r;
	const void *path = "";
	struct gjob *j;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || m.path_len > KRAY_PATH_MAX ||
	    (m.path_len && wire_rd_bytes(&r, m.path_len, &path)) || wire_rd_end(&r) ||
	    memchr(path, 0, m.path_len))
		return -EBADMSG;
	for (j = d->cl->jobs_table; j; j = j->next)
		if (j->m.node == m.node && j->m.job == m.job)
			break;
	if (!j) {
		j = calloc(1, sizeof(*j));
		if (!j || !(j->path = strndup(path, m.path_len)))
			abort();
		j->next = d->cl->jobs_table;
		d->cl->jobs_table = j;
	}
	j->m = m;
	return 0;
}

int gcs_apply(struct krayd *d, uint16_t type, const uint8_t *body, uint32_t len, bool log)
{
	int r = type == KRAY_MSG_GCS_ACTOR ? apply_actor(d, body, len) :
		type == KRAY_MSG_KV	   ? apply_kv(d, body, len) :
		type == KRAY_MSG_GCS_JOB   ? apply_job(d, body, len) :
					     -EBADMSG;

	if (!r && log)
		d->cl->store->append(d, type, body, len);
	return r;
}

/* Answers the KV replies held for writes up to seq (core connections and node links
 * found again by id: either may have gone meanwhile). */
static void gcs_durable(struct krayd *d, uint64_t seq)
{
	struct cluster *cl = d->cl;

	while (cl->held && cl->held->seq <= seq) {
		struct gheld *h = cl->held;
		struct link *l = h->link_id ? net_link_by_id(d, h->link_id) : NULL;

		cl->held = h->next;
		if (!cl->held)
			cl->held_tail = &cl->held;
		if (l && l->c) {
			kbuf_put(net_out(l), h->frame.data, h->frame.len);
			net_flush(l);
		} else if (!h->link_id) {
			for (struct conn *c = d->conns; c; c = c->next)
				if (c->id == h->conn_id && !c->closed) {
					kbuf_put(&c->out, h->frame.data, h->frame.len);
					conn_flush_later(c);
					break;
				}
		}
		kbuf_free(&h->frame);
		free(h);
	}
}

int gcs_open(struct krayd *d)
{
	d->cl->held_tail = &d->cl->held;
	d->cl->store =
		strncmp(d->cfg.gcs_storage, "redis://", 8) ? &gcs_log_store : &gcs_redis_store;
	return d->cl->store->open(d, gcs_apply, gcs_snapshot, gcs_durable);
}

int gcs_on_lookup(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_gcs_lookup m;
	struct kray_msg_gcs_lookup_reply rep = { .status = -ENOENT };
	struct wire_rd r;
	const void *name, *ns;
	struct gname *g;
	struct node_entry *host;

	if (!d->cfg.head)
		return conn_fail(l->c, "this node is not the head", -EPROTO);
	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || !m.name_len || rd_str(&r, m.name_len, &name) ||
	    rd_str(&r, m.ns_len, &ns) || wire_rd_end(&r))
		return conn_fail(l->c, "malformed lookup", -EBADMSG);
	rep.token = m.token;
	if (m.claim) {
		g = gcs_claim(d, name, m.name_len, ns, m.ns_len, &m.actor, l->node);
	} else {
		g = gcs_find_name(d, name, m.name_len, ns, m.ns_len);
		if (gcs_name_claimed(g, now_ns())) {
			struct name_wait *w = calloc(1, sizeof(*w));

			if (!w)
				abort();
			w->link = l->id;
			w->token = m.token;
			memcpy(w->name, name, m.name_len);
			memcpy(w->ns, ns, m.ns_len);
			w->name_len = m.name_len;
			w->ns_len = m.ns_len;
			w->next = d->cl->name_waits;
			d->cl->name_waits = w;
			return 0;
		}
		host = g ? node_find(d, g->host) : NULL;
		if (!host || !host->m.alive)
			g = NULL;
	}
	if (g) {
		rep.status = 0;
		rep.host = g->host;
		rep.actor = g->id;
	}
	net_send_fixed(l, KRAY_MSG_GCS_LOOKUP_REPLY, &rep, sizeof(rep));
	return 0;
}

/* Runs a KV request on the head; the reply (status and, for a get, the value) goes to b
 * as a KV_REPLY with request id req, or, for a write the store does not have yet, waits
 * for it (gcs_durable()) to go to the client conn_id or the link link_id then. */
static void kv_run(struct krayd *d, const uint8_t *body, uint32_t len, struct kbuf *b, uint64_t req,
		   uint32_t conn_id, uint32_t link_id)
{
	struct cluster *cl = d->cl;
	uint64_t seq = 0;
	struct kray_msg_kv m, rep = { 0 };
	struct wire_rd r;
	const void *key;
	struct gkv *e = NULL;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || !m.key_len || rd_str(&r, m.key_len, &key)) {
		rep.status = -EINVAL;
	} else {
		rep.token = m.token;
		rep.op = m.op;
		if (m.op == KRAY_KV_GET) {
			e = gcs_kv_find(d, key, m.key_len);
			rep.status = e ? 0 : -ENOENT;
			rep.value_len = e ? e->len : 0;
		} else {
			rep.status = gcs_apply(d, KRAY_MSG_KV, body, len, true) ? -EINVAL : 0;
			if (!rep.status && cl->store->pending)
				seq = cl->store->pending(d);
		}
	}
	if (seq) {
		struct gheld *h = calloc(1, sizeof(*h));

		if (!h)
			abort();
		*h = (struct gheld){ .seq = seq, .conn_id = conn_id, .link_id = link_id };
		b = &h->frame;
		*cl->held_tail = h;
		cl->held_tail = &h->next;
	}
	WIRE_FRAME(b, KRAY_MSG_KV_REPLY, req, WIRE_FIXED(rep),
		   WIRE_PADDED(e ? e->val : NULL, e ? e->len : 0));
}

int gcs_on_kv(struct link *l, const uint8_t *body, uint32_t len)
{
	if (!l->d->cfg.head)
		return conn_fail(l->c, "this node is not the head", -EPROTO);
	kv_run(l->d, body, len, net_out(l), 0, 0, l->id);
	net_flush(l);
	return 0;
}

int kv_from_client(struct conn *c, uint64_t req, const uint8_t *body, uint32_t len)
{
	struct krayd *d = c->d;
	struct kray_msg_kv m;
	struct pending *p;
	struct kbuf *b;

	if (len < sizeof(m))
		return conn_fail(c, "malformed kv", -EBADMSG);
	if (!d->cl || d->cfg.head) {
		struct kray_msg_kv rep = { .status = -ENOTCONN };

		if (d->cl) {
			kv_run(d, body, len, &c->out, req, c->id, 0);
		} else {
			/* One node: no head to keep the table. */
			WIRE_FRAME(&c->out, KRAY_MSG_KV_REPLY, req, WIRE_FIXED(rep));
		}
		conn_flush_later(c);
		return 0;
	}
	if (!d->cl->head_link || !d->cl->head_link->up) {
		struct kray_msg_kv rep = { .status = -EAGAIN };

		WIRE_FRAME(&c->out, KRAY_MSG_KV_REPLY, req, WIRE_FIXED(rep));
		conn_flush_later(c);
		return 0;
	}
	/* To the head, with our token in place of the client's. */
	p = pend_new(d, PEND_KV, c, req);
	memcpy(&m, body, sizeof(m));
	m.token = p->token;
	b = net_out(d->cl->head_link);
	WIRE_FRAME(b, KRAY_MSG_KV, 0, WIRE_FIXED(m), WIRE_RAW(body + sizeof(m), len - sizeof(m)));
	net_flush(d->cl->head_link);
	return 0;
}

static void put_gcs_name(struct kbuf *b, const struct kray_msg_gcs_actor *m, const char *name,
			 const char *ns)
{
	WIRE_FRAME(b, KRAY_MSG_GCS_ACTOR, 0, WIRE_FIXED(*m), WIRE_PADDED(name, m->name_len),
		   WIRE_PADDED(ns, m->ns_len));
}

static struct kray_msg_gcs_actor actor_entry(struct krayd *d, struct actor *a, bool alive)
{
	return (struct kray_msg_gcs_actor){ .actor = a->id,
					    .host = d->node,
					    .alive = alive,
					    .detached = a->detached,
					    .name_len = (uint8_t)strlen(a->name),
					    .ns_len = (uint8_t)strlen(a->ns) };
}

static void put_gcs_actor(struct kbuf *b, struct krayd *d, struct actor *a, bool alive)
{
	struct kray_msg_gcs_actor m = actor_entry(d, a, alive);

	put_gcs_name(b, &m, a->name, a->ns);
}

/* Sends m (name and ns) to the head's table, or applies it there on the head. */
static void to_table(struct krayd *d, const struct kray_msg_gcs_actor *m, const char *name,
		     const char *ns)
{
	struct link *head = d->cl->head_link;
	struct kbuf tmp = { 0 };

	if (d->cfg.head) {
		put_gcs_name(&tmp, m, name, ns);
		gcs_apply(d, KRAY_MSG_GCS_ACTOR, tmp.data + sizeof(struct kray_frame_hdr),
			  (uint32_t)(tmp.len - sizeof(struct kray_frame_hdr)), true);
		kbuf_free(&tmp);
		return;
	}
	/* Without a link to the head now, it learns at the next join (gcs_reregister). */
	if (head && head->up) {
		put_gcs_name(net_out(head), m, name, ns);
		net_flush(head);
	}
}

void gcs_actor_changed(struct krayd *d, struct actor *a, bool alive)
{
	struct kray_msg_gcs_actor m = actor_entry(d, a, alive);

	to_table(d, &m, a->name, a->ns);
}

void gcs_name_release(struct krayd *d, const struct kray_oid *id, const char *name, size_t len,
		      const char *ns, size_t ns_len)
{
	struct kray_msg_gcs_actor m = {
		.actor = *id, .host = d->node, .name_len = (uint8_t)len, .ns_len = (uint8_t)ns_len
	};
	char n[KRAY_NAME_MAX + 1], s[KRAY_NAME_MAX + 1];

	snprintf(n, sizeof(n), "%.*s", (int)len, name);
	snprintf(s, sizeof(s), "%.*s", (int)ns_len, ns);
	to_table(d, &m, n, s);
}

static void put_gcs_job(struct kbuf *b, struct conn *c, bool alive);

void gcs_reregister(struct krayd *d, struct link *head)
{
	for (struct actor *a = d->actors; a; a = a->next)
		if (a->name && a->state != A_DEAD)
			put_gcs_actor(net_out(head), d, a, true);
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->role == ROLE_DRIVER && !c->closed)
			put_gcs_job(net_out(head), c, true);
	net_flush(head);
}

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put_gcs_job(struct kbuf *b, struct conn *c, bool alive)
{
	const char *path = job_code_path(c->d, c->job);
	struct kray_msg_gcs_job m = { .node = c->d->node,
				      .job = c->job,
				      .pid = c->pid,
				      .start_ms = c->start_ms,
				      .end_ms = alive ? 0 : realtime_ms() };
	if (!path)
		path = "";
	m.path_len = (uint32_t)strlen(path);
	WIRE_FRAME(b, KRAY_MSG_GCS_JOB, 0, WIRE_FIXED(m), WIRE_PADDED(path, m.path_len));
}

void gcs_job_changed(struct conn *c, bool alive)
{
	struct krayd *d = c->d;
	struct link *head = d->cl->head_link;
	struct kbuf tmp = { 0 };

	if (alive)
		c->start_ms = realtime_ms();
	if (d->cfg.head) {
		put_gcs_job(&tmp, c, alive);
		gcs_apply(d, KRAY_MSG_GCS_JOB, tmp.data + sizeof(struct kray_frame_hdr),
			  (uint32_t)(tmp.len - sizeof(struct kray_frame_hdr)), true);
		kbuf_free(&tmp);
	} else if (head && head->up) {
		put_gcs_job(net_out(head), c, alive);
		net_flush(head);
	}
}

void gcs_describe_jobs(struct krayd *d, struct kbuf *b)
{
	char line[KRAY_PATH_MAX + 160];
	bool first = true;

	if (d->cl->store->describe)
		d->cl->store->describe(d, b);

	for (struct gjob *j = d->cl->jobs_table; j; j = j->next) {
		struct node_entry *e = node_find(d, j->m.node);
		const char *state = j->m.end_ms	    ? "FINISHED" :
				    e && e->m.alive ? "RUNNING" :
						      "NODE GONE";
		int n;

		if (first)
			kbuf_put(b, "jobs:\n", 6);
		first = false;
		n = snprintf(line, sizeof(line),
			     "%08x/%u pid %u %s started %llu ms ago code '%s'\n", j->m.node,
			     j->m.job, j->m.pid, state,
			     (unsigned long long)(realtime_ms() - j->m.start_ms), j->path);
		kbuf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
}

void gcs_fini(struct krayd *d)
{
	while (d->cl->name_waits) {
		struct name_wait *w = d->cl->name_waits;

		d->cl->name_waits = w->next;
		free(w);
	}
	/* The store first: it may still write the tables (gcs_redis.c, at stop). */
	if (d->cl->store)
		d->cl->store->close(d);
	d->cl->store = NULL;
	while (d->cl->held) {
		struct gheld *h = d->cl->held;

		d->cl->held = h->next;
		kbuf_free(&h->frame);
		free(h);
	}
	while (d->cl->jobs_table) {
		struct gjob *j = d->cl->jobs_table;

		d->cl->jobs_table = j->next;
		free(j->path);
		free(j);
	}
	while (d->cl->names) {
		struct gname *g = d->cl->names;

		d->cl->names = g->next;
		free(g);
	}
	while (d->cl->kv) {
		struct gkv *e = d->cl->kv;

		d->cl->kv = e->next;
		free(e->val);
		free(e);
	}
}

/* The tables as the frames that would make them (GCS_ACTOR, KV puts, GCS_JOB), for the
 * log's compaction (gcs_log.c).  Returns how many. */
uint64_t gcs_snapshot(struct krayd *d, struct kbuf *b)
{
	uint64_t n = 0;

	for (struct gname *g = d->cl->names; g; g = g->next, n++) {
		struct kray_msg_gcs_actor m = { .actor = g->id,
						.host = g->host,
						.alive = 1,
						.detached = g->detached,
						.name_len = (uint8_t)strlen(g->name),
						.ns_len = (uint8_t)strlen(g->ns) };

		put_gcs_name(b, &m, g->name, g->ns);
	}
	for (struct gkv *e = d->cl->kv; e; e = e->next, n++) {
		struct kray_msg_kv m = { .op = KRAY_KV_PUT,
					 .key_len = (uint8_t)strlen(e->key),
					 .value_len = e->len };
		WIRE_FRAME(b, KRAY_MSG_KV, 0, WIRE_FIXED(m), WIRE_PADDED(e->key, m.key_len),
			   WIRE_PADDED(e->val, e->len));
	}
	for (struct gjob *j = d->cl->jobs_table; j; j = j->next, n++) {
		WIRE_FRAME(b, KRAY_MSG_GCS_JOB, 0, WIRE_FIXED(j->m),
			   WIRE_PADDED(j->path, j->m.path_len));
	}
	return n;
}
