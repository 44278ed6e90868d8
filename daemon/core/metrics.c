// SPDX-License-Identifier: Apache-2.0
/*
 * The Prometheus endpoint: a TCP listener (off unless `metrics = HOST:PORT` is set; use a
 * loopback address unless the network is trusted) served by the same io_uring loop.
 * `GET /metrics` (or `GET /`) gets the text exposition format (version 0.0.4) of krayd's
 * counters and the application metrics of the node's processes (appmetric.c), another
 * method 405 and another path 404, and the connection closes.  The
 * HTTP server and its limits (a request in frame-timeout-ms, a head of 8 KiB, 64
 * connections) are core/http.c's, shared with the dashboard.
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
#include "core/appmetric.h"
#include "core/http.h"
#include "core/log.h"

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

	store_lazy_status(d);

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
	G("store_spilling_bytes", "Bytes of large objects being written to disk now.",
	  d->spilling_bytes);
	C("loop_turns_total", "Turns of krayd's event loop.", d->loop.turns);
	G("loop_stall_max_microseconds",
	  "The longest krayd's event loop went without waiting for events, since it started.",
	  (uint64_t)d->loop.stall_max_ns / 1000);
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
	G("pool_budget_bytes", "What the pool fills up to now (grown by bursts, pool-max).",
	  pool_budget(d->pool));
	C("pool_reused_bytes_total",
	  "Bytes of freed objects' memory taken back by the pool for new objects (pool-reuse).",
	  pool_given(d->pool));
	C("frames_rejected_total", "Malformed frames refused.", s->frames_rejected);
	C("actors_adopted_total",
	  "Actors hosted by an idle pool worker instead of a process started for them.",
	  d->actors_adopted);
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
	appmetric_render(d, b); /* the node's processes' own (kray.util.metrics) */
}

/* Whether the request's path is p (a query string after it is allowed). */
static bool path_is(const struct http_req *req, const char *p)
{
	size_t n = strlen(p);

	return req->path_len >= n && !memcmp(req->path, p, n) &&
	       (req->path_len == n || req->path[n] == '?');
}

static void handle(struct conn *c, const struct http_req *req)
{
	struct kbuf body = { 0 };

	if (!path_is(req, "/metrics") && !path_is(req, "/")) {
		http_reply(c, "404 Not Found", "text/plain", "", "only /metrics\n", 14);
		return;
	}
	metrics_render(c->d, &body);
	http_reply(c, "200 OK", "text/plain; version=0.0.4", "", body.data, body.len);
	kbuf_free(&body);
}

static struct http_server server = { .name = "metrics", .handle = handle };

static void accepted(struct krayd *d, int fd)
{
	http_accept(&server, d, fd);
}

int metrics_init(struct krayd *d)
{
	int r;

	d->metrics_fd = -1;
	if (!d->cfg.metrics[0])
		return 0;
	d->metrics_fd = http_listen(d->cfg.metrics);
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
