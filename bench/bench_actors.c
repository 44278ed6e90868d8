// SPDX-License-Identifier: Apache-2.0
/*
 * bench_actors.c - actor call throughput and latency, with Ray's metric names
 * (python/ray/_private/ray_perf.py), against the floor of the machine:
 *
 *   unix_pingpong_rt             64-byte AF_UNIX stream ping-pong between two processes
 *   1_1_actor_calls_sync         one actor: call a no-op method, get it (60 s timeout,
 *                                Ray's ray.get(ref, timeout=...) shape), repeat; with the
 *                                BPF fast path such calls skip krayd (docs/fastpath.md)
 *   1_1_actor_calls_sync_notimeout  the same, each get without a timeout
 *   1_1_actor_calls_sync_daemon  the same from a driver without the fast path
 *                                (KRAY_FASTPATH=off in its environment): krayd's path,
 *                                the baseline in the same run
 *   1_1_actor_calls_async        one actor: submit 1,000 calls, get them all, repeat
 *   1_n_actor_calls_async        one driver, n actors (n = online CPUs): 1,000 calls to
 *                                each, round-robin, then get them all, repeat
 *   n_n_actor_calls_async        n driver processes (default 2, sized for a 2-core
 *                                machine; --drivers N), each with its own actor, each
 *                                running the async loop; the sum of their rates
 *   actor_start_us               create an actor and get its first call (no-op): an idle
 *                                pool worker hosts it (docs/actors.md, "Where an actor
 *                                runs"); then release it and let the pool refill
 *   actor_start_fresh_us         the same on a second krayd with actor-adopt = off (a
 *                                process started for each actor): the baseline of the
 *                                same run (own krayd only)
 *
 * Each figure is the median of several rounds of about a second, after a warm-up.  The
 * no-op actor is class Noop (method noop) in tests/fixtures/actorfns.c: the code path is
 * $KRAY_TEST_CODE_PATH (set by `make bench`), else the ../tests directory next to this
 * program.  The bench starts its own krayd (so that the n:n drivers can reach it:
 * $KRAY_KRAYD, else ../bin/krayd next to this program, on a private socket in a mkdtemp
 * directory, one CPU slot per online CPU) unless --address names a running one.
 *
 *	bench_actors [--quick] [--json FILE] [--address SOCKET] [--drivers N]
 */
#include <kray/kray.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_calls.h"
#include "bench_common.h"

#define ASYNC_BATCH 1000
#define MAX_ROUNDS 16
#define MAX_DRIVERS 64
#define MAX_ACTORS 64

static int rounds = 5;
static double round_s = 1.0;

/* Our own krayd (unless --address): stopped on any exit of the bench, bench_die() included. */
static struct bench_krayd krayd;

static void stop_krayd(void)
{
	bench_krayd_stop(&krayd);
}

/* Median of the per-round figures, leaving them in order. */
static double median_of(const double *per_round)
{
	return bench_median_of(per_round, rounds);
}

static kray *connect_to(const char *sock, const char *code_path)
{
	struct kray_config cfg = { .address = sock, .code_path = code_path };
	kray *k;

	if (kray_init(&k, &cfg) < 0)
		bench_die("kray_init", kray_init_errmsg());
	return k;
}

/* ---- actor calls ----------------------------------------------------------------------- */

static kray_ref new_actor(kray *k)
{
	kray_ref a;

	if (kray_actor_create(k, "Noop", NULL, 0, NULL, &a) < 0)
		bench_die("kray_actor_create Noop", kray_errmsg(k));
	return a;
}

/* Call i goes to actor i % n of the op's actors (struct actors). */
struct actors {
	const kray_ref *a;
	size_t n;
};

static void noop_call(const struct bench_op *op, size_t i, kray_ref *ref)
{
	const struct actors *as = op->arg;

	if (kray_actor_call(op->k, as->a[i % as->n], "noop", NULL, 0, NULL, ref) < 0)
		bench_die("kray_actor_call noop", kray_errmsg(op->k));
}

/* ---- actor start ----------------------------------------------------------------------- */

