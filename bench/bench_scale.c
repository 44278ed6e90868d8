// SPDX-License-Identifier: Apache-2.0
/*
 * bench_scale.c - how far one head goes (issue 19, docs/cluster.md "How far one head
 * goes"): a real head krayd and N simulated nodes (bench/sim/simnode.c) that speak the
 * node protocol against it from this process (the token handshake, REGISTER, a HEARTBEAT
 * every heartbeat-ms with their load, the views the head answers with, and the tasks it
 * forwards to them, answered as a krayd's running side answers them), for N = 100 and 300
 * (--full: and 1,000):
 *
 *   head_cpu_pct           the head's CPU time over the heartbeat window, % of one CPU
 *   head_cpu_us_per_report the same per heartbeat it handled
 *   head_rss_kb_per_node   the head's resident memory with N nodes less with none, per node
 *   view_bytes_per_report  what the head sent back per heartbeat (its view of the cluster)
 *   join_ms                the N handshakes and registrations, one after another
 *   routed_tasks_per_s     tiny tasks (square(i), resource "sim:1", which only the
 *                          simulated nodes have) a driver on the head submits, 256 at a time,
 *                          that the head forwards to a node and whose results come back
 *   head_cpu_ms_per_1k_routed  the head's CPU per 1,000 of them
 *   nodes_used             how many simulated nodes ran some of them (placement spreads)
 *   local_tasks_per_s, head_cpu_ms_per_1k_local  baseline, same run and head: the same
 *                          tasks without the resource, run by the head's own worker
 *                          (num-cpus 1) before the nodes join
 *   detect_dead_ms         a node's link closed until the head lists it DEAD
 *
 * A tenth of the simulated nodes report a different load at each heartbeat (busy nodes);
 * the others report the same figures every time (idle ones).  Every result is checked.
 * A head that scales linearly keeps the CPU and view bytes per report, the memory per
 * node, and the CPU per routed task flat as N grows.
 *
 * One round per size (--quick: 1 s windows, else 3 s).  Needs nothing but loopback;
 * raises its file limit for the sockets.
 *
 *	bench_scale [--quick] [--full] [--json FILE] [--nodes N[,N...]]
 */
#include <kray/kray.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../include/uapi/kray_wire.h"
#include "bench_common.h"
#include "sim/simnode.h"

#define TOKEN "bench-scale-token-0123456789abcdef"
#define HEARTBEAT_MS 1000
#define MAX_SIZES 8
#define BATCH 256
#define SIM_RES "sim:1"

struct size_result {
	unsigned n, nodes_used;
	double cpu_pct, cpu_us_per_report, rss_kb_per_node, view_bytes_per_report, join_ms,
		detect_ms, route_tps, route_cpu_ms, local_tps, local_cpu_ms;
};

static struct bench_krayd head;
static unsigned short port;
static struct simnode_stats st;
static int ep = -1;

/* A driver on the head, in its own thread: square(i) BATCH at a time, results checked. */
struct driver {
	pthread_t th;
	const char *res; /* NULL: run on the head */
	atomic_bool stop, finished;
	atomic_ullong done;
	char err[256];
};

static int64_t now_ms(void)
{
	return (int64_t)(bench_now() * 1000);
}

static void cleanup(void)
{
	bench_krayd_stop(&head);
}

