// SPDX-License-Identifier: Apache-2.0
/*
 * kray_cancel() through the public C API: a queued task never runs, a task waiting for
 * its arguments fails at once, a task blocked in kray_get is released, a running one is killed with its worker (force)
 * or has its result replaced, children go with recursive, finished tasks and malformed
 * cancels change nothing; a driver that exits takes its job's tasks with it.  Remote
 * functions from tests/fixtures/testfns.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../../common/wire.h"
#include "harness.h"

TestSuite(cancel, .fini = harness_cleanup, .timeout = 60);

static void expect_cancelled(kray *k, kray_ref r)
{
	kray_value v;

	cr_assert_eq(harness_get1(k, r, 30000, &v), -EREMOTEIO, "cancelled task did not fail");
	cr_assert_eq(v.type, KRAY_ERROR);
	cr_assert_eq(v.err, KRAY_ERR_CANCELLED, "error kind %d: %s", v.err, (const char *)v.data);
	kray_value_clear(&v);
}

/* Waits until krayd runs n tasks (busy workers). */
static void wait_busy(kray *k, uint64_t n)
{
	struct kray_stats st;

	for (int i = 0; i < 3000; i++) {
		cr_assert_eq(kray_status(k, &st), 0);
		if (st.workers_busy >= n)
			return;
		usleep(10000);
	}
	cr_assert_fail("never %llu busy workers", (unsigned long long)n);
}

Test(cancel, queued_task_never_runs)
{
	kray *k = harness_embedded(1);
	kray_ref busy = harness_call1(k, "sleep_ms", &KRAY_V_INT(1000), 1);
	kray_ref queued;
	kray_value v;
	struct kray_stats st;

	wait_busy(k, 1);
	queued = harness_call1(k, "sleep_ms", &KRAY_V_INT(0), 1);
	cr_assert_eq(kray_cancel(k, &queued, 0, 0), 0);
	expect_cancelled(k, queued);
	cr_assert_eq(harness_get1(k, busy, 30000, &v), 0);
	kray_value_clear(&v);
	cr_assert_eq(kray_status(k, &st), 0);
	cr_assert_eq(st.tasks_finished, 1, "the cancelled task ran");
}

Test(cancel, waiting_for_arguments)
{
	kray *k = harness_embedded(2);
	kray_ref dep = harness_call1(k, "sleep_ms", &KRAY_V_INT(500), 1);
	kray_ref waiting = harness_call1(k, "square", &KRAY_V_REF(dep), 1);

	cr_assert_eq(kray_cancel(k, &waiting, 0, 0), 0);
	expect_cancelled(k, waiting);
	harness_expect_int(k, "square", &KRAY_V_INT(3), 1, 9);
}

/* A task waiting for an object that is never sealed fails at once, not never. */
Test(cancel, never_ready_argument_fails_at_once)
{
	kray *k = harness_embedded(2);
	kray_ref pending, waiting, child;
	struct kray_stats st;
	kray_value v;
	void *p;

	cr_assert_eq(kray_create(k, 1 << 20, &pending, &p), 0, "%s", kray_errmsg(k));
	waiting = harness_call1(k, "square", &KRAY_V_REF(pending), 1);
	child = harness_call1(k, "square", &KRAY_V_REF(pending), 1);
	cr_assert_eq(kray_cancel(k, &waiting, 0, 0), 0);
	cr_assert_eq(harness_get1(k, waiting, 5000, &v), -EREMOTEIO, "still waiting: %s",
		     kray_errmsg(k));
	cr_assert_eq(v.err, KRAY_ERR_CANCELLED, "error kind %d", v.err);
	kray_value_clear(&v);
	cr_assert_eq(kray_status(k, &st), 0);
	cr_assert_eq(st.tasks_waiting, 1, "%llu tasks wait", (unsigned long long)st.tasks_waiting);
	/* The other one still waits, and runs once the object is there. */
	cr_assert_eq(kray_seal(k, &pending), 0);
	cr_assert_eq(harness_get1(k, child, 30000, &v), -EREMOTEIO); /* square of bytes: bad arg */
	kray_value_clear(&v);
	kray_release(k, &pending, 1);
}

/* A C task blocked in kray_get is released with -ECANCELED when it is cancelled: the
 * caller sees the cancellation long before the 3 s child it waited for ends. */
