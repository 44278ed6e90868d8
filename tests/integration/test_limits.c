// SPDX-License-Identifier: Apache-2.0
/*
 * Every size and count that comes from outside krayd, tested at its limit (it works) and
 * just past it (a clear error, and krayd goes on serving): names, argument and return
 * counts, refs per request, nested refs, retry, restart, thread and CPU counts, custom
 * resources, code and socket paths, object sizes (the inline limit, the store size, the
 * largest put and create), frame sizes (through libkray and on a raw socket), counts a
 * raw client can forge past what libkray checks, descriptors per frame, and frames that
 * other limits combined would push past KRAY_FRAME_MAX.  docs/limits.md lists the same
 * limits in one table.
 *
 * Every test starts its own krayd through the harness (one per test: a test that breaks
 * krayd cannot hide in the next one) and ends by checking that krayd is still alive and
 * answering.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../../common/wire.h"
#include "../fixtures/maps.h"
#include "../fixtures/pattern.h"
#include "harness.h"

TestSuite(limits, .fini = harness_cleanup, .timeout = 120);

#define GET_MS 60000 /* a get that should answer soon, with room for a slow machine */
#define INLINE_MAX (64u << 10) /* krayd's default inline-max (daemon/core/config.c) */

/* ---- helpers ------------------------------------------------------------------------- */

/* A NUL-terminated string of len bytes: prefix, then 'x' up to len.  Freed by the caller. */
static char *name_of(const char *prefix, size_t len)
{
	char *s = malloc(len + 1);

	cr_assert_not_null(s, "out of memory");
	memset(s, 'x', len);
	memcpy(s, prefix, strlen(prefix) < len ? strlen(prefix) : len);
	s[len] = 0;
	return s;
}

/* The fixtures' names at KRAY_NAME_MAX (tests/fixtures/testfns.c and actorfns.c). */
static char *limit_function(void)
{
	return name_of("limit_function_", KRAY_NAME_MAX);
}

static char *limit_class(void)
{
	return name_of("LimitActorClass", KRAY_NAME_MAX);
}

static char *limit_method(void)
{
	return name_of("limit_method___", KRAY_NAME_MAX);
}

static struct harness start(int num_cpus, const char *const *extra)
{
	struct harness h;
	int rc = harness_start_krayd_opts(&h, num_cpus, extra);

	cr_assert_eq(rc, 0, "harness_start_krayd: %d", rc);
	return h;
}

/* Asserts an -EINVAL (or other want) refusal that left a message. */
static void expect_rc(kray *k, int rc, int want, const char *what)
{
	cr_assert_eq(rc, want, "%s: rc %d (%s), want %d (%s)", what, rc, strerror(-rc), want,
		     strerror(-want));
	cr_assert(*kray_errmsg(k), "%s: no message with the error", what);
}

/* Gets r (and releases it), asserting an INT64 equal to want. */
static void expect_int_ref(kray *k, kray_ref r, int64_t want, const char *what)
{
	kray_value v = { 0 };
	int rc = harness_get1(k, r, GET_MS, &v);

	cr_assert_eq(rc, 0, "%s: get: %d %s (value type %d: %s)", what, rc, kray_errmsg(k), v.type,
		     v.type == KRAY_ERROR ? (const char *)v.data : "");
	cr_assert_eq(v.type, KRAY_INT64, "%s: value type %d, want INT64", what, v.type);
	cr_assert_eq(v.i, want, "%s: %lld, want %lld", what, (long long)v.i, (long long)want);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
}

/* Calls method() without arguments on actor a and expects an INT64 equal to want. */
static void expect_method_int(kray *k, kray_ref a, const char *method, int64_t want,
			      const char *what)
{
	kray_ref r;
	int rc = kray_actor_call(k, a, method, NULL, 0, NULL, &r);

	cr_assert_eq(rc, 0, "%s: kray_actor_call(%.32s): %d %s", what, method, rc, kray_errmsg(k));
	expect_int_ref(k, r, want, what);
}

/* A buffer of n bytes of pattern seed (pattern.h). */
static uint8_t *pattern(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p, "out of memory for %zu bytes", n);
	pattern_fill(p, 0, n, seed);
	return p;
}

/* Polls kray_status until no object is left (10 s at most). */
static struct kray_stats expect_no_objects(kray *k, const char *after)
{
	int64_t deadline = harness_now_ms() + 10000;
	struct kray_stats st;

	do {
		st = harness_status(k);
		if (!st.objects && !st.store_bytes && !st.objects_pinned)
			return st;
		usleep(20000);
	} while (harness_now_ms() < deadline);
	cr_assert_fail("10 s after %s: objects %llu, store_bytes %llu, pinned %llu", after,
		       (unsigned long long)st.objects, (unsigned long long)st.store_bytes,
		       (unsigned long long)st.objects_pinned);
	return st;
}

/* ---- raw sockets --------------------------------------------------------------------- */

/* Sends the frame in b on a new raw driver connection and expects ERROR want, then EOF;
 * empties b for the next frame. */
static void raw_expect_error(struct harness *h, struct kbuf *b, int want, const char *what)
{
	harness_raw_expect_error(h, b->data, b->len, want, what);
	b->len = b->off = 0;
}

/* ---- names --------------------------------------------------------------------------- */

/* A function name of KRAY_NAME_MAX bytes runs; one byte more is -EINVAL at kray_call. */
Test(limits, function_name, .timeout = 60)
{
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	char *fn = limit_function(), *fn256 = name_of("limit_function_", KRAY_NAME_MAX + 1);
	kray_ref r, keep = { 1, 2, 3, 4 };
	int rc;

	cr_assert_eq(strlen(fn), 255, "the limit name is %zu bytes", strlen(fn));
	expect_int_ref(k, harness_call1(k, fn, NULL, 0), 255, "the 255-byte function");

	r = keep;
	rc = kray_call(k, fn256, NULL, 0, NULL, &r);
	expect_rc(k, rc, -EINVAL, "kray_call with a 256-byte name");
	cr_assert(!memcmp(&r, &keep, sizeof(r)), "a refused call wrote its ref");
	/* an unknown 255-byte name is submitted and fails at get, naming it */
	fn[KRAY_NAME_MAX - 1] = 'y';
	harness_expect_error(k, fn, NULL, 0, NULL, KRAY_ERR_UNKNOWN_FUNCTION, fn, NULL);
	free(fn);
	free(fn256);
	harness_shutdown(k);
	harness_expect_serving(&h, "names at and past the limit");
}

/*
 * Actor class, method, name and namespace names: KRAY_NAME_MAX bytes work (the class and
 * method of the fixture have 255-byte names, and kray_get_actor finds a 255-byte name in a
 * 255-byte namespace); one byte more is -EINVAL, for create, lookup and calls.
 */
Test(limits, actor_names, .timeout = 60)
{
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	char *cls = limit_class(), *method = limit_method();
	char *cls256 = name_of("LimitActorClass", KRAY_NAME_MAX + 1);
	char *m256 = name_of("limit_method___", KRAY_NAME_MAX + 1);
	char *name = name_of("name-", KRAY_NAME_MAX), *ns = name_of("ns-", KRAY_NAME_MAX);
	char *name256 = name_of("name-", KRAY_NAME_MAX + 1);
	char *ns256 = name_of("ns-", KRAY_NAME_MAX + 1);
	kray_ref a, found, r;
	int rc;

	o.name = name;
	o.ns = ns;
	rc = kray_actor_create(k, cls, NULL, 0, &o, &a);
	cr_assert_eq(rc, 0, "create: 255-byte class, name and namespace: %d %s", rc,
		     kray_errmsg(k));
	expect_method_int(k, a, method, 255, "the 255-byte method");
	rc = kray_get_actor(k, name, ns, &found);
	cr_assert_eq(rc, 0, "kray_get_actor(255-byte name, 255-byte ns): %d %s", rc,
		     kray_errmsg(k));
	cr_assert(!memcmp(&found, &a, sizeof(a)), "kray_get_actor found another actor");
	expect_method_int(k, found, "nargs", 0, "nargs() through the looked-up handle");
	kray_release(k, &found, 1);

	/* one byte more: refused before anything is sent */
	o.name = NULL;
	o.ns = NULL;
	expect_rc(k, kray_actor_create(k, cls256, NULL, 0, &o, &found), -EINVAL,
		  "a 256-byte class name");
	o.name = name256;
	expect_rc(k, kray_actor_create(k, cls, NULL, 0, &o, &found), -EINVAL,
		  "a 256-byte actor name");
	o.name = name;
	o.ns = ns256;
	expect_rc(k, kray_actor_create(k, cls, NULL, 0, &o, &found), -EINVAL,
		  "a 256-byte namespace");
	expect_rc(k, kray_get_actor(k, name256, ns, &found), -EINVAL,
		  "kray_get_actor with a 256-byte name");
	expect_rc(k, kray_get_actor(k, name, ns256, &found), -EINVAL,
		  "kray_get_actor with a 256-byte namespace");
	expect_rc(k, kray_actor_call(k, a, m256, NULL, 0, NULL, &r), -EINVAL,
		  "a 256-byte method name");

	/* the actor and the connection are fine after the refusals */
	expect_method_int(k, a, method, 255, "the 255-byte method after the refusals");
	kray_release(k, &a, 1);
	free(cls);
	free(method);
	free(cls256);
	free(m256);
	free(name);
	free(ns);
	free(name256);
	free(ns256);
	harness_shutdown(k);
	harness_expect_serving(&h, "actor names at and past the limit");
}

/* ---- counts -------------------------------------------------------------------------- */