static void *drive(void *arg)
{
	struct driver *dr = arg;
	struct kray_config cfg = { .address = head.sock };
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_ref refs[BATCH];
	kray_value vals[BATCH];
	int64_t i = 0;
	kray *k;

	o.resources = dr->res;
	if (kray_init(&k, &cfg)) {
		snprintf(dr->err, sizeof(dr->err), "connecting: %s", kray_init_errmsg());
		goto out;
	}
	while (!atomic_load(&dr->stop)) {
		int64_t first = i;

		for (int j = 0; j < BATCH; j++, i++) {
			kray_value a = KRAY_V_INT(i % 100000);

			if (kray_call(k, "square", &a, 1, &o, &refs[j]) < 0) {
				snprintf(dr->err, sizeof(dr->err), "kray_call: %s", kray_errmsg(k));
				goto shut;
			}
		}
		if (kray_get(k, refs, BATCH, 60000, vals)) {
			snprintf(dr->err, sizeof(dr->err), "kray_get: %s", kray_errmsg(k));
			goto shut;
		}
		for (int j = 0; j < BATCH; j++) {
			int64_t x = (first + j) % 100000;

			if (vals[j].type != KRAY_INT64 || vals[j].i != x * x)
				snprintf(dr->err, sizeof(dr->err), "square(%lld) came back wrong",
					 (long long)x);
			kray_value_clear(&vals[j]);
		}
		kray_release(k, refs, BATCH);
		if (dr->err[0])
			goto shut;
		atomic_fetch_add(&dr->done, BATCH);
	}
shut:
	kray_shutdown(k);
out:
	atomic_store(&dr->finished, true);
	return NULL;
}

/* The simulated nodes for ms: each reports on its own schedule (the busy ones with a new
 * load) and answers what the head sends it.  n may be 0 (waits). */
static void run(struct simnode *sims, unsigned n, int64_t ms)
{
	struct epoll_event ev[64];
	int64_t end = now_ms() + ms, due = 0;

	for (int64_t t = now_ms(); t < end; t = now_ms()) {
		int64_t next = end;
		int got;

		if (t >= due) {
			/* Reports due: one pass, which also finds the next one. */
			due = end;
			for (unsigned i = 0; i < n; i++) {
				if (sims[i].next_ms <= t) {
					if (sims[i].busy)
						sims[i].load =
							(sims[i].load * 1103515245u + 12345u) % 64;
					if (simnode_report(&sims[i], KRAY_MSG_NODE_HEARTBEAT, &st))
						bench_die("a report to the head", strerror(errno));
					sims[i].next_ms += HEARTBEAT_MS;
				}
				if (sims[i].next_ms < due)
					due = sims[i].next_ms;
			}
		}
		if (due < next)
			next = due;
		got = epoll_wait(ep, ev, 64, (int)(next > t ? next - t : 0));
		if (got < 0 && errno != EINTR)
			bench_die("epoll_wait", strerror(errno));
		for (int i = 0; i < got; i++)
			if (simnode_drain(ev[i].data.ptr, &st))
				bench_die("the head closed a simulated node's link", NULL);
	}
}

/* Tasks through the head for window_s (after a warm-up): their rate, and the head's CPU
 * per 1,000 of them. */
static void rate(struct simnode *sims, unsigned n, const char *res, double window_s, double *tps,
		 double *cpu_ms_per_1k)
{
	struct driver dr = { .res = res };
	unsigned long long d0, d1;
	double cpu0, cpu1, t0, t1;

	if (pthread_create(&dr.th, NULL, drive, &dr))
		bench_die("pthread_create", NULL);
	run(sims, n, 700); /* the worker starts, the links warm */
	cpu0 = bench_proc_cpu_s(head.pid);
	d0 = atomic_load(&dr.done);
	t0 = bench_now();
	run(sims, n, (int64_t)(window_s * 1000));
	cpu1 = bench_proc_cpu_s(head.pid);
	d1 = atomic_load(&dr.done);
	t1 = bench_now();
	atomic_store(&dr.stop, true);
	while (!atomic_load(&dr.finished))
		run(sims, n, 20); /* its last batch still needs answers */
	pthread_join(dr.th, NULL);
	if (dr.err[0])
		bench_die(res ? "routed tasks" : "local tasks", dr.err);
	if (d1 == d0)
		bench_die("no task finished in the window", res);
	*tps = (double)(d1 - d0) / (t1 - t0);
	*cpu_ms_per_1k = 1e6 * (cpu1 - cpu0) / (double)(d1 - d0);
}

