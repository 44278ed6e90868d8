// SPDX-License-Identifier: Apache-2.0
/*
 * The cluster (issue 7, docs/cluster.md), for real: three krayds, each in its own network
 * namespace (netns.h), joined by veth pairs on a bridge, node 1 the head.  Drivers talk to
 * a krayd over its unix socket from the test's own namespace; everything between nodes
 * goes over TCP between the namespaces.  Needs root (skips without).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../include/uapi/kray_wire.h"
#include "../fixtures/pattern.h"
#include "harness.h"
#include "netns.h"

#define PORT "7000"

static struct netns_cluster net;
static struct harness node[4];
static char token_file[256];

static void fini(void)
{
	harness_cleanup();
	netns_cleanup_all();
}

TestSuite(cluster, .fini = fini, .timeout = 120);

/* Starts node i (0-based) in its namespace with resources res and extra flags. */
static void start_node(int i, const char *res, const char *const *more)
{
	harness_start_node(&node[i], &net, i, 2, 100, res, more, token_file, sizeof(token_file));
}

/* Counts the lines of kray_describe_nodes() that contain word. */
static int count_nodes(kray *k, const char *word)
{
	char *text = NULL;
	int n = 0;

	cr_assert_eq(kray_describe_nodes(k, &text), 0, "describe nodes: %s", kray_errmsg(k));
	for (char *p = text; (p = strstr(p, word)); p += strlen(word))
		n++;
	free(text);
	return n;
}

/* Waits up to ms for exactly `alive` ALIVE and `dead` DEAD nodes; returns the ms it took,
 * or fails. */
static int64_t wait_nodes(kray *k, int alive, int dead, int64_t ms)
{
	int64_t t0 = harness_now_ms();
	int a = -1, d = -1;

	while (harness_now_ms() - t0 < ms) {
		a = count_nodes(k, " ALIVE ");
		d = count_nodes(k, " DEAD ");
		if (a == alive && d == dead)
			return harness_now_ms() - t0;
		usleep(20000);
	}
	cr_assert_fail("waited %lld ms for %d alive and %d dead nodes; have %d and %d",
		       (long long)ms, alive, dead, a, d);
	return -1;
}

/* Three nodes: node i has resources res[i], the head head_more flags too; returns a
 * driver connected to the head. */
static kray *three_nodes_with(const char *const res[3], const char *const *head_more)
{
	char why[128];
	int rc = netns_cluster_up(&net, 3, why, sizeof(why));
	kray *k;

	if (rc)
		cr_skip_test("needs network namespaces: %s", why);
	start_node(0, res[0], head_more);
	start_node(1, res[1], NULL);
	start_node(2, res[2], NULL);
	k = harness_connect(node[0].sock);
	wait_nodes(k, 3, 0, 10000);
	/* And every node has heard the whole view from the head. */
	for (int i = 1; i < 3; i++) {
		kray *ki = harness_connect(node[i].sock);

		wait_nodes(ki, 3, 0, 5000);
		harness_shutdown(ki);
	}
	return k;
}

static kray *three_nodes(const char *const res[3])
{
	return three_nodes_with(res, NULL);
}

static const char *const PER_NODE[3] = { "n1:1", "n2:1", "n3:1" };

static int64_t call_int(kray *k, const char *fn, const kray_value *args, size_t nargs,
			const char *res)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_ref r;
	kray_value v;
	int rc;

	o.resources = res;
	cr_assert_eq(kray_call(k, fn, args, nargs, &o, &r), 0, "call %s: %s", fn, kray_errmsg(k));
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_eq(rc, 0, "get %s (%s): %d %s", fn, res ? res : "-", rc,
		     v.type == KRAY_ERROR ? (const char *)v.data : kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_INT64, "%s returned type %d", fn, v.type);
	kray_release(k, &r, 1);
	return v.i;
}

Test(cluster, three_nodes_join_and_show_in_status)
{
	kray *k = three_nodes(PER_NODE);
	kray *k3 = harness_connect(node[2].sock);
	char cmd[512], out[4096];
	size_t n;
	FILE *p;

	/* Every node has the whole view, from the head. */
	wait_nodes(k3, 3, 0, 5000);
	wait_nodes(harness_connect(node[1].sock), 3, 0, 5000);
	cr_assert_eq(count_nodes(k, "resources 'n2:1'"), 1, "node 2's resources not listed");
	cr_assert_eq(count_nodes(k, " head"), 1, "the head is not marked");
	/* And `kray status` prints them. */
	snprintf(cmd, sizeof(cmd), "%s/kray status --socket %s", getenv("KRAY_BIN"), node[1].sock);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	cr_assert_eq(pclose(p), 0, "kray status failed: %s", out);
	cr_assert_not_null(strstr(out, "nodes:"), "no node list in kray status:\n%s", out);
	cr_assert_not_null(strstr(out, "resources 'n3:1'"), "node 3 missing:\n%s", out);
	cr_assert_not_null(strstr(out, "(this node)"), "own node not marked:\n%s", out);

	/* The head's job table: every driver of the cluster, running or finished. */
	int running = count_nodes(k, " RUNNING ");

	cr_assert_geq(running, 2, "the head lists %d running jobs (drivers on nodes 1 and 3)",
		      running);
	harness_shutdown(k3);
	for (int i = 0; i < 100 && count_nodes(k, " FINISHED ") < 1; i++)
		usleep(20000);
	cr_assert_geq(count_nodes(k, " FINISHED "), 1, "a driver that left is not FINISHED");
}

Test(cluster, seed_example_forced_to_each_node)
{
	kray *k = three_nodes(PER_NODE);

	for (int j = 0; j < 3; j++) {
		cr_assert_eq(call_int(k, "where", NULL, 0, PER_NODE[j]), j + 1,
			     "a task needing %s did not run on node %d", PER_NODE[j], j + 1);
		for (int x = 0; x < 4; x++) {
			kray_value a = KRAY_V_INT(x);

			cr_assert_eq(call_int(k, "square", &a, 1, PER_NODE[j]), x * x,
				     "square(%d) on node %d", x, j + 1);
		}
	}
	/* The example a user runs (examples/cluster.c) says the same. */
	char out[4096];

	harness_run_example(node[0].sock, "cluster n1 n2 n3", out, sizeof(out));
	for (int j = 1; j <= 3; j++) {
		char want[64];

		snprintf(want, sizeof(want), "on the node with n%d: [0, 1, 4, 9]", j);
		cr_assert_not_null(strstr(out, want), "no '%s' in:\n%s", want, out);
	}
	/* Resources no node has: an error, not a hang. */
	harness_expect_error(k, "where", NULL, 0,
			     &(struct kray_call_opts){ .num_returns = 1, .resources = "gpu:1" },
			     KRAY_ERR_BAD_ARGS, "no live node", "gpu:1");
}

