// SPDX-License-Identifier: Apache-2.0
/*
 * The dashboard (daemon/dashboard/, docs/dashboard.md) against a real krayd: the page and
 * every /api/v1/ endpoint answer with their shapes while tasks, an actor and a large
 * object exist; unknown paths (and ../ tricks) are 404, other methods 405, a malformed
 * request line 400, an oversized head 431; a silent client is closed after
 * frame-timeout-ms; beyond loopback the API needs the cluster token; off by default.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <kray/kray.h>

#include "harness.h"

TestSuite(dashboard, .fini = harness_cleanup, .timeout = 90);

static char reply[4 << 20];

static struct harness start_on(const char *addr, const char *token)
{
	struct harness h;
	const char *extra[] = {
		"--dashboard", addr, "--frame-timeout-ms", "1000", token ? "--token" : NULL,
		token,	       NULL
	};

	cr_assert_eq(harness_start_krayd_opts(&h, 2, extra), 0);
	return h;
}

static const char *get(int port, const char *path, const char *auth)
{
	char req[1024];

	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n%s%s%s\r\n", path,
		 auth ? "Authorization: Bearer " : "", auth ? auth : "", auth ? "\r\n" : "");
	harness_http(port, req, reply, sizeof(reply));
	return reply;
}

static const char *body_of(const char *r)
{
	const char *b = strstr(r, "\r\n\r\n");

	cr_assert_not_null(b, "no end of head: %.200s", r);
	return b + 4;
}

static void expect_status(const char *r, const char *status, const char *what)
{
	cr_assert(!strncmp(r, "HTTP/1.0 ", 9) && !strncmp(r + 9, status, strlen(status)),
		  "%s: want %s, got %.120s", what, status, r);
}

Test(dashboard, page_and_api_shapes)
{
	int port = harness_pick_port();
	char addr[32];
	struct harness h;
	kray_ref refs[8], actor, call, big;
	kray_value v;
	kray *k;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	h = start_on(addr, NULL);
	k = harness_connect(h.sock);
	for (int i = 0; i < 8; i++)
		refs[i] = harness_call1(k, "square", &KRAY_V_INT(i), 1);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(harness_get1(k, refs[i], 20000, &v), 0, "%s", kray_errmsg(k));
		kray_value_clear(&v);
	}
	cr_assert_eq(kray_actor_create(k, "Counter", &KRAY_V_INT(1), 1, NULL, &actor), 0, "%s",
		     kray_errmsg(k));
	cr_assert_eq(kray_actor_call(k, actor, "incr", &KRAY_V_INT(1), 1, NULL, &call), 0);
	cr_assert_eq(harness_get1(k, call, 20000, &v), 0, "%s", kray_errmsg(k));
	kray_value_clear(&v);
	char *data = malloc(1 << 20);

	memset(data, 7, 1 << 20);
	cr_assert_eq(kray_put(k, &KRAY_V_BYTES(data, 1 << 20), &big), 0, "%s", kray_errmsg(k));
	free(data);
	cr_assert_eq(harness_get1(k, big, 20000, &v), 0, "%s", kray_errmsg(k)); /* sealed */
	kray_value_clear(&v);

	get(port, "/", NULL);
	expect_status(reply, "200", "the page");
	cr_assert(strstr(reply, "Content-Type: text/html") && strstr(reply, "<title>kray"),
		  "%.300s", reply);
	cr_assert_not_null(strstr(reply, "Content-Security-Policy:"));
	get(port, "/index.html", NULL);
	expect_status(reply, "200", "/index.html");

	get(port, "/api/v1/nodes", NULL);
	expect_status(reply, "200", "nodes");
	cr_assert_not_null(strstr(reply, "Content-Type: application/json"));
	cr_assert(!strncmp(body_of(reply), "{\"api\":\"v1\",\"nodes\":[{\"node_id\":", 32), "%s",
		  body_of(reply));
	cr_assert_not_null(strstr(reply, "\"tasks_finished\":"));
	get(port, "/api/v1/workers", NULL);
	cr_assert(strstr(reply, "\"workers\":[{\"worker_id\":") && strstr(reply, "\"pid\":"), "%s",
		  body_of(reply));
	get(port, "/api/v1/tasks?x=1", NULL); /* a query string is ignored */
	cr_assert(strstr(reply, "\"name\":\"square\"") && strstr(reply, "\"finished\":"), "%s",
		  body_of(reply));
	get(port, "/api/v1/actors", NULL);
	cr_assert(strstr(reply, "\"class_name\":\"Counter\"") &&
			  strstr(reply, "\"state\":\"ALIVE\""),
		  "%s", body_of(reply));
	get(port, "/api/v1/objects", NULL);
	cr_assert(strstr(reply, "\"object_size\":1048576") &&
			  strstr(reply, "\"location\":\"SHARED_MEMORY\""),
		  "%.600s", body_of(reply));
	get(port, "/api/v1/timeline", NULL);
	cr_assert(!strncmp(body_of(reply), "{\"traceEvents\":[", 16) &&
			  strstr(reply, "\"name\":\"square\",\"cat\":\"task\",\"ph\":\"X\""),
		  "%.300s", body_of(reply));
	/* The history: a sample at start, a second apart after. */
	get(port, "/api/v1/history", NULL);
	expect_status(reply, "200", "history");
	cr_assert(!strncmp(body_of(reply), "{\"api\":\"v1\",\"node_id\":", 22) &&
			  strstr(reply, "\"columns\":[\"t_ms\",\"store_bytes\"") &&
			  strstr(reply, "\"samples\":[["),
		  "%.600s", body_of(reply));
	/* The chart library, when installed (Debian's libjs-chart.js), else a 404 that says
	 * so; the page loads it from krayd only. */
	get(port, "/chart.js", NULL);
	if (access("/usr/share/javascript/chart.js/chart.min.js", R_OK) == 0) {
		expect_status(reply, "200", "/chart.js");
		cr_assert(strstr(reply, "Content-Type: text/javascript") && strstr(reply, "Chart"),
			  "%.300s", reply);
	} else {
		expect_status(reply, "404", "/chart.js, not installed");
		cr_assert_not_null(strstr(reply, "libjs-chart.js"));
	}
	get(port, "/", NULL);
	cr_assert_not_null(strstr(reply, "<script src=\"/chart.js\">"));
	harness_shutdown(k);
	harness_expect_serving(&h, "the dashboard's requests");
}

