// SPDX-License-Identifier: Apache-2.0
/*
 * libkray's connection to krayd: a unix stream socket with an output buffer (submits are
 * batched until something waits) and an input buffer parsed into frames.  It is the
 * bottom layer: the fast path, /dev/kray and the object cache register hooks on it
 * (struct kc_layer) and it knows nothing else of them.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

int kc_fail(struct kray *k, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->err, sizeof(k->err), fmt, ap);
	va_end(ap);
	return code;
}

void kc_layer_add(struct kray *k, const struct kc_layer *l)
{
	if (k->nlayers < KC_LAYERS_MAX)
		k->layers[k->nlayers++] = l;
}

void kc_hold(struct kray *k, const kray_ref *refs, size_t n)
{
	for (unsigned i = 0; i < k->nlayers; i++)
		if (k->layers[i]->on_hold)
			k->layers[i]->on_hold(k, refs, n);
}

int kc_layers_take(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body)
{
	for (unsigned i = 0; i < k->nlayers; i++)
		if (k->layers[i]->on_frame && k->layers[i]->on_frame(k, h, body))
			return 1;
	return 0;
}

int kc_end(struct kray *k, size_t off)
{
	if (wire_end(&k->out, off))
		return kc_fail(k, -ENOMEM, "out of memory queuing a request");
	return 0;
}

/* Writes what it can of k->out; with block, all of it.  0 or -errno. */
static int flush(struct kray *k, bool block)
{
	for (unsigned i = 0; i < k->nlayers; i++) {
		int r = k->layers[i]->before_flush ? k->layers[i]->before_flush(k) : 0;

		if (r)
			return r;
	}
	while (kbuf_pending(&k->out)) {
		ssize_t n = send(k->fd, k->out.data + k->out.off, kbuf_pending(&k->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = k->fd, .events = POLLOUT };

			if (!block)
				return 0;
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return kc_fail(k, -errno, "poll: %s", strerror(errno));
			continue;
		}
		if (n <= 0) {
			k->broken = true;
			k->out.len = k->out.off = 0;
			return kc_fail(k, -EPIPE, "lost the connection to krayd: %s",
				       n < 0 ? strerror(errno) : "closed");
		}
		kbuf_consume(&k->out, (size_t)n);
	}
	return 0;
}

int kc_out_insert(struct kray *k, const void *frames, size_t n)
{
	size_t at = 0;
	struct kbuf b = { 0 };

	/* k->out holds whole frames from its start (never compacted; emptied once all is
	 * sent): the first boundary at or after out.off ends the frame being sent. */
	while (at < k->out.off) {
		struct kray_frame_hdr h;

		memcpy(&h, k->out.data + at, sizeof(h));
		at += sizeof(h) + h.len;
	}
	if (!kbuf_reserve(&b, k->out.len + n))
		return -ENOMEM;
	kbuf_put(&b, k->out.data, at);
	kbuf_put(&b, frames, n);
	if (at < k->out.len)
		kbuf_put(&b, k->out.data + at, k->out.len - at);
	b.off = k->out.off;
	kbuf_free(&k->out);
	k->out = b;
	return 0;
}

int kc_flush(struct kray *k)
{
	return flush(k, true);
}

int kc_flush_some(struct kray *k)
{
	return flush(k, false);
}

int kc_sync(struct kray *k)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	uint64_t req = ++k->next_req;
	size_t off = wire_frame_open(&k->out, KRAY_MSG_STATUS, req, NULL, 0);
	int r = kc_end(k, off);

	if (!r)
		r = kc_wait(k, KRAY_MSG_STATUS_REPLY, req, &h, &body);
	if (!r)
		kc_consume(k, &h);
	return r;
}

/* Moves the queued descriptors to the front of a new array of cap entries.  0 or -ENOMEM
 * (q unchanged). */
static int fdq_grow(struct rfdq *q, unsigned cap)
{
	int *f = malloc(cap * sizeof(*f));

	if (!f)
		return -ENOMEM;
	for (unsigned i = 0; i < q->n; i++)
		f[i] = q->fd[(q->head + i) % q->cap];
	free(q->fd);
	q->fd = f;
	q->head = 0;
	q->cap = cap;
	return 0;
}

static void reverse(int *a, unsigned n)
{
	for (unsigned i = 0; i < n / 2; i++) {
		int t = a[i];

		a[i] = a[n - 1 - i];
		a[n - 1 - i] = t;
	}
}

/* Moves the queued descriptors to the front of the array, in place (no allocation). */
static void fdq_rotate(struct rfdq *q)
{
	reverse(q->fd, q->head);
	reverse(q->fd + q->head, q->cap - q->head);
	reverse(q->fd, q->cap);
	q->head = 0;
}

static int fdq_push(struct rfdq *q, int fd)
{
	if (q->n == q->cap && fdq_grow(q, q->cap ? q->cap * 2 : 16))
		return -ENOMEM;
	q->fd[(q->head + q->n++) % q->cap] = fd;
	return 0;
}

