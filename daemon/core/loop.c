// SPDX-License-Identifier: Apache-2.0
/*
 * The event loop: one io_uring that does all of krayd's socket I/O.
 *
 * Each connection has at most one receive and one send in flight.  Received bytes are
 * parsed into frames and handed to the connection's kind (struct conn_kind: clients and
 * workers, Prometheus scrapes, node links); replies are appended to the connection's
 * output buffer and marked dirty, and all dirty connections are flushed once per loop
 * turn, so a burst of work costs one send per connection rather than one per frame.
 * Signals arrive through a signalfd read on the same ring; the timers registered with
 * loop_timer() set the wait timeout, and the turn hook (the scheduler) runs after each
 * batch of completions.  The loop names no module: whoever listens, connects or keeps
 * time registers with it.  user_data is the connection (or listener) pointer with the
 * operation in the low bits.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/log.h"

/* Node links (daemon/cluster/net.c) use OP_CONNECT and OP_SPLICE (objects' chunks spliced
 * from their memfd, or sent from a mapping of it: xfer.c); user_data 0 is a linked timeout
 * whose completion needs nothing.
 * Connections and listeners come from calloc(), 16-byte aligned: four low bits are free. */
enum op {
	OP_ACCEPT = 1,
	OP_RECV = 2,
	OP_SEND = 3,
	OP_SIGNAL = 4,
	OP_POLL = 5, /* a loop_watch's poll */
	OP_EVENT = 6, /* the eventfd of krayd's spill thread (loop_on_event()) */
	OP_CONNECT = 7,
	OP_SPLICE = 8 /* conn_splice(), conn_send_raw() */
};

struct listener {
	struct krayd *d;
	int fd;
	bool paused; /* at the fd limit: re-armed by limits_run() */
	void (*accepted)(struct krayd *d, int fd);
	const char *what;
	struct listener *next;
};

/* An fd someone else reads and writes (a library's socket: the GCS's Redis client) that
 * the loop polls for them: at most one poll in flight, re-armed after each completion with
 * what is wanted then.  A poll that lacks a newly wanted event is cancelled and re-armed.
 * A watch freed with its poll in flight waits on the dead list for the completion (or
 * loop_fini()). */
struct loop_watch {
	struct krayd *d;
	int fd;
	unsigned want, armed;
	bool inflight, cancelling, busy, dead;
	void (*ready)(void *arg, unsigned events);
	void *arg;
	struct loop_watch *next_dead;
};
#define OP_MASK 15ull
#define RECV_CHUNK (256u << 10)
#define SINK_RECV_MAX (4u << 20) /* the most one receive into a sink asks for */
/* Before HELLO or the token's proof a connection gets a small receive buffer: it grows
 * with what arrives, never with what a header claims. */
#define RECV_SMALL 4096u
#define BUF_KEEP (1u << 20) /* an emptied buffer larger than this is given back */
#define SWEEP_NS 100000000ll /* deadlines are checked this often while there are some */
#define ACCEPT_PAUSE_NS 100000000ll /* accepts wait this long after EMFILE/ENFILE */
#define TRIM_BYTES (64ull << 20) /* malloc_trim() once this much buffer space was freed */

static const char late_hello[] = "did not say HELLO in time (hello-timeout-ms)";
static const char late_frame[] = "did not finish a frame in time (frame-timeout-ms)";

static struct signalfd_siginfo sig_info;

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct io_uring_sqe *get_sqe(struct krayd *d)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(d->ring);

	if (!sqe) {
		io_uring_submit(d->ring);
		sqe = io_uring_get_sqe(d->ring);
	}
	if (!sqe)
		abort(); /* cannot happen: a submit always frees the whole SQ */
	return sqe;
}

static void arm_accept(struct listener *l)
{
	struct io_uring_sqe *sqe = get_sqe(l->d);

	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)l | OP_ACCEPT);
}

int loop_listen(struct krayd *d, int fd, void (*accepted)(struct krayd *d, int fd),
		const char *what)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	*l = (struct listener){
		.d = d, .fd = fd, .accepted = accepted, .what = what, .next = d->loop.listeners
	};
	d->loop.listeners = l;
	arm_accept(l);
	return 0;
}

int loop_timer(struct krayd *d, int64_t (*next)(struct krayd *d),
	       void (*run)(struct krayd *d, int64_t now))
{
	if (d->loop.ntimers == LOOP_TIMERS)
		return -ENOSPC;
	d->loop.timers[d->loop.ntimers].next = next;
	d->loop.timers[d->loop.ntimers++].run = run;
	return 0;
}

static void watch_arm(struct loop_watch *w)
{
	struct io_uring_sqe *sqe;

	if (w->inflight || w->dead || !w->want)
		return;
	sqe = get_sqe(w->d);
	io_uring_prep_poll_add(sqe, w->fd, w->want);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)w | OP_POLL);
	w->inflight = true;
	w->armed = w->want;
}

static void watch_cancel(struct loop_watch *w)
{
	struct io_uring_sqe *sqe;

	if (!w->inflight || w->cancelling)
		return;
	sqe = get_sqe(w->d);
	io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)w | OP_POLL);
	io_uring_sqe_set_data64(sqe, 0);
	w->cancelling = true;
}