static double rss_kb(pid_t pid)
{
	char path[64], line[256];
	double kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		bench_die("reading the head's /proc status", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atof(line + 6);
	fclose(f);
	return kb;
}

/* Polls the head's node list until node is listed dead; returns the ms it took. */
static double wait_dead(kray *k, uint32_t node)
{
	double t0 = bench_now();

	for (;;) {
		struct kray_node_info *info = NULL;
		size_t n = 0;
		bool dead = false;

		if (kray_list_nodes(k, &info, &n))
			bench_die("kray_list_nodes", kray_errmsg(k));
		for (size_t i = 0; i < n; i++)
			dead |= info[i].node == node && !info[i].alive;
		free(info);
		if (dead)
			return (bench_now() - t0) * 1000;
		if (bench_now() - t0 > 30)
			bench_die("the head did not list a closed node as dead in 30 s", NULL);
		usleep(1000);
	}
}

static void one_size(unsigned n, double window_s, struct size_result *r)
{
	char listen[32], hb[16];
	const char *const flags[] = { "--head", "--node-listen",
				      listen,	"--token",
				      TOKEN,	"--heartbeat-ms",
				      hb,	"--node-timeout-ms",
				      "30000",	"--num-cpus",
				      "1",	"--prestart",
				      "0",	"--bpf",
				      "off",	"--max-unproven-links",
				      "64",	NULL };
	struct simnode *sims = calloc(n, sizeof(*sims));
	struct kray_config cfg = { 0 };
	double cpu0, cpu1, rss0, rss1, t0;
	uint64_t bytes0, reports0;
	char why[128];
	kray *k;

	if (!sims)
		bench_die("out of memory", NULL);
	/* A free port: bind, note it, close (the head binds it next). */
	{
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    getsockname(fd, (struct sockaddr *)&sa, &len))
			bench_die("finding a free port", strerror(errno));
		port = ntohs(sa.sin_port);
		close(fd);
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(hb, sizeof(hb), "%d", HEARTBEAT_MS);
	bench_krayd_start_build(&head, flags);
	cfg.address = head.sock;
	if (kray_init(&k, &cfg))
		bench_die("connecting to the head", kray_init_errmsg());
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		bench_die("epoll_create1", strerror(errno));

	/* The baseline: the same tasks run by the head's own worker, no node joined yet. */
	rate(NULL, 0, NULL, window_s, &r->local_tps, &r->local_cpu_ms);
	usleep(200000);
	rss0 = rss_kb(head.pid);

	t0 = bench_now();
	for (unsigned i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &sims[i] };

		do
			if (getrandom(&sims[i].node, sizeof(sims[i].node), 0) != 4)
				bench_die("getrandom", strerror(errno));
		while (!sims[i].node);
		sims[i].busy = i % 10 == 0;
		strcpy(sims[i].res, SIM_RES);
		if (simnode_join(&sims[i], port, TOKEN, why, sizeof(why)))
			bench_die("a simulated node joining", why);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, sims[i].fd, &ev))
			bench_die("epoll_ctl", strerror(errno));
		/* Spread the heartbeats over the period, as nodes that joined at random. */
		sims[i].next_ms = now_ms() + (int64_t)((uint64_t)i * HEARTBEAT_MS / n);
	}
	r->join_ms = (bench_now() - t0) * 1000;
	run(sims, n, 1500); /* every node has reported once since */

	cpu0 = bench_proc_cpu_s(head.pid);
	rss1 = rss_kb(head.pid);
	bytes0 = st.view_bytes;
	reports0 = st.reports;
	t0 = bench_now();
	run(sims, n, (int64_t)(window_s * 1000));
	cpu1 = bench_proc_cpu_s(head.pid);
	r->n = n;
	r->cpu_pct = 100 * (cpu1 - cpu0) / (bench_now() - t0);
	r->cpu_us_per_report = 1e6 * (cpu1 - cpu0) / (double)(st.reports - reports0);
	r->view_bytes_per_report =
		(double)(st.view_bytes - bytes0) / (double)(st.reports - reports0);
	r->rss_kb_per_node = (rss1 - rss0) / n;

	/* The head routes tasks to them. */
	rate(sims, n, SIM_RES, window_s, &r->route_tps, &r->route_cpu_ms);
	r->nodes_used = 0;
	for (unsigned i = 0; i < n; i++)
		r->nodes_used += sims[i].answered > 0;

	/* One node's link closes: the head lists it dead. */
	close(sims[0].fd);
	r->detect_ms = wait_dead(k, sims[0].node);

	kray_shutdown(k);
	for (unsigned i = 1; i < n; i++)
		close(sims[i].fd);
	close(ep);
	ep = -1;
	free(sims);
	bench_krayd_stop(&head);
}

