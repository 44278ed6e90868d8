// SPDX-License-Identifier: Apache-2.0
/*
 * libkray's side of the BPF fast path (docs/fastpath.md): a synchronous call goes to an
 * idle worker through krayd's BPF program and its result comes straight back, without
 * waking krayd.
 *
 * A call is a fast candidate when it is a task (or a plain actor's method: fast_actor.c)
 * with one return, default resources, and arguments that are inline values or refs whose
 * small values this process has (its cache, objects.c: they go by value), and its SUBMIT
 * frame is still the last thing in the output buffer when the very next operation is
 * kray_get() of exactly its return ref (with a timeout or not).  The SUBMIT is then taken back out of the buffer and
 * sent as a FAST_EXEC on the fast connection.  Anything else that writes to or flushes
 * the buffer first sends the SUBMIT to krayd as usual, so nothing changes for programs
 * that pipeline calls (the fast path is slower than krayd's batching for those).
 *
 * What can happen to a FAST_EXEC, and what the driver does:
 *  - a FAST_RESULT with the value: it is the answer; the value is cached, and a FAST_DONE
 *    registering it with krayd waits in k->fast_pending until something is sent to krayd
 *    (then it goes first, so krayd knows the object before any frame that names it), or
 *    is dropped if the ref is released first (a call, get, release costs krayd nothing);
 *  - a FAST_RESULT that says STORED: the worker gave the result to krayd (too large for a
 *    fast frame, or containing refs): an ordinary GET fetches it;
 *  - its own FAST_EXEC back (no idle worker), or a FAST_RESULT that says NOT_RUN: the
 *    SUBMIT goes to krayd after all;
 *  - a FAST_LOST on the fast connection (the worker died): the SUBMIT goes to krayd with
 *    one retry fewer, or, with none left, the call fails with WORKER_DIED here.
 *
 * A get with a timeout that expires first returns -ETIMEDOUT and leaves the call in
 * flight: it goes into k->fast_late with its SUBMIT.  Its answer, whenever it comes on the
 * fast connection, settles it as above (the value cached and registered, the SUBMIT queued
 * for krayd, ...): read at a later get (or wait, or call) that names its ref, which waits
 * for it, at any other fast call, and at each flush while calls are late.  A late call
 * whose ref was released is settled too, its value dropped.  Task ids are never reused,
 * so an answer can only settle its own call.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

/* Pending registrations past this are sent with the next flush rather than kept. */
#define PENDING_MAX (64u << 10)

/* Steps over the first value in r.  0 or -1. */
static int skip_value(struct wire_rd *r)
{
	struct wire_value v;

	return wire_rd_value(r, &v) ? -1 : 0;
}

/* The small value of ref argument `ref` if this process has it (kray_put, a get, a fast
 * result: the cache in objects.c), with no refs inside it; else NULL (krayd resolves it:
 * the daemon path). */
static const struct kray_mem *local_arg(struct kray *k, const void *ref)
{
	const struct kray_mem *m;
	kray_ref id;

	memcpy(&id, ref, sizeof(id));
	m = kc_cache_peek(k, &id);
	return m && !m->nnested && m->type != KRAY_WT_ERROR ? m : NULL;
}

/* Appends the arguments in r (a SUBMIT's) to b as the FAST_EXEC carries them: a ref
 * argument as its value, which this process has (kc_fast_eligible() made sure), exactly as
 * krayd would send it to the worker (store_send_value()).  0, or -ENOENT when a value is
 * no longer here (its ref was released since the call). */
static int put_args(struct kray *k, struct kbuf *b, struct wire_rd r)
{
	const uint8_t *run = r.p;

	while (r.left) {
		const uint8_t *at = r.p;
		const struct kray_mem *m;
		struct wire_value v;

		if (wire_rd_value(&r, &v))
			return -EINVAL; /* cannot happen: we wrote it */
		if (v.type != KRAY_WT_REF)
			continue;
		if (!(m = local_arg(k, v.data)))
			return -ENOENT;
		kbuf_put(b, run, (size_t)(at - run));
		wire_put_value(b, m->type, 0, m->type == KRAY_WT_BYTES ? 0 : m->scalar, m->data,
			       m->type == KRAY_WT_BYTES ? (uint32_t)m->len : 0);
		run = r.p;
	}
	kbuf_put(b, run, (size_t)(r.p - run));
	return 0;
}

/* The fast frame for a SUBMIT frame (header included), built in b.  A stand-in for the
 * first argument (k->fast_arg0) replaces it; other ref arguments are replaced by their
 * values (put_args()).  Returns 0, -ENOENT (a value gone), or -E2BIG when it would not fit
 * one fast frame. */
static int build_exec(struct kray *k, const uint8_t *submit, size_t len, struct kbuf *b)
{
	struct kray_frame_hdr h;
	struct wire_submit s;
	struct kray_msg_fast f = { .slot = k->fast_slot, .token = k->fast_token };
	struct kray_msg_exec m = { 0 };
	struct wire_rd rest;
	size_t off;

	memcpy(&h, submit, sizeof(h));
	if (wire_dec_submit(submit + sizeof(h), len - sizeof(h), &s))
		return -EINVAL; /* cannot happen: we wrote it */
	rest = s.args;
	if (kbuf_pending(&k->fast_arg0) && skip_value(&rest))
		return -EINVAL; /* cannot happen either */
	m.task = (struct kray_oid){ k->node, k->client, s.m.seq, 0 };
	m.job = s.m.job;
	m.num_returns = s.m.num_returns;
	m.nargs = s.m.nargs;
	m.name_len = s.m.name_len;
	if (s.m.actor.index)
		f.flags = KRAY_FAST_ACTOR; /* with a trailer (fast_actor.c) */
	off = WIRE_FRAME_OPEN(
		b, KRAY_MSG_FAST_EXEC, 0, WIRE_FIXED(f), WIRE_FIXED(m),
		WIRE_PADDED(s.name, s.m.name_len),
		WIRE_RAW(k->fast_arg0.data ? k->fast_arg0.data + k->fast_arg0.off : rest.p,
			 kbuf_pending(&k->fast_arg0)));
	if (put_args(k, b, rest))
		return -ENOENT;
	if (s.m.actor.index && kc_fast_actor_trailer(k, &s.m.actor, s.m.seq, b))
		return -EINVAL;
	if (wire_end(b, off))
		return -ENOMEM;
	return b->len - off > KRAY_FAST_FRAME_MAX ? -E2BIG : 0;
}

