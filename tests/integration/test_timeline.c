// SPDX-License-Identifier: Apache-2.0
/*
 * The task timeline (daemon/core/timeline.c, docs/timeline.md) against a real krayd:
 * every task a worker ran is one Chrome trace "X" event naming its function, task id,
 * worker and state; the ring keeps only the last `timeline-events`; 0 turns it off; a
 * TIMELINE (or LIST_OBJECTS) request with a body is refused and krayd goes on serving.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kray/kray.h>
#include <uapi/kray_wire.h>

#include "harness.h"

TestSuite(timeline, .fini = harness_cleanup, .timeout = 60);

static size_t count(const char *s, const char *needle)
{
	size_t n = 0, len = strlen(needle);

	/* By hand: strstr() from each hit rescans the rest under ASan (3 MB, 10,000 times). */
	for (const char *p = s; *p; p++)
		if (*p == *needle && !strncmp(p, needle, len)) {
			n++;
			p += len - 1;
		}
	return n;
}

static char *timeline_of(kray *k)
{
	char *json = NULL;

	cr_assert_eq(kray_timeline(k, &json), 0, "%s", kray_errmsg(k));
	cr_assert_not_null(json);
	cr_assert(!strncmp(json, "{\"traceEvents\":[", 16), "not a trace: %.200s", json);
	return json;
}

static void task_id(const kray_ref *r, char *buf, size_t len)
{
	snprintf(buf, len, "\"task_id\":\"%08x%08x%08x\"", r->node, r->owner, r->seq);
}

static struct harness start(const char *events)
{
	struct harness h;
	const char *extra[] = { "--timeline-events", events, NULL };

	cr_assert_eq(harness_start_krayd_opts(&h, 2, extra), 0);
	return h;
}

Test(timeline, every_task_is_an_event)
{
	enum { N = 40 };
	kray_ref refs[N], bad;
	char id[64], *json;
	kray_value v;
	kray *k = harness_embedded(2);

	for (int i = 0; i < N; i++)
		refs[i] = harness_call1(k, "square", &KRAY_V_INT(i), 1);
	bad = harness_call1(k, "fail", &KRAY_V_BYTES("boom", 4), 1);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(harness_get1(k, refs[i], 20000, &v), 0, "%s", kray_errmsg(k));
		kray_value_clear(&v);
	}
	harness_get1(k, bad, 20000, &v);
	kray_value_clear(&v);

	json = timeline_of(k);
	cr_assert_eq(count(json, "{\"name\":\"square\",\"cat\":\"task\",\"ph\":\"X\""), N,
		     "%.2000s", json);
	for (int i = 0; i < N; i++) {
		task_id(&refs[i], id, sizeof(id));
		cr_assert_eq(count(json, id), 1, "task %d (%s) once in the timeline", i, id);
	}
	task_id(&bad, id, sizeof(id));
	char *failed = strstr(json, id);

	cr_assert_not_null(failed, "the failed task is in the timeline");
	cr_assert(!strncmp(strstr(failed, "\"state\":"), "\"state\":\"FAILED\"", 16),
		  "the failed task says so: %.300s", failed);
	cr_assert_not_null(strstr(failed, "\"error\":\""), "with its error: %.400s", failed);
	cr_assert(strstr(failed, "boom") && strstr(failed, "boom") < strstr(failed, "}}"),
		  "its error text: %.400s", failed);
	cr_assert_eq(count(json, "\"state\":\"FINISHED\""), N);
	cr_assert_geq(count(json, "\"name\":\"thread_name\""), 1, "workers are named");
	cr_assert_eq(count(json, "\"tasks_recorded\":41"), 1, "%s", strstr(json, "otherData"));
	free(json);
	harness_shutdown(k);
}

Test(timeline, ring_keeps_the_last)
{
	/* krayd records the tasks it runs: these synchronous calls would take the fast path,
	 * past it (docs/fastpath.md). */
	setenv("KRAY_FASTPATH", "off", 1);
	struct harness h = start("8");
	kray *k = harness_connect(h.sock);
	kray_ref refs[20];
	char id[64], *json;

	for (int i = 0; i < 20; i++) /* one at a time: the ring order is the run order */
		harness_expect_int(k, "square", &KRAY_V_INT(i), 1, (int64_t)i * i);
	json = timeline_of(k);
	cr_assert_eq(count(json, "\"ph\":\"X\""), 8, "%s", json);
	cr_assert_eq(count(json, "\"timeline_events\":8,\"tasks_recorded\":20"), 1, "%s",
		     strstr(json, "otherData"));
	free(json);

	/* The next 8 replace the ring entirely. */
	for (int i = 0; i < 8; i++)
		refs[i] = harness_call1(k, "noop", NULL, 0);
	for (int i = 0; i < 8; i++) {
		kray_value v;

		cr_assert_eq(harness_get1(k, refs[i], 20000, &v), 0);
		kray_value_clear(&v);
	}
	json = timeline_of(k);
	for (int i = 0; i < 8; i++) {
		task_id(&refs[i], id, sizeof(id));
		cr_assert_eq(count(json, id), 1, "noop %d in the ring", i);
	}
	cr_assert_eq(count(json, "\"name\":\"square\""), 0, "the older tasks are gone");
	free(json);
	harness_shutdown(k);
}