#define STARTS 15
#define START_GAP_US 100000 /* after each: the actor's process exits, the pool refills */

/*
 * Per round: STARTS times, create a Noop actor and get its first call (the constructor
 * ran: its worker is there), then release it and wait START_GAP_US.  The round's figure
 * is the median start in us.
 */
static void actor_starts(const char *address, const char *code_path, double *us)
{
	kray *k = connect_to(address, code_path);
	double t[STARTS];
	kray_value v;

	for (int r = -1; r < rounds; r++) { /* round -1 warms up */
		for (int i = 0; i < STARTS; i++) {
			double t0 = bench_now();
			kray_ref a = new_actor(k), ref;

			if (kray_actor_call(k, a, "noop", NULL, 0, NULL, &ref) < 0 ||
			    kray_get(k, &ref, 1, 60000, &v) < 0)
				bench_die("actor start", kray_errmsg(k));
			t[i] = (bench_now() - t0) * 1e6;
			kray_value_clear(&v);
			if (kray_release(k, &ref, 1) < 0 || kray_release(k, &a, 1) < 0 ||
			    kray_flush(k) < 0)
				bench_die("kray_release", kray_errmsg(k));
			usleep(START_GAP_US);
		}
		if (r >= 0)
			us[r] = bench_median_of(t, STARTS);
	}
	kray_shutdown(k);
}

/* ---- n:n: driver processes, each with its own actor -------------------------------- */

/* One driver's figure of one round. */
struct round_report {
	double calls_per_s;
};

/*
 * A forked driver: connects, creates its actor, warms up, says it is ready, then runs
 * one async round per go byte and reports its calls/s.  Never returns.
 */
static void nn_driver(const char *sock, const char *code_path, int go_fd, int rep_fd)
{
	static kray_ref refs[ASYNC_BATCH];
	static kray_value vals[ASYNC_BATCH];
	kray *k = connect_to(sock, code_path);
	kray_ref a = new_actor(k);
	struct actors as = { &a, 1 };
	struct bench_op op = { .k = k, .submit = noop_call, .arg = &as };
	struct round_report rep = { 0 };
	char b;

	bench_warm_up(&op, ASYNC_BATCH, round_s, refs, vals);
	if (write(rep_fd, &rep, sizeof(rep)) != sizeof(rep))
		bench_die("report", strerror(errno));
	while (read(go_fd, &b, 1) == 1) {
		bench_async_rounds(&op, ASYNC_BATCH, 1, round_s, refs, vals, &rep.calls_per_s);
		if (write(rep_fd, &rep, sizeof(rep)) != sizeof(rep))
			bench_die("report", strerror(errno));
	}
	kray_release(k, &a, 1);
	kray_shutdown(k);
	_exit(0);
}