struct report {
	struct size_result r[MAX_SIZES];
	int n;
};

static void emit(FILE *f, void *arg)
{
	const struct report *rep = arg;

	fprintf(f, "{\"bench\": \"scale\", \"heartbeat_ms\": %d, \"batch\": %d, \"sizes\": [",
		HEARTBEAT_MS, BATCH);
	for (int i = 0; i < rep->n; i++) {
		const struct size_result *r = &rep->r[i];

		fprintf(f,
			"%s{\"nodes\": %u, \"head_cpu_pct\": %.2f, \"head_cpu_us_per_report\": "
			"%.1f, \"head_rss_kb_per_node\": %.1f, \"view_bytes_per_report\": %.0f, "
			"\"join_ms\": %.0f, \"routed_tasks_per_s\": %.0f, "
			"\"head_cpu_ms_per_1k_routed\": %.1f, \"nodes_used\": %u, "
			"\"local_tasks_per_s\": %.0f, \"head_cpu_ms_per_1k_local\": %.1f, "
			"\"detect_dead_ms\": %.1f}",
			i ? ", " : "", r->n, r->cpu_pct, r->cpu_us_per_report, r->rss_kb_per_node,
			r->view_bytes_per_report, r->join_ms, r->route_tps, r->route_cpu_ms,
			r->nodes_used, r->local_tps, r->local_cpu_ms, r->detect_ms);
	}
	fprintf(f, "]}\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	struct report rep = { 0 };
	unsigned sizes[MAX_SIZES] = { 100, 300, 1000 };
	int nsizes = 2;
	struct rlimit rl;

	bench_init("bench_scale");
	for (int i = 1; i < argc; i++) {
		if (bench_opt(argc, argv, &i, false, &o))
			continue;
		if (!strcmp(argv[i], "--full")) {
			nsizes = 3;
			continue;
		}
		if (!strcmp(argv[i], "--nodes") && i + 1 < argc) {
			char *s = argv[++i], *end;

			for (nsizes = 0; *s && nsizes < MAX_SIZES; s = *end ? end + 1 : end) {
				sizes[nsizes++] = (unsigned)strtoul(s, &end, 10);
				if (end == s || !sizes[nsizes - 1])
					bench_die("--nodes takes N[,N...]", NULL);
			}
			continue;
		}
		fprintf(stderr,
			"usage: bench_scale [--quick] [--full] [--json FILE] [--nodes N[,N...]]\n");
		return 2;
	}
	/* Sockets: ours and the head's (it inherits the limit). */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	atexit(cleanup);
	printf("bench_scale: a head and N simulated nodes on loopback, heartbeat %d ms, a "
	       "tenth of them busy; tasks of a driver on the head, %d at a time\n",
	       HEARTBEAT_MS, BATCH);
	printf("%6s %8s %8s %8s %8s %7s %9s %9s %6s %9s %9s %8s\n", "nodes", "head CPU%", "us/rep",
	       "KB/node", "B/report", "join ms", "routed/s", "ms/1k rt", "used", "local/s",
	       "ms/1k lc", "dead ms");
	for (int i = 0; i < nsizes; i++) {
		struct size_result *r = &rep.r[rep.n++];

		one_size(sizes[i], o.quick ? 1.0 : 3.0, r);
		printf("%6u %8.2f %8.1f %8.1f %8.0f %7.0f %9.0f %9.1f %6u %9.0f %9.1f %8.1f\n",
		       r->n, r->cpu_pct, r->cpu_us_per_report, r->rss_kb_per_node,
		       r->view_bytes_per_report, r->join_ms, r->route_tps, r->route_cpu_ms,
		       r->nodes_used, r->local_tps, r->local_cpu_ms, r->detect_ms);
		fflush(stdout);
	}
	bench_json_out(o.json_file, emit, &rep);
	return 0;
}
