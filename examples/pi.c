// SPDX-License-Identifier: Apache-2.0
/*
 * pi.c - estimates pi by Monte Carlo over many remote tasks: each task samples
 * 100,000 points with its own seed (pi_hits in pi_fns.c) and returns its hit count.
 *
 *	pi [TASKS]	(default 1000)
 *
 * Connects to the krayd at $KRAY_ADDRESS, or starts a private one.
 */
#include <kray/kray.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SAMPLES_PER_TASK 100000

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long ntasks = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
	char exe[PATH_MAX], code_path[PATH_MAX + 32];
	kray_ref *refs = NULL;
	kray_value *vals = NULL;
	int64_t hits = 0;
	kray *k;
	ssize_t len;

	if (ntasks <= 0 || ntasks > 100000000) {
		fprintf(stderr, "usage: pi [TASKS]  (1 .. 100000000, default 1000)\n");
		return 1;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len < 0) {
		perror("readlink /proc/self/exe");
		return 1;
	}
	exe[len] = '\0';
	snprintf(code_path, sizeof(code_path), "%s/libpi_fns.so", dirname(exe));

	struct kray_config cfg = {
		.address = getenv("KRAY_ADDRESS"), /* NULL: a private krayd */
		.code_path = code_path,
	};

	if (kray_init(&k, &cfg) < 0) {
		fprintf(stderr, "pi: %s\n", kray_init_errmsg());
		return 1;
	}
	refs = calloc(ntasks, sizeof(*refs));
	vals = calloc(ntasks, sizeof(*vals));
	if (!refs || !vals) {
		fprintf(stderr, "pi: out of memory\n");
		goto out;
	}

	double t0 = now();

	for (long i = 0; i < ntasks; i++) {
		kray_value args[2] = { KRAY_V_INT(i), KRAY_V_INT(SAMPLES_PER_TASK) };

		if (kray_call(k, "pi_hits", args, 2, NULL, &refs[i]) < 0)
			goto fail;
	}
	if (kray_get(k, refs, ntasks, -1, vals) < 0)
		goto fail;

	double wall = now() - t0;

	for (long i = 0; i < ntasks; i++) {
		hits += vals[i].i;
		kray_value_clear(&vals[i]);
	}
	kray_release(k, refs, ntasks);

	double samples = (double)ntasks * SAMPLES_PER_TASK;
	double pi = 4.0 * hits / samples;

	printf("pi ~= %.6f  (error %+.2e vs M_PI)\n", pi, pi - M_PI);
	printf("%ld tasks x %d samples = %.0f samples, %.3f s wall, %.0f tasks/s\n", ntasks,
	       SAMPLES_PER_TASK, samples, wall, ntasks / wall);

	free(refs);
	free(vals);
	kray_shutdown(k);
	return 0;

fail:
	fprintf(stderr, "pi: %s\n", kray_errmsg(k));
out:
	free(refs);
	free(vals);
	kray_shutdown(k);
	return 1;
}