Test(cluster, busy_node_spills_tasks_but_keeps_those_with_large_arguments)
{
	kray *k = three_nodes(PER_NODE);
	kray_value ms = KRAY_V_INT(300), vals[16], arg;
	kray_ref r[16], big;
	void *data;
	int elsewhere = 0;

	/* A large object here: tasks that take it stay with it. */
	cr_assert_eq(kray_create(k, 1 << 20, &big, &data), 0, "%s", kray_errmsg(k));
	memset(data, 1, 1 << 20);
	cr_assert_eq(kray_seal(k, &big), 0);
	arg = (kray_value)KRAY_V_REF(big);
	/* Twelve tasks on a head with 2 CPU slots: those that would wait go elsewhere. */
	for (int i = 0; i < 12; i++)
		cr_assert_eq(kray_call(k, "sleep_where", &ms, 1, NULL, &r[i]), 0);
	for (int i = 12; i < 16; i++)
		cr_assert_eq(kray_call(k, "where_arg", &arg, 1, NULL, &r[i]), 0);
	cr_assert_eq(kray_get(k, r, 16, 30000, vals), 0, "%s", kray_errmsg(k));
	for (int i = 0; i < 12; i++) {
		cr_assert(vals[i].i >= 1 && vals[i].i <= 3, "task %d: node %lld", i,
			  (long long)vals[i].i);
		elsewhere += vals[i].i != 1;
	}
	cr_assert_geq(elsewhere, 3, "only %d of 12 waiting tasks went to the idle nodes",
		      elsewhere);
	for (int i = 12; i < 16; i++)
		cr_assert_eq(vals[i].i, 1, "a task with a large argument here ran on node %lld",
			     (long long)vals[i].i);
}

/* Ray's scheduling strategies in the resources text (kray_call_opts): "@node=ID" runs on
 * that node only, even when it is the busy one; "@spread" takes the nodes in turn;
 * "@node=" of a node that is not there fails with UNSCHEDULABLE, "@prefer=" runs anyway. */
Test(cluster, scheduling_strategies)
{
	static const char *const none[3] = { "", "", "" };
	kray *k = three_nodes(none);
	struct kray_node_info *info;
	char place[3][32];
	size_t n;
	kray_value ms = KRAY_V_INT(50), vals[12];
	kray_ref r[12];
	int count[4] = { 0 };

	cr_assert_eq(kray_list_nodes(k, &info, &n), 0, "%s", kray_errmsg(k));
	cr_assert_eq(n, 3);
	for (int j = 0; j < 3; j++) {
		size_t i = 0;

		while (i < n && strcmp(info[i].address, net.addr[j]))
			i++;
		cr_assert_lt(i, n, "no node at %s", net.addr[j]);
		snprintf(place[j], sizeof(place[j]), "@node=%08x", info[i].node);
	}
	free(info);
	for (int j = 0; j < 3; j++) {
		struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;

		o.resources = place[j];
		for (int i = 0; i < 6; i++) /* 6 tasks of 50 ms on 2 CPU slots: no spillback */
			cr_assert_eq(kray_call(k, "sleep_where", &ms, 1, &o, &r[i]), 0);
		cr_assert_eq(kray_get(k, r, 6, 30000, vals), 0, "%s", kray_errmsg(k));
		for (int i = 0; i < 6; i++)
			cr_assert_eq(vals[i].i, j + 1, "%s ran on node %lld", place[j],
				     (long long)vals[i].i);
		kray_release(k, r, 6);
	}
	for (int i = 0; i < 12; i++)
		cr_assert_eq(kray_call(k, "where", NULL, 0,
				       &(struct kray_call_opts){ .num_returns = 1,
								 .resources = "@spread" },
				       &r[i]),
			     0);
	cr_assert_eq(kray_get(k, r, 12, 30000, vals), 0, "%s", kray_errmsg(k));
	for (int i = 0; i < 12; i++)
		count[vals[i].i >= 1 && vals[i].i <= 3 ? vals[i].i : 0]++;
	kray_release(k, r, 12);
	cr_assert(count[1] == 4 && count[2] == 4 && count[3] == 4,
		  "SPREAD: %d, %d and %d tasks on the nodes (%d elsewhere)", count[1], count[2],
		  count[3], count[0]);
	harness_expect_error(
		k, "where", NULL, 0,
		&(struct kray_call_opts){ .num_returns = 1, .resources = "@node=0badc0de" },
		KRAY_ERR_UNSCHEDULABLE, "node 0badc0de", "not in the cluster");
	cr_assert_geq(call_int(k, "where", NULL, 0, "@prefer=0badc0de"), 1);
}

/* Without a cluster, the KV calls say so (no root needed). */
Test(cluster, kv_needs_a_cluster)
{
	kray *k = harness_embedded(1);
	void *val;
	size_t len;

	cr_assert_eq(kray_kv_put(k, "a", "1", 1), -ENOTCONN, "%s", kray_errmsg(k));
	cr_assert_eq(kray_kv_get(k, "a", &val, &len), -ENOTCONN);
	cr_assert_null(strstr(kray_errmsg(k), "(null)"));
}

static uint8_t big_byte(uint64_t i, uint64_t seed)
{
	uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + seed;

	return (uint8_t)(x >> (8 * (i & 7)));
}

Test(cluster, object_200mb_made_on_node2_read_on_node3)
{
	const size_t size = 200u << 20;
	kray *k3;
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value a[2] = { KRAY_V_INT((int64_t)size), KRAY_V_INT(12345) }, v;
	kray_ref r;
	const uint8_t *p;
	int rc;

	harness_shutdown(three_nodes(PER_NODE));
	k3 = harness_connect(node[2].sock);
	o.resources = "n2:1";
	cr_assert_eq(kray_call(k3, "big", a, 2, &o, &r), 0);
	rc = harness_get1(k3, r, 60000, &v);
	cr_assert_eq(rc, 0, "get: %d %s", rc, v.type == KRAY_ERROR ? (char *)v.data : "");
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, size, "got %zu bytes", v.len);
	p = v.data;
	for (size_t i = 0; i < size; i++)
		if (p[i] != big_byte(i, 12345))
			cr_assert_fail("byte %zu differs: %u, want %u", i, p[i],
				       big_byte(i, 12345));
	kray_value_clear(&v);
	kray_release(k3, &r, 1);

	/* The other way: a large argument put on node 3 goes to node 2 for the call. */
	void *data;
	kray_ref big_ref;

	cr_assert_eq(kray_create(k3, 64u << 20, &big_ref, &data), 0, "%s", kray_errmsg(k3));
	memset(data, 0x5a, 64u << 20);
	cr_assert_eq(kray_seal(k3, &big_ref), 0);
	kray_value arg = KRAY_V_REF(big_ref);

	cr_assert_eq(call_int(k3, "bytes_len", &arg, 1, "n2:1"), 64 << 20);
}

/* 1 GiB made on node 1, the argument of a task that must run on node 2: it streams from
 * node 1's memfd straight into a new memfd on node 2 (docs/cluster.md, "Data path"), and
 * the task's checksum of what it maps is the one of what was written. */
Test(cluster, object_1gib_to_another_node_with_checksum, .timeout = 300)
{
	const size_t size = 1ul << 30;
	kray *k = three_nodes(PER_NODE), *k2 = harness_connect(node[1].sock);
	struct kray_stats st;
	kray_ref ref;
	void *data;
	uint64_t want;

	cr_assert_eq(kray_create(k, size, &ref, &data), 0, "create: %s", kray_errmsg(k));
	pattern_fill(data, 0, size, 1414);
	want = checksum64(data, size);
	cr_assert_eq(kray_seal(k, &ref), 0, "seal: %s", kray_errmsg(k));
	kray_value arg = KRAY_V_REF(ref);

	cr_assert_eq((uint64_t)call_int(k, "inspect_bytes", &arg, 1, "n2:1"), want,
		     "node 2 read something else than node 1 wrote");
	st = harness_status(k2);
	/* Loose: the receiver's loop went on serving (about 20 ms here; bench_cluster). */
	cr_assert_lt(st.loop_stall_max_us, 2000000, "node 2's loop stalled %u us",
		     st.loop_stall_max_us);
	cr_log_info("1 GiB to node 2: its loop's longest turn %.1f ms\n",
		    st.loop_stall_max_us / 1000.0);
	harness_shutdown(k2);
	kray_release(k, &ref, 1);
}

