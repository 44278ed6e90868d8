// SPDX-License-Identifier: Apache-2.0
/*
 * bench_cluster.c - the cluster (docs/cluster.md) on network namespaces, each figure next
 * to a baseline measured in the same run:
 *
 *   tcp_stream_gbps        the floor: a plain TCP stream of 1 GiB from node 1's namespace
 *                          to node 2's over the same veth/bridge, write(2) from a 1 GiB
 *                          buffer, read(2) into a pre-faulted 1 GiB buffer (no kray): the
 *                          bytes go memory to memory as the object's do
 *   tcp_hot_gbps           the same out of and into one 4 MiB buffer each: cache-hot, a
 *                          ceiling no object store reaches
 *   transfer_gbps          a 1 GiB object made on node 1 given as the argument of a task
 *                          that must run on node 2 (resources): the time from the call to
 *                          its result, i.e. the object streamed from node 1's memfd into a
 *                          new sealed memfd on node 2, the task, and the reply.  Each
 *                          round waits for node 2's pool to hold a pre-faulted memfd for
 *                          it (and reports the wait), so that no refill shares the CPUs
 *                          with a timed stream
 *   transfer_vs_tcp        transfer_gbps / tcp_stream_gbps (goal: >= 0.9), and the median
 *                          of the rounds' own ratios; transfer_vs_tcp_hot against the other
 *   transfer_cpu_s         both krayds' CPU per transfer (tcp_cpu_s: both TCP ends'): on
 *                          a shared machine steadier than the times
 *   rx_stall_ms            the receiving krayd's longest loop turn (kray_stats'
 *                          loop_stall_max_us, since it started: the transfers, its start and
 *                          its join all count) after the transfers
 *   rx_request_max_ms      the longest small request (a STATUS round trip from another
 *                          connection, every 0.5 ms) on the receiving krayd during two more
 *                          transfers after the timed ones: its loop keeps serving during a
 *                          1 GiB transfer
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_nodes.h"

#define GIB (1ul << 30)
#define MAX_ROUNDS 15
#define NTASKS 300
#define WATCHED 2 /* transfers with the receiver's loop watched */

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

/* CPU seconds (user and system) that process pid has used: all its threads, the
 * io_uring workers too. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	/* after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double rusage_s(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
	       (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

/* size bytes of memory, pre-faulted (in huge pages where the kernel gives them, as the
 * pool's memfds are): no page faults while it is written.  Dies without. */
static char *prefaulted(size_t size)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_die("mmap", NULL);
	madvise(p, size, MADV_HUGEPAGE);
	if (madvise(p, size, 23 /* MADV_POPULATE_WRITE */))
		memset(p, 0, size);
	return p;
}

/*
 * The plain TCP stream: node 1's namespace sends size bytes to node 2's, the way the
 * object goes.  whole: from the size bytes at src into size bytes of pre-faulted memory
 * (a 1 GiB buffer moved to another 1 GiB buffer, as the object is: every byte read and
 * written once in memory, none of it in the caches); otherwise out of and into one 4 MiB
 * buffer each (the bytes stay in the caches: a ceiling no object store reaches).  write(2)
 * and read(2) of up to 4 MiB.  Returns seconds; *cpu: the CPU seconds both ends used.
 */
