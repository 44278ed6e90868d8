// SPDX-License-Identifier: Apache-2.0
/*
 * The cluster part of krayd, at its top: what plugs it into the core and into its own
 * links.  It starts the parts (net, gcs, node, remote, ractor, lineage, lookup, xfer),
 * fills the core's hook table (core/ext.h) and the links' (struct net_hooks), and runs
 * this node as a member: the token, joining the head (and joining again when the link to
 * it closes, e.g. when the head restarts), heartbeats with this node's load.  Nothing in
 * the cluster calls this file; it calls them.
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
#include "core/store.h"
#include "core/conn.h"
#include "core/task.h"
#include "core/actor.h"
#include "core/proto.h"

static int64_t ms(int v)
{
	return (int64_t)v * 1000000;
}

static void report(struct krayd *d, struct link *l, uint16_t type)
{
	struct node_entry self;
	/* A heartbeat overtakes objects streaming to the head; a registration keeps order. */
	struct kbuf *b = type == KRAY_MSG_NODE_HEARTBEAT ? net_out_urgent(l) : net_out(l);
	size_t off = wire_frame_open(b, type, 0, NULL, 0);

	node_self(d, &self);
	node_put_entry(b, &self);
	wire_end(b, off);
	net_flush(l);
}

static void member_link_up(struct link *l)
{
	if (l->to_head) {
		log_info("joined the head at node %08x", l->node);
		report(l->d, l, KRAY_MSG_NODE_REGISTER);
		gcs_reregister(l->d, l); /* a restarted head learns our named actors again */
		gactor_reregister(l->d, l); /* and the records of the actors it may restart */
		l->d->cl->next_heartbeat = now_ns() + ms(l->d->cfg.heartbeat_ms);
	}
}

