// SPDX-License-Identifier: Apache-2.0
/*
 * Placement groups (pgroup.h, docs/util.md, docs/ARCHITECTURE.md "Placement groups").
 *
 * A group is reserved all at once or not at all: on each retry (a timer every 10 ms while
 * some group is pending, in creation order) every bundle must fit in what is free now (CPU
 * slots neither running tasks nor actors nor other groups hold, custom resources nobody
 * holds); then the bundles' CPU joins actor_slots_milli, their custom resources are taken
 * as used, and the group's renamed resources are added to the node's table.  Removal gives
 * everything back, kills the group's actors and fails its queued tasks; a group resource
 * that running tasks still hold stays (with a total of 0) until they give it back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/actor.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/pgroup.h"
#include "core/proto.h"
#include "core/sched.h"
#include "core/task.h"
#include "core/worker.h"

#define PG_RETRY_NS (10 * 1000000LL)
#define PG_REMOVED_KEPT 100 /* removed groups still listed (Ray's table shows them) */

static const char *const strategy_name[] = { "PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD" };
static const char *const state_name[] = { "PENDING", "CREATED", "REMOVED" };

struct pgroup *pg_find(struct krayd *d, const char *id, size_t len)
{
	for (struct pgroup *g = d->pgs; g; g = g->next)
		if (len == KRAY_PG_ID_LEN && !memcmp(g->id, id, len))
			return g;
	return NULL;
}

/* The group id a resource name names ("..._group_[I_]ID"), or NULL. */
static const char *res_group_id(const char *name)
{
	const char *s = strstr(name, "_group_");
	size_t n = strlen(name);

	if (!s || n < KRAY_PG_ID_LEN + 8)
		return NULL;
	return name + n - KRAY_PG_ID_LEN;
}

static bool is_cpu(const struct wire_resource *r)
{
	return !strcmp(r->name, "CPU");
}

/* CPU slots free now: neither running pool tasks nor actors nor groups hold them. */
static uint64_t cpu_free(struct krayd *d)
{
	uint64_t cap = (uint64_t)d->cfg.num_cpus * 1000, used = d->actor_slots_milli;

	for (struct worker *w = d->workers; w; w = w->next)
		if (w->inflight && !w->blocked && !w->actor)
			used += w->cpu_milli;
	return used < cap ? cap - used : 0;
}

/* Adds milli to the node resource name (made if new).  -ENOSPC: the table is full. */
static int res_add(struct krayd *d, const char *name, uint64_t milli)
{
	struct node_resource *n = node_res(d, name);

	if (!n) {
		if (d->nres >= KRAYD_NODE_RES_MAX)
			return -ENOSPC;
		n = &d->res[d->nres++];
		memset(n, 0, sizeof(*n));
		snprintf(n->r.name, sizeof(n->r.name), "%s", name);
	}
	n->r.milli += milli;
	return 0;
}

/* Drops the group resources nobody holds any more (their total went to 0). */
static void res_sweep(struct krayd *d)
{
	for (int i = d->nres_own; i < d->nres; i++)
		if (!d->res[i].r.milli && !d->res[i].used_milli) {
			d->res[i--] = d->res[--d->nres];
		}
}

/* The names of bundle i's resource r: NAME_group_I_ID and NAME_group_ID. */
static void group_names(const struct pgroup *g, int i, const char *name, char one[32], char any[32])
{
	snprintf(one, 32, "%s_group_%d_%s", name, i, g->id);
	snprintf(any, 32, "%s_group_%s", name, g->id);
}

