// SPDX-License-Identifier: Apache-2.0
/*
 * bench_tasks.c - task throughput and latency, with Ray's metric names
 * (python/ray/_private/ray_perf.py), against the floor of the machine:
 *
 *   unix_pingpong_rt             64-byte AF_UNIX stream ping-pong between two processes
 *   single_client_tasks_sync     submit one no-op task, get it, repeat
 *   single_client_tasks_async    submit 1,000 no-op tasks, get them all, repeat
 *
 * With a private krayd it also prints the CPU time each side spent per task (the driver,
 * krayd, its workers; /proc): unlike the rates, it hardly depends on what else runs.
 *
 * Each figure is the median of several rounds of about a second, after a warm-up.  The
 * no-op task is `noop` in tests/fixtures/testfns.c: $KRAY_TEST_CODE_PATH (set by
 * `make bench`), else ../tests/libtestfns.so next to this program.  Starts a private
 * krayd using all CPUs unless --address is given.
 *
 *	bench_tasks [--quick] [--json FILE] [--address SOCKET]
 */
#include <kray/kray.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_calls.h"
#include "bench_common.h"

#define ASYNC_BATCH 1000
#define MAX_ROUNDS 16

static int rounds = 5;
static double round_s = 1.0;

/* ---- kray tasks -------------------------------------------------------------------- */

static void noop_call(const struct bench_op *op, size_t i, kray_ref *ref)
{
	(void)i;
	if (kray_call(op->k, "noop", NULL, 0, NULL, ref) < 0)
		bench_die("kray_call noop", kray_errmsg(op->k));
}

/* ---- report -------------------------------------------------------------------------- */

/* Per-round figures, as measured. */
struct report {
	double pp[MAX_ROUNDS], stps[MAX_ROUNDS], srt[MAX_ROUNDS], atps[MAX_ROUNDS];
	struct bench_cpu scpu, acpu; /* µs per task, sync and async rounds */
	const char *krayd;
};

static void json_cpu(FILE *f, const char *name, const struct bench_cpu *c)
{
	fprintf(f, "\"%s\": {\"driver\": %.3f, \"krayd\": %.3f, \"workers\": %.3f}", name, c->self,
		c->krayd, c->workers);
}

static void print_cpu(const char *name, const struct bench_cpu *c)
{
	printf("  %-32s %6.2f driver + %.2f krayd + %.2f workers = %.2f us\n", name, c->self,
	       c->krayd, c->workers, c->self + c->krayd + c->workers);
}

