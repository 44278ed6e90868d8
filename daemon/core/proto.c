// SPDX-License-Identifier: Apache-2.0
/*
 * What krayd does with each frame a client or worker sends.  A handler returns 0, or a
 * negative errno for a frame that breaks the protocol: the loop then answers with an
 * ERROR frame carrying the reason conn_fail() gave and closes the connection.  Errors that belong to one
 * task (unknown function, missing argument) are not protocol errors: they become error
 * values in that task's return objects.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/task.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/getreq.h"
#include "core/sched.h"
#include "core/proto.h"
#include "core/appmetric.h"
#include "core/log.h"
#include "core/timeline.h"

static int on_hello(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct krayd *d = c->d;
	struct wire_hello h;
	struct kray_msg_hello_ok ok = { .node = d->node,
					.client = c->id,
					.inline_max = d->cfg.inline_max };

	if (c->role != ROLE_NONE)
		return conn_fail(c, "hello sent twice", -EPROTO);
	if (wire_dec_hello(body, len, &h))
		return conn_fail(c, "malformed hello", -EBADMSG);
	if (h.m.role == KRAY_ROLE_WORKER) {
		struct worker *w = worker_by_id(d, h.m.worker_id);

		/* Only the process krayd started, on the socketpair it was given, may speak
		 * as that worker. */
		if (!w || w->state != W_STARTING || !c->spawned || c->spawned != w->id)
			return conn_fail(c, "not a worker this krayd started", -EPERM);
		d->starting--;
		d->start_failures = 0;
		worker_attach(w, c);
		sched_warm(d, w);
	} else if (c->spawned) {
		return conn_fail(c, "a worker's connection must say hello as that worker", -EPERM);
	} else {
		c->role = ROLE_DRIVER;
		c->job = c->id;
		d->st.drivers++;
		/* The connection holds its job's record until it goes. */
		if (h.m.path_len)
			job_hold(job_add(d, c->job, h.path, h.m.path_len));
		else
			job_hold(job_add(d, c->job, d->cfg.code_path, strlen(d->cfg.code_path)));
		if (h.m.path_len) {
			d->warm_job = c->job;
			sched_warm(d, NULL);
		}
		c->pid = h.m.pid;
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		c->start_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
		ext_driver_changed(c, true);
		ok.job = c->job;
	}
	WIRE_FRAME(&c->out, KRAY_MSG_HELLO_OK, 0, WIRE_FIXED(ok));
	conn_flush_later(c);
	return 0;
}

static int on_submit(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct wire_submit s;
	struct kray_oid id = { c->d->node, c->id, 0, 0 };

	if (wire_dec_submit(body, len, &s))
		return conn_fail(c, "malformed submit", -EBADMSG);
	id.seq = s.m.seq;
	if (s.m.num_returns && store_get(c->d, &id))
		return conn_fail(c, "task id reused", -EEXIST);
	task_submit(c, &s);
	return 0;
}

static int on_put(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct krayd *d = c->d;
	struct wire_put p;
	struct obj *o;

	if (wire_dec_put(body, len, &p))
		return conn_fail(c, "malformed put", -EBADMSG);
	if (p.oid.node != d->node || p.oid.owner != c->id || p.oid.index != KRAY_OID_PUT)
		return conn_fail(c, "put of an object id this client does not own", -EPERM);
	if (p.value.len > d->cfg.inline_max)
		return conn_fail(
			c, "inline put larger than inline-max (large objects go through create)",
			-EMSGSIZE);
	o = store_create(d, &p.oid);
	if (!o)
		return conn_fail(c, "object id reused", -EEXIST);
	store_conn_ref(c, o);
	if (!store_holds_refs(c, &p.value)) {
		static const char msg[] = "the put contains a ref its process does not hold";

		store_seal_error(d, o, KRAY_WE_OBJECT_LOST, msg, sizeof(msg) - 1);
		return 0;
	}
	store_seal(d, o, &p.value);
	return 0;
}