Test(cancel, blocked_get_returns_at_once)
{
	kray *k = harness_embedded(2);
	kray_value args[2] = { KRAY_V_BYTES("sleep_3s", 8), KRAY_V_INT(0) };
	kray_ref r = harness_call1(k, "call_and_get", args, 2);
	int64_t t0;
	kray_value v;

	wait_busy(k, 1); /* the parent runs, then blocks in its get for the child */
	usleep(300 * 1000);
	t0 = harness_now_ms();
	cr_assert_eq(kray_cancel(k, &r, 0, 0), 0);
	cr_assert_eq(harness_get1(k, r, 2000, &v), -EREMOTEIO, "not released: %s", kray_errmsg(k));
	cr_assert_eq(v.err, KRAY_ERR_CANCELLED, "error kind %d", v.err);
	cr_assert_lt(harness_now_ms() - t0, 2000);
	kray_value_clear(&v);
}

Test(cancel, force_kills_the_worker_no_retry)
{
	kray *k = harness_embedded(1);
	struct kray_call_opts o = { .num_returns = 1, .max_retries = 5 };
	struct kray_stats before, after;
	kray_ref r;

	cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(60000), 1, &o, &r), 0);
	wait_busy(k, 1);
	cr_assert_eq(kray_status(k, &before), 0);
	cr_assert_eq(kray_cancel(k, &r, 1, 0), 0);
	expect_cancelled(k, r);
	cr_assert_eq(kray_status(k, &after), 0);
	cr_assert_eq(after.tasks_retried, before.tasks_retried, "a cancelled task was retried");
	harness_expect_int(k, "square", &KRAY_V_INT(4), 1, 16); /* the pool recovers */
}

Test(cancel, running_without_force_finishes_then_fails)
{
	kray *k = harness_embedded(1);
	kray_ref r = harness_call1(k, "sleep_ms", &KRAY_V_INT(300), 1);
	struct kray_stats st;

	wait_busy(k, 1);
	cr_assert_eq(kray_cancel(k, &r, 0, 0), 0);
	expect_cancelled(k, r);
	cr_assert_eq(kray_status(k, &st), 0);
	cr_assert_eq(st.workers_died, 0, "a worker was killed without force");
}

/* As Ray's is_canceled(): a running actor call is not interrupted but told; it ends
 * itself, its caller gets the cancellation, and the actor goes on with what it did. */
Test(cancel, running_actor_call_is_told_and_fails)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray *k = harness_embedded(2);
	kray_ref actor, r;
	int64_t t0;

	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &o, &actor), 0, "%s", kray_errmsg(k));
	cr_assert_eq(harness_actor_call_int(k, actor, "until_cancelled", &KRAY_V_INT(0), 1), 0,
		     "told before any cancel");
	cr_assert_eq(kray_actor_call(k, actor, "until_cancelled", &KRAY_V_INT(30000), 1, NULL, &r),
		     0, "%s", kray_errmsg(k));
	wait_busy(k, 1);
	usleep(100000); /* started in the actor's process */
	t0 = harness_now_ms();
	cr_assert_eq(kray_cancel(k, &r, 0, 0), 0);
	expect_cancelled(k, r);
	cr_assert_lt(harness_now_ms() - t0, 10000, "the call did not see its cancellation");
	cr_assert_eq(harness_actor_call_int(k, actor, "read", NULL, 0), 1000,
		     "the call did not end itself");
	kray_release(k, &r, 1);
	kray_kill(k, actor, 1);
	kray_release(k, &actor, 1);
}

Test(cancel, finished_task_and_put_untouched)
{
	kray *k = harness_embedded(1);
	kray_ref r = harness_call1(k, "square", &KRAY_V_INT(5), 1), p;
	kray_value v;

	cr_assert_eq(harness_get1(k, r, 30000, &v), 0);
	kray_value_clear(&v);
	cr_assert_eq(kray_put(k, &KRAY_V_INT(7), &p), 0);
	cr_assert_eq(kray_cancel(k, &r, 1, 1), 0);
	cr_assert_eq(kray_cancel(k, &p, 1, 1), 0);
	cr_assert_eq(harness_get1(k, r, 30000, &v), 0);
	cr_assert_eq(v.i, 25);
	cr_assert_eq(harness_get1(k, p, 30000, &v), 0);
	cr_assert_eq(v.i, 7);
	cr_assert_eq(kray_cancel(k, NULL, 0, 0), -EINVAL);
}

/* A ref this process does not hold is not its to cancel: nothing happens. */
Test(cancel, only_holders_cancel)
{
	kray *k = harness_embedded(1);
	kray_ref r = harness_call1(k, "sleep_ms", &KRAY_V_INT(200), 1);
	kray_ref other = r;
	kray_value v;

	other.seq += 1000; /* a task that does not exist */
	cr_assert_eq(kray_cancel(k, &other, 1, 1), 0);
	cr_assert_eq(harness_get1(k, r, 30000, &v), 0);
	cr_assert_eq(v.i, 200);
}

/* ---- malformed CANCEL frames --------------------------------------------------------- */

