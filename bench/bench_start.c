// SPDX-License-Identifier: Apache-2.0
/*
 * bench_start.c - what a short program pays for kray (issue 20, item 5): the whole
 * examples/square process (kray_init() starts a private krayd, four tasks, shutdown),
 * run again and again in one run, alternating three ways:
 *
 *   bpf_off_ms       KRAY_BPF=off: no BPF at all (the baseline)
 *   bpf_on_ms        the default: the fast path loaded before serving, the scheduler
 *                    metrics on a thread while krayd serves (bpf-wait off)
 *   bpf_wait_ms      KRAY_BPF_WAIT=on: krayd loads every program before it serves, as
 *                    every krayd did before
 *
 * Each figure is the median wall time of the process, in ms; the ratios are against
 * bpf_off_ms.  The program's own checks (it prints the squares) must pass every time.
 *
 *	bench_start [--quick] [--json FILE]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"

enum { OFF, ON, WAIT, WAYS };

static const char *const way_name[WAYS] = { "bpf_off_ms", "bpf_on_ms", "bpf_wait_ms" };

/* One run of the program with the environment of way w: its wall time in ms. */
static double run_once(const char *prog, int w)
{
	double t0 = bench_now();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		bench_die("fork", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 1);
		unsetenv("KRAY_ADDRESS");
		unsetenv("KRAY_BPF");
		unsetenv("KRAY_BPF_WAIT");
		if (w == OFF)
			setenv("KRAY_BPF", "off", 1);
		if (w == WAIT)
			setenv("KRAY_BPF_WAIT", "on", 1);
		execl(prog, prog, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			bench_die("waitpid", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		bench_die(prog, "failed (run it by hand to see why)");
	return (bench_now() - t0) * 1e3;
}

static struct bench_samples ms[WAYS];

static void emit(FILE *f, void *arg)
{
	(void)arg;
	fprintf(f, "{\n  \"bench\": \"bench_start\",\n");
	for (int w = 0; w < WAYS; w++)
		bench_json_fig(f, way_name[w], &ms[w], false);
	fprintf(f, "  \"on_vs_off\": %.2f,\n  \"wait_vs_off\": %.2f\n}\n",
		bench_med(&ms[ON]) / bench_med(&ms[OFF]),
		bench_med(&ms[WAIT]) / bench_med(&ms[OFF]));
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	char prog[4096];
	int rounds;

	bench_init("bench_start");
	bench_opts_parse(argc, argv, "bench_start [--quick] [--json FILE]", &o);
	bench_path_from_env("KRAY_SQUARE", "../examples/square", prog, sizeof(prog));
	rounds = o.quick ? 5 : 15;
	run_once(prog, ON); /* page cache warm for all three */
	for (int r = 0; r < rounds; r++)
		for (int w = 0; w < WAYS; w++)
			bench_push(&ms[w], run_once(prog, w));
	printf("examples/square as a whole process, median of %d (ms):\n", rounds);
	for (int w = 0; w < WAYS; w++)
		printf("  %-12s %7.1f  (%.2fx off)\n", way_name[w], bench_med(&ms[w]),
		       bench_med(&ms[w]) / bench_med(&ms[OFF]));
	bench_json_out(o.json_file, emit, NULL);
	for (int w = 0; w < WAYS; w++)
		bench_samples_free(&ms[w]);
	return 0;
}
