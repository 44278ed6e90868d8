// SPDX-License-Identifier: Apache-2.0
/*
 * bench_bpf.c - what BPF could take out of a task's round trip (issue 5), measured in one
 * run on this machine:
 *
 *   unix_pingpong_rt_us         64-byte AF_UNIX ping-pong between two processes (the floor)
 *   skskb_proxy_rt_us           the same frames through a broker's sockets, steered in the
 *                               kernel by an sk_skb verdict program on a sockmap
 *                               (bpf/fastpath_proto.bpf.c); the broker never wakes
 *   user_relay_rt_us            the same through a broker process that relays in user space
 *   skskb_proxy_async_fps       frames per second through the sk_skb proxy, 1,000 in flight
 *   daemon_sync_rt_us           kray_call + kray_get of a no-op task via krayd (daemon path)
 *   daemon_async_tps            1,000 no-op tasks submitted, then got, per second
 *   krayd_cpu_s_per_M           krayd's CPU seconds (utime+stime) per million tasks
 *   system_cpu_us_per_rt        CPU time of the whole machine per round trip (/proc/stat),
 *                               which shows where the proxy's work goes (a kworker)
 *
 * The daemon-path figures are taken with krayd's BPF scheduler metrics on and off, which
 * is also their cost (two krayds of each, alternated, so that load from elsewhere on the
 * machine falls on both).  Every frame through the floor, the relay and the proxy is
 * checked to come back whole, in order, as the answer to its request: the bench stops
 * if the in-kernel steering loses, reorders or cuts one.  Each figure is the median of several rounds.  The sk_skb figures
 * need root (CAP_BPF); without it they are reported as skipped.
 *
 *	bench_bpf [--quick] [--json FILE]
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <kray/kray.h>

#include "../include/uapi/kray_bpf.h"
#include "../include/uapi/kray_wire.h"
#include "fastpath_proto.skel.h"

#define FRAME 64
#define ASYNC_BATCH 1000
#define MAX_ROUNDS 32

static int rounds = 5;
static double round_s = 0.5;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_bpf: %s: %s\n", what, why);
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double s[MAX_ROUNDS];

	if (n <= 0)
		return 0;
	memcpy(s, v, sizeof(*v) * (size_t)n);
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Busy + idle jiffies of all CPUs, as seconds of CPU time used. */
static double system_cpu_s(void)
{
	unsigned long long v[10] = { 0 }, busy = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) != 8)
		v[0] = 0;
	fclose(f);
	for (int i = 0; i < 8; i++)
		if (i != 3 && i != 4) /* idle, iowait */
			busy += v[i];
	return (double)busy / (double)sysconf(_SC_CLK_TCK);
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

static void write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write", strerror(errno));
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static int read_all(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p = (char *)p + r;
		n -= (size_t)r;
	}
	return 0;
}

static void make_frame(uint8_t *f, uint16_t type)
{
	struct kray_frame_hdr h = { .magic = KRAY_WIRE_MAGIC, .version = KRAY_WIRE_VERSION,
				    .type = type, .len = FRAME - sizeof(h) };

	memset(f, 0, FRAME);
	memcpy(f, &h, sizeof(h));
}

/* The far end: reads FRAME-byte frames and answers each with a frame of type reply. */
static pid_t start_echo(int fd, uint16_t reply)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork", strerror(errno));
	if (!pid) {
		uint8_t f[FRAME], r[FRAME];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		make_frame(r, reply);
		/* The answer names the request it answers: the driver side checks that every
		 * frame came back whole, in order, as an answer. */
		while (!read_all(fd, f, FRAME)) {
			memcpy(r + offsetof(struct kray_frame_hdr, req),
			       f + offsetof(struct kray_frame_hdr, req), sizeof(__u64));
			write_all(fd, r, FRAME);
		}
		_exit(0);
	}
	return pid;
}

