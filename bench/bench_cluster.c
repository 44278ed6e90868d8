// SPDX-License-Identifier: Apache-2.0
/*
 * bench_cluster.c - the cluster (docs/cluster.md) on network namespaces, each figure next
 * to a baseline measured in the same run:
 *
 *   tcp_stream_gbps        the floor: a plain TCP stream of 1 GiB from node 2's namespace
 *                          to node 1's over the same veth/bridge (write(2) of a mapped
 *                          buffer, read(2) into one; no kray)
 *   transfer_gbps          a 1 GiB object made on node 1 given as the argument of a task
 *                          that must run on node 2 (resources): the time from the call to
 *                          its result, i.e. the object streamed from node 1's memfd into a
 *                          new sealed memfd on node 2, the task, and the reply
 *   transfer_vs_tcp        transfer_gbps / tcp_stream_gbps (goal: >= 0.9)
 *   rx_stall_ms            the receiving krayd's longest loop turn (kray_stats'
 *                          loop_stall_max_us, since it started: the transfers, its start and
 *                          its join all count) after the transfers
 *   rx_request_max_ms      the longest small request (a STATUS round trip from another
 *                          connection, one after another) on the receiving krayd while the
 *                          transfers ran: its loop keeps serving during a 1 GiB transfer
 *   tasks_per_s_1node      300 tasks of sleep_where(10 ms) from a driver on the head,
 *                          with the head alone (2 CPU slots)
 *   tasks_per_s_3nodes     the same once two more nodes (2 slots each) have joined: tasks
 *                          that would wait spill to them.  The tasks sleep rather than
 *                          compute because the three nodes share this machine's CPUs.
 *   detect_dead_hung_ms    a node stopped (SIGSTOP: no heartbeats, no reset) until the
 *                          head lists it DEAD; heartbeat-ms 100, node-timeout-ms 1000
 *   detect_dead_killed_ms  a node killed (SIGKILL: the kernel resets its links) until the
 *                          head lists it DEAD
 *   tasks_per_s_1slot      then 16 namespaces: 200 tasks of sleep_where(10 ms) on the head
 *                          alone, with one CPU slot
 *   tasks_per_s_16nodes    3,200 of them once 15 more nodes of one slot have joined
 *                          (goal: >= 14x the one-slot node)
 *
 * Medians of 5 rounds (--quick: 1); every round is printed too, since both transfers
 * swing by a factor of two on a shared 2-vCPU VM.  GB is 10^9 bytes.  Needs root (network
 * namespaces); prints why and exits 0 without.  Removes its namespaces and krayds.
 * --transfer measures the transfer figures only (two nodes; --rounds N of them, at most
 * MAX_ROUNDS).
 *
 *	bench_cluster [--quick] [--transfer] [--rounds N] [--json FILE]
 */
#include <kray/kray.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_nodes.h"

#define GIB (1ul << 30)
#define MAX_ROUNDS 15
#define NTASKS 300

/* Starts node i's krayd in its namespace with cpus CPU slots and a pool of pool bytes,
 * and waits for it to serve. */
static void start_node_with(int i, const char *res, const char *cpus, const char *pool)
{
	const char *const flags[] = {
		"--num-cpus",
		cpus,
		"--store-size",
		"3G",
		/* Room in the pool for a pre-faulted 1 GiB memfd, as on a node that receives
		 * large objects (docs/objects.md): the object a transfer writes is fresh
		 * memory otherwise, at page-fault speed. */
		"--pool-size",
		pool,
		"--resources",
		res,
		"--heartbeat-ms",
		"100",
		"--node-timeout-ms",
		"1000",
		NULL,
	};

	bench_node_start(i, flags);
}

static void start_node(int i, const char *res)
{
	start_node_with(i, res, "2", getenv("BENCH_POOL") ? getenv("BENCH_POOL") : "1100M");
}

/* Milliseconds until the head lists alive/dead nodes (polling every 5 ms). */
static double wait_nodes(kray *k, int alive, int dead)
{
	double t0 = bench_now();

	while (bench_now() - t0 < 20) {
		if (bench_nodes_count(k, " ALIVE ") == alive &&
		    bench_nodes_count(k, " DEAD ") == dead)
			return (bench_now() - t0) * 1000;
		usleep(5000);
	}
	bench_die("nodes did not reach the expected state in 20 s", NULL);
	return -1;
}

