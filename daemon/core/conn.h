/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: connections and the event loop (loop.c).
 *
 * Every socket krayd serves is a struct conn driven by the one io_uring loop: its frames
 * are parsed by the loop and handed to its kind (struct conn_kind); replies go to its
 * output buffer, flushed once per loop turn, with descriptors (SCM_RIGHTS) queued to ride
 * with their frames.  The loop also runs what registered with it: listeners, timers, the
 * turn hook and SIGCHLD.
 */
#ifndef KRAYD_CORE_CONN_H
#define KRAYD_CORE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../../common/buf.h"
#include "../../common/oidmap.h"
#include "../../common/wire.h"

#include "core/krayd.h"

enum conn_role {
	ROLE_NONE = 0,
	ROLE_DRIVER = KRAY_ROLE_DRIVER,
	ROLE_WORKER = KRAY_ROLE_WORKER,
	ROLE_METRICS = 100, /* an HTTP client: a Prometheus scrape or the dashboard (http.c) */
	ROLE_PEER_AUTH = 101, /* a TCP link to another node that has not proven the token */
	ROLE_PEER = 102, /* an authenticated link to another node (daemon/cluster/net.c) */
};

/*
 * What the loop does with a connection's events: each part that makes connections has one
 * (proto.c: clients and workers; metrics.c: Prometheus scrapes; cluster/net.c: node links).
 * frame: a whole frame arrived (the loop parses them, at most frame_max bytes of body);
 * returns 0, or conn_fail()'s code to refuse it and close the connection.  recv: bytes
 * arrived in c->in, unparsed (instead of frame).  sent: some output went.  spliced,
 * connected: a conn_splice(), conn_send_raw() or conn_connect() finished with res.
 * gone: it closed.
 * head: a frame whose header has passed the checks, before frame: avail bytes of its body
 * are in (all of it or less); the kind may have the rest of the body go straight to memory
 * of its own instead of c->in (a node link receiving an object's chunk into the object):
 * it takes the first n bytes (n <= avail), calls conn_sink() for the next ones and returns
 * n > 0; the loop then calls sunk once they are all in (the frame's bytes after the sink
 * are dropped).  0: the frame is handled whole as usual; < 0: conn_fail()'s code.
 * sinking: a receive into the sink brought part of it (c->sink_left bytes are still to
 * come).  All but frame/recv may be NULL.
 */