/* A broker that relays in user space between a and b, both ways. */
static pid_t start_relay(int a, int b)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork", strerror(errno));
	if (!pid) {
		struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
		char buf[65536];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;) {
			if (poll(p, 2, -1) < 0)
				continue;
			for (int i = 0; i < 2; i++) {
				ssize_t n;

				if (!(p[i].revents & (POLLIN | POLLHUP)))
					continue;
				n = read(p[i].fd, buf, sizeof(buf));
				if (n <= 0)
					_exit(0);
				write_all(p[!i].fd, buf, (size_t)n);
			}
		}
	}
	return pid;
}

struct fig {
	double v[MAX_ROUNDS];
	int n;
};

static uint64_t next_seq;

static void send_seq(int fd, uint8_t *f)
{
	uint64_t seq = ++next_seq;

	memcpy(f + offsetof(struct kray_frame_hdr, req), &seq, sizeof(seq));
	write_all(fd, f, FRAME);
}

/* Checks that r is the answer (KRAY_MSG_FAST_RESULT) to request seq, whole. */
static void check_answer(const uint8_t *r, uint64_t seq)
{
	struct kray_frame_hdr h;

	memcpy(&h, r, sizeof(h));
	if (h.magic != KRAY_WIRE_MAGIC || h.type != KRAY_MSG_FAST_RESULT ||
	    h.len != FRAME - sizeof(h) || h.req != seq) {
		fprintf(stderr, "bench_bpf: frame %llu came back as type %u, req %llu, len %u\n",
			(unsigned long long)seq, h.type, (unsigned long long)h.req, h.len);
		die("check", "a frame was lost, reordered or cut");
	}
}

/* Round trips of FRAME bytes on fd (the echo answers): us per round trip, per round; and
 * the machine's CPU us per round trip. */
static void pingpong(int fd, uint16_t type, struct fig *rt, struct fig *cpu)
{
	uint8_t f[FRAME], r[FRAME];

	make_frame(f, type);
	for (int i = 0; i < 200; i++) { /* warm-up */
		send_seq(fd, f);
		if (read_all(fd, r, FRAME))
			die("ping-pong", "peer closed");
		check_answer(r, next_seq);
	}
	for (int k = 0; k < rounds; k++) {
		double t0 = now(), c0 = system_cpu_s(), t;
		long n = 0;

		do {
			for (int i = 0; i < 100; i++, n++) {
				send_seq(fd, f);
				if (read_all(fd, r, FRAME))
					die("ping-pong", "peer closed");
				check_answer(r, next_seq);
			}
			t = now();
		} while (t - t0 < round_s);
		rt->v[rt->n++] = (t - t0) / (double)n * 1e6;
		cpu->v[cpu->n++] = (system_cpu_s() - c0) / (double)n * 1e6;
	}
}

/* ASYNC_BATCH frames in flight (written one per write, as the proxy needs), then their
 * answers: frames per second, per round. */
static void async_frames(int fd, uint16_t type, struct fig *fps)
{
	uint8_t f[FRAME], *r = malloc(FRAME * ASYNC_BATCH);

	if (!r)
		die("malloc", strerror(ENOMEM));
	make_frame(f, type);
	for (int k = 0; k < rounds; k++) {
		double t0 = now(), t;
		long n = 0;

		do {
			/* Half the batch at a time keeps both socket buffers from filling up. */
			for (int h = 0; h < 2; h++) {
				uint64_t first = next_seq + 1;

				for (int i = 0; i < ASYNC_BATCH / 2; i++)
					send_seq(fd, f);
				if (read_all(fd, r, FRAME * (ASYNC_BATCH / 2)))
					die("async", "peer closed");
				for (int i = 0; i < ASYNC_BATCH / 2; i++)
					check_answer(r + (size_t)i * FRAME, first + (uint64_t)i);
			}
			n += ASYNC_BATCH;
			t = now();
		} while (t - t0 < round_s);
		fps->v[fps->n++] = (double)n / (t - t0);
	}
	free(r);
}