/* KRAY_ARGS_MAX (1024) arguments reach a task and a constructor; 1025 is -EINVAL. */
Test(limits, arguments, .timeout = 60)
{
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	kray_value *args = calloc(KRAY_ARGS_MAX + 1, sizeof(*args));
	char *cls = limit_class();
	kray_ref r, a;
	int rc;

	cr_assert_not_null(args);
	for (int i = 0; i <= KRAY_ARGS_MAX; i++)
		args[i] = KRAY_V_INT(i);
	expect_int_ref(k, harness_call1(k, "count_args", args, KRAY_ARGS_MAX), KRAY_ARGS_MAX,
		       "count_args(1024 arguments)");
	expect_rc(k, kray_call(k, "count_args", args, KRAY_ARGS_MAX + 1, NULL, &r), -EINVAL,
		  "kray_call with 1025 arguments");

	rc = kray_actor_create(k, cls, args, KRAY_ARGS_MAX, NULL, &a);
	cr_assert_eq(rc, 0, "a constructor with 1024 arguments: %d %s", rc, kray_errmsg(k));
	expect_method_int(k, a, "nargs", KRAY_ARGS_MAX, "the constructor's argument count");
	rc = kray_actor_call(k, a, "nargs", args, KRAY_ARGS_MAX + 1, NULL, &r);
	expect_rc(k, rc, -EINVAL, "a method call with 1025 arguments");
	expect_rc(k, kray_actor_create(k, cls, args, KRAY_ARGS_MAX + 1, NULL, &r), -EINVAL,
		  "a constructor with 1025 arguments");
	kray_release(k, &a, 1);

	/* still usable */
	expect_int_ref(k, harness_call1(k, "count_args", args, 3), 3, "count_args after it");
	free(args);
	free(cls);
	harness_shutdown(k);
	harness_expect_serving(&h, "argument counts at and past the limit");
}

/* num_returns KRAY_RETURNS_MAX (256) gives 256 right values; 257 is -EINVAL. */
Test(limits, num_returns, .timeout = 60)
{
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_ref refs[KRAY_RETURNS_MAX + 1], keep = { 1, 2, 3, 4 };
	kray_value vals[KRAY_RETURNS_MAX], a = KRAY_V_INT(1000);
	char *cls = limit_class();
	kray_ref actor;
	int rc;

	o.num_returns = KRAY_RETURNS_MAX;
	rc = kray_call(k, "multi", &a, 1, &o, refs);
	cr_assert_eq(rc, 0, "multi with 256 returns: %d %s", rc, kray_errmsg(k));
	rc = kray_get(k, refs, KRAY_RETURNS_MAX, GET_MS, vals);
	cr_assert_eq(rc, 0, "get of 256 returns: %d %s", rc, kray_errmsg(k));
	for (int i = 0; i < KRAY_RETURNS_MAX; i++) {
		cr_assert(vals[i].type == KRAY_INT64 && vals[i].i == 1000 + i,
			  "return %d: type %d value %lld", i, vals[i].type, (long long)vals[i].i);
		kray_value_clear(&vals[i]);
	}
	kray_release(k, refs, KRAY_RETURNS_MAX);

	o.num_returns = KRAY_RETURNS_MAX + 1;
	refs[0] = keep;
	expect_rc(k, kray_call(k, "multi", &a, 1, &o, refs), -EINVAL, "num_returns 257");
	cr_assert(!memcmp(&refs[0], &keep, sizeof(keep)), "a refused call wrote its refs");
	rc = kray_actor_create(k, cls, NULL, 0, NULL, &actor);
	cr_assert_eq(rc, 0, "create: %d %s", rc, kray_errmsg(k));
	expect_rc(k, kray_actor_call(k, actor, "nargs", NULL, 0, &o, refs), -EINVAL,
		  "a method call with num_returns 257");
	kray_release(k, &actor, 1);
	free(cls);
	expect_no_objects(k, "releasing 256 returns");
	harness_shutdown(k);
	harness_expect_serving(&h, "num_returns at and past the limit");
}

/*
 * KRAY_REFS_MAX (65,536) refs in one get, wait and release.  The objects come from 256
 * tasks with 256 returns each, so that this process has none of them cached and the get
 * really goes to krayd (libkray splits it into GETs of 253 refs).  65,537 is -EINVAL for
 * each call.
 */
Test(limits, refs_per_request, .timeout = 120)
{
	enum { N = KRAY_REFS_MAX };
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_ref *refs = calloc(N + 1, sizeof(*refs));
	kray_value *vals = calloc(N + 1, sizeof(*vals));
	uint8_t *ready = calloc(N + 1, 1);
	struct kray_stats st;
	size_t nready = 0;
	int rc;

	cr_assert(refs && vals && ready, "out of memory");
	o.num_returns = KRAY_RETURNS_MAX;
	for (int t = 0; t < N / KRAY_RETURNS_MAX; t++) {
		kray_value a = KRAY_V_INT(t * KRAY_RETURNS_MAX);

		rc = kray_call(k, "multi", &a, 1, &o, refs + t * KRAY_RETURNS_MAX);
		cr_assert_eq(rc, 0, "multi %d: %d %s", t, rc, kray_errmsg(k));
	}
	refs[N] = refs[0];

	rc = kray_wait(k, refs, N, N, GET_MS, ready, &nready);
	cr_assert_eq(rc, 0, "kray_wait(65536 refs): %d %s", rc, kray_errmsg(k));
	cr_assert_eq(nready, N, "kray_wait: %zu of 65536 ready", nready);
	rc = kray_get(k, refs, N, GET_MS, vals);
	cr_assert_eq(rc, 0, "kray_get(65536 refs): %d %s", rc, kray_errmsg(k));
	for (int i = 0; i < N; i++) {
		cr_assert(vals[i].type == KRAY_INT64 && vals[i].i == i, "value %d: type %d, %lld",
			  i, vals[i].type, (long long)vals[i].i);
		kray_value_clear(&vals[i]);
	}
	st = harness_status(k);
	cr_assert_geq(st.objects, N, "objects %llu with 65536 held",
		      (unsigned long long)st.objects);

	expect_rc(k, kray_get(k, refs, N + 1, GET_MS, vals), -EINVAL, "kray_get(65537 refs)");
	expect_rc(k, kray_wait(k, refs, N + 1, 1, GET_MS, ready, &nready), -EINVAL,
		  "kray_wait(65537 refs)");
	expect_rc(k, kray_release(k, refs, N + 1), -EINVAL, "kray_release(65537 refs)");
	/* nothing was released by the refused call */
	rc = kray_get(k, refs + N - 3, 3, GET_MS, vals);
	cr_assert_eq(rc, 0, "get after the refused release: %d %s", rc, kray_errmsg(k));
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(vals[i].i, N - 3 + i, "value %d after the refused release", i);
		kray_value_clear(&vals[i]);
	}
	rc = kray_release(k, refs, N);
	cr_assert_eq(rc, 0, "kray_release(65536 refs): %d %s", rc, kray_errmsg(k));
	expect_no_objects(k, "releasing 65536 refs in one call");
	free(refs);
	free(vals);
	free(ready);
	harness_shutdown(k);
	harness_expect_serving(&h, "65536 and 65537 refs");
}

/*
 * Nested refs: an object may contain 65,535 refs (the wire's 16-bit count); a getter
 * borrows every one.  65,536 is -EINVAL at kray_put_refs.
 */
Test(limits, nested_refs, .timeout = 120)
{
	enum { N = 65535 };
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_ref *refs = calloc(N + 1, sizeof(*refs)), c, keep = { 1, 2, 3, 4 };
	kray_value v = { 0 }, tag = KRAY_V_INT(7), got[2];
	int rc;

	cr_assert_not_null(refs);
	o.num_returns = KRAY_RETURNS_MAX;
	for (int t = 0; t < (N + 1) / KRAY_RETURNS_MAX; t++) {
		kray_value a = KRAY_V_INT(t * KRAY_RETURNS_MAX);

		rc = kray_call(k, "multi", &a, 1, &o, refs + t * KRAY_RETURNS_MAX);
		cr_assert_eq(rc, 0, "multi %d: %d %s", t, rc, kray_errmsg(k));
	}
	c = keep;
	expect_rc(k, kray_put_refs(k, &tag, refs, N + 1, &c), -EINVAL, "kray_put_refs(65536 refs)");
	cr_assert(!memcmp(&c, &keep, sizeof(c)), "a refused put wrote its ref");
	rc = kray_put_refs(k, &tag, refs, N, &c);
	cr_assert_eq(rc, 0, "kray_put_refs(65535 refs): %d %s", rc, kray_errmsg(k));

	/* the container keeps them alive without this process's refs */
	kray_release(k, refs, N + 1);
	rc = harness_get1(k, c, GET_MS, &v);
	cr_assert_eq(rc, 0, "get of the container: %d %s", rc, kray_errmsg(k));
	cr_assert(v.type == KRAY_INT64 && v.i == 7, "container value: type %d", v.type);
	cr_assert_eq(v.nrefs, N, "the container holds %zu refs, want 65535", v.nrefs);
	for (size_t i = 0; i < N; i++)
		cr_assert(!memcmp(&v.refs[i], &refs[i], sizeof(refs[i])), "contained ref %zu", i);
	/* borrowed: gettable */
	rc = kray_get(k, &v.refs[N - 2], 2, GET_MS, got);
	cr_assert_eq(rc, 0, "get of two borrowed refs: %d %s", rc, kray_errmsg(k));
	cr_assert(got[0].i == N - 2 && got[1].i == N - 1, "borrowed values %lld %lld",
		  (long long)got[0].i, (long long)got[1].i);
	kray_value_clear(&got[0]);
	kray_value_clear(&got[1]);
	rc = kray_release(k, v.refs, v.nrefs);
	cr_assert_eq(rc, 0, "release of the borrowed refs: %d %s", rc, kray_errmsg(k));
	kray_value_clear(&v);
	kray_release(k, &c, 1);
	expect_no_objects(k, "releasing the container and what it borrowed");
	free(refs);
	harness_shutdown(k);
	harness_expect_serving(&h, "65535 and 65536 nested refs");
}