/* recv() that also collects the descriptors krayd sends (SCM_RIGHTS) into k->fds. */
static ssize_t recv_fds(struct kray *k)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * KRAY_FDS_PER_MSG)];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov = { k->in.data + k->in.len, k->in.cap - k->in.len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cmsg.buf,
			      .msg_controllen = sizeof(cmsg.buf) };
	ssize_t n = recvmsg(k->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	bool nomem = false;

	if (n <= 0)
		return n;
	k->in_short = (size_t)n < iov.iov_len;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			if (fdq_push(&k->fds, ((int *)CMSG_DATA(c))[i])) {
				/* A descriptor lost: the stream cannot be trusted either. */
				close(((int *)CMSG_DATA(c))[i]);
				nomem = true;
			}
	}
	if (nomem) {
		k->broken = true;
		errno = ENOMEM;
		return -1;
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		k->broken = true;
		errno = EMSGSIZE; /* descriptors were lost: the stream cannot be trusted */
		return -1;
	}
	return n;
}

int *kc_frame_fds(struct kray *k, const struct kray_frame_hdr *h)
{
	struct rfdq *q = &k->fds;
	unsigned n = KRAY_FRAME_NFDS(h->flags);

	if (!n)
		return NULL;
	if (q->n < n)
		return NULL;
	/* Make the frame's descriptors contiguous. */
	if (q->head + n > q->cap)
		fdq_rotate(q);
	return &q->fd[q->head];
}

int kc_next_frame(struct kray *k, bool block, struct kray_frame_hdr *ret_h,
		  const uint8_t **ret_body)
{
	for (;;) {
		size_t avail = kbuf_pending(&k->in);
		struct kray_frame_hdr h;
		ssize_t n;

		if (avail >= sizeof(h)) {
			memcpy(&h, k->in.data + k->in.off, sizeof(h));
			if (wire_check_hdr(&h, KRAY_FRAME_MAX)) {
				k->broken = true;
				return kc_fail(k, -EBADMSG, "malformed frame from krayd");
			}
			if (avail >= sizeof(h) + h.len) {
				if (k->fds.n < KRAY_FRAME_NFDS(h.flags)) {
					k->broken = true;
					return kc_fail(k, -EBADMSG,
						       "a frame from krayd lacks its descriptors");
				}
				*ret_h = h;
				*ret_body = k->in.data + k->in.off + sizeof(h);
				return 1;
			}
		}
		if (k->broken)
			return kc_fail(k, -EPIPE, "the connection to krayd is broken");
		kbuf_compact(&k->in);
		if (!kbuf_reserve(&k->in, avail >= sizeof(h) ? sizeof(h) + h.len - avail : 65536)) {
			k->in.nomem = false; /* nothing lost: a later call may try again */
			return kc_fail(k, -ENOMEM, "out of memory receiving from krayd");
		}
		if (k->in_short && (block || k->ws)) {
			/*
			 * A read now would most likely find nothing: a blocking caller goes
			 * straight to poll(), which sees anything that came meanwhile; the
			 * worker's loop, which polls or looks again before long, is told
			 * nothing came, and keeps the hint for its next wait (it clears it
			 * when it polls or looks on a timer: worker.c).  One system call per
			 * wake-up saved.  Any other caller that asks without blocking reads:
			 * it may know more was sent.
			 */
			if (block)
				k->in_short = false;
			n = -1;
			errno = EAGAIN;
		} else {
			n = recv_fds(k);
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!block)
				return 0;
			/*
			 * Sleep in poll(), not in recv(): a reader blocked in recv() on a unix
			 * socket is woken each time krayd consumes what this side sent (the
			 * write-space wakeup does not filter by event), which costs a context
			 * switch per request; poll() waits for POLLIN only.
			 */
			struct pollfd p = { .fd = k->fd, .events = POLLIN };

			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return kc_fail(k, -errno, "poll: %s", strerror(errno));
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOMEM)
			return kc_fail(k, -ENOMEM,
				       "out of memory receiving descriptors from krayd");
		if (n <= 0) {
			k->broken = true;
			return kc_fail(k, -EPIPE, "lost the connection to krayd: %s",
				       n < 0 ? strerror(errno) : "krayd closed it");
		}
		k->in.len += (size_t)n;
	}
}

void kc_consume(struct kray *k, const struct kray_frame_hdr *h)
{
	struct rfdq *q = &k->fds;

	for (unsigned i = KRAY_FRAME_NFDS(h->flags); i && q->n; i--) {
		if (q->fd[q->head] >= 0)
			close(q->fd[q->head]);
		q->head = (q->head + 1) % q->cap;
		q->n--;
	}
	kbuf_consume(&k->in, sizeof(*h) + h->len);
}

