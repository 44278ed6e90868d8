// SPDX-License-Identifier: Apache-2.0
/*
 * libclient/listing.c alone: krayd's node and actor lines (as daemon/node.c and
 * daemon/actor.c print them) parsed into kray_node_info / kray_actor_info, lines that are
 * not such lines skipped, fields that would not fit refused, and a whole listing.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../libclient/listing.h"
#include "uapi/kray_wire.h"

static int node(const char *line, struct kray_node_info *e)
{
	return kc_parse_node_line(line, strlen(line), e);
}

static int actor(const char *line, struct kray_actor_info *a)
{
	return kc_parse_actor_line(line, strlen(line), a);
}

Test(listing, node_line)
{
	struct kray_node_info e;

	cr_assert_eq(node("5ab3c001 10.0.0.7:7700 ALIVE cpus 8 workers 5 (3 busy) queued 12 "
			  "finished 3456 store 128 MiB resources 'GPU:2,ssd:0.5' head (this node)",
			  &e),
		     0);
	cr_assert_eq(e.node, 0x5ab3c001);
	cr_assert_str_eq(e.address, "10.0.0.7");
	cr_assert_eq(e.port, 7700);
	cr_assert_eq(e.alive, 1);
	cr_assert_eq(e.head, 1);
	cr_assert_eq(e.self, 1);
	cr_assert_eq(e.num_cpus, 8);
	cr_assert_eq(e.workers, 5);
	cr_assert_eq(e.workers_busy, 3);
	cr_assert_eq(e.tasks_queued, 12);
	cr_assert_eq(e.tasks_finished, 3456);
	cr_assert_eq(e.store_mib, 128);
	cr_assert_str_eq(e.resources, "GPU:2,ssd:0.5");
}

Test(listing, dead_node_without_resources)
{
	struct kray_node_info e;

	cr_assert_eq(node("00000002 192.168.1.20:1 DEAD cpus 1 workers 0 (0 busy) queued 0 "
			  "finished 0 store 0 MiB resources ''",
			  &e),
		     0);
	cr_assert_eq(e.alive, 0);
	cr_assert_eq(e.head, 0);
	cr_assert_eq(e.self, 0);
	cr_assert_str_eq(e.resources, "");
}

Test(listing, not_node_lines)
{
	struct kray_node_info e;

	cr_assert_eq(node("this node: 3 tasks sent to other nodes, 1 run for them, 0 objects "
			  "pulled, 0 tasks run again (lineage)",
			  &e),
		     -EINVAL);
	cr_assert_eq(node("", &e), -EINVAL);
	cr_assert_eq(node("5ab3c001 10.0.0.7:7700 MAYBE cpus 8 workers 5 (3 busy) queued 1 "
			  "finished 1 store 1 MiB resources ''",
			  &e),
		     -EINVAL);
	cr_assert_eq(node("5ab3c001 10.0.0.7:99999 ALIVE cpus 8 workers 5 (3 busy) queued 1 "
			  "finished 1 store 1 MiB resources ''",
			  &e),
		     -EINVAL);
	cr_assert_eq(node("5ab3c001 10.0.0.7:7700 ALIVE cpus 8 workers 5 (3 busy) queued 1 "
			  "finished 1 store 1 MiB resources 'unterminated",
			  &e),
		     -EINVAL);
}

Test(listing, actor_lines)
{
	struct kray_actor_info a;

	cr_assert_eq(actor("1.4.17 Counter ns1/counter alive: pid 4242, 3 calls in flight, 1 "
			   "restart",
			   &a),
		     0);
	cr_assert_eq(a.id.node, 1);
	cr_assert_eq(a.id.owner, 4);
	cr_assert_eq(a.id.seq, 17);
	cr_assert_eq(a.id.index, KRAY_OID_ACTOR);
	cr_assert_eq(a.state, KRAY_ACTOR_ALIVE);
	cr_assert_str_eq(a.class_name, "Counter");
	cr_assert_str_eq(a.ns, "ns1");
	cr_assert_str_eq(a.name, "counter");
	cr_assert_eq(a.pid, 4242);
	cr_assert_eq(a.calls_in_flight, 3);
	cr_assert_eq(a.restarts, 1);
	cr_assert_str_eq(a.detail, "pid 4242, 3 calls in flight, 1 restart");

	cr_assert_eq(actor("1.4.18 Noop - pending: waiting for 1 constructor argument", &a), 0);
	cr_assert_eq(a.state, KRAY_ACTOR_PENDING);
	cr_assert_str_eq(a.name, "");
	cr_assert_str_eq(a.ns, "");
	cr_assert_eq(a.pid, 0);
	cr_assert_str_eq(a.detail, "waiting for 1 constructor argument");

	cr_assert_eq(actor("2.1.3 Broken /solo dead: the constructor failed: no", &a), 0);
	cr_assert_eq(a.state, KRAY_ACTOR_DEAD);
	cr_assert_str_eq(a.ns, "");
	cr_assert_str_eq(a.name, "solo");
	cr_assert_str_eq(a.detail, "the constructor failed: no");

	cr_assert_eq(actor("2.1.4 Marker - starting: ", &a), 0);
	cr_assert_eq(a.state, KRAY_ACTOR_STARTING);
	cr_assert_str_eq(a.detail, "");
}

Test(listing, not_actor_lines)
{
	struct kray_actor_info a;

	cr_assert_eq(actor("1.4 Counter - alive: x", &a), -EINVAL);
	cr_assert_eq(actor("1.4.17 Counter - sleeping: x", &a), -EINVAL);
	cr_assert_eq(actor("1.4.17 Counter noslash alive: x", &a), -EINVAL);
	cr_assert_eq(actor("garbage", &a), -EINVAL);
}

Test(listing, overlong_lines_are_refused)
{
	struct kray_actor_info a;
	struct kray_node_info e;
	size_t n = 4096;
	char *line = malloc(n + 1);

	cr_assert(line);
	memset(line, 'x', n);
	line[n] = 0;
	cr_assert_eq(node(line, &e), -EINVAL);
	cr_assert_eq(actor(line, &a), -EINVAL);
	free(line);
}

static int parse_actor(const char *line, size_t len, void *ret)
{
	return kc_parse_actor_line(line, len, ret);
}

Test(listing, whole_listing)
{
	const char *text = "1.1.1 Counter - alive: pid 10, 0 calls in flight, 0 restarts\n"
			   "not a line\n"
			   "1.1.2 Counter a/b dead: killed\n"
			   "1.1.3 Noop - pending: needs CPU:1";
	struct kray_actor_info *a = NULL;
	size_t n = 0;

	cr_assert_eq(kc_parse_listing(text, parse_actor, sizeof(*a), (void **)&a, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(a[0].id.seq, 1);
	cr_assert_eq(a[1].state, KRAY_ACTOR_DEAD);
	cr_assert_str_eq(a[1].name, "b");
	cr_assert_str_eq(a[2].detail, "needs CPU:1");
	free(a);
	cr_assert_eq(kc_parse_listing("", parse_actor, sizeof(*a), (void **)&a, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(a);
}