/*
 * Options that are counts: max_retries, max_restarts and max_task_retries up to 32,767
 * (the wire's 16 bits), max_concurrency up to 1024, num_cpus up to 4096 in libkray and up
 * to the node's CPU slots in krayd; one more is -EINVAL.  At the limit: a task with
 * 32,767 retries runs; an actor with 1024 method threads answers; one that holds every
 * CPU slot of the node answers.
 */
Test(limits, option_counts, .timeout = 60)
{
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	struct kray_call_opts co = KRAY_CALL_OPTS_DEFAULT;
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	char *cls = limit_class();
	kray_value a = KRAY_V_INT(5);
	struct kray_stats st;
	kray_ref r, act;
	int rc;

	co.max_retries = INT16_MAX;
	rc = kray_call(k, "square", &a, 1, &co, &r);
	cr_assert_eq(rc, 0, "max_retries 32767: %d %s", rc, kray_errmsg(k));
	expect_int_ref(k, r, 25, "square with max_retries 32767");
	co.max_retries = INT16_MAX + 1;
	expect_rc(k, kray_call(k, "square", &a, 1, &co, &r), -EINVAL, "max_retries 32768");
	co.max_retries = -2;
	expect_rc(k, kray_call(k, "square", &a, 1, &co, &r), -EINVAL, "max_retries -2");

	o.max_restarts = INT16_MAX;
	o.max_task_retries = INT16_MAX;
	o.max_concurrency = 1024;
	rc = kray_actor_create(k, cls, NULL, 0, &o, &act);
	cr_assert_eq(rc, 0, "restarts 32767, retries 32767, 1024 threads: %d %s", rc,
		     kray_errmsg(k));
	expect_method_int(k, act, "nargs", 0, "an actor with 1024 method threads");
	kray_release(k, &act, 1);
	o = KRAY_ACTOR_OPTS_DEFAULT;
	o.max_restarts = INT16_MAX + 1;
	expect_rc(k, kray_actor_create(k, cls, NULL, 0, &o, &act), -EINVAL, "max_restarts 32768");
	o = KRAY_ACTOR_OPTS_DEFAULT;
	o.max_task_retries = INT16_MAX + 1;
	expect_rc(k, kray_actor_create(k, cls, NULL, 0, &o, &act), -EINVAL,
		  "max_task_retries 32768");
	o = KRAY_ACTOR_OPTS_DEFAULT;
	o.max_concurrency = 1025;
	expect_rc(k, kray_actor_create(k, cls, NULL, 0, &o, &act), -EINVAL, "max_concurrency 1025");
	o = KRAY_ACTOR_OPTS_DEFAULT;
	o.num_cpus = 4097;
	expect_rc(k, kray_actor_create(k, cls, NULL, 0, &o, &act), -EINVAL, "num_cpus 4097");
	/* krayd's own limit is the node's CPU slots (2 here): 3 is refused with a reason */
	o.num_cpus = 3;
	expect_rc(k, kray_actor_create(k, cls, NULL, 0, &o, &act), -EINVAL,
		  "num_cpus 3 on a node of 2");
	cr_assert(strstr(kray_errmsg(k), "CPUs"), "message \"%s\" does not say why",
		  kray_errmsg(k));
	o.num_cpus = 2;
	rc = kray_actor_create(k, cls, NULL, 0, &o, &act);
	cr_assert_eq(rc, 0, "num_cpus 2 on a node of 2: %d %s", rc, kray_errmsg(k));
	expect_method_int(k, act, "nargs", 0, "an actor holding every CPU slot");
	st = harness_status(k);
	cr_assert_eq(st.actors_alive, 1, "actors_alive %llu", (unsigned long long)st.actors_alive);
	kray_release(k, &act, 1);
	free(cls);
	harness_shutdown(k);
	harness_expect_serving(&h, "option counts at and past the limit");
}

/*
 * Custom resources ("NAME:QTY,..."): at most KRAY_RESOURCES_MAX (16) per list, names of 31
 * bytes, quantities up to 1,000,000,000 with 3 decimals, and a list of 255 bytes (the
 * wire's 8-bit length, and krayd's `resources` setting).  At each limit krayd starts with
 * such a list and an actor that asks for it lives; one more is refused: krayd does not
 * start, kray_actor_create says -EINVAL.
 */
Test(limits, resources, .timeout = 60)
{
	char node[512], ask[512], name31[40], name32[40], long255[300], long256[300];
	const char *extra[] = { "--resources", node, NULL };
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct harness h;
	size_t n = 0;
	kray_ref a, r;
	kray *k;
	int rc;

	memset(name31, 'R', 31);
	name31[31] = 0;
	memset(name32, 'R', 32);
	name32[32] = 0;
	/* "RRR...:000...01": a name of 31 bytes and a quantity of 1, 255 bytes in all */
	snprintf(long255, sizeof(long255), "%s:", name31);
	memset(long255 + 32, '0', 255 - 32);
	long255[254] = '1';
	long255[255] = 0;
	memcpy(long256, long255, 255);
	long256[254] = '0';
	long256[255] = '1';
	long256[256] = 0;
	cr_assert_eq(strlen(long255), 255);
	cr_assert_eq(strlen(long256), 256);

	/* 16 resources on the node (one of them with a 31-byte name) */
	for (int i = 0; i < KRAY_RESOURCES_MAX - 1; i++)
		n += (size_t)snprintf(node + n, sizeof(node) - n, "r%d:1000000000,", i);
	snprintf(node + n, sizeof(node) - n, "%s:2.5", name31);
	cr_assert_leq(strlen(node), 255, "the node's list is %zu bytes", strlen(node));
	rc = harness_start_krayd_opts(&h, 2, extra);
	cr_assert_eq(rc, 0, "krayd with 16 resources: %d", rc);
	k = harness_connect(h.sock);

	/* an actor holding all 16, the largest quantity, 3 decimals */
	n = 0;
	for (int i = 0; i < KRAY_RESOURCES_MAX - 1; i++)
		n += (size_t)snprintf(ask + n, sizeof(ask) - n, "r%d:%s,", i,
				      i ? "0.001" : "1000000000");
	snprintf(ask + n, sizeof(ask) - n, "%s:1.5", name31);
	o.resources = ask;
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &a);
	cr_assert_eq(rc, 0, "an actor with 16 resources: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(kray_actor_call(k, a, "read", NULL, 0, NULL, &r), 0, "call");
	expect_int_ref(k, r, 0, "an actor holding 16 resources");
	kray_release(k, &a, 1);
	/* a list of 255 bytes */
	o.resources = long255;
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &a);
	cr_assert_eq(rc, 0, "an actor with a 255-byte resource list: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(kray_actor_call(k, a, "read", NULL, 0, NULL, &r), 0, "call");
	expect_int_ref(k, r, 0, "an actor with a 255-byte resource list");
	kray_release(k, &a, 1);

	/* one more of each */
	snprintf(ask + strlen(ask), sizeof(ask) - strlen(ask), ",r0:1");
	o.resources = ask;
	expect_rc(k, kray_actor_create(k, "Counter", NULL, 0, &o, &a), -EINVAL, "17 resources");
	snprintf(ask, sizeof(ask), "%s:1", name32);
	expect_rc(k, kray_actor_create(k, "Counter", NULL, 0, &o, &a), -EINVAL,
		  "a 32-byte resource name");
	o.resources = "r0:1000000001";
	expect_rc(k, kray_actor_create(k, "Counter", NULL, 0, &o, &a), -EINVAL,
		  "a quantity of 1,000,000,001");
	o.resources = "r0:0.0001";
	expect_rc(k, kray_actor_create(k, "Counter", NULL, 0, &o, &a), -EINVAL,
		  "a quantity with 4 decimals");
	o.resources = long256;
	expect_rc(k, kray_actor_create(k, "Counter", NULL, 0, &o, &a), -EINVAL,
		  "a 256-byte resource list");
	harness_shutdown(k);
	harness_expect_serving(&h, "resource lists at and past the limits");
	harness_stop_krayd(&h);

	/* krayd's own setting: 255 bytes start, past any limit it does not */
	extra[1] = long255;
	rc = harness_start_krayd_opts(&h, 2, extra);
	cr_assert_eq(rc, 0, "krayd with a 255-byte resources setting: %d", rc);
	harness_stop_krayd(&h);
	extra[1] = long256;
	cr_assert_neq(harness_start_krayd_opts(&h, 2, extra), 0,
		      "krayd started with a 256-byte resources setting");
	snprintf(node + strlen(node), sizeof(node) - strlen(node), ",x:1");
	extra[1] = node;
	cr_assert_neq(harness_start_krayd_opts(&h, 2, extra), 0, "krayd started with 17 resources");
	snprintf(node, sizeof(node), "%s:1", name32);
	cr_assert_neq(harness_start_krayd_opts(&h, 2, extra), 0,
		      "krayd started with a 32-byte resource name");
}

/* ---- paths --------------------------------------------------------------------------- */

/* The test code path made absolute (libkray sends absolute paths), and a filler to pad it:
 * "<code>:/kray-limit-xxx..." of exactly len bytes (the filler names nothing). */
