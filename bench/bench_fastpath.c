// SPDX-License-Identifier: Apache-2.0
/*
 * bench_fastpath.c - the BPF fast path for synchronous calls (docs/fastpath.md) against
 * krayd's daemon path and the raw socket floor, in one run on this machine:
 *
 *   floor_rt_us            64-byte AF_UNIX ping-pong between two processes (bench_pingpong)
 *   futex_floor_rt_us      a word handed through shared memory, futex wake-ups both ways
 *                          (bench_futex_pingpong): the floor of the ring
 *   sync_rt_us_{ring,fast,daemon}   kray_call(noop) + kray_get(ref, no timeout) +
 *                              kray_release, per call: through the shared-memory ring
 *                              (`fastpath-ring = on`) / steered by BPF / through krayd
 *                              (a round's time / its calls: the mean)
 *   sync_p50_us_{ring,fast,daemon}   the same, the median call of each round (the floors
 *                              are medians of single round trips too)
 *   sync_ref_rt_us_{ring,fast,daemon}, sync_ref_p50_us_*   the same for square(ref), whose
 *                              one argument is a ref to a small int the driver put: krayd
 *                              resolves it on the daemon path, the driver sends its value
 *                              on the fast path (ref_share: the share that went fast)
 *   async_tps_{fast,daemon}    1,000 no-op calls submitted, then got together, per second
 *                              (pipelined calls take the daemon path in both modes: this
 *                              checks that the fast path does not slow them down)
 *   krayd_cpu_us_per_task_{sync,async}_{fast,daemon}   krayd's utime+stime per task
 *                              (/proc/<pid>/stat); us per task = CPU s per million tasks
 *   fast_share             the share of the sync calls the program steered (the rest
 *                          found no idle worker and went through krayd)
 *   actor_sync_{rt,p50}_us_{ring,fast,daemon}   the sync round trip to a plain actor's
 *                          method (class Noop, tests/fixtures/actorfns.c: bench_actors'
 *                          1_1_actor_calls_sync, no timeout), mean and median call, and
 *                          actor_{ring,fast}_share the share that skipped krayd
 *
 * Two krayds per mode (BPF on in all; ring / `fastpath` on / off), alternated, so that load from
 * elsewhere on the machine falls on both; each figure is the median of the rounds.  The
 * fast path needs root; without it the fast figures are reported as unavailable.
 *
 * The clock, the floor, the krayds, the async rounds and the JSON are bench_common.c's and
 * bench_calls.c's; this bench's own are the sync calls the fast path can take, the
 * alternation of the modes and reading krayd's CPU time and the fast-path count around
 * every round.
 *
 *	bench_fastpath [--quick] [--json FILE]
 */
#include <kray/kray.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_calls.h"
#include "bench_common.h"

#define BATCH 1000
#define MAX_ROUNDS 5

static int rounds = 5;
static double round_s = 0.5;

/* ---- krayd, fast path on or off ------------------------------------------------------- */

/* A mode's sync figures, of task calls or of calls to a plain actor. */
struct sync_figs {
	struct bench_samples rt, p50, cpu_sync, share;
};

struct mode {
	const char *name;
	struct sync_figs task, actor, ref; /* ref: square(ref to a small put int) */
	struct bench_samples tps, cpu_async;
	bool fast_seen;
};

static void noop_call(const struct bench_op *op, size_t i, kray_ref *ref)
{
	(void)i;
	if (kray_call(op->k, "noop", NULL, 0, NULL, ref))
		bench_die("noop", kray_errmsg(op->k));
}

/*
 * One call and its get with no timeout, the only get the fast path steers (libclient/
 * fast.c): bench_calls.c's loops get with a timeout, so the sync rounds are this bench's.
 */
static void sync_call(kray *k, const kray_ref *actor, const kray_value *arg)
{
	const char *fn = arg ? "square" : "noop";
	kray_ref r;
	kray_value v;

	if ((actor ? kray_actor_call(k, *actor, "noop", NULL, 0, NULL, &r) :
		     kray_call(k, fn, arg, arg ? 1 : 0, NULL, &r)) ||
	    kray_get(k, &r, 1, -1, &v))
		bench_die(fn, kray_errmsg(k));
	if (arg && v.i != 49)
		bench_die(fn, "square(ref to 7) is not 49");
	kray_value_clear(&v);
	kray_release(k, &r, 1);
}

