// SPDX-License-Identifier: Apache-2.0
/*
 * bench_fastpath.c - the BPF fast path for synchronous calls (docs/fastpath.md) against
 * krayd's daemon path and the raw socket floor, in one run on this machine:
 *
 *   floor_rt_us            64-byte AF_UNIX ping-pong between two processes
 *   sync_rt_us_{fast,daemon}   kray_call(noop) + kray_get(ref, no timeout) + kray_release,
 *                              per call: steered by BPF / through krayd
 *   async_tps_{fast,daemon}    1,000 no-op calls submitted, then got together, per second
 *                              (pipelined calls take the daemon path in both modes: this
 *                              checks that the fast path does not slow them down)
 *   krayd_cpu_us_per_task_{sync,async}_{fast,daemon}   krayd's utime+stime per task
 *                              (/proc/<pid>/stat); us per task = CPU s per million tasks
 *   fast_share             the share of the sync calls the program steered (the rest
 *                          found no idle worker and went through krayd)
 *
 * Two krayds per mode (BPF on in both; `fastpath` on / off), alternated, so that load from
 * elsewhere on the machine falls on both; each figure is the median of the rounds.  The
 * fast path needs root; without it the fast figures are reported as unavailable.
 *
 *	bench_fastpath [--quick] [--json FILE]
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kray/kray.h>

#define FRAME 64
#define BATCH 1000
#define MAX_ROUNDS 64

static int rounds = 5;
static double round_s = 0.5;

struct fig {
	double v[MAX_ROUNDS];
	int n;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_fastpath: %s: %s\n", what, why);
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const struct fig *f)
{
	double s[MAX_ROUNDS];

	if (f->n <= 0)
		return 0;
	memcpy(s, f->v, sizeof(*s) * (size_t)f->n);
	qsort(s, (size_t)f->n, sizeof(*s), cmp_double);
	return f->n % 2 ? s[f->n / 2] : (s[f->n / 2 - 1] + s[f->n / 2]) / 2;
}

static void add(struct fig *f, double v)
{
	if (f->n < MAX_ROUNDS)
		f->v[f->n++] = v;
}

static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the floor: a ping-pong of 64-byte messages between two processes ---------------- */

static int xfer(int fd, void *p, size_t n, bool out)
{
	while (n) {
		ssize_t r = out ? write(fd, p, n) : read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p = (char *)p + r;
		n -= (size_t)r;
	}
	return 0;
}

static void bench_floor(struct fig *rt)
{
	char buf[FRAME] = { 0 };
	int s[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s))
		die("socketpair", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork", strerror(errno));
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(s[0]);
		while (!xfer(s[1], buf, FRAME, false) && !xfer(s[1], buf, FRAME, true))
			;
		_exit(0);
	}
	close(s[1]);
	for (int r = 0; r < rounds; r++) {
		double t0 = now(), t;
		long n = 0;

		do {
			if (xfer(s[0], buf, FRAME, true) || xfer(s[0], buf, FRAME, false))
				die("ping-pong", "the echo process went away");
			n++;
			t = now();
		} while (t - t0 < round_s);
		add(rt, (t - t0) / (double)n * 1e6);
	}
	close(s[0]);
	waitpid(pid, NULL, 0);
}

/* ---- krayd, fast path on or off ------------------------------------------------------- */