struct loop_watch *loop_watch_new(struct krayd *d, int fd, void (*ready)(void *arg, unsigned ev),
				  void *arg)
{
	struct loop_watch *w = calloc(1, sizeof(*w));

	if (w)
		*w = (struct loop_watch){ .d = d, .fd = fd, .ready = ready, .arg = arg };
	return w;
}

void loop_watch_set(struct loop_watch *w, unsigned events)
{
	w->want = events;
	if (!w->inflight)
		watch_arm(w);
	else if (events & ~w->armed)
		watch_cancel(w); /* re-armed with the new mask when the cancel completes */
}

void loop_watch_free(struct loop_watch *w)
{
	if (!w)
		return;
	w->dead = true;
	w->want = 0;
	if (w->busy)
		return; /* freed when its callback returns */
	if (!w->inflight || !w->d->ring) {
		free(w);
		return;
	}
	watch_cancel(w);
	w->next_dead = w->d->loop.dead_watches;
	w->d->loop.dead_watches = w;
}

static void unlink_dead(struct loop_watch *w)
{
	for (struct loop_watch **p = &w->d->loop.dead_watches; *p; p = &(*p)->next_dead)
		if (*p == w) {
			*p = w->next_dead;
			break;
		}
}

static void on_poll(struct loop_watch *w, int res)
{
	unsigned ev;

	w->inflight = false;
	w->cancelling = false;
	if (w->dead) {
		unlink_dead(w);
		free(w);
		return;
	}
	if (res == -ECANCELED) {
		watch_arm(w);
		return;
	}
	/* An error on the poll itself: let the owner's read and write find it. */
	ev = res < 0 ? w->want : ((unsigned)res & (w->want | POLLERR | POLLHUP));
	if (ev) {
		w->busy = true;
		w->ready(w->arg, ev);
		w->busy = false;
		if (w->dead) {
			free(w);
			return;
		}
	}
	if (res >= 0)
		watch_arm(w);
	else
		log_warn_ratelimited("poll on fd %d: %s; no longer watched", w->fd, strerror(-res));
}

/* A thread of krayd's (store_io.c) says work is done by writing an eventfd: read here. */
static void arm_event(struct krayd *d)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	io_uring_prep_read(sqe, d->loop.event_fd, &d->loop.event_val, sizeof(d->loop.event_val), 0);
	io_uring_sqe_set_data64(sqe, OP_EVENT);
}

int loop_on_event(struct krayd *d, int fd, void (*fn)(struct krayd *d))
{
	if (d->loop.event)
		return -EBUSY;
	d->loop.event_fd = fd;
	d->loop.event = fn;
	arm_event(d);
	return 0;
}

static void arm_signal(struct krayd *d)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	io_uring_prep_read(sqe, d->signal_fd, &sig_info, sizeof(sig_info), 0);
	io_uring_sqe_set_data64(sqe, OP_SIGNAL);
}

