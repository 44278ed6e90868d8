// SPDX-License-Identifier: Apache-2.0
/*
 * bench_tasks.c - task throughput and latency, with Ray's metric names
 * (python/ray/_private/ray_perf.py), against the floor of the machine:
 *
 *   unix_pingpong_rt             64-byte AF_UNIX stream ping-pong between two processes
 *   single_client_tasks_sync     submit one no-op task, get it, repeat
 *   single_client_tasks_async    submit 1,000 no-op tasks, get them all, repeat
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
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ASYNC_BATCH 1000
#define PING_SIZE 64
#define GET_TIMEOUT_MS 60000
#define MAX_ROUNDS 16

static int rounds = 5;
static double round_s = 1.0;

struct samples {
	double *v;
	size_t n, cap;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_tasks: %s: %s\n", what, why);
	exit(1);
}

static void push(struct samples *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			die("realloc", strerror(ENOMEM));
	}
	s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of v[0..n); sorts v. */
static double median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the floor: AF_UNIX ping-pong -------------------------------------------------- */

static int xfer(int fd, char *buf, int writing)
{
	size_t done = 0;

	while (done < PING_SIZE) {
		ssize_t r = writing ? write(fd, buf + done, PING_SIZE - done) :
				      read(fd, buf + done, PING_SIZE - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

/* Per round: median round trip in µs. */
static void bench_pingpong(double *rt_us)
{
	char buf[PING_SIZE] = { 0 };
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		while (!xfer(sv[1], buf, 0) && !xfer(sv[1], buf, 1))
			;
		_exit(0);
	}
	close(sv[1]);

	struct samples s = { 0 };

	for (int w = 0; w < 1000; w++)
		if (xfer(sv[0], buf, 1) || xfer(sv[0], buf, 0))
			die("ping-pong", "peer went away");
	for (int r = 0; r < rounds; r++) {
		double end = now() + round_s;

		s.n = 0;
		for (double t = now(); t < end;) {
			if (xfer(sv[0], buf, 1) || xfer(sv[0], buf, 0))
				die("ping-pong", "peer went away");
			double t1 = now();

			push(&s, (t1 - t) * 1e6);
			t = t1;
		}
		rt_us[r] = median(s.v, s.n);
	}
	close(sv[0]);
	waitpid(pid, NULL, 0);
	free(s.v);
}

/* ---- kray tasks -------------------------------------------------------------------- */

static void noop_call(kray *k, kray_ref *ref)
{
	if (kray_call(k, "noop", NULL, 0, NULL, ref) < 0)
		die("kray_call noop", kray_errmsg(k));
}

static void get_all(kray *k, kray_ref *refs, size_t n, kray_value *vals)
{
	if (kray_get(k, refs, n, GET_TIMEOUT_MS, vals) < 0)
		die("kray_get", kray_errmsg(k));
	for (size_t i = 0; i < n; i++)
		kray_value_clear(&vals[i]);
	if (kray_release(k, refs, n) < 0)
		die("kray_release", kray_errmsg(k));
}

/* Per round: tasks/s and median round trip in µs. */
static void bench_sync(kray *k, double *tps, double *rt_us)
{
	struct samples s = { 0 };
	kray_value val;
	kray_ref ref;

	for (int r = 0; r < rounds; r++) {
		double t0 = now(), end = t0 + round_s, t = t0;

		s.n = 0;
		while (t < end) {
			noop_call(k, &ref);
			get_all(k, &ref, 1, &val);
			double t1 = now();

			push(&s, (t1 - t) * 1e6);
			t = t1;
		}
		tps[r] = s.n / (t - t0);
		rt_us[r] = median(s.v, s.n);
	}
	free(s.v);
}

/* Per round: tasks/s. */
static void bench_async(kray *k, double *tps)
{
	static kray_ref refs[ASYNC_BATCH];
	static kray_value vals[ASYNC_BATCH];

	for (int r = 0; r < rounds; r++) {
		double t0 = now(), end = t0 + round_s, t = t0;
		size_t n = 0;

		while (t < end) {
			for (int i = 0; i < ASYNC_BATCH; i++)
				noop_call(k, &refs[i]);
			get_all(k, refs, ASYNC_BATCH, vals);
			n += ASYNC_BATCH;
			t = now();
		}
		tps[r] = n / (t - t0);
	}
}

static void warm_up(kray *k)
{
	static kray_ref refs[ASYNC_BATCH];
	static kray_value vals[ASYNC_BATCH];
	double end = now() + (round_s < 1 ? round_s : 1);

	/* Start the workers, then fill the caches and pools on both paths. */
	do {
		for (int i = 0; i < ASYNC_BATCH; i++)
			noop_call(k, &refs[i]);
		get_all(k, refs, ASYNC_BATCH, vals);
		for (int i = 0; i < 100; i++) {
			noop_call(k, &refs[0]);
			get_all(k, refs, 1, vals);
		}
	} while (now() < end);
}

/* ---- report -------------------------------------------------------------------------- */

static void json_array(FILE *f, const char *name, const double *v)
{
	fprintf(f, "\"%s\": [", name);
	for (int r = 0; r < rounds; r++)
		fprintf(f, "%s%.3f", r ? ", " : "", v[r]);
	fprintf(f, "]");
}

static void json(FILE *f, double pp, double stps, double srt, double atps,
		 const double *pp_r, const double *stps_r, const double *srt_r,
		 const double *atps_r, const char *krayd)
{
	fprintf(f, "{\"single_client_tasks_sync\": %.1f, \"single_client_tasks_sync_rt_us\": %.3f, "
		"\"single_client_tasks_async\": %.1f, \"unix_pingpong_rt_us\": %.3f, "
		"\"sync_rt_vs_pingpong\": %.2f, \"rounds\": %d, \"round_s\": %.2f, "
		"\"online_cpus\": %ld, \"krayd\": \"%s\", \"per_round\": {",
		stps, srt, atps, pp, srt / pp, rounds, round_s, sysconf(_SC_NPROCESSORS_ONLN),
		krayd);
	json_array(f, "single_client_tasks_sync", stps_r);
	fprintf(f, ", ");
	json_array(f, "single_client_tasks_sync_rt_us", srt_r);
	fprintf(f, ", ");
	json_array(f, "single_client_tasks_async", atps_r);
	fprintf(f, ", ");
	json_array(f, "unix_pingpong_rt_us", pp_r);
	fprintf(f, "}}\n");
}

int main(int argc, char **argv)
{
	const char *json_file = NULL, *address = NULL, *code_path = getenv("KRAY_TEST_CODE_PATH");
	char exe[PATH_MAX], fallback[PATH_MAX + 64];
	double pp_r[MAX_ROUNDS], stps_r[MAX_ROUNDS], srt_r[MAX_ROUNDS], atps_r[MAX_ROUNDS];
	double tmp[MAX_ROUNDS];
	kray *k;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			rounds = 3;
			round_s = 0.25;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json_file = argv[++i];
		} else if (!strcmp(argv[i], "--address") && i + 1 < argc) {
			address = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--quick] [--json FILE] [--address SOCKET]\n",
				argv[0]);
			return 2;
		}
	}
	if (!code_path || !*code_path) {
		ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		if (len < 0)
			die("readlink /proc/self/exe", strerror(errno));
		exe[len] = '\0';
		snprintf(fallback, sizeof(fallback), "%s/../tests/libtestfns.so", dirname(exe));
		code_path = fallback;
	}
	if (access(code_path, R_OK) < 0)
		die(code_path, "the no-op function library is missing (make all?)");

	/* The floor first, before any krayd or worker exists. */
	bench_pingpong(pp_r);

	/* A private krayd unless --address: $KRAY_ADDRESS must not redirect the bench. */
	unsetenv("KRAY_ADDRESS");
	struct kray_config cfg = { .address = address, .code_path = code_path, .num_cpus = 0 };

	if (kray_init(&k, &cfg) < 0)
		die("kray_init", kray_init_errmsg());
	warm_up(k);
	bench_sync(k, stps_r, srt_r);
	bench_async(k, atps_r);
	kray_shutdown(k);

	double pp, stps, srt, atps;

	memcpy(tmp, pp_r, sizeof(tmp));
	pp = median(tmp, rounds);
	memcpy(tmp, stps_r, sizeof(tmp));
	stps = median(tmp, rounds);
	memcpy(tmp, srt_r, sizeof(tmp));
	srt = median(tmp, rounds);
	memcpy(tmp, atps_r, sizeof(tmp));
	atps = median(tmp, rounds);

	/* "vs floor": time per task over one ping-pong round trip. */
	printf("bench_tasks: median of %d rounds x %.2f s, %s krayd, %ld online CPUs\n", rounds,
	       round_s, address ? "shared" : "private", sysconf(_SC_NPROCESSORS_ONLN));
	printf("  (vs floor: time per task / one ping-pong round trip)\n");
	printf("  %-32s %12s  %-8s %9s\n", "metric", "value", "unit", "vs floor");
	printf("  %-32s %12.2f  %-8s %8.2fx\n", "unix_pingpong_rt (floor)", pp, "us", 1.0);
	printf("  %-32s %12.0f  %-8s %8.2fx\n", "single_client_tasks_sync", stps, "tasks/s",
	       1e6 / stps / pp);
	printf("  %-32s %12.2f  %-8s %8.2fx\n", "single_client_tasks_sync rt", srt, "us",
	       srt / pp);
	printf("  %-32s %12.0f  %-8s %8.2fx\n", "single_client_tasks_async", atps, "tasks/s",
	       1e6 / atps / pp);
	printf("JSON: ");
	json(stdout, pp, stps, srt, atps, pp_r, stps_r, srt_r, atps_r,
	     address ? "shared" : "private");
	if (json_file) {
		FILE *f = fopen(json_file, "w");

		if (!f)
			die(json_file, strerror(errno));
		json(f, pp, stps, srt, atps, pp_r, stps_r, srt_r, atps_r,
		     address ? "shared" : "private");
		if (fclose(f))
			die(json_file, strerror(errno));
	}
	return 0;
}