/* RELEASE from a client, and PEER_RELEASE from a node link (its conn holds the refs). */
int proto_release(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct wire_oids ids;

	if (wire_dec_refs(body, len, &ids))
		return conn_fail(c, "malformed release", -EBADMSG);
	for (uint32_t i = 0; i < ids.n; i++) {
		struct kray_oid id;

		memcpy(&id, &ids.oids[i], sizeof(id));
		store_conn_unref(c, &id);
	}
	return 0;
}

/* HOLD: a borrower keeps refs it was lent (inside an argument object) beyond the call, as
 * Ray's borrowers do: each becomes one more reference of the connection, which it drops
 * with RELEASE like any other.  A ref the connection does not hold now is ignored: a
 * process cannot take hold of an object it was never given. */
static int on_hold(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct wire_oids ids;

	if (wire_dec_refs(body, len, &ids))
		return conn_fail(c, "malformed hold", -EBADMSG);
	for (uint32_t i = 0; i < ids.n; i++) {
		struct kray_oid id;
		struct obj *o;

		memcpy(&id, &ids.oids[i], sizeof(id));
		if (oidmap_get(&c->refs, &id) && (o = store_get(c->d, &id)))
			store_conn_ref(c, o);
	}
	return 0;
}

#define NODES_TEXT_MAX (8u << 20)

static void text_reply(struct conn *c, uint64_t req, struct kbuf *text)
{
	struct kray_msg_error m = { .len = (uint32_t)text->len };

	WIRE_FRAME(&c->out, KRAY_MSG_TEXT_REPLY, req, WIRE_FIXED(m),
		   WIRE_PADDED(text->data, text->len));
	conn_flush_later(c);
}

/* The timeline's answer: its frame head is written in the room before the JSON and the
 * buffer becomes c's output, when nothing else waits there (3 MB not copied again). */
static void timeline_reply(struct conn *c, uint64_t req, struct kbuf *json)
{
	struct kray_msg_error m = { .len = (uint32_t)kbuf_pending(json) };
	struct kbuf head = { 0 };
	size_t start;

	if (!c)
		return; /* it closed before its timeline was rendered */
	WIRE_FRAME_OPEN(&head, KRAY_MSG_TEXT_REPLY, req, WIRE_FIXED(m));
	if (kbuf_pending(&c->out) || json->off < head.len) {
		struct kbuf text = { .data = json->data + json->off, .len = kbuf_pending(json) };

		text_reply(c, req, &text);
		kbuf_free(&head);
		return;
	}
	start = json->off - head.len;
	memcpy(json->data + start, head.data, head.len);
	kbuf_free(&head);
	json->off = start;
	kbuf_put(json, "\0\0\0\0\0\0\0", (8 - m.len % 8) % 8); /* WIRE_PADDED's */
	wire_end(json, start);
	kbuf_free(&c->out);
	c->out = *json;
	*json = (struct kbuf){ 0 };
	conn_flush_later(c);
}

/* YIELD: an item of a streaming call the worker runs (task_yield()).  One for a call the
 * worker no longer holds (cancelled, handed back) is dropped. */
static int on_yield(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct wire_yield y;
	struct task *t = NULL;

	if (c->role != ROLE_WORKER || !c->worker)
		return conn_fail(c, "yield from a non-worker", -EPROTO);
	if (wire_dec_yield(body, len, &y))
		return conn_fail(c, "malformed yield", -EBADMSG);
	for (t = c->worker->head; t && !oid_eq(&t->id, &y.m.task); t = t->next)
		;
	if (t && !t->cancelled) {
		task_yield(c, t, &y);
	} else if (y.v.type == KRAY_WT_OBJECT) {
		struct kray_oid src;

		memcpy(&src, y.v.data, sizeof(src));
		store_conn_unref(c, &src);
	}
	return 0;
}

/* The requests answered with one TEXT_REPLY: status listings (actors cut to 60,000 bytes;
 * nodes to 8 MiB, about 50,000 of them, at a line's end) and exports (the whole timeline
 * ring, or 10,000 objects: about 3 MB and 2 MB at most, far below KRAY_FRAME_MAX). */
