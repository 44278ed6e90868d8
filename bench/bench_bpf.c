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
 * if the in-kernel steering loses, reorders or cuts one.  Each figure is the median of
 * several rounds.  The sk_skb figures need root (CAP_BPF); without it they are reported as
 * skipped.
 *
 * The clock, the krayds, the call loops and the JSON are bench_common.c's and
 * bench_calls.c's; this bench's own are the framed, checked ping-pong (floor, relay and
 * proxy alike), the sk_skb prototype's loading and reading krayd's CPU time per round.
 *
 *	bench_bpf [--quick] [--json FILE]
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <kray/kray.h>

#include "../include/uapi/kray_bpf.h"
#include "../include/uapi/kray_wire.h"
#include "bench_calls.h"
#include "bench_common.h"
#include "fastpath_proto.skel.h"

#define FRAME 64
#define ASYNC_BATCH 1000

static int rounds = 5;
static double round_s = 0.5;

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

static void write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			bench_die("write", strerror(errno));
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
	struct kray_frame_hdr h = { .magic = KRAY_WIRE_MAGIC,
				    .version = KRAY_WIRE_VERSION,
				    .type = type,
				    .len = FRAME - sizeof(h) };

	memset(f, 0, FRAME);
	memcpy(f, &h, sizeof(h));
}

