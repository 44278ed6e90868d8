// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF fast path for synchronous calls (docs/fastpath.md): a call whose result is got
 * at once is steered by krayd's sk_skb program to an idle worker and back.  These tests
 * check that such calls return exactly what the daemon path returns (ints, doubles,
 * bytes small and large, errors, unknown functions, wrong arity, nested calls), that they
 * really went through the program and not through krayd (the program's counters in
 * kray_status and krayd's own task counter), that a worker killed in the middle of a fast
 * task leads to a retry or a WORKER_DIED error rather than a hang, that tasks queued in
 * krayd are never stranded behind fast ones, and that the fast path switches off.  Gets
 * with a timeout go fast too: one that times out leaves the call in flight, and later
 * gets, waits, calls, releases and cancels of its ref settle it, each value only ever
 * given to its own call.
 *
 * They need root and BPF (CAP_BPF, sk_skb on AF_UNIX); elsewhere they skip, naming why.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../../include/uapi/kray_wire.h"
#include "harness.h"

TestSuite(fastpath, .fini = harness_cleanup, .timeout = 60);

/* Calls fn(args) and gets its value at once: the fast path's shape. */
static int sync_call(kray *k, const char *fn, const kray_value *args, size_t nargs, kray_value *ret)
{
	kray_ref r;
	int rc = kray_call(k, fn, args, nargs, NULL, &r);

	cr_assert_eq(rc, 0, "kray_call(%s): %d %s", fn, rc, kray_errmsg(k));
	rc = kray_get(k, &r, 1, -1, ret);
	kray_release(k, &r, 1);
	if (ret->type == KRAY_INT64 || ret->type == KRAY_F64 || ret->type == KRAY_NIL) {
		kray_value scalar = { .type = ret->type, .i = ret->i };

		/* Scalars are returned without their storage: nothing for callers to clear. */
		if (ret->type == KRAY_F64)
			scalar.f = ret->f;
		kray_value_clear(ret);
		*ret = scalar;
	}
	return rc;
}

/* Skips a test that needs the fast path where krayd cannot have one. */
static void need_fast(void)
{
	const char *env = getenv("KRAY_FASTPATH"), *bpf = getenv("KRAY_BPF");

	if ((env && (!strcmp(env, "off") || !strcmp(env, "0"))) ||
	    (bpf && (!strcmp(bpf, "off") || !strcmp(bpf, "0"))))
		cr_skip_test("the fast path is switched off (KRAY_FASTPATH / KRAY_BPF)");
	if (geteuid() != 0)
		cr_skip_test("the fast path needs root (CAP_BPF for krayd's sk_skb program)");
}

/* krayd's status once it has counted submitted tasks in all: workers report the fast
 * calls they ran in batches, a few ms after the first (docs/fastpath.md, "Seeing it"). */
static struct kray_stats counted(kray *k, uint64_t submitted)
{
	int64_t until = harness_now_ms() + 5000;
	struct kray_stats st = harness_status(k);

	while (st.tasks_submitted < submitted && harness_now_ms() < until) {
		usleep(2000);
		st = harness_status(k);
	}
	cr_assert_geq(st.tasks_submitted, submitted, "krayd counted %llu tasks, not %llu",
		      (unsigned long long)st.tasks_submitted, (unsigned long long)submitted);
	return st;
}

/* Calls square(3) until one call has gone fast (the first bounce to the daemon path until
 * a worker has connected), then waits until krayd has counted them all, so that what it
 * counts next is the test's.  Skips when no call goes fast. */
static void warm_up(kray *k)
{
	uint64_t submitted = harness_status(k).tasks_submitted;
	int64_t until = harness_now_ms() + 10000;
	kray_value v;

	while (harness_now_ms() < until) {
		int rc = sync_call(k, "square", &KRAY_V_INT(3), 1, &v);

		cr_assert_eq(rc, 0, "warm-up call: %d %s", rc, kray_errmsg(k));
		cr_assert_eq(v.i, 9);
		submitted++;
		if (harness_status(k).fast_tasks > 0) {
			counted(k, submitted);
			return;
		}
		usleep(10000);
	}
	cr_skip_test("krayd has no fast path here (sk_skb on AF_UNIX not available?)");
}

/* A private krayd with the fast path, once its workers take fast tasks; skips without. */
static kray *fast_krayd(int num_cpus)
{
	kray *k;

	need_fast();
	k = harness_embedded(num_cpus);
	warm_up(k);
	return k;
}

/* The same as a process of its own (h: to find or kill its workers), with a driver
 * connected to it (extra: krayd's options). */
static kray *fast_krayd_proc(struct harness *h, int num_cpus, const char *const *extra)
{
	kray *k;

	need_fast();
	cr_assert_eq(harness_start_krayd_opts(h, num_cpus, extra), 0);
	k = harness_connect(h->sock);
	warm_up(k);
	return k;
}

Test(fastpath, results_are_exact)
{
	kray *k = fast_krayd(2);
	struct kray_stats before = harness_status(k), after;
	static char big[12000];
	kray_value v;
	int rc;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 1);
	for (int i = 0; i < 50; i++) {
		rc = sync_call(k, "add", (kray_value[]){ KRAY_V_INT(i), KRAY_V_INT(1000) }, 2, &v);
		cr_assert_eq(rc, 0, "add: %d %s", rc, kray_errmsg(k));
		cr_assert_eq(v.type, KRAY_INT64);
		cr_assert_eq(v.i, i + 1000, "add(%d, 1000) = %lld", i, (long long)v.i);
	}
	rc = sync_call(k, "sum_f64", (kray_value[]){ KRAY_V_F64(1.25), KRAY_V_F64(2.5) }, 2, &v);
	cr_assert_eq(rc, 0, "sum_f64: %s", kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_F64);
	cr_assert_float_eq(v.f, 3.75, 1e-12);
	rc = sync_call(k, "echo_bytes", &KRAY_V_BYTES("hello fast path", 15), 1, &v);
	cr_assert_eq(rc, 0, "echo_bytes: %s", kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, 15);
	cr_assert_eq(memcmp(v.data, "hello fast path", 15), 0);
	kray_value_clear(&v);
	/* 12,000 bytes in and out: one fast frame each way. */
	rc = sync_call(k, "echo_bytes", &KRAY_V_BYTES(big, sizeof(big)), 1, &v);
	cr_assert_eq(rc, 0, "echo_bytes(12000): %s", kray_errmsg(k));
	cr_assert_eq(v.len, sizeof(big));
	cr_assert_eq(memcmp(v.data, big, sizeof(big)), 0, "12,000 bytes came back changed");
	kray_value_clear(&v);
	rc = sync_call(k, "identity", &(kray_value){ .type = KRAY_NIL }, 1, &v);
	cr_assert_eq(rc, 0, "identity(nil): %s", kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_NIL);
	after = harness_status(k);
	cr_assert_geq(after.fast_tasks - before.fast_tasks, 50,
		      "only %llu of 54 calls went through the fast path (%llu bounced)",
		      (unsigned long long)(after.fast_tasks - before.fast_tasks),
		      (unsigned long long)(after.fast_bounced - before.fast_bounced));
	/* krayd holds no object for them: each result was released before krayd needed to
	 * hear of it.  It counts each call once, whichever way it went. */
	cr_assert_eq(after.objects, before.objects, "krayd keeps %llu objects it did not before",
		     (unsigned long long)(after.objects - before.objects));
	after = counted(k, before.tasks_submitted + 54);
	usleep(20000);
	after = harness_status(k);
	cr_assert_eq(after.tasks_submitted - before.tasks_submitted, 54,
		     "krayd counted %llu tasks for 54 calls",
		     (unsigned long long)(after.tasks_submitted - before.tasks_submitted));
	harness_shutdown(k);
}

Test(fastpath, errors_are_exact)
{
	kray *k = fast_krayd(2);
	struct kray_stats before = harness_status(k);
	kray_value v;
	int rc;

	rc = sync_call(k, "fail", &KRAY_V_BYTES("on purpose", 10), 1, &v);
	cr_assert_eq(rc, -EREMOTEIO, "fail(): rc %d", rc);
	cr_assert_eq(v.type, KRAY_ERROR);
	cr_assert_eq(v.err, KRAY_ERR_TASK, "kind %s", harness_errkind(v.err));
	cr_assert(strstr(v.data, "on purpose"), "message: %s", (const char *)v.data);
	cr_assert(strstr(kray_errmsg(k), "on purpose"), "errmsg: %s", kray_errmsg(k));
	kray_value_clear(&v);

	rc = sync_call(k, "no_such_function", &KRAY_V_INT(1), 1, &v);
	cr_assert_eq(rc, -EREMOTEIO);
	cr_assert_eq(v.err, KRAY_ERR_UNKNOWN_FUNCTION, "kind %s", harness_errkind(v.err));
	cr_assert(strstr(v.data, "no_such_function"), "message: %s", (const char *)v.data);
	kray_value_clear(&v);

	rc = sync_call(k, "square", (kray_value[]){ KRAY_V_INT(1), KRAY_V_INT(2) }, 2, &v);
	cr_assert_eq(rc, -EREMOTEIO);
	cr_assert_eq(v.err, KRAY_ERR_BAD_ARGS, "kind %s", harness_errkind(v.err));
	cr_assert(strstr(v.data, "takes 1 argument"), "message: %s", (const char *)v.data);
	kray_value_clear(&v);

	rc = sync_call(k, "square", &KRAY_V_F64(2.0), 1, &v); /* the function checks types */
	cr_assert_eq(rc, -EREMOTEIO);
	cr_assert_eq(v.err, KRAY_ERR_TASK, "kind %s", harness_errkind(v.err));
	kray_value_clear(&v);
	cr_assert_geq(harness_status(k).fast_tasks - before.fast_tasks, 4);
	harness_shutdown(k);
}

/* A fast result is an ordinary object afterwards: passed to a task, waited on, got again. */
Test(fastpath, result_usable_later)
{
	kray *k = fast_krayd(2);
	kray_ref r, r2;
	kray_value v;
	uint8_t ready;
	int rc;

	r = harness_call1(k, "square", &KRAY_V_INT(12), 1);
	rc = kray_get(k, &r, 1, -1, &v);
	cr_assert_eq(rc, 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 144);
	kray_value_clear(&v);
	/* krayd learns of it only now, when it is named in a submit. */
	r2 = harness_call1(k, "add", (kray_value[]){ KRAY_V_REF(r), KRAY_V_INT(1) }, 2);
	rc = harness_get1(k, r2, 30000, &v);
	cr_assert_eq(rc, 0, "add(ref, 1): %s", kray_errmsg(k));
	cr_assert_eq(v.i, 145);
	kray_value_clear(&v);
	rc = kray_wait(k, &r, 1, 1, 5000, &ready, NULL);
	cr_assert_eq(rc, 0);
	cr_assert_eq(ready, 1, "a fast result is not ready for kray_wait");
	rc = harness_get1(k, r, 5000, &v);
	cr_assert_eq(rc, 0);
	cr_assert_eq(v.i, 144);
	kray_value_clear(&v);
	cr_assert_eq(kray_release(k, &r, 1), 0);
	cr_assert_eq(kray_release(k, &r2, 1), 0);
	/* An error result, got again after krayd was told of it. */
	r = harness_call1(k, "fail", &KRAY_V_BYTES("again", 5), 1);
	rc = kray_get(k, &r, 1, -1, &v);
	cr_assert_eq(rc, -EREMOTEIO);
	kray_value_clear(&v);
	rc = harness_get1(k, r, 5000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "the second get of an error: %d", rc);
	cr_assert(strstr(v.data, "again"), "%s", (const char *)v.data);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	harness_shutdown(k);
}