/* Kills the node that holds the object being pulled once the receiver has begun it
 * (its store holds the new object's bytes). */
struct killer {
	kray *k; /* to node 1 (the receiver) */
	pid_t victim;
	uint64_t size;
	int killed; /* 1: while receiving; 2: only after (the pull was done already) */
	int done; /* atomic: the get returned */
};

static void *kill_mid_transfer(void *arg)
{
	struct killer *x = arg;
	int64_t t0 = harness_now_ms();
	struct kray_stats st;

	while (!__atomic_load_n(&x->done, __ATOMIC_ACQUIRE) && harness_now_ms() - t0 < 60000) {
		if (kray_status(x->k, &st))
			break;
		if (st.store_bytes >= x->size) {
			kill(x->victim, SIGKILL);
			x->killed = 1;
			return NULL;
		}
		usleep(1000);
	}
	kill(x->victim, SIGKILL);
	x->killed = 2;
	return NULL;
}

/* A node killed while the object it holds streams to the owner: the half-written copy is
 * never returned; the get waits for the object made again from lineage on the other node,
 * and gets it whole. */
Test(cluster, node_killed_mid_transfer_object_rebuilt_whole, .timeout = 300)
{
	const char *const res[3] = { "n1:1", "any:1,n2:1", "any:1,n3:1" };
	/* The killed node's link resets at once; the survivor, busy making the object again
	 * on a loaded machine, is not to be taken for dead meanwhile. */
	const char *const patient[] = { "--node-timeout-ms", "10000", NULL };
	const int64_t size = 256ll << 20;
	kray *k = three_nodes_with(res, patient);
	kray *kn[2] = { harness_connect(node[1].sock), harness_connect(node[2].sock) };
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value a[2] = { KRAY_V_INT(size), KRAY_V_INT(4242) }, v;
	struct killer x = { .k = harness_connect(node[0].sock), .size = (uint64_t)size };
	int64_t t0 = harness_now_ms();
	int ran_on = 0, rc;
	pthread_t t;
	kray_ref r;

	o.resources = "any:1";
	cr_assert_eq(kray_call(k, "big", a, 2, &o, &r), 0);
	kray_flush(k);
	while (!ran_on && harness_now_ms() - t0 < 60000) {
		for (int i = 0; i < 2; i++)
			if (harness_status(kn[i]).tasks_finished)
				ran_on = i + 2;
		usleep(10000);
	}
	cr_assert(ran_on, "big did not run on node 2 or 3");
	harness_shutdown(kn[0]);
	harness_shutdown(kn[1]);
	x.victim = node[ran_on - 1].pid;
	cr_assert_eq(pthread_create(&t, NULL, kill_mid_transfer, &x), 0);
	rc = harness_get1(k, r, 120000, &v);
	__atomic_store_n(&x.done, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	harness_shutdown(x.k);
	cr_assert_eq(rc, 0, "get: %d %s", rc, v.type == KRAY_ERROR ? (char *)v.data : "");
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, (size_t)size, "%zu bytes", v.len);
	for (int64_t i = 0; i < size; i++)
		if (((const uint8_t *)v.data)[i] != big_byte((uint64_t)i, 4242))
			cr_assert_fail("byte %lld differs: a half-written object came back",
				       (long long)i);
	cr_log_info("node %d killed %s\n", ran_on,
		    x.killed == 1 ? "while the object streamed to node 1" : "after the transfer");
	kray_value_clear(&v);
	kray_release(k, &r, 1);
}

/* Whether krayd pid maps an object's memfd read-only over at least len bytes (as a node
 * sending it does; its pool's filler maps memfds writable). */
static bool maps_an_object(pid_t pid, size_t len)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		char perms[8];

		found = strstr(line, "/memfd:kray-object") &&
			sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 &&
			!strcmp(perms, "r--s") && hi - lo >= len;
	}
	fclose(f);
	return found;
}

/* The node an object streams to killed mid-transfer: the sender (which sends the chunks
 * of an object no larger than its pool's memfds from a mapping of it) lets go of that
 * mapping, keeps the object whole and serves on.  Node 1's sending is slowed so that the
 * kill lands mid-transfer. */
Test(cluster, receiver_killed_mid_transfer_sender_lets_go, .timeout = 300)
{
	const size_t size = 200ul << 20;
	kray *k = three_nodes(PER_NODE);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	int64_t t0;
	kray_ref ref, r;
	void *data;
	uint64_t want;

	if (netns_limit_rate(&net, 0, "400mbit"))
		cr_skip_test("needs tc's tbf qdisc (iproute2)");
	cr_assert_eq(kray_create(k, size, &ref, &data), 0, "create: %s", kray_errmsg(k));
	pattern_fill(data, 0, size, 77);
	want = checksum64(data, size);
	cr_assert_eq(kray_seal(k, &ref), 0, "seal: %s", kray_errmsg(k));
	kray_value arg = KRAY_V_REF(ref);

	o.resources = "n2:1";
	o.max_retries = 0;
	cr_assert_eq(kray_call(k, "inspect_bytes", &arg, 1, &o, &r), 0, "%s", kray_errmsg(k));
	kray_flush(k);
	t0 = harness_now_ms();
	while (!maps_an_object(node[0].pid, size) && harness_now_ms() - t0 < 60000)
		usleep(1000);
	cr_assert(maps_an_object(node[0].pid, size), "node 1 never mapped the object to send it");
	kill(node[1].pid, SIGKILL);
	t0 = harness_now_ms();
	while (maps_an_object(node[0].pid, size) && harness_now_ms() - t0 < 30000)
		usleep(10000);
	cr_assert_not(maps_an_object(node[0].pid, size),
		      "node 1 still maps the object 30 s after its receiver died");
	cr_assert_eq((uint64_t)call_int(k, "inspect_bytes", &arg, 1, "n1:1"), want,
		     "the object changed on node 1");
	kray_release(k, &r, 1);
	kray_release(k, &ref, 1);
}

/* A TCP connection to the head's node port from node 1's namespace. */
static int dial_head(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(PORT)) };
	int saved = netns_enter(net.ns[0]), fd;

	cr_assert_geq(saved, 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, net.addr[0], &sa.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	netns_leave(saved);
	return fd;
}

/* Whether the peer closes fd within ms (reading and dropping what it sends). */
static bool closed_within(int fd, int ms)
{
	int64_t t0 = harness_now_ms();
	char buf[4096];

	while (harness_now_ms() - t0 < ms) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return true;
	}
	return false;
}

