/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster benches' nodes (bench_cluster, bench_broadcast, bench_lazy_remote): one
 * private krayd per network namespace of tests/integration/netns.h, node 1 the head and
 * the others joining it with the token it wrote.  Like bench_common, every failure ends
 * the bench (bench_die).
 */
#ifndef KRAY_BENCH_NODES_H
#define KRAY_BENCH_NODES_H

#include <kray/kray.h>

#include "../tests/integration/netns.h"
#include "bench_common.h"

extern struct netns_cluster bench_net; /* the namespaces: bench_nodes_up() */
extern struct bench_krayd bench_node[NETNS_MAX]; /* node i's krayd, once started */

/*
 * Makes n namespaces and registers bench_nodes_cleanup() to run at exit.  Returns 0, or -1
 * with why filled in (not root, no iproute2): the bench says it skipped.
 */
int bench_nodes_up(int n, char *why, size_t why_len);

/*
 * Starts node i's krayd ($KRAY_KRAYD, with KRAY_TEST_NODE=i+1 for the test functions) in its
 * namespace: "--code-path $KRAY_TEST_CODE_PATH --node-listen <its address>:7000", then
 * flags (NULL-terminated), then "--head" for node 0 or "--address <node 0>:7000
 * --token-file <node 0's>" for the others; waits until it serves.
 */
void bench_node_start(int i, const char *const *flags);

/* Stops node i's krayd (by its pid), if it runs. */
void bench_node_stop(int i);

/* A driver connected to node i's krayd. */
kray *bench_node_connect(int i);

/* How many nodes k's view of the cluster lists with word (" ALIVE ", " DEAD "). */
int bench_nodes_count(kray *k, const char *word);

/* Waits up to 20 s until k's view lists n nodes alive; dies if it does not. */
void bench_nodes_wait_alive(kray *k, int n);

/* Stops every node's krayd and removes the namespaces. */
void bench_nodes_cleanup(void);

#endif /* KRAY_BENCH_NODES_H */