static char *code_path_of(size_t len)
{
	const char *code = getenv("KRAY_TEST_CODE_PATH");
	char real[PATH_MAX], *s;
	size_t n;

	cr_assert_not_null(code, "KRAY_TEST_CODE_PATH is not set");
	cr_assert_not_null(realpath(code, real), "realpath(%s): %s", code, strerror(errno));
	n = strlen(real);
	cr_assert_lt(n + 32, len, "the test code path is too long for this test");
	s = name_of(real, len);
	s[n] = ':';
	memcpy(s + n + 1, "/kray-limit-", 12);
	/* components of at most 200 bytes, so that each is a plain missing file */
	for (size_t i = n + 1 + 12; i < len; i++)
		s[i] = (i - n) % 200 == 0 ? '/' : 'p';
	return s;
}

/* A driver's code path of KRAY_PATH_MAX (4096) bytes works; 4097 is a clear error at
 * kray_init. */
Test(limits, code_path, .timeout = 60)
{
	struct harness h = start(2, NULL);
	char *path = code_path_of(KRAY_PATH_MAX), *path4097 = code_path_of(KRAY_PATH_MAX + 1);
	struct kray_config cfg = { .address = h.sock, .code_path = path };
	kray *k = NULL;
	kray_value a = KRAY_V_INT(12);
	int rc;

	cr_assert_eq(strlen(path), KRAY_PATH_MAX);
	rc = kray_init(&k, &cfg);
	cr_assert_eq(rc, 0, "kray_init with a 4096-byte code path: %d %s", rc, kray_init_errmsg());
	harness_expect_int(k, "square", &a, 1, 144);
	kray_shutdown(k);

	k = NULL;
	cfg.code_path = path4097;
	rc = kray_init(&k, &cfg);
	cr_assert_eq(rc, -ENAMETOOLONG,
		     "kray_init with a 4097-byte code path: %d (%s), want "
		     "-ENAMETOOLONG",
		     rc, kray_init_errmsg());
	cr_assert_null(k, "a failed kray_init wrote its handle");
	cr_assert(strstr(kray_init_errmsg(), "4096"), "message \"%s\" does not say the limit",
		  kray_init_errmsg());
	free(path);
	free(path4097);
	harness_expect_serving(&h, "code paths at and past the limit");
}

/*
 * krayd's own default code path (--code-path) has the same limit as a driver's, 4096
 * bytes: a driver without a code path then runs tasks from it.  4097 bytes stop krayd at
 * start with a message.
 */
Test(limits, krayd_code_path, .timeout = 60)
{
	char *path = code_path_of(KRAY_PATH_MAX), *path4097 = code_path_of(KRAY_PATH_MAX + 1);
	const char *extra[] = { "--code-path", path, NULL };
	struct harness h;
	struct kray_config cfg = { 0 };
	kray_value a = KRAY_V_INT(3);
	kray *k = NULL;
	int rc;

	rc = harness_start_krayd_opts(&h, 2, extra);
	cr_assert_eq(rc, 0, "krayd --code-path of 4096 bytes (KRAY_PATH_MAX) did not start: %d",
		     rc);
	cfg.address = h.sock;
	rc = kray_init(&k, &cfg);
	cr_assert_eq(rc, 0, "kray_init: %d %s", rc, kray_init_errmsg());
	harness_expect_int(k, "square", &a, 1, 9);
	kray_shutdown(k);
	harness_stop_krayd(&h);

	extra[1] = path4097;
	rc = harness_start_krayd_opts(&h, 2, extra);
	cr_assert_neq(rc, 0, "krayd started with a 4097-byte --code-path");
	free(path);
	free(path4097);
}

/*
 * A socket path of 107 bytes (sun_path holds 108 with the NUL) works for krayd and
 * kray_init; 108 bytes: krayd refuses to start, and kray_init says -ENAMETOOLONG.
 */
Test(limits, socket_path, .timeout = 60)
{
	char dir[128], sock[256], sock108[256];
	const char *extra[] = { "--socket", sock, NULL };
	struct kray_config cfg = { .code_path = getenv("KRAY_TEST_CODE_PATH") };
	struct harness h;
	kray_value a = KRAY_V_INT(4);
	kray *k = NULL;
	size_t n;
	int rc;

	harness_tmpdir(dir, sizeof(dir));
	n = strlen(dir);
	cr_assert_lt(n + 8, 107, "temp dir %s too long for this test", dir);
	snprintf(sock, sizeof(sock), "%s/", dir);
	memset(sock + n + 1, 's', 107 - n - 1);
	sock[107] = 0;
	memcpy(sock108, sock, 107);
	sock108[107] = 's';
	sock108[108] = 0;

	rc = harness_start_krayd_opts(&h, 2, extra);
	cr_assert_eq(rc, 0, "krayd with a 107-byte socket path: %d", rc);
	cfg.address = sock;
	rc = kray_init(&k, &cfg);
	cr_assert_eq(rc, 0, "kray_init(107-byte socket path): %d %s", rc, kray_init_errmsg());
	harness_expect_int(k, "square", &a, 1, 16);
	kray_shutdown(k);
	harness_stop_krayd(&h);

	k = NULL;
	cfg.address = sock108;
	rc = kray_init(&k, &cfg);
	cr_assert_eq(rc, -ENAMETOOLONG, "kray_init(108-byte socket path): %d (%s)", rc,
		     kray_init_errmsg());
	extra[1] = sock108;
	rc = harness_start_krayd_opts(&h, 2, extra);
	cr_assert_neq(rc, 0, "krayd started with a 108-byte socket path");
}

/* ---- object sizes -------------------------------------------------------------------- */

/*
 * An object of exactly inline-max bytes is small (inline in krayd's memory, a heap copy
 * in each process); one byte more is large (a sealed memfd, mapped read-only).  Checked
 * for kray_put, kray_create and a task's return value, with the bytes verified each time
 * and in a task that reads them.
 */
Test(limits, inline_max_object, .timeout = 60)
{
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	struct kray_call_opts o3 = KRAY_CALL_OPTS_DEFAULT;

	o3.num_returns = 3;
	for (size_t size = INLINE_MAX; size <= INLINE_MAX + 1; size++) {
		bool large = size > INLINE_MAX;
		uint64_t seed = size * 3;
		uint8_t *buf = pattern(size, seed);
		struct kray_stats before = harness_status(k), after;
		kray_value v = KRAY_V_BYTES(buf, size), got = { 0 }, ins[3];
		kray_value fa[2] = { KRAY_V_INT((int64_t)size), KRAY_V_INT((int64_t)seed) };
		kray_ref r, c, t, rr[3];
		void *p;
		int rc;

		/* kray_put */
		rc = kray_put(k, &v, &r);
		cr_assert_eq(rc, 0, "put of %zu bytes: %d %s", size, rc, kray_errmsg(k));
		after = harness_status(k);
		uint64_t store = after.store_bytes - before.store_bytes;
		uint64_t inl = after.object_bytes - before.object_bytes;

		if (large) {
			cr_assert_eq(store, size, "a %zu-byte put added %llu store bytes", size,
				     (unsigned long long)store);
		} else {
			cr_assert_eq(inl, size, "a %zu-byte put added %llu inline bytes", size,
				     (unsigned long long)inl);
			cr_assert_eq(after.store_bytes, before.store_bytes,
				     "a %zu-byte put used the store", size);
		}
		/* read back in a task (krayd's copy) */
		kray_value ra = KRAY_V_REF(r);
		rc = kray_call(k, "inspect_bytes", &ra, 1, &o3, rr);
		cr_assert_eq(rc, 0, "inspect_bytes: %d %s", rc, kray_errmsg(k));
		rc = kray_get(k, rr, 3, GET_MS, ins);
		cr_assert_eq(rc, 0, "inspect_bytes(%zu): %d %s", size, rc, kray_errmsg(k));
		cr_assert_eq((uint64_t)ins[0].i, checksum64(buf, size),
			     "the worker read other bytes than were put (%zu)", size);
		cr_assert_eq(ins[1].i, large ? 1 : 0, "%zu bytes in the worker: read-only %lld",
			     size, (long long)ins[1].i);
		cr_assert_eq(ins[2].i, (int64_t)size, "the worker saw %lld bytes",
			     (long long)ins[2].i);
		for (int i = 0; i < 3; i++)
			kray_value_clear(&ins[i]);
		kray_release(k, rr, 3);

		/* kray_create / kray_seal */
		rc = kray_create(k, size, &c, &p);
		cr_assert_eq(rc, 0, "kray_create(%zu): %d %s", size, rc, kray_errmsg(k));
		memcpy(p, buf, size);
		rc = kray_seal(k, &c);
		cr_assert_eq(rc, 0, "kray_seal(%zu): %d %s", size, rc, kray_errmsg(k));
		ra = KRAY_V_REF(c);
		rc = kray_call(k, "inspect_bytes", &ra, 1, &o3, rr);
		cr_assert_eq(rc, 0, "inspect_bytes: %d %s", rc, kray_errmsg(k));
		rc = kray_get(k, rr, 3, GET_MS, ins);
		cr_assert_eq(rc, 0, "inspect_bytes(created %zu): %d %s", size, rc, kray_errmsg(k));
		cr_assert_eq((uint64_t)ins[0].i, checksum64(buf, size),
			     "created object of %zu bytes differs", size);
		cr_assert_eq(ins[1].i, large ? 1 : 0, "created %zu bytes: read-only %lld", size,
			     (long long)ins[1].i);
		for (int i = 0; i < 3; i++)
			kray_value_clear(&ins[i]);
		kray_release(k, rr, 3);

		/* a task's return value */
		t = harness_call1(k, "make_pattern", fa, 2);
		rc = harness_get1(k, t, GET_MS, &got);
		cr_assert_eq(rc, 0, "make_pattern(%zu): %d %s", size, rc, kray_errmsg(k));
		cr_assert_eq(got.type, KRAY_BYTES, "make_pattern type %d", got.type);
		cr_assert_eq(got.len, size, "make_pattern: %zu bytes", got.len);
		cr_assert_eq(pattern_check(got.data, 0, size, seed), -1,
			     "make_pattern(%zu) bytes differ", size);
		cr_assert_eq(maps_read_only(got.data), large ? 1 : 0,
			     "a %zu-byte result: read-only %d", size, maps_read_only(got.data));
		kray_value_clear(&got);
		kray_release(k, &t, 1);
		kray_release(k, &r, 1);
		kray_release(k, &c, 1);
		free(buf);
		expect_no_objects(k, "releasing the objects");
	}
	harness_shutdown(k);
	harness_expect_serving(&h, "objects at inline-max and one byte more");
}

