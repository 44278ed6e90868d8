// SPDX-License-Identifier: Apache-2.0
/* The cluster benches' nodes: see bench_nodes.h. */
#include "bench_nodes.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct netns_cluster bench_net;
struct bench_krayd bench_node[NETNS_MAX];
static char token_file[sizeof(bench_node[0].sock) + 8];

void bench_nodes_cleanup(void)
{
	for (int i = 0; i < NETNS_MAX; i++)
		bench_krayd_stop(&bench_node[i]);
	netns_cleanup_all();
}

int bench_nodes_up(int n, char *why, size_t why_len)
{
	static bool registered;

	if (netns_cluster_up(&bench_net, n, why, why_len))
		return -1;
	if (!registered)
		atexit(bench_nodes_cleanup);
	registered = true;
	return 0;
}

void bench_node_start(int i, const char *const *flags)
{
	const char *krayd = getenv("KRAY_KRAYD"), *code = getenv("KRAY_TEST_CODE_PATH");
	char listen[32], head[32], envn[8];
	const char *args[48];
	int n = 0, saved;

	if (!krayd || !code)
		bench_die("KRAY_KRAYD and KRAY_TEST_CODE_PATH must be set (make bench)", NULL);
	snprintf(listen, sizeof(listen), "%s:7000", bench_net.addr[i]);
	snprintf(head, sizeof(head), "%s:7000", bench_net.addr[0]);
	snprintf(envn, sizeof(envn), "%d", i + 1);
	setenv("KRAY_TEST_NODE", envn, 1);
	args[n++] = "--code-path";
	args[n++] = code;
	args[n++] = "--node-listen";
	args[n++] = listen;
	for (int j = 0; flags && flags[j]; j++) {
		if (n >= 40)
			bench_die("bench_node_start: too many flags", NULL);
		args[n++] = flags[j];
	}
	if (i == 0) {
		args[n++] = "--head";
	} else {
		args[n++] = "--address";
		args[n++] = head;
		args[n++] = "--token-file";
		args[n++] = token_file;
	}
	args[n] = NULL;
	saved = netns_enter(bench_net.ns[i]);
	if (saved < 0)
		bench_die("setns", NULL);
	bench_krayd_start(&bench_node[i], krayd, args, NULL);
	netns_leave(saved);
	if (i == 0)
		snprintf(token_file, sizeof(token_file), "%s.token", bench_node[0].sock);
}

void bench_node_stop(int i)
{
	bench_krayd_stop(&bench_node[i]);
}

kray *bench_node_connect(int i)
{
	struct kray_config cfg = { .address = bench_node[i].sock,
				   .code_path = getenv("KRAY_TEST_CODE_PATH") };
	kray *k;

	if (kray_init(&k, &cfg))
		bench_die(kray_init_errmsg(), NULL);
	return k;
}

int bench_nodes_count(kray *k, const char *word)
{
	char *text = NULL;
	int n = 0;

	if (kray_describe_nodes(k, &text))
		bench_die("describe nodes", kray_errmsg(k));
	for (char *p = text; (p = strstr(p, word)); p += strlen(word))
		n++;
	free(text);
	return n;
}

void bench_nodes_wait_alive(kray *k, int n)
{
	double t0 = bench_now();

	while (bench_nodes_count(k, " ALIVE ") != n) {
		if (bench_now() - t0 > 20)
			bench_die("the nodes did not all join in 20 s", NULL);
		usleep(20000);
	}
}
