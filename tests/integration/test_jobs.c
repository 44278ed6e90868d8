// SPDX-License-Identifier: Apache-2.0
/*
 * Jobs on one node: the CPU is shared fairly between the jobs that have queued tasks
 * (one job's 2,000 queued tasks do not hold another's back), and job records go with
 * their last driver connection and task.  Remote functions from tests/fixtures/testfns.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "harness.h"

TestSuite(jobs, .fini = harness_cleanup, .timeout = 90);

/* Job A queues 2,000 tasks of 20 ms (20 s of work on 2 CPUs); job B's ten tasks, queued
 * after them, finish in a fraction of that: the jobs take turns. */
Test(jobs, two_jobs_share_the_node)
{
	struct harness h;
	struct kray_stats st;
	kray_ref mine[10];
	int64_t t0, took;
	pid_t a;
	kray *k;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	a = harness_busy_driver(h.sock, 2000, 20);
	k = harness_connect(h.sock);
	t0 = harness_now_ms();
	for (int i = 0; i < 10; i++)
		cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(20), 1, NULL, &mine[i]), 0);
	for (int i = 0; i < 10; i++) {
		kray_value v;

		cr_assert_eq(harness_get1(k, mine[i], 15000, &v), 0, "job B's task %d: %s", i,
			     kray_errmsg(k));
		cr_assert_eq(v.i, 20);
	}
	took = harness_now_ms() - t0;
	st = harness_status(k);
	/* Job A's tasks still wait: B went past them, it did not wait for them to drain. */
	cr_assert_gt(st.tasks_queued, 1000, "job A's tasks left in the queue: %llu",
		     (unsigned long long)st.tasks_queued);
	cr_assert_lt(took, 8000, "job B's 10 tasks took %lld ms behind job A's 2,000",
		     (long long)took);
	cr_log_info("job B's 10 tasks of 20 ms took %lld ms with 2,000 of job A's queued\n",
		    (long long)took);
	cr_assert_neq(harness_kill_child(a), -1);
}

static struct kray_guard_stats guards(kray *k)
{
	struct kray_guard_stats g;

	cr_assert_eq(kray_guard_status(k, &g), 0, "kray_guard_status: %s", kray_errmsg(k));
	return g;
}

/* Waits (5 s at most) until krayd keeps at most want job records. */
static struct kray_guard_stats wait_jobs(kray *k, uint64_t want)
{
	struct kray_guard_stats g = guards(k);

	for (int i = 0; i < 250 && g.jobs > want; i++) {
		usleep(20000);
		g = guards(k);
	}
	return g;
}

/* A driver's job record, and its tasks', go with the last of them: 200 drivers that come,
 * run a task and go leave the table as it was. */
Test(jobs, job_records_go_with_their_drivers)
{
	struct harness h;
	struct kray_guard_stats g;
	kray *k;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	k = harness_connect(h.sock);
	g = guards(k);
	cr_assert_eq(g.jobs, 1, "this driver's job only: %llu", (unsigned long long)g.jobs);
	for (int i = 0; i < 200; i++) {
		kray *other = harness_connect(h.sock);

		harness_expect_int(other, "square", &KRAY_V_INT(i), 1, (int64_t)i * i);
		harness_shutdown(other);
	}
	g = wait_jobs(k, 1);
	cr_assert_eq(g.jobs, 1, "job records left after 200 drivers went: %llu",
		     (unsigned long long)g.jobs);
	cr_assert_geq(g.jobs_ended, 200, "jobs ended: %llu", (unsigned long long)g.jobs_ended);
}

/* Dead actors that nothing refers to are kept for listings up to dead-actors-kept, and
 * the older ones freed; one whose handle is still held stays, and says why it died. */