/* What keeps g from being placed on this node ever, or NULL. */
static const char *infeasible(struct krayd *d, const struct pgroup *g, char *buf, size_t len)
{
	uint64_t cpu = 0;

	if (g->strategy == KRAY_PG_STRICT_SPREAD && g->nb > 1) {
		snprintf(buf, len,
			 "infeasible: STRICT_SPREAD needs %d nodes (one per bundle) and the "
			 "cluster has 1",
			 g->nb);
		return buf;
	}
	for (int i = 0; i < g->nb; i++)
		for (int j = 0; j < g->b[i].nres; j++)
			if (is_cpu(&g->b[i].res[j]))
				cpu += g->b[i].res[j].milli;
	if (cpu > (uint64_t)d->cfg.num_cpus * 1000) {
		snprintf(buf, len, "infeasible: the bundles need %.3g CPUs and the node has %d",
			 cpu / 1000.0, d->cfg.num_cpus);
		return buf;
	}
	for (int i = 0; i < g->nb; i++)
		for (int j = 0; j < g->b[i].nres; j++) {
			const struct wire_resource *r = &g->b[i].res[j];
			struct node_resource *n = is_cpu(r) ? NULL : node_res(d, r->name);
			uint64_t sum = 0;

			if (is_cpu(r))
				continue;
			for (int k = 0; k < g->nb; k++)
				for (int l = 0; l < g->b[k].nres; l++)
					if (!strcmp(g->b[k].res[l].name, r->name))
						sum += g->b[k].res[l].milli;
			if (!n || n - d->res >= d->nres_own || n->r.milli < sum) {
				snprintf(buf, len,
					 "infeasible: the bundles need %.3g %s and the node has "
					 "%.3g",
					 sum / 1000.0, r->name, n ? n->r.milli / 1000.0 : 0.0);
				return buf;
			}
		}
	return NULL;
}

static uint64_t sum_of(const struct pgroup *g, uint64_t mask, const char *name)
{
	uint64_t sum = 0;

	for (int k = 0; k < g->nb; k++)
		for (int l = 0; (mask >> k & 1) && l < g->b[k].nres; l++)
			if (!strcmp(g->b[k].res[l].name, name))
				sum += g->b[k].res[l].milli;
	return sum;
}

const char *pg_fits_here(struct krayd *d, const struct pgroup *g, uint64_t mask, char *why,
			 size_t len)
{
	uint64_t cpu = sum_of(g, mask, "CPU"), free_cpu = cpu_free(d);
	int names = 0;

	for (int i = 0; i < g->nb; i++) {
		if (!(mask >> i & 1))
			continue;
		names += 1 + g->b[i].nres;
		for (int j = 0; j < g->b[i].nres; j++) {
			const struct wire_resource *r = &g->b[i].res[j];
			struct node_resource *n = is_cpu(r) ? NULL : node_res(d, r->name);
			uint64_t sum = sum_of(g, mask, r->name);

			if (is_cpu(r))
				continue;
			if (!n || n - d->res >= d->nres_own) {
				snprintf(why, len, "this node has no %s", r->name);
				return why;
			}
			if (n->used_milli + sum > n->r.milli) {
				snprintf(why, len, "waiting for %.3g %s (%.3g free)", sum / 1000.0,
					 r->name, (n->r.milli - n->used_milli) / 1000.0);
				return why;
			}
		}
	}
	if (cpu > free_cpu) {
		snprintf(why, len, "waiting for %.3g CPUs (%.3g free)", cpu / 1000.0,
			 free_cpu / 1000.0);
		return why;
	}
	if (d->nres + 2 * names > KRAYD_NODE_RES_MAX) {
		snprintf(why, len, "waiting: the node's resource table is full");
		return why;
	}
	return NULL;
}

void pg_reserve_here(struct krayd *d, struct pgroup *g, uint64_t mask)
{
	char one[32], any[32];

	for (int i = 0; i < g->nb; i++) {
		if (!(mask >> i & 1))
			continue;
		for (int j = 0; j < g->b[i].nres; j++) {
			const struct wire_resource *r = &g->b[i].res[j];

			if (is_cpu(r))
				d->actor_slots_milli += (uint32_t)r->milli;
			else
				node_res(d, r->name)->used_milli += r->milli;
			group_names(g, i, r->name, one, any);
			res_add(d, one, r->milli);
			res_add(d, any, r->milli);
		}
		group_names(g, i, "bundle", one, any);
		res_add(d, one, 1000);
		res_add(d, any, 1000);
		g->b[i].node = d->node;
	}
}