/* The far end: reads FRAME-byte frames and answers each with a frame of type reply. */
static pid_t start_echo(int fd, uint16_t reply)
{
	pid_t pid = fork();

	if (pid < 0)
		bench_die("fork", strerror(errno));
	if (!pid) {
		uint8_t f[FRAME], r[FRAME];

		bench_set_child("echo");
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
		bench_die("fork", strerror(errno));
	if (!pid) {
		struct pollfd p[2] = { { .fd = a, .events = POLLIN },
				       { .fd = b, .events = POLLIN } };
		char buf[65536];

		bench_set_child("relay");
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
		char why[160];

		snprintf(why, sizeof(why),
			 "frame %llu came back as type %u, req %llu, len %u: a frame was lost, "
			 "reordered or cut",
			 (unsigned long long)seq, h.type, (unsigned long long)h.req, h.len);
		bench_die("check", why);
	}
}

/* Round trips of FRAME bytes on fd (the echo answers): us per round trip, per round; and
 * the machine's CPU us per round trip. */
static void pingpong(int fd, uint16_t type, struct bench_samples *rt, struct bench_samples *cpu)
{
	uint8_t f[FRAME], r[FRAME];

	make_frame(f, type);
	for (int i = 0; i < 200; i++) { /* warm-up */
		send_seq(fd, f);
		if (read_all(fd, r, FRAME))
			bench_die("ping-pong", "peer closed");
		check_answer(r, next_seq);
	}
	for (int k = 0; k < rounds; k++) {
		double t0 = bench_now(), c0 = system_cpu_s(), t;
		long n = 0;

		do {
			for (int i = 0; i < 100; i++, n++) {
				send_seq(fd, f);
				if (read_all(fd, r, FRAME))
					bench_die("ping-pong", "peer closed");
				check_answer(r, next_seq);
			}
			t = bench_now();
		} while (t - t0 < round_s);
		bench_push(rt, (t - t0) / (double)n * 1e6);
		bench_push(cpu, (system_cpu_s() - c0) / (double)n * 1e6);
	}
}

/* ASYNC_BATCH frames in flight (written one per write, as the proxy needs), then their
 * answers: frames per second, per round. */
static void async_frames(int fd, uint16_t type, struct bench_samples *fps)
{
	uint8_t f[FRAME], *r = malloc(FRAME * ASYNC_BATCH);

	if (!r)
		bench_die("malloc", strerror(ENOMEM));
	make_frame(f, type);
	for (int k = 0; k < rounds; k++) {
		double t0 = bench_now(), t;
		long n = 0;

		do {
			/* Half the batch at a time keeps both socket buffers from filling up. */
			for (int h = 0; h < 2; h++) {
				uint64_t first = next_seq + 1;

				for (int i = 0; i < ASYNC_BATCH / 2; i++)
					send_seq(fd, f);
				if (read_all(fd, r, FRAME * (ASYNC_BATCH / 2)))
					bench_die("async", "peer closed");
				for (int i = 0; i < ASYNC_BATCH / 2; i++)
					check_answer(r + (size_t)i * FRAME, first + (uint64_t)i);
			}
			n += ASYNC_BATCH;
			t = bench_now();
		} while (t - t0 < round_s);
		bench_push(fps, (double)n / (t - t0));
	}
	free(r);
}

struct proxy_figs {
	struct bench_samples rt, cpu, fps;
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
		bench_die("socketpair", strerror(errno));
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

struct daemon_figs {
	struct bench_samples rt, tps, cpu_sync, cpu_async;
};

static void noop_call(const struct bench_op *op, size_t i, kray_ref *ref)
{
	(void)i;
	if (kray_call(op->k, "noop", NULL, 0, NULL, ref))
		bench_die("noop", kray_errmsg(op->k));
}

/*
 * The rounds of bench_calls.c one at a time, with krayd's CPU time read around each:
 * calls = rate x the round's length (one bench_now() longer than bench_calls' own clock,
 * noise at these lengths).  The sync figure stays the mean round trip, 1 / rate.
 */
static void daemon_rounds(const struct bench_op *op, pid_t pid, kray_ref *refs, kray_value *vals,
			  struct daemon_figs *df)
{
	for (int sync = 1; sync >= 0; sync--) {
		for (int r = 0; r < rounds; r++) {
			double t0 = bench_now(), c0 = bench_proc_cpu_s(pid), per_s, rt_us, cpu_us;

			if (sync)
				bench_sync_rounds(op, 1, round_s, &per_s, &rt_us);
			else
				bench_async_rounds(op, ASYNC_BATCH, 1, round_s, refs, vals, &per_s);
			cpu_us = (bench_proc_cpu_s(pid) - c0) / (per_s * (bench_now() - t0)) * 1e6;
			bench_push(sync ? &df->rt : &df->tps, sync ? 1e6 / per_s : per_s);
			bench_push(sync ? &df->cpu_sync : &df->cpu_async, cpu_us);
		}
	}
}

/* The krayd being measured; stopped at exit too, should the bench die. */
static struct bench_krayd krayd;

static void stop_krayd(void)
{
	bench_krayd_stop(&krayd);
}

static void bench_daemon(const char *bpf, struct daemon_figs *df)
{
	static kray_ref refs[ASYNC_BATCH];
	static kray_value vals[ASYNC_BATCH];
	const char *flags[] = { "--bpf", bpf, NULL };
	struct bench_op op = { .submit = noop_call };

	bench_krayd_start_build(&krayd, flags);
	struct kray_config cfg = { .address = krayd.sock };

	if (kray_init(&op.k, &cfg))
		bench_die("kray_init", kray_init_errmsg());
	bench_warm_up(&op, ASYNC_BATCH, round_s, refs, vals); /* workers started, function known */
	daemon_rounds(&op, krayd.pid, refs, vals, df);
	kray_shutdown(op.k);
	bench_krayd_stop(&krayd);
}

/* ---- report -------------------------------------------------------------------------- */

struct report {
	struct bench_samples floor_rt, floor_cpu, floor_fps, relay_rt, relay_cpu;
	struct proxy_figs pf;
	struct daemon_figs on, off;
};

static void json(FILE *f, void *arg)
{
	const struct report *rep = arg;

	fprintf(f, "{\n  \"bench\": \"bench_bpf\",\n");
	bench_json_fig(f, "unix_pingpong_rt_us", &rep->floor_rt, false);
	bench_json_fig(f, "unix_pingpong_cpu_us", &rep->floor_cpu, false);
	bench_json_fig(f, "unix_pingpong_async_fps", &rep->floor_fps, false);
	bench_json_fig(f, "user_relay_rt_us", &rep->relay_rt, false);
	if (rep->pf.ok) {
		bench_json_fig(f, "skskb_proxy_rt_us", &rep->pf.rt, false);
		bench_json_fig(f, "skskb_proxy_cpu_us", &rep->pf.cpu, false);
		bench_json_fig(f, "skskb_proxy_async_fps", &rep->pf.fps, false);
	}
	bench_json_fig(f, "daemon_sync_rt_us_bpf_off", &rep->off.rt, false);
	bench_json_fig(f, "daemon_sync_rt_us_bpf_on", &rep->on.rt, false);
	bench_json_fig(f, "daemon_async_tps_bpf_off", &rep->off.tps, false);
	bench_json_fig(f, "daemon_async_tps_bpf_on", &rep->on.tps, false);
	bench_json_fig(f, "krayd_cpu_us_per_task_sync_bpf_off", &rep->off.cpu_sync, false);
	bench_json_fig(f, "krayd_cpu_us_per_task_sync_bpf_on", &rep->on.cpu_sync, false);
	/* us per task is also s per million tasks */
	bench_json_fig(f, "krayd_cpu_s_per_M_async_bpf_off", &rep->off.cpu_async, false);
	bench_json_fig(f, "krayd_cpu_s_per_M_async_bpf_on", &rep->on.cpu_async, true);
	fprintf(f, "}\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	struct report rep = { 0 };
	struct proxy_figs *pf = &rep.pf;
	struct daemon_figs *on = &rep.on, *off = &rep.off;
	int s[2], a[2], b[2];
	pid_t echo, relay;
	double fl;

	bench_init("bench_bpf");
	bench_opts_parse(argc, argv, "bench_bpf [--quick] [--json FILE]", &o);
	rounds = o.quick ? 3 : rounds;
	round_s = o.quick ? 0.2 : round_s;
	signal(SIGPIPE, SIG_IGN);

	/* The floor: a plain ping-pong, of the frames the proxy steers (not bench_pingpong:
	 * the same checked frames and echo as the relay and the proxy, and CPU time too). */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s))
		bench_die("socketpair", strerror(errno));
	echo = start_echo(s[1], KRAY_MSG_FAST_RESULT);
	pingpong(s[0], KRAY_MSG_FAST_EXEC, &rep.floor_rt, &rep.floor_cpu);
	async_frames(s[0], KRAY_MSG_FAST_EXEC, &rep.floor_fps);
	close(s[0]);
	close(s[1]);
	kill(echo, SIGKILL); /* it holds both ends: it would never see the end */
	waitpid(echo, NULL, 0);

	/* Through a user-space relay. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b))
		bench_die("socketpair", strerror(errno));
	relay = start_relay(a[1], b[0]);
	echo = start_echo(b[1], KRAY_MSG_FAST_RESULT);
	pingpong(a[0], KRAY_MSG_FAST_EXEC, &rep.relay_rt, &rep.relay_cpu);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	kill(relay, SIGKILL);
	kill(echo, SIGKILL);
	waitpid(relay, NULL, 0);
	waitpid(echo, NULL, 0);

	fprintf(stderr, "bench_bpf: floor and relay done; sk_skb proxy...\n");
	bench_proxy(pf);
	atexit(stop_krayd); /* from here on krayds run */
	/* Alternated, so that a burst of load on the machine hits both modes alike. */
	for (int i = 0; i < 2; i++) {
		fprintf(stderr, "bench_bpf: daemon path, BPF metrics off (%d of 2)...\n", i + 1);
		bench_daemon("off", off);
		fprintf(stderr, "bench_bpf: daemon path, BPF metrics on (%d of 2)...\n", i + 1);
		bench_daemon("on", on);
	}

	fl = bench_med(&rep.floor_rt);
	printf("bench_bpf: medians of %d rounds of %.1f s (one run, same machine)\n", rounds,
	       round_s);
	printf("  %-42s %10.1f us   (machine CPU %.1f us per round trip)\n",
	       "unix_pingpong_rt (the floor)", fl, bench_med(&rep.floor_cpu));
	if (pf->ok) {
		printf("  %-42s %10.1f us   (machine CPU %.1f us; %.2fx the floor; %llu frames "
		       "steered)\n",
		       "skskb_proxy_rt (BPF steers, broker asleep)", bench_med(&pf->rt),
		       bench_med(&pf->cpu), bench_med(&pf->rt) / fl, pf->steered);
	} else {
		printf("  %-42s skipped: %s\n", "skskb_proxy_rt", pf->why);
	}
	printf("  %-42s %10.1f us   (machine CPU %.1f us)\n", "user_relay_rt",
	       bench_med(&rep.relay_rt), bench_med(&rep.relay_cpu));
	printf("  %-42s %10.1f us   (krayd CPU %.1f us per task)\n",
	       "daemon_sync_rt, BPF metrics off", bench_med(&off->rt), bench_med(&off->cpu_sync));
	printf("  %-42s %10.1f us   (krayd CPU %.1f us per task)\n",
	       "daemon_sync_rt, BPF metrics on", bench_med(&on->rt), bench_med(&on->cpu_sync));
	printf("  %-42s %10.0f /s\n", "unix_pingpong_async (1000 in flight)",
	       bench_med(&rep.floor_fps));
	if (pf->ok)
		printf("  %-42s %10.0f /s\n", "skskb_proxy_async (1000 in flight)",
		       bench_med(&pf->fps));
	printf("  %-42s %10.0f /s   (krayd %.2f CPU s per million tasks)\n",
	       "daemon_async_tps, BPF metrics off", bench_med(&off->tps),
	       bench_med(&off->cpu_async));
	printf("  %-42s %10.0f /s   (krayd %.2f CPU s per million tasks)\n",
	       "daemon_async_tps, BPF metrics on", bench_med(&on->tps), bench_med(&on->cpu_async));
	bench_json_out(o.json_file, json, &rep);
	return 0;
}