/*
 * The inline-max setting: at most 1 MiB.  krayd with inline-max 1M keeps a 1 MiB object
 * inline; with 1M + 1 it refuses to start.
 */
Test(limits, inline_max_setting, .timeout = 60)
{
	const char *extra[] = { "--inline-max", "1M", NULL };
	struct harness h = start(2, extra);
	kray *k = harness_connect(h.sock);
	uint8_t *buf = pattern(1 << 20, 11);
	kray_value v = KRAY_V_BYTES(buf, 1 << 20);
	struct kray_stats st;
	kray_ref r;
	int rc;

	rc = kray_put(k, &v, &r);
	cr_assert_eq(rc, 0, "put of 1 MiB: %d %s", rc, kray_errmsg(k));
	st = harness_status(k);
	cr_assert(st.object_bytes == 1 << 20 && st.store_bytes == 0,
		  "a 1 MiB put with inline-max 1M: inline %llu, store %llu",
		  (unsigned long long)st.object_bytes, (unsigned long long)st.store_bytes);
	kray_value ra = KRAY_V_REF(r);
	expect_int_ref(k, harness_call1(k, "inspect_bytes", &ra, 1),
		       (int64_t)checksum64(buf, 1 << 20), "a 1 MiB inline object read by a task");
	kray_release(k, &r, 1);
	free(buf);
	harness_shutdown(k);
	harness_stop_krayd(&h);

	extra[1] = "1048577";
	rc = harness_start_krayd_opts(&h, 2, extra);
	cr_assert_neq(rc, 0, "krayd started with inline-max 1M + 1");
}

/*
 * The store: an object of exactly store-size bytes fits an empty store; one byte more is
 * -ENOSPC for kray_put and kray_create, and KRAY_ERR_STORE_FULL for a task's result.
 * krayd goes on, and the store is empty afterwards.
 */
Test(limits, store_size, .timeout = 60)
{
	enum { STORE = 8 << 20 };
	const char *extra[] = { "--store-size", "8M", NULL };
	struct harness h = start(2, extra);
	kray *k = harness_connect(h.sock);
	uint8_t *buf = pattern(STORE + 1, 5);
	kray_value v = KRAY_V_BYTES(buf, STORE), got = { 0 };
	kray_value fa[2] = { KRAY_V_INT(STORE), KRAY_V_INT(6) };
	struct kray_stats st;
	kray_ref r, keep = { 1, 2, 3, 4 };
	void *p;
	int rc;

	rc = kray_put(k, &v, &r);
	cr_assert_eq(rc, 0, "put of exactly store-size: %d %s", rc, kray_errmsg(k));
	rc = harness_get1(k, r, GET_MS, &got);
	cr_assert_eq(rc, 0, "get: %d %s", rc, kray_errmsg(k));
	cr_assert(got.len == STORE && pattern_check(got.data, 0, STORE, 5) == -1,
		  "the store-size object differs");
	kray_value_clear(&got);
	kray_release(k, &r, 1);
	expect_no_objects(k, "releasing it");
	r = harness_call1(k, "make_pattern", fa, 2);
	rc = harness_get1(k, r, GET_MS, &got);
	cr_assert_eq(rc, 0, "make_pattern(store-size): %d %s", rc, kray_errmsg(k));
	cr_assert(got.len == STORE && pattern_check(got.data, 0, STORE, 6) == -1,
		  "the store-size result differs");
	kray_value_clear(&got);
	kray_release(k, &r, 1);
	expect_no_objects(k, "releasing the result");

	v.len = STORE + 1;
	r = keep;
	expect_rc(k, kray_put(k, &v, &r), -ENOSPC, "put of store-size + 1");
	cr_assert(!memcmp(&r, &keep, sizeof(r)), "a refused put wrote its ref");
	expect_rc(k, kray_create(k, STORE + 1, &r, &p), -ENOSPC, "create of store-size + 1");
	fa[0] = KRAY_V_INT(STORE + 1);
	harness_expect_error(k, "make_pattern", fa, 2, NULL, KRAY_ERR_STORE_FULL, "make_pattern",
			     NULL);
	st = expect_no_objects(k, "the refusals");
	cr_assert_eq(st.objects_spilled, 0, "objects_spilled %llu",
		     (unsigned long long)st.objects_spilled);
	/* the connection is fine */
	v.len = 1 << 20;
	rc = kray_put(k, &v, &r);
	cr_assert_eq(rc, 0, "put of 1 MiB after the refusals: %d %s", rc, kray_errmsg(k));
	kray_release(k, &r, 1);
	free(buf);
	harness_shutdown(k);
	harness_expect_serving(&h, "objects at store-size and one byte more");
}

/*
 * A task's large arguments must all be in memory at once when it is sent, so together
 * they are bounded by store-size.  With an 8 MiB store and both arguments spilled: two of
 * 4 MiB are restored and the task runs; two of 5 MiB (each fits alone) cannot all be
 * restored, and the task must fail with KRAY_ERR_STORE_FULL, not hang.
 */
Test(limits, store_size_arguments, .timeout = 60)
{
	const char *extra[] = { "--store-size", "8M", NULL };
	struct harness h = start(2, extra);
	kray *k = harness_connect(h.sock);

	for (size_t size = 4 << 20; size <= 5 << 20; size += 1 << 20) {
		uint8_t *buf = pattern(size + 4, 8);
		kray_ref refs[4], t;
		kray_value v = { 0 };
		struct kray_stats st;
		uint64_t sum = 0;
		int rc;

		/* a, b, then two more that push both out to disk, released */
		for (int i = 0; i < 4; i++) {
			kray_value b = KRAY_V_BYTES(buf + i, size);

			rc = kray_put(k, &b, &refs[i]);
			cr_assert_eq(rc, 0, "put %d of %zu bytes: %d %s", i, size, rc,
				     kray_errmsg(k));
			if (i < 2)
				sum += checksum64(buf + i, size);
		}
		free(buf);
		kray_release(k, refs + 2, 2);
		st = harness_status(k);
		cr_assert_eq(st.objects_spilled, 2, "%llu objects spilled, want both arguments",
			     (unsigned long long)st.objects_spilled);
		kray_value args[2] = { KRAY_V_REF(refs[0]), KRAY_V_REF(refs[1]) };
		t = harness_call1(k, "checksum_all", args, 2);
		rc = harness_get1(k, t, 20000, &v);
		cr_assert_neq(rc, -ETIMEDOUT,
			      "a task with two spilled %zu-byte arguments and an "
			      "8 MiB store gave no answer in 20 s",
			      size);
		if (size == 4 << 20) {
			cr_assert(rc == 0 && v.type == KRAY_INT64 && (uint64_t)v.i == sum,
				  "two 4 MiB arguments in an 8 MiB store: rc %d type %d (%s)", rc,
				  v.type, v.type == KRAY_ERROR ? (const char *)v.data : "");
		} else {
			cr_assert(rc == -EREMOTEIO && v.type == KRAY_ERROR &&
					  v.err == KRAY_ERR_STORE_FULL,
				  "two 5 MiB arguments in an 8 MiB store: rc %d type %d err %d", rc,
				  v.type, v.err);
		}
		kray_value_clear(&v);
		kray_release(k, &t, 1);
		kray_release(k, refs, 2);
		expect_no_objects(k, "releasing the arguments");
	}
	harness_shutdown(k);
	harness_expect_serving(&h, "arguments at and past store-size together");
}

/*
 * Objects are at most KRAY_OBJECT_MAX (1 TiB).  A put larger than a bytes argument may be
 * (KRAY_FRAME_MAX / 2) works: it goes through the store.  kray_create of 1 TiB is admitted
 * (and refused by a 1 GiB store with -ENOSPC); one byte more, or SIZE_MAX, is -EFBIG for
 * kray_create and kray_put, and the connection stays usable.
 */
