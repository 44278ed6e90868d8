// SPDX-License-Identifier: Apache-2.0
/*
 * Placement groups across the cluster (docs/ARCHITECTURE.md, "Placement groups").  The
 * node whose client made a group is its home (core/pgroup.c keeps it there).  Each try
 * plans where the bundles go from the view (each node's CPU and custom resource totals,
 * the strategy), reserves this node's bundles at once and asks each other node for its
 * share (PG_RESERVE); a node reserves all it is asked for or nothing (a mirror of the
 * group: core/pgroup.c) and answers (PG_RESERVED).  When every node said yes the group is
 * created; when one said no, the others' shares are given back (PG_RELEASE) and the next
 * try, 100 ms later, starts its plan at the next node.  The home routes the group's tasks
 * and actors to the node of their bundle (pg_node_for(), remote.c, ractor.c).
 *
 * When a node dies, the home's groups with bundles there go back to pending and those
 * bundles are placed again (Ray's GCS reschedules them): the others stay where they are,
 * and each try plans and reserves the lost bundles only, around them (g->trying).  A node
 * that holds a bundle of the group already adds the new ones to its mirror; a try that
 * fails gives back only what it reserved (PG_RELEASE with the mask of those bundles).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/pgroup.h"

#define MAX_CAND 64

struct cand {
	const struct node_entry *e;
	uint64_t cpu; /* CPU thousandths taken by bundles planned here */
	uint64_t res[KRAY_RESOURCES_MAX]; /* the same for e->res[] */
	int nb; /* bundles planned here */
};

/* Whether bundle b fits on c's totals with what the plan put there already. */
static bool cand_fits(const struct cand *c, const struct pg_bundle *b)
{
	for (int j = 0; j < b->nres; j++) {
		const struct wire_resource *r = &b->res[j];
		int k;

		if (!strcmp(r->name, "CPU")) {
			if (c->cpu + r->milli > (uint64_t)c->e->m.num_cpus * 1000)
				return false;
			continue;
		}
		for (k = 0; k < c->e->nres; k++)
			if (!strcmp(c->e->res[k].name, r->name))
				break;
		if (k == c->e->nres || c->res[k] + r->milli > c->e->res[k].milli)
			return false;
	}
	return true;
}

static void cand_take(struct cand *c, const struct pg_bundle *b, bool give)
{
	for (int j = 0; j < b->nres; j++) {
		const struct wire_resource *r = &b->res[j];

		if (!strcmp(r->name, "CPU")) {
			c->cpu = give ? c->cpu - r->milli : c->cpu + r->milli;
			continue;
		}
		for (int k = 0; k < c->e->nres; k++)
			if (!strcmp(c->e->res[k].name, r->name))
				c->res[k] = give ? c->res[k] - r->milli : c->res[k] + r->milli;
	}
	c->nb += give ? -1 : 1;
}

/* Bundles onto candidates by strategy (where[i]: an index into cand).  NULL, or why the
 * group cannot be placed on these nodes as they are. */
static const char *plan(const struct pgroup *g, uint64_t todo, struct cand *cand, int n, int *where,
			char *why, size_t len)
{
	int s = g->strategy, placed = 0;

	/* The bundles placed already (not in todo) count where they are. */
	for (int i = 0; i < g->nb; i++) {
		where[i] = -1;
		for (int c = 0; c < n && !(todo >> i & 1); c++)
			if (cand[c].e->m.node == g->b[i].node) {
				cand_take(&cand[c], &g->b[i], false);
				where[i] = c;
				placed++;
				break;
			}
	}
	if (s == KRAY_PG_PACK || s == KRAY_PG_STRICT_PACK) {
		for (int c = 0; c < n; c++) {
			int i;

			if (s == KRAY_PG_STRICT_PACK && cand[c].nb != placed)
				continue; /* the placed bundles are elsewhere */
			for (i = 0; i < g->nb; i++) {
				if (!(todo >> i & 1))
					continue;
				if (!cand_fits(&cand[c], &g->b[i]))
					break;
				cand_take(&cand[c], &g->b[i], false);
				where[i] = c;
			}
			if (i == g->nb)
				return NULL;
			while (i-- > 0)
				if (todo >> i & 1)
					cand_take(&cand[c], &g->b[i], true);
		}
		if (s == KRAY_PG_STRICT_PACK) {
			snprintf(why, len,
				 "infeasible: STRICT_PACK needs every bundle on one node and none "
				 "of "
				 "the %d live nodes has that much",
				 n);
			return why;
		}
	}
	/* SPREAD and STRICT_SPREAD: each bundle to the node with the fewest bundles of the
	 * group that fits it (STRICT_SPREAD: none yet).  PACK when no node holds it all: to
	 * the first node that fits it (the nodes fill up in order). */
	for (int i = 0; i < g->nb; i++) {
		int best = -1;

		if (!(todo >> i & 1))
			continue;
		for (int c = 0; c < n; c++)
			if (cand_fits(&cand[c], &g->b[i]) &&
			    (s != KRAY_PG_STRICT_SPREAD || !cand[c].nb) &&
			    (best < 0 || (s != KRAY_PG_PACK && cand[c].nb < cand[best].nb)))
				best = c;
		if (best < 0) {
			if (s == KRAY_PG_STRICT_SPREAD)
				snprintf(
					why, len,
					"infeasible: STRICT_SPREAD needs %d nodes (one per bundle) "
					"that fit its bundles and the cluster has %d live nodes",
					g->nb, n);
			else
				snprintf(why, len,
					 "infeasible: bundle %d fits on none of the %d live nodes",
					 i, n);
			return why;
		}
		cand_take(&cand[best], &g->b[i], false);
		where[i] = best;
	}
	return NULL;
}

