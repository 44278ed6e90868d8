// SPDX-License-Identifier: Apache-2.0
/*
 * The nodes of the cluster as this node sees them: the view the head sends back (on the
 * head, its own table, gcs.c), this node's own entry, and placement: which node has the
 * resources a task needs and the least load.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/sched.h"

struct node_entry *node_find(struct krayd *d, uint32_t node)
{
	struct kray_oid key = { .node = node };
	uint64_t *v = oidmap_get(&d->cl->node_index, &key);

	return v ? &d->cl->nodes[*v - 1] : NULL;
}

struct node_entry *node_add(struct cluster *cl, uint32_t node)
{
	struct kray_oid key = { .node = node };
	bool fresh;

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
	*oidmap_upsert(&cl->node_index, &key, &fresh) = cl->nnodes + 1;
	return &cl->nodes[cl->nnodes++];
}

void node_index_rebuild(struct cluster *cl)
{
	oidmap_free(&cl->node_index);
	for (unsigned i = 0; i < cl->nnodes; i++) {
		struct kray_oid key = { .node = cl->nodes[i].m.node };
		bool fresh;

		*oidmap_upsert(&cl->node_index, &key, &fresh) = i + 1;
	}
}

void node_self(struct krayd *d, struct node_entry *e)
{
	struct cluster *cl = d->cl;

	memset(&e->m, 0, sizeof(e->m));
	e->m.node = d->node;
	e->m.addr = cl->self.sin_addr.s_addr;
	e->m.port = ntohs(cl->self.sin_port);
	e->m.alive = 1;
	e->m.num_cpus = (uint32_t)d->cfg.num_cpus;
	e->m.workers = d->nworkers;
	for (struct worker *w = d->workers; w; w = w->next)
		if (w->inflight && !w->blocked)
			e->m.workers_busy++;
	e->m.tasks_queued = d->st.tasks_queued;
	e->m.store_bytes = d->st.store_bytes;
	e->m.tasks_finished = d->st.tasks_finished;
	snprintf(e->res_text, sizeof(e->res_text), "%s", d->cfg.resources);
	e->m.res_len = (uint8_t)strlen(e->res_text);
	e->nres = d->nres_own;
	for (int i = 0; i < d->nres_own; i++)
		e->res[i] = d->res[i].r;
	e->last_seen = now_ns();
}

void node_put_entry(struct kbuf *b, const struct node_entry *e)
{
	kbuf_put(b, &e->m, sizeof(e->m));
	wire_put_padded(b, e->res_text, e->m.res_len);
}

/* Appends ",NAME:QTY" (QTY from thousandths, as short as it goes) to buf if all of it
 * fits, so that the text always parses. */
size_t node_res_add(char *buf, size_t off, size_t len, const char *name, uint64_t milli)
{
	char qty[32];
	int n = snprintf(qty, sizeof(qty), "%llu.%03llu", (unsigned long long)(milli / 1000),
			 (unsigned long long)(milli % 1000));

	while (qty[n - 1] == '0')
		qty[--n] = 0;
	if (qty[n - 1] == '.')
		qty[--n] = 0;
	n = snprintf(buf + off, len - off, "%s%s:%s", off ? "," : "", name, qty);
	if (n < 0 || (size_t)n >= len - off) {
		buf[off] = 0;
		return off;
	}
	return off + (size_t)n;
}

bool node_has(const struct node_entry *e, const struct wire_resource *need, int n)
{
	for (int i = 0; i < n; i++) {
		int j;

		for (j = 0; j < e->nres; j++)
			if (!strcmp(e->res[j].name, need[i].name) &&
			    e->res[j].milli >= need[i].milli)
				break;
		if (j == e->nres)
			return false;
	}
	return true;
}

bool node_here_has(struct krayd *d, const struct wire_resource *need, int n)
{
	for (int i = 0; i < n; i++) {
		int j;

		for (j = 0; j < d->nres; j++)
			if (!strcmp(d->res[j].r.name, need[i].name) &&
			    d->res[j].r.milli >= need[i].milli)
				break;
		if (j == d->nres)
			return false;
	}
	return true;
}

/* The next node in turn, this one included, that is alive and has need (0: none). */
static uint32_t spread_next(struct krayd *d, const struct wire_resource *need, int n)
{
	struct cluster *cl = d->cl;
	unsigned count = cl ? cl->nnodes : 0;

	if (!count)
		return node_here_has(d, need, n) ? d->node : 0;
	for (unsigned k = 0; k < count; k++) {
		struct node_entry *e = &cl->nodes[cl->spread_next++ % count];

		if (e->m.node == d->node ? node_here_has(d, need, n) :
					   e->m.alive && node_has(e, need, n))
			return e->m.node;
	}
	return 0;
}

