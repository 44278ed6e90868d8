// SPDX-License-Identifier: Apache-2.0
/*
 * krayd's side of the BPF fast path (bpf/fastpath.bpf.c, docs/fastpath.md): synchronous
 * calls that a driver's BPF-steered frame hands straight to an idle pool worker, and whose
 * result goes straight back, without waking krayd.
 *
 * krayd's jobs here are the ones the program cannot do:
 *  - hand out fast connections (FAST_OPEN): a socketpair per driver or worker, krayd's end
 *    in the sockmap with the verdict program, the other end sent back with a secret token;
 *  - share the idle-worker claim: the scheduler takes a worker (IDLE -> DAEMON, a
 *    compare-and-swap on the mmapped `fast_workers`, the same atomic the program uses)
 *    before it sends it an EXEC, and gives it back only while no task waits in its queue,
 *    so the fast path never overtakes queued work or runs a worker twice;
 *  - reconcile: a worker that dies while its entry says FAST was running the fast task
 *    the entry names, and the task's driver is told on its fast connection (FAST_LOST);
 *  - keep the results the driver registers (FAST_DONE) and those a worker could not send
 *    in a fast frame (FAST_STORE);
 *  - count the fast calls workers report in batches (FAST_COUNT) as its own tasks.
 * Without BPF, or with `fastpath = off`, d->fast is NULL and every function is a no-op:
 * a FAST_OPEN is refused and libkray stays on the daemon path.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../include/uapi/kray_bpf.h"
#include "bpf/bpf.h"
#include "bpf/bpf_priv.h"
#include "bpf/bpf_ring.h"
#include "fastpath.skel.h"
#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/task.h"
#include "core/store.h"
#include "core/sched.h"
#include "core/proto.h"
#include "core/log.h"
#include "core/actor.h"
#include "core/timeline.h"

#define WORKERS_LEN (KRAY_FAST_WORKERS * sizeof(struct kray_fast_worker))
#define DRIVERS_LEN (KRAY_FAST_DRIVERS * sizeof(struct kray_fast_driver))

struct kfast {
	struct fastpath *skel;
	int socks_fd, stats_fd, actors_fd;
	struct kray_fast_worker *fw; /* fast_workers, mapped: shared with the program */
	struct kray_fast_driver *fd; /* fast_drivers, mapped */
	struct conn *drivers[KRAY_FAST_DRIVERS];
	int dsock[KRAY_FAST_DRIVERS]; /* krayd's ends; -1: slot free */
	struct worker *workers[KRAY_FAST_WORKERS];
	int wsock[KRAY_FAST_WORKERS];
	unsigned nworkers; /* worker slots in use are below this */
	struct kring *ring; /* the shared-memory ring (bpf_ring.c); NULL: off */
};