/* "CPU:1,GPU:1;CPU:2": every bundle of g, as PG frames carry them. */
static void bundles_text(const struct pgroup *g, struct kbuf *b)
{
	for (int i = 0; i < g->nb; i++)
		for (int j = 0; j < g->b[i].nres; j++)
			kbuf_printf(b, "%s%s:%llu.%03llu",
				    j ? "," :
				    i ? ";" :
					"",
				    g->b[i].res[j].name,
				    (unsigned long long)(g->b[i].res[j].milli / 1000),
				    (unsigned long long)(g->b[i].res[j].milli % 1000));
}

static void send_pg(struct krayd *d, uint32_t node, uint16_t type, const struct pgroup *g,
		    uint64_t mask, int status, const char *text, size_t len)
{
	struct link *l = net_link_to(d, node);
	struct kray_msg_pg_node m = { .mask = mask, .status = status, .len = (uint32_t)len };

	if (!l)
		return;
	memcpy(m.id, g->id, KRAY_PG_ID_LEN);
	WIRE_FRAME(net_out(l), type, 0, WIRE_FIXED(m), WIRE_PADDED(text, len));
	net_flush(l);
}

/* Gives back the bundles of g in mask reserved on other nodes (or asked for there). */
static void release_remote(struct krayd *d, struct pgroup *g, uint64_t mask)
{
	for (int i = 0; i < g->nb; i++) {
		uint32_t node = g->b[i].node;
		uint64_t there = 0;

		if (!node || node == d->node || !(mask >> i & 1))
			continue;
		for (int j = i; j < g->nb; j++)
			if (g->b[j].node == node && (mask >> j & 1)) {
				there |= 1ULL << j;
				g->b[j].node = 0;
			}
		send_pg(d, node, KRAY_MSG_PG_RELEASE, g, there, 0, NULL, 0);
	}
}

/* A try failed: what it reserved goes back, and the next one starts elsewhere. */
static void try_failed(struct krayd *d, struct pgroup *g)
{
	pg_unreserve_here(d, g, g->trying);
	release_remote(d, g, g->trying);
	g->placing = 0;
	g->trying = 0;
	g->place_failed = false;
	g->attempt++;
}

