// SPDX-License-Identifier: Apache-2.0
/*
 * This node as a member of a cluster: the token, joining the head (and joining again
 * when the link to it closes, e.g. when the head restarts), heartbeats with this node's
 * load, the view of the cluster the head sends back, and placement: which node has the
 * resources a task needs.  On the head, the view is the head's own table (gcs.c).
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

static int64_t ms(int v)
{
	return (int64_t)v * 1000000;
}

struct node_entry *node_find(struct krayd *d, uint32_t node)
{
	for (unsigned i = 0; i < d->cl->nnodes; i++)
		if (d->cl->nodes[i].m.node == node)
			return &d->cl->nodes[i];
	return NULL;
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
	e->nres = d->nres;
	for (int i = 0; i < d->nres; i++)
		e->res[i] = d->res[i].r;
	e->last_seen = now_ns();
}

void node_put_entry(struct kbuf *b, const struct node_entry *e)
{
	kbuf_put(b, &e->m, sizeof(e->m));
	wire_put_padded(b, e->res_text, e->m.res_len);
}

bool node_has(const struct node_entry *e, const struct wire_resource *need, int n)
{
	for (int i = 0; i < n; i++) {
		int j;

		for (j = 0; j < e->nres; j++)
			if (!strcmp(e->res[j].name, need[i].name) && e->res[j].milli >= need[i].milli)
				break;
		if (j == e->nres)
			return false;
	}
	return true;
}

static uint32_t *sent_slot(struct cluster *cl, uint32_t node, bool add)
{
	unsigned n = sizeof(cl->sent) / sizeof(cl->sent[0]);

	for (unsigned i = 0; i < n; i++)
		if (cl->sent[i].node == node)
			return &cl->sent[i].n;
	for (unsigned i = 0; add && i < n; i++)
		if (!cl->sent[i].n) {
			cl->sent[i].node = node;
			return &cl->sent[i].n;
		}
	return NULL;
}

void node_sent(struct krayd *d, uint32_t node, int delta)
{
	uint32_t *n = sent_slot(d->cl, node, delta > 0);

	if (n && (delta > 0 || *n))
		*n += (uint32_t)delta;
}

uint32_t node_pick(struct krayd *d, const struct wire_resource *need, int n, uint32_t avoid,
		   double *ret_load)
{
	struct node_entry *best = NULL;
	double best_load = 0;

	for (unsigned i = 0; d->cl && i < d->cl->nnodes; i++) {
		struct node_entry *e = &d->cl->nodes[i];
		double load;

		if (!e->m.alive || e->m.node == d->node || e->m.node == avoid || !node_has(e, need, n))
			continue;
		/* Its last report, plus what we sent it since: a burst of tasks spreads over
		 * the nodes instead of all going to the one that was idle a heartbeat ago. */
		uint32_t *sent = sent_slot(d->cl, e->m.node, false);

		load = (double)(e->m.tasks_queued + e->m.workers_busy + (sent ? *sent : 0)) /
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

static void report(struct krayd *d, struct link *l, uint16_t type)
{
	struct node_entry self;
	struct kbuf *b = net_out(l);
	size_t off = wire_begin(b, type, 0);

	node_self(d, &self);
	node_put_entry(b, &self);
	wire_end(b, off);
	net_flush(l);
}

void node_link_up(struct link *l)
{
	if (l->to_head) {
		log_info("joined the head at node %08x", l->node);
		report(l->d, l, KRAY_MSG_NODE_REGISTER);
		gcs_reregister(l->d, l); /* a restarted head learns our named actors again */
		l->d->cl->next_heartbeat = now_ns() + ms(l->d->cfg.heartbeat_ms);
	}
}