static void read_report(int fd, struct round_report *rep)
{
	size_t done = 0;

	while (done < sizeof(*rep)) {
		ssize_t r = read(fd, (char *)rep + done, sizeof(*rep) - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			bench_die("n:n driver", "exited before reporting (see its message above)");
		done += (size_t)r;
	}
}

/* Per round: the sum over drivers of calls/s. */
static void bench_nn(const char *sock, const char *code_path, int drivers, double *cps)
{
	int go[MAX_DRIVERS], rep[MAX_DRIVERS];
	pid_t pids[MAX_DRIVERS];
	struct round_report r;

	fflush(NULL);
	for (int i = 0; i < drivers; i++) {
		int g[2], p[2];

		if (pipe2(g, O_CLOEXEC) || pipe2(p, O_CLOEXEC))
			bench_die("pipe2", strerror(errno));
		pids[i] = fork();
		if (pids[i] < 0)
			bench_die("fork", strerror(errno));
		if (pids[i] == 0) {
			bench_set_child("driver");
			for (int j = 0; j < i; j++) {
				close(go[j]);
				close(rep[j]);
			}
			close(g[1]);
			close(p[0]);
			nn_driver(sock, code_path, g[0], p[1]);
		}
		close(g[0]);
		close(p[1]);
		go[i] = g[1];
		rep[i] = p[0];
	}
	for (int i = 0; i < drivers; i++)
		read_report(rep[i], &r); /* warmed up */
	for (int round = 0; round < rounds; round++) {
		cps[round] = 0;
		for (int i = 0; i < drivers; i++)
			if (write(go[i], "g", 1) != 1)
				bench_die("go", strerror(errno));
		for (int i = 0; i < drivers; i++) {
			read_report(rep[i], &r);
			cps[round] += r.calls_per_s;
		}
	}
	for (int i = 0; i < drivers; i++) {
		int status;

		close(go[i]); /* the driver's read ends: it cleans up and exits */
		if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			bench_die("n:n driver", "did not exit cleanly");
		close(rep[i]);
	}
}

/* ---- report -------------------------------------------------------------------------- */

struct result {
	const char *name;
	double v[MAX_ROUNDS];
};

enum {
	R_PP,
	R_SYNC,
	R_SYNC_RT,
	R_SYNC_NT_RT,
	R_SYNC_D_RT,
	R_ASYNC,
	R_1N,
	R_NN,
	R_START,
	R_START_FRESH,
	R_N
};

/* What json() prints. */
struct report {
	const struct result *res;
	long n_actors;
	int drivers;
	const char *krayd;
	double fast_share;
};

static void json(FILE *f, void *arg)
{
	const struct report *rep = arg;
	const struct result *res = rep->res;
	double pp = median_of(res[R_PP].v), srt = median_of(res[R_SYNC_RT].v);

	fprintf(f, "{");
	for (int i = 0; i < R_N; i++)
		fprintf(f, "\"%s\": %.3f, ", res[i].name, median_of(res[i].v));
	fprintf(f,
		"\"sync_fast_share\": %.3f, \"sync_rt_vs_pingpong\": %.2f, \"n_actors\": %ld, "
		"\"n_drivers\": %d, "
		"\"rounds\": %d, \"round_s\": %.2f, \"online_cpus\": %ld, \"krayd\": \"%s\", "
		"\"per_round\": {",
		rep->fast_share, srt / pp, rep->n_actors, rep->drivers, rounds, round_s,
		sysconf(_SC_NPROCESSORS_ONLN), rep->krayd);
	for (int i = 0; i < R_N; i++) {
		fprintf(f, "%s", i ? ", " : "");
		bench_json_array(f, res[i].name, res[i].v, rounds);
	}
	fprintf(f, "}}\n");
}

/* Calls krayd's BPF program steered so far (docs/fastpath.md). */
static uint64_t fast_tasks(kray *k)
{
	struct kray_stats st;

	if (kray_status(k, &st))
		bench_die("kray_status", kray_errmsg(k));
	return st.fast_tasks;
}

/*
 * The sync round trip on krayd's path, as the baseline of the same run: a second driver
 * that never asks for a fast connection (KRAY_FASTPATH=off while it makes its first
 * call), with an actor of its own.
 */
static void sync_daemon(const char *address, const char *code_path, double *rt_us, kray_ref *refs,
			kray_value *vals)
{
	const char *env = getenv("KRAY_FASTPATH");
	char *saved = env ? strdup(env) : NULL;
	kray_ref actor;
	struct actors as = { &actor, 1 };
	double per_s[MAX_ROUNDS];
	kray *k;

	setenv("KRAY_FASTPATH", "off", 1);
	k = connect_to(address, code_path);
	actor = new_actor(k);
	struct bench_op op = { .k = k, .submit = noop_call, .arg = &as };

	bench_warm_up(&op, 100, round_s, refs, vals);
	if (saved)
		setenv("KRAY_FASTPATH", saved, 1);
	else
		unsetenv("KRAY_FASTPATH");
	free(saved);
	bench_sync_rounds(&op, rounds, round_s, per_s, rt_us);
	if (kray_release(k, &actor, 1) < 0)
		bench_die("kray_release", kray_errmsg(k));
	kray_shutdown(k);
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	const char *address;
	static kray_ref refs[ASYNC_BATCH * MAX_ACTORS];
	static kray_value vals[ASYNC_BATCH * MAX_ACTORS];
	char code_path[PATH_MAX + 64], bin[PATH_MAX + 64];
	struct result res[R_N] = {
		[R_PP] = { "unix_pingpong_rt_us" },
		[R_SYNC] = { "1_1_actor_calls_sync" },
		[R_SYNC_RT] = { "1_1_actor_calls_sync_rt_us" },
		[R_SYNC_NT_RT] = { "1_1_actor_calls_sync_notimeout_rt_us" },
		[R_SYNC_D_RT] = { "1_1_actor_calls_sync_daemon_rt_us" },
		[R_ASYNC] = { "1_1_actor_calls_async" },
		[R_1N] = { "1_n_actor_calls_async" },
		[R_NN] = { "n_n_actor_calls_async" },
		[R_START] = { "actor_start_us" },
		[R_START_FRESH] = { "actor_start_fresh_us" },
	};
	long n_actors = sysconf(_SC_NPROCESSORS_ONLN);
	int drivers = 2;
	kray_ref actors[MAX_ACTORS];
	kray *k;

	bench_init("bench_actors");
	for (int i = 1; i < argc; i++) {
		if (bench_opt(argc, argv, &i, true, &o)) {
			continue;
		} else if (!strcmp(argv[i], "--drivers") && i + 1 < argc) {
			drivers = atoi(argv[++i]);
			if (drivers < 1 || drivers > MAX_DRIVERS)
				bench_die("--drivers", "must be 1 to 64");
		} else {
			fprintf(stderr,
				"usage: %s [--quick] [--json FILE] [--address SOCKET] "
				"[--drivers N]\n",
				argv[0]);
			return 2;
		}
	}
	if (o.quick) {
		rounds = 3;
		round_s = 0.25;
	}
	address = o.address;
	if (n_actors < 1)
		n_actors = 1;
	if (n_actors > MAX_ACTORS)
		n_actors = MAX_ACTORS;
	bench_path_from_env("KRAY_TEST_CODE_PATH", "../tests", code_path, sizeof(code_path));
	if (access(code_path, R_OK) < 0)
		bench_die(code_path, "the no-op actor library is missing (make all?)");

	/* The floor first, before any krayd or worker exists. */
	bench_pingpong(rounds, round_s, res[R_PP].v);

	if (!address) {
		/* $KRAY_KRAYD, else ../bin/krayd next to this program; one slot per CPU. */
		const char *const flags[] = { "--num-cpus", "0", "--code-path", code_path, NULL };

		bench_path_from_env("KRAY_KRAYD", "../bin/krayd", bin, sizeof(bin));
		atexit(stop_krayd);
		bench_krayd_start(&krayd, bin, flags, NULL);
		address = krayd.sock;
	}
	k = connect_to(address, code_path);

	/* 1:1 */
	struct actors as = { actors, 1 };
	struct bench_op op = { .k = k, .submit = noop_call, .arg = &as };

	actors[0] = new_actor(k);
	bench_warm_up(&op, ASYNC_BATCH, round_s, refs, vals);
	uint64_t fast0 = fast_tasks(k);
	size_t sync_calls =
		bench_sync_rounds(&op, rounds, round_s, res[R_SYNC].v, res[R_SYNC_RT].v);
	{
		double per_s[MAX_ROUNDS];

		sync_calls +=
			bench_sync_rounds_get(&op, rounds, round_s, -1, per_s, res[R_SYNC_NT_RT].v);
	}
	double fast_share = sync_calls ? (double)(fast_tasks(k) - fast0) / (double)sync_calls : 0;
	sync_daemon(address, code_path, res[R_SYNC_D_RT].v, refs, vals);
	bench_async_rounds(&op, ASYNC_BATCH, rounds, round_s, refs, vals, res[R_ASYNC].v);

	/* 1:n: ASYNC_BATCH calls to each actor per batch, round-robin */
	for (long i = 1; i < n_actors; i++)
		actors[i] = new_actor(k);
	as.n = (size_t)n_actors;
	bench_warm_up(&op, ASYNC_BATCH * as.n, round_s, refs, vals);
	bench_async_rounds(&op, ASYNC_BATCH * as.n, rounds, round_s, refs, vals, res[R_1N].v);
	if (kray_release(k, actors, (size_t)n_actors) < 0)
		bench_die("kray_release", kray_errmsg(k));
	if (kray_flush(k) < 0)
		bench_die("kray_flush", kray_errmsg(k));

	/* n:n */
	bench_nn(address, code_path, drivers, res[R_NN].v);
	kray_shutdown(k);

	/* Actor start: adopting an idle pool worker, and (own krayd) starting a process. */
	actor_starts(address, code_path, res[R_START].v);
	if (krayd.pid) {
		const char *const flags[] = { "--num-cpus",    "0",   "--code-path", code_path,
					      "--actor-adopt", "off", NULL };
		struct bench_krayd fresh = { 0 };

		bench_krayd_start(&fresh, bin, flags, NULL);
		actor_starts(fresh.sock, code_path, res[R_START_FRESH].v);
		bench_krayd_stop(&fresh);
	}

	double pp = median_of(res[R_PP].v), scps = median_of(res[R_SYNC].v);
	double srt = median_of(res[R_SYNC_RT].v), acps = median_of(res[R_ASYNC].v);
	double ncps = median_of(res[R_1N].v), nncps = median_of(res[R_NN].v);
	const char *which = krayd.pid ? "own" : "shared";

	/* "vs floor": time per call / one ping-pong round trip. */
	printf("bench_actors: median of %d rounds x %.2f s, %s krayd, %ld online CPUs\n", rounds,
	       round_s, which, sysconf(_SC_NPROCESSORS_ONLN));
	printf("  (vs floor: time per call / one ping-pong round trip; n:n is the sum of the\n"
	       "   drivers' rates, so its figure is time per call of the whole machine)\n");
	printf("  %-32s %12s  %-8s %9s\n", "metric", "value", "unit", "vs floor");
	printf("  %-32s %12.2f  %-8s %8.2fx\n", "unix_pingpong_rt (floor)", pp, "us", 1.0);
	printf("  %-32s %12.0f  %-8s %8.2fx\n", "1_1_actor_calls_sync", scps, "calls/s",
	       1e6 / scps / pp);
	printf("  %-32s %12.2f  %-8s %8.2fx\n", "1_1_actor_calls_sync rt", srt, "us", srt / pp);
	printf("  %-32s %12.2f  %-8s %8.2fx\n", "1_1_actor_calls_sync rt, no timeout",
	       median_of(res[R_SYNC_NT_RT].v), "us", median_of(res[R_SYNC_NT_RT].v) / pp);
	printf("  %-32s %12.2f  %-8s %8.2fx\n", "1_1_actor_calls_sync rt, daemon path",
	       median_of(res[R_SYNC_D_RT].v), "us", median_of(res[R_SYNC_D_RT].v) / pp);
	printf("  %-32s %11.0f%%\n", "  share steered by BPF", fast_share * 100);
	printf("  %-32s %12.0f  %-8s %8.2fx\n", "1_1_actor_calls_async", acps, "calls/s",
	       1e6 / acps / pp);
	printf("  %-24s (n=%-3ld) %12.0f  %-8s %8.2fx\n", "1_n_actor_calls_async", n_actors, ncps,
	       "calls/s", 1e6 / ncps / pp);
	printf("  %-24s (n=%-3d) %12.0f  %-8s %8.2fx\n", "n_n_actor_calls_async", drivers, nncps,
	       "calls/s", 1e6 / nncps / pp);
	printf("  %-32s %12.0f  %-8s\n", "actor_start (adopts a pool worker)",
	       median_of(res[R_START].v), "us");
	if (krayd.pid)
		printf("  %-32s %12.0f  %-8s %8.2fx\n", "actor_start_fresh (actor-adopt off)",
		       median_of(res[R_START_FRESH].v), "us",
		       median_of(res[R_START_FRESH].v) / median_of(res[R_START].v));
	bench_json_out(o.json_file, json,
		       &(struct report){ res, n_actors, drivers, which, fast_share });
	return 0;
}
