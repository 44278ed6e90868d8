// SPDX-License-Identifier: Apache-2.0
/*
 * bench_broadcast.c - one large object to many nodes (issue 19, docs/cluster.md "Objects
 * between any two nodes"), in network namespaces on one machine: node 1 (the head) puts a
 * 256 MiB object (--quick: 32 MiB) and calls bytes_sum(obj) on each of the other N-1
 * nodes at once (N = 9, --quick 5; --nodes N), and each node says how many object bytes
 * it sent to the others (LIST_NODES "object bytes with node ...").
 *
 *   direct    direct-pull = 1 (the default): the owner names a holder for each task's
 *             node, and nodes that have (or are receiving) a copy serve the later ones
 *   relay     the baseline, same run: direct-pull = 0, the owner sends every copy itself
 *
 * Printed per mode: the seconds from the calls to the last result (median of the rounds),
 * the most bytes any one node sent, the owner's bytes, and every node's bytes.  On one
 * machine the veths share its CPUs and memory bandwidth, so the time says little about a
 * real network, where what counts is what leaves each node (the owner's link is the
 * bottleneck of the relay).  Needs root; prints why and exits 0 without.
 *
 *	bench_broadcast [--quick] [--nodes N] [--json FILE]
 */
#include <kray/kray.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/integration/netns.h"
#include "bench_common.h"

#define MAX_ROUNDS 3

static struct netns_cluster net;
static struct bench_krayd nodes[NETNS_MAX];
static char token_file[sizeof(nodes[0].sock) + 8];
static int nnodes = 9;

static void cleanup(void)
{
	for (int i = 0; i < NETNS_MAX; i++)
		bench_krayd_stop(&nodes[i]);
	netns_cleanup_all();
}

static void stop_all(void)
{
	for (int i = 0; i < NETNS_MAX; i++)
		bench_krayd_stop(&nodes[i]);
}

static void start_node(int i, const char *direct)
{
	const char *krayd = getenv("KRAY_KRAYD"), *code = getenv("KRAY_TEST_CODE_PATH");
	char listen[32], head[32], envn[8], res[16];
	int saved;

	if (!krayd || !code)
		bench_die("KRAY_KRAYD and KRAY_TEST_CODE_PATH must be set (make bench)", NULL);
	snprintf(listen, sizeof(listen), "%s:7000", net.addr[i]);
	snprintf(head, sizeof(head), "%s:7000", net.addr[0]);
	snprintf(envn, sizeof(envn), "%d", i + 1);
	snprintf(res, sizeof(res), "n%d:1", i + 1);
	setenv("KRAY_TEST_NODE", envn, 1);

	const char *const flags[] = { "--num-cpus",
				      "1",
				      "--code-path",
				      code,
				      "--store-size",
				      "1G",
				      "--node-listen",
				      listen,
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
	const char *const head_flags[] = { "--head", NULL };
	const char *const join_flags[] = { "--address", head, "--token-file", token_file, NULL };

	saved = netns_enter(net.ns[i]);
	if (saved < 0)
		bench_die("setns", NULL);
	bench_krayd_start(&nodes[i], krayd, flags, i == 0 ? head_flags : join_flags);
	netns_leave(saved);
	if (i == 0)
		snprintf(token_file, sizeof(token_file), "%s.token", nodes[0].sock);
}

static kray *connect_to(int i)
{
	struct kray_config cfg = { .address = nodes[i].sock,
				   .code_path = getenv("KRAY_TEST_CODE_PATH") };
	kray *k;

	if (kray_init(&k, &cfg))
		bench_die(kray_init_errmsg(), NULL);
	return k;
}

static int count_alive(kray *k)
{
	char *text = NULL;
	int n = 0;

	if (kray_describe_nodes(k, &text))
		bench_die("describe nodes", NULL);
	for (char *p = text; (p = strstr(p, " ALIVE ")); p++)
		n++;
	free(text);
	return n;
}

/* Node i's object bytes sent to other nodes so far. */
static uint64_t sent_by(int i)
{
	kray *k = connect_to(i);
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
	int64_t t0;

	for (int i = 0; i < nnodes; i++)
		start_node(i, direct);
	k = connect_to(0);
	t0 = (int64_t)(bench_now() * 1000);
	while (count_alive(k) != nnodes) {
		if ((int64_t)(bench_now() * 1000) - t0 > 20000)
			bench_die("the nodes did not all join in 20 s", NULL);
		usleep(20000);
	}
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
	fprintf(f, ",\"owner_bytes_ratio\":%.3f}\n",
		modes[0].owner_mib / (modes[1].owner_mib ? modes[1].owner_mib : 1));
}

int main(int argc, char **argv)
{
	const char *json_file = NULL;
	bool quick = false;
	char why[128];

	bench_init("bench_broadcast");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json_file = argv[++i];
		else if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
			nnodes = atoi(argv[++i]);
		else
			bench_die("usage: bench_broadcast [--quick] [--nodes N] [--json FILE]",
				  NULL);
	}
	if (quick && nnodes == 9)
		nnodes = 5;
	if (nnodes < 2 || nnodes > NETNS_MAX)
		bench_die("--nodes: 2 to NETNS_MAX", NULL);
	obj_size = quick ? 32u << 20 : 256u << 20;
	nrounds = quick ? 1 : MAX_ROUNDS;
	if (netns_cluster_up(&net, nnodes, why, sizeof(why))) {
		printf("bench_broadcast: skipped: %s\n", why);
		return 0;
	}
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);
	run(&modes[0], "1", obj_size, nrounds);
	run(&modes[1], "0", obj_size, nrounds);

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
	printf("  the owner sent %.2fx the relay's bytes; the busiest node %.2fx\n",
	       modes[0].owner_mib / modes[1].owner_mib,
	       modes[0].max_sent_mib / modes[1].max_sent_mib);
	bench_json_out(json_file, emit, NULL);
	return 0;
}
