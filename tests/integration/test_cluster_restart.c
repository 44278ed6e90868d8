// SPDX-License-Identifier: Apache-2.0
/*
 * Actors the head restarts (issue 19, daemon/cluster/gactor.c, docs/cluster.md "Actor fault
 * tolerance across nodes"): four krayds in network namespaces (netns.h), node 1 the head.
 * An actor created from node 2 lives on node 3; node 3 dies, then node 2 (its creator):
 * the head restarts it, once, on node 4, and callers on every node find it there.  Needs
 * root (skips without).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "netns.h"

#define PORT "7000"
#define NODES 4

static struct netns_cluster net;
static struct harness node[NODES];
static char token_file[256];

static void fini(void)
{
	harness_cleanup();
	netns_cleanup_all();
}

TestSuite(cluster_restart, .fini = fini, .timeout = 180);

/* BPF is not what this suite tests, and loading it is slow. */
static void start_node(int i, const char *res)
{
	static const char *const no_bpf[] = { "--bpf", "off", NULL };

	harness_start_node(&node[i], &net, i, 2, 100, res, no_bpf, token_file, sizeof(token_file));
}

/* Occurrences of word in text (freed). */
static int count_in(char *text, const char *word)
{
	int n = 0;

	for (char *p = text; (p = strstr(p, word)); p += strlen(word))
		n++;
	free(text);
	return n;
}

static void wait_alive(int i, int want)
{
	kray *k = harness_connect(node[i].sock);
	int64_t t0 = harness_now_ms();
	int n = -1;

	while (harness_now_ms() - t0 < 10000) {
		char *text = NULL;

		cr_assert_eq(kray_describe_nodes(k, &text), 0, "%s", kray_errmsg(k));
		n = count_in(text, " ALIVE ");
		if (n == want)
			break;
		usleep(20000);
	}
	harness_shutdown(k);
	cr_assert_eq(n, want, "node %d sees %d alive nodes, want %d", i + 1, n, want);
}

/* Nodes 1-3 (node 3 alone has "any"); node 4, with "any" too, joins later. */
static void three_then(void)
{
	char why[128];
	int rc = netns_cluster_up(&net, NODES, why, sizeof(why));

	if (rc)
		cr_skip_test("needs network namespaces: %s", why);
	start_node(0, "n1:1");
	start_node(1, "n2:1");
	start_node(2, "any:1,n3:1");
	for (int i = 0; i < 3; i++)
		wait_alive(i, 3);
}

static void fourth(void)
{
	start_node(3, "any:1,n4:1");
	for (int i = 0; i < NODES; i++)
		if (node[i].pid > 0 && kill(node[i].pid, 0) == 0)
			wait_alive(i, 4);
}

/* A call of method that must answer an int. */
static int64_t call(kray *k, kray_ref a, const char *method)
{
	kray_ref r;
	kray_value v;
	int rc;

	cr_assert_eq(kray_actor_call(k, a, method, NULL, 0, NULL, &r), 0, "%s", kray_errmsg(k));
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_eq(rc, 0, "%s: %d %s", method, rc,
		     v.type == KRAY_ERROR ? (const char *)v.data : kray_errmsg(k));
	kray_release(k, &r, 1);
	return v.i;
}

/* The head's count of actors restarted on another node. */
static int restarted(kray *head)
{
	char *text = NULL, *p;
	int n = -1;

	cr_assert_eq(kray_describe_nodes(head, &text), 0, "%s", kray_errmsg(head));
	p = strstr(text, "restarted on another node: ");
	if (p)
		n = atoi(p + strlen("restarted on another node: "));
	free(text);
	return n;
}

/* Actors of class Where that node i runs, alive. */
static int where_actors(int i)
{
	kray *k = harness_connect(node[i].sock);
	char *text = NULL, *line, *save = NULL;
	int n = 0;

	cr_assert_eq(kray_describe_actors(k, &text), 0, "%s", kray_errmsg(k));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, " Where ") && !strstr(line, "DEAD") && !strstr(line, "dead"))
			n++;
	free(text);
	harness_shutdown(k);
	return n;
}

