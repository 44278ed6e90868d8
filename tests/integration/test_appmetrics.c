// SPDX-License-Identifier: Apache-2.0
/*
 * Application metrics (kray_metric_record(), kray.util.metrics): a driver and a task record,
 * krayd merges and serves them on its Prometheus endpoint as ray_<name>; the checks
 * libkray makes; a name taken by another type; malformed METRIC frames (an ERROR, and
 * krayd lives); the table's limits (names, series).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/wire.h"
#include "harness.h"
#include "netns.h"

static void fini(void)
{
	harness_cleanup();
	netns_cleanup_all();
}

TestSuite(appmetrics, .fini = fini, .timeout = 120);

#define BODY_MAX (4 << 20)
/* krayd's table limits (daemon/core/appmetric.h: APPM_NAMES_MAX, APPM_SERIES_MAX). */
#define APPM_NAMES 1024
#define APPM_SERIES 10000

/* krayd with its metrics endpoint on a free port (*ret_port). */
static struct harness start(int *ret_port)
{
	static char addr[32];
	const char *const extra[] = { "--metrics", addr, NULL };
	struct harness h;
	int rc;

	*ret_port = harness_pick_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", *ret_port);
	rc = harness_start_krayd_opts(&h, 2, extra);
	cr_assert_eq(rc, 0, "harness_start_krayd: %d", rc);
	return h;
}

/* A scrape (malloc()ed, freed by the caller), after a round trip on k so that krayd has
 * read every frame k sent before. */
static char *scrape(kray *k, int port)
{
	char *buf = malloc(BODY_MAX);

	cr_assert_not_null(buf);
	if (k)
		harness_status(k);
	harness_http(port, "GET /metrics HTTP/1.0\r\n\r\n", buf, BODY_MAX);
	cr_assert(!strncmp(buf, "HTTP/1.0 200", 12), "scrape: %.80s", buf);
	return buf;
}

static void expect_line(const char *body, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	cr_assert(strstr(body, want), "no line '%s' in the scrape", line);
}

/* A scrape once it holds line (10 s at most): a worker's frames go when it next writes
 * to krayd, a little after its result when that took the fast path to the driver. */
static char *scrape_until(kray *k, int port, const char *line)
{
	char want[512], *body = scrape(k, port);
	int64_t t0 = harness_now_ms();

	snprintf(want, sizeof(want), "\n%s\n", line);
	while (!strstr(body, want) && harness_now_ms() - t0 < 10000) {
		free(body);
		usleep(20000);
		body = scrape(k, port);
	}
	return body;
}

Test(appmetrics, driver_and_task_merge)
{
	static const char *const keys[] = { "route", "actor" }, *const vals[] = { "/x", "a\"b" };
	static const char *const wkeys[] = { "where" }, *const wvals[] = { "task" };
	static const double bounds[] = { 10, 100, 1000 };
	const struct kray_metric c = { .type = KRAY_COUNTER,
				       .name = "num_requests",
				       .description = "Requests.\nTwo lines \\ here.",
				       .tag_keys = keys,
				       .tag_values = vals,
				       .ntags = 2 };
	const struct kray_metric g = { .type = KRAY_GAUGE, .name = "level" };
	const struct kray_metric hist = {
		.type = KRAY_HISTOGRAM, .name = "latency_ms", .boundaries = bounds, .nboundaries = 3
	};
	const struct kray_metric tc = { .type = KRAY_COUNTER,
					.name = "task_calls",
					.description = "Calls of metric_inc.",
					.tag_keys = wkeys,
					.tag_values = wvals,
					.ntags = 1 };
	const uint64_t batch[] = { 1, 0, 0, 2 };
	int port;
	struct harness h = start(&port);
	kray *k = harness_connect(h.sock);
	kray_value arg = { .type = KRAY_INT64, .i = 5 };
	char *body;

	cr_assert_eq(kray_metric_define(k, &c), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_record(k, &c, 1, NULL), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_record(k, &c, 2.5, NULL), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_record(k, &g, 3, NULL), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_record(k, &g, -7.25, NULL), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_record(k, &hist, 42, NULL), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_record(k, &hist, 10, NULL), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_record(k, &hist, 5000 + 1 + 9000, batch), 0, "%s", kray_errmsg(k));
	harness_expect_int(k, "metric_inc", &arg, 1, 5);
	harness_expect_int(k, "metric_inc", &arg, 1, 5);
	cr_assert_eq(kray_metric_record(k, &tc, 1, NULL), 0, "%s", kray_errmsg(k));
	body = scrape_until(k, port, "ray_task_calls_total{where=\"task\"} 11");
	expect_line(body, "# HELP ray_num_requests_total Requests.\\nTwo lines \\\\ here.");
	expect_line(body, "# TYPE ray_num_requests_total counter");
	/* Tags in key order, the value escaped. */
	expect_line(body, "ray_num_requests_total{actor=\"a\\\"b\",route=\"/x\"} 3.5");
	expect_line(body, "# TYPE ray_level gauge");
	expect_line(body, "ray_level -7.25");
	expect_line(body, "# TYPE ray_latency_ms histogram");
	expect_line(body, "ray_latency_ms_bucket{le=\"10\"} 2");
	expect_line(body, "ray_latency_ms_bucket{le=\"100\"} 3");
	expect_line(body, "ray_latency_ms_bucket{le=\"1000\"} 3");
	expect_line(body, "ray_latency_ms_bucket{le=\"+Inf\"} 5");
	expect_line(body, "ray_latency_ms_sum 14053");
	expect_line(body, "ray_latency_ms_count 5");
	/* The workers' updates went with their results, merged with the driver's. */
	expect_line(body, "ray_task_calls_total{where=\"task\"} 11");
	free(body);
	harness_shutdown(k);
	harness_expect_serving(&h, "metrics");
}

