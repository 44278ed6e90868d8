// SPDX-License-Identifier: Apache-2.0
/*
 * The web dashboard: `dashboard = HOST:PORT` (krayd --dashboard, kray start --dashboard),
 * off by default.  GET / (or /index.html) is the page, built into krayd (page.c);
 * GET /api/v1/{nodes,workers,tasks,actors,objects,timeline,history} is its JSON (api.c,
 * history.c; the timeline is core/timeline.c's, rendered a slice per loop turn);
 * GET /chart.js is the charting library, read once at start from its one installed path
 * (DASH_CHARTJS), never from a path a request names; any other path is 404.  The HTTP server, its limits and its parsing
 * are the core's (core/http.c, shared with the Prometheus endpoint).
 *
 * On a loopback address anyone on the machine may read it, as the metrics endpoint.
 * Beyond loopback the API needs the cluster token, as node links do: "Authorization:
 * Bearer TOKEN" (the page takes it from its URL's fragment, #token=..., which browsers do
 * not send, and keeps it in sessionStorage).  Without a token to check against, krayd
 * refuses to start rather than serve the cluster's state to the network.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/ext.h"
#include "core/http.h"
#include "core/log.h"
#include "dashboard/dashboard.h"

struct dashboard {
	struct http_server http; /* first: http.c finds it from a connection */
	int fd;
	uint8_t token[256];
	size_t token_len; /* 0: none required (loopback) */
	uint64_t requests, unauthorized, not_found;
	struct dash_history *history;
	char *chartjs; /* the charting library's text, or NULL: not installed */
	size_t chartjs_len;
};

/* Reads the charting library at start (so no request reads a file): a regular file of at
 * most DASH_CHARTJS_MAX bytes at DASH_CHARTJS.  Without it the page says it is missing. */
static void read_chartjs(struct dashboard *db)
{
	const char *path = getenv("KRAY_DASHBOARD_CHARTJS");
	struct stat stb;
	size_t got = 0;
	int fd;

	if (!path || !*path)
		path = DASH_CHARTJS;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_info("dashboard: no charting library at %s (%s): the page draws no charts "
			 "(install libjs-chart.js)",
			 path, strerror(errno));
		return;
	}
	if (fstat(fd, &stb) || !S_ISREG(stb.st_mode) || stb.st_size <= 0 ||
	    (uint64_t)stb.st_size > DASH_CHARTJS_MAX ||
	    !(db->chartjs = malloc((size_t)stb.st_size)))
		goto out;
	while (got < (size_t)stb.st_size) {
		ssize_t r = read(fd, db->chartjs + got, (size_t)stb.st_size - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got == (size_t)stb.st_size) {
		db->chartjs_len = got;
	} else {
		free(db->chartjs);
		db->chartjs = NULL;
	}
out:
	if (!db->chartjs)
		log_warn("dashboard: %s is not a readable file of at most %u bytes: the page "
			 "draws no charts",
			 path, DASH_CHARTJS_MAX);
	close(fd);
}

/* The token as the cluster part reads it (--token, else token-file), without writing a
 * new one: the dashboard only checks it. */
static int read_token(struct krayd *d, struct dashboard *db)
{
	size_t n;
	ssize_t r;
	int fd;

	if (d->cfg.token[0]) {
		n = strlen(d->cfg.token);
		memcpy(db->token, d->cfg.token, n);
	} else {
		fd = open(d->cfg.token_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -errno;
		r = read(fd, db->token, sizeof(db->token));
		close(fd);
		if (r < 0)
			return -errno;
		n = (size_t)r;
		while (n && (db->token[n - 1] == '\n' || db->token[n - 1] == '\r'))
			n--;
	}
	if (n < 16)
		return -EINVAL;
	db->token_len = n;
	return 0;
}

/* Compares in time independent of where they differ. */
static bool token_ok(const struct dashboard *db, const struct http_req *req)
{
	const char *v;
	size_t len;
	uint8_t diff = 0;

	if (!db->token_len)
		return true;
	if (!http_header(req, "Authorization", &v, &len) || len != 7 + db->token_len ||
	    strncmp(v, "Bearer ", 7))
		return false;
	for (size_t i = 0; i < db->token_len; i++)
		diff |= (uint8_t)(v[7 + i] ^ db->token[i]);
	return !diff;
}

static void json_error(struct conn *c, const char *status, const char *extra, const char *msg)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);

	http_reply(c, status, "application/json", extra, body, (size_t)n);
}