Test(cluster_restart, head_restarts_an_actor_whose_creator_is_gone_too)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray *ka, *kb, *kd;
	kray_ref a, b, ra, rb;
	kray_value va, vb;
	int64_t x, y;

	three_then();
	ka = harness_connect(node[0].sock);
	kb = harness_connect(node[1].sock);
	/* Created from node 2 (the creator), placed on node 3 (the only one with "any"),
	 * found by name on node 1. */
	o.name = "svc";
	o.resources = "any:1";
	o.max_restarts = 2;
	o.max_task_retries = -1;
	cr_assert_eq(kray_actor_create(kb, "Where", NULL, 0, &o, &b), 0, "%s", kray_errmsg(kb));
	cr_assert_eq(call(kb, b, "node"), 3);
	cr_assert_eq(kray_get_actor(ka, "svc", NULL, &a), 0, "%s", kray_errmsg(ka));
	cr_assert_eq(call(ka, a, "incr"), 1);
	cr_assert_eq(call(kb, b, "incr"), 2);
	fourth();

	/* Node 3 dies: both holders (nodes 1 and 2) lose it at once and ask the head; the
	 * head restarts it once, on node 4, and both calls reach that one incarnation. */
	kill(node[2].pid, SIGKILL);
	cr_assert_eq(kray_actor_call(ka, a, "incr", NULL, 0, NULL, &ra), 0);
	cr_assert_eq(kray_actor_call(kb, b, "incr", NULL, 0, NULL, &rb), 0);
	kray_flush(ka);
	kray_flush(kb);
	cr_assert_eq(harness_get1(ka, ra, 30000, &va), 0, "node 1's call: %s",
		     va.type == KRAY_ERROR ? (const char *)va.data : kray_errmsg(ka));
	cr_assert_eq(harness_get1(kb, rb, 30000, &vb), 0, "node 2's call: %s",
		     vb.type == KRAY_ERROR ? (const char *)vb.data : kray_errmsg(kb));
	x = va.i < vb.i ? va.i : vb.i;
	y = va.i < vb.i ? vb.i : va.i;
	cr_assert(x == 1 && y == 2, "one incarnation counts both calls from 1: got %lld and %lld",
		  (long long)va.i, (long long)vb.i);
	kray_release(ka, &ra, 1);
	kray_release(kb, &rb, 1);
	cr_assert_eq(call(ka, a, "node"), 4);
	cr_assert_eq(call(kb, b, "node"), 4);
	cr_assert_eq(where_actors(3), 1, "node 4 runs one incarnation");
	cr_assert_eq(restarted(ka), 1, "the head restarted it once");

	/* Its creator dies too: node 1 still gets answers, and the name finds it. */
	kill(node[1].pid, SIGKILL);
	wait_alive(0, 2);
	cr_assert_eq(call(ka, a, "incr"), 3);
	kd = harness_connect(node[3].sock);
	cr_assert_eq(kray_get_actor(kd, "svc", NULL, &b), 0, "%s", kray_errmsg(kd));
	cr_assert_eq(call(kd, b, "incr"), 4, "the name finds the restarted actor");
	/* Not detached: once the last handle anywhere goes (the head's own hold goes two
	 * node-timeout-ms after the restart), it ends. */
	kray_release(kd, &b, 1);
	kray_release(ka, &a, 1);
	kray_flush(kd);
	kray_flush(ka);
	for (int i = 0; i < 500 && where_actors(3); i++)
		usleep(20000);
	cr_assert_eq(where_actors(3), 0, "the restarted actor outlived its last handle");
	harness_shutdown(kd);
	harness_shutdown(ka);
}