static void json(FILE *f, void *arg)
{
	const struct report *rep = arg;
	double pp = bench_median_of(rep->pp, rounds), stps = bench_median_of(rep->stps, rounds);
	double srt = bench_median_of(rep->srt, rounds), atps = bench_median_of(rep->atps, rounds);

	fprintf(f,
		"{\"single_client_tasks_sync\": %.1f, \"single_client_tasks_sync_rt_us\": %.3f, "
		"\"single_client_tasks_async\": %.1f, \"unix_pingpong_rt_us\": %.3f, "
		"\"sync_rt_vs_pingpong\": %.2f, \"rounds\": %d, \"round_s\": %.2f, "
		"\"online_cpus\": %ld, \"krayd\": \"%s\", ",
		stps, srt, atps, pp, srt / pp, rounds, round_s, sysconf(_SC_NPROCESSORS_ONLN),
		rep->krayd);
	if (!strcmp(rep->krayd, "private")) {
		fprintf(f, "\"cpu_us_per_task\": {");
		json_cpu(f, "single_client_tasks_sync", &rep->scpu);
		fprintf(f, ", ");
		json_cpu(f, "single_client_tasks_async", &rep->acpu);
		fprintf(f, "}, ");
	}
	fprintf(f, "\"per_round\": {");
	bench_json_array(f, "single_client_tasks_sync", rep->stps, rounds);
	fprintf(f, ", ");
	bench_json_array(f, "single_client_tasks_sync_rt_us", rep->srt, rounds);
	fprintf(f, ", ");
	bench_json_array(f, "single_client_tasks_async", rep->atps, rounds);
	fprintf(f, ", ");
	bench_json_array(f, "unix_pingpong_rt_us", rep->pp, rounds);
	fprintf(f, "}}\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	const char *address;
	static kray_ref refs[ASYNC_BATCH];
	static kray_value vals[ASYNC_BATCH];
	char code_path[PATH_MAX + 64];
	struct report rep = { 0 };
	kray *k;

	bench_init("bench_tasks");
	for (int i = 1; i < argc; i++) {
		if (!bench_opt(argc, argv, &i, true, &o)) {
			fprintf(stderr, "usage: %s [--quick] [--json FILE] [--address SOCKET]\n",
				argv[0]);
			return 2;
		}
	}
	if (o.quick) {
		rounds = 3;
		round_s = 0.25;
	}
	address = o.address;
	bench_path_from_env("KRAY_TEST_CODE_PATH", "../tests/libtestfns.so", code_path,
			    sizeof(code_path));
	if (access(code_path, R_OK) < 0)
		bench_die(code_path, "the no-op function library is missing (make all?)");

	/* The floor first, before any krayd or worker exists. */
	bench_pingpong(rounds, round_s, rep.pp);

	/* A private krayd unless --address: $KRAY_ADDRESS must not redirect the bench. */
	unsetenv("KRAY_ADDRESS");
	struct kray_config cfg = { .address = address, .code_path = code_path, .num_cpus = 0 };

	if (kray_init(&k, &cfg) < 0)
		bench_die("kray_init", kray_init_errmsg());
	struct bench_op op = { .k = k, .submit = noop_call };

	struct bench_cpu c0, c1, c2;
	size_t n;

	bench_warm_up(&op, ASYNC_BATCH, round_s, refs, vals);
	bench_cpu_now(&c0);
	n = bench_sync_rounds(&op, rounds, round_s, rep.stps, rep.srt);
	bench_cpu_now(&c1);
	rep.scpu = bench_cpu_per_call(&c0, &c1, n);
	n = bench_async_rounds(&op, ASYNC_BATCH, rounds, round_s, refs, vals, rep.atps);
	bench_cpu_now(&c2);
	rep.acpu = bench_cpu_per_call(&c1, &c2, n);
	kray_shutdown(k);

	double pp = bench_median_of(rep.pp, rounds), stps = bench_median_of(rep.stps, rounds);
	double srt = bench_median_of(rep.srt, rounds), atps = bench_median_of(rep.atps, rounds);

	rep.krayd = address ? "shared" : "private";
	/* "vs floor": time per task over one ping-pong round trip. */
	printf("bench_tasks: median of %d rounds x %.2f s, %s krayd, %ld online CPUs\n", rounds,
	       round_s, rep.krayd, sysconf(_SC_NPROCESSORS_ONLN));
	printf("  (vs floor: time per task / one ping-pong round trip)\n");
	printf("  %-32s %12s  %-8s %9s\n", "metric", "value", "unit", "vs floor");
	printf("  %-32s %12.2f  %-8s %8.2fx\n", "unix_pingpong_rt (floor)", pp, "us", 1.0);
	printf("  %-32s %12.0f  %-8s %8.2fx\n", "single_client_tasks_sync", stps, "tasks/s",
	       1e6 / stps / pp);
	printf("  %-32s %12.2f  %-8s %8.2fx\n", "single_client_tasks_sync rt", srt, "us", srt / pp);
	printf("  %-32s %12.0f  %-8s %8.2fx\n", "single_client_tasks_async", atps, "tasks/s",
	       1e6 / atps / pp);
	if (!address) {
		printf("  CPU per task (/proc, all rounds):\n");
		print_cpu("single_client_tasks_sync", &rep.scpu);
		print_cpu("single_client_tasks_async", &rep.acpu);
	}
	bench_json_out(o.json_file, json, &rep);
	return 0;
}