static bool cas(uint32_t *p, uint32_t from, uint32_t to)
{
	return __atomic_compare_exchange_n(p, &from, to, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static uint32_t *state_of(struct krayd *d, const struct worker *w)
{
	return d->fast && w->fast_slot ? &d->fast->fw[w->fast_slot - 1].state : NULL;
}

static uint32_t load(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static int on_fast_open(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
static int on_fast_done(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
static int on_fast_store(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
static int on_fast_count(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
static void kfast_cancel(struct krayd *d, const struct kray_oid *tid, uint32_t flags);
static void kfast_unpooled(struct krayd *d, struct worker *w);

/* krayd sent worker w frames: the ring wakes it if it sleeps there. */
static void kfast_sent(struct krayd *d, struct worker *w)
{
	if (d->fast && d->fast->ring && w->fast_slot)
		kring_sent(d->fast->ring, w->fast_slot - 1u);
}

/* What the fast path does to the core: the claims on idle workers, their reconciliation,
 * and its counters (core/ext.h).  Added only while the program is loaded. */
static const struct ext fast_ext = {
	.name = "fastpath",
	.worker_claim = kfast_claim,
	.worker_busy = kfast_running,
	.worker_pass = kfast_pass,
	.worker_settle = kfast_settle,
	.worker_retire = kfast_retire,
	.worker_gone = kfast_worker_gone,
	.worker_sent = kfast_sent,
	.worker_unpooled = kfast_unpooled,
	.conn_gone = kfast_conn_gone,
	.task_cancel = kfast_cancel,
	.stats = kfast_stats,
};

void kfast_start(struct krayd *d, const char *dir)
{
	struct kfast *f;
	struct fastpath *skel;
	int r;

	/* Always: clients ask, and are told no when it is off. */
	proto_on(d, KRAY_MSG_FAST_OPEN, on_fast_open);
	proto_on(d, KRAY_MSG_FAST_DONE, on_fast_done);
	proto_on(d, KRAY_MSG_FAST_STORE, on_fast_store);
	proto_on(d, KRAY_MSG_FAST_COUNT, on_fast_count);
	if (!d->cfg.fastpath) {
		log_info("bpf: fast path off by configuration: synchronous calls take the daemon "
			 "path");
		return;
	}
	if (!dir)
		return; /* bpf_plug() said why */
	f = calloc(1, sizeof(*f));
	if (!f)
		return;
	for (unsigned i = 0; i < KRAY_FAST_DRIVERS; i++)
		f->dsock[i] = -1;
	for (unsigned i = 0; i < KRAY_FAST_WORKERS; i++)
		f->wsock[i] = -1;
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dir);
	skel = fastpath__open_opts(&opts);
	if (!skel) {
		r = -errno;
		goto err_free;
	}
	r = fastpath__load(skel);
	if (r)
		goto err_destroy;
	f->skel = skel;
	f->socks_fd = bpf_map__fd(skel->maps.fast_socks);
	f->stats_fd = bpf_map__fd(skel->maps.fast_stats);
	f->actors_fd = bpf_map__fd(skel->maps.fast_actors);
	if (bpf_prog_attach(bpf_program__fd(skel->progs.fast_verdict), f->socks_fd,
			    BPF_SK_SKB_VERDICT, 0)) {
		r = -errno;
		goto err_destroy;
	}
	f->fw = mmap(NULL, WORKERS_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		     bpf_map__fd(skel->maps.fast_workers), 0);
	if (f->fw == MAP_FAILED) {
		r = -errno;
		f->fw = NULL;
		goto err_destroy;
	}
	f->fd = mmap(NULL, DRIVERS_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		     bpf_map__fd(skel->maps.fast_drivers), 0);
	if (f->fd == MAP_FAILED) {
		r = -errno;
		f->fd = NULL;
		goto err_unmap;
	}
	f->ring = kring_start(d, bpf_map__fd(skel->maps.fast_workers));
	d->fast = f;
	ext_add(d, &fast_ext);
	log_info("bpf: fast path on: synchronous calls go to idle workers through %s/fast_*", dir);
	return;

err_unmap:
	munmap(f->fw, WORKERS_LEN);
err_destroy:
	bpf_object__unpin_maps(skel->obj, NULL);
	fastpath__destroy(skel);
err_free:
	log_warn("bpf: fast path off: %s; synchronous calls take the daemon path", strerror(-r));
	free(f);
}

void kfast_stop(struct krayd *d)
{
	struct kfast *f = d->fast;

	if (!f)
		return;
	for (unsigned i = 0; i < KRAY_FAST_DRIVERS; i++)
		if (f->dsock[i] >= 0)
			close(f->dsock[i]);
	for (unsigned i = 0; i < KRAY_FAST_WORKERS; i++)
		if (f->wsock[i] >= 0)
			close(f->wsock[i]);
	kring_stop(f->ring);
	munmap(f->fw, WORKERS_LEN);
	munmap(f->fd, DRIVERS_LEN);
	bpf_object__unpin_maps(f->skel->obj, NULL);
	fastpath__destroy(f->skel);
	free(f);
	d->fast = NULL;
}

static uint64_t new_token(void)
{
	uint64_t t = 0;

	while (!t)
		if (getrandom(&t, sizeof(t), 0) != sizeof(t))
			t = (uint64_t)now_ns() * 0x9e3779b97f4a7c15ull; /* cannot happen */
	return t;
}

/* The reply, with the connection's end fd (if >= 0), and the ring's memfd and map when
 * ring: a client that gets three descriptors must use the ring, never the socket. */
static void open_reply(struct conn *c, uint64_t req, const struct kray_msg_fast_open_reply *rep,
		       int fd, struct kring *ring)
{
	size_t off = WIRE_FRAME_OPEN(&c->out, KRAY_MSG_FAST_OPEN_REPLY, req, WIRE_FIXED(*rep));

	if (fd >= 0 && (conn_frame_fd(c, fd) || (ring && kring_attach(ring, c)))) {
		struct kray_msg_fast_open_reply no = { .status = -EMFILE };

		memcpy(c->out.data + off + sizeof(struct kray_frame_hdr), &no, sizeof(no));
	}
	conn_end_frame(c, off);
	conn_flush_later(c);
}

/* A worker with a fast connection may get fast tasks of any job: it learns every driver's
 * code path, as it would with its first EXEC of that job. */
static void tell_jobs(struct krayd *d, struct worker *w, struct conn *only)
{
	struct kfast *f = d->fast;

	for (unsigned i = 0; i < KRAY_FAST_DRIVERS; i++) {
		struct conn *c = f->drivers[i];
		const char *path;

		if (!c || (only && c != only))
			continue;
		path = job_code_path(d, c->job);
		sched_tell_job(w, c->job, path ? path : "");
	}
	conn_flush_later(w->conn);
}

static int on_fast_open(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	uint64_t req = h->req;
	struct krayd *d = c->d;
	struct kfast *f = d->fast;
	struct kray_msg_fast_open_reply rep = { .status = -EOPNOTSUPP };
	struct worker *w = c->role == ROLE_WORKER ? c->worker : NULL;
	unsigned slot, max = w ? KRAY_FAST_WORKERS : KRAY_FAST_DRIVERS;
	uint32_t key;
	bool ring;
	int sv[2];

	(void)body;
	if (h->len)
		return conn_fail(c, "malformed fast open", -EBADMSG);
	/* An actor's worker asks once its constructor ran, and only for a plain synchronous
	 * actor (one method at a time, no host of its own: libclient/worker.c). */
	if (!f || (c->role != ROLE_DRIVER && !w) ||
	    (w && w->actor &&
	     (!d->cfg.fastpath_actors || w->actor->max_concurrency != 1 ||
	      w->actor->state != A_ALIVE || w->actor->w != w))) {
		open_reply(c, req, &rep, -1, NULL);
		return 0;
	}
	/* With the ring on, the workers sleep on it, not on their fast sockets: the program
	 * must never steer a call, so a driver that may not use the ring gets no fast path. */
	ring = kring_may(f->ring, c, w != NULL);
	if (f->ring && !ring) {
		rep.status = -EPERM;
		open_reply(c, req, &rep, -1, NULL);
		return 0;
	}
	if (w ? w->fast_slot : c->fast_slot) {
		rep.status = -EEXIST;
		open_reply(c, req, &rep, -1, NULL);
		return 0;
	}
	for (slot = 0; slot < max && (w ? f->wsock[slot] : f->dsock[slot]) >= 0; slot++)
		;
	if (slot == max) {
		rep.status = -ENOSPC;
		open_reply(c, req, &rep, -1, NULL);
		return 0;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		rep.status = -errno;
		open_reply(c, req, &rep, -1, NULL);
		return 0;
	}
	rep.token = new_token();
	rep.slot = slot;
	if (w) {
		struct kray_fast_worker *e = &f->fw[slot];

		/* krayd holds it until the scheduler finds it idle with nothing queued. */
		memset(e, 0, sizeof(*e));
		kring_worker_new(f->ring, slot);
		if (w->actor)
			e->actor = w->actor->id; /* claimed only for its calls */
		__atomic_store_n(&e->token, rep.token, __ATOMIC_SEQ_CST);
		__atomic_store_n(&e->state, KRAY_FW_DAEMON, __ATOMIC_SEQ_CST);
		key = KRAY_FAST_DRIVERS + slot;
	} else {
		memset(&f->fd[slot], 0, sizeof(f->fd[slot]));
		__atomic_store_n(&f->fd[slot].token, rep.token, __ATOMIC_SEQ_CST);
		key = slot;
	}
	uint64_t sock = (uint64_t)sv[0]; /* the map's value is 8 bytes */

	if (bpf_map_update_elem(f->socks_fd, &key, &sock, BPF_ANY)) {
		rep.status = -errno;
		log_warn_ratelimited("bpf: fast connection refused: sockmap: %s", strerror(errno));
		if (w)
			memset(&f->fw[slot], 0, sizeof(f->fw[slot]));
		else
			memset(&f->fd[slot], 0, sizeof(f->fd[slot]));
		close(sv[0]);
		close(sv[1]);
		open_reply(c, req, &rep, -1, NULL);
		return 0;
	}
	/* With the ring, a driver finds an actor's worker by the entry's `actor` itself
	 * (libclient/ring.c); the program, which must steer nothing then, is not told. */
	if (w && w->actor && !f->ring &&
	    bpf_map_update_elem(f->actors_fd, &w->actor->id, &slot, BPF_ANY)) {
		rep.status = -errno;
		bpf_map_delete_elem(f->socks_fd, &key);
		memset(&f->fw[slot], 0, sizeof(f->fw[slot]));
		close(sv[0]);
		close(sv[1]);
		open_reply(c, req, &rep, -1, NULL);
		return 0;
	}
	rep.status = 0;
	if (w) {
		f->wsock[slot] = sv[0];
		f->workers[slot] = w;
		w->fast_slot = (uint16_t)(slot + 1);
		/* With the ring, the program claims no worker (it scans none): they sleep on
		 * the ring, and a FAST_EXEC forged on a socket would strand one.  It still
		 * passes their late answers to drivers. */
		if (slot + 1 > f->nworkers) {
			f->nworkers = slot + 1;
			__atomic_store_n(&f->skel->bss->nworkers, f->ring ? 0 : f->nworkers,
					 __ATOMIC_SEQ_CST);
		}
		tell_jobs(d, w, NULL);
		if (w->actor) /* claimable once nothing waits for it in krayd */
			kfast_settle(d, w, w->actor->qhead != NULL);
	} else {
		f->dsock[slot] = sv[0];
		f->drivers[slot] = c;
		c->fast_slot = (uint16_t)(slot + 1);
		for (unsigned i = 0; i < f->nworkers; i++)
			if (f->workers[i] && f->workers[i]->conn)
				tell_jobs(d, f->workers[i], c);
	}
	open_reply(c, req, &rep, sv[1], ring ? f->ring : NULL);
	close(sv[1]);
	return 0;
}

void kfast_conn_gone(struct conn *c)
{
	struct kfast *f = c->d->fast;
	unsigned slot = c->fast_slot - 1u;
	uint32_t key = slot;

	if (!f || !c->fast_slot)
		return;
	/* No frame of its is accepted from now on; results on their way are dropped. */
	__atomic_store_n(&f->fd[slot].token, 0, __ATOMIC_SEQ_CST);
	bpf_map_delete_elem(f->socks_fd, &key);
	close(f->dsock[slot]);
	f->dsock[slot] = -1;
	f->drivers[slot] = NULL;
	c->fast_slot = 0;
}

bool kfast_claim(struct krayd *d, struct worker *w)
{
	uint32_t *s = state_of(d, w);

	if (!s)
		return true;
	return cas(s, KRAY_FW_IDLE, KRAY_FW_DAEMON) || load(s) == KRAY_FW_DAEMON ||
	       load(s) == KRAY_FW_OFF;
}

bool kfast_running(struct krayd *d, const struct worker *w)
{
	uint32_t *s = state_of(d, w);
	uint32_t v = s ? load(s) : KRAY_FW_OFF;

	return v == KRAY_FW_FAST || v == KRAY_FW_FAST_DAEMON || v == KRAY_FW_CLAIMING;
}

bool kfast_pass(struct krayd *d, struct worker *w)
{
	uint32_t *s = state_of(d, w);

	if (!s)
		return false;
	for (;;) {
		switch (load(s)) {
		case KRAY_FW_FAST:
			if (cas(s, KRAY_FW_FAST, KRAY_FW_FAST_DAEMON))
				return true;
			break;
		case KRAY_FW_IDLE: /* it has just finished: an ordinary claim */
			if (cas(s, KRAY_FW_IDLE, KRAY_FW_DAEMON))
				return true;
			break;
		case KRAY_FW_FAST_DAEMON:
		case KRAY_FW_DAEMON:
			return true;
		case KRAY_FW_CLAIMING: /* for nanoseconds: it becomes FAST (or IDLE) */
			break;
		default:
			return false;
		}
	}
}

void kfast_settle(struct krayd *d, struct worker *w, bool queued)
{
	uint32_t *s = state_of(d, w);

	if (!s)
		return;
	if (!w->inflight) /* krayd's tasks are done; the fast one may still run */
		cas(s, KRAY_FW_FAST_DAEMON, KRAY_FW_FAST);
	if (queued)
		cas(s, KRAY_FW_IDLE, KRAY_FW_DAEMON); /* the queue goes first */
	else if (!w->inflight && !w->blocked)
		cas(s, KRAY_FW_DAEMON, KRAY_FW_IDLE);
}

bool kfast_retire(struct krayd *d, struct worker *w)
{
	uint32_t *s = state_of(d, w);

	return !s || cas(s, KRAY_FW_IDLE, KRAY_FW_OFF) || cas(s, KRAY_FW_DAEMON, KRAY_FW_OFF) ||
	       load(s) == KRAY_FW_OFF;
}

/*
 * Tells the driver of a fast task that its worker died (how), on its fast connection: the
 * driver waits for its answer there, in one blocking read (not a poll of both sockets
 * and then a read).  krayd's end is the one in the sockmap, so what krayd writes there
 * goes straight to the driver, past the program.  A driver waits for one fast call at a
 * time, so the frame fits; if it does not, its fast connection is closed, which sends the
 * driver to the daemon path too.
 */
static void tell_lost(struct krayd *d, const struct kray_fast_worker *e, const char *how)
{
	struct kfast *f = d->fast;
	struct conn *c = e->driver < KRAY_FAST_DRIVERS ? f->drivers[e->driver] : NULL;
	struct kray_msg_fast_lost m = { .task = e->task };
	struct kbuf b = { 0 };

	if (!c || c->closed || e->task.owner != c->id || f->dsock[e->driver] < 0)
		return; /* the driver went too */
	m.len = (uint32_t)strnlen(how, 256);
	WIRE_FRAME(&b, KRAY_MSG_FAST_LOST, 0, WIRE_FIXED(m), WIRE_PADDED(how, m.len));
	if (b.nomem || send(f->dsock[e->driver], b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL) !=
			       (ssize_t)b.len) {
		log_warn("fast task %u.%u: cannot tell its driver that its worker died; closing "
			 "the driver's fast connection",
			 e->task.owner, e->task.seq);
		kfast_conn_gone(c);
	}
	kbuf_free(&b);
}

/* Frees w's slot: from now on the program cannot claim it and no frame of its fast
 * connection is accepted.  Returns the entry's state before, *e what it was doing. */
static uint32_t unslot(struct kfast *f, struct worker *w, struct kray_fast_worker *e)
{
	unsigned slot = w->fast_slot - 1u;
	uint32_t key = KRAY_FAST_DRIVERS + slot, old;

	old = __atomic_exchange_n(&f->fw[slot].state, KRAY_FW_OFF, __ATOMIC_SEQ_CST);
	__atomic_store_n(&f->fw[slot].token, 0, __ATOMIC_SEQ_CST);
	memcpy(e, &f->fw[slot], sizeof(*e));
	bpf_map_delete_elem(f->socks_fd, &key);
	if (e->actor.index)
		bpf_map_delete_elem(f->actors_fd, &e->actor);
	close(f->wsock[slot]);
	f->wsock[slot] = -1;
	f->workers[slot] = NULL;
	w->fast_slot = 0;
	return old;
}

/* A pool worker became an actor's (core/actor.c): its entry was retired (OFF) before
 * krayd sent the constructor, and the worker let go of its connection and ring slot
 * before running it (libclient/worker.c), so the slot is free for another worker, and
 * the actor's worker may ask for one of its own. */
static void kfast_unpooled(struct krayd *d, struct worker *w)
{
	struct kray_fast_worker e;

	if (d->fast && w->fast_slot)
		unslot(d->fast, w, &e);
}

bool kfast_worker_gone(struct krayd *d, struct worker *w, const char *how)
{
	struct kfast *f = d->fast;
	unsigned slot = w->fast_slot - 1u;
	struct kray_fast_worker e;
	uint32_t old;

	if (!f || !w->fast_slot)
		return false;
	/* From now on the program cannot claim it; what it was doing is in the entry. */
	old = unslot(f, w, &e);
	if (kring_lost(f->ring, slot, &e, old == KRAY_FW_FAST || old == KRAY_FW_FAST_DAEMON, how)) {
		log_info("worker %u (pid %d) %s while running fast task %u.%u (ring): its driver "
			 "retries it",
			 w->id, (int)w->pid, how, e.task.owner, e.task.seq);
		return true;
	}
	if (old != KRAY_FW_FAST && old != KRAY_FW_FAST_DAEMON)
		return false;
	log_info("worker %u (pid %d) %s while running fast task %u.%u: its driver retries it",
		 w->id, (int)w->pid, how, e.task.owner, e.task.seq);
	tell_lost(d, &e, how);
	return true;
}

/*
 * kray_cancel() of task tid, which may be a fast task (its driver's get timed out, so it
 * can cancel it; krayd has no list it is on).  The driver reports it cancelled.  With
 * FORCE its worker is killed, as krayd kills the worker of a task of its own it cancels:
 * the death is reported to the driver (FAST_LOST), which does not retry a cancelled call.
 * Without, a C task runs to its end, as on the daemon path, and its answer is dropped.
 */
static void kfast_cancel(struct krayd *d, const struct kray_oid *tid, uint32_t flags)
{
	struct kfast *f = d->fast;

	if (!f || !(flags & KRAY_CANCEL_FORCE))
		return;
	for (unsigned i = 0; i < f->nworkers; i++) {
		struct worker *w = f->workers[i];
		uint32_t s = load(&f->fw[i].state);
		struct kray_oid task;

		/* An actor's running call is never killed, as on the daemon path (cancel.c):
		 * the actor's state is at stake.  Its answer is dropped by the driver. */
		if (!w || w->actor || (s != KRAY_FW_FAST && s != KRAY_FW_FAST_DAEMON))
			continue;
		memcpy(&task, &f->fw[i].task, sizeof(task)); /* written before FAST */
		if (!oid_eq(&task, tid) || w->pid <= 0)
			continue;
		log_info("fast task %u.%u cancelled (force): killing its worker %u (pid %d)",
			 tid->owner, tid->seq, w->id, (int)w->pid);
		kill(w->pid, SIGKILL);
	}
}

/* The return object of a fast task, held by driver connection c; NULL if it exists. */
static struct obj *fast_return(struct conn *c, const struct kray_oid *task)
{
	struct kray_oid id = *task;
	struct obj *o;

	id.index = 0;
	if (store_get(c->d, &id))
		return NULL;
	o = store_create(c->d, &id);
	store_conn_ref(c, o);
	return o;
}

static int on_fast_done(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	uint32_t len = h->len;
	struct krayd *d = c->d;
	struct wire_result r;
	struct wire_value v;
	struct obj *o;

	if (c->role != ROLE_DRIVER || wire_dec_result(body, len, &r) || r.m.n != 1 ||
	    wire_rd_value(&r.values, &v))
		return conn_fail(c, "malformed fast result", -EBADMSG);
	if (r.m.task.node != d->node || r.m.task.owner != c->id || r.m.task.index)
		return conn_fail(c, "fast result for a task this client does not own", -EPERM);
	/* What a fast frame carries: inline values without refs (large ones are stored by
	 * the worker, FAST_STORE). */
	if (v.nrefs || v.type > KRAY_WT_ERROR || v.type == KRAY_WT_REF || v.len > d->cfg.inline_max)
		return conn_fail(c, "fast result that is not an inline value", -EBADMSG);
	o = fast_return(c, &r.m.task);
	if (!o)
		return conn_fail(c, "task id reused", -EEXIST);
	store_seal(d, o, &v);
	return 0;
}

static int on_fast_store(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	uint32_t len = h->len;
	struct krayd *d = c->d;
	struct kfast *f = d->fast;
	struct worker *w = c->worker;
	struct kray_fast_worker e;
	struct wire_result r;
	struct conn *drv;
	struct task *t;

	if (c->role != ROLE_WORKER || wire_dec_result(body, len, &r) || r.m.n != 1)
		return conn_fail(c, "malformed fast store", -EBADMSG);
	if (!f || !w || !w->fast_slot || !kfast_running(d, w))
		return conn_fail(c, "fast store from a worker that runs no fast task", -EPERM);
	memcpy(&e, &f->fw[w->fast_slot - 1], sizeof(e));
	if (!oid_eq(&e.task, &r.m.task))
		return conn_fail(c, "fast store for a task the worker does not run", -EPERM);
	drv = e.driver < KRAY_FAST_DRIVERS ? f->drivers[e.driver] : NULL;
	if (drv && (drv->id != e.task.owner || !fast_return(drv, &e.task)))
		drv = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		abort();
	t->id = e.task;
	t->num_returns = drv ? 1 : 0; /* a driver that went: nothing to seal */
	t->fn = sched_fn(d, "(fast task)", 11);
	/* As a RESULT: a large value the worker stored moves into the slot. */
	task_finish(c, t, r.values, r.m.n);
	return 0;
}

/* A worker's counts of the fast calls it ran since its last FAST_COUNT (libclient's
 * fast_count.c sends them every few hundred calls, or a few ms after the first). */
static int on_fast_count(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct worker *w = c->worker;
	struct wire_fast_count m;

	/* (A worker whose fast connection krayd has retired may still have counts to send.) */
	if (c->role != ROLE_WORKER || !w || wire_dec_fast_count(body, h->len, &m))
		return conn_fail(c, "malformed fast count", -EBADMSG);
	sched_fast_ran(c->d, m.name, m.m.name_len, m.m.runs, m.m.failed, m.m.stored, m.m.run_ns);
	kbpf_worker_done_n(c->d, w, m.m.runs); /* kray top's DONE */
	/* Each call in the timeline (and the state API's task list), as krayd's own are. */
	struct fnstat *fn = m.m.nrec ? sched_fn(c->d, m.name, m.m.name_len) : NULL;

	for (unsigned i = 0; i < m.m.nrec; i++) {
		struct kray_fast_run run;

		memcpy(&run, m.recs + i * sizeof(run), sizeof(run));
		timeline_fast(c->d, &run, fn, w->id, w->actor ? &w->actor->id : NULL);
	}
	return 0;
}

void kfast_stats(struct krayd *d, struct kray_wire_stats *st)
{
	struct kray_fast_stats s;
	uint32_t zero = 0;

	if (d->fast && !bpf_map_lookup_elem(d->fast->stats_fd, &zero, &s)) {
		st->fast_tasks = s.steered;
		st->fast_bounced = s.bounced;
	}
	if (d->fast) { /* calls through the ring: counted by their drivers in the ring */
		uint64_t calls = 0, bounced = 0;

		kring_stats(d->fast->ring, &calls, &bounced);
		st->fast_tasks += calls;
		st->fast_bounced += bounced;
	}
}
