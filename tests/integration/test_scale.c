// SPDX-License-Identifier: Apache-2.0
/*
 * The cluster at 16 nodes (issue 19, docs/cluster.md): 16 krayds, one CPU slot each, in
 * 16 network namespaces on a bridge (netns.h), node 1 the head.  A driver on the head
 * runs 100,000 tasks over them while two nodes are SIGKILLed, and every result must be
 * right; and the head broadcasts 1 GiB to 8 of the 16 at once, each node's object byte
 * counters (LIST_NODES "object bytes with node ...") saying who sent what.  Needs root
 * (skips without).  bench/bench_cluster measures the task rate of the same cluster against
 * one node, bench/bench_broadcast the broadcast against plain TCP streams.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fixtures/pattern.h"
#include "harness.h"
#include "netns.h"

#define NODES 16
#define NTASKS 100000
#define BATCH 10000

static struct netns_cluster net;
static struct harness node[NODES];

static void fini(void)
{
	harness_cleanup();
	netns_cleanup_all();
}

TestSuite(scale, .fini = fini, .timeout = 600);

/* Starts node i (0-based) in its namespace: one CPU slot, no pre-faulted pool; node 0
 * is the head (it writes the token file the others read). */
static void start_node(int i, char *token_file, size_t len)
{
	static const char *const no_pool[] = { "--pool-size", "0", NULL };

	harness_start_node(&node[i], &net, i, 1, 200, NULL, no_pool, token_file, len);
}

/* Starts all NODES nodes, node i with resource "n<i+1>:1" and a store of 2 GiB (room for
 * the 1 GiB object beside what else is there); returns a driver on the head once the head
 * lists them all alive. */
static kray *start_cluster_with_stores(char *token_file, size_t len)
{
	static const char *const more[] = { "--pool-size", "0", "--store-size", "2G", "--bpf",
					    "off",	   NULL };
	char res[16];

	for (int i = 0; i < NODES; i++) {
		snprintf(res, sizeof(res), "n%d:1", i + 1);
		harness_start_node(&node[i], &net, i, 1, 200, res, more, token_file, len);
	}
	return harness_connect(node[0].sock);
}

/* Waits (ms at most) until the head lists `alive` nodes ALIVE. */
static void wait_alive(kray *k, size_t alive, int64_t ms)
{
	int64_t t0 = harness_now_ms();
	size_t n = 0, up = 0;

	while (harness_now_ms() - t0 < ms) {
		struct kray_node_info *info = NULL;

		cr_assert_eq(kray_list_nodes(k, &info, &n), 0, "%s", kray_errmsg(k));
		up = 0;
		for (size_t i = 0; i < n; i++)
			up += info[i].alive;
		free(info);
		if (up == alive)
			return;
		usleep(50000);
	}
	cr_assert_fail("%zu of %zu nodes alive after %lld ms, want %zu", up, n, (long long)ms,
		       alive);
}

/* Node i's object byte counters, summed over the other nodes. */
static void bytes_of(int i, uint64_t *sent, uint64_t *received)
{
	harness_node_object_bytes(node[i].sock, sent, received);
}

#define BCAST_SIZE (1ull << 30)
#define BCAST_TO 8

/*
 * The head (the owner) puts 1 GiB and calls bytes_sum on 8 of the 15 other nodes at once
 * (nodes 2, 4, ..., 16, by their resources).  Every checksum must be the head's; each of
 * the 8 received exactly 1 GiB, the 7 others nothing; and with direct pulls the owner sent
 * 1 to 3 copies, not 8: the receivers sent the rest to each other (docs/cluster.md, "Objects
 * between any two nodes": about 2 copies leave any one node).
 */