bool kc_fast_eligible(struct kray *k, const kray_ref *actor, const kray_value *args, size_t nargs,
		      const struct kray_call_opts *o, size_t frame_len)
{
	const struct kray_mem *m;

	if (k->ws || (actor && !kc_fast_actor_ok(k, actor)) || k->fast_state < 0 ||
	    o->num_returns != 1 || o->streaming || (o->resources && *o->resources) || o->timeout_ms)
		return false;
	frame_len += sizeof(struct kray_msg_fast);
	for (size_t i = 0; i < nargs; i++) {
		if (args[i].type == KRAY_ACTOR)
			return false; /* krayd lends the handle: the daemon path */
		if (args[i].type != KRAY_REF || (!i && o->fast_arg0))
			continue;
		/* krayd resolves refs, unless this process has the small value already: it
		 * then goes in the FAST_EXEC in the ref's place. */
		if (!(m = local_arg(k, &args[i].ref)))
			return false;
		frame_len += KRAY_PAD8(m->type == KRAY_WT_BYTES ? m->len : 0);
	}
	return frame_len <= KRAY_FAST_FRAME_MAX;
}

bool kc_fast_stand_in_ok(const kray_value *v)
{
	return v->type == KRAY_NIL || v->type == KRAY_INT64 || v->type == KRAY_F64 ||
	       (v->type == KRAY_BYTES && v->len <= KRAY_FAST_FRAME_MAX / 2 && (v->data || !v->len));
}

/* The hash of the deferred call's stand-in (FNV-1a; 0 for none). */
static uint64_t stand_in_hash(const struct kray *k)
{
	uint64_t h = 14695981039346656037ull;

	if (!kbuf_pending(&k->fast_arg0))
		return 0;
	for (size_t i = k->fast_arg0.off; i < k->fast_arg0.len; i++)
		h = (h ^ k->fast_arg0.data[i]) * 1099511628211ull;
	return h | 1;
}

int kc_fast_stand_in(struct kray *k, const struct kray_call_opts *o)
{
	k->fast_arg0.off = k->fast_arg0.len = 0;
	if (!o->fast_arg0)
		return 0;
	kc_put_value(&k->fast_arg0, o->fast_arg0, NULL, 0);
	if (k->fast_arg0.nomem) {
		k->fast_arg0.nomem = false;
		k->fast_arg0.len = 0;
		return -ENOMEM;
	}
	if (k->fast_skip && stand_in_hash(k) == k->fast_declined) {
		k->fast_skip--; /* declined lately: krayd's path, which loads it somewhere */
		return -EAGAIN;
	}
	return 0;
}

/* A worker answered NOT_RUN (declined) or ran the call with the deferred call's
 * stand-in.  A stand-in declined again and again (a Python function too large to travel
 * in the call, which the program's worker has not loaded while krayd's has) skips the
 * fast path for 1, 2, 4 ... up to 1,024 calls, so that wasted round trips stay rare; one
 * that ran resets it. */
static void stand_in_outcome(struct kray *k, bool declined)
{
	uint64_t h = stand_in_hash(k);

	if (!h)
		return;
	if (!declined) {
		if (h == k->fast_declined)
			k->fast_declined = k->fast_backoff = 0;
		return;
	}
	if (h == k->fast_declined)
		k->fast_backoff = k->fast_backoff < 1024 ? 2 * k->fast_backoff : 1024;
	else
		k->fast_backoff = 1;
	k->fast_declined = h;
	k->fast_skip = k->fast_backoff;
}

/* Asks krayd for a fast connection (once per handle).  Sets k->fast_state. */
static void fast_open(struct kray *k)
{
	const char *env = getenv("KRAY_FASTPATH");
	struct kray_msg_fast_open_reply rep;
	struct kray_frame_hdr h;
	const uint8_t *body;
	uint64_t req;
	size_t off;
	int *fds;

	k->fast_state = -1;
	if (env && (!strcmp(env, "off") || !strcmp(env, "0")))
		return;
	req = ++k->next_req;
	off = wire_frame_open(&k->out, KRAY_MSG_FAST_OPEN, req, NULL, 0);
	if (kc_end(k, off)) {
		k->fast_state = 0; /* out of memory: ask again next time */
		return;
	}
	if (kc_wait(k, KRAY_MSG_FAST_OPEN_REPLY, req, &h, &body))
		return;
	fds = kc_frame_fds(k, &h);
	/* Three descriptors: krayd runs the ring, and its workers sleep on it, not on their
	 * sockets: the ring or nothing (ring.c). */
	if (!wire_dec_fixed(body, h.len, &rep, sizeof(rep)) && !rep.status && fds &&
	    KRAY_FRAME_NFDS(h.flags) == 3 && !kc_ring_map(k, fds + 1)) {
		k->fast_fd = fds[0];
		fds[0] = -1;
		k->fast_slot = rep.slot;
		k->fast_token = rep.token;
		k->fast_state = 1;
	} else if (!wire_dec_fixed(body, h.len, &rep, sizeof(rep)) && !rep.status && fds &&
		   KRAY_FRAME_NFDS(h.flags) == 1) {
		k->fast_fd = fds[0];
		fds[0] = -1;
		k->fast_slot = rep.slot;
		k->fast_token = rep.token;
		k->fast_state = 1;
	}
	kc_consume(k, &h);
}