Test(appmetrics, libkray_checks)
{
	static const char *const le[] = { "le" }, *const us[] = { "__x" }, *const v[] = { "1" };
	static const char *const dup[] = { "a", "a" }, *const v2[] = { "1", "2" };
	static const double up[] = { 1, 2 }, down[] = { 2, 1 };
	struct harness h;
	kray *k;
	int rc = harness_start_krayd(&h, 1);
	struct {
		struct kray_metric m;
		double v;
		const char *why;
	} bad[] = {
		{ { .type = KRAY_COUNTER, .name = "" }, 1, "empty name" },
		{ { .type = KRAY_COUNTER, .name = "1x" }, 1, "leading digit" },
		{ { .type = KRAY_COUNTER, .name = "a.b" }, 1, "dot" },
		{ { .type = 0, .name = "t" }, 1, "type 0" },
		{ { .type = KRAY_COUNTER, .name = "c" }, 0, "counter by 0" },
		{ { .type = KRAY_COUNTER, .name = "c" }, -1, "counter down" },
		{ { .type = KRAY_COUNTER, .name = "c", .boundaries = up, .nboundaries = 2 },
		  1,
		  "counter with boundaries" },
		{ { .type = KRAY_HISTOGRAM, .name = "hh" }, 1, "histogram without boundaries" },
		{ { .type = KRAY_HISTOGRAM, .name = "hh", .boundaries = down, .nboundaries = 2 },
		  1,
		  "boundaries descending" },
		{ { .type = KRAY_GAUGE, .name = "g", .tag_keys = le, .tag_values = v, .ntags = 1 },
		  1,
		  "tag le" },
		{ { .type = KRAY_GAUGE, .name = "g", .tag_keys = us, .tag_values = v, .ntags = 1 },
		  1,
		  "tag __x" },
		{ { .type = KRAY_GAUGE,
		    .name = "g",
		    .tag_keys = dup,
		    .tag_values = v2,
		    .ntags = 2 },
		  1,
		  "tag given twice" },
		{ { .type = KRAY_GAUGE, .name = "g", .ntags = KRAY_METRIC_MAX_TAGS + 1 },
		  1,
		  "too many tags" },
	};

	cr_assert_eq(rc, 0);
	k = harness_connect(h.sock);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = kray_metric_record(k, &bad[i].m, bad[i].v, NULL);
		cr_assert_eq(rc, -EINVAL, "%s: %d", bad[i].why, rc);
		cr_assert(kray_errmsg(k)[0], "%s: no message", bad[i].why);
	}
	cr_assert_eq(kray_metric_record(k, NULL, 1, NULL), -EINVAL);
	harness_status(k); /* the connection is fine */
	harness_shutdown(k);
}