static bool trusted(const struct conn *c)
{
	return c->role == ROLE_WORKER || c->role == ROLE_PEER;
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe;
	bool hs = c->role == ROLE_NONE || c->role == ROLE_PEER_AUTH || c->role == ROLE_METRICS;

	if (c->recv_armed || c->closed)
		return;
	if (c->sink_left) {
		/* Straight into the kind's memory: what one receive takes is what the socket
		 * holds (at most SINK_RECV_MAX), so a turn of the loop stays short. */
		c->rasked = c->sink_left < SINK_RECV_MAX ? (uint32_t)c->sink_left : SINK_RECV_MAX;
		if (c->sink_first && c->sink_first < c->rasked)
			c->rasked = c->sink_first; /* (the kind wants the first bytes early) */
		c->sink_first = 0;
		sqe = get_sqe(c->d);
		io_uring_prep_recv(sqe, c->fd, c->sink, c->rasked, 0);
		io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
		c->recv_armed = c->recv_sink = true;
		c->ops++;
		return;
	}
	kbuf_compact(&c->in);
	if (!kbuf_pending(&c->in) && c->in.cap > BUF_KEEP) {
		c->d->loop.freed_bytes += c->in.cap;
		kbuf_free(&c->in); /* a large frame went: so does its room */
	}
	/* The room asked for grows from RECV_SMALL to RECV_CHUNK as receives fill it (after
	 * the handshake): an idle client keeps a few KiB, a busy one gets the large chunk. */
	if (!c->rchunk || hs)
		c->rchunk = RECV_SMALL;
	if (kbuf_try_reserve(&c->in, c->rchunk)) {
		c->d->loop.closed_nomem++;
		log_warn_ratelimited("connection %u closed: no memory for what it sends", c->id);
		conn_close(c, "out of memory");
		return;
	}
	c->rasked = (uint32_t)(c->in.cap - c->in.len);
	if (c->rnext && c->rnext < c->rasked)
		c->rasked = c->rnext; /* just the next frame's head: its body may go to a sink */
	c->rnext = 0;
	sqe = get_sqe(c->d);
	io_uring_prep_recv(sqe, c->fd, c->in.data + c->in.len, c->rasked, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
	c->recv_armed = true;
	c->recv_sink = false;
	c->ops++;
}

/* Stream position of byte `off` of c->out. */
static uint64_t out_pos(const struct conn *c, size_t off)
{
	return c->sent + kbuf_pending(&c->sending) + (off - c->out.off);
}

int conn_frame_fd_take(struct conn *c, int fd)
{
	if (c->frame_nfds == KRAY_FDS_PER_MSG)
		return -E2BIG;
	c->frame_fds[c->frame_nfds++] = fd;
	return 0;
}

int conn_frame_fd(struct conn *c, int fd)
{
	int dup_fd;

	if (c->frame_nfds == KRAY_FDS_PER_MSG)
		return -E2BIG;
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	return conn_frame_fd_take(c, dup_fd);
}

void conn_end_frame(struct conn *c, size_t off)
{
	struct fdq *q = &c->fdq;
	uint64_t start = out_pos(c, off), end;
	uint32_t flags = c->frame_nfds;

	wire_end(&c->out, off);
	end = out_pos(c, c->out.len);
	memcpy(c->out.data + off + offsetof(struct kray_frame_hdr, flags), &flags, sizeof(flags));
	if (q->n + c->frame_nfds > q->cap) {
		unsigned cap = q->cap ? q->cap : 16;
		struct fdq_ent *e;

		while (cap < q->n + c->frame_nfds)
			cap *= 2;
		e = malloc(cap * sizeof(*e));
		if (!e)
			abort();
		for (unsigned i = 0; i < q->n; i++)
			e[i] = q->e[(q->head + i) % q->cap];
		free(q->e);
		q->e = e;
		q->head = 0;
		q->cap = cap;
	}
	for (unsigned i = 0; i < c->frame_nfds; i++)
		q->e[(q->head + q->n++) % q->cap] =
			(struct fdq_ent){ .fd = c->frame_fds[i], .start = start, .end = end };
	c->frame_nfds = 0;
}

static void fdq_pop(struct fdq *q, unsigned n)
{
	while (n--) {
		close(q->e[q->head].fd);
		q->head = (q->head + 1) % q->cap;
		q->n--;
	}
}

/*
 * Sends what is queued.  Descriptors ride with the send that contains the end of their
 * frame (or an earlier one), at most KRAY_FDS_PER_MSG per send: when more are due, the
 * send stops at the start of the frame whose descriptor does not fit.
 */
static void arm_send(struct conn *c)
{
	struct io_uring_sqe *sqe;
	struct fdq *q = &c->fdq;
	size_t len;
	unsigned nf = 0;
	struct kbuf t;

	if (c->send_armed || c->closed || c->splicing)
		return; /* (a splice writes the stream's next bytes: frames wait for it) */
	if (!kbuf_pending(&c->sending)) {
		if (!kbuf_pending(&c->out))
			return;
		t = c->sending;
		c->sending = c->out;
		c->out = t;
		c->out.len = c->out.off = 0;
	}
	len = kbuf_pending(&c->sending);
	while (nf < q->n) {
		const struct fdq_ent *e = &q->e[(q->head + nf) % q->cap];

		if (e->start >= c->sent + len)
			break;
		if (nf == KRAY_FDS_PER_MSG) {
			len = e->start - c->sent;
			break;
		}
		nf++;
	}
	c->iov = (struct iovec){ c->sending.data + c->sending.off, len };
	c->msg = (struct msghdr){ .msg_iov = &c->iov, .msg_iovlen = 1 };
	if (nf) {
		struct cmsghdr *cm;

		c->msg.msg_control = c->cmsg.buf;
		c->msg.msg_controllen = CMSG_SPACE(nf * sizeof(int));
		cm = CMSG_FIRSTHDR(&c->msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nf * sizeof(int));
		for (unsigned i = 0; i < nf; i++)
			((int *)CMSG_DATA(cm))[i] = q->e[(q->head + i) % q->cap].fd;
	}
	c->send_nfds = nf;
	sqe = get_sqe(c->d);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
	c->send_armed = true;
	c->ops++;
}

void conn_flush_later(struct conn *c)
{
	if (c->dirty || c->closed)
		return;
	c->dirty = true;
	c->dirty_next = c->d->dirty;
	c->d->dirty = c;
}

static void conn_free(struct conn *c)
{
	struct krayd *d = c->d;

	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d->loop.nconns--;
	d->loop.buf_bytes -= c->acct;
	d->loop.freed_bytes += c->in.cap + c->out.cap + c->sending.cap;
	close(c->fd);
	while (c->unmap) {
		struct unmap_later *u = c->unmap;

		c->unmap = u->next;
		munmap(u->addr, u->len);
		free(u);
	}
	kbuf_free(&c->in);
	kbuf_free(&c->out);
	kbuf_free(&c->sending);
	oidmap_free(&c->refs);
	oidmap_free(&c->pins);
	fdq_pop(&c->fdq, c->fdq.n);
	free(c->fdq.e);
	for (unsigned i = 0; i < c->frame_nfds; i++)
		close(c->frame_fds[i]);
	free(c);
	/* Thousands of connections gone (a flood of half-open links): their memory goes back
	 * to the system, not only to malloc's free lists. */
	if (d->loop.freed_bytes > TRIM_BYTES) {
		d->loop.freed_bytes = 0;
		malloc_trim(0);
	}
}

void conn_deadline(struct conn *c, int64_t at, const char *why)
{
	if (c->closed && at)
		return;
	if (!c->deadline && at)
		c->d->loop.ndeadlines++;
	else if (c->deadline && !at)
		c->d->loop.ndeadlines--;
	c->deadline = at;
	c->deadline_why = at ? why : NULL;
}

/* The bytes c's buffers hold (received and not handled, queued and not sent): their
 * room beyond that is mostly untouched pages, and an idle client holds none. */
static size_t held(const struct conn *c)
{
	return kbuf_pending(&c->in) + kbuf_pending(&c->out) + kbuf_pending(&c->sending);
}

/* Counts c's buffers in d->loop.buf_bytes. */
static void account(struct conn *c)
{
	size_t n = held(c);

	c->d->loop.buf_bytes += n - c->acct;
	c->acct = n;
}

/* Replies queued that the client has not taken: past client-output-limit it goes. */
static bool output_over(struct conn *c)
{
	uint64_t lim = c->d->cfg.client_output_limit;

	if (!lim || trusted(c) || kbuf_pending(&c->out) + kbuf_pending(&c->sending) <= lim)
		return false;
	c->d->loop.closed_output++;
	log_warn_ratelimited("client %u disconnected: %zu bytes of replies not read "
			     "(client-output-limit)",
			     c->id, kbuf_pending(&c->out) + kbuf_pending(&c->sending));
	conn_close(c, "output limit");
	return true;
}

/* Past client-buffers-max, the connection whose buffers hold the most goes (workers and
 * proven node links are krayd's own and stay). */
static void buffers_check(struct krayd *d)
{
	while (d->cfg.client_buffers_max && d->loop.buf_bytes > d->cfg.client_buffers_max) {
		struct conn *worst = NULL;

		for (struct conn *c = d->conns; c; c = c->next)
			if (!c->closed && !trusted(c) && (!worst || c->acct > worst->acct))
				worst = c;
		if (!worst)
			return;
		d->loop.closed_greedy++;
		log_warn_ratelimited("client %u disconnected: its %zu buffer bytes pass "
				     "client-buffers-max",
				     worst->id, worst->acct);
		conn_close(worst, "client-buffers-max");
	}
}

void conn_close(struct conn *c, const char *why)
{
	if (c->closed)
		return;
	log_debug("connection %u closed: %s", c->id, why);
	c->closed = true;
	conn_deadline(c, 0, NULL);
	/* Its buffers no longer count against client-buffers-max (freed with it). */
	c->d->loop.buf_bytes -= c->acct;
	c->acct = 0;
	if (c->kind->gone)
		c->kind->gone(c);
	/* A last ERROR frame to a misbehaving peer: best effort, not waited for. */
	if (!c->send_armed && !kbuf_pending(&c->sending) && !c->fdq.n && kbuf_pending(&c->out) &&
	    send(c->fd, c->out.data + c->out.off, kbuf_pending(&c->out),
		 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("final send: %s", strerror(errno));
	/* Wake the operations in flight.  The connection is freed by flush_dirty() or when
	 * they have come back, never here: callers may still be looking at it. */
	shutdown(c->fd, SHUT_RDWR);
	if (!c->dirty) {
		c->dirty = true;
		c->dirty_next = c->d->dirty;
		c->d->dirty = c;
	}
}

struct conn *conn_new_idle(struct krayd *d, int fd, enum conn_role role,
			   const struct conn_kind *kind)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return NULL;
	}
	c->d = d;
	c->fd = fd;
	c->role = role;
	c->kind = kind;
	c->id = ++d->next_client;
	d->loop.nconns++;
	if (role == ROLE_NONE)
		conn_deadline(c, now_ns() + (int64_t)d->cfg.hello_timeout_ms * 1000000, late_hello);
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	return c;
}

struct conn *conn_new(struct krayd *d, int fd, enum conn_role role, const struct conn_kind *kind)
{
	struct conn *c = conn_new_idle(d, fd, role, kind);

	if (c)
		arm_recv(c);
	return c;
}

int conn_fail(struct conn *c, const char *why, int code)
{
	c->why = why;
	return code;
}

void conn_hold(struct conn *c)
{
	c->ops++;
}

void conn_put(struct conn *c)
{
	/* Freed by flush_dirty(), never here: the caller may still look at it. */
	if (--c->ops == 0 && c->closed && !c->dirty) {
		c->dirty = true;
		c->dirty_next = c->d->dirty;
		c->d->dirty = c;
	}
}

void conn_kick(struct conn *c)
{
	arm_send(c);
}

/* Starts a connect on c's socket to sa (kept alive by the caller until it completes), with
 * a timeout so that an unreachable address fails rather than hangs.  The timeout is read
 * when the SQEs are submitted, so one static timespec serves every connect (they all use
 * node-timeout-ms). */
void conn_connect(struct conn *c, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	static struct __kernel_timespec ts;
	struct io_uring_sqe *sqe = get_sqe(c->d);

	ts = (struct __kernel_timespec){ timeout_ms / 1000, (timeout_ms % 1000) * 1000000ll };
	io_uring_prep_connect(sqe, c->fd, sa, len);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_CONNECT);
	sqe->flags |= IOSQE_IO_LINK;
	c->ops++;
	sqe = get_sqe(c->d);
	io_uring_prep_link_timeout(sqe, &ts, 0);
	io_uring_sqe_set_data64(sqe, 0);
}