static int on_text_request(struct conn *c, const struct kray_frame_hdr *h)
{
	struct kbuf text = { 0 };

	if (h->len)
		return conn_fail(c, "malformed listing request", -EBADMSG);
	/* The timeline is rendered a slice per loop turn (timeline.c), answered later. */
	if (h->type == KRAY_MSG_TIMELINE)
		return timeline_render_async(c->d, c, h->req, timeline_reply) ?
			       conn_fail(c, "out of memory for the timeline", -ENOMEM) :
			       0;
	if (h->type == KRAY_MSG_LIST_NODES)
		ext_describe_nodes(c->d, &text);
	else if (h->type == KRAY_MSG_LIST_ACTORS)
		actor_describe(c->d, &text);
	else if (h->type == KRAY_MSG_LIST_WORKERS)
		worker_list(c->d, &text);
	else
		store_list(c->d, &text);
	if (h->type == KRAY_MSG_LIST_ACTORS && text.len > 60000)
		text.len = 60000;
	if (h->type == KRAY_MSG_LIST_NODES && text.len > NODES_TEXT_MAX) {
		text.len = NODES_TEXT_MAX;
		while (text.len && text.data[text.len - 1] != '\n')
			text.len--;
	}
	text_reply(c, h->req, &text);
	kbuf_free(&text);
	return 0;
}

/* SEAL (id, then the ids of the refs the object contains): the object is written.  Its
 * refs must be the writer's, as for a PUT; krayd keeps them alive with it. */
static int on_seal(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct krayd *d = c->d;
	struct kray_msg_seal m;
	size_t n = len >= sizeof(m) ? (len - sizeof(m)) / sizeof(struct kray_oid) : 0;
	struct kray_oid *ids = NULL;
	struct obj *o;

	if (len < sizeof(m) || (len - sizeof(m)) % sizeof(struct kray_oid) || n > UINT16_MAX)
		return conn_fail(c, "malformed seal", -EBADMSG);
	memcpy(&m, body, sizeof(m));
	o = store_get(d, &m.oid);
	if (!o || o->writer != c || o->state != OBJ_PENDING)
		return conn_fail(c, "seal of an object this client is not writing", -ENOENT);
	if (n) {
		ids = malloc(n * sizeof(*ids));
		if (!ids)
			return conn_fail(c, "out of memory", -ENOMEM);
		memcpy(ids, body + sizeof(m), n * sizeof(*ids));
		for (size_t i = 0; i < n; i++) {
			if (oidmap_get(&c->refs, &ids[i]))
				continue;
			static const char msg[] = "the object contains a ref its process does not "
						  "hold";

			free(ids);
			store_abort_large(d, o);
			store_seal_error(d, o, KRAY_WE_OBJECT_LOST, msg, sizeof(msg) - 1);
			return 0;
		}
		store_contain(d, o, ids, (uint16_t)n);
		free(ids);
	}
	store_seal_large(c, &m.oid);
	return 0;
}

/* The reply to a CREATE: the writer's descriptor (fd, which the frame takes; filled: its
 * pages exist), or why not (status). */
static void create_reply(struct conn *c, uint64_t req, const struct kray_oid *oid, int status,
			 int fd, bool filled)
{
	struct krayd *d = c->d;
	struct kray_msg_create_reply rep = { .status = status };
	size_t off;

	if (!rep.status)
		rep.flags = (d->thp ? KRAY_CREATE_HUGE : 0) | (filled ? KRAY_CREATE_FILLED : 0);
	off = WIRE_FRAME_OPEN(&c->out, KRAY_MSG_CREATE_REPLY, req, WIRE_FIXED(rep));
	if (!rep.status && conn_frame_fd_take(c, fd)) {
		/* Out of room for descriptors: undo, and say so. */
		struct obj *o = store_get(d, oid);

		close(fd);
		rep.status = -EMFILE;
		memcpy(c->out.data + off + sizeof(struct kray_frame_hdr), &rep, sizeof(rep));
		store_seal_error(d, o, KRAY_WE_INTERNAL, "create failed", 13);
		store_conn_unref(c, oid);
	}
	conn_end_frame(c, off);
	conn_flush_later(c);
}