static void res_zero(struct krayd *d, const char *name)
{
	struct node_resource *n = node_res(d, name);

	if (n)
		n->r.milli = 0;
}

void pg_unreserve_here(struct krayd *d, struct pgroup *g, uint64_t mask)
{
	char one[32], any[32];

	for (int i = 0; i < g->nb; i++) {
		if (g->b[i].node != d->node || !(mask >> i & 1))
			continue;
		for (int j = 0; j < g->b[i].nres; j++) {
			const struct wire_resource *r = &g->b[i].res[j];
			struct node_resource *n;

			if (is_cpu(r))
				d->actor_slots_milli -= (uint32_t)r->milli;
			else if ((n = node_res(d, r->name)))
				n->used_milli -= r->milli;
			group_names(g, i, r->name, one, any);
			res_zero(d, one);
			res_zero(d, any);
		}
		group_names(g, i, "bundle", one, any);
		res_zero(d, one);
		res_zero(d, any);
		g->b[i].node = 0;
	}
	res_sweep(d);
}

/* Whether t asks for a resource of g. */
static bool task_in(const struct task *t, const struct pgroup *g)
{
	for (unsigned i = 0; i < t->nres; i++) {
		const char *id = res_group_id(t->res[i].name);

		if (id && !memcmp(id, g->id, KRAY_PG_ID_LEN))
			return true;
	}
	return false;
}

static bool actor_in(const struct actor *a, const struct pgroup *g)
{
	for (int i = 0; i < a->nres; i++) {
		const char *id = res_group_id(a->res[i].name);

		if (id && !memcmp(id, g->id, KRAY_PG_ID_LEN))
			return true;
	}
	return false;
}

static void release_held(struct krayd *d, struct pgroup *g)
{
	struct task *t = g->held, *rev = NULL;

	g->held = NULL;
	while (t) { /* held newest first: back to submission order */
		struct task *next = t->next;

		t->next = rev;
		rev = t;
		t = next;
	}
	while (rev) {
		t = rev;
		rev = t->next;
		t->next = NULL;
		if (g->state == PG_CREATED)
			sched_enqueue(d, t, false);
		else
			task_fail(d, t, KRAY_WE_CANCELLED, "placement group %s was removed", g->id);
	}
}

void pg_remove(struct krayd *d, struct pgroup *g)
{
	struct task *prev = NULL;

	if (g->state == PG_REMOVED)
		return;
	pg_unreserve_here(d, g, ~0ULL);
	ext_pg_removed(d, g); /* the bundles on other nodes */
	for (int i = 0; i < g->nb; i++)
		g->b[i].node = 0;
	g->state = PG_REMOVED;
	g->why[0] = 0;
	release_held(d, g);
	/* Its queued tasks fail; its actors are killed (their workers give the resources
	 * back when reaped); its running tasks run to their end. */
	for (struct task **pp = &d->qhead; *pp;) {
		struct task *t = *pp;

		if (!task_in(t, g)) {
			prev = t;
			pp = &t->next;
			continue;
		}
		sched_unqueue(d, pp, prev);
		task_fail(d, t, KRAY_WE_CANCELLED, "placement group %s was removed", g->id);
	}
	for (struct actor *a = d->actors; a; a = a->next)
		if (a->state != A_DEAD && actor_in(a, g))
			actor_kill(d, a, true);
	log_debug("placement group %s removed", g->id);
}

void pg_free(struct pgroup *g)
{
	free(g->name);
	free(g->b);
	free(g);
}

void pg_placed(struct krayd *d, struct pgroup *g)
{
	g->state = PG_CREATED;
	g->why[0] = 0;
	log_debug("placement group %s placed (%d bundles)", g->id, g->nb);
	release_held(d, g);
}