int node_place(struct krayd *d, const struct wire_resource *need, int n,
	       const struct wire_place *pl, uint32_t *ret_node, char *why, size_t why_len)
{
	struct node_entry *e;

	*ret_node = 0;
	if (pl->spread) {
		*ret_node = spread_next(d, need, n); /* 0: none has it, as without */
		return 0;
	}
	if (!pl->node)
		return 0;
	if (pl->node == d->node) {
		if (node_here_has(d, need, n)) {
			*ret_node = d->node;
			return 0;
		}
		if (pl->soft)
			return 0;
		snprintf(why, why_len, "node %08x (this one) lacks the resources it needs",
			 pl->node);
		return -1;
	}
	e = d->cl ? node_find(d, pl->node) : NULL;
	if (e && e->m.alive && node_has(e, need, n)) {
		*ret_node = pl->node;
		return 0;
	}
	if (pl->soft)
		return 0;
	snprintf(why, why_len,
		 !e	     ? "node %08x is not in the cluster" :
		 !e->m.alive ? "node %08x is dead" :
			       "node %08x lacks the resources it needs",
		 pl->node);
	return -1;
}

void node_bytes(struct krayd *d, uint32_t node, uint64_t n, bool out)
{
	struct cluster *cl = d->cl;
	unsigned max = sizeof(cl->bytes) / sizeof(cl->bytes[0]), i;

	for (i = 0; i < max && cl->bytes[i].node && cl->bytes[i].node != node; i++)
		;
	if (i == max || !node)
		return; /* more nodes than slots: the first ones are counted */
	cl->bytes[i].node = node;
	if (out)
		cl->bytes[i].out += n;
	else
		cl->bytes[i].in += n;
}

void node_sent(struct krayd *d, uint32_t node, int delta)
{
	struct node_entry *e = node ? node_find(d, node) : NULL;

	if (e && (delta > 0 || e->sent))
		e->sent += (uint32_t)delta;
}

/*
 * The least loaded live node other than this one and avoid that has need: its last
 * report plus what we sent it since, per CPU, so a burst of tasks spreads over the nodes
 * instead of all going to the one that was idle a heartbeat ago.  A table of up to
 * PICK_SAMPLE nodes is looked at whole.  A larger one is sampled (as Sparrow's and Ray's
 * schedulers do, rather than scoring every node per task): PICK_SAMPLE entries from a
 * random place on, and the rest only while none of those fits, so a task whose resources
 * few nodes have still finds one, and a head routing to a thousand nodes spends the same
 * per task as with a hundred.
 */
#define PICK_SAMPLE 64

uint32_t node_pick(struct krayd *d, const struct wire_resource *need, int n, uint32_t avoid,
		   double *ret_load)
{
	struct cluster *cl = d->cl;
	struct node_entry *best = NULL;
	double best_load = 0;
	unsigned start = 0, total = cl ? cl->nnodes : 0;

	if (total > PICK_SAMPLE) {
		uint64_t x = cl->pick_rng ? cl->pick_rng : d->node | 1ull << 32;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		cl->pick_rng = x;
		start = (unsigned)(x % total);
	}
	for (unsigned k = 0; k < total; k++) {
		struct node_entry *e = &cl->nodes[(start + k) % total];
		double load;

		if (best && k >= PICK_SAMPLE)
			break; /* a sample of a large table that found one */
		if (!e->m.alive || e->m.node == d->node || e->m.node == avoid ||
		    !node_has(e, need, n))
			continue;
		load = (double)(e->m.tasks_queued + e->m.workers_busy + e->sent) /
		       (e->m.num_cpus ? e->m.num_cpus : 1);
		if (!best || load < best_load) {
			best = e;
			best_load = load;
		}
	}
	if (best && ret_load)
		*ret_load = best_load;
	return best ? best->m.node : 0;
}

/* The local job for (owner node, job) with that job's code path. */
uint32_t node_map_job(struct krayd *d, uint32_t node, uint32_t job, const char *path,
		      uint32_t path_len)
{
	struct kray_oid key = { .node = node, .owner = job };
	bool fresh;
	uint64_t *v = oidmap_upsert(&d->cl->jobs, &key, &fresh);

	/* Client ids and job ids share one space here: take the next client id.  The
	 * record goes when the last of the job's tasks here has gone (job.h), and comes
	 * back with its next task. */
	if (fresh)
		*v = ++d->next_client;
	job_add(d, (uint32_t)*v, path, path_len);
	return (uint32_t)*v;
}

void node_describe(struct krayd *d, struct kbuf *b)
{
	struct cluster *cl = d->cl;
	char line[512];

	if (!cl)
		return; /* one node: no list */
	for (unsigned i = 0; i < cl->nnodes; i++) {
		struct node_entry e = cl->nodes[i];
		char addr[INET_ADDRSTRLEN];
		int n;

		if (e.m.node == d->node)
			node_self(d, &e); /* our own line is always current */
		inet_ntop(AF_INET, &e.m.addr, addr, sizeof(addr));
		n = snprintf(line, sizeof(line),
			     "%08x %s:%u %s cpus %u workers %u (%u busy) queued %llu finished %llu "
			     "store %llu MiB resources '%s'%s%s\n",
			     e.m.node, addr, e.m.port, e.m.alive ? "ALIVE" : "DEAD", e.m.num_cpus,
			     e.m.workers, e.m.workers_busy, (unsigned long long)e.m.tasks_queued,
			     (unsigned long long)e.m.tasks_finished,
			     (unsigned long long)(e.m.store_bytes >> 20), e.res_text,
			     i == 0 && (d->cfg.head || cl->view_from_head) ? " head" : "",
			     e.m.node == d->node ? " (this node)" : "");
		kbuf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
}
