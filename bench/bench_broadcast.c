// SPDX-License-Identifier: Apache-2.0
/*
 * bench_broadcast.c - one large object to many nodes (issue 19, docs/cluster.md "Objects
 * between any two nodes"), in network namespaces on one machine: node 1 (the head) puts a
 * 256 MiB object (--quick: 32 MiB; --size N[K|M|G]) and calls bytes_sum(obj) on each of
 * the other N-1 nodes at once (N = 9, --quick 5; --nodes N), and each node says how many
 * object bytes it sent to the others (LIST_NODES "object bytes with node ...").
 *
 *   direct    direct-pull = 1 (the default): the owner names a holder for each task's
 *             node, and nodes that have (or are receiving) a copy serve the later ones
 *   relay     the baseline, same run: direct-pull = 0, the owner sends every copy itself
 *   tcp       the other baseline, same run: no kray, one sender - node 1's namespace sends
 *             the same bytes (from one buffer in memory) over N-1 plain TCP connections at
 *             once, one process per stream, to a process in each receiver's namespace that
 *             reads them into a 4 MiB buffer it reuses (so less memory work than a kray
 *             receiver, which writes a whole copy) and answers one byte at the end
 *
 * Printed per mode: the seconds from the calls (tcp: the first byte sent) to the last
 * result (tcp: the last receiver's answer), median of the rounds; for the kray modes the
 * most bytes any one node sent, the owner's bytes, and every node's bytes; and the ratio
 * direct / tcp (the goal: below 1, receivers serving each other beat one sender).  On one
 * machine the veths share its CPUs and memory bandwidth, so the time says little about a
 * real network, where what counts is what leaves each node (the owner's link is the
 * bottleneck of the relay and of the single TCP sender).  Needs root; prints why and exits
 * 0 without.
 *
 *	bench_broadcast [--quick] [--nodes N] [--size N[K|M|G]] [--json FILE]
 */
#include <kray/kray.h>

#include <inttypes.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_nodes.h"

#define MAX_ROUNDS 3
#define TCP_PORT 7100

static int nnodes = 9;

static void stop_all(void)
{
	for (int i = 0; i < NETNS_MAX; i++)
		bench_node_stop(i);
}

static void start_node(int i, const char *direct)
{
	char res[16];

	snprintf(res, sizeof(res), "n%d:1", i + 1);
	const char *const flags[] = { "--num-cpus",
				      "1",
				      "--store-size",
				      "2G",
				      "--resources",
				      res,
				      "--heartbeat-ms",
				      "100",
				      "--node-timeout-ms",
				      "2000",
				      "--bpf",
				      "off",
				      "--direct-pull",
				      direct,
				      NULL };

	bench_node_start(i, flags);
}

/* Node i's object bytes sent to other nodes so far. */
static uint64_t sent_by(int i)
{
	kray *k = bench_node_connect(i);
	char *text = NULL;
	const char *key = "object bytes with node ";
	uint64_t sum = 0;

	if (kray_describe_nodes(k, &text))
		bench_die("describe nodes", NULL);
	for (char *p = text; (p = strstr(p, key)); p++) {
		unsigned long long s, r;

		if (sscanf(p + strlen(key), "%*x: %llu sent, %llu received", &s, &r) == 2)
			sum += s;
	}
	free(text);
	kray_shutdown(k);
	return sum;
}

struct mode {
	const char *name;
	double secs[MAX_ROUNDS];
	double med_s, max_sent_mib, owner_mib;
	double node_mib[NETNS_MAX];
};