Test(appmetrics, one_type_per_name)
{
	static const double b1[] = { 1, 2 }, b2[] = { 1, 3 };
	const struct kray_metric g = { .type = KRAY_GAUGE, .name = "taken" };
	const struct kray_metric c = { .type = KRAY_COUNTER, .name = "taken" };
	const struct kray_metric h1 = {
		.type = KRAY_HISTOGRAM, .name = "hist", .boundaries = b1, .nboundaries = 2
	};
	const struct kray_metric h2 = {
		.type = KRAY_HISTOGRAM, .name = "hist", .boundaries = b2, .nboundaries = 2
	};
	const struct kray_metric clash = { .type = KRAY_GAUGE, .name = "hist_count" };
	int port;
	struct harness h = start(&port);
	kray *k = harness_connect(h.sock);
	char *body;

	cr_assert_eq(kray_metric_define(k, &g), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_define(k, &c), -EEXIST);
	cr_assert(strstr(kray_errmsg(k), "is a Gauge already"), "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_define(k, &h1), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_define(k, &h1), 0, "the same again");
	cr_assert_eq(kray_metric_define(k, &h2), -EEXIST);
	cr_assert(strstr(kray_errmsg(k), "other boundaries"), "%s", kray_errmsg(k));
	cr_assert_eq(kray_metric_define(k, &clash), -EEXIST);
	cr_assert(strstr(kray_errmsg(k), "metric 'hist' exports"), "%s", kray_errmsg(k));
	/* An update of the wrong type is dropped and counted; the gauge is untouched. */
	cr_assert_eq(kray_metric_record(k, &g, 4, NULL), 0);
	cr_assert_eq(kray_metric_record(k, &c, 1, NULL), 0);
	body = scrape(k, port);
	expect_line(body, "ray_taken 4");
	expect_line(body, "kray_app_metric_refused_total 1");
	cr_assert(!strstr(body, "ray_taken_total"), "the counter was served");
	free(body);
	harness_shutdown(k);
}

/* A METRIC frame from a raw driver connection: header, then body. */
static size_t raw_metric(uint8_t *out, size_t cap, const struct kray_msg_metric *m,
			 const char *name, const char *tags)
{
	struct kbuf b = { 0 };
	size_t n;

	wire_put_metric(&b, 0, m, name, "", tags, NULL, NULL);
	n = b.len;
	cr_assert_leq(n, cap);
	memcpy(out, b.data, n);
	kbuf_free(&b);
	return n;
}

Test(appmetrics, malformed_frames_refused)
{
	uint8_t f[512];
	double one = 1, zero = 0;
	struct kray_msg_metric m = { .kind = KRAY_METRIC_COUNTER, .name_len = 1 };
	struct harness h;
	size_t n;
	int rc = harness_start_krayd(&h, 1);

	cr_assert_eq(rc, 0);
	memcpy(&m.value, &zero, 8);
	n = raw_metric(f, sizeof(f), &m, "c", "");
	harness_raw_expect_error(&h, f, n, -EBADMSG, "counter by 0");
	memcpy(&m.value, &one, 8);
	m.ntags = 2;
	m.tags_len = 8;
	n = raw_metric(f, sizeof(f), &m, "c", "b\0x\0a\0y\0");
	harness_raw_expect_error(&h, f, n, -EBADMSG, "tags out of order");
	m.ntags = 1;
	m.tags_len = 5;
	n = raw_metric(f, sizeof(f), &m, "c", "le\0x\0");
	harness_raw_expect_error(&h, f, n, -EBADMSG, "the reserved tag le");
	m.ntags = 0;
	m.tags_len = 0;
	m.name_len = 3;
	n = raw_metric(f, sizeof(f), &m, "a-b", "");
	harness_raw_expect_error(&h, f, n, -EBADMSG, "a name with a dash");
	m.name_len = 1;
	n = raw_metric(f, sizeof(f), &m, "c", "");
	((struct kray_frame_hdr *)(void *)f)->len -= 8; /* truncated: the name's bytes gone */
	harness_raw_expect_error(&h, f, n - 8, -EBADMSG, "a short body");
	harness_expect_serving(&h, "malformed metric frames");
}

Test(appmetrics, table_limits, .timeout = 240)
{
	static const char *const keys[] = { "i" };
	char name[32], val[16];
	const char *vals[] = { val };
	struct kray_metric m = { .type = KRAY_GAUGE };
	int port;
	struct harness h = start(&port);
	kray *k = harness_connect(h.sock);
	char *body;
	int rc;

	/* Names: 1,024, then -ENOSPC for a new one (an existing one still updates). */
	m.name = name;
	for (int i = 0; i < APPM_NAMES; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		cr_assert_eq(kray_metric_define(k, &m), 0, "%s: %s", name, kray_errmsg(k));
	}
	snprintf(name, sizeof(name), "one_too_many");
	rc = kray_metric_define(k, &m);
	cr_assert_eq(rc, -ENOSPC, "%d", rc);
	cr_assert(strstr(kray_errmsg(k), "1024 metric names"), "%s", kray_errmsg(k));
	/* Series: 10,000 in all; more are dropped and counted. */
	snprintf(name, sizeof(name), "g0");
	m.tag_keys = keys;
	m.tag_values = vals;
	m.ntags = 1;
	for (int i = 0; i < APPM_SERIES + 5; i++) {
		snprintf(val, sizeof(val), "%d", i);
		cr_assert_eq(kray_metric_record(k, &m, i, NULL), 0, "%s", kray_errmsg(k));
		if (i % 1000 == 999)
			cr_assert_eq(kray_flush(k), 0);
	}
	body = scrape(k, port);
	expect_line(body, "kray_app_metric_series 10000");
	expect_line(body, "kray_app_metric_dropped_total 5");
	expect_line(body, "ray_g0{i=\"9999\"} 9999");
	cr_assert(!strstr(body, "i=\"10000\""), "a series past the limit was kept");
	free(body);
	harness_shutdown(k);
	harness_expect_serving(&h, "a full metrics table");
}

/* A scrape of the endpoint on 127.0.0.1:port inside node i's namespace. */
static char *scrape_in(const struct netns_cluster *net, int i, int port)
{
	int saved = netns_enter(net->ns[i]);
	char *body;

	cr_assert_geq(saved, 0, "netns_enter: %d", saved);
	body = scrape(NULL, port);
	netns_leave(saved);
	return body;
}

/* Each node's krayd serves what its own processes record, as Ray's per-node agents: a
 * task sent to node 2 counts there, the driver's counter on node 1 (the head). */
Test(appmetrics, each_node_serves_its_own, .timeout = 180)
{
	static struct netns_cluster net;
	static struct harness node[2];
	static char token_file[256];
	const char *const more[] = { "--metrics", "127.0.0.1:9464", NULL };
	const struct kray_metric d = { .type = KRAY_COUNTER, .name = "driver_side" };
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value arg = { .type = KRAY_INT64, .i = 4 }, v;
	char why[128], *body0 = NULL, *body1 = NULL;
	int64_t t0;
	kray_ref r;
	kray *k;
	int rc = netns_cluster_up(&net, 2, why, sizeof(why));

	if (rc)
		cr_skip_test("needs network namespaces: %s", why);
	harness_start_node(&node[0], &net, 0, 2, 100, "n1:1", more, token_file, sizeof(token_file));
	harness_start_node(&node[1], &net, 1, 2, 100, "n2:1", more, token_file, sizeof(token_file));
	k = harness_connect(node[0].sock);
	t0 = harness_now_ms();
	while (harness_count_alive(k) < 2 && harness_now_ms() - t0 < 10000)
		usleep(20000);
	cr_assert_eq(harness_count_alive(k), 2, "node 2 did not join");
	o.resources = "n2:1";
	cr_assert_eq(kray_call(k, "metric_inc", &arg, 1, &o, &r), 0, "%s", kray_errmsg(k));
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_eq(rc, 0, "metric_inc on node 2: %d", rc);
	cr_assert_eq(v.type, KRAY_INT64);
	kray_release(k, &r, 1);
	cr_assert_eq(kray_metric_record(k, &d, 2, NULL), 0, "%s", kray_errmsg(k));
	harness_status(k);
	/* The worker's frame went with its result: wait until node 2's krayd has it. */
	for (t0 = harness_now_ms();; usleep(50000)) {
		free(body1);
		body1 = scrape_in(&net, 1, 9464);
		if (strstr(body1, "ray_task_calls_total") || harness_now_ms() - t0 > 10000)
			break;
	}
	body0 = scrape_in(&net, 0, 9464);
	expect_line(body1, "ray_task_calls_total{where=\"task\"} 4");
	cr_assert(!strstr(body1, "ray_driver_side"), "node 2 serves node 1's driver");
	expect_line(body0, "ray_driver_side_total 2");
	cr_assert(!strstr(body0, "ray_task_calls"), "node 1 serves node 2's task");
	free(body0);
	free(body1);
	harness_shutdown(k);
}