static void send_frame(int fd, uint16_t type, const void *body, uint32_t len)
{
	struct kray_frame_hdr h = {
		.magic = KRAY_WIRE_MAGIC, .version = KRAY_WIRE_VERSION, .type = type, .len = len
	};

	cr_assert_eq(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
	if (len)
		send(fd, body, len, MSG_NOSIGNAL);
}

Test(cluster, connection_without_the_token_is_refused)
{
	kray *k = three_nodes(PER_NODE);
	struct kray_msg_node_auth forged = { .node = 0x1234 };
	struct kray_msg_node reg = { .node = 0x1234, .num_cpus = 64 };
	int fd;

	/* A forged proof. */
	fd = dial_head();
	send_frame(fd, KRAY_MSG_NODE_AUTH, &forged, sizeof(forged));
	cr_assert(closed_within(fd, 3000), "a wrong token was not refused");
	close(fd);
	/* Work before the proof. */
	fd = dial_head();
	send_frame(fd, KRAY_MSG_NODE_REGISTER, &reg, sizeof(reg));
	cr_assert(closed_within(fd, 3000), "a register before the proof was not refused");
	close(fd);
	/* A large frame before the proof is not even read. */
	fd = dial_head();
	send_frame(fd, KRAY_MSG_NODE_AUTH, NULL, 64u << 20);
	cr_assert(closed_within(fd, 3000), "a 64 MiB frame before the proof was accepted");
	close(fd);
	/* Silence: closed after the handshake timeout. */
	fd = dial_head();
	cr_assert(closed_within(fd, 8000), "a silent connection was kept");
	close(fd);

	/* A krayd with another token does not join. */
	char listen[32], head[32];
	const char *args[] = { "--node-listen",
			       listen,
			       "--address",
			       head,
			       "--token",
			       "not-the-cluster-token-at-all",
			       NULL };
	int saved;

	snprintf(listen, sizeof(listen), "%s:7001", net.addr[2]);
	snprintf(head, sizeof(head), "%s:" PORT, net.addr[0]);
	saved = netns_enter(net.ns[2]);
	cr_assert_eq(harness_start_krayd_opts(&node[3], 1, args), 0);
	netns_leave(saved);
	usleep(1500 * 1000);
	cr_assert_eq(count_nodes(k, " ALIVE "), 3, "a node with a wrong token joined");
	cr_assert(harness_krayd_alive(&node[0]), "the head died");

	/* And the head goes on serving everyone else. */
	cr_assert_eq(call_int(k, "where", NULL, 0, "n3:1"), 3);
	cr_assert_eq(call_int(k, "where", NULL, 0, "n2:1"), 2);
}

Test(cluster, killed_node_tasks_finish_elsewhere)
{
	const char *const res[3] = { "n1:1", "any:1,n2:1", "any:1,n3:1" };
	kray *k = three_nodes(res);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT, only3 = KRAY_CALL_OPTS_DEFAULT;
	kray_value ms = KRAY_V_INT(1500), vals[6], v;
	kray_ref r[6], r3;

	o.resources = "any:1";
	o.max_retries = 3;
	for (int i = 0; i < 6; i++)
		cr_assert_eq(kray_call(k, "sleep_where", &ms, 1, &o, &r[i]), 0);
	/* One that only node 3 can run, without retries: it must fail, not hang. */
	only3.resources = "n3:1";
	only3.max_retries = 0;
	cr_assert_eq(kray_call(k, "sleep_where", &ms, 1, &only3, &r3), 0);
	kray_flush(k);
	usleep(500 * 1000);
	kill(node[2].pid, SIGKILL); /* mid-run */

	cr_assert_eq(kray_get(k, r, 6, 30000, vals), 0, "get: %s", kray_errmsg(k));
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(vals[i].type, KRAY_INT64);
		/* Node 3 died before any of its tasks could finish: all ran on node 2. */
		cr_assert_eq(vals[i].i, 2, "task %d finished on node %lld", i,
			     (long long)vals[i].i);
	}
	cr_assert_eq(harness_get1(k, r3, 10000, &v), -EREMOTEIO);
	cr_assert_eq(v.type, KRAY_ERROR);
	cr_assert_eq(v.err, KRAY_ERR_WORKER_DIED, "error kind %s", harness_errkind(v.err));
	cr_assert_not_null(strstr(v.data, "died"), "message: %s", (char *)v.data);
	kray_value_clear(&v);
	struct kray_stats st = harness_status(k);

	cr_assert_geq(st.tasks_retried, 1, "no task was retried: none went to node 3?");
	wait_nodes(k, 2, 1, 5000);
}

Test(cluster, object_only_on_killed_node_is_rebuilt_from_lineage)
{
	const char *const res[3] = { "n1:1", "any:1,n2:1", "any:1,n3:1" };
	kray *k = three_nodes(res);
	kray *kn[2] = { harness_connect(node[1].sock), harness_connect(node[2].sock) };
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT, pinned = KRAY_CALL_OPTS_DEFAULT;
	kray_value size = KRAY_V_INT(1 << 20), v;
	kray_ref r, lost;
	char only[8];
	int ran_on = 0, other, rc;
	int64_t t0 = harness_now_ms();

	/* A large result stays on the node that made it until the owner wants it. */
	o.resources = "any:1";
	cr_assert_eq(kray_call(k, "big_where", &size, 1, &o, &r), 0);
	kray_flush(k);
	while (!ran_on && harness_now_ms() - t0 < 20000) {
		for (int i = 0; i < 2; i++)
			if (harness_status(kn[i]).tasks_finished)
				ran_on = i + 2;
		usleep(10000);
	}
	cr_assert(ran_on, "big_where did not run on node 2 or 3");
	other = ran_on == 2 ? 3 : 2;
	/* One more that only that node can make: it cannot be rebuilt. */
	snprintf(only, sizeof(only), "n%d:1", ran_on);
	pinned.resources = only;
	cr_assert_eq(kray_call(k, "big_where", &size, 1, &pinned, &lost), 0);
	kray_flush(k);
	while (harness_status(kn[ran_on - 2]).tasks_finished < 2 && harness_now_ms() - t0 < 20000)
		usleep(10000);
	harness_shutdown(kn[0]);
	harness_shutdown(kn[1]);

	kill(node[ran_on - 1].pid, SIGKILL); /* with the only copies */
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_eq(rc, 0, "get: %d %s", rc, v.type == KRAY_ERROR ? (char *)v.data : "");
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, 1u << 20);
	int64_t made_on;

	memcpy(&made_on, v.data, sizeof(made_on));
	cr_assert_eq(made_on, other, "the object was not rebuilt on node %d (made on %lld)", other,
		     (long long)made_on);
	kray_value_clear(&v);
	cr_assert_geq(count_nodes(k, " ALIVE "), 2);

	/* The one only the dead node could make: an error, not a hang. */
	rc = harness_get1(k, lost, 30000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "get of an object that cannot be rebuilt: %d", rc);
	cr_assert_eq(v.type, KRAY_ERROR);
	kray_value_clear(&v);
}

Test(cluster, hung_node_is_declared_dead_then_rejoins)
{
	kray *k = three_nodes(PER_NODE);
	int64_t took;

	kill(node[2].pid, SIGSTOP); /* no heartbeats, but no reset either */
	took = wait_nodes(k, 2, 1, 5000);
	cr_assert_leq(took, 3000,
		      "a silent node took %lld ms to be declared dead (timeout "
		      "1000 ms)",
		      (long long)took);
	harness_expect_error(k, "where", NULL, 0,
			     &(struct kray_call_opts){ .num_returns = 1, .resources = "n3:1" },
			     KRAY_ERR_BAD_ARGS, "no live node", NULL);
	kill(node[2].pid, SIGCONT);
	wait_nodes(k, 3, 0, 5000);
	cr_assert_eq(call_int(k, "where", NULL, 0, "n3:1"), 3);
}