/* Tasks not ended are in the timeline with their state, and a pending actor says what it
 * waits for. */
Test(dashboard, queued_running_and_pending)
{
	int port = harness_pick_port();
	char addr[32];
	struct harness h;
	kray_ref sleeps[3], actor;
	kray *k;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	h = start_on(addr, NULL);
	k = harness_connect(h.sock);
	for (int i = 0; i < 3; i++) /* 2 CPUs: two run, one waits */
		sleeps[i] = harness_call1(k, "sleep_ms", &KRAY_V_INT(3000), 1);
	cr_assert_eq(kray_actor_create(k, "Counter", &KRAY_V_REF(sleeps[2]), 1, NULL, &actor), 0,
		     "%s", kray_errmsg(k));
	for (int i = 0; i < 200; i++) {
		get(port, "/api/v1/timeline", NULL);
		if (strstr(reply, "\"state\":\"PENDING_NODE_ASSIGNMENT\"") &&
		    strstr(reply, "\"state\":\"RUNNING\""))
			break;
		usleep(20000);
	}
	cr_assert(strstr(reply, "\"state\":\"RUNNING\""), "%.2000s", body_of(reply));
	cr_assert(strstr(reply, "\"state\":\"PENDING_NODE_ASSIGNMENT\""), "%.2000s",
		  body_of(reply));
	cr_assert(strstr(reply, "\"args\":{\"name\":\"queued\"}"), "the queued row is named");
	get(port, "/api/v1/actors", NULL);
	cr_assert(strstr(reply, "\"pending_reason\":\"waiting for 1 constructor argument\""),
		  "%.2000s", body_of(reply));
	harness_shutdown(k);
	harness_expect_serving(&h, "the timeline with tasks not ended");
}

Test(dashboard, bad_requests)
{
	int port = harness_pick_port(), fd;
	char addr[32], *big;
	struct harness h;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	h = start_on(addr, NULL);
	expect_status(get(port, "/../../etc/passwd", NULL), "404", "a ../ path");
	expect_status(get(port, "/api/v1/../../etc/passwd", NULL), "404", "a ../ API path");
	expect_status(get(port, "/%2e%2e/%2e%2e/etc/passwd", NULL), "404", "an encoded ../");
	expect_status(get(port, "/chart.js/../../etc/passwd", NULL), "404",
		      "a path under /chart.js");
	expect_status(get(port, "/chart.min.js", NULL), "404", "another file of the library");
	expect_status(get(port, "/chart.js%00", NULL), "404", "an encoded NUL");
	expect_status(get(port, "/api/v2/nodes", NULL), "404", "another API version");
	expect_status(get(port, "/api/v1/nodesx", NULL), "404", "an unknown endpoint");
	cr_assert_not_null(strstr(reply, "application/json"));
	harness_http(port, "POST /api/v1/nodes HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", reply,
		     sizeof(reply));
	expect_status(reply, "405", "POST");
	cr_assert_not_null(strstr(reply, "Allow: GET"));
	harness_http(port, "garbage\r\n\r\n", reply, sizeof(reply));
	expect_status(reply, "400", "no request line");
	harness_http(port, "GET nopath HTTP/1.0\r\n\r\n", reply, sizeof(reply));
	expect_status(reply, "400", "a path without /");

	/* A head past 8 KiB is refused without waiting for its end. */
	big = malloc(20000);
	strcpy(big, "GET / HTTP/1.0\r\nX-Big: ");
	memset(big + strlen(big), 'a', 19000);
	big[19000] = 0;
	harness_http(port, big, reply, sizeof(reply));
	free(big);
	expect_status(reply, "431", "a huge head");

	/* A client that says nothing is closed after frame-timeout-ms (1 s here). */
	fd = harness_tcp_connect(port);
	cr_assert(harness_closed_within(fd, 5000, NULL), "a silent client was kept");
	close(fd);
	/* ... and one that stops half way through its head too. */
	fd = harness_tcp_connect(port);
	harness_raw_send(fd, "GET /api/v1/nodes HTTP/1.0\r\nHo", 30);
	cr_assert(harness_closed_within(fd, 5000, NULL), "a slow client was kept");
	close(fd);
	harness_expect_serving(&h, "bad HTTP requests");
	expect_status(get(port, "/api/v1/nodes", NULL), "200", "nodes after bad requests");
}