static void handle(struct conn *c, const struct http_req *req)
{
	struct dashboard *db = c->d->dash;
	const char *q = memchr(req->path, '?', req->path_len);
	size_t len = q ? (size_t)(q - req->path) : req->path_len;
	static const char api[] = "/api/v1/";
	struct kbuf body = { 0 };
	const char *name;
	size_t nlen;

	db->requests++;
	if ((len == 1 && req->path[0] == '/') ||
	    (len == 11 && !memcmp(req->path, "/index.html", 11))) {
		http_reply(c, "200 OK", "text/html; charset=utf-8",
			   "Content-Security-Policy: default-src 'self'; script-src 'self' "
			   "'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'\r\n"
			   "X-Frame-Options: DENY\r\n",
			   dash_page, (size_t)(dash_page_end - dash_page));
		return;
	}
	if (len == 9 && !memcmp(req->path, "/chart.js", 9)) {
		if (db->chartjs)
			http_reply(c, "200 OK", "text/javascript; charset=utf-8", "", db->chartjs,
				   db->chartjs_len);
		else
			json_error(c, "404 Not Found", "",
				   "the charting library is not installed (libjs-chart.js)");
		return;
	}
	if (len < sizeof(api) - 1 || memcmp(req->path, api, sizeof(api) - 1)) {
		db->not_found++;
		json_error(c, "404 Not Found", "", "no such page; the API is under /api/v1/");
		return;
	}
	if (!token_ok(db, req)) {
		db->unauthorized++;
		json_error(c, "401 Unauthorized", "WWW-Authenticate: Bearer realm=\"kray\"\r\n",
			   "the cluster token is required (Authorization: Bearer TOKEN)");
		return;
	}
	name = req->path + sizeof(api) - 1;
	nlen = len - (sizeof(api) - 1);
	if (nlen == 8 && !memcmp(name, "timeline", 8)) {
		dash_timeline(c); /* merged across the nodes, rendered a slice per turn */
		return;
	}
	if (nlen == 7 && !memcmp(name, "cluster", 7)) {
		dash_cluster(c); /* once the other nodes answered */
		return;
	}
	if (nlen == 7 && !memcmp(name, "history", 7)) {
		dash_history_render(c->d, db->history, &body);
	} else if (!dash_api(c->d, name, nlen, &body)) {
		db->not_found++;
		json_error(c, "404 Not Found", "",
			   "unknown endpoint; v1 has nodes, workers, tasks, actors, objects, "
			   "timeline, history, cluster");
		return;
	}
	http_reply(c, "200 OK", "application/json", "", body.data, body.len);
	kbuf_free(&body);
}

static void accepted(struct krayd *d, int fd)
{
	http_accept(&d->dash->http, d, fd);
}

static void metric(struct kbuf *b, const char *name, const char *help, uint64_t v)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name,
			 help, name, name, (unsigned long long)v);

	kbuf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void render_metrics(struct krayd *d, struct kbuf *b)
{
	const struct dashboard *db = d->dash;

	if (!db)
		return;
	metric(b, "kray_dashboard_requests_total", "Dashboard requests answered.", db->requests);
	metric(b, "kray_dashboard_unauthorized_total",
	       "Dashboard API requests refused for want of the token.", db->unauthorized);
	metric(b, "kray_dashboard_not_found_total", "Dashboard requests for unknown paths.",
	       db->not_found);
}

static int64_t next_deadline(struct krayd *d)
{
	return d->dash ? dash_history_next(d->dash->history) : -1;
}

static void tick(struct krayd *d, int64_t now)
{
	if (d->dash)
		dash_history_tick(d, d->dash->history, now);
}

static const struct ext dashboard_ext = {
	.name = "dashboard",
	.next_deadline = next_deadline,
	.tick = tick,
	.render_metrics = render_metrics,
	.node_summary = dash_summary,
};

/* Without a dashboard of its own, a node still answers the head's dashboard. */
static const struct ext summary_ext = {
	.name = "dashboard (summary only)",
	.node_summary = dash_summary,
};

int dashboard_init(struct krayd *d)
{
	struct dashboard *db;
	int r;

	if (!d->cfg.dashboard[0])
		return ext_add(d, &summary_ext);
	db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	db->history = dash_history_new();
	if (!db->history) {
		free(db);
		return -ENOMEM;
	}
	db->http.name = "dashboard";
	db->http.handle = handle;
	db->fd = http_listen(d->cfg.dashboard);
	if (db->fd < 0) {
		r = db->fd;
		log_err("dashboard %s: %s", d->cfg.dashboard,
			r == -EINVAL ? "not HOST:PORT" : strerror(-r));
		goto err_free;
	}
	if (!http_loopback(db->fd)) {
		r = read_token(d, db);
		if (r) {
			log_err("dashboard %s listens beyond loopback and needs the cluster token "
				"(token, or token-file %s): %s",
				d->cfg.dashboard, d->cfg.token_file,
				r == -EINVAL ? "shorter than 16 bytes" : strerror(-r));
			goto err_close;
		}
	}
	read_chartjs(db);
	d->dash = db;
	r = ext_add(d, &dashboard_ext);
	if (!r)
		r = loop_listen(d, db->fd, accepted, "dashboard");
	if (r)
		goto err_unset;
	log_info("dashboard on http://%s/%s", d->cfg.dashboard,
		 db->token_len ? " (API needs the cluster token)" : "");
	return 0;
err_unset:
	d->dash = NULL;
err_close:
	close(db->fd);
err_free:
	free(db->chartjs);
	free(db->history);
	free(db);
	return r;
}

void dashboard_fini(struct krayd *d)
{
	if (!d->dash)
		return;
	close(d->dash->fd);
	free(d->dash->chartjs);
	free(d->dash->history);
	free(d->dash);
	d->dash = NULL;
}