Test(limits, put_and_create_size, .timeout = 120)
{
	const size_t size = KRAY_FRAME_MAX / 2 + 1;
	const char *extra[] = { "--pool-size", "0", NULL };
	struct harness h = start(2, extra);
	kray *k = harness_connect(h.sock);
	uint8_t *buf = pattern(size, 77);
	kray_value v = KRAY_V_BYTES(buf, size), got = { 0 };
	kray_ref r, keep = { 1, 2, 3, 4 };
	void *p;
	int rc;

	rc = kray_put(k, &v, &r);
	cr_assert_eq(rc, 0, "put of 128 MiB + 1: %d %s", rc, kray_errmsg(k));
	rc = harness_get1(k, r, GET_MS, &got);
	cr_assert_eq(rc, 0, "get of 128 MiB + 1: %d %s", rc, kray_errmsg(k));
	cr_assert(got.len == size && pattern_check(got.data, 0, size, 77) == -1,
		  "the 128 MiB + 1 object differs");
	kray_value_clear(&got);
	kray_release(k, &r, 1);
	free(buf);

	/* at the limit: admitted, then refused by the store's capacity */
	rc = kray_create(k, (size_t)KRAY_OBJECT_MAX, &r, &p);
	expect_rc(k, rc, -ENOSPC, "kray_create(1 TiB) with a 1 GiB store");
	/* past it: refused, and still connected (nothing is read from data) */
	r = keep;
	expect_rc(k, kray_create(k, (size_t)KRAY_OBJECT_MAX + 1, &r, &p), -EFBIG,
		  "kray_create(1 TiB + 1)");
	expect_rc(k, kray_create(k, SIZE_MAX, &r, &p), -EFBIG, "kray_create(SIZE_MAX)");
	v = KRAY_V_BYTES(&keep, (size_t)KRAY_OBJECT_MAX + 1);
	expect_rc(k, kray_put(k, &v, &r), -EFBIG, "kray_put(1 TiB + 1)");
	cr_assert(!memcmp(&r, &keep, sizeof(r)), "a refused create or put wrote its ref");
	rc = kray_status(k, &(struct kray_stats){ 0 });
	cr_assert_eq(rc, 0, "the refusals broke the connection: kray_status %d (%s)", rc,
		     kray_errmsg(k));
	expect_no_objects(k, "the refusals");
	harness_shutdown(k);
	harness_expect_serving(&h, "puts and creates past their limits");
}

/* ---- frames -------------------------------------------------------------------------- */

/* checksum_all's SUBMIT body: submit struct, name, and two BYTES values. */
static size_t submit_body(size_t len1, size_t len2)
{
	return sizeof(struct kray_msg_submit) + KRAY_PAD8(strlen("checksum_all")) +
	       2 * sizeof(struct kray_wire_value) + KRAY_PAD8(len1) + KRAY_PAD8(len2);
}

/*
 * A SUBMIT whose body is exactly KRAY_FRAME_MAX (256 MiB): two bytes arguments, the first
 * of KRAY_FRAME_MAX / 2 (the largest one value may be), checksummed by the task.  This is
 * the heaviest test here (about 1.5 GiB of memory among driver, krayd and worker, each
 * copying 256 MiB a few times), but a frame at the real limit is the only honest test of
 * it.  One byte more in the second argument is -E2BIG at kray_call, and so is one bytes
 * value over KRAY_FRAME_MAX / 2; the connection stays usable.
 */
Test(limits, frame_max_through_libkray, .timeout = 120)
{
	const size_t len1 = KRAY_FRAME_MAX / 2;
	const size_t len2 = KRAY_FRAME_MAX - submit_body(len1, 0);
	/* 256 MiB through a sanitized krayd on a busy machine can take longer than the
	 * default frame-timeout-ms: this test is about the size, not the deadline. */
	static const char *const slow_ok[] = { "--frame-timeout-ms", "120000", NULL };
	struct harness h = start(2, slow_ok);
	kray *k = harness_connect(h.sock);
	uint8_t *buf = pattern(len1 + 1, 99);
	kray_value args[2] = { KRAY_V_BYTES(buf, len1), KRAY_V_BYTES(buf + 1, len2) };
	uint64_t want = checksum64(buf, len1) + checksum64(buf + 1, len2);
	kray_ref r, keep = { 1, 2, 3, 4 };

	cr_assert_eq(submit_body(len1, len2), KRAY_FRAME_MAX, "the frame is not at the limit");
	expect_int_ref(k, harness_call1(k, "checksum_all", args, 2), (int64_t)want,
		       "a SUBMIT of exactly KRAY_FRAME_MAX bytes");

	args[1].len = len2 + 1;
	r = keep;
	expect_rc(k, kray_call(k, "checksum_all", args, 2, NULL, &r), -E2BIG,
		  "a SUBMIT past KRAY_FRAME_MAX");
	cr_assert(!memcmp(&r, &keep, sizeof(r)), "a refused call wrote its ref");
	args[0].len = len1 + 1;
	expect_rc(k, kray_call(k, "checksum_all", args, 1, NULL, &r), -E2BIG,
		  "a bytes argument of KRAY_FRAME_MAX / 2 + 1");
	free(buf);
	/* the refused frames left nothing half-written in the connection */
	args[0] = KRAY_V_BYTES("abc", 3);
	expect_int_ref(k, harness_call1(k, "checksum_all", args, 1), (int64_t)checksum64("abc", 3),
		       "a call after the refusals");
	harness_shutdown(k);
	harness_expect_serving(&h, "frames at and past KRAY_FRAME_MAX");
}

/*
 * A raw client announcing a frame of KRAY_FRAME_MAX + 1 bytes (before and after HELLO, and
 * the largest length the header can carry) gets an ERROR frame with -EMSGSIZE and its
 * connection is closed at once, without krayd waiting for (or allocating) the body.
 */
Test(limits, frame_past_max_raw, .timeout = 60)
{
	struct harness h = start(2, NULL);
	struct kray_frame_hdr fh = { .magic = KRAY_WIRE_MAGIC,
				     .version = KRAY_WIRE_VERSION,
				     .type = KRAY_MSG_PUT,
				     .len = KRAY_FRAME_MAX + 1 };
	struct kray_msg_hello_ok ok;
	struct kray_stats st;
	kray *k;
	int fd;

	fd = harness_raw_connect(h.sock, 10);
	harness_raw_send(fd, &fh, sizeof(fh));
	harness_expect_error_frame(fd, -EMSGSIZE, "KRAY_FRAME_MAX + 1 before HELLO");
	close(fd);

	fd = harness_raw_connect(h.sock, 10);
	harness_raw_hello(fd, &ok);
	harness_raw_send(fd, &fh, sizeof(fh));
	harness_expect_error_frame(fd, -EMSGSIZE, "KRAY_FRAME_MAX + 1 after HELLO");
	close(fd);

	fh.len = UINT32_MAX;
	fh.type = KRAY_MSG_SUBMIT;
	fd = harness_raw_connect(h.sock, 10);
	harness_raw_hello(fd, &ok);
	harness_raw_send(fd, &fh, sizeof(fh));
	harness_expect_error_frame(fd, -EMSGSIZE, "a frame of 4 GiB - 1");
	close(fd);

	k = harness_connect(h.sock);
	st = harness_status(k);
	cr_assert_geq(st.frames_rejected, 3, "frames_rejected %llu",
		      (unsigned long long)st.frames_rejected);
	harness_shutdown(k);
	harness_expect_serving(&h, "frames past KRAY_FRAME_MAX");
}

/* Appends a SUBMIT of fn with nargs NIL arguments and num_returns to b. */
static void raw_submit(struct kbuf *b, const struct kray_msg_hello_ok *ok, const char *fn,
		       uint32_t nargs, uint32_t num_returns)
{
	struct kray_msg_submit m = { .seq = 1,
				     .job = ok->job,
				     .num_returns = (uint16_t)num_returns,
				     .nargs = (uint16_t)nargs,
				     .name_len = (uint8_t)strlen(fn) };
	size_t off = wire_begin(b, KRAY_MSG_SUBMIT, 0);

	kbuf_put(b, &m, sizeof(m));
	wire_put_padded(b, fn, strlen(fn));
	for (uint32_t i = 0; i < nargs; i++)
		wire_put_value(b, KRAY_WT_NIL, 0, 0, NULL, 0);
	wire_end(b, off);
}

/* Appends a frame of type with a kray_msg_refs-like count n and n object ids. */
static void raw_oids(struct kbuf *b, uint16_t type, uint32_t n)
{
	size_t off = wire_begin(b, type, 1);

	if (type == KRAY_MSG_GET || type == KRAY_MSG_WAIT) {
		struct kray_msg_wait m = { .timeout_ms = 0, .n = n, .num_ready = 0 };

		kbuf_put(b, &m, sizeof(m)); /* kray_msg_get has the same layout up to pad */
	} else {
		struct kray_msg_refs m = { .n = n };

		kbuf_put(b, &m, sizeof(m));
	}
	kbuf_put(b, NULL, (size_t)n * sizeof(struct kray_oid));
	wire_end(b, off);
}

/*
 * Counts a raw client can put on the wire past what libkray lets through, each in an
 * otherwise well-formed frame: krayd's decoders reject every one (ERROR -EBADMSG, the
 * connection closed) and go on serving.  HELLO with a 4097-byte code path, SUBMIT with
 * 1025 arguments or 257 returns, GET, WAIT, RELEASE and UNPIN of 65,537 ids, an actor
 * create with 1025 constructor arguments.  And at the limit, the same frames are accepted:
 * a raw GET of 65,536 unknown ids is answered with 65,536 errors.
 */