/* The plain TCP stream: node 2 sends size bytes to node 1.  Returns seconds. */
static double tcp_stream(size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7100) };
	int ready[2], saved, fd;
	size_t chunk = 4u << 20;
	char *buf = malloc(chunk), c;
	double t0, t;
	pid_t srv;

	if (!buf || pipe(ready))
		bench_die("out of memory", NULL);
	memset(buf, 0x5a, chunk);
	inet_pton(AF_INET, bench_net.addr[0], &sa.sin_addr);
	saved = netns_enter(bench_net.ns[0]);
	srv = fork();
	if (srv == 0) {
		int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), s;
		size_t got = 0;

		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		s = accept(l, NULL, NULL);
		while (got < size) {
			ssize_t n = read(s, buf, chunk);

			if (n <= 0)
				_exit(1);
			got += (size_t)n;
		}
		if (write(s, "d", 1) != 1)
			_exit(1);
		_exit(0);
	}
	netns_leave(saved);
	if (read(ready[0], &c, 1) != 1)
		bench_die("tcp server", NULL);
	saved = netns_enter(bench_net.ns[1]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	netns_leave(saved);
	t0 = bench_now();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		bench_die("tcp connect", NULL);
	for (size_t sent = 0; sent < size;) {
		ssize_t n = write(fd, buf, size - sent < chunk ? size - sent : chunk);

		if (n <= 0)
			bench_die("tcp write", NULL);
		sent += (size_t)n;
	}
	if (read(fd, &c, 1) != 1)
		bench_die("tcp ack", NULL);
	t = bench_now() - t0;
	close(fd);
	waitpid(srv, NULL, 0);
	close(ready[0]);
	close(ready[1]);
	free(buf);
	return t;
}

/* One cross-node transfer of the object ref to node 2.  Returns seconds. */
static double transfer(kray *k, kray_ref ref, size_t size)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value arg = KRAY_V_REF(ref), v;
	kray_ref r;
	double t0 = bench_now(), t;

	o.resources = "n2:1";
	if (kray_call(k, "bytes_len", &arg, 1, &o, &r) || kray_get(k, &r, 1, 120000, &v))
		bench_die(kray_errmsg(k), NULL);
	t = bench_now() - t0;
	if (v.type != KRAY_INT64 || (size_t)v.i != size)
		bench_die("the transfer came back wrong", NULL);
	kray_release(k, &r, 1);
	return t;
}

/* Small requests to a krayd, one after another, while a transfer runs: the longest. */
struct pinger {
	kray *k;
	int stop;
	double max_s;
	unsigned long n;
};

static void *ping(void *arg)
{
	struct pinger *p = arg;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		struct kray_stats st;
		double t0 = bench_now(), dt;

		if (kray_status(p->k, &st))
			bench_die("kray_status", kray_errmsg(p->k));
		dt = bench_now() - t0;
		p->n++;
		if (dt > p->max_s)
			p->max_s = dt;
		usleep(500);
	}
	return NULL;
}

struct xfer_figs {
	double tcp[MAX_ROUNDS], xfer[MAX_ROUNDS];
	double stall_ms, ping_ms; /* node 2's longest loop turn; longest small request */
};

/* 1 GiB from node 1 to node 2, and the plain TCP stream between the same two namespaces,
 * alternated so that noise hits both; node 2's loop watched meanwhile. */
static void transfers(kray *k, int rounds, struct xfer_figs *f)
{
	struct pinger p = { .k = bench_node_connect(1) };
	struct kray_stats st;
	pthread_t th;
	kray_ref big;
	void *data;

	if (kray_create(k, GIB, &big, &data))
		bench_die(kray_errmsg(k), NULL);
	memset(data, 0xa5, GIB);
	if (kray_seal(k, &big))
		bench_die(kray_errmsg(k), NULL);
	transfer(k, big, GIB); /* warm-up: node 2's workers and pool */
	if (pthread_create(&th, NULL, ping, &p))
		bench_die("pthread_create", NULL);
	for (int r = 0; r < rounds; r++) {
		f->tcp[r] = GIB / tcp_stream(GIB) / 1e9;
		f->xfer[r] = GIB / transfer(k, big, GIB) / 1e9;
		printf("  round %d: tcp %.2f GB/s, kray %.2f GB/s (%.0f%%)\n", r + 1, f->tcp[r],
		       f->xfer[r], 100 * f->xfer[r] / f->tcp[r]);
	}
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	if (kray_status(p.k, &st))
		bench_die("kray_status", kray_errmsg(p.k));
	f->stall_ms = st.loop_stall_max_us / 1000.0;
	f->ping_ms = p.max_s * 1000;
	kray_shutdown(p.k);
	kray_release(k, &big, 1);
}

