// SPDX-License-Identifier: Apache-2.0
/*
 * Actors hosted by an idle pool worker (`actor-adopt`, docs/actors.md "Where an actor
 * runs"): the actor runs in the process that ran the pool's tasks a moment before, the
 * pool is refilled behind it, kill and restart end the actor's process and never a pool
 * worker, and a driver's fast call racing an adoption (the ring, and the fast path's
 * sockets) never runs on an actor's worker and never hangs.  With `actor-adopt = off`
 * every actor gets a process of its own.
 *
 * The fast-path tests need root and BPF; elsewhere they skip, naming why.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kray/kray.h>

#include "harness.h"

static void setup(void)
{
}

static void teardown(void)
{
	harness_cleanup();
}

TestSuite(adopt, .init = setup, .fini = teardown, .timeout = 120);

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* The pid of the pool worker that runs a task now. */
static int64_t task_pid(kray *k)
{
	kray_ref r = harness_call1(k, "pid", NULL, 0);
	kray_value v = { 0 };
	int rc = harness_get1(k, r, 30000, &v);

	cr_assert_eq(rc, 0, "pid task: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_INT64);
	kray_release(k, &r, 1);
	return v.i;
}

/* Waits until n pool workers have connected (a slow start, under ASan, would leave an
 * actor none to adopt): n tasks of 300 ms at once run on n workers. */
static void pool_ready(kray *k, int n)
{
	kray_value ms = KRAY_V_INT(300), v[8];
	kray_ref r[8];

	cr_assert_leq(n, 8);
	for (int i = 0; i < n; i++)
		r[i] = harness_call1(k, "sleep_ms", &ms, 1);
	cr_assert_eq(kray_get(k, r, (size_t)n, 30000, v), 0, "sleep_ms: %s", kray_errmsg(k));
	for (int i = 0; i < n; i++)
		kray_value_clear(&v[i]);
	kray_release(k, r, (size_t)n);
}

static kray_ref counter(kray *k, const struct kray_actor_opts *o)
{
	struct kray_actor_opts def = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value start = KRAY_V_INT(10);
	kray_ref a;

	cr_assert_eq(kray_actor_create(k, "Counter", &start, 1, o ? o : &def, &a), 0, "%s",
		     kray_errmsg(k));
	return a;
}

static int64_t incr(kray *k, kray_ref a, int64_t by)
{
	kray_value v = KRAY_V_INT(by);

	return harness_actor_call_int(k, a, "incr", &v, 1);
}

/* Releases the handle and sends the release now. */
static void release(kray *k, kray_ref *a, size_t n)
{
	kray_release(k, a, n);
	kray_flush(k);
}

/* Waits until krayd has started `want` workers in all (the pool's refill). */
static struct kray_stats started(kray *k, uint64_t want)
{
	int64_t deadline = harness_now_ms() + 10000;
	struct kray_stats st = harness_status(k);

	while (st.workers_started < want && harness_now_ms() < deadline) {
		usleep(5000);
		st = harness_status(k);
	}
	cr_assert_geq(st.workers_started, want, "krayd started %llu workers, want %llu",
		      (unsigned long long)st.workers_started, (unsigned long long)want);
	return st;
}

/* The one pool worker of a 1-CPU node (prestart = num-cpus) hosts the actor; a new one
 * takes the next tasks, and the actor's calls reach the actor. */
Test(adopt, actor_runs_in_the_pool_worker)
{
	kray *k = harness_embedded(1);
	int64_t pool = task_pid(k), actor, next;
	uint64_t before = harness_status(k).workers_started;
	kray_ref a = counter(k, NULL);

	actor = harness_actor_int(k, a, "pid");
	cr_assert_eq(actor, pool, "the actor runs in pid %lld, not the idle pool worker's %lld",
		     (long long)actor, (long long)pool);
	started(k, before + 1); /* the refill */
	next = task_pid(k);
	cr_assert_neq(next, actor, "a task ran in the actor's process");
	cr_assert_eq(kill((pid_t)next, 0), 0, "the refilled pool worker is not alive");
	cr_assert_eq(harness_actor_int(k, a, "read"), 10);
	for (int i = 0; i < 20; i++)
		cr_assert_neq(task_pid(k), actor, "a task ran in the actor's process");
	release(k, &a, 1);
	harness_wait_gone((pid_t)actor, "the released actor's process");
	cr_assert_eq(kill((pid_t)next, 0), 0, "the pool worker died with the actor");
	cr_assert_eq(task_pid(k), next, "the pool worker does not take tasks any more");
	harness_shutdown(k);
}

/* actor-adopt = off: a process of its own, the pool untouched. */
Test(adopt, off_starts_a_process)
{
	struct harness h;
	const char *const extra[] = { "--actor-adopt", "off", NULL };
	kray *k;
	int64_t pool, actor;
	kray_ref a;

	cr_assert_eq(harness_start_krayd_opts(&h, 1, extra), 0);
	k = harness_connect(h.sock);
	pool = task_pid(k);
	a = counter(k, NULL);
	actor = harness_actor_int(k, a, "pid");
	cr_assert_neq(actor, pool, "actor-adopt off, yet the actor runs in the pool worker");
	cr_assert_eq(task_pid(k), pool);
	release(k, &a, 1);
	harness_wait_gone((pid_t)actor, "the released actor's process");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* A restart may adopt again; kill ends the actor's process, never the pool's. */
Test(adopt, kill_and_restart)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	int64_t p1, p2, pool;
	kray_ref a;

	o.max_restarts = 1;
	task_pid(k);
	a = counter(k, &o);
	cr_assert_eq(incr(k, a, 1), 11);
	p1 = harness_actor_int(k, a, "pid");
	cr_assert_eq(kill((pid_t)p1, SIGKILL), 0);
	harness_wait_gone((pid_t)p1, "the actor's first process");
	cr_assert_eq(harness_actor_int(k, a, "read"), 10, "state after the restart");
	p2 = harness_actor_int(k, a, "pid");
	cr_assert_neq(p2, p1);
	pool = task_pid(k);
	cr_assert_neq(pool, p2, "a task ran in the restarted actor's process");
	cr_assert_eq(kray_kill(k, a, 1), 0, "kray_kill: %s", kray_errmsg(k));
	harness_wait_gone((pid_t)p2, "the killed actor's process");
	cr_assert_eq(kill((pid_t)pool, 0), 0, "the pool worker died with the actor");
	for (int i = 0; i < 5; i++)
		cr_assert_neq(task_pid(k), p2);
	kray_release(k, &a, 1);
	harness_shutdown(k);
}

/* Many actors at once on a small pool: each in a process of its own, pool workers
 * adopted while there are, the rest started for them. */
Test(adopt, more_actors_than_the_pool)
{
	kray *k = harness_embedded(2);
	kray_ref a[6];
	int64_t pid[6];

	task_pid(k);
	for (int i = 0; i < 6; i++)
		a[i] = counter(k, NULL);
	for (int i = 0; i < 6; i++) {
		pid[i] = harness_actor_int(k, a[i], "pid");
		for (int j = 0; j < i; j++)
			cr_assert_neq(pid[i], pid[j], "actors %d and %d share pid %lld", i, j,
				      (long long)pid[i]);
	}
	for (int i = 0; i < 10; i++) {
		int64_t t = task_pid(k);

		for (int j = 0; j < 6; j++)
			cr_assert_neq(t, pid[j], "a task ran in actor %d's process", j);
	}
	release(k, a, 6);
	for (int i = 0; i < 6; i++)
		harness_wait_gone((pid_t)pid[i], "a released actor's process");
	task_pid(k);
	harness_shutdown(k);
}

/* Two actors holding both CPUs take both pool workers: no worker is started while they
 * hold the CPUs (no task could run), and the pool fills again once they end. */
Test(adopt, pool_refills_after_actors_end)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref a[2];
	int64_t pid[2];
	uint64_t before;

	o.num_cpus = 1;
	pool_ready(k, 2);
	before = started(k, 2).workers_started;
	for (int i = 0; i < 2; i++)
		a[i] = counter(k, &o);
	for (int i = 0; i < 2; i++)
		pid[i] = harness_actor_int(k, a[i], "pid");
	usleep(300000);
	cr_assert_eq(harness_status(k).workers_started, before,
		     "workers were started while actors held every CPU");
	release(k, a, 2);
	for (int i = 0; i < 2; i++)
		harness_wait_gone((pid_t)pid[i], "a released actor's process");
	started(k, before + 2);
	for (int i = 0; i < 4; i++) {
		int64_t t = task_pid(k);

		cr_assert(t != pid[0] && t != pid[1], "a task ran in an ended actor's pid");
	}
	harness_shutdown(k);
}