bool conn_idle_out(const struct conn *c)
{
	return !c->send_armed && !c->splicing && !kbuf_pending(&c->sending) &&
	       !kbuf_pending(&c->out);
}

void conn_splice(struct conn *c, int fd_in, int64_t off_in, int fd_out, unsigned len)
{
	struct io_uring_sqe *sqe = get_sqe(c->d);

	io_uring_prep_splice(sqe, fd_in, off_in, fd_out, -1, len, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SPLICE);
	c->splicing++;
	c->ops++;
}

void conn_splice_through(struct conn *c, int fd_in, int64_t off_in, const int p[2], int fd_out,
			 unsigned len)
{
	struct io_uring_sqe *sqe;

	/* Both SQEs in the same submission: make room for two first. */
	if (io_uring_sq_space_left(c->d->ring) < 2)
		io_uring_submit(c->d->ring);
	sqe = get_sqe(c->d);
	io_uring_prep_splice(sqe, fd_in, off_in, p[1], -1, len, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SPLICE);
	sqe->flags |= IOSQE_IO_LINK;
	conn_splice(c, p[0], -1, fd_out, len);
	c->splicing++;
	c->ops++;
}

void conn_send_raw(struct conn *c, const void *p, unsigned len)
{
	struct io_uring_sqe *sqe = get_sqe(c->d);

	/* MSG_WAITALL: io_uring retries a short send itself until all of it went. */
	io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL | MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SPLICE);
	c->splicing++;
	c->ops++;
}