Test(dashboard, many_clients_refused_past_the_cap)
{
	int port = harness_pick_port(), fds[80], n503 = 0;
	char addr[32], buf[256];
	struct harness h;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	h = start_on(addr, NULL);
	for (int i = 0; i < 80; i++)
		fds[i] = harness_tcp_connect(port);
	usleep(300 * 1000);
	/* The ones past 64 got 503 and were closed. */
	for (int i = 64; i < 80; i++) {
		ssize_t r = recv(fds[i], buf, sizeof(buf) - 1, MSG_DONTWAIT);

		if (r > 12 && !strncmp(buf, "HTTP/1.0 503", 12))
			n503++;
	}
	cr_assert_geq(n503, 1, "no connection past 64 was refused with 503");
	for (int i = 0; i < 80; i++)
		close(fds[i]);
	usleep(200 * 1000);
	expect_status(get(port, "/api/v1/nodes", NULL), "200", "nodes once they went");
	harness_expect_serving(&h, "80 dashboard clients");
}

/* 0.0.0.0 is beyond loopback: the API needs the token, the page does not. */
Test(dashboard, token_beyond_loopback)
{
	static const char token[] = "0123456789abcdef0123456789abcdef";
	int port = harness_pick_port();
	char addr[32];
	struct harness h;

	snprintf(addr, sizeof(addr), "0.0.0.0:%d", port);
	h = start_on(addr, token);
	expect_status(get(port, "/", NULL), "200", "the page without a token");
	expect_status(get(port, "/api/v1/nodes", NULL), "401", "the API without a token");
	cr_assert_not_null(strstr(reply, "WWW-Authenticate: Bearer"));
	expect_status(get(port, "/api/v1/nodes", "0123456789abcdef0123456789abcdeX"), "401",
		      "a wrong token");
	expect_status(get(port, "/api/v1/nodes", "0123"), "401", "a short token");
	expect_status(get(port, "/api/v1/nodes", token), "200", "the right token");
	harness_expect_serving(&h, "token checks");
}

/* Beyond loopback without a token to check, krayd refuses to start. */
Test(dashboard, no_token_no_start)
{
	int port = harness_pick_port();
	char addr[32], dir[128], file[200];
	struct harness h;
	const char *extra[] = { "--dashboard", addr, "--token-file", file, NULL };

	harness_tmpdir(dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s/missing.token", dir);
	snprintf(addr, sizeof(addr), "0.0.0.0:%d", port);
	cr_assert_neq(harness_start_krayd_opts(&h, 2, extra), 0,
		      "krayd served the dashboard beyond loopback without a token");
}

/* Without `dashboard`, nothing listens for it: its counters are absent from the metrics,
 * where a krayd with one shows them. */
Test(dashboard, off_by_default)
{
	int port = harness_pick_port(), dport = harness_pick_port();
	char addr[32], daddr[32];
	struct harness h, hd;
	const char *extra[] = { "--metrics", addr, NULL };
	const char *both[] = { "--metrics", addr, "--dashboard", daddr, NULL };

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(daddr, sizeof(daddr), "127.0.0.1:%d", dport);
	cr_assert_eq(harness_start_krayd_opts(&h, 1, extra), 0);
	harness_http(port, "GET /metrics HTTP/1.0\r\n\r\n", reply, sizeof(reply));
	expect_status(reply, "200", "metrics");
	cr_assert_null(strstr(reply, "kray_dashboard_"), "a dashboard without `dashboard`");
	harness_stop_krayd(&h);

	cr_assert_eq(harness_start_krayd_opts(&hd, 1, both), 0);
	expect_status(get(dport, "/nothing", NULL), "404", "an unknown page");
	harness_http(port, "GET /metrics HTTP/1.0\r\n\r\n", reply, sizeof(reply));
	cr_assert_not_null(strstr(reply, "kray_dashboard_not_found_total 1"), "%s", reply);
}