/* Results too large for a fast frame are kept by krayd and got from there. */
Test(fastpath, large_results)
{
	kray *k = fast_krayd(2);
	int64_t sizes[] = { 20000, 60000, 3 << 20 };
	kray_value v;

	for (unsigned i = 0; i < 3; i++) {
		int rc = sync_call(k, "make_bytes",
				   (kray_value[]){ KRAY_V_INT(sizes[i]), KRAY_V_INT(5) }, 2, &v);

		cr_assert_eq(rc, 0, "make_bytes(%lld): %d %s", (long long)sizes[i], rc,
			     kray_errmsg(k));
		cr_assert_eq(v.type, KRAY_BYTES);
		cr_assert_eq(v.len, (size_t)sizes[i]);
		for (size_t j = 0; j < v.len; j += 997)
			cr_assert_eq(((const uint8_t *)v.data)[j], (uint8_t)((5 + j) & 0xff),
				     "byte %zu of %lld", j, (long long)sizes[i]);
		kray_value_clear(&v);
	}
	harness_shutdown(k);
}

/* What a task can return besides plain values, through the fast path: a value holding a
 * ref, an object written in place (both kept by krayd for the driver: FAST_STORE), and
 * the task's own id, which must be the id of the driver's ref. */
Test(fastpath, special_returns)
{
	kray *k = fast_krayd(2);
	struct kray_stats before = harness_status(k);
	kray_value v, inner;
	kray_ref r;
	int rc;

	r = harness_call1(k, "ret_with_ref", &KRAY_V_INT(77), 1);
	rc = kray_get(k, &r, 1, -1, &v);
	cr_assert_eq(rc, 0, "ret_with_ref: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, 6);
	cr_assert_eq(memcmp(v.data, "holder", 6), 0);
	cr_assert_eq(v.nrefs, 1, "the value holds %zu refs", v.nrefs);
	rc = harness_get1(k, v.refs[0], 5000, &inner);
	cr_assert_eq(rc, 0, "the contained ref: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(inner.i, 77);
	kray_value_clear(&inner);
	kray_value_clear(&v);
	kray_release(k, &r, 1);

	r = harness_call1(k, "ret_object", &KRAY_V_INT(100000), 1);
	rc = kray_get(k, &r, 1, -1, &v);
	cr_assert_eq(rc, 0, "ret_object: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.len, 100000);
	for (size_t i = 0; i < v.len; i += 499)
		cr_assert_eq(((const uint8_t *)v.data)[i], (uint8_t)(i % 251), "byte %zu", i);
	kray_value_clear(&v);
	kray_release(k, &r, 1);

	r = harness_call1(k, "my_task_id", NULL, 0);
	rc = kray_get(k, &r, 1, -1, &v);
	cr_assert_eq(rc, 0, "my_task_id: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.len, sizeof(r));
	cr_assert_eq(memcmp(v.data, &r, sizeof(r)), 0, "the task saw another id than its ref");
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	cr_assert_geq(harness_status(k).fast_tasks - before.fast_tasks, 3,
		      "not all three went fast");
	harness_shutdown(k);
}

/* A task submitted from inside a fast task runs and is got there. */
Test(fastpath, nested_calls)
{
	kray *k = fast_krayd(2);
	kray_value v;
	int rc = sync_call(k, "call_and_get",
			   (kray_value[]){ KRAY_V_BYTES("pid", 3), KRAY_V_INT(0) }, 2, &v);

	cr_assert_eq(rc, 0, "call_and_get: %d %s", rc, kray_errmsg(k));
	cr_assert_gt(v.i, 0, "nested pid() = %lld", (long long)v.i);
	cr_assert_neq(v.i, getpid());
	harness_shutdown(k);
}

/* The runs of fn in the dashboard's /api/v1/tasks (0 if it is not listed); its mean run
 * time in *mean_ns. */
static unsigned long long fn_runs(int port, const char *fn, unsigned long long *mean_ns)
{
	static char reply[1 << 16];
	char want[128];
	const char *p, *q;
	unsigned long long runs = 0;

	harness_http(port, "GET /api/v1/tasks HTTP/1.0\r\nHost: x\r\n\r\n", reply, sizeof(reply));
	snprintf(want, sizeof(want), "\"name\":\"%s\"", fn);
	p = strstr(reply, want);
	if (!p)
		return 0;
	for (q = p; q > reply && q[-1] != '{'; q--)
		;
	cr_assert_eq(sscanf(q, "\"runs\":%llu,\"mean_run_ns\":%llu", &runs, mean_ns), 2,
		     "function entry: %.120s", q);
	return runs;
}

/* The DONE column of kray top's rows, summed. */
static unsigned long long top_done(const char *sock)
{
	const char *bin = getenv("KRAY_BIN");
	char cmd[512], line[512];
	unsigned long long done = 0;
	FILE *p;

	cr_assert_not_null(bin, "KRAY_BIN is not set (run through make)");
	snprintf(cmd, sizeof(cmd), "%s/kray top --socket %s --once --interval 100 2>&1", bin, sock);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p)) {
		unsigned id, pid;
		char *last = strrchr(line, ' ');

		if (sscanf(line, "%u %u", &id, &pid) == 2 && last)
			done += strtoull(last + 1, NULL, 10);
	}
	cr_assert_eq(pclose(p), 0, "kray top failed");
	return done;
}

/* krayd counts fast calls as its own tasks: the workers report them in batches, and
 * tasks_submitted/finished/failed, the function's runs and run time (the dashboard's
 * /api/v1/tasks) and kray top's DONE column all include them, each call once. */
/* A stand-in for a ref argument (kray_call_opts.fast_arg0, how Python sends a function's
 * blob): the fast call runs from the stand-in; a function that cannot answers
 * KRAY_NOT_RUN and the call runs on krayd's path with the ref's value; on krayd's path the
 * stand-in is never seen. */
Test(fastpath, stand_in_for_a_ref_argument)
{
	kray *k = fast_krayd(1);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value arg0 = KRAY_V_INT(100), args[2], v;
	uint64_t fast;
	kray_ref p, r[2];

	cr_assert_eq(kray_put(k, &KRAY_V_INT(7), &p), 0);
	args[0] = (kray_value){ .type = KRAY_REF, .ref = p };
	args[1] = KRAY_V_INT(2);
	o.fast_arg0 = &arg0;
	fast = harness_status(k).fast_tasks;
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(kray_call(k, "stand_in", args, 2, &o, r), 0, "%s", kray_errmsg(k));
		cr_assert_eq(kray_get(k, r, 1, 10000, &v), 0, "%s", kray_errmsg(k));
		cr_assert_eq(v.i, 1002, "call %d ran with %lld, not the stand-in", i,
			     (long long)v.i);
		kray_release(k, r, 1);
	}
	cr_assert_geq(harness_status(k).fast_tasks - fast, 15, "the calls did not go fast");

	/* The worker declines: krayd runs it with the ref's value. */
	arg0 = KRAY_V_INT(-1);
	cr_assert_eq(kray_call(k, "stand_in", args, 2, &o, r), 0);
	cr_assert_eq(kray_get(k, r, 1, 10000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 72);
	kray_release(k, r, 1);
	/* Declined lately: the next call with that stand-in goes to krayd at once. */
	fast = harness_status(k).fast_tasks;
	cr_assert_eq(kray_call(k, "stand_in", args, 2, &o, r), 0);
	cr_assert_eq(kray_get(k, r, 1, 10000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 72);
	kray_release(k, r, 1);
	cr_assert_eq(harness_status(k).fast_tasks, fast, "a declined stand-in went fast again");

	/* Pipelined: krayd's path, the stand-in unused. */
	arg0 = KRAY_V_INT(100);
	cr_assert_eq(kray_call(k, "stand_in", args, 2, &o, &r[0]), 0);
	cr_assert_eq(kray_call(k, "stand_in", args, 2, &o, &r[1]), 0);
	cr_assert_eq(kray_get(k, &r[0], 1, 10000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 72);
	kray_release(k, r, 2);

	/* KRAY_NOT_RUN on krayd's path fails the task, saying so. */
	args[0] = KRAY_V_INT(-1);
	cr_assert_eq(kray_call(k, "stand_in", args, 2, NULL, &r[0]), 0);
	cr_assert_eq(kray_call(k, "stand_in", args, 2, NULL, &r[1]), 0);
	cr_assert_eq(kray_get(k, &r[0], 1, 10000, &v), -EREMOTEIO);
	cr_assert(v.type == KRAY_ERROR && strstr(v.data, "KRAY_NOT_RUN"), "%s",
		  v.type == KRAY_ERROR ? (const char *)v.data : "not an error");
	kray_value_clear(&v);
	kray_release(k, r, 2);

	/* Bad stand-ins are refused. */
	char big[KRAY_FAST_FRAME_MAX / 2 + 1] = { 0 };

	arg0 = KRAY_V_BYTES(big, sizeof(big));
	cr_assert_eq(kray_call(k, "stand_in", args, 2, &o, r), -EINVAL);
	arg0 = KRAY_V_INT(1);
	cr_assert_eq(kray_call(k, "stand_in", NULL, 0, &o, r), -EINVAL);
	cr_assert_eq(kray_actor_call(k, p, "m", args, 2, &o, r), -EINVAL);
	kray_release(k, &p, 1);
}

/* How many times needle occurs in hay. */
static unsigned count_str(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

Test(fastpath, fast_calls_counted)
{
	enum { N = 300, E = 7 };
	int port = harness_pick_port();
	unsigned long long mean = 0, done0, done;
	struct kray_stats before, st;
	char addr[32];
	const char *extra[] = { "--dashboard", addr, NULL };
	struct harness h;
	kray_value v;
	kray *k;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	k = fast_krayd_proc(&h, 1, extra);
	before = harness_status(k);
	done0 = top_done(h.sock);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(
			sync_call(k, "add", (kray_value[]){ KRAY_V_INT(i), KRAY_V_INT(1) }, 2, &v),
			0, "add: %s", kray_errmsg(k));
		cr_assert_eq(v.i, i + 1);
	}
	for (int i = 0; i < E; i++) {
		cr_assert_eq(sync_call(k, "fail", &KRAY_V_BYTES("on purpose", 10), 1, &v),
			     -EREMOTEIO);
		kray_value_clear(&v);
	}
	st = counted(k, before.tasks_submitted + N + E);
	usleep(20000); /* nothing counted twice comes later */
	st = harness_status(k);
	cr_log_info("fast_calls_counted: %llu of %d fast",
		    (unsigned long long)(st.fast_tasks - before.fast_tasks), N + E);
	cr_assert_geq(st.fast_tasks - before.fast_tasks, N / 2, "only %llu calls went fast",
		      (unsigned long long)(st.fast_tasks - before.fast_tasks));
	cr_assert_eq(st.tasks_submitted - before.tasks_submitted, N + E, "submitted %llu",
		     (unsigned long long)(st.tasks_submitted - before.tasks_submitted));
	cr_assert_eq(st.tasks_finished - before.tasks_finished, N, "finished %llu",
		     (unsigned long long)(st.tasks_finished - before.tasks_finished));
	cr_assert_eq(st.tasks_failed - before.tasks_failed, E, "failed %llu",
		     (unsigned long long)(st.tasks_failed - before.tasks_failed));
	cr_assert_eq(fn_runs(port, "add", &mean), N, "the dashboard's runs of add");
	cr_assert_gt(mean, 0, "add has no run time");
	cr_assert_eq(fn_runs(port, "fail", &mean), E, "the dashboard's runs of fail");
	/* kray top reads the worker's entry, which krayd writes out every few ms. */
	for (int i = 0; i < 50 && (done = top_done(h.sock)) < done0 + N + E; i++)
		usleep(20000);
	cr_assert_eq(done - done0, N + E, "kray top's DONE went from %llu to %llu", done0, done);
	/* The timeline (and so the state API's task list) has every call, fast or not. */
	char *json = NULL;

	cr_assert_eq(kray_timeline(k, &json), 0, "kray_timeline: %s", kray_errmsg(k));
	cr_assert_eq(count_str(json, "{\"name\":\"add\""), N, "add events in the timeline");
	cr_assert_eq(count_str(json, "{\"name\":\"fail\""), E, "fail events");
	cr_assert_eq(count_str(json, "\"state\":\"FAILED\""), E, "FAILED events");
	free(json);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd died");
	harness_stop_krayd(&h);
}

/* ---- faults ------------------------------------------------------------------------------ */

/* A worker SIGKILLed in the middle of a fast task: its driver hears of it from krayd and
 * runs the task again on the daemon path (max_retries), which succeeds. */
Test(fastpath, worker_killed_retries)
{
	kray *k = fast_krayd(2);
	char dir[128], path[200];
	struct kray_stats before = harness_status(k), after;
	kray_value v;
	int64_t t0;
	int rc;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/died", dir);
	t0 = harness_now_ms();
	rc = sync_call(k, "die_once", &KRAY_V_BYTES(path, strlen(path)), 1, &v);
	cr_assert_eq(rc, 0, "die_once: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 42, "die_once returned %lld", (long long)v.i);
	cr_assert_lt(harness_now_ms() - t0, 20000, "the retry took too long");
	after = harness_status(k);
	cr_assert_geq(after.fast_tasks - before.fast_tasks, 1, "the first run was not fast");
	cr_assert_geq(after.workers_died - before.workers_died, 1, "no worker died");
	/* The retry went to krayd, which counts it as one. */
	cr_assert_geq(after.tasks_submitted - before.tasks_submitted, 1);
	cr_assert_geq(after.tasks_retried - before.tasks_retried, 1);
	harness_shutdown(k);
}

/* With no retries left, the driver reports WORKER_DIED, naming the function. */
Test(fastpath, worker_killed_no_retries)
{
	kray *k = fast_krayd(2);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	struct kray_stats before = harness_status(k);
	kray_value v;
	kray_ref r;
	int rc;

	o.max_retries = 0;
	rc = kray_call(k, "die_always", NULL, 0, &o, &r);
	cr_assert_eq(rc, 0);
	rc = kray_get(k, &r, 1, -1, &v);
	cr_assert_eq(rc, -EREMOTEIO, "die_always: rc %d", rc);
	cr_assert_eq(v.type, KRAY_ERROR);
	cr_assert_eq(v.err, KRAY_ERR_WORKER_DIED, "kind %s", harness_errkind(v.err));
	cr_assert(strstr(v.data, "die_always"), "message: %s", (const char *)v.data);
	kray_value_clear(&v);
	cr_assert_geq(harness_status(k).fast_tasks - before.fast_tasks, 1);
	/* krayd knows the error too, once it is named. */
	rc = harness_get1(k, r, 5000, &v);
	cr_assert_eq(rc, -EREMOTEIO);
	cr_assert_eq(v.err, KRAY_ERR_WORKER_DIED);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	/* Retries left (-1: forever, here once): the daemon path runs it again and again. */
	harness_shutdown(k);
}

/* ---- the shared claim ---------------------------------------------------------------- */

struct slow_call {
	kray *k;
	int64_t ms;
	int rc;
	int64_t got;
};

static void *slow_thread(void *arg)
{
	struct slow_call *s = arg;
	kray_value v = { 0 };

	s->rc = sync_call(s->k, "sleep_ms", &KRAY_V_INT(s->ms), 1, &v);
	s->got = v.i;
	return NULL;
}

/* One CPU slot, one worker, busy with a fast task: a task another driver submits to
 * krayd meanwhile must run as soon as the worker is free, not wait forever for a
 * wake-up krayd never gets (the program frees the worker without telling krayd). */
Test(fastpath, queued_task_not_stranded)
{
	struct harness h;
	kray *a, *b;
	struct slow_call s = { .ms = 800 };
	struct kray_stats before;
	pthread_t th;
	kray_value v;
	kray_ref r;
	int64_t t0;
	int rc;

	a = fast_krayd_proc(&h, 1, NULL);
	b = harness_connect(h.sock);
	before = harness_status(a);
	s.k = a;
	cr_assert_eq(pthread_create(&th, NULL, slow_thread, &s), 0);
	usleep(200000); /* the slow task runs on the only worker now */
	cr_assert_eq(harness_status(b).fast_tasks - before.fast_tasks, 1,
		     "the slow call did not take the fast path");
	t0 = harness_now_ms();
	r = harness_call1(b, "square", &KRAY_V_INT(6), 1);
	rc = harness_get1(b, r, 15000, &v); /* no idle worker: bounced, the daemon path */
	cr_assert_eq(rc, 0, "the queued task: %d %s", rc, kray_errmsg(b));
	cr_assert_eq(v.i, 36);
	kray_value_clear(&v);
	cr_assert_lt(harness_now_ms() - t0, 5000, "the queued task waited %lld ms",
		     (long long)(harness_now_ms() - t0));
	pthread_join(th, NULL);
	cr_assert_eq(s.rc, 0, "the slow fast call: %d", s.rc);
	cr_assert_eq(s.got, 800);
	/* Afterwards the worker is claimable again: a sync call goes fast. */
	before = harness_status(a);
	for (int i = 0; i < 100 && harness_status(a).fast_tasks == before.fast_tasks; i++) {
		rc = sync_call(a, "square", &KRAY_V_INT(4), 1, &v);
		cr_assert_eq(rc, 0);
		cr_assert_eq(v.i, 16);
		usleep(10000);
	}
	cr_assert_gt(harness_status(a).fast_tasks, before.fast_tasks,
		     "the worker never went back to the fast path");
	harness_shutdown(a);
	harness_shutdown(b);
	harness_stop_krayd(&h);
}

/* The one worker of krayd's process (its only child), or -1. */
static pid_t only_worker(pid_t krayd)
{
	char path[64];
	long pid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)krayd, (int)krayd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

/* The worker dies while it runs a fast task and holds a task krayd handed it to run next
 * (FAST_DAEMON): the fast task is retried by its driver, krayd's task is requeued (it
 * had not started), and both finish. */
Test(fastpath, worker_killed_with_queued_task)
{
	struct harness h;
	kray *a, *b;
	struct slow_call s = { .ms = 3000 };
	struct kray_stats before;
	pthread_t th;
	kray_value v;
	kray_ref r;
	pid_t w;
	int rc;

	a = fast_krayd_proc(&h, 1, NULL);
	b = harness_connect(h.sock);
	w = only_worker(h.pid);
	cr_assert_gt(w, 0, "cannot find krayd's worker");
	before = harness_status(a);
	s.k = a;
	cr_assert_eq(pthread_create(&th, NULL, slow_thread, &s), 0);
	usleep(200000);
	cr_assert_eq(harness_status(b).fast_tasks - before.fast_tasks, 1,
		     "the slow call did not take the fast path");
	r = harness_call1(b, "square", &KRAY_V_INT(6), 1);
	cr_assert_eq(kray_flush(b), 0);
	usleep(200000); /* krayd hands it to the busy worker (nothing else would wake it) */
	cr_assert_eq(kill(w, SIGKILL), 0);
	rc = harness_get1(b, r, 20000, &v);
	cr_assert_eq(rc, 0, "krayd's task: %d %s", rc, kray_errmsg(b));
	cr_assert_eq(v.i, 36);
	kray_value_clear(&v);
	kray_release(b, &r, 1);
	pthread_join(th, NULL);
	cr_assert_eq(s.rc, 0, "the fast call after its worker died: %d %s", s.rc, kray_errmsg(a));
	cr_assert_eq(s.got, 3000);
	cr_assert_geq(harness_status(a).workers_died, 1);
	harness_shutdown(a);
	harness_shutdown(b);
	harness_stop_krayd(&h);
}

/* Many drivers at once, each making synchronous calls, with two workers: every result
 * is right whether the call went fast or bounced to krayd. */
struct many {
	const char *sock;
	int id, rc;
};

static void *many_thread(void *arg)
{
	struct many *m = arg;
	kray *k = harness_connect(m->sock);

	for (int i = 0; i < 300 && !m->rc; i++) {
		kray_value v;
		int64_t a = m->id * 100000 + i;

		if (sync_call(k, "add", (kray_value[]){ KRAY_V_INT(a), KRAY_V_INT(7) }, 2, &v) ||
		    v.type != KRAY_INT64 || v.i != a + 7)
			m->rc = -1;
	}
	harness_shutdown(k);
	return NULL;
}

Test(fastpath, many_drivers)
{
	struct harness h;
	struct many m[4];
	pthread_t th[4];
	kray *k;

	need_fast();
	cr_assert_eq(harness_start_krayd(&h, 2), 0);
	for (int i = 0; i < 4; i++) {
		m[i] = (struct many){ .sock = h.sock, .id = i };
		cr_assert_eq(pthread_create(&th[i], NULL, many_thread, &m[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(m[i].rc, 0, "driver %d got a wrong result", i);
	}
	k = harness_connect(h.sock);
	struct kray_stats st = harness_status(k);

	cr_log_info("many_drivers: %llu fast, %llu bounced to krayd",
		    (unsigned long long)st.fast_tasks, (unsigned long long)st.fast_bounced);
	cr_assert_eq(st.fast_tasks + st.tasks_submitted >= 1200, 1,
		     "%llu fast + %llu submitted < 1200", (unsigned long long)st.fast_tasks,
		     (unsigned long long)st.tasks_submitted);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* A driver killed while its fast call runs: the worker's answer has nowhere to go and is
 * dropped, the worker is free again, and the next driver's calls go fast. */
Test(fastpath, driver_dies_mid_call)
{
	struct harness h;
	struct kray_stats st0, st;
	kray *k;
	kray_value v;
	pid_t child;
	int64_t until;
	int rc;

	k = fast_krayd_proc(&h, 1, NULL);
	st0 = harness_status(k);
	child = fork();
	cr_assert_geq(child, 0);
	if (!child) {
		struct kray_config cfg = { .address = h.sock };
		kray *c;
		kray_ref r;

		if (kray_init(&c, &cfg) || kray_call(c, "sleep_ms", &KRAY_V_INT(1500), 1, NULL, &r))
			_exit(2);
		kray_get(c, &r, 1, -1, &v); /* killed in here */
		_exit(3);
	}
	until = harness_now_ms() + 5000;
	while (harness_status(k).fast_tasks == st0.fast_tasks && harness_now_ms() < until)
		usleep(5000);
	cr_assert_gt(harness_status(k).fast_tasks, st0.fast_tasks,
		     "the child's call did not go fast");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* The one worker is still sleeping for the dead driver; calls meanwhile bounce to
	 * krayd (and run after it); once it is free, they go fast again. */
	st0 = harness_status(k);
	until = harness_now_ms() + 15000;
	do {
		rc = sync_call(k, "add", (kray_value[]){ KRAY_V_INT(40), KRAY_V_INT(2) }, 2, &v);
		cr_assert_eq(rc, 0, "add: %d %s", rc, kray_errmsg(k));
		cr_assert_eq(v.i, 42);
		st = harness_status(k);
	} while (st.fast_tasks == st0.fast_tasks && harness_now_ms() < until);
	cr_assert_gt(st.fast_tasks, st0.fast_tasks, "the worker never became claimable again");
	cr_assert(harness_krayd_alive(&h), "krayd died");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* Synchronous callers and a pipelining caller share two workers for two seconds: the
 * program and krayd claim the same workers all the time, and every result must be right
 * and every call must end. */
struct mixed {
	const char *sock;
	int id, rc;
	bool pipeline;
	int64_t until;
	long calls;
};

static void *mixed_thread(void *arg)
{
	struct mixed *m = arg;
	kray *k = harness_connect(m->sock);
	kray_ref refs[100];
	kray_value vals[100];

	while (!m->rc && harness_now_ms() < m->until) {
		if (!m->pipeline) {
			kray_value v;
			int64_t a = m->id * 1000000 + m->calls;

			if (sync_call(k, "add", (kray_value[]){ KRAY_V_INT(a), KRAY_V_INT(1) }, 2,
				      &v) ||
			    v.i != a + 1)
				m->rc = -1;
			m->calls++;
			continue;
		}
		for (int i = 0; i < 100; i++)
			if (kray_call(k, "square", &KRAY_V_INT(i), 1, NULL, &refs[i]))
				m->rc = -2;
		if (kray_get(k, refs, 100, -1, vals))
			m->rc = -3;
		for (int i = 0; i < 100 && !m->rc; i++) {
			if (vals[i].type != KRAY_INT64 || vals[i].i != i * i)
				m->rc = -4;
			kray_value_clear(&vals[i]);
		}
		kray_release(k, refs, 100);
		m->calls += 100;
	}
	harness_shutdown(k);
	return NULL;
}

Test(fastpath, mixed_sync_and_pipelined)
{
	struct harness h;
	struct mixed m[3];
	pthread_t th[3];
	struct kray_stats st;
	kray *k;

	if (geteuid() != 0)
		cr_skip_test("the fast path needs root (CAP_BPF for krayd's sk_skb program)");
	cr_assert_eq(harness_start_krayd(&h, 2), 0);
	for (int i = 0; i < 3; i++) {
		m[i] = (struct mixed){ .sock = h.sock,
				       .id = i,
				       .pipeline = i == 2,
				       .until = harness_now_ms() + 2000 };
		cr_assert_eq(pthread_create(&th[i], NULL, mixed_thread, &m[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(m[i].rc, 0, "caller %d went wrong (%d) after %ld calls", i, m[i].rc,
			     m[i].calls);
		cr_assert_gt(m[i].calls, 0, "caller %d made no call", i);
	}
	k = harness_connect(h.sock);
	st = harness_status(k);
	cr_log_info("mixed: %ld + %ld sync calls (%llu fast, %llu bounced), %ld pipelined",
		    m[0].calls, m[1].calls, (unsigned long long)st.fast_tasks,
		    (unsigned long long)st.fast_bounced, m[2].calls);
	cr_assert_eq(st.tasks_queued, 0);
	cr_assert(harness_krayd_alive(&h));
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- gets with a timeout ---------------------------------------------------------------- */

/* Ray's shape, a get with a timeout, goes fast when the result comes in time. */
Test(fastpath, timed_get_goes_fast)
{
	kray *k = fast_krayd(2);
	struct kray_stats before = harness_status(k), after;

	for (int i = 0; i < 50; i++) {
		kray_value v;
		kray_ref r =
			harness_call1(k, "add", (kray_value[]){ KRAY_V_INT(i), KRAY_V_INT(7) }, 2);
		int rc = kray_get(k, &r, 1, 30000, &v);

		cr_assert_eq(rc, 0, "add: %d %s", rc, kray_errmsg(k));
		cr_assert_eq(v.i, i + 7);
		kray_value_clear(&v);
		kray_release(k, &r, 1);
	}
	after = harness_status(k);
	cr_log_info("timed gets: %llu of 50 fast",
		    (unsigned long long)(after.fast_tasks - before.fast_tasks));
	cr_assert_geq(after.fast_tasks - before.fast_tasks, 25, "only %llu of 50 went fast",
		      (unsigned long long)(after.fast_tasks - before.fast_tasks));
	harness_shutdown(k);
}

/* A fast call whose get times out stays in flight: later gets (timed or not) return its
 * value, whether it arrived before them or while they wait, and a fast call made
 * meanwhile gets its own value. */
Test(fastpath, timeout_then_late_get)
{
	kray *k = fast_krayd(2);
	struct kray_stats before = harness_status(k);
	kray_value v;
	kray_ref r, r2;
	int rc;

	r = harness_call1(k, "sleep_ms", &KRAY_V_INT(600), 1);
	rc = kray_get(k, &r, 1, 50, &v);
	cr_assert_eq(rc, -ETIMEDOUT, "rc %d %s", rc, kray_errmsg(k));
	cr_assert(strstr(kray_errmsg(k), "timed out"), "message: %s", kray_errmsg(k));
	cr_assert_eq(harness_status(k).fast_tasks - before.fast_tasks, 1, "it did not go fast");
	rc = kray_get(k, &r, 1, 0, &v);
	cr_assert_eq(rc, -ETIMEDOUT, "a get with timeout 0: %d", rc);
	/* A fast call while the first is still running (on the other worker). */
	r2 = harness_call1(k, "square", &KRAY_V_INT(9), 1);
	rc = kray_get(k, &r2, 1, 10000, &v);
	cr_assert_eq(rc, 0, "square: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 81);
	kray_release(k, &r2, 1);
	/* Waits for the late answer. */
	rc = kray_get(k, &r, 1, 10000, &v);
	cr_assert_eq(rc, 0, "the late get: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_INT64);
	cr_assert_eq(v.i, 600);
	rc = kray_get(k, &r, 1, -1, &v);
	cr_assert_eq(rc, 0);
	cr_assert_eq(v.i, 600);
	/* krayd knows it too: passed to a task. */
	r2 = harness_call1(k, "add", (kray_value[]){ KRAY_V_REF(r), KRAY_V_INT(1) }, 2);
	rc = harness_get1(k, r2, 10000, &v);
	cr_assert_eq(rc, 0, "add(late ref): %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 601);
	kray_release(k, &r2, 1);
	kray_release(k, &r, 1);

	/* The answer arrives while the driver does something else: a later fast call reads it
	 * and keeps it for its own get. */
	r = harness_call1(k, "sleep_ms", &KRAY_V_INT(100), 1);
	cr_assert_eq(kray_get(k, &r, 1, 0, &v), -ETIMEDOUT);
	usleep(400000);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(sync_call(k, "square", &KRAY_V_INT(i + 2), 1, &v), 0);
		cr_assert_eq(v.i, (i + 2) * (i + 2));
	}
	rc = kray_get(k, &r, 1, 0, &v);
	cr_assert_eq(rc, 0, "the late answer read meanwhile: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 100);
	kray_release(k, &r, 1);
	harness_shutdown(k);
}

/* A late ref named by a wait and by a call: the wait sees it not ready, then ready; the
 * call gets its value. */
Test(fastpath, timeout_then_wait_and_call)
{
	kray *k = fast_krayd(2);
	kray_value v;
	kray_ref r, r2;
	uint8_t ready = 9;
	size_t nready = 9;
	int rc;

	r = harness_call1(k, "sleep_ms", &KRAY_V_INT(500), 1);
	cr_assert_eq(kray_get(k, &r, 1, 20, &v), -ETIMEDOUT);
	rc = kray_wait(k, &r, 1, 1, 0, &ready, &nready);
	cr_assert_eq(rc, 0, "wait: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(ready, 0, "a running late call is ready");
	cr_assert_eq(nready, 0);
	rc = kray_wait(k, &r, 1, 1, 10000, &ready, &nready);
	cr_assert_eq(rc, 0, "wait: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(ready, 1);
	cr_assert_eq(nready, 1);
	r2 = harness_call1(k, "sleep_ms", &KRAY_V_INT(300), 1);
	cr_assert_eq(kray_get(k, &r2, 1, 10, &v), -ETIMEDOUT);
	r = (kray_ref){ 0 };
	r = harness_call1(k, "add", (kray_value[]){ KRAY_V_REF(r2), KRAY_V_INT(5) }, 2);
	rc = harness_get1(k, r, 10000, &v);
	cr_assert_eq(rc, 0, "add(late ref): %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 305);
	kray_release(k, &r, 1);
	kray_release(k, &r2, 1);
	harness_shutdown(k);
}

/* A late ref released before its answer comes: the answer is dropped, and never given
 * to another call. */
Test(fastpath, timeout_then_release)
{
	kray *k = fast_krayd(2);
	struct kray_stats st;
	kray_value v;
	kray_ref r[3];

	for (int i = 0; i < 3; i++) {
		r[i] = harness_call1(k, "sleep_ms", &KRAY_V_INT(150 + i), 1);
		cr_assert_eq(kray_get(k, &r[i], 1, i ? 0 : 20, &v), -ETIMEDOUT);
		cr_assert_eq(kray_release(k, &r[i], 1), 0);
	}
	usleep(700000); /* the answers arrive, for refs no longer held */
	for (int i = 0; i < 30; i++) {
		kray_ref q = harness_call1(k, "add",
					   (kray_value[]){ KRAY_V_INT(i), KRAY_V_INT(1000) }, 2);
		int rc = kray_get(k, &q, 1, i % 2 ? -1 : 10000, &v);

		cr_assert_eq(rc, 0, "add: %d %s", rc, kray_errmsg(k));
		cr_assert_eq(v.i, i + 1000, "call %d got %lld", i, (long long)v.i);
		kray_release(k, &q, 1);
	}
	/* A call that was bounced went to krayd (released): it runs, and nothing waits. */
	for (int i = 0; i < 500 && (st = harness_status(k)).tasks_queued; i++)
		usleep(10000);
	cr_assert_eq(st.tasks_queued, 0);
	harness_shutdown(k);
}

/* A late call whose worker is killed: the later get gives the worker-died error (no
 * retries), or the retry's value. */
Test(fastpath, timeout_then_worker_killed)
{
	struct harness h;
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	char dir[128], path[200];
	kray_value v;
	kray_ref r;
	kray *k;
	pid_t w;
	int rc;

	k = fast_krayd_proc(&h, 1, NULL);
	w = only_worker(h.pid);
	cr_assert_gt(w, 0, "cannot find krayd's worker");
	o.max_retries = 0;
	cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(5000), 1, &o, &r), 0);
	rc = kray_get(k, &r, 1, 200, &v);
	cr_assert_eq(rc, -ETIMEDOUT, "rc %d %s", rc, kray_errmsg(k));
	cr_assert_eq(kill(w, SIGKILL), 0);
	rc = kray_get(k, &r, 1, 15000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "after the kill: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_ERROR);
	cr_assert_eq(v.err, KRAY_ERR_WORKER_DIED, "kind %s", harness_errkind(v.err));
	cr_assert(strstr(v.data, "sleep_ms"), "message: %s", (const char *)v.data);
	kray_value_clear(&v);
	kray_release(k, &r, 1);

	/* With a retry: the daemon path runs it again. */
	harness_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/died", dir);
	for (int i = 0; i < 300 && !(w = only_worker(h.pid)); i++)
		usleep(10000);
	r = harness_call1(k, "die_once", &KRAY_V_BYTES(path, strlen(path)), 1);
	rc = kray_get(k, &r, 1, 0, &v);
	if (rc == -ETIMEDOUT)
		rc = kray_get(k, &r, 1, 20000, &v);
	cr_assert_eq(rc, 0, "die_once: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 42);
	kray_release(k, &r, 1);
	cr_assert(harness_krayd_alive(&h), "krayd died");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* kray_cancel of a fast call whose get timed out: a later get says cancelled at once;
 * with force its worker is killed; a call that had finished is not cancelled; answers
 * that come after are dropped. */
Test(fastpath, timeout_then_cancel)
{
	kray *k = fast_krayd(2);
	struct kray_stats before = harness_status(k), st;
	kray_value v;
	kray_ref r;
	int64_t t0;
	int rc;

	/* Forced: the worker is killed, and the call is not retried. */
	r = harness_call1(k, "sleep_ms", &KRAY_V_INT(4000), 1);
	cr_assert_eq(kray_get(k, &r, 1, 50, &v), -ETIMEDOUT);
	cr_assert_eq(harness_status(k).fast_tasks - before.fast_tasks, 1, "it did not go fast");
	cr_assert_eq(kray_cancel(k, &r, 1, 0), 0, "cancel: %s", kray_errmsg(k));
	t0 = harness_now_ms();
	rc = kray_get(k, &r, 1, 10000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "get after cancel: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.err, KRAY_ERR_CANCELLED, "kind %s", harness_errkind(v.err));
	cr_assert(strstr(v.data, "sleep_ms"), "message: %s", (const char *)v.data);
	kray_value_clear(&v);
	cr_assert_lt(harness_now_ms() - t0, 2000, "the get waited for the task");
	rc = harness_get1(k, r, 5000, &v); /* krayd says the same, once asked */
	cr_assert_eq(rc, -EREMOTEIO);
	cr_assert_eq(v.err, KRAY_ERR_CANCELLED);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	for (int i = 0; i < 300 && harness_status(k).workers_died == before.workers_died; i++)
		usleep(10000);
	st = harness_status(k);
	cr_assert_geq(st.workers_died - before.workers_died, 1, "the worker was not killed");
	cr_assert_eq(st.tasks_submitted, before.tasks_submitted, "the call was retried");

	/* Not forced: a C task runs to its end; its answer is dropped. */
	r = harness_call1(k, "sleep_ms", &KRAY_V_INT(300), 1);
	cr_assert_eq(kray_get(k, &r, 1, 0, &v), -ETIMEDOUT);
	cr_assert_eq(kray_cancel(k, &r, 0, 0), 0);
	rc = kray_get(k, &r, 1, -1, &v);
	cr_assert_eq(rc, -EREMOTEIO, "get after cancel: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.err, KRAY_ERR_CANCELLED);
	kray_value_clear(&v);
	usleep(500000);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(sync_call(k, "square", &KRAY_V_INT(i), 1, &v), 0);
		cr_assert_eq(v.i, i * i);
	}
	kray_release(k, &r, 1);

	/* Finished before the cancel: its value stands. */
	r = harness_call1(k, "square", &KRAY_V_INT(12), 1);
	rc = kray_get(k, &r, 1, 0, &v);
	if (rc == -ETIMEDOUT) {
		usleep(300000);
		cr_assert_eq(kray_cancel(k, &r, 0, 0), 0);
		rc = kray_get(k, &r, 1, 5000, &v);
	}
	cr_assert_eq(rc, 0, "a finished call: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 144);
	kray_release(k, &r, 1);
	harness_shutdown(k);
}

/* Threads, each with its own handle, mix timed-out fast calls, gets of them later (in
 * any order), releases of some, and ordinary sync calls: every value is the one of its
 * own call. */
struct timeouts {
	const char *sock;
	int id, rc;
	long late, fast;
};

static void *timeouts_thread(void *arg)
{
	struct timeouts *t = arg;
	kray *k = harness_connect(t->sock);
	kray_ref late[8];
	int64_t want[8];
	int nlate = 0;

	for (int i = 0; i < 120 && !t->rc; i++) {
		int64_t a = t->id * 100000 + i;
		kray_value v;
		kray_ref r;
		int rc;

		if (i % 3 == 0) /* a short sleep with a shorter timeout: mostly late */
			r = harness_call1(k, "sleep_ms", &KRAY_V_INT(5 + i % 7), 1);
		else
			r = harness_call1(k, "add", (kray_value[]){ KRAY_V_INT(a), KRAY_V_INT(3) },
					  2);
		rc = kray_get(k, &r, 1, i % 3 == 0 ? 1 : i % 3 == 1 ? 0 : 10000, &v);
		if (rc == -ETIMEDOUT) {
			t->late++;
			if (nlate == 8) { /* the oldest: got, or released */
				if (i % 2) {
					if (kray_get(k, &late[0], 1, 20000, &v) || v.i != want[0])
						t->rc = -1;
				}
				kray_release(k, &late[0], 1);
				memmove(late, late + 1, 7 * sizeof(*late));
				memmove(want, want + 1, 7 * sizeof(*want));
				nlate--;
			}
			late[nlate] = r;
			want[nlate++] = i % 3 == 0 ? 5 + i % 7 : a + 3;
			continue;
		}
		t->fast++;
		if (rc || v.i != (i % 3 == 0 ? 5 + i % 7 : a + 3))
			t->rc = -2;
		kray_release(k, &r, 1);
	}
	for (int j = nlate - 1; j >= 0 && !t->rc; j--) {
		kray_value v;

		if (kray_get(k, &late[j], 1, j % 2 ? -1 : 20000, &v) || v.i != want[j])
			t->rc = -3;
		kray_release(k, &late[j], 1);
	}
	harness_shutdown(k);
	return NULL;
}

Test(fastpath, timeouts_many_threads)
{
	struct harness h;
	struct timeouts t[4];
	pthread_t th[4];
	struct kray_stats st;
	kray *k;

	need_fast();
	cr_assert_eq(harness_start_krayd(&h, 2), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct timeouts){ .sock = h.sock, .id = i };
		cr_assert_eq(pthread_create(&th[i], NULL, timeouts_thread, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(t[i].rc, 0, "thread %d got a wrong value (%d)", i, t[i].rc);
	}
	k = harness_connect(h.sock);
	st = harness_status(k);
	cr_log_info("timeouts: %ld late, %ld in time; %llu fast, %llu bounced",
		    t[0].late + t[1].late + t[2].late + t[3].late,
		    t[0].fast + t[1].fast + t[2].fast + t[3].fast,
		    (unsigned long long)st.fast_tasks, (unsigned long long)st.fast_bounced);
	cr_assert_gt(st.fast_tasks, 0);
	cr_assert(harness_krayd_alive(&h));
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- bad input ------------------------------------------------------------------------ */

static int raw_driver(const char *sock, uint32_t *ret_client)
{
	struct kray_msg_hello_ok ok;
	int fd = harness_raw_connect(sock, 5);

	harness_raw_hello(fd, &ok);
	*ret_client = ok.client;
	return fd;
}

/* Sends one frame and expects krayd's ERROR frame, then the end of the connection. */
static void expect_refused(const char *sock, uint16_t type, const void *body, uint32_t len,
			   const char *what)
{
	struct kray_frame_hdr h = {
		.magic = KRAY_WIRE_MAGIC, .version = KRAY_WIRE_VERSION, .type = type, .len = len
	};
	uint8_t buf[4096];
	uint32_t client;
	int fd = raw_driver(sock, &client);
	ssize_t r;

	(void)client;
	cr_assert_eq(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
	if (len)
		cr_assert_eq(send(fd, body, len, MSG_NOSIGNAL), (ssize_t)len);
	r = recv(fd, &h, sizeof(h), MSG_WAITALL);
	cr_assert_eq(r, (ssize_t)sizeof(h), "%s: no reply", what);
	cr_assert_eq(h.type, KRAY_MSG_ERROR, "%s: reply type %u, want ERROR", what, h.type);
	cr_assert_leq(h.len, sizeof(buf));
	recv(fd, buf, h.len, MSG_WAITALL);
	cr_assert_eq(recv(fd, buf, 1, 0), 0, "%s: connection left open", what);
	close(fd);
}

/* Fast-path frames krayd must refuse from a client: each gets an ERROR and its
 * connection closed; krayd goes on serving. */
Test(fastpath, bad_frames_refused)
{
	struct harness h;
	struct {
		struct kray_msg_result m;
		struct kray_wire_value v;
		struct kray_oid ref;
	} done = { .m = { .task = { 0, 999999, 1, 0 }, .n = 1 },
		   .v = { .type = KRAY_WT_INT64, .scalar = 7 } };
	uint32_t client;
	uint64_t junk = 0;
	kray *k;
	kray_value v;
	int fd;

	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	k = harness_connect(h.sock);
	done.m.task.node = (uint32_t)harness_status(k).node;
	/* A result registered for a task of another client. */
	expect_refused(h.sock, KRAY_MSG_FAST_DONE, &done, sizeof(done.m) + sizeof(done.v),
		       "FAST_DONE of another client");
	/* A result that is a ref. */
	fd = raw_driver(h.sock, &client);
	close(fd);
	done.m.task.owner = client + 1; /* the next connection's id */
	done.v = (struct kray_wire_value){ .type = KRAY_WT_REF, .len = sizeof(struct kray_oid) };
	expect_refused(h.sock, KRAY_MSG_FAST_DONE, &done, sizeof(done), "FAST_DONE of a ref");
	/* Frames that only workers or the program may send. */
	expect_refused(h.sock, KRAY_MSG_FAST_STORE, &done, sizeof(done.m) + sizeof(done.v),
		       "FAST_STORE from a driver");
	expect_refused(h.sock, KRAY_MSG_FAST_EXEC, &junk, sizeof(junk), "FAST_EXEC to krayd");
	expect_refused(h.sock, KRAY_MSG_FAST_RESULT, &junk, sizeof(junk), "FAST_RESULT to krayd");
	expect_refused(h.sock, KRAY_MSG_FAST_OPEN, &junk, sizeof(junk), "FAST_OPEN with a body");
	/* Counts of fast calls: only from a worker (a driver's would inflate krayd's). */
	struct {
		struct kray_msg_fast_count m;
		char name[8];
	} count = { .m = { .runs = 5, .name_len = 6 }, .name = "square" };
	expect_refused(h.sock, KRAY_MSG_FAST_COUNT, &count, sizeof(count),
		       "FAST_COUNT from a driver");
	cr_assert_eq(harness_status(k).tasks_submitted, 0, "a driver's counts were taken");
	cr_assert(harness_krayd_alive(&h), "krayd died from bad fast frames");
	cr_assert_eq(sync_call(k, "square", &KRAY_V_INT(5), 1, &v), 0);
	cr_assert_eq(v.i, 25);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- switching it off ------------------------------------------------------------------- */

static void expect_no_fast(const char *flag, const char *val)
{
	struct harness h;
	const char *const extra[] = { flag, val, NULL };
	kray *k;
	kray_value v;

	cr_assert_eq(harness_start_krayd_opts(&h, 2, extra), 0);
	k = harness_connect(h.sock);
	for (int i = 0; i < 30; i++) {
		int rc = sync_call(k, "square", &KRAY_V_INT(i), 1, &v);

		cr_assert_eq(rc, 0, "%s %s: %d %s", flag, val, rc, kray_errmsg(k));
		cr_assert_eq(v.i, i * i);
		usleep(2000);
	}
	cr_assert_eq(harness_status(k).fast_tasks, 0, "%s %s: calls went fast", flag, val);
	cr_assert_geq(harness_status(k).tasks_submitted, 30);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

Test(fastpath, fastpath_off)
{
	expect_no_fast("--fastpath", "off");
}

Test(fastpath, bpf_off)
{
	expect_no_fast("--bpf", "off");
}

/* ---- actor method calls (docs/fastpath.md, "Actor calls") ------------------------------ */

/* ---- ref arguments whose values the driver has ---------------------------------------- */

/* A small ref argument the driver put, or got as an earlier result, goes fast: its value
 * travels in the FAST_EXEC, and the worker sees exactly what krayd's path gives it (the
 * value, resolved, never the ref).  Pipelined calls (krayd's path) give the same results. */
Test(fastpath, local_ref_arguments_go_fast)
{
	kray *k = fast_krayd(2);
	static char blob[6000];
	kray_ref pi, pb, pf, pblob, sq, r[2];
	kray_value v, fast_v[4];
	uint64_t fast;
	int rc;

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (char)(i * 13 + 5);
	cr_assert_eq(kray_put(k, &KRAY_V_INT(7), &pi), 0);
	cr_assert_eq(kray_put(k, &KRAY_V_BYTES("hello ref", 9), &pb), 0);
	cr_assert_eq(kray_put(k, &KRAY_V_F64(1.5), &pf), 0);
	cr_assert_eq(kray_put(k, &KRAY_V_BYTES(blob, sizeof(blob)), &pblob), 0);
	fast = harness_status(k).fast_tasks;
	for (int i = 0; i < 20; i++) {
		rc = sync_call(k, "add", (kray_value[]){ KRAY_V_REF(pi), KRAY_V_INT(i) }, 2, &v);
		cr_assert_eq(rc, 0, "add(ref, %d): %d %s", i, rc, kray_errmsg(k));
		cr_assert_eq(v.i, 7 + i, "add(ref 7, %d) = %lld", i, (long long)v.i);
	}
	rc = sync_call(k, "type_of", &KRAY_V_REF(pi), 1, &fast_v[0]);
	cr_assert_eq(rc, 0, "%s", kray_errmsg(k));
	rc = sync_call(k, "type_of", &KRAY_V_REF(pb), 1, &fast_v[1]);
	cr_assert_eq(rc, 0, "%s", kray_errmsg(k));
	cr_assert_eq(fast_v[0].i, KRAY_INT64, "the worker saw type %lld", (long long)fast_v[0].i);
	cr_assert_eq(fast_v[1].i, KRAY_BYTES, "the worker saw type %lld", (long long)fast_v[1].i);
	rc = sync_call(k, "echo_bytes", &KRAY_V_REF(pb), 1, &v);
	cr_assert_eq(rc, 0, "%s", kray_errmsg(k));
	cr_assert(v.len == 9 && !memcmp(v.data, "hello ref", 9));
	kray_value_clear(&v);
	rc = sync_call(k, "sum_f64", (kray_value[]){ KRAY_V_REF(pf), KRAY_V_REF(pf) }, 2, &v);
	cr_assert_eq(rc, 0, "%s", kray_errmsg(k));
	cr_assert_float_eq(v.f, 3.0, 1e-12);
	rc = sync_call(k, "echo_bytes", &KRAY_V_REF(pblob), 1, &v);
	cr_assert_eq(rc, 0, "%s", kray_errmsg(k));
	cr_assert(v.len == sizeof(blob) && !memcmp(v.data, blob, sizeof(blob)),
		  "6,000 bytes came back changed");
	kray_value_clear(&v);
	/* An earlier call's result, got (so here), as the argument of the next one. */
	cr_assert_eq(kray_call(k, "square", &KRAY_V_INT(5), 1, NULL, &sq), 0);
	cr_assert_eq(kray_get(k, &sq, 1, -1, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 25);
	rc = sync_call(k, "add", (kray_value[]){ KRAY_V_REF(sq), KRAY_V_INT(1) }, 2, &v);
	cr_assert_eq(rc, 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 26);
	cr_assert_geq(harness_status(k).fast_tasks - fast, 24, "only %llu of 26 went fast",
		      (unsigned long long)(harness_status(k).fast_tasks - fast));

	/* The same calls on krayd's path (pipelined: two in flight) give the same values. */
	fast = harness_status(k).fast_tasks;
	cr_assert_eq(kray_call(k, "type_of", &KRAY_V_REF(pi), 1, NULL, &r[0]), 0);
	cr_assert_eq(kray_call(k, "type_of", &KRAY_V_REF(pb), 1, NULL, &r[1]), 0);
	cr_assert_eq(kray_get(k, r, 2, 10000, fast_v + 2), 0, "%s", kray_errmsg(k));
	cr_assert_eq(fast_v[2].i, fast_v[0].i);
	cr_assert_eq(fast_v[3].i, fast_v[1].i);
	kray_release(k, r, 2);
	cr_assert_eq(kray_call(k, "echo_bytes", &KRAY_V_REF(pblob), 1, NULL, &r[0]), 0);
	cr_assert_eq(kray_call(k, "add", (kray_value[]){ KRAY_V_REF(sq), KRAY_V_REF(pi) }, 2, NULL,
			       &r[1]),
		     0);
	cr_assert_eq(kray_get(k, &r[0], 1, 10000, &v), 0, "%s", kray_errmsg(k));
	cr_assert(v.len == sizeof(blob) && !memcmp(v.data, blob, sizeof(blob)));
	kray_value_clear(&v);
	cr_assert_eq(kray_get(k, &r[1], 1, 10000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 32);
	kray_release(k, r, 2);
	cr_assert_eq(harness_status(k).fast_tasks, fast, "a pipelined call went fast");
	kray_release(k, (kray_ref[]){ pi, pb, pf, pblob, sq }, 5);
	harness_shutdown(k);
}

/* A fast call's result, passed to the next call and released before that call's get: the
 * call still gets its value, on either path (krayd had not heard of the result: it hears
 * of it before the call names it). */
Test(fastpath, result_argument_released_at_once)
{
	kray *k = fast_krayd(2);
	kray_ref a, r[2];
	kray_value v;

	for (int pipelined = 0; pipelined < 2; pipelined++) {
		cr_assert_eq(kray_call(k, "square", &KRAY_V_INT(5), 1, NULL, &a), 0);
		cr_assert_eq(kray_get(k, &a, 1, -1, &v), 0, "%s", kray_errmsg(k));
		cr_assert_eq(v.i, 25);
		cr_assert_eq(kray_call(k, "add", (kray_value[]){ KRAY_V_REF(a), KRAY_V_INT(1) }, 2,
				       NULL, &r[0]),
			     0);
		if (pipelined)
			cr_assert_eq(kray_call(k, "square", &KRAY_V_INT(2), 1, NULL, &r[1]), 0);
		cr_assert_eq(kray_release(k, &a, 1), 0);
		cr_assert_eq(kray_get(k, &r[0], 1, 10000, &v), 0, "pipelined %d: %s", pipelined,
			     kray_errmsg(k));
		cr_assert_eq(v.i, 26);
		kray_release(k, r, pipelined ? 2 : 1);
	}
	harness_shutdown(k);
}

/* Ref arguments the driver does not have the value of go to krayd, which resolves them:
 * a released or unknown ref, a large object, a result not ready yet, an object that holds
 * refs; and a call with one such ref among local ones. */
Test(fastpath, other_ref_arguments_take_daemon_path)
{
	kray *k = fast_krayd(2);
	static char big[100000];
	kray_ref pi, gone, pbig, nest, slow, unknown;
	kray_value v;
	uint64_t fast;
	int rc;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 31 + 3);
	cr_assert_eq(kray_put(k, &KRAY_V_INT(7), &pi), 0);
	cr_assert_eq(kray_put(k, &KRAY_V_INT(8), &gone), 0);
	cr_assert_eq(kray_release(k, &gone, 1), 0);
	cr_assert_eq(kray_put(k, &KRAY_V_BYTES(big, sizeof(big)), &pbig), 0);
	cr_assert_eq(kray_put_refs(k, &KRAY_V_BYTES("outer", 5), &pi, 1, &nest), 0);
	unknown = (kray_ref){ pi.node, pi.owner, pi.seq + 100000, pi.index };
	fast = harness_status(k).fast_tasks;

	rc = sync_call(k, "add", (kray_value[]){ KRAY_V_REF(gone), KRAY_V_INT(1) }, 2, &v);
	cr_assert_neq(rc, 0, "a released ref argument was resolved");
	kray_value_clear(&v);
	rc = sync_call(k, "add", (kray_value[]){ KRAY_V_REF(unknown), KRAY_V_INT(1) }, 2, &v);
	cr_assert_neq(rc, 0, "an unknown ref argument was resolved");
	kray_value_clear(&v);
	rc = sync_call(k, "echo_bytes", &KRAY_V_REF(pbig), 1, &v);
	cr_assert_eq(rc, 0, "large: %d %s", rc, kray_errmsg(k));
	cr_assert(v.len == sizeof(big) && !memcmp(v.data, big, sizeof(big)),
		  "100,000 bytes came back changed");
	kray_value_clear(&v);
	rc = sync_call(k, "echo_bytes", &KRAY_V_REF(nest), 1, &v);
	cr_assert_eq(rc, 0, "nested: %d %s", rc, kray_errmsg(k));
	cr_assert(v.len == 5 && !memcmp(v.data, "outer", 5));
	kray_value_clear(&v);
	/* Not ready: the call waits for it in krayd.  Both its refs are needed, one local. */
	cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(100), 1, NULL, &slow), 0);
	rc = sync_call(k, "add", (kray_value[]){ KRAY_V_REF(pi), KRAY_V_REF(slow) }, 2, &v);
	cr_assert_eq(rc, 0, "not ready: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 107);
	cr_assert_eq(harness_status(k).fast_tasks, fast, "%llu calls went fast",
		     (unsigned long long)(harness_status(k).fast_tasks - fast));
	kray_release(k, (kray_ref[]){ pi, pbig, nest, slow }, 4);
	harness_shutdown(k);
}

/* A fast call with a local ref argument that falls back to krayd gets the ref resolved
 * there: NOT_RUN (the worker declines a stand-in for the first argument; the second, a
 * local ref, went as its value) and a bounce (no idle worker). */
Test(fastpath, local_ref_argument_fallbacks)
{
	struct harness h;
	struct slow_call s = { .ms = 800 };
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value arg0 = KRAY_V_INT(100), v;
	struct kray_stats before;
	kray_ref p7, p2, p6, r;
	pthread_t th;
	kray *a, *b;
	uint64_t fast;
	int rc;

	a = fast_krayd_proc(&h, 1, NULL);
	cr_assert_eq(kray_put(a, &KRAY_V_INT(7), &p7), 0);
	cr_assert_eq(kray_put(a, &KRAY_V_INT(2), &p2), 0);
	o.fast_arg0 = &arg0;
	fast = harness_status(a).fast_tasks;
	cr_assert_eq(kray_call(a, "stand_in", (kray_value[]){ KRAY_V_REF(p7), KRAY_V_REF(p2) }, 2,
			       &o, &r),
		     0);
	cr_assert_eq(kray_get(a, &r, 1, 10000, &v), 0, "%s", kray_errmsg(a));
	cr_assert_eq(v.i, 1002, "ran with %lld, not the stand-in and 2", (long long)v.i);
	kray_release(a, &r, 1);
	cr_assert_eq(harness_status(a).fast_tasks - fast, 1, "it did not go fast");
	arg0 = KRAY_V_INT(-1); /* declined: krayd resolves both refs */
	cr_assert_eq(kray_call(a, "stand_in", (kray_value[]){ KRAY_V_REF(p7), KRAY_V_REF(p2) }, 2,
			       &o, &r),
		     0);
	cr_assert_eq(kray_get(a, &r, 1, 10000, &v), 0, "%s", kray_errmsg(a));
	cr_assert_eq(v.i, 72);
	kray_release(a, &r, 1);

	/* The only worker busy with a fast call: b's call bounces to krayd and waits. */
	b = harness_connect(h.sock);
	cr_assert_eq(kray_put(b, &KRAY_V_INT(6), &p6), 0);
	before = harness_status(b);
	s.k = a;
	cr_assert_eq(pthread_create(&th, NULL, slow_thread, &s), 0);
	usleep(200000);
	rc = sync_call(b, "square", &KRAY_V_REF(p6), 1, &v);
	cr_assert_eq(rc, 0, "bounced: %d %s", rc, kray_errmsg(b));
	cr_assert_eq(v.i, 36);
	pthread_join(th, NULL);
	cr_assert_eq(s.rc, 0);
	cr_assert_geq(harness_status(b).fast_bounced - before.fast_bounced, 1, "no bounce");
	kray_release(a, (kray_ref[]){ p7, p2 }, 2);
	kray_release(b, &p6, 1);
	harness_shutdown(a);
	harness_shutdown(b);
	harness_stop_krayd(&h);
}

/* A fast call with a local ref argument whose get timed out keeps the ref alive, as
 * krayd's path does: the caller releases it, the worker is killed, and the retry through
 * krayd still resolves it.  The ref is a put, then a fast call's result (which krayd had
 * not heard of yet).  Once settled, the hold is given back: krayd keeps nothing. */
Test(fastpath, late_call_keeps_ref_argument)
{
	struct harness h;
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	uint64_t objects;
	kray_value v;
	kray_ref p, r;
	kray *k;
	pid_t w;
	int rc;

	k = fast_krayd_proc(&h, 1, NULL);
	objects = harness_status(k).objects;
	o.max_retries = 1;
	for (int variant = 0; variant < 2; variant++) {
		for (int i = 0; i < 300 && (w = only_worker(h.pid)) <= 0; i++)
			usleep(10000);
		cr_assert_gt(w, 0, "cannot find krayd's worker");
		if (!variant) {
			cr_assert_eq(kray_put(k, &KRAY_V_INT(1500), &p), 0);
		} else {
			cr_assert_eq(kray_call(k, "identity", &KRAY_V_INT(1500), 1, NULL, &p), 0);
			cr_assert_eq(kray_get(k, &p, 1, -1, &v), 0, "%s", kray_errmsg(k));
		}
		cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_REF(p), 1, &o, &r), 0);
		rc = kray_get(k, &r, 1, 200, &v);
		cr_assert_eq(rc, -ETIMEDOUT, "variant %d: rc %d %s", variant, rc, kray_errmsg(k));
		cr_assert_eq(kray_release(k, &p, 1), 0);
		cr_assert_eq(kray_flush(k), 0); /* krayd has the release before the retry */
		usleep(50000);
		cr_assert_eq(kill(w, SIGKILL), 0);
		rc = kray_get(k, &r, 1, 20000, &v);
		cr_assert_eq(rc, 0, "variant %d, the retry: %d %s", variant, rc, kray_errmsg(k));
		cr_assert_eq(v.i, 1500);
		kray_release(k, &r, 1);
		cr_assert_eq(kray_flush(k), 0);
	}
	for (int i = 0; i < 200 && harness_status(k).objects != objects; i++)
		usleep(10000);
	cr_assert_eq(harness_status(k).objects, objects, "krayd keeps %lld objects more",
		     (long long)(harness_status(k).objects - objects));
	cr_assert(harness_krayd_alive(&h), "krayd died");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* Exact results, in order, and through the program: the counter counts each call once. */
Test(fastpath, actor_calls_exact)
{
	kray *k = fast_krayd(2);
	kray_ref a = harness_fast_counter(k, NULL);
	struct kray_stats st = harness_status(k);
	kray_value v;

	for (int i = 1; i <= 300; i++)
		cr_assert_eq(harness_actor_call_int(k, a, "incr", &KRAY_V_INT(1), 1), i);
	/* Errors come back as on the daemon path; the actor lives on. */
	cr_assert_eq(harness_actor_get(k, a, "fail", &KRAY_V_BYTES("no", 2), 1, -1, &v),
		     -EREMOTEIO);
	cr_assert_eq(v.err, KRAY_ERR_TASK);
	cr_assert(strstr((const char *)v.data, "no"), "%s", (const char *)v.data);
	kray_value_clear(&v);
	cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 300);
	cr_assert_geq(harness_status(k).fast_tasks - st.fast_tasks, 250, "%llu of 302 went fast",
		      (unsigned long long)(harness_status(k).fast_tasks - st.fast_tasks));
	/* krayd counts them as its tasks, from the worker's reports. */
	counted(k, st.tasks_submitted + 302);
	kray_release(k, &a, 1);
	harness_shutdown(k);
}

/*
 * A synchronous call behind a pipelined call still in the driver's buffer goes to krayd
 * with it (fast_actor.c): steered to the worker, it would come back NOT_RUN (the worker
 * has not run the earlier call), which the program counts as steered.  The calls after
 * go fast again.
 */
Test(fastpath, actor_call_behind_buffered_one)
{
	kray *k = fast_krayd(2);
	kray_ref a = harness_fast_counter(k, NULL);
	uint64_t before = harness_status(k).fast_tasks;
	kray_ref r;

	for (int i = 0; i < 20; i++) {
		cr_assert_eq(kray_actor_call(k, a, "incr", &KRAY_V_INT(1), 1, NULL, &r), 0);
		cr_assert_eq(harness_actor_call_int(k, a, "incr", &KRAY_V_INT(1), 1), 2 * i + 2);
		kray_release(k, &r, 1);
	}
	cr_assert_eq(harness_status(k).fast_tasks, before,
		     "%llu calls behind a buffered one "
		     "were steered",
		     (unsigned long long)(harness_status(k).fast_tasks - before));
	for (int i = 0; i < 20; i++)
		cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 40);
	cr_assert_geq(harness_status(k).fast_tasks - before, 15, "the next calls did not go fast");
	kray_release(k, &a, 1);
	harness_shutdown(k);
}

/* A plain actor's method with a ref argument whose small value the driver has goes fast
 * too, the value in the FAST_EXEC; the actor's state shows each call ran once. */
Test(fastpath, actor_call_local_ref_argument)
{
	kray *k = fast_krayd(2);
	kray_ref a = harness_fast_counter(k, NULL), p;
	uint64_t fast;

	cr_assert_eq(kray_put(k, &KRAY_V_INT(5), &p), 0);
	fast = harness_status(k).fast_tasks;
	for (int i = 1; i <= 20; i++)
		cr_assert_eq(harness_actor_call_int(k, a, "incr", &KRAY_V_REF(p), 1), 5 * i);
	cr_assert_geq(harness_status(k).fast_tasks - fast, 15, "%llu of 20 went fast",
		      (unsigned long long)(harness_status(k).fast_tasks - fast));
	cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 100);
	kray_release(k, (kray_ref[]){ a, p }, 2);
	harness_shutdown(k);
}

struct order_arg {
	const char *sock;
	int n;
	int64_t done;
};

/* Another driver: n incr(1) calls on the named counter, each got at once. */
static void *other_caller(void *p)
{
	struct order_arg *o = p;
	kray *k = harness_connect(o->sock);
	kray_ref a;

	cr_assert_eq(kray_get_actor(k, "ordered", NULL, &a), 0, "%s", kray_errmsg(k));
	for (int i = 0; i < o->n; i++)
		o->done = harness_actor_call_int(k, a, "incr", &KRAY_V_INT(1), 1);
	kray_release(k, &a, 1);
	harness_shutdown(k);
	return NULL;
}

/*
 * One caller's calls run in its order, whichever way each goes: append(i) calls, some
 * got at once (fast), some left in flight (daemon path, pipelined), some waiting for an
 * argument that comes later, while another driver calls the same actor.  check() fails
 * unless the log is 0, 1, 2, ... in order.
 */
Test(fastpath, actor_order_kept)
{
	struct harness h;
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct order_arg other = { .n = 300 };
	kray *k = fast_krayd_proc(&h, 2, NULL);
	kray_ref a, pending[64], gate;
	size_t npending = 0;
	pthread_t t;
	kray_value v;
	uint64_t fast0;
	int64_t n = 0;

	o.name = "ordered";
	a = harness_fast_counter(k, &o);
	other.sock = h.sock;
	fast0 = harness_status(k).fast_tasks;
	cr_assert_eq(pthread_create(&t, NULL, other_caller, &other), 0);
	for (int i = 0; i < 600; i++) {
		kray_ref r;

		switch (i % 7) {
		case 1: /* left in flight: the daemon path */
		case 4:
			cr_assert_eq(kray_actor_call(k, a, "append", &KRAY_V_INT(n), 1, NULL, &r),
				     0);
			if (npending == 64) {
				kray_release(k, pending, npending);
				npending = 0;
			}
			pending[npending++] = r;
			n++;
			break;
		case 5: /* waits for an argument put later: the calls after it wait too */
			if (i % 3)
				goto sync;
			cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(5), 1, NULL, &gate), 0);
			cr_assert_eq(
				kray_actor_call(k, a, "append",
						(kray_value[]){ KRAY_V_INT(n), KRAY_V_REF(gate) },
						2, NULL, &r),
				0);
			kray_release(k, &gate, 1);
			kray_release(k, &r, 1);
			n++;
			break;
		default:
		sync:
			cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(n), 1),
				     n + 1);
			n++;
		}
	}
	pthread_join(t, NULL);
	kray_release(k, pending, npending);
	cr_assert_eq(harness_actor_get(k, a, "check", NULL, 0, -1, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, n);
	cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), other.n,
		     "the other driver's calls");
	cr_assert_gt(harness_status(k).fast_tasks - fast0, 100, "too few went fast: %llu",
		     (unsigned long long)(harness_status(k).fast_tasks - fast0));
	kray_release(k, &a, 1);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

struct slow_actor_call {
	const char *sock; /* the krayd */
	const char *name; /* the actor's */
	kray *k; /* the test's own handle (the thread has its own) */
	kray_ref a;
	int64_t ms;
	int rc;
	kray_value v;
	int64_t took_ms;
};

/* sleep_ms(ms) on the named actor, got at once (a fast call), from a driver of its own on
 * a thread of its own (a handle serves one thread). */
static void *slow_actor_thread(void *p)
{
	struct slow_actor_call *s = p;
	kray *k = harness_connect(s->sock);
	int64_t t0;
	kray_ref a;

	cr_assert_eq(kray_get_actor(k, s->name, NULL, &a), 0, "%s", kray_errmsg(k));
	t0 = harness_now_ms();
	s->rc = harness_actor_get(k, a, "sleep_ms", &KRAY_V_INT(s->ms), 1, -1, &s->v);
	s->took_ms = harness_now_ms() - t0;
	kray_release(k, &a, 1);
	harness_shutdown(k);
	return NULL;
}

/* Starts s on a thread and waits until its call runs fast on the actor. */
static void start_slow(struct slow_actor_call *s, pthread_t *t)
{
	uint64_t fast = harness_status(s->k).fast_tasks;
	int64_t until = harness_now_ms() + 5000;

	cr_assert_eq(pthread_create(t, NULL, slow_actor_thread, s), 0);
	while (harness_status(s->k).fast_tasks == fast && harness_now_ms() < until)
		usleep(2000);
	cr_assert_gt(harness_status(s->k).fast_tasks, fast, "the slow call did not go fast");
	usleep(100000); /* it runs */
}

/* kray_kill(no_restart) while a fast call runs on the actor: the call fails with
 * ACTOR_DIED at once (not after its 5 s), later calls too; krayd lives on. */
Test(fastpath, actor_killed_mid_fast_call)
{
	struct harness h;
	kray *k = fast_krayd_proc(&h, 2, NULL);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct slow_actor_call s = { .ms = 5000, .sock = h.sock, .name = "slow" };
	pthread_t t;
	kray_value v;

	o.max_restarts = 3; /* no_restart wins */
	o.name = s.name;
	s.k = k;
	s.a = harness_fast_counter(k, &o);
	start_slow(&s, &t);
	/* This driver kills it: the other one waits in its fast call. */
	cr_assert_eq(kray_kill(k, s.a, 1), 0, "%s", kray_errmsg(k));
	pthread_join(t, NULL);
	cr_assert_eq(s.rc, -EREMOTEIO, "rc %d", s.rc);
	cr_assert_eq(s.v.err, KRAY_ERR_ACTOR_DIED, "err %d: %s", s.v.err, (const char *)s.v.data);
	cr_assert_lt(s.took_ms, 4000, "the call waited %lld ms", (long long)s.took_ms);
	kray_value_clear(&s.v);
	cr_assert_eq(harness_actor_get(k, s.a, "read", NULL, 0, -1, &v), -EREMOTEIO);
	cr_assert_eq(v.err, KRAY_ERR_ACTOR_DIED);
	kray_value_clear(&v);
	cr_assert(harness_krayd_alive(&h));
	cr_assert_eq(sync_call(k, "square", &KRAY_V_INT(4), 1, &v), 0);
	cr_assert_eq(v.i, 16);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* The actor's process dies during a fast call: with max_task_retries the call runs again
 * on the restarted actor (its state new), without it fails with ACTOR_DIED; the actor's
 * later calls succeed, and go fast again. */
static void actor_restart(int max_task_retries)
{
	struct harness h;
	kray *k = fast_krayd_proc(&h, 2, NULL);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct slow_actor_call s = { .ms = 3000, .sock = h.sock, .name = "slow" };
	int64_t until;
	uint64_t fast;
	pthread_t t;
	pid_t pid;

	o.name = s.name;
	o.max_restarts = 1;
	o.max_task_retries = max_task_retries;
	s.k = k;
	s.a = harness_fast_counter(k, &o);
	cr_assert_eq(harness_actor_call_int(k, s.a, "incr", &KRAY_V_INT(5), 1), 5);
	pid = (pid_t)harness_actor_call_int(k, s.a, "pid", NULL, 0);
	start_slow(&s, &t);
	kill(pid, SIGKILL);
	pthread_join(t, NULL);
	if (max_task_retries) {
		cr_assert_eq(s.rc, 0, "rc %d: %s", s.rc, s.rc ? (const char *)s.v.data : "");
		cr_assert_eq(s.v.i, 3000);
	} else {
		cr_assert_eq(s.rc, -EREMOTEIO, "rc %d", s.rc);
		cr_assert_eq(s.v.err, KRAY_ERR_ACTOR_DIED, "err %d: %s", s.v.err,
			     (const char *)s.v.data);
		cr_assert_lt(s.took_ms, 2500, "the call waited %lld ms", (long long)s.took_ms);
		kray_value_clear(&s.v);
	}
	cr_assert_eq(harness_actor_call_int(k, s.a, "read", NULL, 0), 0,
		     "the restarted actor's state");
	cr_assert_neq(harness_actor_call_int(k, s.a, "pid", NULL, 0), pid);
	fast = harness_status(k).fast_tasks;
	until = harness_now_ms() + 5000;
	for (int i = 1; harness_status(k).fast_tasks == fast && harness_now_ms() < until; i++) {
		cr_assert_eq(harness_actor_call_int(k, s.a, "incr", &KRAY_V_INT(1), 1), i);
		usleep(2000);
	}
	cr_assert_gt(harness_status(k).fast_tasks, fast, "no fast call after the restart");
	kray_release(k, &s.a, 1);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

Test(fastpath, actor_restart_retries_call)
{
	actor_restart(1);
}

Test(fastpath, actor_restart_no_task_retries)
{
	actor_restart(0);
}

/* A fast actor call whose get timed out: a later call of the same caller runs after it
 * (it waits in krayd, the worker being busy), and the late get returns its own value. */
Test(fastpath, actor_timeout_then_late_get)
{
	kray *k = fast_krayd(2);
	kray_ref a = harness_fast_counter(k, NULL), slow;
	kray_value v;

	cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(0), 1), 1);
	cr_assert_eq(kray_actor_call(k, a, "sleep_ms", &KRAY_V_INT(300), 1, NULL, &slow), 0);
	cr_assert_eq(kray_get(k, &slow, 1, 30, &v), -ETIMEDOUT, "%s", kray_errmsg(k));
	cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(1), 1), 2);
	cr_assert_eq(kray_get(k, &slow, 1, 5000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 300);
	kray_release(k, &slow, 1);
	cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(2), 1), 3);
	cr_assert_eq(harness_actor_call_int(k, a, "check", NULL, 0), 3);
	kray_release(k, &a, 1);
	harness_shutdown(k);
}

/* kray_cancel of a running fast actor call (its get timed out): the call reports
 * CANCELLED; as on the daemon path the actor is not killed, even with force, and keeps
 * its state and order. */
Test(fastpath, actor_cancel)
{
	kray *k = fast_krayd(2);
	kray_ref a = harness_fast_counter(k, NULL), slow;
	pid_t pid = (pid_t)harness_actor_call_int(k, a, "pid", NULL, 0);
	kray_value v;

	for (int force = 0; force <= 1; force++) {
		cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(2 * force), 1),
			     2 * force + 1);
		cr_assert_eq(kray_actor_call(k, a, "sleep_ms", &KRAY_V_INT(300), 1, NULL, &slow),
			     0);
		cr_assert_eq(kray_get(k, &slow, 1, 30, &v), -ETIMEDOUT);
		cr_assert_eq(kray_cancel(k, &slow, force, 0), 0, "%s", kray_errmsg(k));
		cr_assert_eq(kray_get(k, &slow, 1, 5000, &v), -EREMOTEIO);
		cr_assert_eq(v.err, KRAY_ERR_CANCELLED, "err %d", v.err);
		kray_value_clear(&v);
		kray_release(k, &slow, 1);
		cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(2 * force + 1), 1),
			     2 * force + 2);
	}
	cr_assert_eq(harness_actor_call_int(k, a, "check", NULL, 0), 4);
	cr_assert_eq(harness_actor_call_int(k, a, "pid", NULL, 0), pid, "the actor was killed");
	kray_release(k, &a, 1);
	harness_shutdown(k);
}

/* Actors that are not plain (methods on threads) keep the daemon path: every call right,
 * at most a few bounces; pool tasks never go to an actor's worker. */
Test(fastpath, actor_not_plain_and_tasks_apart)
{
	kray *k = fast_krayd(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref threaded, plain;
	struct kray_stats st;
	pid_t apid;

	o.max_concurrency = 2;
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &o, &threaded), 0);
	plain = harness_fast_counter(k, NULL);
	apid = (pid_t)harness_actor_call_int(k, plain, "pid", NULL, 0);
	st = harness_status(k);
	for (int i = 1; i <= 100; i++)
		cr_assert_eq(harness_actor_call_int(k, threaded, "incr", &KRAY_V_INT(1), 1), i);
	cr_assert_eq(harness_status(k).fast_tasks, st.fast_tasks,
		     "a threaded actor's call went fast");
	cr_assert_leq(harness_status(k).fast_bounced - st.fast_bounced, 8, "%llu bounces",
		      (unsigned long long)(harness_status(k).fast_bounced - st.fast_bounced));
	for (int i = 0; i < 50; i++) {
		kray_value v;

		cr_assert_eq(sync_call(k, "pid", NULL, 0, &v), 0, "%s", kray_errmsg(k));
		cr_assert_neq((pid_t)v.i, apid, "a task ran on the actor's worker");
	}
	kray_release(k, &threaded, 1);
	kray_release(k, &plain, 1);
	harness_shutdown(k);
}

/* fastpath-actors = off: actors' calls take the daemon path, tasks still go fast. */
Test(fastpath, actor_fastpath_off)
{
	struct harness h;
	const char *const extra[] = { "--fastpath-actors", "off", NULL };
	kray *k = fast_krayd_proc(&h, 2, extra);
	kray_ref a;
	struct kray_stats st;

	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, NULL, &a), 0);
	st = harness_status(k);
	for (int i = 1; i <= 50; i++)
		cr_assert_eq(harness_actor_call_int(k, a, "incr", &KRAY_V_INT(1), 1), i);
	cr_assert_eq(harness_status(k).fast_tasks, st.fast_tasks, "an actor's call went fast");
	kray_release(k, &a, 1);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* An actor's constructor takes fast results as arguments as a call does
 * (kc_fast_args_known()): one whose get timed out (krayd has not heard of it yet), and one
 * got fast and released right after the create. */
Test(fastpath, constructor_arguments_from_fast_calls)
{
	kray *k = fast_krayd(2);
	kray_ref r, a;
	kray_value v;

	r = harness_call1(k, "sleep_ms", &KRAY_V_INT(300), 1);
	cr_assert_eq(kray_get(k, &r, 1, 20, &v), -ETIMEDOUT, "%s", kray_errmsg(k));
	cr_assert_eq(kray_actor_create(k, "Counter", &KRAY_V_REF(r), 1, NULL, &a), 0, "%s",
		     kray_errmsg(k));
	kray_release(k, &r, 1);
	cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 300);
	kray_release(k, &a, 1);

	cr_assert_eq(kray_call(k, "square", &KRAY_V_INT(7), 1, NULL, &r), 0);
	cr_assert_eq(kray_get(k, &r, 1, -1, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_actor_create(k, "Counter", &KRAY_V_REF(r), 1, NULL, &a), 0, "%s",
		     kray_errmsg(k));
	kray_release(k, &r, 1);
	cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 49);
	kray_release(k, &a, 1);
	harness_shutdown(k);
}
