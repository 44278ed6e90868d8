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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cluster.h"
#include "log.h"

static void view_frame(struct krayd *d, struct kbuf *b)
{
	struct kray_msg_refs n = { .n = d->cl->nnodes };
	size_t off = wire_begin(b, KRAY_MSG_NODE_VIEW, 0);

	kbuf_put(b, &n, sizeof(n));
	for (unsigned i = 0; i < d->cl->nnodes; i++)
		node_put_entry(b, &d->cl->nodes[i]);
	wire_end(b, off);
}

static struct node_entry *add_entry(struct cluster *cl, uint32_t node)
{
	if (cl->nnodes == cl->cap) {
		unsigned cap = cl->cap ? cl->cap * 2 : 8;
		struct node_entry *n = realloc(cl->nodes, cap * sizeof(*n));

		if (!n)
			abort();
		cl->nodes = n;
		cl->cap = cap;
	}
	memset(&cl->nodes[cl->nnodes], 0, sizeof(cl->nodes[0]));
	cl->nodes[cl->nnodes].m.node = node;
	return &cl->nodes[cl->nnodes++];
}

void gcs_on_report(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct krayd *d = l->d;
	struct kray_msg_node m;
	struct wire_rd r;
	const void *res = NULL;
	struct node_entry *e;
	struct wire_resource parsed[KRAY_RESOURCES_MAX];
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
		e = add_entry(d->cl, m.node);
	was_alive = e->m.alive;
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
	memcpy(e->res_text, res, m.res_len);
	e->res_text[m.res_len] = 0;
	e->last_seen = now_ns();
	e->link = l;
	if (!was_alive) {
		char addr[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &m.addr, addr, sizeof(addr));
		log_info("node %08x joined from %s:%u (%u CPUs, resources '%s')", m.node, addr,
			 m.port, m.num_cpus, e->res_text);
	}
	view_frame(d, net_out(l));
	net_flush(l);
}

static void declare_dead(struct krayd *d, struct node_entry *e, const char *why)
{
	if (!e->m.alive)
		return;
	e->m.alive = 0;
	e->link = NULL;
	log_warn("node %08x is dead: %s", e->m.node, why);
	net_drop_node(d, e->m.node);
}

void gcs_tick(struct krayd *d, int64_t now)
{
	struct cluster *cl = d->cl;
	int64_t timeout = (int64_t)d->cfg.node_timeout_ms * 1000000;

	for (unsigned i = 0; i < cl->nnodes; i++) {
		struct node_entry *e = &cl->nodes[i];

		if (e->m.node == d->node)
			node_self(d, e); /* the head's own entry is always current */
		else if (e->m.alive && now - e->last_seen > timeout)
			declare_dead(d, e, "no heartbeat within node-timeout-ms");
	}
}

void gcs_link_gone(struct link *l)
{
	struct node_entry *e = l->node ? node_find(l->d, l->node) : NULL;

	/* Only the link it reports over says it is gone: links to it for work may close
	 * for other reasons.  A head that stops closes them all itself. */
	if (e && e->link == l && !l->d->stopping)
		declare_dead(l->d, e, "its link to the head closed");
}