void conn_sink(struct conn *c, void *dst, uint64_t len, uint32_t first)
{
	c->sink = dst;
	c->sink_left = len;
	c->sink_first = first;
}

void conn_unmap_at_free(struct conn *c, void *addr, size_t len)
{
	struct unmap_later *u;

	if (!c->ops) {
		munmap(addr, len);
		return;
	}
	u = malloc(sizeof(*u));
	if (!u)
		abort();
	*u = (struct unmap_later){ addr, len, c->unmap };
	c->unmap = u;
}

void conn_start_recv(struct conn *c)
{
	arm_recv(c);
}

/* Moves what c->in holds of the sink's bytes into it; once it is full, tells the kind.
 * Returns true while it waits for more. */
static bool sink_fill(struct conn *c)
{
	size_t n = kbuf_pending(&c->in);

	if (n > c->sink_left)
		n = (size_t)c->sink_left;
	memcpy(c->sink, c->in.data + c->in.off, n);
	kbuf_consume(&c->in, n);
	c->sink += n;
	c->sink_left -= n;
	if (c->sink_left) {
		if (n && c->kind->sinking)
			c->kind->sinking(c); /* (what came with the frame's head) */
		return true;
	}
	c->sink = NULL;
	c->kind->sunk(c);
	return false;
}

/* Answers a refused frame with an ERROR frame and closes c: the stream cannot be trusted
 * past it. */
static void refuse_frame(struct conn *c, const struct kray_frame_hdr *h, int r)
{
	c->d->st.frames_rejected++;
	wire_put_error_frame(&c->out, h->req, r, c->why ? c->why : "malformed frame");
	conn_flush_later(c);
	conn_close(c, c->why ? c->why : "bad frame body");
}

/* Parses every complete frame in c->in.  A malformed frame gets an ERROR reply and closes
 * the connection: the stream cannot be trusted past it.  A frame whose body the kind sinks
 * (conn_kind.head) counts when its head is taken.  Returns how many it handled. */