/* A CREATE waiting for spills to make room (the spill thread): answered when they have. */
struct parked_create {
	struct conn *c;
	uint64_t req;
	struct kray_oid oid;
	uint64_t size;
};

static void create_room(struct krayd *d, void *arg, int status)
{
	struct parked_create *p = arg;
	struct conn *c = p->c;
	bool filled = false;
	int fd = -1;

	(void)d;
	if (!c->closed) {
		if (!status)
			status = store_get(d, &p->oid) ?
					 -EEXIST :
					 store_create_large(c, &p->oid, p->size, &fd, &filled);
		if (status == -EAGAIN) { /* taken meanwhile: wait again */
			store_room_wait(d, p->size, create_room, p);
			return;
		}
		create_reply(c, p->req, &p->oid, status, fd, filled);
	}
	conn_put(c);
	free(p);
}

static int on_create(struct conn *c, uint64_t req, const uint8_t *body, uint32_t len)
{
	struct krayd *d = c->d;
	struct kray_msg_create m;
	bool filled = false;
	int fd = -1, status;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(c, "malformed create", -EBADMSG);
	if (m.oid.node != d->node || m.oid.owner != c->id || m.oid.index != KRAY_OID_PUT)
		return conn_fail(c, "create of an object id this client does not own", -EPERM);
	if (m.size <= d->cfg.inline_max)
		return conn_fail(c, "create of an object small enough to be inline", -EINVAL);
	if (store_get(d, &m.oid))
		return conn_fail(c, "object id reused", -EEXIST);
	status = m.size > KRAY_OBJECT_MAX ? -EFBIG :
					    store_create_large(c, &m.oid, m.size, &fd, &filled);
	if (status == -EAGAIN) {
		struct parked_create *p = calloc(1, sizeof(*p));

		if (!p)
			abort();
		*p = (struct parked_create){ .c = c, .req = req, .oid = m.oid, .size = m.size };
		conn_hold(c);
		store_room_wait(d, m.size, create_room, p);
		return 0;
	}
	create_reply(c, req, &m.oid, status, fd, filled);
	return 0;
}

static int on_unpin(struct conn *c, const uint8_t *body, uint32_t len)
{
	struct wire_oids ids;

	if (wire_dec_refs(body, len, &ids))
		return conn_fail(c, "malformed unpin", -EBADMSG);
	for (uint32_t i = 0; i < ids.n; i++) {
		struct kray_oid id;
		uint64_t *n;
		struct obj *o;

		memcpy(&id, &ids.oids[i], sizeof(id));
		n = oidmap_get(&c->pins, &id);
		if (!n)
			continue; /* not pinned by this client: ignored */
		if (--*n == 0) {
			oidmap_del(&c->pins, &id);
			store_lazy_unmapped(c, &id);
		}
		o = store_get(c->d, &id);
		if (o)
			store_unpin(c->d, o);
	}
	return 0;
}

void actor_reply(struct conn *c, uint64_t req, int status, const struct kray_oid *id,
		 const char *why)
{
	struct kray_msg_actor_reply m = { .status = status };

	if (id)
		m.actor = *id;
	m.len = status && why ? (uint32_t)strlen(why) : 0;
	WIRE_FRAME(&c->out, KRAY_MSG_ACTOR_REPLY, req, WIRE_FIXED(m), WIRE_PADDED(why, m.len));
	conn_flush_later(c);
}

static int on_actor_create(struct conn *c, uint64_t req, const uint8_t *body, uint32_t len)
{
	struct wire_actor_create m;
	struct kray_oid id;
	const char *why = NULL;
	int r;

	if (wire_dec_actor_create(body, len, &m))
		return conn_fail(c, "malformed actor create", -EBADMSG);
	/* In a cluster a name is the cluster's: the head's table must give it first. */
	if (m.m.name_len &&
	    !actor_by_name(c->d, m.name, m.m.name_len, m.ns ? m.ns : "", m.m.ns_len) &&
	    ext_actor_claim(c, req, &m, body, len))
		return 0;
	r = actor_create(c, &m, &id, &why);
	actor_reply(c, req, r, r ? NULL : &id, why);
	return 0;
}