/* The median of the rounds' own ratios (each transfer against the stream just before it):
 * steadier than the ratio of the medians when the machine's load swings. */
static double ratio_median(const struct xfer_figs *f, int rounds)
{
	double r[MAX_ROUNDS];

	for (int i = 0; i < rounds; i++)
		r[i] = f->xfer[i] / f->tcp[i];
	return bench_median(r, (size_t)rounds);
}

static void print_transfers(const struct xfer_figs *f, int rounds, double mt, double mx)
{
	printf("  %-24s %10.2f GB/s   (baseline: plain TCP between the namespaces)\n",
	       "tcp_stream_gbps", mt);
	printf("  %-24s %10.2f GB/s   %.0f%% of the TCP stream (goal 90%%)\n",
	       "transfer_gbps (1 GiB)", mx, 100 * mx / mt);
	printf("  %-24s %10.0f %%      (median of the rounds' own ratios)\n",
	       "transfer_vs_tcp_rounds", 100 * ratio_median(f, rounds));
	printf("  %-24s %10.1f ms     (receiver's longest loop turn since it started)\n",
	       "rx_stall_ms", f->stall_ms);
	printf("  %-24s %10.1f ms     (longest small request to the receiver meanwhile)\n",
	       "rx_request_max_ms", f->ping_ms);
}

/* n tasks of sleep_where(10 ms) from k, all at once; returns tasks per second. */
static double tasks_per_s_n(kray *k, int n)
{
	kray_ref *r = calloc((size_t)n, sizeof(*r));
	kray_value ms = KRAY_V_INT(10), *v = calloc((size_t)n, sizeof(*v));
	double t0 = bench_now();

	if (!r || !v)
		bench_die("out of memory", NULL);
	for (int i = 0; i < n; i++)
		if (kray_call(k, "sleep_where", &ms, 1, NULL, &r[i]))
			bench_die(kray_errmsg(k), NULL);
	if (kray_get(k, r, (size_t)n, 120000, v))
		bench_die(kray_errmsg(k), NULL);
	double t = bench_now() - t0;

	for (int i = 0; i < n; i++)
		kray_value_clear(&v[i]);
	kray_release(k, r, (size_t)n);
	free(r);
	free(v);
	return n / t;
}

static double tasks_per_s(kray *k)
{
	return tasks_per_s_n(k, NTASKS);
}

/* 16 nodes of one CPU slot each (issue 19) against the head alone with one slot. */
static void sixteen(int rounds, double *one, double *all)
{
	char why[128];
	kray *k;

	bench_nodes_cleanup();
	if (bench_nodes_up(16, why, sizeof(why)))
		bench_die("16 network namespaces", why);
	start_node_with(0, "", "1", "0");
	k = bench_node_connect(0);
	wait_nodes(k, 1, 0);
	tasks_per_s_n(k, 50); /* warm-up */
	for (int r = 0; r < rounds; r++)
		one[r] = tasks_per_s_n(k, 200);
	for (int i = 1; i < 16; i++)
		start_node_with(i, "", "1", "0");
	wait_nodes(k, 16, 0);
	tasks_per_s_n(k, 1600);
	for (int r = 0; r < rounds; r++)
		all[r] = tasks_per_s_n(k, 3200);
	kray_shutdown(k);
}