static double tcp_stream(const char *src, size_t size, bool whole, double *cpu)
{
	struct rusage ru0, ru1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7100) };
	int ready[2], saved, fd;
	size_t chunk = 4u << 20;
	char *buf = whole ? NULL : malloc(chunk), c;
	double t0, t;
	pid_t srv;

	if ((!whole && !buf) || pipe(ready))
		bench_die("out of memory", NULL);
	if (buf)
		memset(buf, 0x5a, chunk);
	inet_pton(AF_INET, bench_net.addr[1], &sa.sin_addr);
	saved = netns_enter(bench_net.ns[1]);
	srv = fork();
	if (srv == 0) {
		int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), s;
		char *dst = whole ? prefaulted(size) : buf;
		size_t got = 0;
		struct rusage a, b;
		double used;

		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		s = accept(l, NULL, NULL);
		getrusage(RUSAGE_SELF, &a);
		while (got < size) {
			size_t want = size - got < chunk ? size - got : chunk;
			ssize_t n = read(s, whole ? dst + got : dst, want);

			if (n <= 0)
				_exit(1);
			got += (size_t)n;
		}
		getrusage(RUSAGE_SELF, &b);
		used = rusage_s(&b) - rusage_s(&a); /* (not the pre-fault) */
		if (write(ready[1], &used, sizeof(used)) != sizeof(used) || write(s, "d", 1) != 1)
			_exit(1);
		_exit(0);
	}
	netns_leave(saved);
	if (read(ready[0], &c, 1) != 1)
		bench_die("tcp server", NULL);
	saved = netns_enter(bench_net.ns[0]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	netns_leave(saved);
	getrusage(RUSAGE_THREAD, &ru0);
	t0 = bench_now();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		bench_die("tcp connect", NULL);
	for (size_t sent = 0; sent < size;) {
		size_t want = size - sent < chunk ? size - sent : chunk;
		ssize_t n = write(fd, whole ? src + sent : buf, want);

		if (n <= 0)
			bench_die("tcp write", NULL);
		sent += (size_t)n;
	}
	if (read(fd, &c, 1) != 1)
		bench_die("tcp ack", NULL);
	t = bench_now() - t0;
	getrusage(RUSAGE_THREAD, &ru1);
	close(fd);
	if (read(ready[0], cpu, sizeof(*cpu)) != sizeof(*cpu) || waitpid(srv, NULL, 0) != srv)
		bench_die("tcp server", NULL);
	*cpu += rusage_s(&ru1) - rusage_s(&ru0);
	close(ready[0]);
	close(ready[1]);
	free(buf);
	return t;
}

/* One cross-node transfer of the object ref to node 2.  Returns seconds; *cpu: the CPU
 * seconds both krayds used meanwhile. */
static double transfer(kray *k, kray_ref ref, size_t size, double *cpu)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value arg = KRAY_V_REF(ref), v;
	kray_ref r;
	double c0 = proc_cpu(bench_node[0].pid) + proc_cpu(bench_node[1].pid);
	double t0 = bench_now(), t;

	o.resources = "n2:1";
	if (kray_call(k, "bytes_len", &arg, 1, &o, &r) || kray_get(k, &r, 1, 120000, &v))
		bench_die(kray_errmsg(k), NULL);
	t = bench_now() - t0;
	*cpu = proc_cpu(bench_node[0].pid) + proc_cpu(bench_node[1].pid) - c0;
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
	double tcp[MAX_ROUNDS], xfer[MAX_ROUNDS], hot[MAX_ROUNDS]; /* GB/s */
	double tcp_cpu[MAX_ROUNDS], xfer_cpu[MAX_ROUNDS], hot_cpu[MAX_ROUNDS]; /* CPU s */
	double refill[MAX_ROUNDS]; /* seconds waited for node 2's pool before the round */
	double stall_ms, ping_ms; /* node 2's longest loop turn; longest small request */
};

/*
 * Waits (up to 30 s) until node 2's pool holds a pre-faulted memfd for the next 1 GiB
 * object, so that neither the TCP stream nor the transfer shares the CPUs with the pool's
 * refill of the last one (on this VM clearing 1 GiB of memory the host took back costs
 * 1-2.5 s of CPU, more than the transfer).  Returns the seconds waited (-1: it did not
 * refill; the round runs anyway, the receiver faulting its pages in).
 */
