// SPDX-License-Identifier: Apache-2.0
/*
 * What a task holds while it runs, as in Ray: its CPU slots ("CPU:n" in its resources; 1
 * by default, fractions and 0 allowed) and its custom resources ("GPU:1").  A task waits
 * until they are free, tasks behind it that can run do not wait for it, and what it held
 * is given back when it ends however it ends.
 *
 * The timings here are only lower bounds (tasks that must run one after another cannot
 * finish sooner) or ordering checks with seconds of slack, so a loaded machine cannot make
 * them fail.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <kray/kray.h>

#include "harness.h"

TestSuite(resources, .fini = harness_cleanup);

static kray *start(struct harness *h, int num_cpus, const char *resources)
{
	const char *extra[] = { "--resources", resources, NULL };
	int rc = harness_start_krayd_opts(h, num_cpus, resources ? extra : NULL);

	cr_assert_eq(rc, 0, "krayd --num-cpus %d --resources %s: %d", num_cpus,
		     resources ? resources : "-", rc);
	return harness_connect(h->sock);
}

static kray_ref call_res(kray *k, const char *fn, const kray_value *args, size_t n,
			 const char *resources, int max_retries)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_ref r;
	int rc;

	o.resources = resources;
	o.max_retries = max_retries;
	rc = kray_call(k, fn, args, n, &o, &r);
	cr_assert_eq(rc, 0, "kray_call(%s, %s): %d %s", fn, resources, rc, kray_errmsg(k));
	return r;
}

/* Gets refs[0..n), each the INT64 want[i]; returns the time it took in ms. */
static int64_t get_ints(kray *k, kray_ref *refs, size_t n, int64_t want)
{
	int64_t t0 = harness_now_ms();

	for (size_t i = 0; i < n; i++) {
		kray_value v = { 0 };
		int rc = harness_get1(k, refs[i], 60000, &v);

		cr_assert(rc == 0 && v.type == KRAY_INT64 && v.i == want,
			  "task %zu: rc %d type %d value %lld, want %lld (%s)", i, rc, v.type,
			  (long long)v.i, (long long)want,
			  v.type == KRAY_ERROR ? (const char *)v.data : "");
		kray_value_clear(&v);
	}
	kray_release(k, refs, n);
	return harness_now_ms() - t0;
}

/* Runs n sleep_ms(ms) tasks that each need res, and waits for them; returns the ms it
 * took from the first submit. */
static int64_t sleepers(kray *k, int n, int64_t ms, const char *res)
{
	kray_value arg = KRAY_V_INT(ms);
	kray_ref refs[8];
	int64_t t0 = harness_now_ms();

	cr_assert_leq(n, 8);
	for (int i = 0; i < n; i++)
		refs[i] = call_res(k, "sleep_ms", &arg, 1, res, 3);
	get_ints(k, refs, (size_t)n, ms);
	return harness_now_ms() - t0;
}

static bool ready(kray *k, kray_ref r)
{
	uint8_t rd = 0;
	size_t n = 0;
	int rc = kray_wait(k, &r, 1, 1, 0, &rd, &n);

	cr_assert_eq(rc, 0, "kray_wait: %d %s", rc, kray_errmsg(k));
	return n == 1;
}