void node_link_gone(struct link *l)
{
	struct cluster *cl = l->d->cl;

	if (l != cl->head_link)
		return;
	cl->head_link = NULL;
	if (l->d->stopping)
		return;
	/* Say why joining fails: the common mistakes are a wrong token and an address the
	 * head does not listen on. */
	if (l->up)
		log_warn("lost the link to the head; joining again");
	else if (l->proved)
		log_warn_ratelimited("the head at %s refused this node: is the token in %s the "
				     "head's? (retrying)",
				     l->d->cfg.address,
				     l->d->cfg.token[0] ? "--token" : l->d->cfg.token_file);
	else
		log_warn_ratelimited("cannot reach the head at %s (retrying every %d ms)",
				     l->d->cfg.address, l->d->cfg.heartbeat_ms);
}

void node_on_view(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct cluster *cl = d->cl;
	struct kray_msg_refs n;
	struct wire_rd r;
	struct node_entry *nodes;

	if (!l->to_head)
		return; /* only the head's view counts */
	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &n, sizeof(n)) || n.n > 65536)
		goto bad;
	nodes = calloc(n.n ? n.n : 1, sizeof(*nodes));
	if (!nodes)
		abort();
	for (uint32_t i = 0; i < n.n; i++) {
		const void *res = NULL;
		struct node_entry *e = &nodes[i];

		if (wire_rd_fixed(&r, &e->m, sizeof(e->m)) ||
		    (e->m.res_len && wire_rd_bytes(&r, e->m.res_len, &res)) ||
		    (e->nres = wire_parse_resources(res, e->m.res_len, e->res)) < 0) {
			free(nodes);
			goto bad;
		}
		if (e->m.res_len)
			memcpy(e->res_text, res, e->m.res_len);
		e->res_text[e->m.res_len] = 0;
	}
	if (wire_rd_end(&r)) {
		free(nodes);
		goto bad;
	}
	/* Nodes the head declared dead since the last view: close our links to them, so
	 * what we sent them is retried elsewhere now rather than when TCP gives up.  A node
	 * missing from the view is not dead: a restarted head has not heard from it yet. */
	for (unsigned i = 0; i < cl->nnodes; i++) {
		bool alive = true;

		if (!cl->nodes[i].m.alive)
			continue;
		for (uint32_t j = 0; j < n.n; j++)
			if (nodes[j].m.node == cl->nodes[i].m.node)
				alive = nodes[j].m.alive;
		if (!alive && cl->nodes[i].m.node != d->node) {
			log_warn("node %08x is dead (the head says)", cl->nodes[i].m.node);
			net_drop_node(d, cl->nodes[i].m.node);
		}
	}
	free(cl->nodes);
	cl->nodes = nodes;
	cl->nnodes = cl->cap = n.n;
	cl->view_from_head = true;
	return;
bad:
	log_warn_ratelimited("malformed node view from the head ignored");
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

void cluster_describe(struct krayd *d, struct kbuf *b)
{
	char line[256];
	int n;

	node_describe(d, b);
	if (!d->cl)
		return;
	n = snprintf(line, sizeof(line),
		     "this node: %llu tasks sent to other nodes, %llu run for them, %llu objects "
		     "pulled, %llu tasks run again (lineage)\n",
		     (unsigned long long)d->cl->forwarded, (unsigned long long)d->cl->received,
		     (unsigned long long)d->cl->pulled, (unsigned long long)d->cl->rebuilt);
	kbuf_put(b, line, (size_t)n);
	if (d->cfg.head)
		gcs_describe_jobs(d, b);
}

int64_t cluster_next_deadline(struct krayd *d)
{
	return d->cl ? d->cl->next_tick : -1;
}

void cluster_tick(struct krayd *d, int64_t now)
{
	struct cluster *cl = d->cl;
	int64_t hb = ms(d->cfg.heartbeat_ms);

	if (!cl || now < cl->next_tick)
		return;
	cl->next_tick = now + (hb / 4 > ms(5) ? hb / 4 : ms(5));
	net_sweep(d);
	net_close_unproven(d, now);
	pend_expire(d, now);
	if (d->cfg.head) {
		gcs_tick(d, now);
		return;
	}
	if (!cl->head_link && now >= cl->next_connect) {
		cl->next_connect = now + hb;
		cl->head_link = net_connect(d, &cl->head_sa);
		if (cl->head_link)
			cl->head_link->to_head = true;
	}
	if (cl->head_link && cl->head_link->up && now >= cl->next_heartbeat) {
		cl->next_heartbeat = now + hb;
		report(d, cl->head_link, KRAY_MSG_NODE_HEARTBEAT);
	}
}