static double wait_pool(kray *k2, uint64_t bytes)
{
	double t0 = bench_now();
	struct kray_stats st;

	for (;;) {
		if (kray_status(k2, &st))
			bench_die("kray_status", kray_errmsg(k2));
		if (st.pool_bytes >= bytes)
			return bench_now() - t0;
		if (bench_now() - t0 > 30)
			return -1;
		usleep(20000);
	}
}

/* 1 GiB from node 1 to node 2, and the plain TCP stream between the same two namespaces,
 * alternated so that noise hits both; node 2's loop watched meanwhile. */
static void transfers(kray *k, int rounds, struct xfer_figs *f)
{
	struct pinger p = { .k = bench_node_connect(1) };
	kray *k2 = bench_node_connect(1); /* (the pinger's connection is its thread's) */
	struct kray_stats st;
	double st_cpu;
	pthread_t th;
	kray_ref big;
	void *data;
	char *src = prefaulted(GIB); /* the TCP stream's 1 GiB */

	memset(src, 0xa5, GIB);
	if (kray_create(k, GIB, &big, &data))
		bench_die(kray_errmsg(k), NULL);
	memset(data, 0xa5, GIB);
	if (kray_seal(k, &big))
		bench_die(kray_errmsg(k), NULL);
	transfer(k, big, GIB, &st_cpu); /* warm-up: node 2's workers and pool */
	for (int r = 0; r < rounds; r++) {
		f->refill[r] = wait_pool(k2, GIB);
		f->tcp[r] = GIB / tcp_stream(src, GIB, true, &f->tcp_cpu[r]) / 1e9;
		f->xfer[r] = GIB / transfer(k, big, GIB, &f->xfer_cpu[r]) / 1e9;
		f->hot[r] = GIB / tcp_stream(src, GIB, false, &f->hot_cpu[r]) / 1e9;
		printf("  round %d: tcp %.2f GB/s, kray %.2f GB/s (%.0f%%), tcp 4 MiB buffers "
		       "%.2f GB/s; CPU s: %.2f, %.2f, %.2f; waited %.2f s for the pool\n",
		       r + 1, f->tcp[r], f->xfer[r], 100 * f->xfer[r] / f->tcp[r], f->hot[r],
		       f->tcp_cpu[r], f->xfer_cpu[r], f->hot_cpu[r], f->refill[r]);
	}
	/* The receiver's loop watched during WATCHED more transfers (not timed: the probe's
	 * requests, every 0.5 ms, take the receiver's loop turns that the stream wants). */
	if (pthread_create(&th, NULL, ping, &p))
		bench_die("pthread_create", NULL);
	for (int r = 0; r < WATCHED; r++) {
		wait_pool(k2, GIB);
		transfer(k, big, GIB, &st_cpu);
	}
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	if (kray_status(p.k, &st))
		bench_die("kray_status", kray_errmsg(p.k));
	f->stall_ms = st.loop_stall_max_us / 1000.0;
	f->ping_ms = p.max_s * 1000;
	kray_shutdown(p.k);
	kray_shutdown(k2);
	kray_release(k, &big, 1);
	munmap(src, GIB);
}

/* The median of the rounds' own ratios (each transfer against the stream just before it):
 * steadier than the ratio of the medians when the machine's load swings.  hot: against
 * the stream of 4 MiB buffers. */
static double ratio_median(const struct xfer_figs *f, int rounds, bool hot)
{
	double r[MAX_ROUNDS];

	for (int i = 0; i < rounds; i++)
		r[i] = f->xfer[i] / (hot ? f->hot[i] : f->tcp[i]);
	return bench_median(r, (size_t)rounds);
}