static uint64_t fast_tasks(kray *k)
{
	struct kray_stats st;

	if (kray_status(k, &st))
		bench_die("kray_status", kray_errmsg(k));
	return st.fast_tasks;
}

/* One sync round (of calls to actor's noop method if actor, of square(arg) if arg, else of
 * noop()), with krayd's CPU time and the fast-path count read around it, into s. */
static void sync_round(kray *k, pid_t pid, const kray_ref *actor, const kray_value *arg,
		       struct mode *m, struct sync_figs *s)
{
	double t0 = bench_now(), c0 = bench_proc_cpu_s(pid), t = t0, t1;
	uint64_t f0 = fast_tasks(k), f1;
	static struct bench_samples each;
	long n = 0;

	each.n = 0;
	do {
		sync_call(k, actor, arg);
		n++;
		t1 = bench_now();
		bench_push(&each, (t1 - t) * 1e6);
		t = t1;
	} while (t - t0 < round_s);
	bench_push(&s->rt, (t - t0) / (double)n * 1e6);
	/* The median call, as the floors are medians of single round trips: the mean above
	 * also carries the stalls other work on the machine causes. */
	bench_push(&s->p50, bench_median(each.v, each.n));
	bench_push(&s->cpu_sync, (bench_proc_cpu_s(pid) - c0) / (double)n * 1e6);
	f1 = fast_tasks(k);
	bench_push(&s->share, (double)(f1 - f0) / (double)n);
	if (f1 > f0)
		m->fast_seen = true;
}

/*
 * One async round of bench_calls.c, with krayd's CPU time read around it: calls = rate x
 * the round's length (one bench_now() longer than bench_calls' own clock: noise here).
 */
static void async_round(const struct bench_op *op, pid_t pid, kray_ref *refs, kray_value *vals,
			struct mode *m)
{
	double t0 = bench_now(), c0 = bench_proc_cpu_s(pid), per_s;

	bench_async_rounds(op, BATCH, 1, round_s, refs, vals, &per_s);
	bench_push(&m->tps, per_s);
	bench_push(&m->cpu_async,
		   (bench_proc_cpu_s(pid) - c0) / (per_s * (bench_now() - t0)) * 1e6);
}

/* The krayd of the mode being measured; stopped at exit too, should the bench die. */
static struct bench_krayd krayd;

static void stop_krayd(void)
{
	bench_krayd_stop(&krayd);
}

static void bench_mode(struct mode *m, const char *fastpath, const char *ring)
{
	static kray_ref refs[BATCH];
	static kray_value vals[BATCH];
	const char *flags[] = { "--num-cpus",	   "2",	 "--fastpath", fastpath,
				"--fastpath-ring", ring, NULL };
	kray_value arg = { .type = KRAY_REF };
	kray_ref actor;
	kray *k;

	bench_krayd_start_build(&krayd, flags);
	struct kray_config cfg = { .address = krayd.sock };

	if (kray_init(&k, &cfg))
		bench_die("kray_init", kray_init_errmsg());
	if (kray_put(k, &KRAY_V_INT(7), &arg.ref))
		bench_die("kray_put", kray_errmsg(k));
	for (int i = 0; i < 500; i++) { /* warm-up: workers connected, functions known */
		sync_call(k, NULL, NULL);
		sync_call(k, NULL, &arg);
	}
	struct bench_op op = { .k = k, .submit = noop_call };

	for (int r = 0; r < rounds; r++) {
		sync_round(k, krayd.pid, NULL, NULL, m, &m->task);
		sync_round(k, krayd.pid, NULL, &arg, m, &m->ref);
	}
	/* A plain actor (tests/fixtures/actorfns.c), warmed up: its worker asks for its fast
	 * connection (or ring slot) once constructed. */
	if (kray_actor_create(k, "Noop", NULL, 0, NULL, &actor))
		bench_die("kray_actor_create Noop", kray_errmsg(k));
	for (int i = 0; i < 500; i++)
		sync_call(k, &actor, NULL);
	for (int r = 0; r < rounds; r++)
		sync_round(k, krayd.pid, &actor, NULL, m, &m->actor);
	kray_release(k, &actor, 1);
	for (int r = 0; r < rounds; r++)
		async_round(&op, krayd.pid, refs, vals, m);
	kray_shutdown(k);
	bench_krayd_stop(&krayd);
}