/* With actors in processes of their own holding every CPU, the idle pool is kept (it was
 * stopped, and started again for the next tasks): the same workers take the tasks after. */
Test(adopt, pool_kept_while_actors_hold_the_cpus)
{
	struct harness h;
	const char *const extra[] = { "--actor-adopt", "off", NULL };
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	int64_t pool, actor[2];
	uint64_t before;
	kray_ref a[2];
	kray *k;

	o.num_cpus = 1;
	cr_assert_eq(harness_start_krayd_opts(&h, 2, extra), 0);
	k = harness_connect(h.sock);
	pool = task_pid(k);
	for (int i = 0; i < 2; i++)
		a[i] = counter(k, &o);
	for (int i = 0; i < 2; i++)
		actor[i] = harness_actor_int(k, a[i], "pid");
	before = harness_status(k).workers_started;
	usleep(300000);
	cr_assert_eq(kill((pid_t)pool, 0), 0, "the idle pool worker was stopped");
	release(k, a, 2);
	for (int i = 0; i < 2; i++)
		harness_wait_gone((pid_t)actor[i], "a released actor's process");
	cr_assert_eq(kill((pid_t)pool, 0), 0, "the idle pool worker was stopped");
	for (int i = 0; i < 4; i++)
		task_pid(k);
	cr_assert_eq(harness_status(k).workers_started, before, "the pool churned");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- a driver's fast calls racing adoptions -------------------------------------------- */

static void need_fast(void)
{
	const char *env = getenv("KRAY_FASTPATH"), *bpf = getenv("KRAY_BPF");

	if ((env && (!strcmp(env, "off") || !strcmp(env, "0"))) ||
	    (bpf && (!strcmp(bpf, "off") || !strcmp(bpf, "0"))))
		cr_skip_test("the fast path is switched off (KRAY_FASTPATH / KRAY_BPF)");
	if (geteuid() != 0)
		cr_skip_test("the fast path needs root (CAP_BPF for krayd's sk_skb program)");
}

#define RACE_MAX 400000
#define RACE_ACTORS 30

struct race_rec {
	int64_t submit_ns, done_ns, pid;
	int32_t rc, pad;
};

struct race {
	const char *sock;
	volatile int stop;
	volatile uint64_t n;
	struct race_rec rec[RACE_MAX];
};

/* The racing driver: pid() in a loop, each call synchronous (the fast path's shape). */
static int race_driver(void *arg, int ready_fd)
{
	struct race *r = arg;
	struct kray_config cfg = { .address = r->sock, .code_path = getenv("KRAY_TEST_CODE_PATH") };
	kray *k = NULL;

	if (kray_init(&k, &cfg) || !k)
		return 1;
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	while (!r->stop && r->n < RACE_MAX) {
		struct race_rec *e = &r->rec[r->n];
		kray_value v = { 0 };
		kray_ref ref;

		e->submit_ns = mono_ns();
		e->rc = kray_call(k, "pid", NULL, 0, NULL, &ref);
		if (!e->rc) {
			e->rc = kray_get(k, &ref, 1, 20000, &v);
			kray_release(k, &ref, 1);
		}
		e->pid = e->rc || v.type != KRAY_INT64 ? -1 : v.i;
		kray_value_clear(&v);
		e->done_ns = mono_ns();
		__atomic_store_n(&r->n, r->n + 1, __ATOMIC_RELEASE);
	}
	kray_shutdown(k);
	return 0;
}

static void race(const char *ring)
{
	const char *const extra[] = { "--fastpath-ring", ring, NULL };
	struct race *r =
		mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int64_t ready[RACE_ACTORS], killed[RACE_ACTORS], pid[RACE_ACTORS], deadline;
	uint64_t fast0, n, seen = 0;
	unsigned adopted = 0;
	struct harness h;
	pid_t child;
	kray *k;
	int status;

	need_fast();
	cr_assert_neq(r, MAP_FAILED);
	cr_assert_eq(harness_start_krayd_opts(&h, 2, extra), 0);
	k = harness_connect(h.sock);
	r->sock = h.sock;
	fast0 = harness_status(k).fast_tasks;
	child = harness_fork_ready(race_driver, r, "the racing driver");
	for (int i = 0; i < RACE_ACTORS; i++) {
		kray_ref a = counter(k, NULL);

		pid[i] = harness_actor_int(k, a, "pid");
		ready[i] = mono_ns();
		cr_assert_eq(incr(k, a, 1), 11);
		killed[i] = mono_ns();
		cr_assert_eq(kray_kill(k, a, 1), 0, "kray_kill: %s", kray_errmsg(k));
		kray_release(k, &a, 1);
		harness_wait_gone((pid_t)pid[i], "a killed actor's process");
		usleep(20000); /* the refill connects; the driver claims workers meanwhile */
	}
	r->stop = 1;
	/* Never hangs: the driver's last call ends and it exits. */
	deadline = harness_now_ms() + 30000;
	for (;;) {
		siginfo_t si = { 0 };

		/* (WNOWAIT: harness_kill_child() reaps it) */
		cr_assert_eq(waitid(P_PID, (id_t)child, &si, WEXITED | WNOHANG | WNOWAIT), 0);
		if (si.si_pid == child)
			break;
		cr_assert_lt(harness_now_ms(), deadline,
			     "the racing driver did not finish its last call within 30 s");
		usleep(10000);
	}
	status = harness_kill_child(child);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "the racing driver failed: %#x",
		  status);
	n = __atomic_load_n(&r->n, __ATOMIC_ACQUIRE);
	cr_assert_gt(n, 0, "the racing driver made no call");
	for (uint64_t j = 0; j < n; j++) {
		const struct race_rec *e = &r->rec[j];

		cr_assert_eq(e->rc, 0, "call %llu of the racing driver failed: %d",
			     (unsigned long long)j, e->rc);
		for (int i = 0; i < RACE_ACTORS; i++)
			cr_assert(!(e->pid == pid[i] && e->submit_ns > ready[i] &&
				    e->done_ns < killed[i]),
				  "task %llu ran in actor %d's process (pid %lld)",
				  (unsigned long long)j, i, (long long)pid[i]);
	}
	/* Adoptions happened: an actor in a process a task ran in before it. */
	for (int i = 0; i < RACE_ACTORS; i++)
		for (uint64_t j = 0; j < n; j++)
			if (r->rec[j].pid == pid[i] && r->rec[j].done_ns < ready[i]) {
				adopted++;
				break;
			}
	seen = harness_status(k).fast_tasks - fast0;
	cr_log_info("race (ring %s): %llu calls (%llu fast), %u of %d actors adopted", ring,
		    (unsigned long long)n, (unsigned long long)seen, adopted, RACE_ACTORS);
	cr_assert_gt(adopted, 0, "no actor adopted a pool worker");
	cr_assert_gt(seen, 0, "no call of the racing driver went fast");
	harness_shutdown(k);
	harness_stop_krayd(&h);
	munmap(r, sizeof(*r));
}

Test(adopt, fast_calls_race_adoption_ring, .timeout = 180)
{
	race("on");
}

Test(adopt, fast_calls_race_adoption_sockets, .timeout = 180)
{
	race("off");
}

/* An adopted worker's fast connection is the actor's: its calls go fast. */
Test(adopt, adopted_actor_takes_fast_calls)
{
	kray *k;
	int64_t pool;
	kray_ref a;

	need_fast();
	k = harness_embedded(1);
	pool = task_pid(k);
	a = harness_fast_counter(k, NULL);
	cr_assert_eq(harness_actor_int(k, a, "pid"), pool,
		     "the actor did not adopt the pool worker");
	cr_assert_neq(task_pid(k), pool);
	kray_release(k, &a, 1);
	harness_shutdown(k);
}