static pid_t start_krayd(const char *sock, const char *fastpath)
{
	const char *krayd = getenv("KRAY_KRAYD"), *code = getenv("KRAY_TEST_CODE_PATH");
	int pfd[2];
	char fdstr[16], c;
	pid_t pid;

	if (!krayd || !code)
		die("environment", "KRAY_KRAYD and KRAY_TEST_CODE_PATH must be set (make bench)");
	if (pipe(pfd))
		die("pipe", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork", strerror(errno));
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		close(pfd[0]);
		snprintf(fdstr, sizeof(fdstr), "%d", pfd[1]);
		execl(krayd, krayd, "--socket", sock, "--code-path", code, "--ready-fd", fdstr,
		      "--num-cpus", "2", "--fastpath", fastpath, "--log-level", "warn",
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1)
		die("krayd", "did not start");
	close(pfd[0]);
	return pid;
}

struct mode {
	const char *name;
	struct fig rt, cpu_sync, tps, cpu_async, share;
	bool fast_seen;
};

static void sync_call(kray *k)
{
	kray_ref r;
	kray_value v;

	if (kray_call(k, "noop", NULL, 0, NULL, &r) || kray_get(k, &r, 1, -1, &v))
		die("noop", kray_errmsg(k));
	kray_value_clear(&v);
	kray_release(k, &r, 1);
}

static uint64_t fast_tasks(kray *k)
{
	struct kray_stats st;

	if (kray_status(k, &st))
		die("kray_status", kray_errmsg(k));
	return st.fast_tasks;
}

static void bench_mode(struct mode *m, const char *fastpath)
{
	char dir[] = "/tmp/kray-bench-fast-XXXXXX", sock[64];
	struct kray_config cfg = { 0 };
	kray_ref *refs = malloc(sizeof(*refs) * BATCH);
	kray_value *vals = malloc(sizeof(*vals) * BATCH);
	kray *k;
	pid_t pid;

	if (!refs || !vals || !mkdtemp(dir))
		die("setup", strerror(errno));
	snprintf(sock, sizeof(sock), "%s/krayd.sock", dir);
	pid = start_krayd(sock, fastpath);
	cfg.address = sock;
	if (kray_init(&k, &cfg))
		die("kray_init", kray_init_errmsg());
	for (int i = 0; i < 500; i++) /* warm-up: workers connected, function known */
		sync_call(k);
	for (int r = 0; r < rounds; r++) {
		double t0 = now(), c0 = proc_cpu_s(pid), t;
		uint64_t f0 = fast_tasks(k), f1;
		long n = 0;

		do {
			sync_call(k);
			n++;
			t = now();
		} while (t - t0 < round_s);
		add(&m->rt, (t - t0) / (double)n * 1e6);
		add(&m->cpu_sync, (proc_cpu_s(pid) - c0) / (double)n * 1e6);
		f1 = fast_tasks(k);
		add(&m->share, (double)(f1 - f0) / (double)n);
		if (f1 > f0)
			m->fast_seen = true;
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = now(), c0 = proc_cpu_s(pid), t;
		long n = 0;

		do {
			for (int i = 0; i < BATCH; i++)
				if (kray_call(k, "noop", NULL, 0, NULL, &refs[i]))
					die("noop", kray_errmsg(k));
			if (kray_get(k, refs, BATCH, -1, vals))
				die("get", kray_errmsg(k));
			for (int i = 0; i < BATCH; i++)
				kray_value_clear(&vals[i]);
			kray_release(k, refs, BATCH);
			n += BATCH;
			t = now();
		} while (t - t0 < round_s);
		add(&m->tps, (double)n / (t - t0));
		add(&m->cpu_async, (proc_cpu_s(pid) - c0) / (double)n * 1e6);
	}
	kray_shutdown(k);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	rmdir(dir);
	free(refs);
	free(vals);
}

static void json_fig(FILE *f, const char *name, const struct fig *x, bool last)
{
	fprintf(f, "  \"%s\": {\"median\": %.4f, \"rounds\": [", name, median(x));
	for (int i = 0; i < x->n; i++)
		fprintf(f, "%s%.4f", i ? ", " : "", x->v[i]);
	fprintf(f, "]}%s\n", last ? "" : ",");
}

int main(int argc, char **argv)
{
	const char *json_file = NULL;
	struct fig floor_rt = { 0 };
	struct mode fast = { .name = "fast" }, daemon = { .name = "daemon" };
	double fl, frt, drt;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			rounds = 3;
			round_s = 0.2;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json_file = argv[++i];
		} else {
			fprintf(stderr, "usage: bench_fastpath [--quick] [--json FILE]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	bench_floor(&floor_rt);
	/* Alternated (on, off, off, on), so that a burst of load on the machine, or being
	 * first, hits both modes alike. */
	for (int i = 0; i < 4; i++) {
		bool on = i == 0 || i == 3;

		fprintf(stderr, "bench_fastpath: fast path %s (%d of 4)...\n", on ? "on" : "off",
			i + 1);
		bench_mode(on ? &fast : &daemon, on ? "on" : "off");
	}
	fl = median(&floor_rt);
	frt = median(&fast.rt);
	drt = median(&daemon.rt);
	printf("bench_fastpath: medians of %d rounds of %.1f s per mode (one run, same machine)\n",
	       2 * rounds, round_s);
	printf("  %-40s %12s %12s %12s\n", "", "fast path", "daemon path", "floor");
	printf("  %-40s %9.1f us %9.1f us %9.1f us\n", "sync round trip (call + get)", frt, drt,
	       fl);
	printf("  %-40s %11.2fx %11.2fx %11.2fx\n", "  / floor", frt / fl, drt / fl, 1.0);
	printf("  %-40s %9.2f us %9.2f us\n", "  krayd CPU per sync task", median(&fast.cpu_sync),
	       median(&daemon.cpu_sync));
	printf("  %-40s %11.0f%% %11s\n", "  share steered by BPF", median(&fast.share) * 100,
	       "-");
	printf("  %-40s %10.0f/s %10.0f/s\n", "async (1,000 in flight)", median(&fast.tps),
	       median(&daemon.tps));
	printf("  %-40s %11.2fx %12s\n", "  fast-path mode / daemon path",
	       median(&fast.tps) / median(&daemon.tps), "");
	printf("  %-40s %9.2f s  %9.2f s\n", "  krayd CPU s per million async tasks",
	       median(&fast.cpu_async), median(&daemon.cpu_async));
	if (!fast.fast_seen)
		printf("  (no call took the fast path: krayd has none here; run as root)\n");

	f = json_file ? fopen(json_file, "we") : stdout;
	if (!f)
		die(json_file, strerror(errno));
	fprintf(f, "{\n  \"bench\": \"bench_fastpath\",\n  \"fast_path_available\": %s,\n",
		fast.fast_seen ? "true" : "false");
	json_fig(f, "floor_rt_us", &floor_rt, false);
	json_fig(f, "sync_rt_us_fast", &fast.rt, false);
	json_fig(f, "sync_rt_us_daemon", &daemon.rt, false);
	json_fig(f, "fast_share", &fast.share, false);
	json_fig(f, "krayd_cpu_us_per_task_sync_fast", &fast.cpu_sync, false);
	json_fig(f, "krayd_cpu_us_per_task_sync_daemon", &daemon.cpu_sync, false);
	json_fig(f, "async_tps_fast", &fast.tps, false);
	json_fig(f, "async_tps_daemon", &daemon.tps, false);
	/* us per task is also s per million tasks */
	json_fig(f, "krayd_cpu_s_per_M_async_fast", &fast.cpu_async, false);
	json_fig(f, "krayd_cpu_s_per_M_async_daemon", &daemon.cpu_async, true);
	fprintf(f, "}\n");
	if (f != stdout)
		fclose(f);
	return 0;
}