bool pgplace_place(struct krayd *d, struct pgroup *g)
{
	struct cluster *cl = d->cl;
	struct node_entry self;
	struct cand cand[MAX_CAND];
	int where[KRAY_PG_BUNDLES_MAX], n = 0;
	uint64_t here = 0, todo = 0;
	char why[160];
	struct kbuf text = { 0 };

	if (!cl)
		return false;
	if (g->placing) {
		if (now_ns() - g->placing_since > (int64_t)d->cfg.node_timeout_ms * 1000000) {
			snprintf(g->why, sizeof(g->why), "waiting: a node did not answer");
			try_failed(d, g);
		}
		return true;
	}
	node_self(d, &self);
	memset(cand, 0, sizeof(cand));
	cand[n++].e = &self;
	for (unsigned i = 0; i < cl->nnodes && n < MAX_CAND; i++)
		if (cl->nodes[i].m.alive && cl->nodes[i].m.node != d->node)
			cand[n++].e = &cl->nodes[i];
	/* Each try starts at another node, so that one whose resources are busy now does
	 * not hold the group back when another has them free. */
	for (unsigned r = g->attempt % (unsigned)n; r > 0; r--) {
		struct cand first = cand[0];

		memmove(cand, cand + 1, (size_t)(n - 1) * sizeof(*cand));
		cand[n - 1] = first;
	}
	for (int i = 0; i < g->nb; i++)
		if (!g->b[i].node)
			todo |= 1ULL << i; /* all of them, but after a node died */
	if (plan(g, todo, cand, n, where, why, sizeof(why))) {
		snprintf(g->why, sizeof(g->why), "%s", why);
		return true;
	}
	for (int i = 0; i < g->nb; i++)
		if ((todo >> i & 1) && cand[where[i]].e->m.node == d->node)
			here |= 1ULL << i;
	if (here && pg_fits_here(d, g, here, why, sizeof(why))) {
		snprintf(g->why, sizeof(g->why), "%s", why);
		g->attempt++;
		return true;
	}
	for (int i = 0; i < g->nb; i++) {
		uint32_t node = (todo >> i & 1) ? cand[where[i]].e->m.node : d->node;

		if (node != d->node && !net_link_to(d, node)) {
			snprintf(g->why, sizeof(g->why), "waiting: no link to node %08x", node);
			g->attempt++;
			return true;
		}
	}
	g->trying = todo;
	if (here)
		pg_reserve_here(d, g, here);
	bundles_text(g, &text);
	for (int i = 0; i < g->nb; i++) {
		uint32_t node = (todo >> i & 1) ? cand[where[i]].e->m.node : d->node;
		uint64_t mask = 0;

		if (node == d->node || g->b[i].node)
			continue;
		for (int j = i; j < g->nb; j++)
			if ((todo >> j & 1) && !g->b[j].node && cand[where[j]].e->m.node == node) {
				mask |= 1ULL << j;
				g->b[j].node = node; /* asked; cleared if it refuses */
			}
		send_pg(d, node, KRAY_MSG_PG_RESERVE, g, mask, 0, (const char *)text.data,
			text.len);
		g->placing++;
	}
	kbuf_free(&text);
	if (!g->placing) {
		g->trying = 0;
		pg_placed(d, g);
		return true;
	}
	g->placing_since = now_ns();
	snprintf(g->why, sizeof(g->why), "waiting for %u nodes to reserve their bundles",
		 g->placing);
	return true;
}

void pgplace_removed(struct krayd *d, struct pgroup *g)
{
	if (d->cl && !g->mirror)
		release_remote(d, g, ~0ULL);
}

void pgplace_node_dead(struct krayd *d, uint32_t node)
{
	for (struct pgroup *g = d->pgs; g; g = g->next) {
		int lost = 0;

		if (g->mirror || g->state == PG_REMOVED || node == d->node)
			continue;
		for (int i = 0; i < g->nb; i++)
			if (g->b[i].node == node) {
				g->b[i].node = 0;
				lost++;
			}
		if (!lost)
			continue;
		if (g->placing) {
			/* A try asked it (its answer will not come): that try is given up. */
			try_failed(d, g);
		} else if (g->state == PG_CREATED) {
			g->state = PG_PENDING;
			log_warn("placement group %s: %d bundles lost with node %08x, placing them "
				 "again",
				 g->id, lost, node);
		}
		snprintf(g->why, sizeof(g->why), "placing again %d bundles lost with node %08x",
			 lost, node);
	}
}

static int reply(struct link *l, const struct kray_msg_pg_node *m, int status, const char *why)
{
	struct kray_msg_pg_node r = *m;

	r.status = status;
	r.len = why ? (uint32_t)strlen(why) : 0;
	WIRE_FRAME(net_out(l), KRAY_MSG_PG_RESERVED, 0, WIRE_FIXED(r), WIRE_PADDED(why, r.len));
	net_flush(l);
	return 0;
}

