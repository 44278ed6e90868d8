// SPDX-License-Identifier: Apache-2.0
/*
 * The cluster at 16 nodes (issue 19, docs/cluster.md): 16 krayds, one CPU slot each, in
 * 16 network namespaces on a bridge (netns.h), node 1 the head.  A driver on the head
 * runs 100,000 tasks over them while two nodes are SIGKILLed, and every result must be
 * right.  Needs root (skips without).  bench/bench_cluster measures the task rate of the
 * same cluster against one node.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