static int on_get_actor(struct conn *c, uint64_t req, const uint8_t *body, uint32_t len)
{
	struct wire_get_actor m;
	struct actor *a;
	struct obj *h;

	if (wire_dec_get_actor(body, len, &m))
		return conn_fail(c, "malformed get actor", -EBADMSG);
	if (m.m.flags & KRAY_GET_ACTOR_SELF) {
		/* The worker's own actor, for current_actor: a handle like any other (its
		 * Python handle releases it). */
		a = c->role == ROLE_WORKER && c->worker ? c->worker->actor : NULL;
		h = a && a->state != A_DEAD ? store_get(c->d, &a->id) : NULL;
		if (!h) {
			actor_reply(c, req, -ENOENT, NULL, "not the worker of a live actor");
			return 0;
		}
		store_conn_ref(c, h);
		actor_reply(c, req, 0, &a->id, NULL);
		return 0;
	}
	a = actor_by_name(c->d, m.name, m.m.name_len, m.ns ? m.ns : "", m.m.ns_len);
	h = a ? store_get(c->d, &a->id) : NULL;
	/* Maybe on another node: the head's table says (answered later). */
	if (!h && ext_actor_lookup(c, req, m.name, m.m.name_len, m.ns ? m.ns : "", m.m.ns_len))
		return 0;
	if (!h) {
		actor_reply(c, req, -ENOENT, NULL, "no live actor has this name in this namespace");
		return 0;
	}
	store_conn_ref(c, h); /* the caller now holds a handle */
	actor_reply(c, req, 0, &a->id, NULL);
	return 0;
}

static int on_kill(struct conn *c, uint64_t req, const uint8_t *body, uint32_t len)
{
	struct kray_msg_kill m;
	struct actor *a;
	int r;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(c, "malformed kill", -EBADMSG);
	a = actor_find(c->d, &m.actor);
	if (a)
		r = actor_kill(c->d, a, m.no_restart != 0);
	else
		r = ext_actor_kill(c->d, &m.actor, m.no_restart != 0);
	actor_reply(c, req, r, &m.actor, r ? "no such live actor" : NULL);
	return 0;
}

void proto_stats(struct krayd *d, struct kray_wire_stats *ret)
{
	struct kray_wire_stats st;

	store_lazy_status(d);
	st = d->st;

	st.node = d->node;
	st.num_cpus = (uint64_t)d->cfg.num_cpus;
	st.pool_bytes = pool_bytes(d->pool);
	st.store_huge = store_huge_flags(d);
	st.loop_stall_max_us = d->loop.stall_max_ns / 1000 > UINT32_MAX ?
				       UINT32_MAX :
				       (uint32_t)(d->loop.stall_max_ns / 1000);
	st.actors_alive = actor_count(d, A_ALIVE);
	st.actors_pending = actor_count(d, A_PENDING) + actor_count(d, A_STARTING);
	ext_stats(d, &st);
	st.workers = d->nworkers;
	st.workers_busy = st.workers_blocked = 0;
	for (struct worker *w = d->workers; w; w = w->next) {
		if (w->blocked)
			st.workers_blocked++;
		else if (w->inflight)
			st.workers_busy++;
	}
	*ret = st;
}

static void on_guards(struct conn *c, uint64_t req)
{
	struct krayd *d = c->d;
	struct kray_wire_guards g = {
		.jobs = job_count(d),
		.actors_dead = actor_count(d, A_DEAD),
		.connections = d->loop.nconns,
		.buffer_bytes = d->loop.buf_bytes,
		.clients_refused = d->loop.refused_clients,
		.closed_slow = d->loop.closed_slow,
		.closed_output = d->loop.closed_output,
		.closed_buffers = d->loop.closed_greedy,
		.closed_nomem = d->loop.closed_nomem,
		.accept_pauses = d->loop.accept_pauses,
		.links_refused = d->loop.links_refused,
		.nest_stalled = d->nest_stalls > 0,
		.workers_over = sched_workers_over(d),
		.nest_failed = d->nest_failed,
		.tasks_timed_out = d->tasks_timed_out,
		.jobs_ended = d->jobs_ended,
	};

	WIRE_FRAME(&c->out, KRAY_MSG_GUARDS_REPLY, req, WIRE_FIXED(g));
	conn_flush_later(c);
}