static void print_transfers(const struct xfer_figs *f, int rounds)
{
	size_t n = (size_t)rounds;
	double mt = bench_median_of(f->tcp, n), mx = bench_median_of(f->xfer, n);

	printf("  %-24s %10.2f GB/s   (baseline: plain TCP between the namespaces, 1 GiB "
	       "buffer to 1 GiB buffer)\n",
	       "tcp_stream_gbps", mt);
	printf("  %-24s %10.2f GB/s   %.0f%% of the TCP stream (goal 90%%)\n",
	       "transfer_gbps (1 GiB)", mx, 100 * mx / mt);
	printf("  %-24s %10.0f %%      (median of the rounds' own ratios)\n",
	       "transfer_vs_tcp_rounds", 100 * ratio_median(f, rounds, false));
	printf("  %-24s %10.2f GB/s   (TCP out of and into one 4 MiB buffer: cache-hot)\n",
	       "tcp_hot_gbps", bench_median_of(f->hot, n));
	printf("  %-24s %10.0f %%      (median of the rounds' ratios to it)\n",
	       "transfer_vs_tcp_hot", 100 * ratio_median(f, rounds, true));
	printf("  %-24s %10.2f s      (both krayds' CPU per transfer; TCP's two ends: %.2f s)\n",
	       "transfer_cpu_s", bench_median_of(f->xfer_cpu, n), bench_median_of(f->tcp_cpu, n));
	printf("  %-24s %10.1f ms     (receiver's longest loop turn since it started)\n",
	       "rx_stall_ms", f->stall_ms);
	printf("  %-24s %10.1f ms     (longest small request to the receiver during %d more "
	       "transfers)\n",
	       "rx_request_max_ms", f->ping_ms, WATCHED);
}

/* The transfer figures as JSON members (no braces). */
static void json_transfers(FILE *out, const struct xfer_figs *f, int rounds)
{
	size_t n = (size_t)rounds;
	double mt = bench_median_of(f->tcp, n), mx = bench_median_of(f->xfer, n);

	fprintf(out,
		"\"tcp_stream_gbps\":%.3f,\"transfer_gbps\":%.3f,\"transfer_vs_tcp\":%.3f,"
		"\"transfer_vs_tcp_rounds\":%.3f,\"tcp_hot_gbps\":%.3f,"
		"\"transfer_vs_tcp_hot\":%.3f,\"transfer_cpu_s\":%.3f,\"tcp_cpu_s\":%.3f,"
		"\"rx_stall_ms\":%.1f,\"rx_request_max_ms\":%.1f",
		mt, mx, mx / mt, ratio_median(f, rounds, false), bench_median_of(f->hot, n),
		ratio_median(f, rounds, true), bench_median_of(f->xfer_cpu, n),
		bench_median_of(f->tcp_cpu, n), f->stall_ms, f->ping_ms);
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

		printf("bench_cluster --transfer (medians of %d; 2 nodes in network namespaces)\n",
		       rounds);
		print_transfers(&xf, rounds);
		FILE *f = json_file ? fopen(json_file, "w") : stdout;

		if (f) {
			fprintf(f, "{\"bench\":\"cluster_transfer\",\"rounds\":%d,", rounds);
			json_transfers(f, &xf, rounds);
			fprintf(f, "}\n");
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
	double m1 = bench_median(one, nr);
	double m3 = bench_median(three, nr), mh = bench_median(hung, nr);
	double m1s = bench_median(one1, nr), m16 = bench_median(all16, nr);

	printf("bench_cluster (medians of %d; 3 nodes in network namespaces on one machine)\n",
	       rounds);
	print_transfers(&xf, rounds);
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
		fprintf(f, "{\"bench\":\"cluster\",\"rounds\":%d,", rounds);
		json_transfers(f, &xf, rounds);
		fprintf(f,
			",\"tasks_per_s_1node\":%.1f,\"tasks_per_s_3nodes\":%.1f,"
			"\"detect_dead_hung_ms\":%.1f,\"detect_dead_killed_ms\":%.1f,"
			"\"tasks_per_s_1slot\":%.1f,\"tasks_per_s_16nodes\":%.1f,"
			"\"x16_vs_1\":%.2f}\n",
			m1, m3, mh, killed, m1s, m16, m16 / m1s);
		if (f != stdout)
			fclose(f);
	}
	return 0;
}