/* One cluster with direct-pull = direct; rounds broadcasts of size bytes. */
static void run(struct mode *m, const char *direct, size_t size, int rounds)
{
	uint64_t before[NETNS_MAX], after[NETNS_MAX], top = 0;
	kray_ref x, r[NETNS_MAX];
	kray_value v[NETNS_MAX];
	kray *k;
	void *data;

	for (int i = 0; i < nnodes; i++)
		start_node(i, direct);
	k = bench_node_connect(0);
	bench_nodes_wait_alive(k, nnodes);
	if (kray_create(k, size, &x, &data))
		bench_die(kray_errmsg(k), NULL);
	for (size_t i = 0; i < size; i++)
		((uint8_t *)data)[i] = (uint8_t)(i * 131 + (i >> 12));
	if (kray_seal(k, &x))
		bench_die(kray_errmsg(k), NULL);
	for (int i = 0; i < nnodes; i++)
		before[i] = sent_by(i);
	for (int round = 0; round < rounds; round++) {
		double s = bench_now();

		for (int i = 1; i < nnodes; i++) {
			struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
			kray_value a[2] = { KRAY_V_REF(x), KRAY_V_INT(0) };
			char res[16];

			snprintf(res, sizeof(res), "n%d:1", i + 1);
			o.resources = res;
			if (kray_call(k, "bytes_sum", a, 2, &o, &r[i]))
				bench_die(kray_errmsg(k), NULL);
		}
		if (kray_get(k, &r[1], (size_t)nnodes - 1, 300000, &v[1]))
			bench_die(kray_errmsg(k), NULL);
		m->secs[round] = bench_now() - s;
		for (int i = 2; i < nnodes; i++)
			if (v[i].type != KRAY_INT64 || v[i].i != v[1].i)
				bench_die("a node computed another checksum", NULL);
		kray_release(k, &r[1], (size_t)nnodes - 1);
		printf("  %s round %d: %.2f s\n", m->name, round + 1, m->secs[round]);
	}
	for (int i = 0; i < nnodes; i++) {
		after[i] = sent_by(i);
		m->node_mib[i] = (double)(after[i] - before[i]) / rounds / (1 << 20);
		if (after[i] - before[i] > top)
			top = after[i] - before[i];
	}
	m->owner_mib = m->node_mib[0];
	m->max_sent_mib = (double)top / rounds / (1 << 20);
	m->med_s = bench_median_of(m->secs, (size_t)rounds);
	kray_release(k, &x, 1);
	kray_shutdown(k);
	stop_all();
}

/* ---- the plain TCP baseline ---------------------------------------------------------- */

static void die_child(const char *what)
{
	perror(what);
	_exit(2);
}

/* In node i's namespace: takes one connection on TCP_PORT, reads size bytes, answers one
 * byte.  Says it listens by a byte on ready. */
static pid_t tcp_receiver(int i, size_t size, int ready)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(TCP_PORT) };
	size_t got = 0, cap = 4u << 20;
	char *buf = malloc(cap), ok = 1;
	int one = 1, l, c;

	if (!buf || netns_enter(bench_net.ns[i]) < 0)
		die_child("receiver setup");
	inet_pton(AF_INET, bench_net.addr[i], &sa.sin_addr);
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1))
		die_child("receiver listen");
	if (write(ready, &ok, 1) != 1)
		die_child("receiver ready");
	c = accept(l, NULL, NULL);
	if (c < 0)
		die_child("accept");
	while (got < size) {
		ssize_t n = read(c, buf, cap < size - got ? cap : size - got);

		if (n <= 0)
			die_child("receiver read");
		got += (size_t)n;
	}
	if (write(c, &ok, 1) != 1)
		die_child("receiver answer");
	_exit(0);
}

/* In node 1's namespace: connects to node i, says so on ready, waits for go to close,
 * sends size bytes of buf and waits for the answer. */
static pid_t tcp_sender(int i, const char *buf, size_t size, int ready, const int go[2])
{
	pid_t pid = fork();

	if (pid)
		return pid;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(TCP_PORT) };
	size_t sent = 0;
	char ok = 1;
	int c;

	close(go[1]); /* the parent's close is the go */
	if (netns_enter(bench_net.ns[0]) < 0)
		die_child("sender setns");
	inet_pton(AF_INET, bench_net.addr[i], &sa.sin_addr);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)))
		die_child("sender connect");
	if (write(ready, &ok, 1) != 1 || read(go[0], &ok, 1) != 0)
		die_child("sender go");
	while (sent < size) {
		ssize_t n = write(c, buf + sent, size - sent);

		if (n <= 0)
			die_child("sender write");
		sent += (size_t)n;
	}
	if (read(c, &ok, 1) != 1)
		die_child("sender answer");
	_exit(0);
}

static void tcp_reap(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			bench_die("a TCP stream failed", NULL);
	}
}

/* One sender, nnodes - 1 streams of size bytes at once; rounds times. */
static void run_tcp(double *secs, size_t size, int rounds)
{
	int n = nnodes - 1;
	pid_t recv[NETNS_MAX], send[NETNS_MAX];
	char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char c;

	if (buf == MAP_FAILED)
		bench_die("mmap", NULL);
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(i * 131 + (i >> 12));
	for (int round = 0; round < rounds; round++) {
		int ready[2], go[2];
		double s;

		if (pipe(ready))
			bench_die("pipe", NULL);
		for (int i = 0; i < n; i++)
			recv[i] = tcp_receiver(i + 1, size, ready[1]);
		if (pipe(go)) /* after the receivers, which must not hold it open */
			bench_die("pipe", NULL);
		for (int i = 0; i < n; i++)
			if (read(ready[0], &c, 1) != 1)
				bench_die("a TCP receiver did not start", NULL);
		for (int i = 0; i < n; i++)
			send[i] = tcp_sender(i + 1, buf, size, ready[1], go);
		for (int i = 0; i < n; i++)
			if (read(ready[0], &c, 1) != 1)
				bench_die("a TCP sender did not connect", NULL);
		s = bench_now();
		close(go[1]);
		tcp_reap(send, n);
		secs[round] = bench_now() - s;
		tcp_reap(recv, n);
		close(go[0]);
		close(ready[0]);
		close(ready[1]);
		printf("  tcp round %d: %.2f s\n", round + 1, secs[round]);
	}
	munmap(buf, size);
}