int main(int argc, char **argv)
{
	const char *json_file = NULL;
	int rounds = 5;
	double one[MAX_ROUNDS], three[MAX_ROUNDS];
	double hung[MAX_ROUNDS], killed, one1[MAX_ROUNDS], all16[MAX_ROUNDS];
	static struct xfer_figs xf;
	bool only_transfer = false;
	char why[128];
	kray *k;

	bench_init("bench_cluster");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			rounds = 1;
		else if (!strcmp(argv[i], "--transfer"))
			only_transfer = true;
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json_file = argv[++i];
		else
			bench_die("usage: bench_cluster [--quick] [--transfer] [--rounds N] "
				  "[--json FILE]",
				  NULL);
	}
	if (rounds < 1 || rounds > MAX_ROUNDS)
		bench_die("--rounds: 1 to 15", NULL);
	if (bench_nodes_up(only_transfer ? 2 : 3, why, sizeof(why))) {
		printf("bench_cluster: skipped: %s\n", why);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (only_transfer) {
		start_node(0, "n1:1");
		start_node(1, "n2:1");
		k = bench_node_connect(0);
		wait_nodes(k, 2, 0);
		transfers(k, rounds, &xf);
		kray_shutdown(k);

		double mt = bench_median_of(xf.tcp, (size_t)rounds);
		double mx = bench_median_of(xf.xfer, (size_t)rounds);

		printf("bench_cluster --transfer (medians of %d; 2 nodes in network namespaces)\n",
		       rounds);
		print_transfers(&xf, rounds, mt, mx);
		FILE *f = json_file ? fopen(json_file, "w") : stdout;

		if (f) {
			fprintf(f,
				"{\"bench\":\"cluster_transfer\",\"rounds\":%d,"
				"\"tcp_stream_gbps\":%.3f,\"transfer_gbps\":%.3f,"
				"\"transfer_vs_tcp\":%.3f,\"transfer_vs_tcp_rounds\":%.3f,"
				"\"rx_stall_ms\":%.1f,\"rx_request_max_ms\":%.1f}\n",
				rounds, mt, mx, mx / mt, ratio_median(&xf, rounds), xf.stall_ms,
				xf.ping_ms);
			if (f != stdout)
				fclose(f);
		}
		return 0;
	}

	/* The head alone first: tasks/s on one node. */
	start_node(0, "n1:1");
	k = bench_node_connect(0);
	wait_nodes(k, 1, 0);
	tasks_per_s(k); /* warm-up: workers started */
	for (int r = 0; r < rounds; r++)
		one[r] = tasks_per_s(k);

	start_node(1, "n2:1");
	start_node(2, "n3:1");
	wait_nodes(k, 3, 0);
	tasks_per_s(k);
	for (int r = 0; r < rounds; r++)
		three[r] = tasks_per_s(k);

	transfers(k, rounds, &xf);

	/* Dead-node detection. */
	for (int r = 0; r < rounds; r++) {
		kill(bench_node[2].pid, SIGSTOP);
		hung[r] = wait_nodes(k, 2, 1);
		kill(bench_node[2].pid, SIGCONT);
		wait_nodes(k, 3, 0);
	}
	kill(bench_node[2].pid, SIGKILL);
	killed = wait_nodes(k, 2, 1);
	waitpid(bench_node[2].pid, NULL, 0);
	bench_node[2].pid = 0;
	kray_shutdown(k);
	sixteen(rounds, one1, all16);

	size_t nr = (size_t)rounds;
	double mt = bench_median_of(xf.tcp, nr), mx = bench_median_of(xf.xfer, nr);
	double m1 = bench_median(one, nr);
	double m3 = bench_median(three, nr), mh = bench_median(hung, nr);
	double m1s = bench_median(one1, nr), m16 = bench_median(all16, nr);

	printf("bench_cluster (medians of %d; 3 nodes in network namespaces on one machine)\n",
	       rounds);
	print_transfers(&xf, rounds, mt, mx);
	printf("  %-24s %10.0f /s\n", "tasks_per_s_1node", m1);
	printf("  %-24s %10.0f /s     x%.2f of one node\n", "tasks_per_s_3nodes", m3, m3 / m1);
	printf("  %-24s %10.0f ms     (node-timeout-ms 1000, heartbeat-ms 100)\n",
	       "detect_dead_hung_ms", mh);
	printf("  %-24s %10.0f ms     (the link reset says it at once)\n", "detect_dead_killed_ms",
	       killed);
	printf("  %-24s %10.0f /s     (one node, one CPU slot)\n", "tasks_per_s_1slot", m1s);
	printf("  %-24s %10.0f /s     x%.2f of one node (goal 14x)\n", "tasks_per_s_16nodes", m16,
	       m16 / m1s);
	FILE *f = json_file ? fopen(json_file, "w") : stdout;

	if (f) {
		fprintf(f,
			"{\"bench\":\"cluster\",\"rounds\":%d,\"tcp_stream_gbps\":%.3f,"
			"\"transfer_gbps\":%.3f,\"transfer_vs_tcp\":%.3f,"
			"\"transfer_vs_tcp_rounds\":%.3f,"
			"\"rx_stall_ms\":%.1f,\"rx_request_max_ms\":%.1f,"
			"\"tasks_per_s_1node\":%.1f,\"tasks_per_s_3nodes\":%.1f,"
			"\"detect_dead_hung_ms\":%.1f,\"detect_dead_killed_ms\":%.1f,"
			"\"tasks_per_s_1slot\":%.1f,\"tasks_per_s_16nodes\":%.1f,"
			"\"x16_vs_1\":%.2f}\n",
			rounds, mt, mx, mx / mt, ratio_median(&xf, rounds), xf.stall_ms, xf.ping_ms,
			m1, m3, mh, killed, m1s, m16, m16 / m1s);
		if (f != stdout)
			fclose(f);
	}
	return 0;
}