/* The token: --token, else the token file; the head writes a fresh one when there is
 * none.  Surrounding white space is not part of it. */
static int load_token(struct krayd *d)
{
	struct cluster *cl = d->cl;
	char buf[sizeof(cl->token) + 1];
	size_t n = 0;
	int fd;

	if (d->cfg.token[0]) {
		snprintf(buf, sizeof(buf), "%s", d->cfg.token);
		n = strlen(buf);
	} else {
		fd = open(d->cfg.token_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && d->cfg.head) {
			uint8_t raw[32];

			if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
				return -EIO;
			for (size_t i = 0; i < sizeof(raw); i++)
				snprintf(buf + 2 * i, 3, "%02x", raw[i]);
			fd = open(d->cfg.token_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0 || write(fd, buf, 64) != 64 || write(fd, "\n", 1) != 1) {
				log_err("token-file %s: %s", d->cfg.token_file, strerror(errno));
				if (fd >= 0)
					close(fd);
				return -EIO;
			}
			close(fd);
			log_info("wrote a new cluster token to %s", d->cfg.token_file);
			n = 64;
		} else if (fd < 0) {
			log_err("no cluster token: %s: %s (give --token or --token-file; the head "
				"writes one at start)",
				d->cfg.token_file, strerror(errno));
			return -ENOENT;
		} else {
			ssize_t got = read(fd, buf, sizeof(buf) - 1);

			close(fd);
			n = got > 0 ? (size_t)got : 0;
		}
	}
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r' ||
		     buf[n - 1] == '\t'))
		buf[--n] = 0;
	if (n < 16 || n > sizeof(cl->token)) {
		log_err("the cluster token must be 16 to %zu bytes", sizeof(cl->token));
		return -EINVAL;
	}
	memcpy(cl->token, buf, n);
	cl->token_len = n;
	return 0;
}

int cluster_init(struct krayd *d)
{
	struct cluster *cl;
	int r;

	if (!d->cfg.head && !d->cfg.address[0])
		return 0;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		abort();
	cl->listen_fd = -1;
	cl->log_fd = -1;
	d->cl = cl;
	if (d->cfg.address[0] && net_parse_addr(d->cfg.address, &cl->head_sa)) {
		log_err("address: not IPV4:PORT: '%s'", d->cfg.address);
		return -EINVAL;
	}
	r = load_token(d);
	if (!r)
		r = net_init(d);
	if (r)
		return r;
	if (d->cfg.head && (r = gcs_log_open(d)))
		return r;
	if (d->cfg.head) {
		cl->nnodes = cl->cap = 1;
		cl->nodes = calloc(1, sizeof(*cl->nodes));
		if (!cl->nodes)
			abort();
		node_self(d, &cl->nodes[0]);
		log_info("head: GCS serving node links on %s:%u", inet_ntoa(cl->self.sin_addr),
			 ntohs(cl->self.sin_port));
	} else {
		log_info("joining the head at %s; node links on %s:%u", d->cfg.address,
			 inet_ntoa(cl->self.sin_addr), ntohs(cl->self.sin_port));
	}
	/* Other nodes connect to the address this one listens on. */
	if ((ntohl(cl->self.sin_addr.s_addr) >> 24) == 127 &&
	    (ntohl(cl->head_sa.sin_addr.s_addr) >> 24) != 127 && !d->cfg.head)
		log_warn("node-listen is a loopback address, but the head is not on this "
			 "machine: other nodes cannot reach this one (set node-listen)");
	cl->next_tick = now_ns();
	return 0;
}

void cluster_fini(struct krayd *d)
{
	struct cluster *cl = d->cl;

	if (!cl)
		return;
	remote_fini(d);
	lookup_fini(d);
	gcs_fini(d);
	net_fini(d);
	free(cl->nodes);
	oidmap_free(&cl->jobs);
	free(cl);
	d->cl = NULL;
}
