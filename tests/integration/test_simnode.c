// SPDX-License-Identifier: Apache-2.0
/*
 * The simulated nodes of bench_scale (bench/sim/simnode.c) against a real head, so that
 * their protocol cannot rot while the benchmark still prints figures: three of them join
 * with a resource only they have, the head forwards a driver's tasks to them, they answer
 * as a krayd's running side does (each return pushed, then FWD_DONE), and the driver gets
 * every result right, from more than one of them.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../include/uapi/kray_wire.h"
#include "../../bench/sim/simnode.h"
#include "harness.h"

#define TOKEN "test-simnode-token-0123456789abcdef"
#define SIMS 3
#define TASKS 60

static struct harness head;
static struct simnode sims[SIMS];

static void fini(void)
{
	for (int i = 0; i < SIMS; i++)
		if (sims[i].fd > 0)
			close(sims[i].fd);
	harness_cleanup();
}

TestSuite(simnode, .fini = fini, .timeout = 60);

/* The head lists want live nodes (itself included). */
static void wait_alive(kray *k, size_t want)
{
	for (int tries = 0; tries < 500; tries++) {
		struct kray_node_info *info = NULL;
		size_t n = 0, alive = 0;

		cr_assert_eq(kray_list_nodes(k, &info, &n), 0, "%s", kray_errmsg(k));
		for (size_t i = 0; i < n; i++)
			alive += info[i].alive;
		free(info);
		if (alive == want)
			return;
		usleep(10000);
	}
	cr_assert_fail("the head never listed %zu live nodes", want);
}

/* Lets the simulated nodes answer until they have answered want tasks in all. */
static void serve(struct simnode_stats *st, uint64_t want)
{
	struct pollfd p[SIMS];

	for (int i = 0; i < SIMS; i++)
		p[i] = (struct pollfd){ .fd = sims[i].fd, .events = POLLIN };
	for (int tries = 0; st->tasks < want && tries < 1000; tries++) {
		cr_assert_geq(poll(p, SIMS, 10), 0);
		for (int i = 0; i < SIMS; i++)
			if (p[i].revents & POLLIN)
				cr_assert_eq(simnode_drain(&sims[i], st), 0,
					     "the head closed simulated node %d's link", i);
	}
	cr_assert_eq(st->tasks, want, "the simulated nodes got %llu of %llu tasks",
		     (unsigned long long)st->tasks, (unsigned long long)want);
}

Test(simnode, forwarded_tasks_are_answered_and_results_come_back)
{
	char listen[32], why[128];
	const char *args[] = { "--head", "--node-listen", listen, "--token", TOKEN, NULL };
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT, two = KRAY_CALL_OPTS_DEFAULT;
	struct simnode_stats st = { 0 };
	kray_ref refs[TASKS], pair[2];
	kray_value vals[TASKS];
	unsigned port = (unsigned)harness_pick_port(), used = 0;
	kray *k;

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	cr_assert_eq(harness_start_krayd_opts(&head, 1, args), 0, "the head did not start");
	k = harness_connect(head.sock);
	for (int i = 0; i < SIMS; i++) {
		sims[i].node = 0x51300000u + (uint32_t)i;
		strcpy(sims[i].res, "sim:1");
		cr_assert_eq(simnode_join(&sims[i], (unsigned short)port, TOKEN, why, sizeof(why)),
			     0, "simulated node %d: %s", i, why);
	}
	wait_alive(k, SIMS + 1);

	/* Only the simulated nodes have "sim": the head forwards every one. */
	o.resources = "sim:1";
	for (int i = 0; i < TASKS; i++) {
		kray_value a = KRAY_V_INT(i + 1);

		cr_assert_eq(kray_call(k, "square", &a, 1, &o, &refs[i]), 0, "%s", kray_errmsg(k));
	}
	two.resources = "sim:1";
	two.num_returns = 2;
	{
		kray_value a = KRAY_V_INT(-7);

		cr_assert_eq(kray_call(k, "square", &a, 1, &two, pair), 0, "%s", kray_errmsg(k));
	}
	cr_assert_eq(kray_flush(k), 0);
	serve(&st, TASKS + 1);

	cr_assert_eq(kray_get(k, refs, TASKS, 10000, vals), 0, "%s", kray_errmsg(k));
	for (int i = 0; i < TASKS; i++) {
		cr_assert_eq(vals[i].type, KRAY_INT64, "result %d is not an integer", i);
		cr_assert_eq(vals[i].i, (int64_t)(i + 1) * (i + 1), "square(%d) = %lld", i + 1,
			     (long long)vals[i].i);
		kray_value_clear(&vals[i]);
	}
	cr_assert_eq(kray_get(k, pair, 2, 10000, vals), 0, "%s", kray_errmsg(k));
	cr_assert(vals[0].i == 49 && vals[1].i == 49, "both returns of a two-return task");
	kray_value_clear(&vals[0]);
	kray_value_clear(&vals[1]);
	kray_release(k, refs, TASKS);
	kray_release(k, pair, 2);
	for (int i = 0; i < SIMS; i++)
		used += sims[i].answered > 0;
	cr_assert_geq(used, 2, "placement spread the tasks over %u simulated node(s)", used);
	harness_shutdown(k);
}
