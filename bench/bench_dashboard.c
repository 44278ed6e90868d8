// SPDX-License-Identifier: Apache-2.0
/*
 * bench_dashboard.c - the dashboard's API (daemon/dashboard/, docs/dashboard.md) answering
 * while krayd runs no-op tasks as fast as the C async path submits them, in one run:
 *
 *   async_tps_{quiet,polled}   no-op tasks per second (batches of 1,000, fast path off, so
 *                              krayd handles each) without and with the API polled, paced
 *                              at --rate (100,000/s, the figure; 0: as fast as
 *                              they go, where every CPU cycle the poller and krayd's HTTP
 *                              take is a task less on a small machine)
 *   rate_drop_pct              1 - polled / quiet, of the medians (the goal: <= 5)
 *   api_p50_ms, api_p99_ms     latency of GET /api/v1/{nodes,workers,tasks,actors,objects,
 *                              history} (connect to the last byte), one every 10 ms
 *   timeline_p50_ms, _p99_ms   GET /api/v1/timeline (the ring full: 10,000 tasks, 3 MB),
 *                              one a second
 *
 * The poller runs far harder than a page (which asks for one view every 2 s).  One krayd;
 * the rounds alternate quiet and polled so load from elsewhere falls on both; each rate
 * is the median of its rounds.
 *
 *	bench_dashboard [--quick] [--json FILE] [--rate TASKS_PER_S]
 */
#include <arpa/inet.h>
#include <kray/kray.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_calls.h"
#include "bench_common.h"

#define BATCH 1000

static int rounds = 6;
static double round_s = 1.0;
static int port;
static double rate = 100000;

/* round_s of batches of BATCH, each started no sooner than the pace allows: tasks/s. */
static double paced_round(const struct bench_op *op, kray_ref *refs, kray_value *vals)
{
	double t0 = bench_now(), t;
	size_t done = 0;

	if (!rate) {
		double per_s;

		bench_async_rounds(op, BATCH, 1, round_s, refs, vals, &per_s);
		return per_s;
	}
	while ((t = bench_now() - t0) < round_s) {
		double due = (double)done / rate;

		if (due > t) {
			usleep((useconds_t)((due - t) * 1e6));
			continue;
		}
		done += bench_batch(op, BATCH, refs, vals);
	}
	return (double)done / (bench_now() - t0);
}
static struct bench_krayd krayd;

static void stop_krayd(void)
{
	bench_krayd_stop(&krayd);
}

static void noop_call(const struct bench_op *op, size_t i, kray_ref *ref)
{
	(void)i;
	if (kray_call(op->k, "noop", NULL, 0, NULL, ref))
		bench_die("noop", kray_errmsg(op->k));
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		bench_die("port", "no free port");
	p = ntohs(sa.sin_port);
	close(fd);
	return p;
}

/* One GET; returns its latency in ms (connect to EOF) and the body's bytes. */
static double get(const char *path, size_t *ret_bytes)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(0x7f000001) };
	static __thread char buf[1 << 16];
	char req[256];
	double t0 = bench_now();
	size_t got = 0;
	bool ok = false;
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		bench_die("dashboard", "cannot connect");
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	if (write(fd, req, (size_t)n) != n)
		bench_die("dashboard", "short write");
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		if (!got)
			ok = r >= 12 && !strncmp(buf, "HTTP/1.0 200", 12);
		got += (size_t)r;
	}
	close(fd);
	if (!ok)
		bench_die(path, "not 200");
	*ret_bytes = got;
	return (bench_now() - t0) * 1e3;
}

struct poller {
	pthread_t th;
	int on, stop;
	struct bench_samples api, timeline;
	size_t timeline_bytes;
};

static void *poll_api(void *arg)
{
	static const char *const paths[] = {
		"/api/v1/nodes",  "/api/v1/workers", "/api/v1/tasks",
		"/api/v1/actors", "/api/v1/objects", "/api/v1/history"
	};
	struct poller *p = arg;
	double next_tl = 0;
	size_t bytes;
	unsigned i = 0;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		if (!__atomic_load_n(&p->on, __ATOMIC_ACQUIRE)) {
			usleep(1000);
			continue;
		}
		bench_push(&p->api, get(paths[i++ % 6], &bytes));
		if (bench_now() >= next_tl) {
			bench_push(&p->timeline, get("/api/v1/timeline", &p->timeline_bytes));
			next_tl = bench_now() + 1.0;
		}
		usleep(10000);
	}
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const struct bench_samples *s, double q)
{
	double *v;
	double r;

	if (!s->n)
		return 0;
	v = malloc(s->n * sizeof(*v));
	memcpy(v, s->v, s->n * sizeof(*v));
	qsort(v, s->n, sizeof(*v), cmp_d);
	r = v[(size_t)(q * (double)(s->n - 1))];
	free(v);
	return r;
}