static void on_status(struct conn *c, uint64_t req)
{
	struct kray_wire_stats st;

	proto_stats(c->d, &st);
	WIRE_FRAME(&c->out, KRAY_MSG_STATUS_REPLY, req, WIRE_FIXED(st));
	conn_flush_later(c);
}

void proto_on(struct krayd *d, uint16_t type, proto_handler fn)
{
	if (type <= KRAY_MSG_TYPE_MAX)
		d->handlers[type] = fn;
}

int proto_handle(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct wire_get g;
	struct wire_wait wt;
	struct wire_result res;
	struct kray_msg_reject rej;

	if (c->role == ROLE_NONE && h->type != KRAY_MSG_HELLO)
		return conn_fail(c, "the first frame must be a hello", -EPROTO);
	switch (h->type) {
	case KRAY_MSG_HELLO:
		return on_hello(c, body, h->len);
	case KRAY_MSG_SUBMIT:
		return on_submit(c, body, h->len);
	case KRAY_MSG_GET:
		if (wire_dec_get(body, h->len, &g))
			return conn_fail(c, "malformed get", -EBADMSG);
		store_lazy_conn(c, g.uffd);
		c->lazy_get = g.uffd != 0; /* each get says whether it maps lazily */
		get_start(c, h->req, &g.ids, g.timeout_ms, false, 0);
		return 0;
	case KRAY_MSG_WAIT:
		if (wire_dec_wait(body, h->len, &wt))
			return conn_fail(c, "malformed wait", -EBADMSG);
		get_start(c, h->req, &wt.ids, wt.timeout_ms, true, wt.num_ready);
		return 0;
	case KRAY_MSG_CREATE:
		return on_create(c, h->req, body, h->len);
	case KRAY_MSG_SEAL:
		return on_seal(c, body, h->len);
	case KRAY_MSG_UNPIN:
		return on_unpin(c, body, h->len);
	case KRAY_MSG_LAZY_MAP: {
		struct kray_msg_lazy_map m;
		struct obj *o;

		if (h->len != sizeof(m))
			return conn_fail(c, "malformed lazy map", -EBADMSG);
		memcpy(&m, body, sizeof(m));
		o = store_get(c->d, &m.id);
		if (!o || !oidmap_get(&c->pins, &m.id))
			return 0;
		/* (whole, promoted or received, or failed meanwhile: late) */
		if (o->lazy ? store_lazy_mapped(c, o->lazy, &m.id, m.addr, m.len) :
			      store_lazy_mapped_late(c, o, &m.id, m.addr, m.len))
			return conn_fail(c, "lazy map of a range that does not fit", -EINVAL);
		return 0;
	}
	case KRAY_MSG_ACTOR_CREATE:
		return on_actor_create(c, h->req, body, h->len);
	case KRAY_MSG_GET_ACTOR:
		return on_get_actor(c, h->req, body, h->len);
	case KRAY_MSG_KILL:
		return on_kill(c, h->req, body, h->len);
	case KRAY_MSG_LIST_ACTORS:
	case KRAY_MSG_LIST_NODES:
	case KRAY_MSG_TIMELINE:
	case KRAY_MSG_LIST_OBJECTS:
	case KRAY_MSG_LIST_WORKERS:
		return on_text_request(c, h);
	case KRAY_MSG_CANCEL: {
		struct kray_msg_cancel m;

		if (wire_dec_fixed(body, h->len, &m, sizeof(m)) ||
		    (m.flags & ~(KRAY_CANCEL_FORCE | KRAY_CANCEL_RECURSIVE)) || m.pad)
			return conn_fail(c, "malformed cancel", -EBADMSG);
		/* Only a holder of the ref may cancel the task behind it. */
		if (oidmap_get(&c->refs, &m.oid))
			task_cancel(c->d, &m.oid, m.flags);
		return 0;
	}
	case KRAY_MSG_PUT:
		return on_put(c, body, h->len);
	case KRAY_MSG_RELEASE:
		return proto_release(c, body, h->len);
	case KRAY_MSG_HOLD:
		return on_hold(c, body, h->len);
	case KRAY_MSG_STATUS:
		if (h->len)
			return conn_fail(c, "malformed status", -EBADMSG);
		on_status(c, h->req);
		return 0;
	case KRAY_MSG_GUARDS:
		if (h->len)
			return conn_fail(c, "malformed guards request", -EBADMSG);
		on_guards(c, h->req);
		return 0;
	case KRAY_MSG_RESULT:
		if (c->role != ROLE_WORKER)
			return conn_fail(c, "result from a non-worker", -EPROTO);
		if (wire_dec_result(body, h->len, &res))
			return conn_fail(c, "malformed result", -EBADMSG);
		sched_result(c, &res);
		return 0;
	case KRAY_MSG_YIELD:
		return on_yield(c, body, h->len);
	case KRAY_MSG_METRIC:
		return appmetric_on_frame(c, h, body);
	case KRAY_MSG_REJECT:
		if (c->role != ROLE_WORKER)
			return conn_fail(c, "reject from a non-worker", -EPROTO);
		if (wire_dec_fixed(body, h->len, &rej, sizeof(rej)))
			return conn_fail(c, "malformed reject", -EBADMSG);
		sched_reject(c, &rej.task);
		return 0;
	default:
		/* Frames a part outside the core answers (the fast path, /dev/kray, KV). */
		if (h->type <= KRAY_MSG_TYPE_MAX && c->d->handlers[h->type])
			return c->d->handlers[h->type](c, h, body);
		return conn_fail(c, "frame type not accepted by krayd", -EBADMSG);
	}
}