static void kv_expect(kray *k, const char *key, const char *want)
{
	void *val = NULL;
	size_t len = 0;
	int rc = kray_kv_get(k, key, &val, &len);

	cr_assert_eq(rc, 0, "kv get %s: %d %s", key, rc, kray_errmsg(k));
	cr_assert_eq(len, strlen(want), "kv %s: %zu bytes", key, len);
	cr_assert_eq(memcmp(val, want, len), 0, "kv %s: wrong value", key);
	free(val);
}

Test(cluster, kv_table_kept_by_the_head)
{
	kray *k = three_nodes(PER_NODE);
	kray *k3 = harness_connect(node[2].sock);
	void *val;
	size_t len;

	cr_assert_eq(kray_kv_put(k3, "config", "from node 3", 11), 0, "%s", kray_errmsg(k3));
	kv_expect(k, "config", "from node 3");
	cr_assert_eq(kray_kv_put(k, "config", "replaced", 8), 0);
	kv_expect(k3, "config", "replaced");
	cr_assert_eq(kray_kv_del(k3, "config"), 0);
	cr_assert_eq(kray_kv_get(k, "config", &val, &len), -ENOENT);
	cr_assert_eq(kray_kv_get(k3, "never-put", &val, &len), -ENOENT);
	cr_assert_eq(kray_kv_put(k, "", "x", 1), -EINVAL);
}

/* A head alone, on loopback (no namespaces, no root): its GCS log survives a torn tail. */
Test(cluster, gcs_log_replay_cuts_a_torn_record)
{
	struct harness h1, h2;
	char dir[128], log[256], tok[256];
	const char *args[] = { "--head", "--node-listen", "127.0.0.1:0", "--gcs-log",
			       log,	 "--token-file",  tok,		 NULL };
	struct stat st;
	off_t good;
	kray *k;
	FILE *f;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(log, sizeof(log), "%s/gcs.log", dir);
	snprintf(tok, sizeof(tok), "%s/token", dir);
	cr_assert_eq(harness_start_krayd_opts(&h1, 1, args), 0);
	k = harness_connect(h1.sock);
	cr_assert_eq(kray_kv_put(k, "a", "1", 1), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_kv_put(k, "b", "22", 2), 0);
	cr_assert_eq(kray_kv_del(k, "a"), 0);
	harness_shutdown(k);
	harness_stop_krayd(&h1);
	cr_assert_eq(stat(log, &st), 0);
	good = st.st_size;
	cr_assert_gt(good, 0, "nothing was logged");
	/* Half a record, as if the head died in the middle of writing it. */
	f = fopen(log, "a");
	cr_assert_not_null(f);
	fwrite("KRAY\x01\x00\x43\x00\xff\xff", 1, 10, f);
	fclose(f);

	cr_assert_eq(harness_start_krayd_opts(&h2, 1, args), 0, "the head refused its log");
	cr_assert_eq(stat(log, &st), 0);
	cr_assert_eq(st.st_size, good, "the torn record was not cut off (%lld bytes, want %lld)",
		     (long long)st.st_size, (long long)good);
	k = harness_connect(h2.sock);
	kv_expect(k, "b", "22");
	void *val;
	size_t len;

	cr_assert_eq(kray_kv_get(k, "a", &val, &len), -ENOENT, "a deleted key came back");
	/* And it goes on logging. */
	cr_assert_eq(kray_kv_put(k, "c", "333", 3), 0);
	cr_assert_eq(stat(log, &st), 0);
	cr_assert_gt(st.st_size, good);
}

/*
 * A key put thousands of times does not make the GCS log grow with it: the log is
 * compacted to the tables as they stand, and a head restarted on the compacted log has
 * them all (the last value of each key, deleted keys gone).
 */
Test(cluster, gcs_log_is_compacted)
{
	struct harness h1, h2;
	char dir[128], log[256], tok[256], key[16], val[128];
	const char *args[] = { "--head", "--node-listen", "127.0.0.1:0", "--gcs-log",
			       log,	 "--token-file",  tok,		 NULL };
	struct stat st;
	kray *k;
	int rc;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(log, sizeof(log), "%s/gcs.log", dir);
	snprintf(tok, sizeof(tok), "%s/token", dir);
	cr_assert_eq(harness_start_krayd_opts(&h1, 1, args), 0);
	k = harness_connect(h1.sock);
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(kray_kv_put(k, key, key, strlen(key)), 0, "%s", kray_errmsg(k));
	}
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 3000; i++) {
		snprintf(val, sizeof(val), "%08d", i); /* 8 digits, a NUL, then 'v's */
		rc = kray_kv_put(k, "hot", val, sizeof(val));
		cr_assert_eq(rc, 0, "put %d: %d %s", i, rc, kray_errmsg(k));
	}
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(kray_kv_del(k, key), 0);
	}
	cr_assert_eq(stat(log, &st), 0);
	/* 3,050 records of at least 160 bytes would be 480 KB: compacted, far less */
	cr_assert_lt(st.st_size, 200 * 1024,
		     "the log holds %lld bytes after 3,050 changes to "
		     "41 keys: not compacted",
		     (long long)st.st_size);
	harness_shutdown(k);
	harness_stop_krayd(&h1);

	cr_assert_eq(harness_start_krayd_opts(&h2, 1, args), 0, "the head refused its log");
	k = harness_connect(h2.sock);
	for (int i = 0; i < 40; i++) {
		void *v;
		size_t len;

		snprintf(key, sizeof(key), "k%d", i);
		if (i < 10) {
			cr_assert_eq(kray_kv_get(k, key, &v, &len), -ENOENT, "deleted %s is back",
				     key);
			continue;
		}
		kv_expect(k, key, key);
	}
	void *v = NULL;
	size_t len = 0;

	cr_assert_eq(kray_kv_get(k, "hot", &v, &len), 0, "%s", kray_errmsg(k));
	cr_assert_eq(len, sizeof(val));
	cr_assert_str_eq((const char *)v, "00002999", "hot holds an old value after replay");
	free(v);
	harness_shutdown(k);
	harness_stop_krayd(&h2);
}

