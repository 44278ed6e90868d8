// SPDX-License-Identifier: Apache-2.0
/*
 * kray inside another program's event loop, as hiredis' async client: kray_get_async()
 * only queues a GET and remembers a callback; kray_process() reads what arrived on
 * kray_fd() without blocking, completes the gets it answers and writes what the socket
 * takes; kray_want_write() says when to wait for POLLOUT.  libkray never owns the loop.
 *
 * It is a layer on the connection (struct kc_layer): replies to its GETs that arrive while
 * a blocking call waits for its own reply are taken by the on_frame hook and completed at
 * the next kray_process(), so blocking and asynchronous calls mix on one handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

struct pending {
	struct pending *next;
	uint64_t req; /* the GET's request id; 0 once done */
	kray_ref ref;
	kray_result_fn *fn;
	void *arg;
	int status;
	kray_value val;
};

struct kc_async {
	struct pending *head, *tail; /* in submission order */
	size_t n, ndone;
};

static void done(struct kc_async *a, struct pending *p, int status)
{
	p->req = 0;
	p->status = status;
	a->ndone++;
}

/* A GET_REPLY for one of ours: takes the value in.  Returns 1 when it was ours. */
static int take_reply(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct kc_async *a = k->async;
	struct wire_get_reply rep;
	struct wire_value w;
	struct pending *p;
	int *fds;

	if (!a || h->type != KRAY_MSG_GET_REPLY || !h->req)
		return 0;
	for (p = a->head; p && p->req != h->req; p = p->next)
		;
	if (!p)
		return 0;
	if (wire_dec_get_reply(body, h->len, &rep) || (rep.status == 0 && rep.n != 1) ||
	    (unsigned)rep.nfds != KRAY_FRAME_NFDS(h->flags)) {
		k->broken = true;
		done(a, p, kc_fail(k, -EBADMSG, "malformed get reply from krayd"));
		return 1;
	}
	if (rep.status) {
		done(a, p, rep.status);
		return 1;
	}
	fds = kc_frame_fds(k, h);
	wire_rd_value(&rep.values, &w); /* validated by wire_dec_get_reply() */
	if (kc_take_value(k, &w, &fds, &p->val)) {
		done(a, p, -ENOMEM);
		return 1;
	}
	if (p->val.type == KRAY_ERROR) {
		done(a, p, -EREMOTEIO);
		return 1;
	}
	kc_cache_put(k, &p->ref, &p->val);
	done(a, p, 0);
	return 1;
}

/* The connection's frame observer: replies to our GETs met by a blocking wait. */
static int async_on_frame(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body)
{
	if (!take_reply(k, h, body))
		return 0;
	/* An actor's thread read it: the worker's loop runs the callback. */
	if (k->wake)
		k->wake(k);
	return 1;
}

static void async_close(struct kray *k)
{
	struct kc_async *a = k->async;

	if (!a)
		return;
	/* Callbacks that never ran do not run now: the handle is going away. */
	while (a->head) {
		struct pending *p = a->head;

		a->head = p->next;
		kray_value_clear(&p->val);
		free(p);
	}
	free(a);
	k->async = NULL;
}

const struct kc_layer kc_async_layer = {
	.name = "async",
	.on_frame = async_on_frame,
	.on_close = async_close,
};