Test(jobs, dead_actor_records_are_bounded)
{
	static const char *const opts[] = { "--dead-actors-kept", "5", NULL };
	struct harness h;
	struct kray_guard_stats g;
	kray_ref held, r;
	kray_value v;
	kray *k;

	cr_assert_eq(harness_start_krayd_opts(&h, 2, opts), 0, "harness_start_krayd");
	k = harness_connect(h.sock);
	cr_assert_eq(kray_actor_create(k, "Counter", &KRAY_V_INT(1), 1, NULL, &held), 0);
	cr_assert_eq(kray_kill(k, held, 1), 0, "kill: %s", kray_errmsg(k));
	for (int i = 0; i < 20; i++) {
		kray_ref a;

		cr_assert_eq(kray_actor_create(k, "Counter", &KRAY_V_INT(i), 1, NULL, &a), 0,
			     "create %d: %s", i, kray_errmsg(k));
		cr_assert_eq(kray_actor_call(k, a, "read", NULL, 0, NULL, &r), 0);
		cr_assert_eq(harness_get1(k, r, 30000, &v), 0, "read %d: %s", i, kray_errmsg(k));
		cr_assert_eq(v.i, i);
		kray_release(k, &r, 1);
		kray_release(k, &a, 1); /* the last handle: it ends */
	}
	g = guards(k);
	for (int i = 0; i < 250 && g.actors_dead > 6; i++) {
		usleep(20000); /* their processes exit and are reaped */
		g = guards(k);
	}
	cr_assert_leq(g.actors_dead, 6, "dead actors kept: %llu (5 unheld and the held one)",
		      (unsigned long long)g.actors_dead);
	cr_assert_geq(g.actors_dead, 5, "dead actors kept: %llu",
		      (unsigned long long)g.actors_dead);
	/* The held one still answers with its death. */
	cr_assert_eq(kray_actor_call(k, held, "read", NULL, 0, NULL, &r), 0);
	cr_assert_eq(harness_get1(k, r, 30000, &v), -EREMOTEIO, "a call on the killed actor");
	cr_assert_eq(v.err, KRAY_ERR_ACTOR_DIED, "%s", (const char *)v.data);
	kray_value_clear(&v);
	harness_expect_serving(&h, "20 actors came and went");
}

/* A task past its timeout fails with KRAY_ERR_TIMED_OUT and its worker is replaced; one
 * that ends in time is untouched; actor calls refuse the option. */
Test(jobs, task_timeout)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	struct harness h;
	struct kray_guard_stats g;
	kray_ref slow, quick, a, r;
	kray_value v;
	int64_t t0, took;
	kray *k;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	k = harness_connect(h.sock);
	o.timeout_ms = 300;
	o.max_retries = 5; /* a timeout is not retried */
	t0 = harness_now_ms();
	cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(60000), 1, &o, &slow), 0);
	cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(10), 1, &o, &quick), 0);
	cr_assert_eq(harness_get1(k, slow, 30000, &v), -EREMOTEIO, "the slow task: %s",
		     kray_errmsg(k));
	took = harness_now_ms() - t0;
	cr_assert_eq(v.err, KRAY_ERR_TIMED_OUT, "error kind %d: %s", v.err, (const char *)v.data);
	cr_assert(strstr((const char *)v.data, "timed out") &&
			  strstr((const char *)v.data, "300 ms"),
		  "the message: %s", (const char *)v.data);
	kray_value_clear(&v);
	cr_assert_lt(took, 10000, "the timeout took %lld ms", (long long)took);
	cr_assert_geq(took, 250, "failed after %lld ms, before its timeout", (long long)took);
	cr_assert_eq(harness_get1(k, quick, 30000, &v), 0, "the quick task: %s", kray_errmsg(k));
	cr_assert_eq(v.i, 10);
	g = guards(k);
	cr_assert_eq(g.tasks_timed_out, 1, "timed out: %llu",
		     (unsigned long long)g.tasks_timed_out);
	/* The node goes on: its workers serve the next tasks. */
	for (int i = 0; i < 4; i++)
		harness_expect_int(k, "square", &KRAY_V_INT(i), 1, (int64_t)i * i);
	cr_assert_eq(kray_actor_create(k, "Counter", &KRAY_V_INT(0), 1, NULL, &a), 0);
	cr_assert_eq(kray_actor_call(k, a, "read", NULL, 0, &o, &r), -EINVAL,
		     "an actor call with a timeout");
}