/* Tasks that each need both CPUs of a 2-CPU node run one at a time. */
Test(resources, task_holds_its_cpus, .timeout = 60)
{
	struct harness h;
	kray *k = start(&h, 2, NULL);
	int64_t dt = sleepers(k, 4, 300, "CPU:2");

	cr_assert_geq(dt, 4 * 300 - 50,
		      "4 tasks of 2 CPUs x 300 ms on 2 CPUs took %lld ms: some ran at once",
		      (long long)dt);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* A task of 0 CPUs runs beside one that holds the only slot. */
Test(resources, zero_cpu_task_runs_beside, .timeout = 60)
{
	struct harness h;
	kray *k = start(&h, 1, NULL);
	kray_value ms = KRAY_V_INT(4000), three = KRAY_V_INT(3);
	kray_ref slow = call_res(k, "sleep_ms", &ms, 1, NULL, 3), quick;

	kray_flush(k);
	while (harness_status(k).workers_busy < 1)
		usleep(5000);
	quick = call_res(k, "square", &three, 1, "CPU:0", 3);
	get_ints(k, &quick, 1, 9);
	cr_assert(!ready(k, slow), "the 0-CPU task waited for the 4 s one to end");
	get_ints(k, &slow, 1, 4000);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* Tasks of 0 CPUs run beside the slots, but at most num-cpus of them at once: 20 of them
 * neither start 20 workers nor keep a task that needs a CPU from running. */
Test(resources, zero_cpu_tasks_are_bounded, .timeout = 60)
{
	struct harness h;
	kray *k = start(&h, 2, NULL);
	kray_value ms = KRAY_V_INT(400), three = KRAY_V_INT(3);
	kray_ref zero[20], quick;
	uint64_t most = 0;
	int64_t t0;

	for (int i = 0; i < 20; i++)
		zero[i] = call_res(k, "sleep_ms", &ms, 1, "CPU:0", 3);
	kray_flush(k);
	t0 = harness_now_ms();
	while (harness_now_ms() - t0 < 600) {
		struct kray_stats st = harness_status(k);

		if (st.workers_busy > most)
			most = st.workers_busy;
		usleep(10000);
	}
	cr_assert_leq(most, 2, "%llu tasks of 0 CPUs ran at once on 2 CPUs",
		      (unsigned long long)most);
	cr_assert_geq(most, 1, "none ran");
	quick = call_res(k, "square", &three, 1, NULL, 3);
	cr_assert_lt(get_ints(k, &quick, 1, 9), 1000, "a 1-CPU task waited behind them");
	get_ints(k, zero, 20, 400);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/*
 * A custom resource limits how many of its tasks run at once, and tasks that do not need
 * it go past them.
 */
Test(resources, custom_resource_limits_and_others_pass, .timeout = 60)
{
	struct harness h;
	kray *k = start(&h, 2, "disk:1");
	kray_value ms = KRAY_V_INT(1000), three = KRAY_V_INT(3);
	kray_ref held[3], quick;
	int64_t t0 = harness_now_ms(), dt;

	for (int i = 0; i < 3; i++)
		held[i] = call_res(k, "sleep_ms", &ms, 1, "disk:1", 3);
	quick = call_res(k, "square", &three, 1, NULL, 3);
	get_ints(k, &quick, 1, 9);
	cr_assert(!ready(k, held[2]), "a plain task waited behind 3 s of disk:1 tasks");
	get_ints(k, held, 3, 1000);
	dt = harness_now_ms() - t0;
	cr_assert_geq(dt, 3 * 1000 - 50,
		      "3 tasks needing all of disk:1 x 1 s took %lld ms: some ran at once",
		      (long long)dt);
	cr_assert_geq(harness_status(k).tasks_finished, 4);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* Two halves of a resource are held at once; a third half waits for one of them. */
Test(resources, fractions_add_up, .timeout = 60)
{
	struct harness h;
	kray *k = start(&h, 3, "acc:1");
	int64_t dt = sleepers(k, 3, 1500, "acc:0.5,CPU:0.5");

	cr_assert_geq(dt, 2 * 1500 - 50,
		      "3 tasks of acc:0.5 on acc:1 took %lld ms: all three ran at once",
		      (long long)dt);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/*
 * A task of both CPUs queued among plain ones is not kept out for ever by the plain tasks
 * behind it, which would take every slot that frees: after a second of waiting, they wait
 * for it instead.
 */
Test(resources, task_of_many_cpus_is_not_starved, .timeout = 60)
{
	struct harness h;
	kray *k = start(&h, 2, NULL);
	kray_value ms = KRAY_V_INT(500), three = KRAY_V_INT(3);
	kray_ref plain[12], big;

	for (int i = 0; i < 4; i++)
		plain[i] = call_res(k, "sleep_ms", &ms, 1, NULL, 3);
	big = call_res(k, "square", &three, 1, "CPU:2", 3);
	for (int i = 4; i < 12; i++)
		plain[i] = call_res(k, "sleep_ms", &ms, 1, NULL, 3);
	get_ints(k, &big, 1, 9);
	cr_assert(!ready(k, plain[11]),
		  "the 2-CPU task ran only after every plain task behind it (12 x 500 ms)");
	get_ints(k, plain, 12, 500);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* What a task held comes back when its worker dies (and when it fails or is retried). */
Test(resources, given_back_when_the_worker_dies, .timeout = 60)
{
	struct harness h;
	kray *k = start(&h, 2, "disk:1");
	kray_value two = KRAY_V_INT(2), why = KRAY_V_BYTES("no", 2), v = { 0 };
	kray_ref dead = call_res(k, "die_always", NULL, 0, "disk:1", 1), ok;
	int rc = harness_get1(k, dead, 30000, &v);

	cr_assert(rc == -EREMOTEIO && v.type == KRAY_ERROR && v.err == KRAY_ERR_WORKER_DIED,
		  "die_always: rc %d type %d err %d", rc, v.type, v.err);
	kray_value_clear(&v);
	kray_release(k, &dead, 1);
	ok = call_res(k, "fail", &why, 1, "disk:1", 0);
	rc = harness_get1(k, ok, 30000, &v);
	cr_assert(rc == -EREMOTEIO && v.err == KRAY_ERR_TASK, "fail(): rc %d err %d", rc, v.err);
	kray_value_clear(&v);
	kray_release(k, &ok, 1);
	/* disk:1 is free again: this one runs (a leak would make it wait for ever) */
	ok = call_res(k, "square", &two, 1, "disk:1", 0);
	get_ints(k, &ok, 1, 4);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* Asking for more than the node has is an error at once, not a task that never runs. */
Test(resources, more_cpus_than_the_node_fails, .timeout = 60)
{
	struct harness h;
	kray *k = start(&h, 2, NULL);
	kray_value three = KRAY_V_INT(3), v = { 0 };
	kray_ref r = call_res(k, "square", &three, 1, "CPU:2.5", 0);
	int rc = harness_get1(k, r, 30000, &v);

	cr_assert(rc == -EREMOTEIO && v.type == KRAY_ERROR && v.err == KRAY_ERR_BAD_ARGS,
		  "CPU:2.5 on 2 CPUs: rc %d type %d err %d", rc, v.type, v.err);
	cr_assert(strstr((const char *)v.data, "needs 2.5 CPUs and this node has 2"), "message: %s",
		  (const char *)v.data);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	r = call_res(k, "square", &three, 1, "gpu:1", 0);
	rc = harness_get1(k, r, 30000, &v);
	cr_assert(rc == -EREMOTEIO && v.err == KRAY_ERR_BAD_ARGS && strstr(v.data, "gpu"),
		  "gpu:1 on a node without: rc %d err %d %s", rc, v.err,
		  v.type == KRAY_ERROR ? (const char *)v.data : "");
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}