Test(cluster_restart, spent_max_restarts_fail_calls_on_every_node)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray *ka, *kb;
	kray_ref a, b, r;
	kray_value v;
	int rc;

	three_then();
	ka = harness_connect(node[0].sock);
	kb = harness_connect(node[1].sock);
	o.name = "once";
	o.detached = 1;
	o.resources = "any:1";
	o.max_restarts = 1;
	cr_assert_eq(kray_actor_create(kb, "Where", NULL, 0, &o, &b), 0, "%s", kray_errmsg(kb));
	cr_assert_eq(call(kb, b, "node"), 3); /* created there before node 1 attaches */
	cr_assert_eq(kray_get_actor(ka, "once", NULL, &a), 0, "%s", kray_errmsg(ka));
	cr_assert_eq(call(ka, a, "node"), 3);
	fourth();
	kill(node[2].pid, SIGKILL);
	wait_alive(0, 3);
	cr_assert_eq(call(ka, a, "node"), 4, "restarted on node 4");
	cr_assert_eq(call(kb, b, "incr"), 1, "a restarted actor starts over");
	/* Detached and named: found by name on its new node too. */
	{
		kray *kd = harness_connect(node[3].sock);
		kray_ref f;

		cr_assert_eq(kray_get_actor(kd, "once", NULL, &f), 0, "%s", kray_errmsg(kd));
		cr_assert_eq(call(kd, f, "incr"), 2);
		kray_release(kd, &f, 1);
		harness_shutdown(kd);
	}
	/* Its one restart is spent: its next death is final, on every node. */
	kill(node[3].pid, SIGKILL);
	wait_alive(0, 2);
	for (int i = 0; i < 2; i++) {
		kray *k = i ? kb : ka;

		cr_assert_eq(kray_actor_call(k, i ? b : a, "node", NULL, 0, NULL, &r), 0);
		rc = harness_get1(k, r, 30000, &v);
		cr_assert_eq(rc, -EREMOTEIO, "node %d: a call after the last death: %d", i + 1, rc);
		cr_assert_eq(v.err, KRAY_ERR_ACTOR_DIED, "node %d: error kind %s", i + 1,
			     harness_errkind(v.err));
		kray_value_clear(&v);
		kray_release(k, &r, 1);
	}
	cr_assert_eq(restarted(ka), 1);
	kray_release(ka, &a, 1);
	kray_release(kb, &b, 1);
	harness_shutdown(ka);
	harness_shutdown(kb);
}

/* An actor a driver created on its own node (node 3, the only one with "any" then): named
 * and detached, its node gives the head its record too, so a holder on node 1 still gets
 * answers from node 4 after node 3 is killed. */
Test(cluster_restart, head_restarts_an_actor_created_on_its_own_node)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray *ka, *kc;
	kray_ref a, c;

	three_then();
	ka = harness_connect(node[0].sock);
	kc = harness_connect(node[2].sock);
	o.name = "own";
	o.detached = 1;
	o.resources = "any:1";
	o.max_restarts = 1;
	o.max_task_retries = -1;
	cr_assert_eq(kray_actor_create(kc, "Where", NULL, 0, &o, &c), 0, "%s", kray_errmsg(kc));
	cr_assert_eq(call(kc, c, "node"), 3, "created on its driver's node");
	cr_assert_eq(kray_get_actor(ka, "own", NULL, &a), 0, "%s", kray_errmsg(ka));
	cr_assert_eq(call(ka, a, "incr"), 1);
	cr_assert_eq(call(ka, a, "incr"), 2);
	fourth();

	kill(node[2].pid, SIGKILL); /* the actor's node, and its driver with it */
	wait_alive(0, 3);
	cr_assert_eq(call(ka, a, "node"), 4, "restarted on node 4");
	cr_assert_eq(call(ka, a, "incr"), 1, "a restarted actor's state starts over");
	cr_assert_eq(restarted(ka), 1, "the head restarted it once");
	cr_assert_eq(where_actors(3), 1, "node 4 runs one incarnation");
	/* Detached: only a kill ends it, and a holder on another node may kill it. */
	cr_assert_eq(kray_kill(ka, a, 1), 0, "%s", kray_errmsg(ka));
	for (int i = 0; i < 500 && where_actors(3); i++)
		usleep(20000);
	cr_assert_eq(where_actors(3), 0, "kray_kill() from node 1 did not end it on node 4");
	kray_release(ka, &a, 1);
	harness_shutdown(ka);
}