static int decode(struct link *l, const uint8_t *body, uint32_t len, struct kray_msg_pg_node *m,
		  const void **text)
{
	struct wire_rd r;

	*text = NULL;
	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, m, sizeof(*m)) || (m->len && wire_rd_bytes(&r, m->len, text)) ||
	    wire_rd_end(&r) || strnlen(m->id, sizeof(m->id)) != KRAY_PG_ID_LEN)
		return conn_fail(l->c, "malformed placement group frame", -EBADMSG);
	return 0;
}

/* Another node, the group's home, asks this one to reserve bundles of it. */
int pgplace_on_reserve(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_pg_node m;
	const void *text;
	const char *why = NULL;
	char buf[160];
	struct pgroup *g;

	if (decode(l, body, len, &m, &text))
		return -EBADMSG;
	g = pg_find(d, m.id, KRAY_PG_ID_LEN);
	if (g && g->mirror && g->link == l->id) {
		/* More bundles of a group this node holds some of (placed again after a
		 * node died): added to its mirror, which stays as it is if they do not fit. */
		for (int i = 0; i < g->nb && i < 64; i++)
			if ((m.mask >> i & 1) && g->b[i].node)
				return reply(l, &m, -EINVAL, "bundles reserved here already");
		if (!m.mask || (g->nb < 64 && m.mask >> g->nb))
			return reply(l, &m, -EINVAL, "bundles out of range");
		if ((why = pg_fits_here(d, g, m.mask, buf, sizeof(buf))))
			return reply(l, &m, -EAGAIN, why);
		pg_reserve_here(d, g, m.mask);
		return reply(l, &m, 0, NULL);
	}
	g = pg_mirror(d, m.id, text, m.len, l->id, &why);
	if (!g)
		return reply(l, &m, -EINVAL, why);
	if (!m.mask || (g->nb < 64 && m.mask >> g->nb)) {
		pg_drop(d, g);
		return reply(l, &m, -EINVAL, "bundles out of range");
	}
	if ((why = pg_fits_here(d, g, m.mask, buf, sizeof(buf)))) {
		pg_drop(d, g);
		return reply(l, &m, -EAGAIN, why);
	}
	pg_reserve_here(d, g, m.mask);
	g->state = PG_CREATED;
	return reply(l, &m, 0, NULL);
}

/* A node's answer to this node's PG_RESERVE. */
int pgplace_on_reserved(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_pg_node m;
	const void *text;
	struct pgroup *g;

	if (decode(l, body, len, &m, &text))
		return -EBADMSG;
	g = pg_find(d, m.id, KRAY_PG_ID_LEN);
	if (!g || g->mirror || g->state != PG_PENDING || !g->placing) {
		/* A try given up (or a group removed) meanwhile: give that share back. */
		if (!m.status) {
			struct kray_msg_pg_node r = { .mask = 0 };

			memcpy(r.id, m.id, sizeof(r.id));
			WIRE_FRAME(net_out(l), KRAY_MSG_PG_RELEASE, 0, WIRE_FIXED(r));
			net_flush(l);
		}
		return 0;
	}
	g->placing--;
	if (m.status) {
		g->place_failed = true;
		snprintf(g->why, sizeof(g->why), "node %08x: %.*s", l->node, (int)m.len,
			 (const char *)text);
		for (int i = 0; i < g->nb; i++)
			if (m.mask >> i & 1)
				g->b[i].node = 0; /* nothing reserved there */
	}
	if (g->placing)
		return 0;
	if (g->place_failed) {
		try_failed(d, g);
	} else {
		g->trying = 0;
		pg_placed(d, g);
	}
	return 0;
}

int pgplace_on_release(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_pg_node m;
	const void *text;
	struct pgroup *g;

	if (decode(l, body, len, &m, &text))
		return -EBADMSG;
	g = pg_find(l->d, m.id, KRAY_PG_ID_LEN);
	if (!g || !g->mirror || g->link != l->id)
		return 0;
	/* mask 0 (or every bundle held here): the whole mirror goes. */
	if (m.mask)
		pg_unreserve_here(l->d, g, m.mask);
	for (int i = 0; m.mask && i < g->nb; i++)
		if (g->b[i].node)
			return 0; /* bundles of it still held here */
	pg_drop(l->d, g);
	return 0;
}

/* The link to a group's home went: what it reserved here goes back. */
void pgplace_link_gone(struct link *l)
{
	struct krayd *d = l->d;

	for (struct pgroup *g = d->pgs, *next; g; g = next) {
		next = g->next;
		if (g->mirror && g->link == l->id)
			pg_drop(d, g);
	}
}