struct proxy_figs {
	struct fig rt, cpu, fps;
	bool ok;
	char why[160];
	unsigned long long steered;
};

static void bench_proxy(struct proxy_figs *pf)
{
	struct fastpath_proto *skel;
	int a[2], b[2], map, prog, r;
	__u32 k0 = 0, k1 = 1;
	pid_t echo;

	libbpf_set_print(NULL);
	skel = fastpath_proto__open_and_load();
	if (!skel) {
		snprintf(pf->why, sizeof(pf->why), "cannot load the sk_skb program: %s",
			 strerror(errno));
		return;
	}
	map = bpf_map__fd(skel->maps.socks);
	prog = bpf_program__fd(skel->progs.verdict);
	r = bpf_prog_attach(prog, map, BPF_SK_SKB_VERDICT, 0);
	if (r) {
		snprintf(pf->why, sizeof(pf->why), "attach sk_skb verdict: %s", strerror(-r));
		fastpath_proto__destroy(skel);
		return;
	}
	/* a: driver <-> broker's end a[1] (key 0); b: broker's end b[0] (key 1) <-> worker. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b))
		die("socketpair", strerror(errno));
	{
		__u64 fa = (__u64)a[1], fb = (__u64)b[0];

		if (bpf_map_update_elem(map, &k0, &fa, BPF_ANY) ||
		    bpf_map_update_elem(map, &k1, &fb, BPF_ANY)) {
			snprintf(pf->why, sizeof(pf->why), "sockmap update: %s", strerror(errno));
			goto out;
		}
	}
	echo = start_echo(b[1], KRAY_MSG_FAST_RESULT);
	pingpong(a[0], KRAY_MSG_FAST_EXEC, &pf->rt, &pf->cpu);
	async_frames(a[0], KRAY_MSG_FAST_EXEC, &pf->fps);
	pf->steered = skel->bss->steered;
	pf->ok = true;
	close(a[0]);
	close(b[1]);
	kill(echo, SIGKILL);
	waitpid(echo, NULL, 0);
out:
	close(a[1]);
	close(b[0]);
	fastpath_proto__destroy(skel);
}

/* ---- krayd's daemon path ------------------------------------------------------------- */

static pid_t start_krayd(const char *sock, const char *bpf)
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
		      "--bpf", bpf, "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1)
		die("krayd", "did not start");
	close(pfd[0]);
	return pid;
}

struct daemon_figs {
	struct fig rt, tps, cpu_sync, cpu_async;
};