struct conn_kind {
	int (*frame)(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
	int (*head)(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body,
		    uint32_t avail);
	void (*sunk)(struct conn *c);
	void (*sinking)(struct conn *c);
	void (*recv)(struct conn *c);
	void (*sent)(struct conn *c);
	void (*spliced)(struct conn *c, int res);
	void (*connected)(struct conn *c, int res);
	void (*gone)(struct conn *c);
};

/* A mapping to let go of when its connection is freed (conn_unmap_at_free()). */
struct unmap_later {
	void *addr;
	size_t len;
	struct unmap_later *next;
};

/* Descriptors queued to go out with a connection's frames (SCM_RIGHTS), each owned by
 * the queue (a dup) and due with the frame at stream positions [start, end). */
struct fdq_ent {
	int fd;
	uint64_t start, end;
};

struct fdq {
	struct fdq_ent *e;
	unsigned head, n, cap;
};

struct conn {
	struct krayd *d;
	const struct conn_kind *kind;
	int fd;
	uint32_t frame_max; /* the largest frame body it may send (0: KRAY_FRAME_MAX) */
	uint32_t id; /* client id: the owner field of the oids this connection creates */
	enum conn_role role;
	uint32_t job; /* the job this connection's submissions belong to */
	uint32_t pid; /* drivers: the pid they said (for the cluster's job table) */
	uint64_t start_ms; /* drivers: when they connected (realtime) */
	struct kbuf in; /* received, not yet parsed */
	struct kbuf out; /* queued replies */
	struct kbuf sending; /* what the in-flight send is sending */
	struct oidmap refs; /* oid -> references this connection holds */
	struct oidmap pins; /* oid -> views of large objects handed to this connection */
	struct fdq fdq; /* fds for frames in `sending` and `out` */
	int frame_fds[KRAY_FDS_PER_MSG]; /* fds of the frame being built */
	unsigned frame_nfds;
	uint64_t sent; /* stream bytes sent so far */
	unsigned send_nfds; /* fds attached to the send in flight */
	struct msghdr msg; /* the send in flight */
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(int) * KRAY_FDS_PER_MSG)];
		struct cmsghdr align;
	} cmsg;
	struct worker *worker; /* ROLE_WORKER */
	uint32_t spawned; /* the id of the worker krayd started on this socketpair; 0: an
			   * accepted connection (a worker hello is refused on it) */
	struct link *link; /* ROLE_PEER_AUTH, ROLE_PEER */
	struct lz_conn *lazy; /* its userfaultfd, taken for lazy restores (store_lazy.c) */
	bool lazy_get; /* the get being started or answered named it (KRAY_LAZY=0: none) */
	bool lazy_refused; /* it named one that krayd could not take: eager restores */
	uint16_t fast_slot; /* drivers: its fast connection's slot + 1 (bpf_fast.c); 0 none */
	int ops; /* io_uring operations in flight on fd */
	bool recv_armed, send_armed, closed, dirty;
	uint8_t splicing; /* node links: splices and raw sends in flight (xfer.c); sends wait */
	bool close_when_sent; /* metrics: close once the reply is out */
	const char *why; /* why its last frame was refused (conn_fail()), for the ERROR frame */
	int64_t deadline; /* closed then (CLOCK_MONOTONIC ns) unless cleared; 0: none */
	const char *deadline_why; /* what it was late for */
	size_t acct; /* its buffers' bytes as counted in d->loop.buf_bytes */
	uint32_t rchunk; /* the room each receive asks for (loop.c arm_recv()) */
	uint32_t rnext; /* the next receive into c->in asks for at most this (0: rchunk) */
	uint32_t rasked; /* what the receive in flight asked for */
	uint8_t *sink; /* conn_sink(): the stream's next sink_left bytes go here */
	uint64_t sink_left;
	uint32_t sink_first; /* the next receive into it asks for at most this (0: no limit) */
	uint32_t skip; /* then this many bytes (the rest of the frame) are dropped */
	uint32_t sink_head; /* the bytes of the frame before its sink (header included) */
	bool recv_sink; /* the receive in flight writes to sink */
	struct unmap_later *unmap; /* conn_unmap_at_free() */
	struct conn *next, *prev; /* d->conns */
	struct conn *dirty_next; /* d->dirty list: has output to send */
};

/* loop.c */
int loop_init(struct krayd *d);
int loop_run(struct krayd *d);
void loop_fini(struct krayd *d);
void conn_flush_later(struct conn *c);
/* Adds fd (dup'ed) to the frame being built in c->out.  Returns 0 or -errno (-EMFILE,
 * or -E2BIG past KRAY_FDS_PER_MSG). */
int conn_frame_fd(struct conn *c, int fd);
/* The same with fd itself, which the frame then owns (on an error the caller still does). */
int conn_frame_fd_take(struct conn *c, int fd);
/* Ends the frame begun at out offset off: its length, its fd count, and its fds queued. */
void conn_end_frame(struct conn *c, size_t off);
void conn_close(struct conn *c, const char *why);
/* Refuses the frame being handled: notes why (a static string) for the ERROR frame that
 * answers it, and returns code (a negative errno) for the handler to return. */
int conn_fail(struct conn *c, const char *why, int code);
/* A connection for fd (taken over), of that kind, with its first receive armed. */
struct conn *conn_new(struct krayd *d, int fd, enum conn_role role, const struct conn_kind *kind);
/* The same, without a receive armed (conn_connect() and conn_start_recv() do). */
struct conn *conn_new_idle(struct krayd *d, int fd, enum conn_role role,
			   const struct conn_kind *kind);
/* Accepts connections on listening socket fd as they come: accepted(d, new fd).  what
 * names it in logs.  Returns 0 or -ENOMEM.  The caller closes fd after loop_fini(). */
int loop_listen(struct krayd *d, int fd, void (*accepted)(struct krayd *d, int fd),
		const char *what);
