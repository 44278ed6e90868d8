// SPDX-License-Identifier: Apache-2.0
/*
 * libkray's connection to krayd: a blocking unix stream socket with an output buffer
 * (submits are batched until something waits) and an input buffer parsed into frames.
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

int kc_flush(struct kray *k)
{
	kc_fast_before_flush(k);
	while (kbuf_pending(&k->out)) {
		ssize_t n = send(k->fd, k->out.data + k->out.off, kbuf_pending(&k->out),
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
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

/* Moves the queued descriptors to the front of a new array of cap entries. */
static void fdq_relayout(struct rfdq *q, unsigned cap)
{
	int *f = malloc(cap * sizeof(*f));

	if (!f)
		abort();
	for (unsigned i = 0; i < q->n; i++)
		f[i] = q->fd[(q->head + i) % q->cap];
	free(q->fd);
	q->fd = f;
	q->head = 0;
	q->cap = cap;
}

static void fdq_push(struct rfdq *q, int fd)
{
	if (q->n == q->cap)
		fdq_relayout(q, q->cap ? q->cap * 2 : 16);
	q->fd[(q->head + q->n++) % q->cap] = fd;
}

/* recv() that also collects the descriptors krayd sends (SCM_RIGHTS) into k->fds. */
static ssize_t recv_fds(struct kray *k)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * KRAY_FDS_PER_MSG)];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov = { k->in.data + k->in.len, k->in.cap - k->in.len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cmsg.buf,
			      .msg_controllen = sizeof(cmsg.buf) };
	ssize_t n = recvmsg(k->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n <= 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			fdq_push(&k->fds, ((int *)CMSG_DATA(c))[i]);
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
		fdq_relayout(q, q->cap);
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
		kbuf_reserve(&k->in, avail >= sizeof(h) ? sizeof(h) + h.len - avail : 65536);
		n = recv_fds(k);
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

int kc_wait_range(struct kray *k, uint16_t type, uint64_t lo, uint64_t hi,
		  struct kray_frame_hdr *ret_h, const uint8_t **ret_body)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	int r = kc_flush(k);

	while (!r) {
		r = kc_next_frame(k, true, &h, &body);
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
			r = kc_fail(k, t.code < 0 ? t.code : -EPROTO, "krayd refused a request: %.*s",
				    (int)t.len, t.text);
			kc_consume(k, &h);
			return r;
		}
		if (k->on_frame && (h.type == KRAY_MSG_EXEC || h.type == KRAY_MSG_JOB ||
				    h.type == KRAY_MSG_ACTOR_STOP)) {
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
	struct kray_msg_hello h = { .role = role, .pid = (uint32_t)getpid(),
				    .worker_id = worker_id };
	struct kray_msg_hello_ok ok;
	struct kray_frame_hdr rh;
	const uint8_t *body;
	size_t off;
	int r;

	h.path_len = code_path ? (uint32_t)strlen(code_path) : 0;
	off = wire_begin(&k->out, KRAY_MSG_HELLO, 0);
	kbuf_put(&k->out, &h, sizeof(h));
	wire_put_padded(&k->out, code_path, h.path_len);
	wire_end(&k->out, off);
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
	kc_kmod_open(k);
	return 0;
}

void kc_close(struct kray *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	kc_fast_close(k);
	kc_kmod_close(k);
	kc_objects_fini(k);
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