static unsigned parse_frames(struct conn *c)
{
	unsigned n = 0;

	while (!c->closed) {
		struct kray_frame_hdr h;
		size_t avail = kbuf_pending(&c->in);
		int r;

		if (c->skip) {
			size_t k = avail < c->skip ? avail : c->skip;

			kbuf_consume(&c->in, k);
			c->skip -= (uint32_t)k;
			if (c->skip)
				break;
			avail -= k;
		}
		if (avail < sizeof(h))
			break;
		memcpy(&h, c->in.data + c->in.off, sizeof(h));
		/* A link that has not proven the token gets no room for a large frame. */
		r = wire_check_hdr(&h, c->frame_max ? c->frame_max : KRAY_FRAME_MAX);
		if (r) {
			c->d->st.frames_rejected++;
			wire_put_error_frame(&c->out, h.req, r,
					     r == -EMSGSIZE ? "frame too large" :
					     r == -EPROTO   ? "bad magic or protocol version" :
							      "unknown frame type");
			conn_flush_later(c);
			conn_close(c, "bad frame header");
			return n;
		}
		if (c->kind->head) {
			size_t body = avail - sizeof(h) < h.len ? avail - sizeof(h) : h.len;

			c->why = NULL;
			r = c->kind->head(c, &h, c->in.data + c->in.off + sizeof(h),
					  (uint32_t)body);
			if (r < 0 || (r > 0 && ((size_t)r > body || !c->sink ||
						c->sink_left > h.len - (uint32_t)r))) {
				refuse_frame(c, &h, r < 0 ? r : -EPROTO);
				return n;
			}
			if (r > 0) {
				kbuf_consume(&c->in, sizeof(h) + (size_t)r);
				c->skip = h.len - (uint32_t)r - (uint32_t)c->sink_left;
				c->sink_head = (uint32_t)(sizeof(h) + (size_t)r);
				n++;
				if (sink_fill(c))
					break; /* the next receives go to the sink */
				continue;
			}
		}
		if (avail < sizeof(h) + h.len)
			break; /* the rest comes as it arrives: arm_recv() grows c->in with it */
		c->why = NULL;
		r = c->kind->frame(c, &h, c->in.data + c->in.off + sizeof(h));
		kbuf_consume(&c->in, sizeof(h) + h.len);
		n++;
		if (r) {
			refuse_frame(c, &h, r);
			return n;
		}
		if (output_over(c))
			return n;
	}
	return n;
}

/* A frame begun has frame-timeout-ms to arrive whole (the clock starts again at each
 * frame that completes: a busy stream always has one begun); a client has
 * hello-timeout-ms to say HELLO.  Workers and proven node links are krayd's own: none. */
static void frame_deadline(struct conn *c, unsigned parsed)
{
	if (c->closed || trusted(c))
		return;
	if (kbuf_pending(&c->in)) {
		if (!c->deadline || (parsed && c->role != ROLE_NONE))
			conn_deadline(c, now_ns() + (int64_t)c->d->cfg.frame_timeout_ms * 1000000,
				      late_frame);
	} else if (c->deadline_why == late_frame ||
		   (c->deadline_why == late_hello && c->role != ROLE_NONE)) {
		conn_deadline(c, 0, NULL);
	}
}

static void on_recv(struct conn *c, int res)
{
	bool to_sink = c->recv_sink;

	c->recv_armed = c->recv_sink = false;
	if (c->closed)
		return;
	if (res <= 0) {
		conn_close(c, res == 0 ? "end of stream" : strerror(-res));
		return;
	}
	if (to_sink) {
		c->sink += res;
		c->sink_left -= (uint64_t)res;
		if (!c->sink_left) {
			/* The next frame may be another one to sink: take just its head. */
			c->rnext = c->skip + c->sink_head;
			c->sink = NULL;
			c->kind->sunk(c);
		} else if (c->kind->sinking) {
			c->kind->sinking(c);
		}
		arm_recv(c);
		return;
	}
	if ((uint32_t)res == c->rasked && c->rasked == c->in.cap - c->in.len &&
	    c->rchunk < RECV_CHUNK)
		c->rchunk *= 2; /* it filled the room: more next time */
	c->in.len += (size_t)res;
	if (c->kind->recv) {
		c->kind->recv(c);
	} else {
		frame_deadline(c, parse_frames(c));
	}
	arm_recv(c);
	if (!c->closed) {
		account(c);
		buffers_check(c->d);
	}
}

static void on_send(struct conn *c, int res)
{
	c->send_armed = false;
	if (c->closed)
		return;
	if (res < 0) {
		conn_close(c, strerror(-res));
		return;
	}
	/* The descriptors went with the first byte, whatever part of the data did. */
	if (res > 0)
		fdq_pop(&c->fdq, c->send_nfds);
	c->send_nfds = 0;
	c->sent += (uint64_t)res;
	kbuf_consume(&c->sending, (size_t)res);
	if (!kbuf_pending(&c->sending) && c->sending.cap > BUF_KEEP) {
		c->d->loop.freed_bytes += c->sending.cap;
		kbuf_free(&c->sending); /* a large reply went: so does its room */
	}
	if (c->kind->sent)
		c->kind->sent(c); /* node links: the next chunks of objects streaming out */
	arm_send(c);
	if (c->close_when_sent && !c->send_armed)
		conn_close(c, "reply sent");
}

static void on_signal(struct krayd *d, int res)
{
	if (res != sizeof(sig_info)) {
		log_err("signalfd read: %s", res < 0 ? strerror(-res) : "short read");
		d->stopping = true;
		return;
	}
	switch (sig_info.ssi_signo) {
	case SIGCHLD:
		if (d->loop.child)
			d->loop.child(d);
		break;
	case SIGHUP:
		if (config_reload(&d->cfg) == 0) {
			log_level = d->cfg.log_level;
			log_info("reloaded %s",
				 d->cfg.config[0] ? d->cfg.config : "(no config file)");
		} else {
			log_warn("reload of %s failed; settings unchanged", d->cfg.config);
		}
		break;
	case SIGTERM:
	case SIGINT:
		log_info("signal %d: shutting down", sig_info.ssi_signo);
		d->stopping = true;
		break;
	default:
		break;
	}
	if (!d->stopping)
		arm_signal(d);
}

static void refuse_client(struct krayd *d, int fd);