static void bench_daemon(const char *bpf, struct daemon_figs *df)
{
	char dir[] = "/tmp/kray-bench-bpf-XXXXXX", sock[64];
	struct kray_config cfg = { 0 };
	kray_ref *refs = malloc(sizeof(*refs) * ASYNC_BATCH);
	kray_value *vals = malloc(sizeof(*vals) * ASYNC_BATCH);
	kray *k;
	pid_t pid;

	if (!refs || !vals || !mkdtemp(dir))
		die("setup", strerror(errno));
	snprintf(sock, sizeof(sock), "%s/krayd.sock", dir);
	pid = start_krayd(sock, bpf);
	cfg.address = sock;
	if (kray_init(&k, &cfg))
		die("kray_init", kray_init_errmsg());
	for (int i = 0; i < 200; i++) { /* warm-up: workers started, function known */
		if (kray_call(k, "noop", NULL, 0, NULL, &refs[0]) ||
		    kray_get(k, refs, 1, 60000, vals))
			die("noop", kray_errmsg(k));
		kray_value_clear(&vals[0]);
		kray_release(k, refs, 1);
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = now(), c0 = proc_cpu_s(pid), t;
		long n = 0;

		do {
			if (kray_call(k, "noop", NULL, 0, NULL, &refs[0]) ||
			    kray_get(k, refs, 1, 60000, vals))
				die("noop", kray_errmsg(k));
			kray_value_clear(&vals[0]);
			kray_release(k, refs, 1);
			n++;
			t = now();
		} while (t - t0 < round_s);
		df->rt.v[df->rt.n++] = (t - t0) / (double)n * 1e6;
		df->cpu_sync.v[df->cpu_sync.n++] = (proc_cpu_s(pid) - c0) / (double)n * 1e6;
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = now(), c0 = proc_cpu_s(pid), t;
		long n = 0;

		do {
			for (int i = 0; i < ASYNC_BATCH; i++)
				if (kray_call(k, "noop", NULL, 0, NULL, &refs[i]))
					die("noop", kray_errmsg(k));
			if (kray_get(k, refs, ASYNC_BATCH, 60000, vals))
				die("get", kray_errmsg(k));
			for (int i = 0; i < ASYNC_BATCH; i++)
				kray_value_clear(&vals[i]);
			kray_release(k, refs, ASYNC_BATCH);
			n += ASYNC_BATCH;
			t = now();
		} while (t - t0 < round_s);
		df->tps.v[df->tps.n++] = (double)n / (t - t0);
		df->cpu_async.v[df->cpu_async.n++] = (proc_cpu_s(pid) - c0) / (double)n * 1e6;
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
	fprintf(f, "  \"%s\": {\"median\": %.3f, \"rounds\": [", name, median(x->v, x->n));
	for (int i = 0; i < x->n; i++)
		fprintf(f, "%s%.3f", i ? ", " : "", x->v[i]);
	fprintf(f, "]}%s\n", last ? "" : ",");
}

int main(int argc, char **argv)
{
	const char *json_file = NULL;
	struct fig floor_rt = { 0 }, floor_cpu = { 0 }, floor_fps = { 0 };
	struct fig relay_rt = { 0 }, relay_cpu = { 0 };
	struct proxy_figs pf = { 0 };
	struct daemon_figs on = { 0 }, off = { 0 };
	int s[2], a[2], b[2];
	pid_t echo, relay;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			rounds = 3;
			round_s = 0.2;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json_file = argv[++i];
		} else {
			fprintf(stderr, "usage: bench_bpf [--quick] [--json FILE]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);

	/* The floor: a plain ping-pong. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s))
		die("socketpair", strerror(errno));
	echo = start_echo(s[1], KRAY_MSG_FAST_RESULT);
	pingpong(s[0], KRAY_MSG_FAST_EXEC, &floor_rt, &floor_cpu);
	async_frames(s[0], KRAY_MSG_FAST_EXEC, &floor_fps);
	close(s[0]);
	close(s[1]);
	kill(echo, SIGKILL); /* it holds both ends: it would never see the end */
	waitpid(echo, NULL, 0);

	/* Through a user-space relay. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b))
		die("socketpair", strerror(errno));
	relay = start_relay(a[1], b[0]);
	echo = start_echo(b[1], KRAY_MSG_FAST_RESULT);
	pingpong(a[0], KRAY_MSG_FAST_EXEC, &relay_rt, &relay_cpu);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	kill(relay, SIGKILL);
	kill(echo, SIGKILL);
	waitpid(relay, NULL, 0);
	waitpid(echo, NULL, 0);

	fprintf(stderr, "bench_bpf: floor and relay done; sk_skb proxy...\n");
	bench_proxy(&pf);
	/* Alternated, so that a burst of load on the machine hits both modes alike. */
	for (int i = 0; i < 2; i++) {
		fprintf(stderr, "bench_bpf: daemon path, BPF metrics off (%d of 2)...\n", i + 1);
		bench_daemon("off", &off);
		fprintf(stderr, "bench_bpf: daemon path, BPF metrics on (%d of 2)...\n", i + 1);
		bench_daemon("on", &on);
	}

	printf("bench_bpf: medians of %d rounds of %.1f s (one run, same machine)\n", rounds,
	       round_s);
	printf("  %-42s %10.1f us   (machine CPU %.1f us per round trip)\n",
	       "unix_pingpong_rt (the floor)", median(floor_rt.v, floor_rt.n),
	       median(floor_cpu.v, floor_cpu.n));
	if (pf.ok) {
		printf("  %-42s %10.1f us   (machine CPU %.1f us; %.2fx the floor; %llu frames "
		       "steered)\n",
		       "skskb_proxy_rt (BPF steers, broker asleep)", median(pf.rt.v, pf.rt.n),
		       median(pf.cpu.v, pf.cpu.n),
		       median(pf.rt.v, pf.rt.n) / median(floor_rt.v, floor_rt.n), pf.steered);
	} else {
		printf("  %-42s skipped: %s\n", "skskb_proxy_rt", pf.why);
	}
	printf("  %-42s %10.1f us   (machine CPU %.1f us)\n", "user_relay_rt",
	       median(relay_rt.v, relay_rt.n), median(relay_cpu.v, relay_cpu.n));
	printf("  %-42s %10.1f us   (krayd CPU %.1f us per task)\n",
	       "daemon_sync_rt, BPF metrics off", median(off.rt.v, off.rt.n),
	       median(off.cpu_sync.v, off.cpu_sync.n));
	printf("  %-42s %10.1f us   (krayd CPU %.1f us per task)\n",
	       "daemon_sync_rt, BPF metrics on", median(on.rt.v, on.rt.n),
	       median(on.cpu_sync.v, on.cpu_sync.n));
	printf("  %-42s %10.0f /s\n", "unix_pingpong_async (1000 in flight)",
	       median(floor_fps.v, floor_fps.n));
	if (pf.ok)
		printf("  %-42s %10.0f /s\n", "skskb_proxy_async (1000 in flight)",
		       median(pf.fps.v, pf.fps.n));
	printf("  %-42s %10.0f /s   (krayd %.2f CPU s per million tasks)\n",
	       "daemon_async_tps, BPF metrics off", median(off.tps.v, off.tps.n),
	       median(off.cpu_async.v, off.cpu_async.n));
	printf("  %-42s %10.0f /s   (krayd %.2f CPU s per million tasks)\n",
	       "daemon_async_tps, BPF metrics on", median(on.tps.v, on.tps.n),
	       median(on.cpu_async.v, on.cpu_async.n));

	FILE *f = json_file ? fopen(json_file, "we") : stdout;

	if (!f)
		die(json_file, strerror(errno));
	fprintf(f, "{\n  \"bench\": \"bench_bpf\",\n");
	json_fig(f, "unix_pingpong_rt_us", &floor_rt, false);
	json_fig(f, "unix_pingpong_cpu_us", &floor_cpu, false);
	json_fig(f, "unix_pingpong_async_fps", &floor_fps, false);
	json_fig(f, "user_relay_rt_us", &relay_rt, false);
	if (pf.ok) {
		json_fig(f, "skskb_proxy_rt_us", &pf.rt, false);
		json_fig(f, "skskb_proxy_cpu_us", &pf.cpu, false);
		json_fig(f, "skskb_proxy_async_fps", &pf.fps, false);
	}
	json_fig(f, "daemon_sync_rt_us_bpf_off", &off.rt, false);
	json_fig(f, "daemon_sync_rt_us_bpf_on", &on.rt, false);
	json_fig(f, "daemon_async_tps_bpf_off", &off.tps, false);
	json_fig(f, "daemon_async_tps_bpf_on", &on.tps, false);
	json_fig(f, "krayd_cpu_us_per_task_sync_bpf_off", &off.cpu_sync, false);
	json_fig(f, "krayd_cpu_us_per_task_sync_bpf_on", &on.cpu_sync, false);
	/* us per task is also s per million tasks */
	json_fig(f, "krayd_cpu_s_per_M_async_bpf_off", &off.cpu_async, false);
	json_fig(f, "krayd_cpu_s_per_M_async_bpf_on", &on.cpu_async, true);
	fprintf(f, "}\n");
	if (f != stdout)
		fclose(f);
	return 0;
}