/* ---- report -------------------------------------------------------------------------- */

struct report {
	struct bench_samples floor_rt, futex_rt;
	struct mode ring, fast, daemon;
};

static void json(FILE *f, void *arg)
{
	const struct report *rep = arg;
	const struct mode *fast = &rep->fast, *daemon = &rep->daemon, *ring = &rep->ring;

	fprintf(f, "{\n  \"bench\": \"bench_fastpath\",\n  \"fast_path_available\": %s,\n",
		fast->fast_seen ? "true" : "false");
	bench_json_fig(f, "floor_rt_us", &rep->floor_rt, false);
	bench_json_fig(f, "futex_floor_rt_us", &rep->futex_rt, false);
	bench_json_fig(f, "sync_rt_us_ring", &ring->task.rt, false);
	bench_json_fig(f, "sync_p50_us_ring", &ring->task.p50, false);
	bench_json_fig(f, "sync_p50_us_fast", &fast->task.p50, false);
	bench_json_fig(f, "sync_p50_us_daemon", &daemon->task.p50, false);
	bench_json_fig(f, "ring_share", &ring->task.share, false);
	bench_json_fig(f, "krayd_cpu_us_per_task_sync_ring", &ring->task.cpu_sync, false);
	bench_json_fig(f, "async_tps_ring", &ring->tps, false);
	bench_json_fig(f, "sync_ref_rt_us_ring", &ring->ref.rt, false);
	bench_json_fig(f, "sync_ref_rt_us_fast", &fast->ref.rt, false);
	bench_json_fig(f, "sync_ref_rt_us_daemon", &daemon->ref.rt, false);
	bench_json_fig(f, "sync_ref_p50_us_ring", &ring->ref.p50, false);
	bench_json_fig(f, "sync_ref_p50_us_fast", &fast->ref.p50, false);
	bench_json_fig(f, "sync_ref_p50_us_daemon", &daemon->ref.p50, false);
	bench_json_fig(f, "ref_share_ring", &ring->ref.share, false);
	bench_json_fig(f, "ref_share_fast", &fast->ref.share, false);
	bench_json_fig(f, "krayd_cpu_us_per_task_sync_ref_fast", &fast->ref.cpu_sync, false);
	bench_json_fig(f, "krayd_cpu_us_per_task_sync_ref_daemon", &daemon->ref.cpu_sync, false);
	bench_json_fig(f, "sync_rt_us_fast", &fast->task.rt, false);
	bench_json_fig(f, "sync_rt_us_daemon", &daemon->task.rt, false);
	bench_json_fig(f, "fast_share", &fast->task.share, false);
	bench_json_fig(f, "krayd_cpu_us_per_task_sync_fast", &fast->task.cpu_sync, false);
	bench_json_fig(f, "krayd_cpu_us_per_task_sync_daemon", &daemon->task.cpu_sync, false);
	bench_json_fig(f, "async_tps_fast", &fast->tps, false);
	/* 1_1_actor_calls_sync (bench_actors' name) per mode: the same calls to a plain actor */
	bench_json_fig(f, "actor_sync_rt_us_ring", &ring->actor.rt, false);
	bench_json_fig(f, "actor_sync_rt_us_fast", &fast->actor.rt, false);
	bench_json_fig(f, "actor_sync_rt_us_daemon", &daemon->actor.rt, false);
	bench_json_fig(f, "actor_sync_p50_us_ring", &ring->actor.p50, false);
	bench_json_fig(f, "actor_sync_p50_us_fast", &fast->actor.p50, false);
	bench_json_fig(f, "actor_sync_p50_us_daemon", &daemon->actor.p50, false);
	bench_json_fig(f, "actor_ring_share", &ring->actor.share, false);
	bench_json_fig(f, "actor_fast_share", &fast->actor.share, false);
	bench_json_fig(f, "async_tps_daemon", &daemon->tps, false);
	/* us per task is also s per million tasks */
	bench_json_fig(f, "krayd_cpu_s_per_M_async_fast", &fast->cpu_async, false);
	bench_json_fig(f, "krayd_cpu_s_per_M_async_daemon", &daemon->cpu_async, true);
	fprintf(f, "}\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	struct report rep = { .ring = { .name = "ring" },
			      .fast = { .name = "fast" },
			      .daemon = { .name = "daemon" } };
	struct mode *fast = &rep.fast, *daemon = &rep.daemon, *ring = &rep.ring;
	double floor_rt[MAX_ROUNDS], fl, ffl, rrt, frt, drt;

	bench_init("bench_fastpath");
	bench_opts_parse(argc, argv, "bench_fastpath [--quick] [--json FILE]", &o);
	rounds = o.quick ? 3 : rounds;
	round_s = o.quick ? 0.2 : round_s;
	signal(SIGPIPE, SIG_IGN);
	bench_pingpong(rounds, round_s, floor_rt);
	for (int r = 0; r < rounds; r++)
		bench_push(&rep.floor_rt, floor_rt[r]);
	bench_futex_pingpong(rounds, round_s, 0, floor_rt);
	for (int r = 0; r < rounds; r++)
		bench_push(&rep.futex_rt, floor_rt[r]);
	atexit(stop_krayd); /* from here on krayds run */
	/* Alternated (ring, sockets, daemon, daemon, sockets, ring), so that a burst of load
	 * on the machine, or being first, hits all modes alike. */
	for (int i = 0; i < 6; i++) {
		static const char *const name[] = { "ring", "fast path (sockets)", "daemon path" };
		int m = i < 3 ? i : 5 - i;

		fprintf(stderr, "bench_fastpath: %s (%d of 6)...\n", name[m], i + 1);
		bench_mode(m == 0 ? ring :
			   m == 1 ? fast :
				    daemon,
			   m == 2 ? "off" : "on", m == 0 ? "on" : "off");
	}
	fl = bench_med(&rep.floor_rt);
	ffl = bench_med(&rep.futex_rt);
	rrt = bench_med(&ring->task.rt);
	frt = bench_med(&fast->task.rt);
	drt = bench_med(&daemon->task.rt);
	printf("bench_fastpath: medians of %d rounds of %.1f s per mode (one run, same machine)\n",
	       2 * rounds, round_s);
	printf("  %-40s %12s %12s %12s %12s %12s\n", "", "ring", "fast path", "daemon path",
	       "socket floor", "futex floor");
	printf("  %-40s %9.1f us %9.1f us %9.1f us %9.1f us %9.1f us\n",
	       "sync round trip (call + get)", rrt, frt, drt, fl, ffl);
	printf("  %-40s %11.2fx %11.2fx %11.2fx %11.2fx\n", "  / socket floor", rrt / fl, frt / fl,
	       drt / fl, 1.0);
	printf("  %-40s %11.2fx %11.2fx %11.2fx %11s  %11.2fx\n", "  / futex floor", rrt / ffl,
	       frt / ffl, drt / ffl, "", 1.0);
	printf("  %-40s %9.1f us %9.1f us %9.1f us %9.1f us %9.1f us\n",
	       "sync median call (floors: median too)", bench_med(&ring->task.p50),
	       bench_med(&fast->task.p50), bench_med(&daemon->task.p50), fl, ffl);
	printf("  %-40s %11.2fx %11.2fx %11.2fx %11s  %11.2fx\n", "  / futex floor",
	       bench_med(&ring->task.p50) / ffl, bench_med(&fast->task.p50) / ffl,
	       bench_med(&daemon->task.p50) / ffl, "", 1.0);
	printf("  %-40s %9.1f us %9.1f us %9.1f us %9.1f us %9.1f us\n",
	       "actor sync round trip (1_1_actor_calls_sync)", bench_med(&ring->actor.rt),
	       bench_med(&fast->actor.rt), bench_med(&daemon->actor.rt), fl, ffl);
	printf("  %-40s %11.2fx %11.2fx %11.2fx %11s  %11.2fx\n", "  / futex floor",
	       bench_med(&ring->actor.rt) / ffl, bench_med(&fast->actor.rt) / ffl,
	       bench_med(&daemon->actor.rt) / ffl, "", 1.0);
	printf("  %-40s %9.1f us %9.1f us %9.1f us %9.1f us %9.1f us\n", "actor sync median call",
	       bench_med(&ring->actor.p50), bench_med(&fast->actor.p50),
	       bench_med(&daemon->actor.p50), fl, ffl);
	printf("  %-40s %11.2fx %11.2fx %11.2fx %11s  %11.2fx\n", "  / futex floor",
	       bench_med(&ring->actor.p50) / ffl, bench_med(&fast->actor.p50) / ffl,
	       bench_med(&daemon->actor.p50) / ffl, "", 1.0);
	printf("  %-40s %11.0f%% %11.0f%%\n", "  actor calls through the ring / BPF",
	       bench_med(&ring->actor.share) * 100, bench_med(&fast->actor.share) * 100);
	printf("  %-40s %9.1f us %9.1f us %9.1f us\n", "sync square(ref to a small put int)",
	       bench_med(&ring->ref.rt), bench_med(&fast->ref.rt), bench_med(&daemon->ref.rt));
	printf("  %-40s %9.1f us %9.1f us %9.1f us\n", "  median call", bench_med(&ring->ref.p50),
	       bench_med(&fast->ref.p50), bench_med(&daemon->ref.p50));
	printf("  %-40s %11.2fx %11.2fx %12s\n", "  daemon path / this (mean)",
	       bench_med(&daemon->ref.rt) / bench_med(&ring->ref.rt),
	       bench_med(&daemon->ref.rt) / bench_med(&fast->ref.rt), "");
	printf("  %-40s %11.0f%% %11.0f%% %12s\n", "  share that went fast",
	       bench_med(&ring->ref.share) * 100, bench_med(&fast->ref.share) * 100, "-");
	printf("  %-40s %9.2f us %9.2f us %9.2f us\n", "  krayd CPU per call",
	       bench_med(&ring->ref.cpu_sync), bench_med(&fast->ref.cpu_sync),
	       bench_med(&daemon->ref.cpu_sync));
	printf("  %-40s %9.2f us\n", "  krayd CPU per sync task (ring)",
	       bench_med(&ring->task.cpu_sync));
	printf("  %-40s %11.0f%%\n", "  share through the ring",
	       bench_med(&ring->task.share) * 100);
	printf("  %-40s %10.0f/s\n", "async (1,000 in flight), ring mode", bench_med(&ring->tps));
	printf("  %-40s %11.2fx\n", "  ring mode / daemon path",
	       bench_med(&ring->tps) / bench_med(&daemon->tps));
	printf("  (the rows below compare the socket fast path with the daemon path)\n");
	printf("  %-40s %9.2f us %9.2f us\n", "  krayd CPU per sync task",
	       bench_med(&fast->task.cpu_sync), bench_med(&daemon->task.cpu_sync));
	printf("  %-40s %11.0f%% %11s\n", "  share steered by BPF",
	       bench_med(&fast->task.share) * 100, "-");
	printf("  %-40s %10.0f/s %10.0f/s\n", "async (1,000 in flight)", bench_med(&fast->tps),
	       bench_med(&daemon->tps));
	printf("  %-40s %11.2fx %12s\n", "  fast-path mode / daemon path",
	       bench_med(&fast->tps) / bench_med(&daemon->tps), "");
	printf("  %-40s %9.2f s  %9.2f s\n", "  krayd CPU s per million async tasks",
	       bench_med(&fast->cpu_async), bench_med(&daemon->cpu_async));
	if (!fast->fast_seen)
		printf("  (no call took the fast path: krayd has none here; run as root)\n");
	bench_json_out(o.json_file, json, &rep);
	return 0;
}