static void handle_cqe(struct krayd *d, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct conn *c = (struct conn *)(uintptr_t)(ud & ~OP_MASK);

	switch (ud & OP_MASK) {
	case 0:
		return; /* a connect's linked timeout */
	case OP_ACCEPT: {
		struct listener *l = (struct listener *)(uintptr_t)(ud & ~OP_MASK);

		if (cqe->res >= 0 && l->fd == d->listen_fd &&
		    d->loop.nconns >= d->loop.max_clients) {
			refuse_client(d, cqe->res);
		} else if (cqe->res >= 0) {
			l->accepted(d, cqe->res);
		} else if (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOMEM ||
			   cqe->res == -ENOBUFS) {
			/* Out of descriptors: retrying at once would spin.  Wait a while; the
			 * clients wait in the backlog meanwhile. */
			log_warn_ratelimited("accept (%s): %s; accepting again in 100 ms", l->what,
					     strerror(-cqe->res));
			d->loop.accept_pauses++;
			if (cqe->flags & IORING_CQE_F_MORE) {
				struct io_uring_sqe *sqe = get_sqe(d);

				io_uring_prep_cancel64(sqe, ud, 0);
				io_uring_sqe_set_data64(sqe, 0);
			}
			if (!l->paused) {
				l->paused = true;
				d->loop.accept_paused = now_ns() + ACCEPT_PAUSE_NS;
			}
			return;
		} else if (cqe->res != -EINVAL && cqe->res != -ECANCELED) {
			log_warn_ratelimited("accept (%s): %s", l->what, strerror(-cqe->res));
		}
		if (!(cqe->flags & IORING_CQE_F_MORE) && !d->stopping && l->fd >= 0 && !l->paused)
			arm_accept(l);
		return;
	}
	case OP_CONNECT:
		c->ops--;
		c->kind->connected(c, cqe->res);
		break;
	case OP_SPLICE:
		c->ops--;
		c->splicing--;
		if (!c->closed)
			c->kind->spliced(c, cqe->res);
		break;
	case OP_SIGNAL:
		on_signal(d, cqe->res);
		return;
	case OP_POLL:
		on_poll((struct loop_watch *)(uintptr_t)(ud & ~OP_MASK), cqe->res);
		return;
	case OP_EVENT:
		if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN) {
			log_err("event fd read: %s", strerror(-cqe->res));
			return; /* (its owner's work is then finished when it stops) */
		}
		d->loop.event(d);
		if (!d->stopping)
			arm_event(d);
		return;
	case OP_RECV:
		c->ops--;
		on_recv(c, cqe->res);
		break;
	case OP_SEND:
		c->ops--;
		on_send(c, cqe->res);
		break;
	}
	if (c->closed && !c->ops && !c->dirty)
		conn_free(c);
}

static void flush_dirty(struct krayd *d)
{
	bool grew = false;

	while (d->dirty) {
		struct conn *c = d->dirty;

		d->dirty = c->dirty_next;
		c->dirty = false;
		if (!c->closed && output_over(c))
			continue; /* (conn_close() queued it again: freed when next taken) */
		if (c->closed) {
			if (!c->ops)
				conn_free(c);
			continue;
		}
		arm_send(c);
		if (c->acct != held(c)) {
			grew |= held(c) > c->acct;
			account(c);
		}
	}
	if (grew)
		buffers_check(d);
}