Test(scale, one_gib_broadcast_to_8_of_16_counts_the_bytes_each_node_sent)
{
	char why[128], token_file[200];
	int rc = netns_cluster_up(&net, NODES, why, sizeof(why));
	uint64_t sent[NODES], rcvd[NODES], others = 0, total = 0;
	kray_ref x, r[BCAST_TO];
	int64_t want, t0;
	void *data;
	kray *k;

	if (rc)
		cr_skip_test("needs network namespaces: %s", why);
	k = start_cluster_with_stores(token_file, sizeof(token_file));
	wait_alive(k, NODES, 30000);

	cr_assert_eq(kray_create(k, BCAST_SIZE, &x, &data), 0, "create: %s", kray_errmsg(k));
	for (size_t i = 0; i < BCAST_SIZE / 8; i++)
		((uint64_t *)data)[i] = i * 0x9e3779b97f4a7c15ull;
	want = checksum_words(data, BCAST_SIZE);
	cr_assert_eq(kray_seal(k, &x), 0, "seal: %s", kray_errmsg(k));

	t0 = harness_now_ms();
	for (int j = 0; j < BCAST_TO; j++) {
		struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
		kray_value a[2] = { KRAY_V_REF(x), KRAY_V_INT(0) };
		char res[16];

		snprintf(res, sizeof(res), "n%d:1", 2 * j + 2);
		o.resources = res;
		cr_assert_eq(kray_call(k, "bytes_sum", a, 2, &o, &r[j]), 0, "call on node %d: %s",
			     2 * j + 2, kray_errmsg(k));
	}
	kray_flush(k);
	for (int j = 0; j < BCAST_TO; j++) {
		kray_value v;

		rc = harness_get1(k, r[j], 300000, &v);
		cr_assert_eq(rc, 0, "node %d: get %d %s", 2 * j + 2, rc,
			     v.type == KRAY_ERROR ? (const char *)v.data : kray_errmsg(k));
		cr_assert_eq(v.type, KRAY_INT64, "node %d: type %d", 2 * j + 2, v.type);
		cr_assert_eq(v.i, want, "node %d: checksum %" PRId64 ", want %" PRId64, 2 * j + 2,
			     v.i, want);
		kray_value_clear(&v);
	}
	kray_release(k, r, BCAST_TO);
	cr_log_info("1 GiB to 8 of 16 nodes: %lld ms\n", (long long)(harness_now_ms() - t0));

	for (int i = 0; i < NODES; i++) {
		bytes_of(i, &sent[i], &rcvd[i]);
		total += sent[i];
		if (i)
			others += sent[i];
	}
	cr_log_info("MiB sent per node: %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		    " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		    " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		    sent[0] >> 20, sent[1] >> 20, sent[2] >> 20, sent[3] >> 20, sent[4] >> 20,
		    sent[5] >> 20, sent[6] >> 20, sent[7] >> 20, sent[8] >> 20, sent[9] >> 20,
		    sent[10] >> 20, sent[11] >> 20, sent[12] >> 20, sent[13] >> 20, sent[14] >> 20,
		    sent[15] >> 20);
	for (int i = 1; i < NODES; i++) {
		uint64_t w = i % 2 ? BCAST_SIZE : 0; /* nodes 2, 4, ... (0-based odd) took it */

		cr_assert_eq(rcvd[i], w, "node %d received %" PRIu64 " bytes, want %" PRIu64, i + 1,
			     rcvd[i], w);
		if (!w)
			cr_assert_eq(sent[i], 0, "node %d, which took no copy, sent %" PRIu64,
				     i + 1, sent[i]);
	}
	cr_assert_eq(rcvd[0], 0, "the owner received %" PRIu64, rcvd[0]);
	cr_assert_eq(total, BCAST_TO * BCAST_SIZE, "%" PRIu64 " bytes sent in all", total);
	cr_assert_geq(sent[0], BCAST_SIZE, "the owner sent %" PRIu64, sent[0]);
	cr_assert_leq(sent[0], 3 * BCAST_SIZE, "the owner sent %" PRIu64 " bytes: not 1-3 copies",
		      sent[0]);
	cr_assert_geq(others, (BCAST_TO - 3) * BCAST_SIZE, "the receivers sent %" PRIu64, others);
	kray_release(k, &x, 1);
	harness_shutdown(k);
}

Test(scale, sixteen_nodes_run_100k_tasks_while_two_die)
{
	char why[128], token_file[200];
	int rc = netns_cluster_up(&net, NODES, why, sizeof(why));
	static kray_ref refs[NTASKS];
	static kray_value vals[BATCH];
	int per_node[NODES + 1] = { 0 };
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray *k;

	if (rc)
		cr_skip_test("needs network namespaces: %s", why);
	start_node(0, token_file, sizeof(token_file));
	for (int i = 1; i < NODES; i++)
		start_node(i, token_file, sizeof(token_file));
	k = harness_connect(node[0].sock);
	wait_alive(k, NODES, 30000);

	o.max_retries = 5;
	for (int i = 0; i < NTASKS; i++) {
		kray_value a = KRAY_V_INT(i);

		cr_assert_eq(kray_call(k, "square_where", &a, 1, &o, &refs[i]), 0, "call %d: %s", i,
			     kray_errmsg(k));
	}
	for (int b = 0; b < NTASKS / BATCH; b++) {
		if (b == 2) { /* in the middle: two nodes die with tasks of theirs in flight */
			kill(node[5].pid, SIGKILL);
			kill(node[11].pid, SIGKILL);
		}
		rc = kray_get(k, refs + b * BATCH, BATCH, 300000, vals);
		cr_assert_eq(rc, 0, "get of batch %d: %d %s", b, rc, kray_errmsg(k));
		for (int j = 0; j < BATCH; j++) {
			int64_t i = (int64_t)b * BATCH + j, v = vals[j].i;

			cr_assert_eq(vals[j].type, KRAY_INT64, "task %lld: type %d", (long long)i,
				     vals[j].type);
			/* square_where(i) = i * i * 100 + the node it ran on */
			cr_assert_eq(v / 100, i * i, "task %lld: %lld", (long long)i, (long long)v);
			per_node[v % 100 <= NODES ? v % 100 : 0]++;
		}
		kray_release(k, refs + b * BATCH, BATCH);
	}
	int used = 0;

	for (int i = 1; i <= NODES; i++)
		used += per_node[i] > 0;
	cr_log_info("tasks per node: %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d", per_node[1],
		    per_node[2], per_node[3], per_node[4], per_node[5], per_node[6], per_node[7],
		    per_node[8], per_node[9], per_node[10], per_node[11], per_node[12],
		    per_node[13], per_node[14], per_node[15], per_node[16]);
	cr_assert_eq(per_node[0], 0, "results that name no node");
	cr_assert_geq(used, 12, "only %d of the 16 nodes ran tasks", used);
	wait_alive(k, NODES - 2, 10000);
}