/* Places what fits, in creation order; drops removed groups past PG_REMOVED_KEPT. */
static void place_pending(struct krayd *d)
{
	unsigned removed = 0;
	char buf[160];

	for (struct pgroup **pp = &d->pgs; *pp;) {
		struct pgroup *g = *pp;

		if (g->state == PG_PENDING && !g->mirror && !ext_pg_place(d, g)) {
			/* One node: the group is placed here or waits. */
			const char *why = infeasible(d, g, buf, sizeof(buf));
			uint64_t all = g->nb < 64 ? (1ULL << g->nb) - 1 : ~0ULL;

			if (!why)
				why = pg_fits_here(d, g, all, buf, sizeof(buf));
			if (why) {
				snprintf(g->why, sizeof(g->why), "%s", why);
			} else {
				pg_reserve_here(d, g, all);
				pg_placed(d, g);
			}
		} else if (g->state == PG_REMOVED && ++removed > PG_REMOVED_KEPT) {
			*pp = g->next;
			pg_free(g);
			continue;
		}
		pp = &g->next;
	}
	res_sweep(d);
}

/* Bundles "CPU:1,GPU:1;CPU:2" into g.  Returns 0 or -EINVAL with *why. */
int pg_parse_bundles(struct pgroup *g, const char *s, size_t len, const char **why)
{
	int nb = 1;

	for (size_t i = 0; i < len; i++)
		nb += s[i] == ';';
	if (!len || nb > KRAY_PG_BUNDLES_MAX) {
		*why = "a placement group needs 1 to 64 bundles";
		return -EINVAL;
	}
	g->b = calloc((size_t)nb, sizeof(*g->b));
	if (!g->b)
		abort();
	g->nb = nb;
	for (int i = 0; i < nb; i++) {
		const char *end = memchr(s, ';', len);
		size_t n = end ? (size_t)(end - s) : len;
		struct pg_bundle *b = &g->b[i];
		char one[32];

		b->nres = wire_parse_resources(s, n, b->res);
		if (b->nres <= 0) {
			*why = "a bundle is NAME:QTY,... with at least one resource (at most 16, 3 "
			       "decimals)";
			return -EINVAL;
		}
		for (int j = 0; j < b->nres; j++) {
			if (!b->res[j].milli) {
				*why = "a bundle's resources must be more than 0";
				return -EINVAL;
			}
			if (strstr(b->res[j].name, "_group_") ||
			    (size_t)snprintf(one, sizeof(one), "%s_group_%d_%s", b->res[j].name, i,
					     g->id) >= sizeof(one)) {
				*why = "a bundle's resource name is too long (or names a group)";
				return -EINVAL;
			}
			for (int k = 0; k < j; k++)
				if (!strcmp(b->res[k].name, b->res[j].name)) {
					*why = "a bundle names a resource twice";
					return -EINVAL;
				}
		}
		s += n + (end ? 1 : 0);
		len -= n + (end ? 1 : 0);
	}
	return 0;
}

static int create(struct conn *c, const struct kray_msg_pg *m, const char *name,
		  const char *bundles, struct kbuf *out)
{
	struct krayd *d = c->d;
	struct pgroup *g, **pp;
	const char *why = NULL;

	if (m->strategy > KRAY_PG_STRICT_SPREAD) {
		kbuf_printf(out, "unknown strategy %u", m->strategy);
		return -EINVAL;
	}
	if (m->name_len) {
		for (g = d->pgs; g; g = g->next)
			if (g->state != PG_REMOVED && g->name && strlen(g->name) == m->name_len &&
			    !memcmp(g->name, name, m->name_len)) {
				kbuf_printf(out, "a placement group named '%.*s' exists",
					    (int)m->name_len, name);
				return -EEXIST;
			}
	}
	g = calloc(1, sizeof(*g));
	if (!g || (m->name_len && !(g->name = strndup(name, m->name_len))))
		abort();
	snprintf(g->id, sizeof(g->id), "%06x%06x", d->node & 0xffffff, ++d->next_pg & 0xffffff);
	g->strategy = m->strategy;
	g->detached = m->detached;
	g->job = c->job;
	if (pg_parse_bundles(g, bundles, m->bundles_len, &why)) {
		kbuf_printf(out, "%s", why);
		pg_free(g);
		return -EINVAL;
	}
	for (pp = &d->pgs; *pp; pp = &(*pp)->next)
		;
	*pp = g; /* placed in creation order */
	snprintf(g->why, sizeof(g->why), "waiting to be placed");
	place_pending(d);
	kbuf_printf(out, "%s", g->id);
	return 0;
}

