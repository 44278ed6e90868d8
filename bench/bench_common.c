// SPDX-License-Identifier: Apache-2.0
/*
 * bench_common.c - the helpers every C benchmark used to carry a copy of (bench_common.h):
 * one clock, one median, one ping-pong floor and one way to start and stop a private
 * krayd, so that the figures of different benches are measured the same way.
 */
#include "bench_common.h"
#include "../tests/integration/spawn.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PING_SIZE 64

static const char *bench_name = "bench";
static const char *child_tag; /* set in a forked child: die with _exit() */
static pid_t main_pid;

void bench_init(const char *name)
{
	bench_name = name;
	main_pid = getpid();
}

void bench_set_child(const char *tag)
{
	child_tag = tag;
}

void bench_die(const char *what, const char *why)
{
	fprintf(stderr, "%s%s%s%s: %s%s%s\n", bench_name, child_tag ? " (" : "",
		child_tag ? child_tag : "", child_tag ? ")" : "", what, why ? ": " : "",
		why ? why : "");
	if (child_tag)
		_exit(1); /* the exit handlers (krayd, directories) are the parent's */
	exit(1);
}

bool bench_opt(int argc, char **argv, int *i, bool with_address, struct bench_opts *o)
{
	const char *arg = argv[*i];

	if (!strcmp(arg, "--quick")) {
		o->quick = true;
		return true;
	}
	if (*i + 1 >= argc)
		return false;
	if (!strcmp(arg, "--json")) {
		o->json_file = argv[++*i];
		return true;
	}
	if (with_address && !strcmp(arg, "--address")) {
		o->address = argv[++*i];
		return true;
	}
	return false;
}

void bench_opts_parse(int argc, char **argv, const char *usage, struct bench_opts *o)
{
	for (int i = 1; i < argc; i++) {
		if (!bench_opt(argc, argv, &i, false, o)) {
			fprintf(stderr, "usage: %s\n", usage);
			exit(2);
		}
	}
}

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- samples and medians ----------------------------------------------------------- */

void bench_push(struct bench_samples *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			bench_die("realloc", strerror(ENOMEM));
	}
	s->v[s->n++] = x;
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	*s = (struct bench_samples){ 0 };
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_median_of(const double *v, size_t n)
{
	double *tmp, x;

	if (!n)
		return 0;
	tmp = malloc(n * sizeof(*v));
	if (!tmp)
		bench_die("malloc", strerror(ENOMEM));
	memcpy(tmp, v, n * sizeof(*v));
	x = bench_median(tmp, n);
	free(tmp);
	return x;
}