/* Sends a frame of type with body and expects an ERROR frame of code want, then EOF. */
static void expect_refused(struct harness *hs, uint16_t type, const void *body, size_t len,
			   int want, const char *what)
{
	struct kbuf b = { 0 };
	size_t off = wire_begin(&b, type, 0);

	kbuf_put(&b, body, len);
	wire_end(&b, off);
	harness_raw_expect_error(hs, b.data, b.len, want, what);
	kbuf_free(&b);
}

Test(cancel, malformed_frames_refused)
{
	struct harness h;
	struct kray_msg_cancel m = { .oid = { 1, 2, 3, 0 }, .flags = 0x80 };
	uint8_t gap[8] = { 0 };
	kray *k;

	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	expect_refused(&h, KRAY_MSG_CANCEL, &m, sizeof(m), -EBADMSG, "CANCEL with flag 0x80");
	m.flags = KRAY_CANCEL_FORCE;
	expect_refused(&h, KRAY_MSG_CANCEL, &m, sizeof(m) - 8, -EBADMSG, "a short CANCEL");
	/* A number in the Python range past its types is not a message. */
	expect_refused(&h, KRAY_MSG_PG + 1, gap, sizeof(gap), -EBADMSG, "type 36");
	/* YIELD comes from workers only. */
	expect_refused(&h, KRAY_MSG_YIELD, gap, sizeof(gap), -EPROTO, "YIELD from a driver");
	k = harness_connect(h.sock);
	harness_expect_int(k, "square", &KRAY_V_INT(6), 1, 36);
	harness_shutdown(k);
}

Test(cancel, a_driver_that_dies_takes_its_job_with_it, .timeout = 90)
{
	struct harness h;
	struct kray_stats st;
	pid_t pid;
	kray *k;
	int64_t t0;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	pid = harness_busy_driver(h.sock, 10000, 200);
	k = harness_connect(h.sock);
	st = harness_status(k);
	cr_assert_gt(st.tasks_queued, 9000, "its tasks wait in the queue (%llu)",
		     (unsigned long long)st.tasks_queued);
	cr_assert_neq(harness_kill_child(pid), -1);
	/* Its queued tasks are dropped and the workers running its tasks stopped: the node
	 * is idle within a second, and serves others. */
	t0 = harness_now_ms();
	do {
		usleep(20000);
		st = harness_status(k);
	} while ((st.tasks_queued || st.workers_busy) && harness_now_ms() - t0 < 5000);
	cr_assert_eq(st.tasks_queued, 0, "queued tasks of the dead driver: %llu",
		     (unsigned long long)st.tasks_queued);
	cr_assert_eq(st.workers_busy, 0, "workers still busy with its tasks");
	cr_assert_lt(harness_now_ms() - t0, 1500, "the node took %lld ms to be idle",
		     (long long)(harness_now_ms() - t0));
	harness_expect_int(k, "square", &KRAY_V_INT(9), 1, 81);
}

/* Its tasks that wait for arguments go too, at once: here for a 20 s call of another
 * job's actor, which goes on (the actor is not the dead driver's). */
Test(cancel, a_dead_drivers_waiting_tasks_go_too, .timeout = 60)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct harness h;
	struct kray_stats st;
	kray_ref actor;
	pid_t pid;
	kray *k;
	int64_t t0;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	k = harness_connect(h.sock);
	o.name = "slow";
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &o, &actor), 0, "%s", kray_errmsg(k));
	pid = harness_busy_driver(h.sock, 200, -20000);
	st = harness_status(k);
	cr_assert_eq(st.tasks_waiting, 200, "%llu tasks wait",
		     (unsigned long long)st.tasks_waiting);
	cr_assert_neq(harness_kill_child(pid), -1);
	t0 = harness_now_ms();
	do {
		usleep(20000);
		st = harness_status(k);
	} while (st.tasks_waiting && harness_now_ms() - t0 < 5000);
	cr_assert_eq(st.tasks_waiting, 0, "tasks of the dead driver still wait: %llu",
		     (unsigned long long)st.tasks_waiting);
	harness_expect_int(k, "square", &KRAY_V_INT(9), 1, 81);
	kray_kill(k, actor, 1);
	kray_release(k, &actor, 1);
}

Test(cancel, another_jobs_tasks_go_on_when_a_driver_dies, .timeout = 90)
{
	struct harness h;
	kray_ref mine[2];
	pid_t pid;
	kray *k;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	k = harness_connect(h.sock);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(1500), 1, NULL, &mine[i]), 0);
	pid = harness_busy_driver(h.sock, 50, 1000);
	cr_assert_neq(harness_kill_child(pid), -1);
	for (int i = 0; i < 2; i++) {
		kray_value v;

		cr_assert_eq(harness_get1(k, mine[i], 30000, &v), 0,
			     "the surviving driver's task failed");
		cr_assert_eq(v.i, 1500);
	}
}