Test(limits, raw_counts, .timeout = 60)
{
	struct harness h = start(2, NULL);
	struct kray_msg_hello_ok ok = { 0 };
	struct kbuf b = { 0 };
	size_t off;
	int fd;

	/* HELLO with path_len 4097 (and the path) */
	{
		struct kray_msg_hello m = { .role = KRAY_ROLE_DRIVER,
					    .pid = (uint32_t)getpid(),
					    .path_len = KRAY_PATH_MAX + 1 };
		char *path = name_of("/", KRAY_PATH_MAX + 1);

		off = wire_begin(&b, KRAY_MSG_HELLO, 0);
		kbuf_put(&b, &m, sizeof(m));
		wire_put_padded(&b, path, KRAY_PATH_MAX + 1);
		wire_end(&b, off);
		free(path);
		fd = harness_raw_connect(h.sock, 10);
		harness_raw_send(fd, b.data, b.len);
		harness_expect_error_frame(fd, -EBADMSG, "HELLO with a 4097-byte code path");
		close(fd);
		b.len = 0;
	}

	raw_submit(&b, &ok, "count_args", KRAY_ARGS_MAX + 1, 1);
	raw_expect_error(&h, &b, -EBADMSG, "SUBMIT with 1025 arguments");
	raw_submit(&b, &ok, "multi", 1, KRAY_RETURNS_MAX + 1);
	raw_expect_error(&h, &b, -EBADMSG, "SUBMIT with 257 returns");
	raw_oids(&b, KRAY_MSG_GET, KRAY_REFS_MAX + 1);
	raw_expect_error(&h, &b, -EBADMSG, "GET of 65537 ids");
	raw_oids(&b, KRAY_MSG_WAIT, KRAY_REFS_MAX + 1);
	raw_expect_error(&h, &b, -EBADMSG, "WAIT of 65537 ids");
	raw_oids(&b, KRAY_MSG_RELEASE, KRAY_REFS_MAX + 1);
	raw_expect_error(&h, &b, -EBADMSG, "RELEASE of 65537 ids");
	raw_oids(&b, KRAY_MSG_UNPIN, KRAY_REFS_MAX + 1);
	raw_expect_error(&h, &b, -EBADMSG, "UNPIN of 65537 ids");
	{
		struct kray_msg_actor_create m = {
			.seq = 1, .max_concurrency = 1, .nargs = KRAY_ARGS_MAX + 1, .class_len = 7
		};

		off = wire_begin(&b, KRAY_MSG_ACTOR_CREATE, 1);
		kbuf_put(&b, &m, sizeof(m));
		wire_put_padded(&b, "Counter", 7);
		for (int i = 0; i < KRAY_ARGS_MAX + 1; i++)
			wire_put_value(&b, KRAY_WT_NIL, 0, 0, NULL, 0);
		wire_end(&b, off);
		raw_expect_error(&h, &b, -EBADMSG, "ACTOR_CREATE with 1025 arguments");
	}

	/* at the limit: a GET of 65,536 ids nobody holds, answered with 65,536 errors */
	{
		struct kray_frame_hdr rh;
		struct wire_get_reply rep;
		struct wire_value w;
		uint8_t *body;

		fd = harness_raw_connect(h.sock, 10);
		harness_raw_hello(fd, &ok);
		raw_oids(&b, KRAY_MSG_GET, KRAY_REFS_MAX);
		harness_raw_send(fd, b.data, b.len);
		b.len = 0;
		cr_assert_eq(harness_read_full(fd, &rh, sizeof(rh)), (ssize_t)sizeof(rh),
			     "no reply to a GET of 65536 ids");
		cr_assert_eq(rh.type, KRAY_MSG_GET_REPLY, "GET of 65536 ids answered by type %u",
			     rh.type);
		cr_assert_leq(rh.len, KRAY_FRAME_MAX, "GET_REPLY of %u bytes", rh.len);
		body = malloc(rh.len);
		cr_assert_not_null(body);
		cr_assert_eq(harness_read_full(fd, body, rh.len), (ssize_t)rh.len,
			     "short GET_REPLY");
		cr_assert_eq(wire_dec_get_reply(body, rh.len, &rep), 0, "malformed GET_REPLY");
		cr_assert_eq(rep.n, KRAY_REFS_MAX, "GET_REPLY with %u values", rep.n);
		for (uint32_t i = 0; i < rep.n; i++) {
			cr_assert_eq(wire_rd_value(&rep.values, &w), 0, "value %u", i);
			cr_assert(w.type == KRAY_WT_ERROR && w.err == KRAY_WE_OBJECT_LOST,
				  "value %u: type %u err %u", i, w.type, w.err);
		}
		free(body);
		close(fd);
	}
	kbuf_free(&b);
	harness_expect_serving(&h, "raw counts past the limits");
}

/*
 * KMOD_PIN (wire type 80): a client that mapped objects through /dev/kray asks krayd to
 * count those views as pins, as its own gets do (docs/kmod.md).  No module is needed to
 * test krayd's side: the frame is written on a libkray connection's socket.  krayd pins
 * only large objects in memory that the connection holds; a pin keeps a released object
 * alive until the UNPIN; past 65,536 ids, or malformed, it is refused like UNPIN.
 */
Test(limits, raw_kmod_pin, .timeout = 60)
{
	struct harness h = start(2, NULL);
	kray *owner = harness_connect(h.sock), *other = harness_connect(h.sock);
	struct kray_msg_refs m = { .n = 1 };
	struct kbuf b = { 0 };
	struct kray_stats st;
	kray_value v;
	kray_ref ref;
	uint8_t *buf = pattern(INLINE_MAX + 1, 7);
	size_t off;

	v = KRAY_V_BYTES(buf, INLINE_MAX + 1);
	cr_assert_eq(kray_put(owner, &v, &ref), 0, "put: %s", kray_errmsg(owner));
	st = harness_status(owner);
	cr_assert(st.objects == 1 && st.objects_pinned == 0, "objects %llu pinned %llu",
		  (unsigned long long)st.objects, (unsigned long long)st.objects_pinned);

	/* another connection, which does not hold it: ignored */
	off = wire_begin(&b, KRAY_MSG_KMOD_PIN, 0);
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, &ref, sizeof(ref));
	wire_end(&b, off);
	harness_raw_send(kray_fd(other), b.data, b.len);
	st = harness_status(other);
	cr_assert_eq(st.objects_pinned, 0, "a KMOD_PIN of an unheld object pinned it");

	/* the owner: pinned, and the pin outlives its reference */
	harness_raw_send(kray_fd(owner), b.data, b.len);
	st = harness_status(owner);
	cr_assert_eq(st.objects_pinned, 1, "KMOD_PIN of a held large object: %llu pinned",
		     (unsigned long long)st.objects_pinned);
	cr_assert_eq(kray_release(owner, &ref, 1), 0, "release");
	st = harness_status(owner);
	cr_assert(st.objects == 1 && st.objects_pinned == 1,
		  "released but pinned: objects %llu pinned %llu", (unsigned long long)st.objects,
		  (unsigned long long)st.objects_pinned);
	b.data[offsetof(struct kray_frame_hdr, type)] = KRAY_MSG_UNPIN;
	harness_raw_send(kray_fd(owner), b.data, b.len);
	st = harness_status(owner);
	cr_assert(st.objects == 0 && st.objects_pinned == 0,
		  "after the UNPIN: objects %llu pinned %llu", (unsigned long long)st.objects,
		  (unsigned long long)st.objects_pinned);
	b.len = b.off = 0;

	/* past the limit, and short */
	raw_oids(&b, KRAY_MSG_KMOD_PIN, KRAY_REFS_MAX + 1);
	raw_expect_error(&h, &b, -EBADMSG, "KMOD_PIN of 65537 ids");
	off = wire_begin(&b, KRAY_MSG_KMOD_PIN, 0);
	m.n = 2;
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, &ref, sizeof(ref));
	wire_end(&b, off);
	raw_expect_error(&h, &b, -EBADMSG, "KMOD_PIN of 2 ids carrying 1");
	kbuf_free(&b);
	free(buf);
	harness_shutdown(other);
	harness_shutdown(owner);
	harness_expect_serving(&h, "KMOD_PIN frames");
}

/*
 * A raw PUT carries its value inline, and only values up to inline-max may travel that
 * way (libkray sends larger ones through CREATE/SEAL, where the store's capacity
 * applies).  A raw PUT of inline-max bytes is accepted; of inline-max + 1 it must be
 * refused, or any client could keep arbitrary amounts of memory in krayd, past
 * store-size.
 */
Test(limits, raw_put_past_inline_max, .timeout = 60)
{
	struct harness h = start(2, NULL);
	struct kray_msg_hello_ok ok;
	struct kray_stats st;
	struct kbuf b = { 0 };
	uint8_t *buf = pattern(INLINE_MAX + 1, 1);
	size_t off;
	kray *k;
	int fd;

	/* at the limit: accepted (the object exists while the connection holds it) */
	fd = harness_raw_connect(h.sock, 10);
	harness_raw_hello(fd, &ok);
	struct kray_msg_put m = { .oid = { ok.node, ok.client, 1, KRAY_OID_PUT } };
	off = wire_begin(&b, KRAY_MSG_PUT, 0);
	kbuf_put(&b, &m, sizeof(m));
	wire_put_value(&b, KRAY_WT_BYTES, 0, 0, buf, INLINE_MAX);
	wire_end(&b, off);
	harness_raw_send(fd, b.data, b.len);
	b.len = 0;
	k = harness_connect(h.sock);
	int64_t deadline = harness_now_ms() + 5000;
	do
		st = harness_status(k);
	while (st.object_bytes != INLINE_MAX && harness_now_ms() < deadline);
	cr_assert_eq(st.object_bytes, INLINE_MAX, "a raw PUT of inline-max bytes: %llu inline",
		     (unsigned long long)st.object_bytes);

	/* past it */
	m.oid.seq = 2;
	off = wire_begin(&b, KRAY_MSG_PUT, 0);
	kbuf_put(&b, &m, sizeof(m));
	wire_put_value(&b, KRAY_WT_BYTES, 0, 0, buf, INLINE_MAX + 1);
	wire_end(&b, off);
	harness_raw_send(fd, b.data, b.len);
	kbuf_free(&b);
	free(buf);
	harness_expect_error_frame(fd, -EMSGSIZE, "a raw PUT of inline-max + 1 bytes");
	close(fd);
	harness_shutdown(k);
	harness_expect_serving(&h, "raw PUTs at and past inline-max");
}

/* ---- descriptors per frame ----------------------------------------------------------- */

/*
 * Large objects travel as descriptors, at most KRAY_FDS_PER_MSG (253) per message.  One
 * kray_get of 253 and of 254 large objects both work (libkray splits gets); a task with
 * 253 large arguments runs; one with 254 large arguments (one EXEC frame would need 254
 * descriptors) fails with KRAY_ERR_BAD_ARGS (or, one day, runs), and never hangs.
 */