int kc_wait(struct kray *k, uint16_t type, uint64_t req, struct kray_frame_hdr *ret_h,
	    const uint8_t **ret_body)
{
	return kc_wait_range(k, type, req, req, ret_h, ret_body);
}

static int wait_range(struct kray *k, uint16_t type, uint64_t lo, uint64_t hi,
		      struct kray_frame_hdr *ret_h, const uint8_t **ret_body);

int kc_wait_range(struct kray *k, uint16_t type, uint64_t lo, uint64_t hi,
		  struct kray_frame_hdr *ret_h, const uint8_t **ret_body)
{
	int r = wait_range(k, type, lo, hi, ret_h, ret_body);

	/* An actor's thread may have read frames (EXECs, async replies) for the worker's
	 * loop, or left some in the buffer: it looks. */
	if (k->wake)
		k->wake(k);
	return r;
}

static int wait_range(struct kray *k, uint16_t type, uint64_t lo, uint64_t hi,
		      struct kray_frame_hdr *ret_h, const uint8_t **ret_body)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	int r = kc_flush(k);

	while (!r) {
		r = kc_next_frame(k, true, &h, &body);
		if (r == -ENOMEM)
			k->broken = true; /* the reply awaited would arrive unasked */
		if (r < 0)
			return r;
		if (h.type == type && h.req >= lo && h.req <= hi) {
			*ret_h = h;
			*ret_body = body;
			return 0;
		}
		if (h.type == KRAY_MSG_ERROR) {
			struct wire_text t;

			k->broken = true;
			if (wire_dec_error(body, h.len, &t))
				return kc_fail(k, -EBADMSG, "malformed error frame from krayd");
			r = kc_fail(k, t.code < 0 ? t.code : -EPROTO,
				    "krayd refused a request: %.*s", (int)t.len, t.text);
			kc_consume(k, &h);
			return r;
		}
		if (kc_layers_take(k, &h, body)) {
			kc_consume(k, &h);
			r = 0;
			continue;
		}
		if (k->on_frame && kc_worker_frame(h.type)) {
			k->on_frame(k, &h, body);
			kc_consume(k, &h);
			r = kc_flush(k);
			continue;
		}
		kc_consume(k, &h);
		k->broken = true;
		return kc_fail(k, -EPROTO, "unexpected frame type %u from krayd", h.type);
	}
	return r;
}

int kc_connect(struct kray *k, const char *path, uint32_t role, uint32_t worker_id,
	       const char *code_path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return kc_fail(k, -ENAMETOOLONG, "socket path too long: %s", path);
	if (code_path && strlen(code_path) > KRAY_PATH_MAX)
		return kc_fail(k, -ENAMETOOLONG, "code path longer than %d bytes", KRAY_PATH_MAX);
	strcpy(sa.sun_path, path);
	k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k->fd < 0)
		return kc_fail(k, -errno, "socket: %s", strerror(errno));
	if (connect(k->fd, (struct sockaddr *)&sa, sizeof(sa)))
		return kc_fail(k, -errno, "cannot connect to krayd at %s: %s", path,
			       strerror(errno));
	return kc_hello(k, role, worker_id, code_path);
}

int kc_hello(struct kray *k, uint32_t role, uint32_t worker_id, const char *code_path)
{
	struct kray_msg_hello h = { .role = role,
				    .pid = (uint32_t)getpid(),
				    .worker_id = worker_id };
	struct kray_msg_hello_ok ok;
	struct kray_frame_hdr rh;
	const uint8_t *body;
	size_t off;
	int r;

	h.path_len = code_path ? (uint32_t)strlen(code_path) : 0;
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_HELLO, 0, WIRE_FIXED(h),
			      WIRE_PADDED(code_path, h.path_len));
	if ((r = kc_end(k, off)))
		return r;
	r = kc_wait(k, KRAY_MSG_HELLO_OK, 0, &rh, &body);
	if (r)
		return r;
	r = wire_dec_fixed(body, rh.len, &ok, sizeof(ok));
	kc_consume(k, &rh);
	if (r)
		return kc_fail(k, -EBADMSG, "malformed hello reply from krayd");
	k->node = ok.node;
	k->client = ok.client;
	k->job = ok.job;
	k->inline_max = ok.inline_max;
	for (unsigned i = 0; i < k->nlayers; i++)
		if (k->layers[i]->on_hello)
			k->layers[i]->on_hello(k);
	return 0;
}

void kc_close(struct kray *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	for (unsigned i = 0; i < k->nlayers; i++)
		if (k->layers[i]->on_close)
			k->layers[i]->on_close(k);
	while (k->fds.n) {
		close(k->fds.fd[k->fds.head]);
		k->fds.head = (k->fds.head + 1) % k->fds.cap;
		k->fds.n--;
	}
	free(k->fds.fd);
	k->fds = (struct rfdq){ 0 };
	kbuf_free(&k->out);
	kbuf_free(&k->in);
}
