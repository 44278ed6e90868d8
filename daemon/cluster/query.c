// SPDX-License-Identifier: Apache-2.0
/*
 * A node's view for another node's dashboard (docs/dashboard.md, "In a cluster"): the
 * head (or any node) asks every other live node, over the node links, for its summary
 * (workers, tasks, actors: the dashboard's JSON, ext_node_summary()) or its timeline
 * (core/timeline.c), and hands the answers to the asker once all came or node-timeout-ms
 * passed.  A member answers NODE_QUERY whether or not it serves a dashboard itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/timeline.h"

/* A gather in progress: one part per node asked. */
struct gather {
	uint64_t token;
	uint32_t conn; /* the asker's connection id (it may close meanwhile) */
	uint32_t what;
	ext_gather_fn done;
	int64_t deadline;
	unsigned n, answered;
	struct ext_part *parts;
	struct kbuf *texts;
	struct gather *next;
};

static void gather_free(struct gather *g)
{
	for (unsigned i = 0; i < g->n; i++)
		kbuf_free(&g->texts[i]);
	free(g->texts);
	free(g->parts);
	free(g);
}

static struct conn *conn_of(struct krayd *d, uint32_t id)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->id == id)
			return c->closed ? NULL : c;
	return NULL;
}

/* Unlinks g, calls its done and frees it. */
static void finish(struct krayd *d, struct gather *g)
{
	struct gather **pp = &d->cl->gathers;

	while (*pp && *pp != g)
		pp = &(*pp)->next;
	if (*pp)
		*pp = g->next;
	g->done(conn_of(d, g->conn), g->parts, g->n);
	gather_free(g);
}

int query_gather(struct conn *c, uint32_t what, ext_gather_fn done)
{
	struct krayd *d = c->d;
	struct cluster *cl = d->cl;
	struct gather *g;
	unsigned n = 0;

	if (!cl)
		return -ENOENT;
	for (unsigned i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i].m.alive && cl->nodes[i].m.node != d->node)
			n++;
	if (!n)
		return -ENOENT;
	g = calloc(1, sizeof(*g));
	if (!g || !(g->parts = calloc(n, sizeof(*g->parts))) ||
	    !(g->texts = calloc(n, sizeof(*g->texts)))) {
		if (g)
			free(g->parts);
		free(g);
		return -ENOMEM;
	}
	g->token = ++cl->next_token;
	g->conn = c->id;
	g->what = what;
	g->done = done;
	g->deadline = now_ns() + (int64_t)d->cfg.node_timeout_ms * 1000000;
	for (unsigned i = 0; i < cl->nnodes && g->n < n; i++) {
		const struct node_entry *e = &cl->nodes[i];
		struct kray_msg_node_query m = { .token = g->token, .what = what };
		struct link *l;

		if (!e->m.alive || e->m.node == d->node)
			continue;
		g->parts[g->n].node = e->m.node;
		g->parts[g->n].text = &g->texts[g->n];
		g->n++;
		l = net_link_to(d, e->m.node);
		if (!l) {
			g->answered++; /* no way to it: it shows as not answering */
			continue;
		}
		net_send_fixed(l, KRAY_MSG_NODE_QUERY, &m, sizeof(m));
	}
	g->next = cl->gathers;
	cl->gathers = g;
	if (g->answered == g->n)
		finish(d, g);
	return 0;
}

static void reply(struct link *l, uint64_t token, uint32_t what, int status, const void *text,
		  size_t len)
{
	struct kray_msg_node_query m = {
		.token = token, .what = what, .status = status, .len = (uint32_t)len
	};

	WIRE_FRAME(net_out(l), KRAY_MSG_NODE_QUERY_REPLY, 0, WIRE_FIXED(m), WIRE_PADDED(text, len));
	net_flush(l);
}

static void timeline_rendered(struct conn *c, uint64_t token, struct kbuf *b)
{
	if (c && c->link)
		reply(c->link, token, KRAY_QUERY_TIMELINE, 0, b->data + b->off, kbuf_pending(b));
}

int query_on_request(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_node_query m;
	struct kbuf b = { 0 };

	if (len != sizeof(m))
		return conn_fail(l->c, "malformed node query", -EBADMSG);
	memcpy(&m, body, sizeof(m));
	if (m.what == KRAY_QUERY_TIMELINE) {
		if (timeline_render_async(l->d, l->c, m.token, timeline_rendered))
			reply(l, m.token, m.what, -ENOMEM, NULL, 0);
		return 0;
	}
	if (m.what != KRAY_QUERY_SUMMARY) {
		reply(l, m.token, m.what, -EINVAL, NULL, 0);
		return 0;
	}
	ext_node_summary(l->d, &b);
	reply(l, m.token, m.what, 0, b.data, b.len);
	kbuf_free(&b);
	return 0;
}

int query_on_reply(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_node_query m;
	struct gather *g;

	if (len < sizeof(m))
		return conn_fail(l->c, "malformed node query reply", -EBADMSG);
	memcpy(&m, body, sizeof(m));
	if (m.len > len - sizeof(m))
		return conn_fail(l->c, "malformed node query reply", -EBADMSG);
	for (g = d->cl->gathers; g && g->token != m.token; g = g->next)
		;
	if (!g)
		return 0; /* too late: answered without it */
	for (unsigned i = 0; i < g->n; i++) {
		if (g->parts[i].node != l->node || g->parts[i].ok)
			continue;
		if (!m.status) {
			kbuf_put(g->parts[i].text, body + sizeof(m), m.len);
			g->parts[i].ok = true;
		}
		if (++g->answered == g->n)
			finish(d, g);
		break;
	}
	return 0;
}

void query_expire(struct krayd *d, int64_t now)
{
	struct gather *g = d->cl->gathers;

	while (g) {
		struct gather *next = g->next;

		if (now >= g->deadline) {
			log_warn_ratelimited("node query: %u of %u nodes did not answer in time",
					     g->n - g->answered, g->n);
			finish(d, g);
		}
		g = next;
	}
}

void query_fini(struct krayd *d)
{
	while (d->cl->gathers) {
		struct gather *g = d->cl->gathers;

		d->cl->gathers = g->next;
		gather_free(g);
	}
}