static void json_str(struct kbuf *b, const char *s)
{
	kbuf_put(b, "\"", 1);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			kbuf_printf(b, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			kbuf_printf(b, "\\u%04x", *s);
		else
			kbuf_put(b, s, 1);
	}
	kbuf_put(b, "\"", 1);
}

static void table(struct krayd *d, struct kbuf *b)
{
	bool first = true;

	kbuf_put(b, "[", 1);
	for (struct pgroup *g = d->pgs; g; g = g->next) {
		if (g->mirror)
			continue; /* its home lists it */
		kbuf_printf(b, "%s{\"placement_group_id\":\"%s\",\"name\":", first ? "" : ",",
			    g->id);
		json_str(b, g->name ? g->name : "");
		kbuf_printf(b,
			    ",\"strategy\":\"%s\",\"state\":\"%s\",\"detached\":%s,"
			    "\"creator_job_id\":\"%08x\",\"why\":",
			    strategy_name[g->strategy], state_name[g->state],
			    g->detached ? "true" : "false", g->job);
		json_str(b, g->why);
		kbuf_printf(b, ",\"bundles\":[");
		for (int i = 0; i < g->nb; i++) {
			kbuf_printf(b, "%s{", i ? "," : "");
			for (int j = 0; j < g->b[i].nres; j++)
				kbuf_printf(b, "%s\"%s\":%.3f", j ? "," : "", g->b[i].res[j].name,
					    g->b[i].res[j].milli / 1000.0);
			kbuf_printf(b, "}");
		}
		kbuf_printf(b, "],\"bundles_to_node_id\":[");
		for (int i = 0; i < g->nb; i++)
			if (g->b[i].node)
				kbuf_printf(b, "%s\"%08x\"", i ? "," : "", g->b[i].node);
			else
				kbuf_printf(b, "%snull", i ? "," : "");
		kbuf_printf(b, "]}");
		first = false;
	}
	kbuf_put(b, "]", 1);
}

static int on_pg(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct kray_msg_pg m;
	struct kray_msg_error reply = { 0 };
	struct wire_rd r;
	const void *name = NULL, *bundles = NULL;
	struct kbuf out = { 0 };
	struct pgroup *g;

	wire_rd_init(&r, body, h->len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) ||
	    (m.name_len && wire_rd_bytes(&r, m.name_len, &name)) ||
	    (m.bundles_len && wire_rd_bytes(&r, m.bundles_len, &bundles)) || wire_rd_end(&r) ||
	    m.detached > 1)
		return conn_fail(c, "malformed placement group request", -EBADMSG);
	switch (m.op) {
	case KRAY_PG_CREATE:
		reply.code = create(c, &m, name, bundles, &out);
		break;
	case KRAY_PG_REMOVE:
		g = pg_find(c->d, m.id, strnlen(m.id, sizeof(m.id)));
		if (!g) {
			kbuf_printf(&out, "no placement group %.16s", m.id);
			reply.code = -ENOENT;
		} else {
			pg_remove(c->d, g);
		}
		break;
	case KRAY_PG_TABLE:
		table(c->d, &out);
		break;
	default:
		return conn_fail(c, "malformed placement group request", -EBADMSG);
	}
	reply.len = (uint32_t)out.len;
	WIRE_FRAME(&c->out, KRAY_MSG_TEXT_REPLY, h->req, WIRE_FIXED(reply),
		   WIRE_PADDED(out.data, out.len));
	kbuf_free(&out);
	conn_flush_later(c);
	return 0;
}