/* Parses N[K|M|G] (bytes). */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end || !v || v > (8ull << 30))
		bench_die("--size: N[K|M|G], 1 byte to 8 GiB", NULL);
	return (size_t)v;
}

static double tcp_secs[MAX_ROUNDS], tcp_med_s;

static struct mode modes[2] = { { .name = "direct" }, { .name = "relay" } };
static size_t obj_size;
static int nrounds;

static void emit(FILE *f, void *arg)
{
	(void)arg;
	fprintf(f, "{\"bench\":\"broadcast\",\"nodes\":%d,\"object_mib\":%zu,\"rounds\":%d", nnodes,
		obj_size >> 20, nrounds);
	for (int m = 0; m < 2; m++) {
		fprintf(f,
			",\"%s\":{\"seconds\":%.3f,\"max_node_sent_mib\":%.1f,\"owner_sent_mib\":%."
			"1f,",
			modes[m].name, modes[m].med_s, modes[m].max_sent_mib, modes[m].owner_mib);
		bench_json_array(f, "node_sent_mib", modes[m].node_mib, nnodes);
		fprintf(f, "}");
	}
	fprintf(f, ",\"tcp\":{\"seconds\":%.3f,\"streams\":%d}", tcp_med_s, nnodes - 1);
	fprintf(f,
		",\"owner_bytes_ratio\":%.3f,\"direct_over_tcp\":%.3f,\"relay_over_tcp\":%.3f}\n",
		modes[0].owner_mib / (modes[1].owner_mib ? modes[1].owner_mib : 1),
		modes[0].med_s / tcp_med_s, modes[1].med_s / tcp_med_s);
}

int main(int argc, char **argv)
{
	const char *json_file = NULL;
	bool quick = false;
	size_t size = 0;
	char why[128];

	bench_init("bench_broadcast");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json_file = argv[++i];
		else if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
			nnodes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = parse_size(argv[++i]);
		else
			bench_die("usage: bench_broadcast [--quick] [--nodes N] [--size N[K|M|G]] "
				  "[--json FILE]",
				  NULL);
	}
	if (quick && nnodes == 9)
		nnodes = 5;
	if (nnodes < 2 || nnodes > NETNS_MAX)
		bench_die("--nodes: 2 to NETNS_MAX", NULL);
	obj_size = size ? size : quick ? 32u << 20 : 256u << 20;
	nrounds = quick ? 1 : MAX_ROUNDS;
	if (bench_nodes_up(nnodes, why, sizeof(why))) {
		printf("bench_broadcast: skipped: %s\n", why);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	run(&modes[0], "1", obj_size, nrounds);
	run(&modes[1], "0", obj_size, nrounds);
	run_tcp(tcp_secs, obj_size, nrounds);
	tcp_med_s = bench_median_of(tcp_secs, (size_t)nrounds);

	printf("bench_broadcast (%d nodes in network namespaces on one machine; %zu MiB from node "
	       "1 to the %d others; medians of %d)\n",
	       nnodes, obj_size >> 20, nnodes - 1, nrounds);
	for (int m = 0; m < 2; m++) {
		printf("  %-7s %6.2f s   owner sent %7.0f MiB   most by one node %7.0f MiB   per "
		       "node:",
		       modes[m].name, modes[m].med_s, modes[m].owner_mib, modes[m].max_sent_mib);
		for (int i = 0; i < nnodes; i++)
			printf(" %.0f", modes[m].node_mib[i]);
		printf("\n");
	}
	printf("  tcp     %6.2f s   one sender, %d plain TCP streams at once\n", tcp_med_s,
	       nnodes - 1);
	printf("  the owner sent %.2fx the relay's bytes; the busiest node %.2fx\n",
	       modes[0].owner_mib / modes[1].owner_mib,
	       modes[0].max_sent_mib / modes[1].max_sent_mib);
	printf("  time against one TCP sender: direct %.2fx, relay %.2fx (below 1: faster)\n",
	       modes[0].med_s / tcp_med_s, modes[1].med_s / tcp_med_s);
	bench_json_out(json_file, emit, NULL);
	return 0;
}
