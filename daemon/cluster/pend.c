// SPDX-License-Identifier: Apache-2.0
/*
 * The requests this node passed on for its clients (struct pending, cluster.h): made with
 * a token that travels instead of the client's request id, found again by that token when
 * the answer comes back.  lookup.c and gcs.c make them; lookup.c answers and expires them.
 */
#include <stdlib.h>

#include "cluster/cluster.h"
#include "core/conn.h"

struct pending *pend_new(struct krayd *d, enum pend_kind kind, struct conn *c, uint64_t req)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		abort();
	p->token = ++d->cl->next_token;
	p->kind = kind;
	p->conn_id = c->id;
	p->req = req;
	p->deadline = now_ns() + (int64_t)d->cfg.node_timeout_ms * 1000000;
	p->next = d->cl->pend;
	d->cl->pend = p;
	return p;
}

void pend_free(struct pending *p)
{
	kbuf_free(&p->create);
	free(p);
}

struct pending *pend_take(struct krayd *d, uint64_t token)
{
	for (struct pending **pp = &d->cl->pend; *pp; pp = &(*pp)->next)
		if ((*pp)->token == token) {
			struct pending *p = *pp;

			*pp = p->next;
			return p;
		}
	return NULL;
}

struct conn *pend_conn(struct krayd *d, const struct pending *p)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->id == p->conn_id && !c->closed)
			return c;
	return NULL;
}