/* Has the loop wake by next(d) (CLOCK_MONOTONIC ns; -1: no deadline) and then call run
 * (may be NULL).  Returns 0 or -ENOSPC past LOOP_TIMERS. */
int loop_timer(struct krayd *d, int64_t (*next)(struct krayd *d),
	       void (*run)(struct krayd *d, int64_t now));
/* Polls fd (not the loop's: a library's socket) for whoever reads and writes it:
 * ready(arg, events) with the POLLIN/POLLOUT (and POLLERR/POLLHUP) that came, of those
 * asked for with loop_watch_set() (0: none for now).  loop_watch_free() may be called from
 * ready(); it does not close fd.  NULL: out of memory. */
struct loop_watch *loop_watch_new(struct krayd *d, int fd, void (*ready)(void *arg, unsigned ev),
				  void *arg);
void loop_watch_set(struct loop_watch *w, unsigned events);
void loop_watch_free(struct loop_watch *w);

/* Reads eventfd fd on the loop and calls fn(d) each time a thread writes it (one such fd).
 * Returns 0 or -EBUSY. */
int loop_on_event(struct krayd *d, int fd, void (*fn)(struct krayd *d));
/* turn runs after each batch of completions (the scheduler); child on SIGCHLD. */
static inline void loop_on_turn(struct krayd *d, void (*turn)(struct krayd *d))
{
	d->loop.turn = turn;
}
static inline void loop_on_child(struct krayd *d, void (*child)(struct krayd *d))
{
	d->loop.child = child;
}
/* Closes c at `at` (CLOCK_MONOTONIC ns; 0: no deadline) unless changed before, logging
 * that it was late for why (a static string).  The loop sets one itself for a client's
 * HELLO and a frame begun; kinds (metrics) may set their own. */
void conn_deadline(struct conn *c, int64_t at, const char *why);
/* Keeps c's memory (not the connection: it may close meanwhile) until conn_put(), for a
 * reply that waits on something other than the loop's I/O (a create waiting for room). */
void conn_hold(struct conn *c);
void conn_put(struct conn *c);
/* Arms c's send if it has output (node links call it after queueing). */
void conn_kick(struct conn *c);

/* Connects c's socket to sa (kept alive by the caller) with a timeout; completes with
 * c->kind->connected(). */
void conn_connect(struct conn *c, const struct sockaddr *sa, socklen_t len, int timeout_ms);
void conn_start_recv(struct conn *c);
/* Nothing queued or in flight on c's output: the next bytes may come from a splice or a
 * raw send. */
bool conn_idle_out(const struct conn *c);
/* From a kind's head(): the frame's next len bytes go to dst, which stays valid until
 * sunk() or, if c closes first, until conn_unmap_at_free() lets it go (a receive into it
 * may be in flight).  first (0: none): the first receive into it asks for at most this
 * much, for sinking() to see the first bytes before a large receive has all come. */
void conn_sink(struct conn *c, void *dst, uint64_t len, uint32_t first);
/* Unmaps [addr, addr + len) once no operation of c is in flight (at once, or when c is
 * freed): for memory that a receive into a sink or a raw send may still be using while c
 * closes.  (A sink in it is the caller's to drop: conn_sink(c, NULL, 0, 0).) */
void conn_unmap_at_free(struct conn *c, void *addr, size_t len);
/* Sends len bytes at p as the stream's next bytes, outside the frame buffers (an object's
 * chunk from a mapping of its memfd); completes with c->kind->spliced(), as a splice into
 * the socket does.  p must stay mapped until then (conn_unmap_at_free()). */
void conn_send_raw(struct conn *c, const void *p, unsigned len);
/* Splices len bytes from fd_in (at off_in; -1: a pipe) to fd_out (a pipe, or c's socket);
 * completes with c->kind->spliced(). */
void conn_splice(struct conn *c, int fd_in, int64_t off_in, int fd_out, unsigned len);
/* Both stages through pipe p at once: len bytes of fd_in (at off_in) into p[1], linked to
 * p[0] -> fd_out, in one submission: two completions, in order (the second -ECANCELED
 * when the first moved less than len). */
void conn_splice_through(struct conn *c, int fd_in, int64_t off_in, const int p[2], int fd_out,
			 unsigned len);

#endif