void proto_conn_gone(struct conn *c)
{
	struct krayd *d = c->d;

	if (c->role == ROLE_DRIVER)
		d->st.drivers--;
	store_lazy_conn_gone(c);
	get_conn_gone(c);
	ext_conn_gone(c);
	if (c->role == ROLE_DRIVER)
		ext_driver_changed(c, false);
	if (c->role == ROLE_DRIVER || c->role == ROLE_WORKER)
		actor_owner_gone(d, c->id);
	if (c->role == ROLE_DRIVER && c->job == c->id) {
		job_end(d, c->job);
		job_drop(d, job_get(d, c->job));
	}
	/* A process that goes away drops its views and everything it held; objects it was
	 * still writing become errors for whoever waits on them. */
	oidmap_for_each (&c->pins, s) {
		struct obj *o = store_get(d, &s->key);

		for (uint64_t i = 0; o && i < s->val; i++)
			store_unpin(d, o);
	}
	oidmap_free(&c->pins);
	oidmap_for_each (&c->refs, s) {
		struct obj *o = store_get(d, &s->key);

		if (o && o->writer == c) {
			static const char msg[] = "its creator exited before sealing it";

			store_writer_end(d, o);
			store_drop_large(d, o);
			o->type = KRAY_WT_NIL;
			store_seal_error(d, o, KRAY_WE_OBJECT_LOST, msg, sizeof(msg) - 1);
			o = store_get(d, &s->key);
		}
		for (uint64_t i = 0; o && i < s->val; i++) {
			bool last = o->refs == 1;

			store_unref(d, o);
			if (last)
				break;
		}
	}
	oidmap_free(&c->refs);
	if (c->worker) {
		/* The fast path must not steer a task to it now (one it runs is reconciled
		 * when the process is reaped). */
		ext_worker_retire(d, c->worker);
		worker_conn_lost(c->worker);
	}
}

/* What krayd sent a worker went out: the fast path's ring wakes it if it sleeps there. */
static void proto_sent(struct conn *c)
{
	if (c->worker)
		ext_worker_sent(c->d, c->worker);
}

const struct conn_kind proto_client = { .frame = proto_handle,
					.sent = proto_sent,
					.gone = proto_conn_gone };

void proto_accepted(struct krayd *d, int fd)
{
	conn_new(d, fd, ROLE_NONE, &proto_client);
}