Test(limits, large_objects_per_frame, .timeout = 120)
{
	enum { N = KRAY_FDS_PER_MSG + 1, SIZE = INLINE_MAX + 1 };
	struct harness h = start(2, NULL);
	kray *k = harness_connect(h.sock);
	kray_ref refs[N];
	kray_value args[N], vals[N], v = { 0 };
	uint64_t sum = 0, sum253 = 0;
	int rc;

	for (int i = 0; i < N; i++) {
		uint8_t *buf = pattern(SIZE, 1000 + i);
		kray_value b = KRAY_V_BYTES(buf, SIZE);

		rc = kray_put(k, &b, &refs[i]);
		cr_assert_eq(rc, 0, "put %d: %d %s", i, rc, kray_errmsg(k));
		sum += checksum64(buf, SIZE);
		if (i < KRAY_FDS_PER_MSG)
			sum253 = sum;
		args[i] = KRAY_V_REF(refs[i]);
		free(buf);
	}
	for (int n = KRAY_FDS_PER_MSG; n <= N; n++) {
		rc = kray_get(k, refs, (size_t)n, GET_MS, vals);
		cr_assert_eq(rc, 0, "get of %d large objects: %d %s", n, rc, kray_errmsg(k));
		for (int i = 0; i < n; i++) {
			cr_assert(vals[i].type == KRAY_BYTES && vals[i].len == SIZE &&
					  pattern_check(vals[i].data, 0, SIZE, 1000 + i) == -1,
				  "get of %d: object %d differs (type %d)", n, i, vals[i].type);
			kray_value_clear(&vals[i]);
		}
	}

	expect_int_ref(k, harness_call1(k, "checksum_all", args, KRAY_FDS_PER_MSG), (int64_t)sum253,
		       "a task with 253 large arguments");

	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_ref r;

	o.max_retries = 0;
	rc = kray_call(k, "checksum_all", args, N, &o, &r);
	cr_assert_eq(rc, 0, "kray_call with 254 large arguments: %d %s", rc, kray_errmsg(k));
	rc = harness_get1(k, r, 20000, &v);
	cr_assert_neq(rc, -ETIMEDOUT,
		      "a task with 254 large arguments neither ran nor failed "
		      "in 20 s");
	if (rc == 0)
		cr_assert(v.type == KRAY_INT64 && (uint64_t)v.i == sum,
			  "254 large arguments: wrong checksum");
	else
		cr_assert(rc == -EREMOTEIO && v.type == KRAY_ERROR && v.err == KRAY_ERR_BAD_ARGS,
			  "254 large arguments: rc %d type %d err %d (%s), want BAD_ARGS", rc,
			  v.type, v.err, v.type == KRAY_ERROR ? (const char *)v.data : "");
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	kray_release(k, refs, N);
	expect_no_objects(k, "releasing the large objects");
	harness_shutdown(k);
	harness_expect_serving(&h, "254 large objects in one request");
}

/* ---- frames that other limits combined would push past KRAY_FRAME_MAX ---------------- */

/*
 * With inline-max 1M, 1024 arguments that are refs to 1 MiB inline objects would make an
 * EXEC of 1 GiB: past KRAY_FRAME_MAX, which no worker accepts.  257 of them are enough
 * (257 MiB).  The task must run (large arguments sent some other way) or fail with
 * KRAY_ERR_BAD_ARGS: not a hang, and not a worker death (nothing crashed: a worker that
 * is sent a frame it must refuse and is then retried would die again on every attempt).
 */
Test(limits, exec_past_frame_max, .timeout = 120)
{
	enum { N = 257, SIZE = 1 << 20 };
	const char *extra[] = { "--inline-max", "1M", NULL };
	struct harness h = start(2, extra);
	kray *k = harness_connect(h.sock);
	kray_ref refs[N], r;
	kray_value args[N], v = { 0 };
	uint8_t *buf = pattern(SIZE + N, 3);
	struct kray_stats st;
	uint64_t sum = 0;
	int rc;

	for (int i = 0; i < N; i++) {
		kray_value b = KRAY_V_BYTES(buf + i, SIZE);

		rc = kray_put(k, &b, &refs[i]);
		cr_assert_eq(rc, 0, "put %d: %d %s", i, rc, kray_errmsg(k));
		sum += checksum64(buf + i, SIZE);
		args[i] = KRAY_V_REF(refs[i]);
	}
	free(buf);
	r = harness_call1(k, "checksum_all", args, N);
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_neq(rc, -ETIMEDOUT,
		      "a task whose EXEC would be 257 MiB neither ran nor "
		      "failed in 30 s");
	if (rc == 0) {
		cr_assert(v.type == KRAY_INT64 && (uint64_t)v.i == sum,
			  "257 MiB of arguments: wrong checksum");
	} else {
		cr_assert(rc == -EREMOTEIO && v.type == KRAY_ERROR, "rc %d type %d", rc, v.type);
		cr_assert_eq(v.err, KRAY_ERR_BAD_ARGS,
			     "257 MiB of arguments: error kind %d, want BAD_ARGS: %s", v.err,
			     (const char *)v.data);
	}
	st = harness_status(k);
	cr_assert_eq(st.workers_died, 0, "%llu workers died of an oversized EXEC",
		     (unsigned long long)st.workers_died);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	kray_release(k, refs, N);
	harness_shutdown(k);
	harness_expect_serving(&h, "an EXEC past KRAY_FRAME_MAX");
}

/*
 * With inline-max 1M, a task returning 256 values of 1 MiB each makes a RESULT of 256 MiB
 * plus headers: past KRAY_FRAME_MAX.  The caller must get the values, or a task error
 * that says why for each return: not a hang, and not a worker death (krayd refusing the
 * worker's frame and killing it, then retrying the task into the same wall).
 */
Test(limits, result_past_frame_max, .timeout = 120)
{
	enum { SIZE = 1 << 20 };
	const char *extra[] = { "--inline-max", "1M", NULL };
	struct harness h = start(2, extra);
	kray *k = harness_connect(h.sock);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value fa[2] = { KRAY_V_INT(SIZE), KRAY_V_INT(40) };
	kray_ref refs[KRAY_RETURNS_MAX];
	kray_value *vals = calloc(KRAY_RETURNS_MAX, sizeof(*vals));
	struct kray_stats st;
	int rc;

	cr_assert_not_null(vals);
	o.num_returns = KRAY_RETURNS_MAX;
	rc = kray_call(k, "make_patterns", fa, 2, &o, refs);
	cr_assert_eq(rc, 0, "kray_call: %d %s", rc, kray_errmsg(k));
	rc = kray_get(k, refs, KRAY_RETURNS_MAX, 30000, vals);
	cr_assert_neq(rc, -ETIMEDOUT,
		      "a task whose RESULT would be 256 MiB + headers gave "
		      "no answer in 30 s");
	cr_assert(rc == 0 || rc == -EREMOTEIO, "get: %d %s", rc, kray_errmsg(k));
	for (int i = 0; i < KRAY_RETURNS_MAX; i++) {
		if (rc == 0) {
			cr_assert(vals[i].len == SIZE &&
					  pattern_check(vals[i].data, 0, SIZE, 40 + i) == -1,
				  "return %d differs", i);
		} else {
			cr_assert_eq(vals[i].type, KRAY_ERROR, "return %d: type %d", i,
				     vals[i].type);
			cr_assert_eq(vals[i].err, KRAY_ERR_TASK,
				     "a RESULT past KRAY_FRAME_MAX: error kind %d, want TASK: %s",
				     vals[i].err, (const char *)vals[i].data);
		}
		kray_value_clear(&vals[i]);
	}
	st = harness_status(k);
	cr_assert_eq(st.workers_died, 0, "%llu workers died of an oversized RESULT",
		     (unsigned long long)st.workers_died);
	kray_release(k, refs, KRAY_RETURNS_MAX);
	free(vals);
	harness_shutdown(k);
	harness_expect_serving(&h, "a RESULT past KRAY_FRAME_MAX");
}

/* Nested tasks deeper than max-workers (every worker blocked in a get on a child that
 * waits for a worker): krayd starts workers beyond the limit, up to twice it, and past
 * that fails the waiting task with a clear error instead of hanging. */
Test(limits, nesting_past_max_workers_never_hangs, .timeout = 120)
{
	const char *extra[] = { "--max-workers", "3", "--prestart", "0", NULL };
	kray_value args[2] = { KRAY_V_INT(4), KRAY_V_INT(1) }, v;
	struct harness h;
	kray_ref r;
	kray *k;

	cr_assert_eq(harness_start_krayd_opts(&h, 1, extra), 0);
	k = harness_connect(h.sock);
	/* Five levels on three workers: the limit is raised for them. */
	harness_expect_int(k, "nested", args, 2, 1);
	/* Nine levels: past twice the limit, the deepest waiting task fails, and says why. */
	args[0] = KRAY_V_INT(8);
	cr_assert_eq(kray_call(k, "nested", args, 2, NULL, &r), 0);
	cr_assert_eq(harness_get1(k, r, 60000, &v), -EREMOTEIO, "nine levels did not fail");
	cr_assert_eq(v.type, KRAY_ERROR);
	cr_assert(strstr((const char *)v.data, "max-workers"), "no reason: %s",
		  (const char *)v.data);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	/* And the node serves on. */
	harness_expect_int(k, "square", &KRAY_V_INT(7), 1, 49);
	args[0] = KRAY_V_INT(2);
	harness_expect_int(k, "nested", args, 2, 1);
}