/* A task that asks for a pending group's resources waits for the group; one that asks
 * for a removed group's fails.  (An ext place hook: true when it took t.) */
static bool hold(struct krayd *d, struct task *t)
{
	for (unsigned i = 0; i < t->nres; i++) {
		const char *id = res_group_id(t->res[i].name);
		struct pgroup *g = id ? pg_find(d, id, KRAY_PG_ID_LEN) : NULL;

		if (!g)
			continue;
		if (g->state == PG_CREATED)
			return false;
		if (g->state == PG_REMOVED) {
			task_fail(d, t, KRAY_WE_CANCELLED, "placement group %s was removed", g->id);
			return true;
		}
		t->next = g->held;
		g->held = t;
		return true;
	}
	return false;
}

uint32_t pg_node_for(struct krayd *d, const struct wire_resource *res, int nres)
{
	for (int i = 0; i < nres; i++) {
		const char *id = res_group_id(res[i].name);
		struct pgroup *g = id ? pg_find(d, id, KRAY_PG_ID_LEN) : NULL;
		const char *s;
		int index = -1;

		if (!g || g->mirror || g->state != PG_CREATED)
			continue;
		s = strstr(res[i].name, "_group_") + 7;
		if (s < id) /* NAME_group_I_ID */
			index = atoi(s);
		if (index >= 0 && index < g->nb)
			return g->b[index].node;
		for (int j = 0; j < g->nb; j++)
			if (g->b[j].node == d->node)
				return d->node; /* any bundle: this node's first */
		return g->b[g->rr++ % (unsigned)g->nb].node;
	}
	return 0;
}

struct pgroup *pg_mirror(struct krayd *d, const char *id, const char *bundles, size_t len,
			 uint32_t link, const char **why)
{
	struct pgroup *g, **pp;

	if (pg_find(d, id, KRAY_PG_ID_LEN)) {
		*why = "the group is known here";
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		abort();
	memcpy(g->id, id, KRAY_PG_ID_LEN);
	g->mirror = true;
	g->link = link;
	if (pg_parse_bundles(g, bundles, len, why)) {
		pg_free(g);
		return NULL;
	}
	for (pp = &d->pgs; *pp; pp = &(*pp)->next)
		;
	*pp = g;
	return g;
}

void pg_drop(struct krayd *d, struct pgroup *g)
{
	pg_remove(d, g);
	for (struct pgroup **pp = &d->pgs; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	pg_free(g);
}

static int64_t next_retry(struct krayd *d)
{
	for (struct pgroup *g = d->pgs; g; g = g->next)
		if (g->state == PG_PENDING && !g->mirror)
			return now_ns() + (d->cl ? 10 : 1) * PG_RETRY_NS;
	return -1;
}

static void retry(struct krayd *d, int64_t now)
{
	(void)now;
	place_pending(d);
}

/* A driver went: the groups of its job go too, unless detached (as Ray's). */
static void driver_changed(struct conn *c, bool alive)
{
	if (alive)
		return;
	for (struct pgroup *g = c->d->pgs; g; g = g->next)
		if (!g->detached && !g->mirror && g->job == c->job)
			pg_remove(c->d, g);
}

static const struct ext pgroup_ext = {
	.name = "pgroup",
	.next_deadline = next_retry,
	.tick = retry,
	.place = hold,
	.driver_changed = driver_changed,
};

int pgroup_init(struct krayd *d)
{
	proto_on(d, KRAY_MSG_PG, on_pg);
	return ext_add(d, &pgroup_ext);
}

void pgroup_fini(struct krayd *d)
{
	while (d->pgs) {
		struct pgroup *g = d->pgs;

		d->pgs = g->next;
		while (g->held) {
			struct task *t = g->held;

			g->held = t->next;
			task_free(d, t);
		}
		pg_free(g);
	}
}