struct report {
	struct bench_samples quiet, polled;
	struct poller *p;
};

static double drop_pct(const struct report *rep)
{
	return (1 - bench_med(&rep->polled) / bench_med(&rep->quiet)) * 100;
}

static void json(FILE *f, void *arg)
{
	const struct report *rep = arg;

	fprintf(f, "{\n  \"bench\": \"bench_dashboard\",\n  \"pace_tasks_per_s\": %.0f,\n", rate);
	fprintf(f, "  \"rate_drop_pct\": %.2f,\n", drop_pct(rep));
	fprintf(f, "  \"api_requests\": %zu,\n  \"api_p50_ms\": %.3f,\n  \"api_p99_ms\": %.3f,\n",
		rep->p->api.n, pct(&rep->p->api, 0.5), pct(&rep->p->api, 0.99));
	fprintf(f,
		"  \"timeline_requests\": %zu,\n  \"timeline_bytes\": %zu,\n"
		"  \"timeline_p50_ms\": %.3f,\n  \"timeline_p99_ms\": %.3f,\n",
		rep->p->timeline.n, rep->p->timeline_bytes, pct(&rep->p->timeline, 0.5),
		pct(&rep->p->timeline, 0.99));
	bench_json_fig(f, "async_tps_quiet", &rep->quiet, false);
	bench_json_fig(f, "async_tps_polled", &rep->polled, true);
	fprintf(f, "}\n");
}

int main(int argc, char **argv)
{
	static kray_ref refs[BATCH];
	static kray_value vals[BATCH];
	struct bench_opts o = { 0 };
	struct poller p = { 0 };
	struct report rep = { .p = &p };
	struct bench_op op = { .submit = noop_call };
	char spec[64];
	double per_s;
	kray *k;

	bench_init("bench_dashboard");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rate") && i + 1 < argc) {
			rate = atof(argv[i + 1]);
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 1) * sizeof(*argv));
			argc -= 2;
			break;
		}
	}
	bench_opts_parse(argc, argv, "bench_dashboard [--quick] [--json FILE] [--rate N]", &o);
	rounds = o.quick ? 2 : rounds;
	round_s = o.quick ? 0.3 : round_s;
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_krayd);
	port = free_port();
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
	const char *flags[] = { "--num-cpus", "2", "--fastpath", "off", "--dashboard", spec, NULL };

	bench_krayd_start_build(&krayd, flags);
	struct kray_config cfg = { .address = krayd.sock };

	if (kray_init(&k, &cfg))
		bench_die("kray_init", kray_init_errmsg());
	op.k = k;
	/* warm-up: workers connected, the function known, the timeline ring full */
	bench_async_rounds(&op, BATCH, 1, round_s, refs, vals, &per_s);
	if (pthread_create(&p.th, NULL, poll_api, &p))
		bench_die("pthread_create", "failed");
	for (int r = 0; r < 2 * rounds; r++) {
		bool polled = r % 4 == 1 || r % 4 == 2; /* quiet, polled, polled, quiet, ... */

		__atomic_store_n(&p.on, polled, __ATOMIC_RELEASE);
		usleep(20000);
		bench_push(polled ? &rep.polled : &rep.quiet, paced_round(&op, refs, vals));
	}
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	pthread_join(p.th, NULL);
	kray_shutdown(k);
	bench_krayd_stop(&krayd);

	printf("bench_dashboard: medians of %d rounds of %.1f s per mode (one run, same krayd)\n",
	       rounds, round_s);
	if (rate)
		printf("  (pace: %.0f tasks/s)\n", rate);
	else
		printf("  (no pace: as fast as they go)\n");
	printf("  %-44s %10.0f/s\n", "no-op tasks, API not polled", bench_med(&rep.quiet));
	printf("  %-44s %10.0f/s   (%+.1f%% drop)\n", "no-op tasks, API polled every 10 ms",
	       bench_med(&rep.polled), drop_pct(&rep));
	printf("  %-44s p50 %7.2f ms  p99 %7.2f ms  (%zu requests)\n",
	       "GET nodes/workers/tasks/actors/objects/history", pct(&p.api, 0.5),
	       pct(&p.api, 0.99), p.api.n);
	printf("  %-44s p50 %7.2f ms  p99 %7.2f ms  (%zu requests, %zu bytes)\n",
	       "GET timeline (ring full)", pct(&p.timeline, 0.5), pct(&p.timeline, 0.99),
	       p.timeline.n, p.timeline_bytes);
	bench_json_out(o.json_file, json, &rep);
	return 0;
}
