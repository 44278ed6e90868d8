// SPDX-License-Identifier: Apache-2.0
/*
 * The Prometheus endpoint: a TCP listener (off unless `metrics = HOST:PORT` is set; use a
 * loopback address unless the network is trusted) served by the same io_uring loop.
 * `GET /metrics` (or `GET /`) gets the text exposition format (version 0.0.4) of krayd's
 * counters, another method 405 and another path 404, and the connection closes.  A request
 * has frame-timeout-ms to arrive and be answered; at most METRICS_CONNS connections at once
 * (more get 503).  No HTTP parsing beyond the request line and the end of the head.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/store.h"
#include "core/metrics.h"
#include "core/log.h"

#define METRICS_CONNS 64

static unsigned nscrapes; /* open metrics connections */

static int metrics_listen(const char *spec)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	int fd, r, one = 1;

	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host) || !colon[1])
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:9090 */
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = 0;
	}
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
		r = -errno;
		close(fd);
		goto out;
	}
	r = fd;
out:
	freeaddrinfo(ai);
	return r;
}

static void metric(struct kbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help,
			 name, type, name, (unsigned long long)v);

	kbuf_put(b, line, (size_t)n);
}

void metrics_render(struct krayd *d, struct kbuf *b)
{
	const struct kray_wire_stats *s = &d->st;
	uint64_t busy = 0, blocked = 0;

	for (struct worker *w = d->workers; w; w = w->next) {
		if (w->blocked)
			blocked++;
		else if (w->inflight)
			busy++;
	}
#define C(n, h, v) metric(b, "kray_" n, "counter", h, v)
#define G(n, h, v) metric(b, "kray_" n, "gauge", h, v)
	C("tasks_submitted_total", "Tasks submitted to this node.", s->tasks_submitted);
	C("tasks_finished_total", "Tasks that returned their values.", s->tasks_finished);
	C("tasks_failed_total", "Tasks that ended in an error.", s->tasks_failed);
	C("tasks_retried_total", "Task attempts repeated after a worker died.", s->tasks_retried);
	C("tasks_handed_back_total",
	  "Pipelined tasks a worker blocked in a get handed back unstarted.", s->tasks_handed_back);
	G("tasks_queued", "Tasks ready to run, waiting for a worker.", s->tasks_queued);
	G("tasks_waiting", "Tasks waiting for argument objects.", s->tasks_waiting);
	G("drivers", "Connected driver processes.", s->drivers);
	G("workers", "Worker processes.", d->nworkers);
	G("workers_busy", "Workers running a task.", busy);
	G("workers_blocked", "Workers blocked in a get (their CPU slot given back).", blocked);
	C("workers_started_total", "Worker processes started.", s->workers_started);
	C("workers_died_total", "Workers that died unexpectedly.", s->workers_died);
	G("objects", "Objects in the store, pending ones included.", s->objects);
	G("object_inline_bytes", "Bytes of small (inline) objects.", s->object_bytes);
	G("store_bytes", "Bytes of large objects in memory.", s->store_bytes);
	G("store_capacity_bytes", "Memory for large objects.", d->cfg.store_size);
	G("objects_pinned", "Large objects mapped by some process.", s->objects_pinned);
	G("objects_spilled", "Objects on disk now.", s->objects_spilled);
	G("spilled_bytes", "Bytes on disk now.", s->bytes_spilled);
	C("spilled_bytes_total", "Bytes ever written to disk.", s->spilled_total);
	C("restored_bytes_total", "Bytes ever read back from disk.", s->restored_total);
	C("objects_freed_total", "Objects freed because nothing referenced them.",
	  s->evicted_total);
	G("pool_bytes", "Pre-faulted memory ready for new objects.", pool_bytes(d->pool));
	C("frames_rejected_total", "Malformed frames refused.", s->frames_rejected);
	C("tasks_nesting_failed_total",
	  "Tasks failed because nested tasks went deeper than the workers allow.", d->nest_failed);
	G("connections", "Open connections (clients, workers, node links, scrapes).",
	  d->loop.nconns);
	G("connection_buffer_bytes", "Memory of all connections' buffers.", d->loop.buf_bytes);
	C("clients_refused_total", "Connections refused past max-clients.",
	  d->loop.refused_clients);
	C("clients_closed_slow_total",
	  "Connections closed past hello-timeout-ms or frame-timeout-ms.", d->loop.closed_slow);
	C("clients_closed_output_total", "Clients disconnected past client-output-limit.",
	  d->loop.closed_output);
	C("clients_closed_buffers_total", "Clients disconnected past client-buffers-max.",
	  d->loop.closed_greedy);
	C("clients_closed_nomem_total", "Connections closed for want of memory.",
	  d->loop.closed_nomem);
	C("accept_pauses_total", "Accepts paused at the descriptor limit (EMFILE/ENFILE).",
	  d->loop.accept_pauses);
#undef C
#undef G
	ext_render_metrics(d, b); /* the BPF scheduler metrics, when krayd runs them */
}