int kc_fast_worker_open(struct kray *k)
{
	fast_open(k);
	return k->fast_state == 1 ? 0 : -EOPNOTSUPP;
}

static void fast_close(struct kray *k)
{
	if (k->fast_state == 1)
		close(k->fast_fd);
	k->fast_state = 0;
	kc_ring_unmap(k);
	kbuf_free(&k->fast_in);
	kbuf_free(&k->fast_pending);
	kbuf_free(&k->fast_arg0);
	for (size_t i = 0; i < k->fast_nlate; i++) {
		kbuf_free(&k->fast_late[i].submit);
		kbuf_free(&k->fast_late[i].held);
	}
	free(k->fast_late);
	k->fast_late = NULL;
	kc_fast_actor_free(k);
	k->fast_nlate = k->fast_late_cap = 0;
}

void kc_fast_worker_close(struct kray *k)
{
	fast_close(k);
}

/* Gives up on the fast connection (it broke): later calls take the daemon path. */
static void fast_broken(struct kray *k)
{
	if (k->fast_state == 1)
		close(k->fast_fd);
	k->fast_state = -1;
}

/* Sends one whole fast frame.  Returns 0 or -EPIPE. */
static int fast_send(struct kray *k, const void *p, size_t len)
{
	ssize_t n;

	do
		n = send(k->fast_fd, p, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	/* One skb per frame: a short write cannot be completed (the program drops what it
	 * cannot parse), so the connection is done. */
	if (n != (ssize_t)len) {
		fast_broken(k);
		return -EPIPE;
	}
	return 0;
}

/* The next whole frame on the fast connection, if one has arrived.  Returns 1 with *ret_h
 * and *ret_body set (consume with fast_consume()), 0, -EPIPE or -ENOMEM. */
static int fast_next(struct kray *k, bool block, struct kray_frame_hdr *ret_h,
		     const uint8_t **ret_body)
{
	for (;;) {
		size_t avail = kbuf_pending(&k->fast_in);
		ssize_t n;

		if (avail >= sizeof(*ret_h)) {
			memcpy(ret_h, k->fast_in.data + k->fast_in.off, sizeof(*ret_h));
			if (wire_check_hdr(ret_h, KRAY_FAST_FRAME_MAX)) {
				fast_broken(k);
				return -EPIPE;
			}
			if (avail >= sizeof(*ret_h) + ret_h->len) {
				*ret_body = k->fast_in.data + k->fast_in.off + sizeof(*ret_h);
				return 1;
			}
		}
		kbuf_compact(&k->fast_in);
		if (!kbuf_reserve(&k->fast_in, KRAY_FAST_FRAME_MAX)) {
			k->fast_in.nomem = false;
			return -ENOMEM;
		}
		n = recv(k->fast_fd, k->fast_in.data + k->fast_in.len,
			 k->fast_in.cap - k->fast_in.len, block ? 0 : MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			fast_broken(k);
			return -EPIPE;
		}
		k->fast_in.len += (size_t)n;
	}
}

static void fast_consume(struct kray *k, const struct kray_frame_hdr *h)
{
	kbuf_consume(&k->fast_in, sizeof(*h) + h->len);
}

/*
 * Keeps a FAST_DONE that registers task's value v with krayd, to go before the next frame
 * sent to krayd (fast_before_flush).  Without memory for it krayd would never learn of
 * the result: the connection is then marked broken and -ENOMEM returned.
 */
static int add_pending(struct kray *k, const struct kray_oid *task, uint64_t exec_ns,
		       const struct wire_value *v)
{
	struct kray_msg_result m = { .task = *task, .exec_ns = exec_ns, .n = 1 };
	size_t off = WIRE_FRAME_OPEN(&k->fast_pending, KRAY_MSG_FAST_DONE, 0, WIRE_FIXED(m));

	wire_put_value(&k->fast_pending, v->type, v->err, v->scalar, v->data, v->len);
	if (wire_end(&k->fast_pending, off)) {
		k->broken = true;
		return kc_fail(k, -ENOMEM, "out of memory registering a fast result");
	}
	return 0;
}

static int late_drain(struct kray *k);

/* Pending registrations go before everything queued (frames already queued may name
 * those objects), after a frame a partial write left half sent.  0 or -ENOMEM (nothing
 * changed). */
static int pending_first(struct kray *k)
{
	size_t np = kbuf_pending(&k->fast_pending);

	if (!np)
		return 0;
	if (kc_out_insert(k, k->fast_pending.data + k->fast_pending.off, np))
		return kc_fail(k, -ENOMEM, "out of memory sending fast results");
	k->fast_pending.off = k->fast_pending.len = 0;
	return 0;
}

int kc_fast_register(struct kray *k)
{
	k->defer = false; /* the buffer is rebuilt, and a frame is about to follow */
	return pending_first(k);
}

int kc_fast_args_known(struct kray *k, const kray_value *args, size_t nargs)
{
	int r;

	/* krayd resolves ref arguments: one whose fast call's get timed out is waited for
	 * here first, since krayd has not heard of it (docs/fastpath.md). */
	for (size_t i = 0; i < nargs && k->fast_nlate; i++)
		if (args[i].type == KRAY_REF &&
		    (r = kc_fast_settle(k, &args[i].ref, 1, &(int64_t){ -1 })))
			return r;
	/* A ref argument may be a fast result krayd has not heard of yet: it hears of it
	 * before the call names it, even if the ref is released before the call is sent. */
	for (size_t i = 0; i < nargs && kbuf_pending(&k->fast_pending); i++)
		if (args[i].type == KRAY_REF)
			return kc_fast_register(k);
	return 0;
}

/* The connection's before_flush hook: pending registrations first.  0 or -ENOMEM. */
static int fast_before_flush(struct kray *k)
{
	int r;

	k->defer = false;
	if (k->fast_nlate && (r = late_drain(k)))
		return r;
	kc_fast_actor_flushed(k);
	k->fast_requeued = false; /* what it queued goes now */
	return pending_first(k);
}

static ssize_t late_find(struct kray *k, const struct kray_oid *task)
{
	for (size_t i = 0; i < k->fast_nlate; i++)
		if (oid_eq(&k->fast_late[i].task, task))
			return (ssize_t)i;
	return -1;
}

/* Whether ref is a late call whose value is still to come (not cancelled). */
static bool awaited(struct kray *k, const kray_ref *ref)
{
	ssize_t i = k->fast_nlate ? late_find(k, (const struct kray_oid *)ref) : -1;

	return i >= 0 && !k->fast_late[i].cancelled;
}

bool kc_fast_is_late(struct kray *k, const kray_ref *ref)
{
	return awaited(k, ref);
}

bool kc_fast_forget(struct kray *k, const kray_ref *ref)
{
	struct kbuf *p = &k->fast_pending;
	ssize_t late = k->fast_nlate ? late_find(k, (const struct kray_oid *)ref) : -1;

	if (late >= 0) {
		/* Still in flight: its answer is dropped when it comes (late_settle()).  A
		 * cancelled one has its error registered: dropped below, unless sent. */
		k->fast_late[late].released = true;
		if (!k->fast_late[late].cancelled)
			return true;
	}
	for (size_t off = p->off; off + sizeof(struct kray_frame_hdr) <= p->len;) {
		struct kray_frame_hdr h;
		struct kray_msg_result m;
		size_t end;

		memcpy(&h, p->data + off, sizeof(h));
		end = off + sizeof(h) + h.len;
		memcpy(&m, p->data + off + sizeof(h), sizeof(m));
		if (!memcmp(&m.task, ref, sizeof(m.task))) {
			/* Released before krayd ever needed it: krayd never hears of it. */
			memmove(p->data + off, p->data + end, p->len - end);
			p->len -= end - off;
			return true;
		}
		off = end;
	}
	return false;
}

/* The daemon path after all: the SUBMIT goes back into the output buffer (where it was:
 * the room is there, unless something queued since). */
static int fall_back(struct kray *k, const struct kbuf *submit)
{
	kbuf_put(&k->out, submit->data, submit->len);
	if (k->out.nomem) {
		k->out.nomem = false;
		k->broken = true; /* the call is lost: nothing else is honest */
		return kc_fail(k, -ENOMEM, "out of memory requeuing a call");
	}
	return 1;
}

/* The worker of our fast task died.  Returns 1 (retry on the daemon path) or -EREMOTEIO
 * with *ret set to the WORKER_DIED error. */
static int lost(struct kray *k, struct kbuf *submit, const struct kray_oid *task, const char *how,
		size_t how_len, kray_value *ret)
{
	struct kray_msg_submit *m =
		(struct kray_msg_submit *)(submit->data + sizeof(struct kray_frame_hdr));
	struct wire_value v = { .type = KRAY_WT_ERROR, .err = KRAY_WE_WORKER_DIED };
	char msg[512];
	int16_t retries;
	uint32_t flags;

	memcpy(&retries, &m->max_retries, sizeof(retries));
	/* An actor call: krayd decides, by the actor's max_task_retries (task.c). */
	if (retries != 0 || m->actor.index) {
		/* The fast attempt counts as one; krayd counts this as a retry. */
		if (retries > 0)
			retries--;
		memcpy(&m->max_retries, &retries, sizeof(retries));
		memcpy(&flags, &m->flags, sizeof(flags));
		flags |= KRAY_SUBMIT_RETRY;
		memcpy(&m->flags, &flags, sizeof(flags));
		return fall_back(k, submit);
	}
	snprintf(msg, sizeof(msg),
		 "worker died while running '%.*s' (fast path): %.*s; 1 attempt, max_retries 0",
		 (int)m->name_len, (const char *)(m + 1), (int)how_len, how);
	v.data = msg;
	v.len = (uint32_t)strlen(msg);
	if (add_pending(k, task, 0, &v))
		return -ENOMEM;
	if (kc_take_value(k, &v, NULL, ret))
		return kc_fail(k, -ENOMEM, "out of memory taking a fast result");
	return kc_fail(k, -EREMOTEIO, "%s", msg);
}

/* A FAST_LOST from krayd on the fast connection: the worker of fast task `task` died.
 * Returns what lost() returns, or -EBADMSG. */
static int lost_frame(struct kray *k, struct kbuf *submit, const struct kray_oid *task,
		      const uint8_t *body, size_t len, kray_value *ret)
{
	struct kray_msg_fast_lost m;
	struct wire_rd rd;
	const void *how;

	wire_rd_init(&rd, body, len);
	if (wire_rd_fixed(&rd, &m, sizeof(m)) || wire_rd_bytes(&rd, m.len, &how) ||
	    wire_rd_end(&rd)) {
		fast_broken(k);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed frame from krayd");
	}
	return lost(k, submit, task, how, m.len, ret);
}

/* A FAST_RESULT for our task.  Returns what kc_fast_get() returns. */
static int fast_result(struct kray *k, struct kbuf *submit, const struct kray_oid *task,
		       const struct kray_msg_fast *f, const uint8_t *body, size_t len,
		       kray_value *ret)
{
	struct wire_result r;
	struct wire_value v;

	stand_in_outcome(k, f->flags & KRAY_FAST_NOT_RUN);
	if (f->flags & KRAY_FAST_NOT_RUN)
		return fall_back(k, submit);
	if (f->flags & KRAY_FAST_STORED)
		return 2; /* krayd holds it for us: an ordinary get */
	if (wire_dec_result(body, len, &r) || r.m.n != 1 || wire_rd_value(&r.values, &v) ||
	    v.nrefs || v.type == KRAY_WT_FD || v.type == KRAY_WT_OBJECT || v.type == KRAY_WT_REF ||
	    v.len > k->inline_max) {
		fast_broken(k);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed fast result");
	}
	if (add_pending(k, task, r.m.exec_ns, &v))
		return -ENOMEM;
	if (kc_take_value(k, &v, NULL, ret))
		return kc_fail(k, -ENOMEM, "out of memory taking a fast result");
	kc_cache_put(k, (const kray_ref *)task, ret);
	if (v.type == KRAY_WT_ERROR)
		return kc_fail(k, -EREMOTEIO, "%s", (const char *)ret->data);
	return 0;
}

/* The fast task a frame on the fast connection answers for (FAST_EXEC back, FAST_RESULT,
 * FAST_LOST).  0, or -1 for any other frame. */
static int frame_task(const struct kray_frame_hdr *h, const uint8_t *body, struct kray_oid *ret)
{
	size_t at = h->type == KRAY_MSG_FAST_LOST ? 0 : sizeof(struct kray_msg_fast);

	if (h->type != KRAY_MSG_FAST_LOST && h->type != KRAY_MSG_FAST_EXEC &&
	    h->type != KRAY_MSG_FAST_RESULT)
		return -1;
	if (h->len < at + sizeof(*ret) + (h->type == KRAY_MSG_FAST_LOST ? sizeof(uint64_t) : 0))
		return -1;
	memcpy(ret, body + at, sizeof(*ret));
	return 0;
}

/* What frame h (for fast task `task`, whose SUBMIT is in submit) says.  Returns what
 * kc_fast_get() returns, except -ETIMEDOUT. */
static int outcome(struct kray *k, struct kbuf *submit, const struct kray_oid *task,
		   const struct kray_frame_hdr *h, const uint8_t *body, kray_value *ret)
{
	struct kray_msg_fast f;

	if (h->type == KRAY_MSG_FAST_LOST)
		return lost_frame(k, submit, task, body, h->len, ret);
	if (h->type == KRAY_MSG_FAST_EXEC) { /* back: no idle worker */
		kc_fast_actor_bounced(k, body, h->len);
		return fall_back(k, submit);
	}
	memcpy(&f, body, sizeof(f));
	return fast_result(k, submit, task, &f, body + sizeof(f), h->len - sizeof(f), ret);
}

/* Queues a RELEASE of ref for krayd.  0 or -ENOMEM. */
/* Queues a frame of type (HOLD or RELEASE) for the n refs at ids.  0 or -ENOMEM. */
static int queue_refs(struct kray *k, uint16_t type, const void *ids, uint32_t n)
{
	struct kray_msg_refs m = { .n = n };

	if (!n)
		return 0;
	return kc_end(k, WIRE_FRAME_OPEN(&k->out, type, 0, WIRE_FIXED(m),
					 WIRE_RAW(ids, n * sizeof(kray_ref))));
}

static int queue_release(struct kray *k, const struct kray_oid *ref)
{
	return queue_refs(k, KRAY_MSG_RELEASE, ref, 1);
}

/* queue_refs() of the refs collected in ids. */
static int queue_held(struct kray *k, uint16_t type, const struct kbuf *ids)
{
	return queue_refs(k, type, ids->data, (uint32_t)(ids->len / sizeof(kray_ref)));
}

/* Late call i is settled: it is forgotten, and the holds on its ref arguments are given
 * back (after its SUBMIT, if that went to krayd after all: krayd holds them for the task
 * by then).  Without memory for the RELEASE, they stay held until the driver exits. */
static void late_drop(struct kray *k, size_t i)
{
	queue_held(k, KRAY_MSG_RELEASE, &k->fast_late[i].held);
	kbuf_free(&k->fast_late[i].held);
	kbuf_free(&k->fast_late[i].submit);
	k->fast_late[i] = k->fast_late[--k->fast_nlate];
}

/* Late call i is settled by frame h: as its get would have been, except that nothing is
 * returned, and that for a released ref the answer is dropped (a value) or krayd is told
 * of the release (a task it now runs or holds the result of).  0 or -errno. */
static int late_settle(struct kray *k, size_t i, const struct kray_frame_hdr *h,
		       const uint8_t *body)
{
	struct kc_fast_late *l = &k->fast_late[i];
	struct kray_oid task = l->task;
	bool released = l->released;
	kray_value v = { 0 };
	int r;

	if (l->cancelled) { /* decided: whatever it says is dropped, and a bounce not run */
		late_drop(k, i);
		return 0;
	}
	r = outcome(k, &l->submit, &task, h, body, &v);

	kray_value_clear(&v);
	late_drop(k, i);
	if (r == 1 || r == 2) {
		k->fast_requeued = true; /* krayd is told at once: no get may come */
		return released ? queue_release(k, &task) : 0;
	}
	if (released) { /* its value, or its error, is wanted by no one */
		kc_fast_forget(k, (const kray_ref *)&task);
		kc_cache_drop(k, (const kray_ref *)&task);
	}
	return r == -EREMOTEIO ? 0 : r;
}

/* Late calls whose fast connection broke: krayd decides (their SUBMITs go to it, as a
 * call's does when its connection breaks while it waits).  0 or -ENOMEM. */
static int late_orphan(struct kray *k)
{
	int r = 0;

	while (k->fast_nlate && !r) {
		struct kc_fast_late *l = &k->fast_late[k->fast_nlate - 1];
		struct kray_oid task = l->task;
		bool released = l->released;

		if (l->cancelled) {
			late_drop(k, k->fast_nlate - 1);
			continue;
		}
		r = fall_back(k, &l->submit);
		late_drop(k, k->fast_nlate - 1);
		k->fast_requeued = true;
		r = r < 0 ? r : released ? queue_release(k, &task) : 0;
	}
	return r;
}

/* A frame on the fast connection that is not the answer awaited: it settles the late
 * call it is for, if any (a stray is dropped).  Consumed.  0 or -errno. */
static int other_frame(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct kray_oid id;
	ssize_t i;
	int r = 0;

	if (k->fast_nlate && !frame_task(h, body, &id) && (i = late_find(k, &id)) >= 0)
		r = late_settle(k, (size_t)i, h, body);
	if (k->fast_state == 1)
		fast_consume(k, h);
	return r;
}

/* The deadline of a timeout (ns on CLOCK_MONOTONIC), or -1 for none; one too far away
 * to represent is none, as in krayd. */
static int64_t deadline_of(int64_t timeout_ms)
{
	int64_t now = kc_mono_ns();

	return timeout_ms < 0 || timeout_ms > (INT64_MAX - now) / 1000000 ?
		       -1 :
		       now + timeout_ms * 1000000;
}

/* How long a blocking read of the fast connection waits: ms, or 0 for ever.  Set only
 * when it changes: a loop of gets with the same timeout costs no system call for it. */
static void fast_rcvtimeo(struct kray *k, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (k->fast_rcvtimeo_ms == ms)
		return;
	if (!setsockopt(k->fast_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		k->fast_rcvtimeo_ms = ms;
}

/* The next frame on the fast connection, waiting until deadline (-1: for ever).  Returns
 * 1 (consume with fast_consume()), -ETIMEDOUT, -EPIPE or -ENOMEM. */
static int fast_next_until(struct kray *k, int64_t deadline, struct kray_frame_hdr *ret_h,
			   const uint8_t **ret_body)
{
	for (;;) {
		int64_t left = 0;
		int r;

		if (deadline >= 0) {
			left = deadline - kc_mono_ns();
			if (left <= 0) {
				r = fast_next(k, false, ret_h, ret_body);
				return r ? r : -ETIMEDOUT;
			}
			left = (left + 999999) / 1000000;
		}
		fast_rcvtimeo(k, left);
		r = fast_next(k, true, ret_h, ret_body);
		if (r)
			return r;
	}
}

/* Sends krayd what settling late calls queued for it (SUBMITs, RELEASEs): the driver may
 * not talk to krayd again for a while.  A failure shows on the next call. */
static void late_flush(struct kray *k)
{
	if (k->fast_requeued && !k->fast_busy) {
		k->fast_requeued = false;
		kc_flush(k);
	}
}

/* Reads what has come on the fast connection for late calls, without waiting (at each
 * flush: their registrations then go first). */
static int late_drain(struct kray *k)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	int r = 0;

	if (k->fast_busy)
		return 0;
	k->fast_busy = true;
	while (k->fast_nlate && k->fast_state == 1 && !r) {
		r = fast_next(k, false, &h, &body);
		if (r <= 0)
			break;
		r = other_frame(k, &h, body);
	}
	if (k->fast_nlate && k->fast_state != 1)
		r = late_orphan(k);
	k->fast_busy = false;
	return r < 0 && r != -EPIPE ? r : 0;
}

int kc_fast_cancel(struct kray *k, const kray_ref *ref)
{
	struct wire_value v = { .type = KRAY_WT_ERROR, .err = KRAY_WE_CANCELLED };
	const struct kray_msg_submit *m;
	struct kc_fast_late *l;
	kray_value val = { 0 };
	char msg[300];
	ssize_t i;
	int r;

	/* An answer that came already settles it first: a finished task is not cancelled. */
	r = late_drain(k);
	late_flush(k);
	i = r ? -1 : late_find(k, (const struct kray_oid *)ref);
	if (i < 0 || k->fast_late[i].cancelled)
		return r;
	l = &k->fast_late[i];
	l->cancelled = true;
	if (l->released)
		return 0;
	m = (const struct kray_msg_submit *)(l->submit.data + sizeof(struct kray_frame_hdr));
	snprintf(msg, sizeof(msg), "task '%.*s' was cancelled", (int)m->name_len,
		 (const char *)(m + 1));
	v.data = msg;
	v.len = (uint32_t)strlen(msg);
	if (add_pending(k, &l->task, 0, &v))
		return -ENOMEM;
	if (kc_take_value(k, &v, NULL, &val))
		return kc_fail(k, -ENOMEM, "out of memory cancelling a fast call");
	kc_cache_put(k, ref, &val);
	kray_value_clear(&val);
	return 0;
}

int kc_fast_settle(struct kray *k, const kray_ref *refs, size_t n, int64_t *timeout_ms)
{
	int64_t deadline = deadline_of(*timeout_ms);
	struct kray_frame_hdr h;
	const uint8_t *body;
	int r = 0;

	k->fast_busy = true;
	for (;;) {
		bool late = false;

		if (k->fast_state != 1) {
			r = late_orphan(k);
			break;
		}
		for (size_t i = 0; i < n && !late; i++)
			late = awaited(k, &refs[i]);
		if (!late)
			break;
		r = fast_next_until(k, deadline, &h, &body);
		if (r == -EPIPE)
			continue; /* broken: orphaned above */
		if (r < 0)
			break;
		r = other_frame(k, &h, body);
		if (r < 0)
			break;
	}
	k->fast_busy = false;
	late_flush(k);
	if (deadline >= 0) {
		int64_t left = deadline - kc_mono_ns();

		*timeout_ms = left > 0 ? (left + 999999) / 1000000 : 0;
	}
	if (r == -ENOMEM)
		return kc_fail(k, -ENOMEM, "out of memory waiting for a fast call");
	return r;
}

/* The ref arguments of the fast call in submit whose values went in its FAST_EXEC (all
 * but a first one that had a stand-in), into held, and a HOLD of them queued for krayd: the
 * get timed out, so the caller may release them before the call is settled, while its
 * SUBMIT, which may still go to krayd (a bounce, NOT_RUN, a retry), names them.  As on
 * krayd's path, they stay alive for the call.  0 or -ENOMEM. */
static int hold_args(struct kray *k, const struct kbuf *submit, struct kbuf *held)
{
	const struct kray_frame_hdr *h = (const struct kray_frame_hdr *)submit->data;
	struct wire_submit s;
	struct wire_value v;

	if (wire_dec_submit(submit->data + sizeof(*h), submit->len - sizeof(*h), &s))
		return 0; /* cannot happen: we wrote it */
	for (uint32_t i = 0; i < s.m.nargs && !wire_rd_value(&s.args, &v); i++)
		if (v.type == KRAY_WT_REF && (i || !kbuf_pending(&k->fast_arg0)))
			kbuf_put(held, v.data, sizeof(kray_ref));
	/* A fast result among them is known to krayd already (kc_submit() registered it):
	 * a release of it is a RELEASE after the HOLD. */
	if (held->nomem || queue_held(k, KRAY_MSG_HOLD, held)) {
		kbuf_free(held);
		return -ENOMEM;
	}
	return 0;
}

/* The get of fast task `task` timed out: it stays in flight, with its SUBMIT (moved from
 * submit).  0 or -ENOMEM. */
static int late_add(struct kray *k, const struct kray_oid *task, struct kbuf *submit)
{
	struct kbuf held = { 0 };

	if (k->fast_nlate == k->fast_late_cap) {
		size_t cap = k->fast_late_cap ? 2 * k->fast_late_cap : 8;
		struct kc_fast_late *p = realloc(k->fast_late, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		k->fast_late = p;
		k->fast_late_cap = cap;
	}
	if (hold_args(k, submit, &held))
		return -ENOMEM;
	k->fast_late[k->fast_nlate++] =
		(struct kc_fast_late){ .task = *task, .submit = *submit, .held = held };
	*submit = (struct kbuf){ 0 };
	return 0;
}

/* kc_fast_get() through the shared-memory ring (ring.c): the same frames and outcomes;
 * no idle worker goes straight to the daemon path, and a get that times out leaves the
 * call late, its answer to come on the fast connection. */
static int ring_get(struct kray *k, struct kbuf *submit, const struct kbuf *exec,
		    const struct kray_oid *task, int64_t deadline, int64_t timeout_ms,
		    kray_value *ret)
{
	struct kbuf fr = { 0 };
	struct kray_frame_hdr h;
	struct kray_oid id;
	int r = kc_ring_call(k, exec, task, deadline, &fr);

	if (!r) {
		r = fall_back(k, submit);
	} else if (r == -ETIMEDOUT) {
		r = late_add(k, task, submit) ?
			    kc_fail(k, -ENOMEM, "out of memory keeping a timed-out call") :
			    kc_fail(k, -ETIMEDOUT, "get timed out after %lld ms",
				    (long long)timeout_ms);
	} else if (r == -EPIPE) {
		fast_broken(k); /* krayd went: it decides (the call goes to it) */
		r = fall_back(k, submit);
		if (r >= 0 && k->fast_nlate)
			r = late_orphan(k) ?: r;
	} else if (r < 0) {
		r = kc_fail(k, r, "out of memory taking a fast result");
	} else {
		memcpy(&h, fr.data, fr.len >= sizeof(h) ? sizeof(h) : 0);
		/* Only an answer that names this call is taken as its answer. */
		if (fr.len < sizeof(h) || wire_check_hdr(&h, KRAY_FAST_FRAME_MAX) ||
		    sizeof(h) + h.len != fr.len || frame_task(&h, fr.data + sizeof(h), &id) ||
		    !oid_eq(&id, task))
			r = kc_fail(k, -EBADMSG, "malformed fast result on the ring");
		else
			r = outcome(k, submit, task, &h, fr.data + sizeof(h), ret);
	}
	kbuf_free(&fr);
	if (kbuf_pending(&k->fast_pending) > PENDING_MAX)
		k->fast_requeued = true;
	late_flush(k);
	return r;
}

int kc_fast_get(struct kray *k, int64_t timeout_ms, kray_value *ret)
{
	struct kray_oid task = { k->node, k->client, k->defer_seq, 0 };
	struct kbuf submit = { 0 }, exec = { 0 };
	int64_t deadline = deadline_of(timeout_ms);
	int r = 1;

	/* Take the SUBMIT back out of the buffer; it returns if the fast path declines.  Out
	 * of memory for the copy: the daemon path, the SUBMIT left where it is. */
	k->defer = false;
	if (!kbuf_reserve(&submit, k->defer_end - k->defer_off))
		return 1;
	kbuf_put(&submit, k->out.data + k->defer_off, k->defer_end - k->defer_off);
	k->out.len = k->defer_off;
	if (!k->fast_state)
		fast_open(k);
	if (k->fast_state != 1 || k->broken || build_exec(k, submit.data, submit.len, &exec)) {
		r = fall_back(k, &submit);
		goto out;
	}
	if (k->ring) {
		r = ring_get(k, &submit, &exec, &task, deadline, timeout_ms, ret);
		goto out;
	}
	if (fast_send(k, exec.data, exec.len)) {
		r = fall_back(k, &submit);
		goto out;
	}
	/* One blocking read per frame: krayd sends FAST_LOST here too, so nothing on the main
	 * connection is needed before the answer (what comes there waits for later).  With a
	 * timeout, the read has it (SO_RCVTIMEO): still one system call. */
	k->fast_busy = true;
	for (;;) {
		struct kray_frame_hdr h;
		const uint8_t *body;
		struct kray_oid id;

		r = fast_next_until(k, deadline, &h, &body);
		if (r == -ETIMEDOUT) {
			if (late_add(k, &task, &submit)) {
				deadline = -1; /* no room to leave it in flight: wait */
				continue;
			}
			r = kc_fail(k, -ETIMEDOUT, "get timed out after %lld ms",
				    (long long)timeout_ms);
			break;
		}
		if (r < 0) {
			/* The fast connection broke (krayd stopping?): krayd decides. */
			r = fall_back(k, &submit);
			break;
		}
		if (frame_task(&h, body, &id) || !oid_eq(&id, &task)) {
			r = other_frame(k, &h, body); /* a late call's, or a stray */
			if (r < 0)
				break;
			continue;
		}
		r = outcome(k, &submit, &task, &h, body, ret);
		if (k->fast_state == 1)
			fast_consume(k, &h);
		break;
	}
	k->fast_busy = false;
	if (k->fast_nlate && k->fast_state != 1 && r != -ENOMEM) {
		int rr = late_orphan(k);

		r = rr ? rr : r;
	}
	if (kbuf_pending(&k->fast_pending) > PENDING_MAX)
		k->fast_requeued = true;
	late_flush(k); /* a failure shows on the next call */
out:
	kbuf_free(&submit);
	kbuf_free(&exec);
	return r;
}

int kc_fast_reply(struct kray *k, struct kbuf *res, const struct kray_oid *task,
		  struct kc_fast_ran *ran)
{
	struct kray_msg_fast f = { .slot = k->fast_slot, .token = k->fast_token };
	struct kray_msg_result m = { .task = *task };
	struct kray_frame_hdr h = { 0 };
	struct wire_result r;
	struct wire_value v;
	bool inline_ok = true;
	struct kbuf b = { 0 };
	size_t off;
	int ret;

	if (kbuf_pending(res) < sizeof(h)) {
		f.flags = KRAY_FAST_NOT_RUN; /* not a task we could start: the daemon path */
	} else {
		memcpy(&h, res->data + res->off, sizeof(h));
		if (wire_dec_result(res->data + res->off + sizeof(h), h.len, &r)) {
			f.flags = KRAY_FAST_NOT_RUN;
		} else {
			for (uint32_t i = 0; i < r.m.n && inline_ok; i++)
				inline_ok = !wire_rd_value(&r.values, &v) && !v.nrefs &&
					    v.type != KRAY_WT_OBJECT && v.type != KRAY_WT_FD &&
					    v.type != KRAY_WT_REF;
			if (ran)
				*ran = (struct kc_fast_ran){ .ran = true,
							     .failed = r.m.n == 1 && inline_ok &&
								       v.type == KRAY_WT_ERROR,
							     .raised = !!(r.m.flags &
									  KRAY_RESULT_RAISED),
							     .ns = r.m.exec_ns };
			if (!inline_ok || r.m.n != 1 ||
			    sizeof(h) + sizeof(f) + h.len > KRAY_FAST_FRAME_MAX) {
				/* Too large, or holding refs: krayd keeps it for the driver.
				 * The round trip makes sure it has before the driver asks. */
				memcpy(res->data + res->off + offsetof(struct kray_frame_hdr, type),
				       &(uint16_t){ KRAY_MSG_FAST_STORE }, sizeof(uint16_t));
				kbuf_put(&k->out, res->data + res->off, kbuf_pending(res));
				if (k->out.nomem) {
					k->out.nomem = false;
					return -ENOMEM;
				}
				ret = kc_sync(k);
				if (ret)
					return ret;
				f.flags = KRAY_FAST_STORED;
				if (ran)
					*ran = (struct kc_fast_ran){ .ran = true,
								     .stored = true,
								     .ns = r.m.exec_ns };
			}
		}
	}
	off = WIRE_FRAME_OPEN(&b, KRAY_MSG_FAST_RESULT, 0, WIRE_FIXED(f));
	if (f.flags)
		kbuf_put(&b, &m, sizeof(m));
	else
		kbuf_put(&b, res->data + res->off + sizeof(h), h.len);
	if (wire_end(&b, off)) {
		kbuf_free(&b);
		return -ENOMEM;
	}
	ret = kc_ring_reply(k, b.data, b.len) ? 0 : fast_send(k, b.data, b.len);
	kbuf_free(&b);
	return ret;
}

int kc_fast_take(struct kray *k, struct kbuf *ret_body)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	int r;

	if (k->fast_state != 1)
		return 0;
	r = fast_next(k, false, &h, &body);
	if (r <= 0)
		return r;
	if (h.type == KRAY_MSG_FAST_EXEC && h.len > sizeof(struct kray_msg_fast))
		kbuf_put(ret_body, body + sizeof(struct kray_msg_fast),
			 h.len - sizeof(struct kray_msg_fast));
	if (ret_body->nomem) {
		/* Out of memory for the task: the driver takes the daemon path. */
		struct kray_msg_exec m = { 0 };

		ret_body->nomem = false;
		ret_body->len = 0;
		if (h.len >= sizeof(struct kray_msg_fast) + sizeof(m))
			memcpy(&m, body + sizeof(struct kray_msg_fast), sizeof(m));
		fast_consume(k, &h);
		r = kc_fast_reply(k, ret_body, &m.task, NULL);
		return r < 0 ? r : 1;
	}
	fast_consume(k, &h);
	return 1;
}

const struct kc_layer kc_fast_layer = {
	.name = "fast",
	.before_flush = fast_before_flush,
	.on_close = fast_close,
};