KRAY_EXPORT int kray_get_async(struct kray *k, const kray_ref *ref, kray_result_fn *fn, void *arg)
{
	struct kray_msg_get m = { .timeout_ms = -1, .n = 1 };
	struct kc_async *a;
	struct pending *p;
	size_t off;

	if (!k || !ref || !fn)
		return k ? kc_fail(k, -EINVAL, "kray_get_async needs a ref and a callback") :
			   -EINVAL;
	m.uffd = kc_lazy_uffd(k);
	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!k->async && !(k->async = calloc(1, sizeof(*k->async))))
		return kc_fail(k, -ENOMEM, "out of memory");
	a = k->async;
	p = calloc(1, sizeof(*p));
	if (!p)
		return kc_fail(k, -ENOMEM, "out of memory");
	*p = (struct pending){ .ref = *ref, .fn = fn, .arg = arg };
	if (kc_cached(k, ref, &p->val)) {
		p->status = 0; /* here already: done at the next kray_process() */
		a->ndone++;
		if (k->wake) { /* or, in an actor sharing its connection, by the worker's loop */
			k->wake_self = true;
			k->wake(k);
			k->wake_self = false;
		}
	} else {
		p->req = ++k->next_req;
		off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_GET, p->req, WIRE_FIXED(m),
				      WIRE_RAW(ref, sizeof(*ref)));
		if (kc_end(k, off)) {
			free(p);
			return -ENOMEM;
		}
	}
	if (a->tail)
		a->tail->next = p;
	else
		a->head = p;
	a->tail = p;
	a->n++;
	return 0;
}

/* Fails every pending get with status (the connection is gone). */
static void fail_all(struct kc_async *a, int status)
{
	for (struct pending *p = a->head; p; p = p->next)
		if (p->req)
			done(a, p, status);
}

/* Runs the callbacks of the finished gets, in submission order.  Returns how many. */
static int run_done(struct kray *k)
{
	struct kc_async *a = k->async;
	struct pending **pp = &a->head, *p, *prev = NULL;
	struct pending *list = NULL, **tail = &list;
	int n = 0;

	/* Detach them first: a callback may queue more gets (or clear the handle's). */
	while ((p = *pp)) {
		if (p->req) {
			prev = p;
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = NULL;
		*tail = p;
		tail = &p->next;
		a->n--;
		a->ndone--;
	}
	a->tail = prev;
	while (list) {
		p = list;
		list = p->next;
		p->fn(k, p->ref, p->status, &p->val, p->arg);
		free(p);
		n++;
	}
	return n;
}

void kc_async_run(struct kray *k)
{
	if (k->async && k->async->ndone)
		run_done(k);
}

KRAY_EXPORT int kray_process(struct kray *k)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	int r = 0, ran;

	if (!k)
		return -EINVAL;
	/* Called when kray_fd() is readable (perhaps edge-triggered): read, whatever an
	 * earlier short read suggested (conn.c). */
	k->in_short = false;
	if (!k->broken)
		r = kc_flush_some(k);
	while (!r && !k->broken) {
		r = kc_next_frame(k, false, &h, &body);
		if (r <= 0)
			break;
		r = 0;
		if (take_reply(k, &h, body)) {
			kc_consume(k, &h);
			continue;
		}
		/* In a worker (a task using kray_get_async()): what its loop would take. */
		if (k->on_frame && kc_worker_frame(h.type)) {
			k->on_frame(k, &h, body);
			kc_consume(k, &h);
			continue;
		}
		if (h.type == KRAY_MSG_ERROR) {
			struct wire_text t;

			r = wire_dec_error(body, h.len, &t) ?
				    kc_fail(k, -EBADMSG, "malformed error frame from krayd") :
				    kc_fail(k, t.code < 0 ? t.code : -EPROTO,
					    "krayd refused a request: %.*s", (int)t.len, t.text);
		} else {
			r = kc_fail(k, -EPROTO, "unexpected frame type %u from krayd", h.type);
		}
		k->broken = true;
		kc_consume(k, &h);
	}
	if (!r && k->broken)
		r = kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (r < 0 && r != -ENOMEM && k->async)
		fail_all(k->async, r == -EPIPE || k->broken ? -EPIPE : r);
	ran = k->async && k->async->ndone ? run_done(k) : 0;
	return r < 0 ? r : ran;
}

KRAY_EXPORT int kray_want_write(const struct kray *k)
{
	return k && !k->broken && kbuf_pending(&k->out) ? 1 : 0;
}

KRAY_EXPORT size_t kray_pending(const struct kray *k)
{
	return k && k->async ? k->async->n : 0;
}

KRAY_EXPORT int kray_set_nonblocking(struct kray *k, int on)
{
	if (!k)
		return -EINVAL;
	k->nonblock = on != 0;
	return 0;
}