Test(cluster, restarted_head_recovers_named_detached_actor_and_kv)
{
	kray *k = three_nodes(PER_NODE);
	kray *k2 = harness_connect(node[1].sock);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	char old_token[256], old_log[256], listen[32];
	const char *args[] = { "--head",  "--node-listen",
			       listen,	  "--token-file",
			       old_token, "--gcs-log",
			       old_log,	  "--resources",
			       "n1:1",	  "--heartbeat-ms",
			       "100",	  "--node-timeout-ms",
			       "1000",	  NULL };
	kray_ref a, found;
	int saved;

	/* State in the GCS: a key, and a named detached actor living on node 3 (placed
	 * there for its resources by a driver on the head). */
	cr_assert_eq(kray_kv_put(k2, "model", "v1", 2), 0, "%s", kray_errmsg(k2));
	o.name = "keeper";
	o.detached = 1;
	o.resources = "n3:0.5"; /* half: tasks that need n3 still run beside it */
	cr_assert_eq(kray_actor_create(k, "Where", NULL, 0, &o, &a), 0, "%s", kray_errmsg(k));
	cr_assert_eq(harness_actor_int(k, a, "incr"), 1);
	/* Found by name from node 2 (the head says where it lives). */
	cr_assert_eq(kray_get_actor(k2, "keeper", NULL, &found), 0, "%s", kray_errmsg(k2));
	cr_assert_eq(harness_actor_int(k2, found, "node"), 3);
	cr_assert_eq(harness_actor_int(k2, found, "incr"), 2);
	kray_release(k2, &found, 1);
	kray_release(k, &a, 1);
	harness_shutdown(k); /* its creator is gone: detached, it lives on */

	/* Kill the head; start a new one with the old token and log. */
	snprintf(old_token, sizeof(old_token), "%s", token_file);
	snprintf(old_log, sizeof(old_log), "%s.gcs", node[0].sock);
	snprintf(listen, sizeof(listen), "%s:" PORT, net.addr[0]);
	kill(node[0].pid, SIGKILL);
	usleep(300 * 1000);
	setenv("KRAY_TEST_NODE", "1", 1);
	saved = netns_enter(net.ns[0]);
	cr_assert_eq(harness_start_krayd_opts(&node[3], 2, args), 0);
	netns_leave(saved);
	k = harness_connect(node[3].sock);
	wait_nodes(k, 3, 0, 10000);

	/* The nodes joined again and work goes on. */
	cr_assert_eq(call_int(k, "where", NULL, 0, "n2:1"), 2);
	cr_assert_eq(call_int(k, "where", NULL, 0, "n3:0.5"), 3);
	/* The actor is found again, with its state: the same instance. */
	cr_assert_eq(kray_get_actor(k, "keeper", NULL, &found), 0, "%s", kray_errmsg(k));
	cr_assert_eq(harness_actor_int(k, found, "incr"), 3);
	cr_assert_eq(kray_get_actor(k2, "keeper", NULL, &found), 0, "%s", kray_errmsg(k2));
	cr_assert_eq(harness_actor_int(k2, found, "incr"), 4);
	/* The job table: the first driver's job (finished before the kill) from the log,
	 * node 2's driver (still running) from node 2's new registration. */
	cr_assert_geq(count_nodes(k, " FINISHED "), 1, "the log's finished job is gone");
	cr_assert_geq(count_nodes(k, " RUNNING "), 2, "running jobs were not registered again");
	/* And the key. */
	kv_expect(k, "model", "v1");
	kv_expect(k2, "model", "v1");
}

/*
 * A name is the cluster's, as in Ray: an actor named on node 2 keeps the name from
 * creations on node 3 and on the head (-EEXIST, naming its node), until it is killed;
 * then the name can be taken anywhere.
 */
Test(cluster, actor_names_are_unique_in_the_cluster)
{
	kray *k = three_nodes(PER_NODE);
	kray *k2 = harness_connect(node[1].sock), *k3 = harness_connect(node[2].sock);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref a, b, found;
	int rc;

	o.name = "solo";
	cr_assert_eq(kray_actor_create(k2, "Where", NULL, 0, &o, &a), 0, "%s", kray_errmsg(k2));
	cr_assert_eq(harness_actor_int(k2, a, "node"), 2);
	rc = kray_actor_create(k3, "Where", NULL, 0, &o, &b);
	cr_assert_eq(rc, -EEXIST, "a second 'solo' on node 3: %d %s", rc, kray_errmsg(k3));
	cr_assert(strstr(kray_errmsg(k3), "lives on node"), "%s", kray_errmsg(k3));
	rc = kray_actor_create(k, "Where", NULL, 0, &o, &b);
	cr_assert_eq(rc, -EEXIST, "a second 'solo' on the head: %d %s", rc, kray_errmsg(k));
	/* another namespace is another name */
	o.ns = "other";
	cr_assert_eq(kray_actor_create(k3, "Where", NULL, 0, &o, &b), 0, "%s", kray_errmsg(k3));
	cr_assert_eq(harness_actor_int(k3, b, "node"), 3);
	kray_release(k3, &b, 1);
	o.ns = NULL;
	/* the name is found from node 3: still the one on node 2 */
	cr_assert_eq(kray_get_actor(k3, "solo", NULL, &found), 0, "%s", kray_errmsg(k3));
	cr_assert_eq(harness_actor_int(k3, found, "incr"), 1);
	kray_release(k3, &found, 1);

	/* killed, its name is free on every node */
	cr_assert_eq(kray_kill(k2, a, 1), 0, "%s", kray_errmsg(k2));
	kray_release(k2, &a, 1);
	for (int i = 0; i < 100; i++) {
		rc = kray_actor_create(k3, "Where", NULL, 0, &o, &b);
		if (rc != -EEXIST)
			break;
		usleep(20000); /* node 2 tells the head the actor is gone */
	}
	cr_assert_eq(rc, 0, "'solo' on node 3 after the first was killed: %d %s", rc,
		     kray_errmsg(k3));
	cr_assert_eq(harness_actor_int(k3, b, "node"), 3);
	kray_release(k3, &b, 1);
	harness_shutdown(k3);
	harness_shutdown(k2);
	harness_shutdown(k);
}

Test(cluster, actor_on_node3_called_from_node1)
{
	kray *k = three_nodes(PER_NODE);
	kray *k3 = harness_connect(node[2].sock);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref a, r[20];
	kray_value v[20];
	char *text = NULL;

	o.resources = "n3:1";
	cr_assert_eq(kray_actor_create(k, "Where", NULL, 0, &o, &a), 0, "%s", kray_errmsg(k));
	cr_assert_eq(harness_actor_int(k, a, "node"), 3, "the actor does not live on node 3");
	/* A stream of calls keeps its order. */
	for (int i = 0; i < 20; i++)
		cr_assert_eq(kray_actor_call(k, a, "incr", NULL, 0, NULL, &r[i]), 0);
	cr_assert_eq(kray_get(k, r, 20, 30000, v), 0, "%s", kray_errmsg(k));
	for (int i = 0; i < 20; i++)
		cr_assert_eq(v[i].i, i + 1, "call %d answered %lld", i, (long long)v[i].i);
	kray_release(k, r, 20);
	/* Node 3 lists it. */
	cr_assert_eq(kray_describe_actors(k3, &text), 0);
	cr_assert_not_null(strstr(text, "Where"), "node 3 does not list the actor:\n%s", text);
	free(text);
	/* Releasing the last handle on node 1 ends it on node 3. */
	kray_release(k, &a, 1);
	kray_flush(k);
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(kray_describe_actors(k3, &text), 0);
		/* Dead, or dead and forgotten (no handle left anywhere). */
		bool dead = !strstr(text, "Where") || strstr(text, "dead");

		free(text);
		if (dead)
			return;
		usleep(20000);
	}
	cr_assert_fail("the actor on node 3 did not end when node 1 released it");
}

/* Puts len bytes of big_byte() (seed: len) containing refs. */
static kray_ref put_with_refs(kray *k, size_t len, const kray_ref *refs, size_t n)
{
	uint8_t *p = malloc(len ? len : 1);
	kray_ref r;
	int rc;

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = big_byte(i, len);
	rc = kray_put_refs(k, &KRAY_V_BYTES(p, len), refs, n, &r);
	free(p);
	cr_assert_eq(rc, 0, "kray_put_refs(%zu bytes, %zu refs): %s", len, n, kray_errmsg(k));
	return r;
}