/* A client past max-clients: an ERROR frame (best effort) and the end. */
static void refuse_client(struct krayd *d, int fd)
{
	struct kbuf b = { 0 };

	d->loop.refused_clients++;
	log_warn_ratelimited("client refused: %u connections already (max-clients)",
			     d->loop.nconns);
	wire_put_error_frame(&b, 0, -EUSERS, "too many clients (max-clients)");
	if (send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refusal: %s", strerror(errno));
	kbuf_free(&b);
	close(fd);
}

/* The limits' timer: connections past their deadline are closed, paused accepts resume. */
static int64_t limits_next(struct krayd *d)
{
	int64_t t = -1;

	if (d->loop.ndeadlines) {
		if (!d->loop.next_sweep)
			d->loop.next_sweep = now_ns() + SWEEP_NS;
		t = d->loop.next_sweep;
	}
	if (d->loop.accept_paused && (t < 0 || d->loop.accept_paused < t))
		t = d->loop.accept_paused;
	return t;
}

static void limits_run(struct krayd *d, int64_t now)
{
	if (d->loop.accept_paused && now >= d->loop.accept_paused) {
		d->loop.accept_paused = 0;
		for (struct listener *l = d->loop.listeners; l; l = l->next)
			if (l->paused) {
				l->paused = false;
				if (!d->stopping && l->fd >= 0)
					arm_accept(l);
			}
	}
	if (!d->loop.ndeadlines || now < d->loop.next_sweep)
		return;
	d->loop.next_sweep = 0;
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->deadline && now >= c->deadline && !c->closed) {
			d->loop.closed_slow++;
			log_warn_ratelimited("connection %u closed: %s", c->id, c->deadline_why);
			conn_close(c, c->deadline_why);
		}
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A stale socket from a crashed krayd is replaced; a live one is not. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 512)) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int loop_init(struct krayd *d)
{
	/* One thread submits and reaps, so completions' task work can wait until it asks
	 * for events (DEFER_TASKRUN): no interruptions while it handles a batch. */
	struct io_uring_params p = { .flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
					      IORING_SETUP_DEFER_TASKRUN };
	sigset_t mask;
	int r;

	d->ring = calloc(1, sizeof(*d->ring));
	if (!d->ring)
		return -ENOMEM;
	r = io_uring_queue_init_params(256, d->ring, &p);
	if (r == -EINVAL) {
		p.flags = 0; /* an older kernel: the flags are optimisations only */
		r = io_uring_queue_init_params(256, d->ring, &p);
	}
	if (r) {
		log_err("io_uring: %s", strerror(-r));
		free(d->ring);
		d->ring = NULL;
		return r;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);
	d->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (d->signal_fd < 0) {
		r = -errno;
		log_err("signalfd: %s", strerror(-r));
		goto err_ring;
	}
	d->listen_fd = listen_unix(d->cfg.socket);
	if (d->listen_fd < 0) {
		r = d->listen_fd;
		log_err("%s: %s", d->cfg.socket,
			r == -EADDRINUSE ? "another krayd is serving this socket" : strerror(-r));
		goto err_signal;
	}
	if (d->cfg.max_clients) {
		d->loop.max_clients = (unsigned)d->cfg.max_clients;
	} else {
		/* The fd limit less a reserve for workers, objects, logs and node links. */
		struct rlimit rl = { 1024, 1024 };
		rlim_t n, reserve;

		getrlimit(RLIMIT_NOFILE, &rl);
		n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576 ? 1048576 : rl.rlim_cur;
		reserve = n / 8 < 64 ? 64 : n / 8;
		d->loop.max_clients = n > reserve + 16 ? (unsigned)(n - reserve) : 16;
	}
	loop_timer(d, limits_next, limits_run);
	arm_signal(d);
	return 0;

err_signal:
	close(d->signal_fd);
err_ring:
	io_uring_queue_exit(d->ring);
	free(d->ring);
	d->ring = NULL;
	return r;
}

/*
 * How long the loop went without waiting for events: from the end of one wait to the start
 * of the next (the handlers, the timers, the turn hook and the flush of what they wrote).
 * A client's request that arrives meanwhile waits at least that long, so the longest of
 * these is the loop's worst stall (kray_loop_stall_max_seconds in the metrics).
 */
static void count_turn(struct krayd *d, int64_t woke)
{
	int64_t busy = now_ns() - woke;

	d->loop.turns++;
	if (busy > d->loop.stall_max_ns)
		d->loop.stall_max_ns = busy;
}

int loop_run(struct krayd *d)
{
	int64_t woke = 0;

	while (!d->stopping) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts, *tsp = NULL;
		unsigned head, seen = 0;
		int64_t deadline = -1;
		int r;

		for (unsigned i = 0; i < d->loop.ntimers; i++) {
			int64_t t = d->loop.timers[i].next(d);

			if (t >= 0 && (deadline < 0 || t < deadline))
				deadline = t;
		}
		flush_dirty(d);
		if (deadline >= 0) {
			int64_t wait = deadline - now_ns();

			if (wait < 0)
				wait = 0;
			ts.tv_sec = wait / 1000000000;
			ts.tv_nsec = wait % 1000000000;
			tsp = &ts;
		}
		if (woke)
			count_turn(d, woke);
		r = io_uring_submit_and_wait_timeout(d->ring, &cqe, 1, tsp, NULL);
		woke = now_ns();
		if (r < 0 && r != -ETIME && r != -EINTR) {
			log_err("io_uring wait: %s", strerror(-r));
			return r;
		}
		io_uring_for_each_cqe (d->ring, head, cqe) {
			d->loop.now = seen ? now_ns() : woke;
			handle_cqe(d, cqe);
			seen++;
		}
		io_uring_cq_advance(d->ring, seen);
		d->loop.now = now_ns();
		if (deadline >= 0) {
			int64_t now = d->loop.now;

			for (unsigned i = 0; i < d->loop.ntimers; i++)
				if (d->loop.timers[i].run)
					d->loop.timers[i].run(d, now);
		}
		if (d->loop.turn)
			d->loop.turn(d);
	}
	return 0;
}

void loop_fini(struct krayd *d)
{
	while (d->conns) {
		struct conn *c = d->conns;

		if (!c->closed)
			conn_close(c, "krayd stopping");
		c->ops = 0;
		c->dirty = false;
		conn_free(c);
	}
	d->dirty = NULL;
	while (d->loop.listeners) {
		struct listener *l = d->loop.listeners;

		d->loop.listeners = l->next;
		free(l);
	}
	while (d->loop.dead_watches) {
		struct loop_watch *w = d->loop.dead_watches;

		d->loop.dead_watches = w->next_dead;
		free(w);
	}
	close(d->listen_fd);
	unlink(d->cfg.socket);
	close(d->signal_fd);
	io_uring_queue_exit(d->ring);
	free(d->ring);
	d->ring = NULL;
}
