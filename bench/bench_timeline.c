// SPDX-License-Identifier: Apache-2.0
/*
 * bench_timeline.c - what the task timeline ring (daemon/core/timeline.c,
 * docs/timeline.md) costs krayd, on against off, in one run on this machine:
 *
 *   krayd_cpu_us_per_task_{on,off}   krayd's utime+stime (/proc/<pid>/stat) per no-op
 *                                    task, 1,000 in flight (the rate at which krayd works
 *                                    hardest per task, so the ring's share is largest)
 *   async_tps_{on,off}               those tasks per second
 *   cpu_overhead_pct                 on / off - 1, of the medians (the goal: <= 3)
 *   timeline_ms                      one `kray timeline` request with the ring full
 *                                    (10,000 tasks): krayd renders it on its loop
 *
 * Two krayds per mode (`timeline-events` 10000 / 0), alternated (on, off, off, on), so that
 * load from elsewhere on the machine falls on both; each figure is the median of the
 * rounds.  The clock, the krayds, the async rounds and the JSON are bench_common.c's and
 * bench_calls.c's.
 *
 *	bench_timeline [--quick] [--json FILE]
 */
#include <kray/kray.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_calls.h"
#include "bench_common.h"

#define BATCH 1000

static int rounds = 6;
static double round_s = 0.5;

struct mode {
	struct bench_samples cpu, tps, render_ms;
	size_t json_bytes;
};

static void noop_call(const struct bench_op *op, size_t i, kray_ref *ref)
{
	(void)i;
	if (kray_call(op->k, "noop", NULL, 0, NULL, ref))
		bench_die("noop", kray_errmsg(op->k));
}

/* The krayd of the mode being measured; stopped at exit too, should the bench die. */
static struct bench_krayd krayd;

static void stop_krayd(void)
{
	bench_krayd_stop(&krayd);
}

static void bench_mode(struct mode *m, const char *events)
{
	static kray_ref refs[BATCH];
	static kray_value vals[BATCH];
	const char *flags[] = { "--num-cpus",	     "2",    "--fastpath", "off",
				"--timeline-events", events, NULL };
	struct bench_op op = { .submit = noop_call };
	double per_s, t0, c0;
	char *json;
	kray *k;

	bench_krayd_start_build(&krayd, flags);
	struct kray_config cfg = { .address = krayd.sock };

	if (kray_init(&k, &cfg))
		bench_die("kray_init", kray_init_errmsg());
	op.k = k;
	/* warm-up: workers connected, the function known, the ring full */
	bench_async_rounds(&op, BATCH, 1, round_s, refs, vals, &per_s);
	for (int r = 0; r < rounds; r++) {
		t0 = bench_now();
		c0 = bench_proc_cpu_s(krayd.pid);
		bench_async_rounds(&op, BATCH, 1, round_s, refs, vals, &per_s);
		bench_push(&m->tps, per_s);
		bench_push(&m->cpu,
			   (bench_proc_cpu_s(krayd.pid) - c0) / (per_s * (bench_now() - t0)) * 1e6);
	}
	for (int r = 0; r < rounds; r++) {
		t0 = bench_now();
		if (kray_timeline(k, &json))
			bench_die("kray_timeline", kray_errmsg(k));
		bench_push(&m->render_ms, (bench_now() - t0) * 1e3);
		m->json_bytes = strlen(json);
		free(json);
	}
	kray_shutdown(k);
	bench_krayd_stop(&krayd);
}

struct report {
	struct mode on, off;
};

static double overhead_pct(const struct report *rep)
{
	return (bench_med(&rep->on.cpu) / bench_med(&rep->off.cpu) - 1) * 100;
}

static void json(FILE *f, void *arg)
{
	const struct report *rep = arg;

	fprintf(f, "{\n  \"bench\": \"bench_timeline\",\n  \"cpu_overhead_pct\": %.2f,\n",
		overhead_pct(rep));
	fprintf(f, "  \"timeline_json_bytes\": %zu,\n", rep->on.json_bytes);
	bench_json_fig(f, "krayd_cpu_us_per_task_on", &rep->on.cpu, false);
	bench_json_fig(f, "krayd_cpu_us_per_task_off", &rep->off.cpu, false);
	bench_json_fig(f, "async_tps_on", &rep->on.tps, false);
	bench_json_fig(f, "async_tps_off", &rep->off.tps, false);
	bench_json_fig(f, "timeline_ms", &rep->on.render_ms, true);
	fprintf(f, "}\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	struct report rep = { 0 };

	bench_init("bench_timeline");
	bench_opts_parse(argc, argv, "bench_timeline [--quick] [--json FILE]", &o);
	rounds = o.quick ? 3 : rounds;
	round_s = o.quick ? 0.2 : round_s;
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_krayd);
	for (int i = 0; i < 4; i++) {
		bool on = i == 0 || i == 3;

		fprintf(stderr, "bench_timeline: timeline %s (%d of 4)...\n", on ? "on" : "off",
			i + 1);
		bench_mode(on ? &rep.on : &rep.off, on ? "10000" : "0");
	}
	printf("bench_timeline: medians of %d rounds of %.1f s per mode (one run, same machine)\n",
	       2 * rounds, round_s);
	printf("  %-40s %12s %12s\n", "", "timeline on", "off");
	printf("  %-40s %9.2f us %9.2f us   (%+.1f%%)\n", "krayd CPU per task (1,000 in flight)",
	       bench_med(&rep.on.cpu), bench_med(&rep.off.cpu), overhead_pct(&rep));
	printf("  %-40s %10.0f/s %10.0f/s\n", "no-op tasks", bench_med(&rep.on.tps),
	       bench_med(&rep.off.tps));
	printf("  %-40s %9.2f ms   (%zu bytes of JSON, 10,000 tasks)\n",
	       "kray timeline with the ring full", bench_med(&rep.on.render_ms), rep.on.json_bytes);
	bench_json_out(o.json_file, json, &rep);
	return 0;
}