Test(timeline, off_records_nothing)
{
	struct harness h = start("0");
	kray *k = harness_connect(h.sock);
	char *json;

	harness_expect_int(k, "square", &KRAY_V_INT(3), 1, 9);
	json = timeline_of(k);
	cr_assert_eq(count(json, "\"ph\""), 0, "%s", json);
	cr_assert_eq(count(json, "\"timeline_events\":0,\"tasks_recorded\":0"), 1, "%s", json);
	free(json);
	harness_shutdown(k);
}

Test(timeline, request_with_a_body_is_refused)
{
	struct harness h = start("16");
	struct {
		struct kray_frame_hdr h;
		uint64_t junk;
	} f = { .h = { .magic = KRAY_WIRE_MAGIC,
		       .version = KRAY_WIRE_VERSION,
		       .type = KRAY_MSG_TIMELINE,
		       .len = 8,
		       .req = 1 } };

	harness_raw_expect_error(&h, &f, sizeof(f), -EBADMSG, "TIMELINE with a body");
	harness_expect_serving(&h, "a malformed TIMELINE");
	f.h.type = KRAY_MSG_LIST_OBJECTS; /* the other export, same rule */
	harness_raw_expect_error(&h, &f, sizeof(f), -EBADMSG, "LIST_OBJECTS with a body");
	harness_expect_serving(&h, "a malformed LIST_OBJECTS");
}

/* A full ring (10,000 tasks, about 3 MB of JSON) is rendered a slice per loop turn: while
 * one client waits for it, another's small requests are answered meanwhile, and the
 * answer still holds every task once. */
struct big_req {
	kray *k;
	int done;
	size_t events;
};

static void *big_timeline(void *arg)
{
	struct big_req *b = arg;

	for (int i = 0; i < 3; i++) {
		char *json = timeline_of(b->k);

		b->events = count(json, "\"ph\":\"X\"");
		free(json);
	}
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* One kray_status() round trip, in ns. */
static int64_t status_ns(kray *k)
{
	struct kray_stats st;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(kray_status(k, &st), 0, "%s", kray_errmsg(k));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
}

static void report(const char *what, int64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	cr_log_info("%s: %u status requests, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, n,
		    v[n / 2] / 1e6, v[(size_t)(n - 1) * 99 / 100] / 1e6, v[n - 1] / 1e6);
}

Test(timeline, big_answer_does_not_hold_the_loop)
{
	enum { N = 10000, BATCH = 500, MAXLAT = 100000 };
	struct harness h = start("10000");
	kray *k = harness_connect(h.sock), *k2 = harness_connect(h.sock);
	struct big_req b = { .k = k };
	static int64_t base[200], lat[MAXLAT];
	unsigned answered = 0;
	pthread_t th;

	for (int i = 0; i < N; i += BATCH) {
		kray_ref refs[BATCH];

		for (int j = 0; j < BATCH; j++)
			refs[j] = harness_call1(k, "noop", NULL, 0);
		for (int j = 0; j < BATCH; j++) {
			kray_value v;

			cr_assert_eq(harness_get1(k, refs[j], 20000, &v), 0);
			kray_value_clear(&v);
		}
	}
	/* The same small requests with nothing else asked: this machine's floor. */
	for (unsigned i = 0; i < 200; i++) {
		base[i] = status_ns(k2);
		usleep(1000);
	}
	cr_assert_eq(pthread_create(&th, NULL, big_timeline, &b), 0);
	while (!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE)) {
		int64_t ns = status_ns(k2);

		if (answered < MAXLAT)
			lat[answered] = ns;
		answered++;
		usleep(1000); /* (a small client: it must not starve krayd of the CPU) */
	}
	pthread_join(th, NULL);
	cr_assert_eq(b.events, N, "every task of the full ring, once");
	cr_assert_geq(answered, 3, "small requests answered while 3 full timelines rendered");
	report("alone", base, 200);
	report("during 3 full timelines", lat, answered < MAXLAT ? answered : MAXLAT);
	harness_shutdown(k2);
	harness_shutdown(k);
}