/* Does the request line (at p, n bytes) start with "METHOD PATH" and a space or end? */
static bool is(const char *p, size_t n, const char *what)
{
	size_t len = strlen(what);

	return n > len && !memcmp(p, what, len) &&
	       (p[len] == ' ' || p[len] == '\r' || p[len] == '\n');
}

static void reply(struct conn *c, const char *status, const char *extra, const char *text)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.0 %s\r\n%sContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s",
			 status, extra, strlen(text), text);

	kbuf_put(&c->out, head, (size_t)n);
}

static void on_recv(struct conn *c)
{
	struct kbuf body = { 0 };
	const char *p = (const char *)c->in.data + c->in.off;
	size_t len = kbuf_pending(&c->in);
	char head[160];
	int n;

	if (c->close_when_sent)
		return; /* answered: what else it sends is ignored */
	/* Answer once the request head is complete (or absurdly long). */
	if (!memmem(p, len, "\r\n\r\n", 4) && !memmem(p, len, "\n\n", 2) && len < 8192)
		return;
	c->close_when_sent = true;
	if (!is(p, len, "GET /metrics") && !is(p, len, "GET /")) {
		if (len < 4 || memcmp(p, "GET ", 4))
			reply(c, "405 Method Not Allowed", "Allow: GET\r\n", "only GET\n");
		else
			reply(c, "404 Not Found", "", "only /metrics\n");
		c->in.off = c->in.len = 0;
		conn_flush_later(c);
		return;
	}
	metrics_render(c->d, &body);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		     body.len);
	kbuf_put(&c->out, head, (size_t)n);
	kbuf_put(&c->out, body.data, body.len);
	kbuf_free(&body);
	c->in.off = c->in.len = 0;
	conn_flush_later(c);
}

static void gone(struct conn *c)
{
	(void)c;
	nscrapes--;
}

static const struct conn_kind scrape = { .recv = on_recv, .gone = gone };

static void accepted(struct krayd *d, int fd)
{
	static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";
	struct conn *c;

	if (nscrapes >= METRICS_CONNS) {
		log_warn_ratelimited("metrics: %u connections already: one refused", nscrapes);
		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("metrics refusal: %s", strerror(errno));
		close(fd);
		return;
	}
	nscrapes++; /* (before: gone() counts it down if it closes at once) */
	c = conn_new(d, fd, ROLE_METRICS, &scrape);
	if (!c) {
		nscrapes--;
		return;
	}
	/* An idle or slow scrape is closed: a request and its answer in frame-timeout-ms. */
	conn_deadline(c, now_ns() + (int64_t)d->cfg.frame_timeout_ms * 1000000,
		      "metrics request not done in time (frame-timeout-ms)");
}

int metrics_init(struct krayd *d)
{
	int r;

	d->metrics_fd = -1;
	if (!d->cfg.metrics[0])
		return 0;
	d->metrics_fd = metrics_listen(d->cfg.metrics);
	if (d->metrics_fd < 0) {
		r = d->metrics_fd;
		log_err("metrics %s: %s", d->cfg.metrics,
			r == -EINVAL ? "not HOST:PORT" : strerror(-r));
		return r;
	}
	r = loop_listen(d, d->metrics_fd, accepted, "metrics");
	if (r) {
		close(d->metrics_fd);
		d->metrics_fd = -1;
	}
	return r;
}

void metrics_fini(struct krayd *d)
{
	if (d->metrics_fd >= 0)
		close(d->metrics_fd);
	d->metrics_fd = -1;
}