static void member_link_gone(struct link *l)
{
	struct cluster *cl = l->d->cl;

	if (l != cl->head_link)
		return;
	cl->head_link = NULL;
	if (l->d->stopping)
		return;
	/* Lost or never reached: the next try goes to the next head address (a standby
	 * that took over; a standby that has not yet refuses the link at once). */
	cl->head_cur = (cl->head_cur + 1) % (cl->nheads ? cl->nheads : 1);
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

/* A node the head has declared dead since the last view: close our links to it, so what
 * we sent it is retried elsewhere now rather than when TCP gives up. */
static void view_says_dead(struct krayd *d, const struct node_entry *was, bool alive)
{
	if (was && was->m.alive && !alive && was->m.node != d->node) {
		log_warn("node %08x is dead (the head says)", was->m.node);
		pgplace_node_dead(d, was->m.node); /* first: retried work waits for its group */
		net_drop_node(d, was->m.node);
	}
}

/* A view that holds only what changed (KRAY_VIEW_DELTA): each entry replaces ours of
 * that node, or joins the table. */
static void view_merge(struct krayd *d, const struct node_entry *nodes, uint32_t n)
{
	struct cluster *cl = d->cl;

	for (uint32_t i = 0; i < n; i++) {
		struct node_entry *e = node_find(d, nodes[i].m.node);

		view_says_dead(d, e, nodes[i].m.alive);
		uint32_t sent = e ? e->sent : 0;

		if (!e)
			e = node_add(cl, nodes[i].m.node);
		*e = nodes[i];
		e->sent = sent;
	}
}

/* The head's view of the cluster (members only): whole, or what changed since the last. */
static void node_on_view(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct krayd *d = l->d;
	struct cluster *cl = d->cl;
	struct kray_msg_refs n;
	struct wire_rd r;
	struct node_entry *nodes;
	uint32_t len = h->len;

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
	if (h->flags & KRAY_VIEW_DELTA) {
		view_merge(d, nodes, n.n);
		free(nodes);
		cl->view_from_head = true;
		return;
	}
	/* A whole view replaces ours.  A node missing from it is not dead: a restarted head
	 * has not heard from it yet. */
	for (uint32_t j = 0; j < n.n; j++) {
		struct node_entry *was = node_find(d, nodes[j].m.node);

		view_says_dead(d, was, nodes[j].m.alive);
		nodes[j].sent = was ? was->sent : 0;
	}
	free(cl->nodes);
	cl->nodes = nodes;
	cl->nnodes = cl->cap = n.n;
	node_index_rebuild(cl);
	cl->view_from_head = true;
	return;
bad:
	log_warn_ratelimited("malformed node view from the head ignored");
}

/* A frame on a link that has proven the token: the part it is for handles it. */
static int on_frame(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body)
{
	int r;

	switch (h->type) {
	case KRAY_MSG_NODE_REGISTER:
	case KRAY_MSG_NODE_HEARTBEAT:
		if (!l->d->cfg.head)
			return conn_fail(l->c, "this node is not the head", -EPROTO);
		gcs_on_report(l, h, body);
		return 0;
	case KRAY_MSG_NODE_VIEW:
		node_on_view(l, h, body);
		return 0;
	case KRAY_MSG_FWD_TASK:
		return remote_on_task(l, body, h->len);
	case KRAY_MSG_FWD_DONE:
		return remote_on_done(l, body, h->len);
	case KRAY_MSG_OBJ_PUSH:
		if (pull_refused(l, h, body, h->len))
			return 0; /* a holder without a copy: another is asked (pull.c) */
		r = xfer_on_push(l, h, body, h->len);
		ractor_adopt(l); /* the handles it held: their calls go to their nodes */
		return r;
	case KRAY_MSG_OBJ_CHUNK:
		r = xfer_on_chunk(l, h, body);
		ractor_adopt(l);
		return r;
	case KRAY_MSG_GCS_ACTOR:
		if (!l->d->cfg.head)
			return conn_fail(l->c, "this node is not the head", -EPROTO);
		if (gcs_apply(l->d, h->type, body, h->len, true))
			return conn_fail(l->c, "malformed named actor", -EBADMSG);
		lookup_names_changed(l->d, now_ns()); /* lookups here that waited for it */
		return 0;
	case KRAY_MSG_GCS_JOB:
		if (!l->d->cfg.head)
			return conn_fail(l->c, "this node is not the head", -EPROTO);
		return gcs_apply(l->d, h->type, body, h->len, true) ?
			       conn_fail(l->c, "malformed job", -EBADMSG) :
			       0;
	case KRAY_MSG_GCS_LOOKUP:
		return gcs_on_lookup(l, body, h->len);
	case KRAY_MSG_GCS_LOOKUP_REPLY:
		return lookup_on_reply(l, body, h->len);
	case KRAY_MSG_ACTOR_ATTACH:
		return lookup_on_attach(l, body, h->len);
	case KRAY_MSG_ACTOR_ATTACH_REPLY:
		return lookup_on_attach_reply(l, body, h->len);
	case KRAY_MSG_KV:
		return gcs_on_kv(l, body, h->len);
	case KRAY_MSG_KV_REPLY:
		return kv_on_reply(l, body, h->len);
	case KRAY_MSG_OBJ_HELD:
		return remote_on_held(l, body, h->len);
	case KRAY_MSG_OBJ_PULL:
		return remote_on_pull(l, body, h->len);
	case KRAY_MSG_FWD_ACTOR:
		return remote_on_actor(l, body, h->len);
	case KRAY_MSG_FWD_KILL:
		return remote_on_kill(l, body, h->len);
	case KRAY_MSG_PEER_RELEASE:
		return proto_release(l->c, body, h->len);
	case KRAY_MSG_NODE_QUERY:
		return query_on_request(l, body, h->len);
	case KRAY_MSG_NODE_QUERY_REPLY:
		return query_on_reply(l, body, h->len);
	case KRAY_MSG_FWD_CANCEL:
		return remote_on_cancel(l, body, h->len);
	case KRAY_MSG_FWD_JOB_END:
		return remote_on_job_end(l, body, h->len);
	case KRAY_MSG_PG_RESERVE:
		return pgplace_on_reserve(l, body, h->len);
	case KRAY_MSG_PG_RESERVED:
		return pgplace_on_reserved(l, body, h->len);
	case KRAY_MSG_PG_RELEASE:
		return pgplace_on_release(l, body, h->len);
	case KRAY_MSG_OBJ_WHERE:
		return pull_on_where(l, body, h->len);
	case KRAY_MSG_OBJ_RANGE:
		return xfer_on_range(l, body, h->len);
	case KRAY_MSG_ACTOR_RECORD:
		return gactor_on_record(l, h, body);
	case KRAY_MSG_ACTOR_RESTART:
		return gactor_on_restart(l, body, h->len);
	case KRAY_MSG_ACTOR_LOCATE:
		return gactor_on_locate(l, body, h->len);
	case KRAY_MSG_ACTOR_LOCATED:
		return ractor_on_located(l, body, h->len);
	case KRAY_MSG_ERROR:
		return conn_fail(l->c, "the other node closed the link", -ECONNRESET);
	default:
		return conn_fail(l->c, "frame type not accepted on a node link", -EBADMSG);
	}
}

/* A link came up: the objects queued to stream to its node start (xfer.c), and a link to
 * the head makes this node a member. */
static void on_link_up(struct link *l)
{
	xfer_refill(l->c);
	member_link_up(l);
}

/* Link l went: what each part had in flight over it is retried elsewhere or failed. */
static void on_link_gone(struct link *l)
{
	struct krayd *d = l->d;

	xfer_link_gone(l);
	pull_link_gone(d, l); /* after xfer: a copy half-received is pending again */
	lineage_link_gone(d, l);
	ractor_link_gone(d, l);
	remote_link_gone(l); /* calls in flight to actors that were there wait, parked */
	gactor_ask(d); /* where those actors live now: the head says (gactor.c) */
	pgplace_link_gone(l);
	if (d->cfg.head)
		gcs_link_gone(l);
	member_link_gone(l);
}

void cluster_describe(struct krayd *d, struct kbuf *b)
{
	char line[256];
	int n;

	node_describe(d, b);
	n = store_lazy_describe(d, line, sizeof(line)); /* (a node alone too: lazy restores) */
	kbuf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	if (!d->cl)
		return;
	n = snprintf(line, sizeof(line),
		     "this node: %llu tasks sent to other nodes, %llu run for them, %llu objects "
		     "pulled, %llu tasks run again (lineage)\n",
		     (unsigned long long)d->cl->forwarded, (unsigned long long)d->cl->received,
		     (unsigned long long)d->cl->pulled, (unsigned long long)d->cl->rebuilt);
	kbuf_put(b, line, (size_t)n);
	n = snprintf(line, sizeof(line),
		     "objects between nodes: %llu locations sent, %llu fetched, %llu fetches "
		     "served, %llu fell back to the owner\n",
		     (unsigned long long)d->cl->where_sent, (unsigned long long)d->cl->fetched,
		     (unsigned long long)d->cl->served, (unsigned long long)d->cl->fallbacks);
	kbuf_put(b, line, (size_t)n);
	n = snprintf(line, sizeof(line),
		     "lazy readers' ranges: %llu asked for first, %llu chunks sent first for "
		     "other nodes\n",
		     (unsigned long long)d->cl->ranges_asked,
		     (unsigned long long)d->cl->ranges_served);
	kbuf_put(b, line, (size_t)n);
	for (unsigned i = 0; i < sizeof(d->cl->bytes) / sizeof(d->cl->bytes[0]); i++) {
		if (!d->cl->bytes[i].node)
			continue;
		n = snprintf(line, sizeof(line),
			     "object bytes with node %08x: %llu sent, %llu received\n",
			     d->cl->bytes[i].node, (unsigned long long)d->cl->bytes[i].out,
			     (unsigned long long)d->cl->bytes[i].in);
		kbuf_put(b, line, (size_t)n);
	}
	if (d->cfg.head) {
		gactor_describe(d, b);
		gcs_describe_jobs(d, b);
	}
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
	query_expire(d, now);
	if (d->cfg.head) {
		gcs_tick(d, now);
		return;
	}
	if (!cl->head_link && now >= cl->next_connect) {
		cl->next_connect = now + hb;
		cl->head_link = net_connect(d, &cl->head_sa[cl->head_cur]);
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

/* ---- the core's hooks (core/ext.h): each does nothing on a single node ---- */

static bool ext_place_task(struct krayd *d, struct task *t)
{
	/* A task that needs resources only another node has runs there (on a single node it
	 * fails: none has them), and one that would wait here may go to a less loaded node. */
	return (t->nres || t->place.node || t->place.spread || d->cl) && remote_take(d, t);
}

static void ext_named_actor(struct krayd *d, struct actor *a, bool alive)
{
	if (!d->cl)
		return;
	if (a->name)
		gcs_actor_changed(d, a, alive);
	if (alive && (a->name || a->detached))
		gactor_local(d, a); /* created here: other nodes may hold it */
	if (!alive)
		gactor_ended(d, &a->id); /* the head forgets its creation record */
}

static int ext_place_actor(struct conn *c, const struct wire_actor_create *m,
			   const struct wire_resource *res, int nres, const struct wire_place *pl,
			   struct kray_oid *ret_id)
{
	struct krayd *d = c->d;
	uint32_t node = 0;
	char why[96];

	if (pl->node || pl->spread) {
		if (node_place(d, res, nres, pl, &node, why, sizeof(why))) {
			log_info("actor '%.*s' cannot be placed: %s", m->m.class_len, m->cls, why);
			return -EHOSTDOWN;
		}
		if (node == d->node || (!node && node_here_has(d, res, nres)))
			return 1;
	}
	if (!d->cl)
		return -ENOENT;
	/* Its node sees a hard node affinity in its resources: not restarted elsewhere. */
	return remote_actor_create(c, m, res, nres, node, ret_id);
}

static bool ext_known_actor(struct krayd *d, const struct kray_oid *id)
{
	return d->cl && remote_actor_known(d, id);
}

static void ext_released_actor(struct krayd *d, const struct kray_oid *id)
{
	if (d->cl)
		remote_actor_gone(d, id); /* its node drops the handle this node held */
}

static int ext_kill_actor(struct krayd *d, const struct kray_oid *id, bool no_restart)
{
	return d->cl ? remote_actor_kill(d, id, no_restart) : -ENOENT;
}

static bool ext_lookup_actor(struct conn *c, uint64_t req, const char *name, size_t len,
			     const char *ns, size_t ns_len)
{
	if (!c->d->cl)
		return false;
	lookup_start(c, req, name, len, ns, ns_len);
	return true;
}

/* In a cluster a name is the cluster's: the head's table must give it first. */
static bool ext_claim_actor(struct conn *c, uint64_t req, const struct wire_actor_create *m,
			    const uint8_t *body, uint32_t len)
{
	if (!c->d->cl)
		return false;
	claim_start(c, req, m, body, len);
	return true;
}

static void ext_driver(struct conn *c, bool alive)
{
	if (!c->d->cl)
		return;
	gcs_job_changed(c, alive);
	if (!alive)
		remote_job_end(c->d, c->job); /* its tasks on other nodes end too */
}

static const struct ext cluster_ext = {
	.name = "cluster",
	.next_deadline = cluster_next_deadline,
	.tick = cluster_tick,
	.place = ext_place_task,
	.pg_place = pgplace_place,
	.pg_removed = pgplace_removed,
	.task_done = remote_task_done,
	.task_cancel = remote_cancel,
	.obj_wanted = remote_want,
	.obj_settled = remote_obj_settled,
	.obj_range_wanted = xfer_range_wanted,
	.actor_changed = ext_named_actor,
	.actor_place = ext_place_actor,
	.actor_known = ext_known_actor,
	.actor_released = ext_released_actor,
	.actor_kill = ext_kill_actor,
	.actor_lookup = ext_lookup_actor,
	.actor_claim = ext_claim_actor,
	.driver_changed = ext_driver,
	.describe_nodes = cluster_describe,
	.gather = query_gather,
};

/* KV from a local client: the head's table (on a single node, -ENOTCONN). */
static int on_kv(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	return kv_from_client(c, h->req, body, h->len);
}

static void on_link_sent(struct link *l)
{
	xfer_refill(l->c);
}

static void on_link_spliced(struct link *l, int res)
{
	xfer_spliced(l->c, res);
}

static void on_link_sunk(struct link *l)
{
	xfer_chunk_sunk(l);
	ractor_adopt(l); /* the handles the object held, once it is whole */
}

/* address: one head address, or several (the head and its standbys), comma-separated. */
static int parse_heads(struct cluster *cl, const char *list)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *a = strtok_r(buf, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		while (*a == ' ')
			a++;
		if (cl->nheads == 4 || net_parse_addr(a, &cl->head_sa[cl->nheads]))
			return -EINVAL;
		cl->nheads++;
	}
	return cl->nheads ? 0 : -EINVAL;
}

int cluster_init(struct krayd *d)
{
	struct cluster *cl;
	int r;

	proto_on(d, KRAY_MSG_KV, on_kv);
	r = ext_add(d, &cluster_ext);
	if (r)
		return r;
	if (!d->cfg.head && !d->cfg.address[0])
		return 0;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		abort();
	cl->listen_fd = -1;
	cl->log_fd = -1;
	cl->hooks = (struct net_hooks){ .frame = on_frame,
					.up = on_link_up,
					.gone = on_link_gone,
					.sent = on_link_sent,
					.spliced = on_link_spliced,
					.head = xfer_chunk_head,
					.sunk = on_link_sunk,
					.sinking = xfer_chunk_sinking };
	d->cl = cl;
	if (d->cfg.address[0] && parse_heads(cl, d->cfg.address)) {
		log_err("address: not IPV4:PORT[,IPV4:PORT...] (4 at most): '%s'", d->cfg.address);
		return -EINVAL;
	}
	/* The GCS before the node listener: a standby head waits in gcs_open() for the
	 * active head's lease, and nodes that try it meanwhile are refused at once. */
	r = load_token(d);
	if (!r && d->cfg.head)
		r = gcs_open(d);
	if (!r)
		r = net_init(d);
	if (r)
		return r;
	if (d->cfg.head) {
		struct node_entry *self = node_add(cl, d->node);

		node_self(d, self);
		gcs_entry_changed(d, self);
		if (cl->store->node_changed)
			cl->store->node_changed(d, self);
		log_info("head: GCS serving node links on %s:%u", inet_ntoa(cl->self.sin_addr),
			 ntohs(cl->self.sin_port));
	} else {
		log_info("joining the head at %s; node links on %s:%u", d->cfg.address,
			 inet_ntoa(cl->self.sin_addr), ntohs(cl->self.sin_port));
	}
	/* Other nodes connect to the address this one listens on. */
	if ((ntohl(cl->self.sin_addr.s_addr) >> 24) == 127 &&
	    (ntohl(cl->head_sa[0].sin_addr.s_addr) >> 24) != 127 && !d->cfg.head)
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
	ractor_fini(d);
	gactor_fini(d);
	lineage_fini(d);
	lookup_fini(d);
	query_fini(d);
	gcs_fini(d);
	net_fini(d);
	pull_fini(d);
	free(cl->nodes);
	oidmap_free(&cl->node_index);
	oidmap_free(&cl->jobs);
	free(cl);
	d->cl = NULL;
}