/* Waits up to 10 s for node i's object count to come down to at most want. */
static void expect_objects(int i, uint64_t want, const char *what)
{
	kray *ki = harness_connect(node[i].sock);
	uint64_t have = 0;

	for (int t = 0; t < 500; t++) {
		have = harness_status(ki).objects;
		if (have <= want)
			break;
		usleep(20000);
	}
	harness_shutdown(ki);
	cr_assert_leq(have, want, "%s: node %d keeps %llu objects (want at most %llu)", what, i + 1,
		      (unsigned long long)have, (unsigned long long)want);
}

Test(cluster, refs_inside_values_cross_nodes_and_are_freed_everywhere)
{
	kray *k = three_nodes(PER_NODE);
	uint64_t base[3];
	kray_ref ints[100], small, large;
	kray_value arg;
	int64_t want = 0;

	for (int i = 0; i < 3; i++) {
		kray *ki = harness_connect(node[i].sock);

		base[i] = harness_status(ki).objects;
		harness_shutdown(ki);
	}
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(kray_put(k, &KRAY_V_INT(i * 7), &ints[i]), 0);
		want += i * 7;
	}
	/* A small value holding 100 refs, to a task on node 2: each is fetched from node 1. */
	small = put_with_refs(k, 64, ints, 100);
	arg = KRAY_V_REF(small);
	cr_assert_eq(call_int(k, "refs_sum", &arg, 1, "n2:1"), want);
	/* A 4 MiB object (above inline-max) holding 10 of them, to node 3, checksummed there. */
	large = put_with_refs(k, 4u << 20, ints + 90, 10);
	arg = KRAY_V_REF(large);
	cr_assert_eq(call_int(k, "refs_sum", &arg, 1, "n3:1"), 7 * (90 + 99) * 10 / 2);
	/* The driver lets go while node 2 borrows them (a task holding the container): the
	 * objects stay until that task is done. */
	arg = KRAY_V_REF(small);
	kray_ref later;
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;

	o.resources = "n2:1";
	kray_value ms = KRAY_V_INT(300);
	kray_ref nap;

	cr_assert_eq(kray_call(k, "sleep_where", &ms, 1, &o, &nap), 0);
	cr_assert_eq(kray_call(k, "refs_sum", &arg, 1, &o, &later), 0); /* runs after the nap */
	kray_release(k, ints, 100);
	kray_release(k, &small, 1);
	kray_release(k, &large, 1);
	kray_value v;
	int rc = harness_get1(k, later, 30000, &v);

	cr_assert_eq(rc, 0, "refs_sum after the driver released: %d %s", rc,
		     v.type == KRAY_ERROR ? (const char *)v.data : kray_errmsg(k));
	cr_assert_eq(v.i, want);
	kray_release(k, &later, 1);
	kray_release(k, &nap, 1);
	kray_flush(k);
	/* Every holder let go: freed on every node. */
	for (int i = 0; i < 3; i++)
		expect_objects(i, base[i] + 2, "after every holder let go");
}

Test(cluster, actor_handle_passed_to_a_task_on_another_node)
{
	kray *k = three_nodes(PER_NODE);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref a, b;
	kray_value args[2];

	/* The actor on node 3, the task on node 2, the handle lent by node 1. */
	o.resources = "n3:1";
	cr_assert_eq(kray_actor_create(k, "Where", NULL, 0, &o, &a), 0, "%s", kray_errmsg(k));
	args[0] = KRAY_V_ACTOR(a);
	args[1] = KRAY_V_INT(3);
	cr_assert_eq(call_int(k, "incr_via", args, 2, "n2:1"), 2003);
	cr_assert_eq(harness_actor_int(k, a, "incr"), 4, "the calls from node 2 reached the actor");
	/* The actor on node 1 (the handle's own node), the task on node 2 (node 3's n3 is
	 * the first actor's). */
	o.resources = "n1:1";
	cr_assert_eq(kray_actor_create(k, "Where", NULL, 0, &o, &b), 0, "%s", kray_errmsg(k));
	args[0] = KRAY_V_ACTOR(b);
	args[1] = KRAY_V_INT(2);
	cr_assert_eq(call_int(k, "incr_via", args, 2, "n2:1"), 2002);
	cr_assert_eq(harness_actor_int(k, b, "node"), 1);
	kray_release(k, &a, 1);
	kray_release(k, &b, 1);
}

Test(cluster, recursive_cancel_reaches_a_child_on_another_node)
{
	kray *k = three_nodes(PER_NODE);
	kray *k2 = harness_connect(node[1].sock);
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value ms = KRAY_V_INT(1500), v;
	uint64_t failed = harness_status(k2).tasks_failed;
	kray_ref p;
	int rc;

	/* Driver on node 1, parent on node 3, its child on node 2. */
	o.resources = "n3:1";
	cr_assert_eq(kray_call(k, "wait_child", &ms, 1, &o, &p), 0);
	kray_flush(k);
	for (int i = 0; i < 500 && !harness_status(k2).workers_busy; i++)
		usleep(10000);
	cr_assert_eq(kray_cancel(k, &p, 0, 1), 0, "%s", kray_errmsg(k));
	rc = harness_get1(k, p, 30000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "the parent: %d", rc);
	cr_assert_eq(v.err, KRAY_ERR_CANCELLED, "the parent: %s", harness_errkind(v.err));
	kray_value_clear(&v);
	/* The child (a C task runs to its end) fails as cancelled on node 2. */
	for (int i = 0; i < 500 && harness_status(k2).tasks_failed == failed; i++)
		usleep(10000);
	cr_assert_eq(harness_status(k2).tasks_failed, failed + 1,
		     "the child on node 2 was not cancelled");
	harness_shutdown(k2);
}