double bench_med(const struct bench_samples *s)
{
	return bench_median_of(s->v, s->n);
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

void bench_pingpong(int rounds, double round_s, double *rt_us)
{
	char buf[PING_SIZE] = { 0 };
	struct bench_samples s = { 0 };
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		bench_die("socketpair", strerror(errno));
	pid = fork();
	if (pid < 0)
		bench_die("fork", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		while (!xfer(sv[1], buf, 0) && !xfer(sv[1], buf, 1))
			;
		_exit(0);
	}
	close(sv[1]);
	for (int w = 0; w < 1000; w++)
		if (xfer(sv[0], buf, 1) || xfer(sv[0], buf, 0))
			bench_die("ping-pong", "peer went away");
	for (int r = 0; r < rounds; r++) {
		double end = bench_now() + round_s;

		s.n = 0;
		for (double t = bench_now(); t < end;) {
			if (xfer(sv[0], buf, 1) || xfer(sv[0], buf, 0))
				bench_die("ping-pong", "peer went away");
			double t1 = bench_now();

			bench_push(&s, (t1 - t) * 1e6);
			t = t1;
		}
		rt_us[r] = bench_median(s.v, s.n);
	}
	close(sv[0]);
	waitpid(pid, NULL, 0);
	bench_samples_free(&s);
}

/* Waits until *w != v (polling it spin times first), then returns *w. */
static uint32_t futex_await(uint32_t *w, uint32_t v, unsigned spin)
{
	uint32_t x;

	for (unsigned i = 0; i < spin; i++)
		if ((x = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != v)
			return x;
	while ((x = __atomic_load_n(w, __ATOMIC_ACQUIRE)) == v)
		syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
	return x;
}

static void futex_post(uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELEASE);
	syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void bench_futex_pingpong(int rounds, double round_s, unsigned spin, double *rt_us)
{
	struct bench_samples s = { 0 };
	/* [0]: ping (this process bumps it), [16]: pong (the peer): own cache lines */
	uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint32_t n = 0;
	pid_t pid;

	if (w == MAP_FAILED)
		bench_die("mmap", strerror(errno));
	pid = fork();
	if (pid < 0)
		bench_die("fork", strerror(errno));
	if (pid == 0) {
		for (uint32_t seen = 0;;) {
			seen = futex_await(&w[0], seen, spin);
			if (seen == UINT32_MAX)
				_exit(0);
			futex_post(&w[16], seen);
		}
	}
	for (int i = 0; i < 1000; i++) {
		futex_post(&w[0], ++n);
		futex_await(&w[16], n - 1, spin);
	}
	for (int r = 0; r < rounds; r++) {
		double end = bench_now() + round_s;

		s.n = 0;
		for (double t = bench_now(); t < end;) {
			futex_post(&w[0], ++n);
			futex_await(&w[16], n - 1, spin);
			double t1 = bench_now();

			bench_push(&s, (t1 - t) * 1e6);
			t = t1;
		}
		rt_us[r] = bench_median(s.v, s.n);
	}
	futex_post(&w[0], UINT32_MAX);
	waitpid(pid, NULL, 0);
	munmap(w, 4096);
	bench_samples_free(&s);
}

/* ---- paths ---------------------------------------------------------------------------- */

void bench_exe_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		bench_die("readlink /proc/self/exe", strerror(errno));
	exe[n] = '\0';
	snprintf(buf, len, "%s", dirname(exe));
}

void bench_path_from_env(const char *name, const char *rel, char *buf, size_t len)
{
	const char *env = getenv(name);
	char dir[PATH_MAX];

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	bench_exe_dir(dir, sizeof(dir));
	snprintf(buf, len, "%s/%s", dir, rel);
}

/* ---- a private krayd (tests/integration/spawn.c, as in the tests' harness) ---------------- */

void bench_krayd_start(struct bench_krayd *d, const char *bin, const char *const *flags,
		       const char *const *more)
{
	int rc = spawn_tmpdir("kray-bench", d->dir, sizeof(d->dir));

	if (rc)
		bench_die("mkdtemp", strerror(-rc));
	snprintf(d->sock, sizeof(d->sock), "%s/krayd.sock", d->dir);
	rc = spawn_krayd(bin, d->sock, "warn", flags, more, 10000, &d->pid);
	if (rc == -ECHILD)
		bench_die(bin, "krayd exited before serving");
	if (rc)
		bench_die(bin, rc == -ETIMEDOUT ? "krayd not ready in 10 s" : strerror(-rc));
}

void bench_krayd_start_build(struct bench_krayd *d, const char *const *flags)
{
	char bin[PATH_MAX], code[PATH_MAX];
	const char *code_flags[] = { "--code-path", code, NULL };

	bench_path_from_env("KRAY_KRAYD", "../bin/krayd", bin, sizeof(bin));
	bench_path_from_env("KRAY_TEST_CODE_PATH", "../tests", code, sizeof(code));
	bench_krayd_start(d, bin, code_flags, flags);
}

void bench_krayd_stop(struct bench_krayd *d)
{
	if (getpid() != main_pid)
		return;
	if (d->pid > 0) {
		spawn_stop(d->pid, 5000, bench_name);
		d->pid = 0;
	}
	if (d->dir[0]) {
		spawn_rm_rf(d->dir);
		d->dir[0] = '\0';
	}
}

/* ---- JSON ------------------------------------------------------------------------------ */

void bench_json_out(const char *file, void (*emit)(FILE *f, void *arg), void *arg)
{
	FILE *f;

	printf("JSON: ");
	emit(stdout, arg);
	if (!file)
		return;
	f = fopen(file, "w");
	if (!f)
		bench_die(file, strerror(errno));
	emit(f, arg);
	if (fclose(f))
		bench_die(file, strerror(errno));
}

void bench_json_array(FILE *f, const char *name, const double *v, int n)
{
	fprintf(f, "\"%s\": [", name);
	for (int r = 0; r < n; r++)
		fprintf(f, "%s%.3f", r ? ", " : "", v[r]);
	fprintf(f, "]");
}

void bench_json_fig(FILE *f, const char *name, const struct bench_samples *s, bool last)
{
	fprintf(f, "  \"%s\": {\"median\": %.3f, ", name, bench_median_of(s->v, s->n));
	bench_json_array(f, "rounds", s->v, (int)s->n);
	fprintf(f, "}%s\n", last ? "" : ",");
}

/* ---- another process's CPU time -------------------------------------------------------- */

double bench_proc_cpu_s(pid_t pid)
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
	/* The name in parentheses may hold spaces: the fields start after the last ')'. */
	if (!p || !(p = strrchr(buf, ')')))
		return 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The pids in /proc/<pid>/task/<pid>/children (the main thread's children), at most max. */
static size_t children(pid_t pid, pid_t *out, size_t max)
{
	char path[64];
	size_t n = 0;
	FILE *f;
	int c;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (n < max && fscanf(f, "%d", &c) == 1)
		out[n++] = c;
	fclose(f);
	return n;
}

void bench_cpu_now(struct bench_cpu *c)
{
	pid_t kids[16], grand[256];

	c->self = bench_proc_cpu_s(getpid());
	c->krayd = c->workers = 0;
	for (size_t i = 0, n = children(getpid(), kids, 16); i < n; i++) {
		c->krayd += bench_proc_cpu_s(kids[i]);
		for (size_t j = 0, m = children(kids[i], grand, 256); j < m; j++)
			c->workers += bench_proc_cpu_s(grand[j]);
	}
}

struct bench_cpu bench_cpu_per_call(const struct bench_cpu *start, const struct bench_cpu *end,
				    size_t calls)
{
	double per = calls ? 1e6 / (double)calls : 0;

	return (struct bench_cpu){ .self = (end->self - start->self) * per,
				   .krayd = (end->krayd - start->krayd) * per,
				   .workers = (end->workers - start->workers) * per };
}