Test(cluster, killed_driver_ends_its_tasks_on_another_node)
{
	kray *k = three_nodes(PER_NODE);
	kray *k2 = harness_connect(node[1].sock);
	struct kray_stats st;
	pid_t pid;
	int sync[2], status;
	int64_t t0;

	(void)k;
	cr_assert_eq(pipe(sync), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		/* A driver on node 1 whose tasks run on node 2, killed while they do. */
		struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
		struct kray_config cfg = { .address = node[0].sock,
					   .code_path = getenv("KRAY_TEST_CODE_PATH") };
		kray_value ms = KRAY_V_INT(60000);
		kray *kd;
		kray_ref r;

		close(sync[0]);
		if (kray_init(&kd, &cfg))
			_exit(1);
		o.resources = "n2:1";
		for (int i = 0; i < 10; i++)
			if (kray_call(kd, "sleep_where", &ms, 1, &o, &r))
				_exit(1);
		kray_flush(kd);
		if (write(sync[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(sync[1]);
	cr_assert_eq(read(sync[0], &status, 1), 1, "the driver did not submit");
	close(sync[0]);
	for (int i = 0; i < 500 && !harness_status(k2).workers_busy; i++)
		usleep(10000);
	cr_assert_geq(harness_status(k2).workers_busy, 1, "node 2 never ran the driver's tasks");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	t0 = harness_now_ms();
	do {
		st = harness_status(k2);
		if (!st.workers_busy && !st.tasks_queued)
			break;
		usleep(20000);
	} while (harness_now_ms() - t0 < 10000);
	cr_assert(!st.workers_busy && !st.tasks_queued,
		  "node 2 still runs the dead driver's tasks: %llu busy, %llu queued",
		  (unsigned long long)st.workers_busy, (unsigned long long)st.tasks_queued);
	harness_shutdown(k2);
}

Test(cluster, actor_restarts_on_another_node_when_its_node_dies)
{
	const char *const res[3] = { "n1:1", "any:1,n2:1", "any:1,n3:1" };
	kray *k = three_nodes(res);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value ms = KRAY_V_INT(2000), v;
	kray_ref a, r;
	int64_t first, second;
	int rc;

	o.resources = "any:1";
	o.max_restarts = 1;
	o.max_task_retries = -1;
	cr_assert_eq(kray_actor_create(k, "Where", NULL, 0, &o, &a), 0, "%s", kray_errmsg(k));
	first = harness_actor_int(k, a, "node");
	cr_assert(first == 2 || first == 3, "placed on node %lld", (long long)first);
	cr_assert_eq(harness_actor_int(k, a, "incr"), 1);
	cr_assert_eq(harness_actor_int(k, a, "incr"), 2);
	/* A call in flight when its node dies is run again by the restarted actor. */
	cr_assert_eq(kray_actor_call(k, a, "nap", &ms, 1, NULL, &r), 0);
	kray_flush(k);
	usleep(400 * 1000);
	kill(node[first - 1].pid, SIGKILL);
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_eq(rc, 0, "the call in flight: %d %s", rc,
		     v.type == KRAY_ERROR ? (char *)v.data : "");
	second = v.i;
	cr_assert_eq(second, 5 - first, "restarted on node %lld", (long long)second);
	kray_release(k, &r, 1);
	cr_assert_eq(harness_actor_int(k, a, "node"), second);
	cr_assert_eq(harness_actor_int(k, a, "incr"), 1, "a restarted actor starts over");
	/* No restarts left: its next death is final. */
	kill(node[second - 1].pid, SIGKILL);
	cr_assert_eq(kray_actor_call(k, a, "node", NULL, 0, NULL, &r), 0);
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "a call after the last death: %d", rc);
	cr_assert_eq(v.err, KRAY_ERR_ACTOR_DIED, "error kind %s", harness_errkind(v.err));
	kray_value_clear(&v);
}

/* GET path from the head's dashboard (on loopback in the head's namespace). */
static char dash_reply[8 << 20];

static const char *dash_get(int port, const char *path)
{
	char req[256];
	int saved = netns_enter(net.ns[0]);

	cr_assert_geq(saved, 0, "setns: %s", strerror(-saved));
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	harness_http(port, req, dash_reply, sizeof(dash_reply));
	netns_leave(saved);
	cr_assert(!strncmp(dash_reply, "HTTP/1.0 200", 12), "%s: %.300s", path, dash_reply);
	return strstr(dash_reply, "\r\n\r\n") + 4;
}

/* The head's dashboard shows the whole cluster: each node's workers, tasks and actors
 * (asked over the node links), and one timeline of every node's tasks (pid = node). */
Test(cluster, head_dashboard_shows_every_node)
{
	int port = harness_pick_port();
	char addr[32], pids[3][32];
	const char *more[] = { "--dashboard", addr, NULL };
	const char *body, *p;
	unsigned npids = 0;
	kray *k;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	k = three_nodes_with(PER_NODE, more);
	for (int j = 0; j < 3; j++)
		for (int x = 0; x < 3; x++) {
			kray_value a = KRAY_V_INT(x);

			cr_assert_eq(call_int(k, "square", &a, 1, PER_NODE[j]), x * x);
		}
	body = dash_get(port, "/api/v1/cluster");
	cr_assert(!strncmp(body, "{\"api\":\"v1\",\"nodes\":[", 21), "%.300s", body);
	cr_assert_null(strstr(body, "\"error\""), "a node did not answer: %.2000s", body);
	int summaries = 0;

	for (p = body; (p = strstr(p, "\",\"workers\":{\"api\":\"v1\"")); p++)
		summaries++;
	cr_assert_eq(summaries, 3, "one summary per node: %.3000s", body);
	/* Node 2 ran square: its own tasks say so. */
	cr_assert_geq(strstr(body, "\"name\":\"square\"") ? 1 : 0, 1, "%.3000s", body);

	body = dash_get(port, "/api/v1/timeline");
	cr_assert(!strncmp(body, "{\"traceEvents\":[", 16), "%.300s", body);
	for (p = body; (p = strstr(p, "{\"name\":\"square\",\"cat\":\"task\",\"ph\":\"X\"")); p++) {
		const char *pid = strstr(p, "\"pid\":");
		char v[32];
		bool seen = false;

		cr_assert_not_null(pid);
		snprintf(v, sizeof(v), "%.*s", (int)strcspn(pid + 6, ","), pid + 6);
		for (unsigned i = 0; i < npids; i++)
			seen |= !strcmp(pids[i], v);
		if (!seen && npids < 3)
			snprintf(pids[npids++], sizeof(pids[0]), "%s", v);
	}
	cr_assert_eq(npids, 3, "square's events from %u nodes in the merged timeline", npids);
	cr_assert_not_null(strstr(body, "\"nodes\":[{\"node_id\":"), "%.300s",
			   strstr(body, "otherData"));
	/* A node that died: the cluster view says it did not answer, or no longer lists it. */
	harness_stop_krayd(&node[2]);
	wait_nodes(k, 2, 1, 10000);
	body = dash_get(port, "/api/v1/cluster");
	summaries = 0;
	for (p = body; (p = strstr(p, "\",\"workers\":{\"api\":\"v1\"")); p++)
		summaries++;
	cr_assert_eq(summaries, 2, "the two live nodes: %.3000s", body);
	harness_shutdown(k);
}

/* A named actor created from node 2 onto node 3 is found from the head at once: the head
 * gives the name out before node 3 has the actor (node 2's FWD_ACTOR may still be on its
 * way, the first one behind a new link's handshake), and node 3 waits for it rather than
 * answering that the actor is gone. */
Test(cluster, named_actor_is_found_right_after_its_creation_elsewhere)
{
	kray *k = three_nodes(PER_NODE);
	kray *k2 = harness_connect(node[1].sock), *k3 = harness_connect(node[2].sock);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;

	for (int i = 0; i < 8; i++) {
		/* Even: onto node 3, looked up on the head (its own table); odd: onto the
		 * head, looked up from node 3 (GCS_LOOKUP). */
		kray *look = i % 2 ? k3 : k;
		char name[16];
		kray_ref a, found;

		snprintf(name, sizeof(name), "quick%d", i);
		o.name = name;
		o.resources = i % 2 ? "n1:1" : "n3:1";
		cr_assert_eq(kray_actor_create(k2, "Where", NULL, 0, &o, &a), 0, "%s",
			     kray_errmsg(k2));
		cr_assert_eq(kray_get_actor(look, name, NULL, &found), 0, "'%s' right after: %s",
			     name, kray_errmsg(look));
		cr_assert_eq(harness_actor_int(look, found, "node"), i % 2 ? 1 : 3);
		kray_release(look, &found, 1);
		kray_release(k2, &a, 1);
	}
	harness_shutdown(k3);
	harness_shutdown(k2);
}
