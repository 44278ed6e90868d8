// SPDX-License-Identifier: Apache-2.0
/*
 * Objects between any two nodes (issue 19, daemon/cluster/pull.c, docs/cluster.md "Objects
 * between any two nodes"): four krayds in network namespaces (netns.h), node 1 the head and
 * the owner of the objects.  A task's node pulls a large argument from whichever node the
 * owner names; the byte counters each node shows in LIST_NODES ("object bytes with node
 * ...") say who sent what to whom.  Needs root (skips without).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../include/uapi/kray_wire.h"

#include "../fixtures/pattern.h"
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

TestSuite(cluster_pull, .fini = fini, .timeout = 180);

/* BPF is not what this suite tests, and loading it is slow on a busy box. */
static void start_node(int i, const char *res, const char *const *more)
{
	const char *flags[16] = { "--bpf", "off" };

	for (int j = 0; more && more[j] && j < 13; j++)
		flags[2 + j] = more[j];
	harness_start_node(&node[i], &net, i, 2, 100, res, flags, token_file, sizeof(token_file));
}

static void wait_alive(int i, int want)
{
	kray *k = harness_connect(node[i].sock);
	int64_t t0 = harness_now_ms();
	int n = -1;

	while (harness_now_ms() - t0 < 10000 && (n = harness_count_alive(k)) != want)
		usleep(20000);
	cr_assert_eq(n, want, "node %d sees %d alive nodes, want %d", i + 1, n, want);
	harness_shutdown(k);
}

/* NODES nodes, node i with resource "n<i+1>:1"; returns a driver on the head. */
static kray *cluster(const char *const *more)
{
	char why[128], res[16];
	int rc = netns_cluster_up(&net, NODES, why, sizeof(why));

	if (rc)
		cr_skip_test("needs network namespaces: %s", why);
	for (int i = 0; i < NODES; i++) {
		snprintf(res, sizeof(res), "n%d:1", i + 1);
		start_node(i, res, more);
	}
	for (int i = 0; i < NODES; i++)
		wait_alive(i, NODES);
	return harness_connect(node[0].sock);
}

/* Node i's object byte counters, summed over the other nodes. */
static void bytes_of(int i, uint64_t *sent, uint64_t *received)
{
	harness_node_object_bytes(node[i].sock, sent, received);
}

/* Node i's "objects between nodes" counter named by what ("fetched", ...). */
static uint64_t pull_counter(int i, const char *what)
{
	kray *k = harness_connect(node[i].sock);
	char *text = NULL, *p, pat[64];
	unsigned long long a = 0, b = 0, c = 0, d = 0;

	cr_assert_eq(kray_describe_nodes(k, &text), 0, "describe: %s", kray_errmsg(k));
	p = strstr(text, "objects between nodes: ");
	cr_assert_not_null(p, "no pull counters in:\n%s", text);
	cr_assert_eq(sscanf(p,
			    "objects between nodes: %llu locations sent, %llu fetched, %llu "
			    "fetches served, %llu fell back",
			    &a, &b, &c, &d),
		     4, "%s", p);
	free(text);
	harness_shutdown(k);
	snprintf(pat, sizeof(pat), "%s", what);
	return !strcmp(pat, "locations") ? a :
	       !strcmp(pat, "fetched")	 ? b :
	       !strcmp(pat, "served")	 ? c :
					   d;
}

/* A large object put on the head, filled with a pattern; its checksum in *sum. */
static kray_ref put_big(kray *k, size_t size, int64_t *sum)
{
	kray_ref r;
	void *data;

	cr_assert_eq(kray_create(k, size, &r, &data), 0, "%s", kray_errmsg(k));
	for (size_t i = 0; i < size; i++)
		((uint8_t *)data)[i] = (uint8_t)((i * 2654435761u) >> 13);
	*sum = checksum_words(data, size);
	cr_assert_eq(kray_seal(k, &r), 0, "%s", kray_errmsg(k));
	return r;
}

/* bytes_sum(ref, ms) on the node with resource res. */
static kray_ref call_sum(kray *k, kray_ref big, int64_t ms, const char *res, int retries)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value a[2] = { KRAY_V_REF(big), KRAY_V_INT(ms) };
	kray_ref r;

	o.resources = res;
	o.max_retries = retries;
	cr_assert_eq(kray_call(k, "bytes_sum", a, 2, &o, &r), 0, "%s", kray_errmsg(k));
	kray_flush(k);
	return r;
}

static void expect_sum(kray *k, kray_ref r, int64_t want, const char *what)
{
	kray_value v;
	int rc = harness_get1(k, r, 60000, &v);

	cr_assert_eq(rc, 0, "%s: get %d %s", what, rc,
		     v.type == KRAY_ERROR ? (const char *)v.data : kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_INT64, "%s: type %d", what, v.type);
	cr_assert_eq(v.i, want, "%s: checksum %" PRId64 ", want %" PRId64, what, v.i, want);
	kray_release(k, &r, 1);
}

/* Waits until node i has received at least n object bytes. */
static void wait_received(int i, uint64_t n)
{
	int64_t t0 = harness_now_ms();
	uint64_t s, r = 0;

	while (harness_now_ms() - t0 < 30000) {
		bytes_of(i, &s, &r);
		if (r >= n)
			return;
		usleep(20000);
	}
	cr_assert_fail("node %d received %" PRIu64 " object bytes, want %" PRIu64, i + 1, r, n);
}

/* Waits until a task runs on node i (so its copy of the argument is complete, and the
 * owner has been told), then a little for that word to arrive. */
static void wait_running(int i)
{
	kray *k = harness_connect(node[i].sock);
	int64_t t0 = harness_now_ms();

	while (harness_status(k).workers_busy < 1) {
		cr_assert_lt(harness_now_ms() - t0, 30000, "no task ran on node %d", i + 1);
		usleep(20000);
	}
	harness_shutdown(k);
	usleep(300 * 1000);
}

/* The owner (node 1) puts X; a task on node 2 takes it (and keeps its copy while it
 * sleeps); then a task on node 3 takes it too: node 3 pulls it from node 2, not node 1. */
Test(cluster_pull, b_to_c_directly_with_the_owner_on_a)
{
	const size_t size = 48u << 20;
	kray *k = cluster(NULL);
	int64_t sum;
	kray_ref x = put_big(k, size, &sum), r2, r3;
	uint64_t s[NODES], rcv[NODES];

	r2 = call_sum(k, x, 4000, "n2:1", 0);
	wait_running(1);
	r3 = call_sum(k, x, 0, "n3:1", 0);
	expect_sum(k, r3, sum, "node 3");
	expect_sum(k, r2, sum, "node 2");
	for (int i = 0; i < NODES; i++)
		bytes_of(i, &s[i], &rcv[i]);
	cr_assert_eq(s[0], size, "the owner sent %" PRIu64 " bytes: only node 2's copy", s[0]);
	cr_assert_eq(rcv[1], size, "node 2 received %" PRIu64, rcv[1]);
	cr_assert_eq(s[1], size, "node 2 sent %" PRIu64 " bytes: node 3's copy", s[1]);
	cr_assert_eq(rcv[2], size, "node 3 received %" PRIu64, rcv[2]);
	cr_assert_eq(pull_counter(0, "locations"), 2);
	cr_assert_eq(pull_counter(1, "served"), 1, "node 2 served node 3");
	kray_release(k, &x, 1);
}

/* The owner-relay baseline (direct-pull = 0): every copy leaves the owner. */
Test(cluster_pull, without_direct_pulls_the_owner_sends_every_copy)
{
	const char *const more[] = { "--direct-pull", "0", NULL };
	const size_t size = 16u << 20;
	kray *k = cluster(more);
	int64_t sum;
	kray_ref x = put_big(k, size, &sum), r[3];
	uint64_t s, rcv;

	for (int i = 0; i < 3; i++) {
		char res[8];

		snprintf(res, sizeof(res), "n%d:1", i + 2);
		r[i] = call_sum(k, x, 300, res, 0);
	}
	for (int i = 0; i < 3; i++)
		expect_sum(k, r[i], sum, "relay");
	bytes_of(0, &s, &rcv);
	cr_assert_eq(s, 3 * (uint64_t)size, "the owner sent %" PRIu64, s);
	cr_assert_eq(pull_counter(0, "locations"), 0);
	kray_release(k, &x, 1);
}

/* Three nodes take X at once: the owner serves at most FANOUT (2) of them, a node still
 * receiving its copy serves the third once it has it. */
Test(cluster_pull, broadcast_is_served_by_the_receivers_too)
{
	const size_t size = 32u << 20;
	kray *k = cluster(NULL);
	int64_t sum;
	kray_ref x = put_big(k, size, &sum), r[3];
	uint64_t s[NODES], rcv[NODES], others = 0;

	for (int i = 0; i < 3; i++) {
		char res[8];

		snprintf(res, sizeof(res), "n%d:1", i + 2);
		r[i] = call_sum(k, x, 1500, res, 0);
	}
	for (int i = 0; i < 3; i++)
		expect_sum(k, r[i], sum, "broadcast");
	for (int i = 0; i < NODES; i++)
		bytes_of(i, &s[i], &rcv[i]);
	cr_assert_eq(s[0], 2 * (uint64_t)size, "the owner sent %" PRIu64 " bytes", s[0]);
	for (int i = 1; i < NODES; i++) {
		cr_assert_eq(rcv[i], size, "node %d received %" PRIu64, i + 1, rcv[i]);
		others += s[i];
	}
	cr_assert_eq(others, size, "the other nodes sent %" PRIu64, others);
	kray_release(k, &x, 1);
}

/* Node 2, which node 3 is told to pull from, is killed: node 3 gets X from the owner. */
Test(cluster_pull, holder_killed_mid_pull_falls_back_to_the_owner)
{
	const size_t size = 256u << 20;
	kray *k = cluster(NULL);
	int64_t sum;
	kray_ref x = put_big(k, size, &sum), r2, r3;
	kray_value v;
	uint64_t s, rcv;

	r2 = call_sum(k, x, 20000, "n2:1", 0);
	wait_running(1);
	r3 = call_sum(k, x, 0, "n3:1", 0);
	/* Node 3 is fetching from node 2 by now (or about to): node 2 dies under it. */
	wait_received(2, 1);
	kill(node[1].pid, SIGKILL);
	expect_sum(k, r3, sum, "node 3 after its holder died");
	cr_assert_eq(harness_get1(k, r2, 30000, &v), -EREMOTEIO, "node 2's task failed");
	kray_value_clear(&v);
	kray_release(k, &r2, 1);
	bytes_of(2, &s, &rcv);
	fprintf(stderr, "holder_killed: node 3 began %" PRIu64 " bytes, fell back %" PRIu64 "\n",
		rcv, pull_counter(2, "fell"));
	cr_assert_geq(rcv, size, "node 3 received %" PRIu64, rcv);
	if (rcv > size)
		cr_assert_eq(pull_counter(2, "fell"), 1, "node 3 fell back once");
	kray_release(k, &x, 1);
}

/* A holder that no longer has the copy answers with an error, and the puller asks the
 * owner: node 2's task ended, and its copy with it, but the owner had not heard yet. */
Test(cluster_pull, stale_holder_refuses_and_the_owner_serves)
{
	const size_t size = 8u << 20;
	kray *k = cluster(NULL);
	int64_t sum;
	kray_ref x = put_big(k, size, &sum);

	/* Many short tasks on nodes 2-4 at once: some are told to pull from a node whose
	 * copy is gone by then; every one must still get the right bytes. */
	kray_ref r[24];

	for (int i = 0; i < 24; i++) {
		char res[8];

		snprintf(res, sizeof(res), "n%d:1", 2 + i % 3);
		r[i] = call_sum(k, x, i % 2 ? 0 : 20, res, 0);
	}
	for (int i = 0; i < 24; i++)
		expect_sum(k, r[i], sum, "short task");
	kray_release(k, &x, 1);
}

/* ---- A node that speaks the protocol itself: forged and unknown requests ---- */

#define TOKEN "test-cluster-pull-token-0123456789"

static void send_frame(int fd, uint16_t type, const void *body, uint32_t len)
{
	struct kray_frame_hdr h = {
		.magic = KRAY_WIRE_MAGIC, .version = KRAY_WIRE_VERSION, .type = type, .len = len
	};
	uint8_t buf[sizeof(h) + 256];

	cr_assert_leq(len, 256);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	cr_assert_eq(send(fd, buf, sizeof(h) + len, MSG_NOSIGNAL), (ssize_t)(sizeof(h) + len));
}

/* The next frame within ms (its body into body, at most cap bytes); its type, or 0 when
 * the connection closed, or -1 when nothing came. */
static int recv_frame(int fd, void *body, size_t cap, int ms, uint32_t *ret_len)
{
	struct kray_frame_hdr h;
	uint8_t skip[4096];
	size_t got = 0;

	while (got < sizeof(h)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			return -1;
		n = recv(fd, (uint8_t *)&h + got, sizeof(h) - got, 0);
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	cr_assert_eq(h.magic, KRAY_WIRE_MAGIC);
	for (got = 0; got < h.len;) {
		uint8_t *dst = got < cap ? (uint8_t *)body + got : skip;
		size_t want = got < cap ? (h.len < cap ? h.len : cap) - got : sizeof(skip);
		ssize_t n;

		if (want > h.len - got)
			want = h.len - got;
		n = recv(fd, dst, want, MSG_WAITALL);
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	*ret_len = h.len;
	return h.type;
}

/* Connects to the head at port on loopback as node `self`, proves the token, registers. */
static int join_as(unsigned short port, uint32_t self)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct kray_msg_node_challenge ch;
	struct kray_msg_node_auth a = { 0 };
	struct kray_msg_node m = {
		.node = self, .addr = htonl(INADDR_LOOPBACK), .port = 9, .alive = 1, .num_cpus = 1
	};
	uint8_t msg[1 + 2 * KRAY_NONCE_LEN + 4], body[512];
	unsigned len = KRAY_MAC_LEN;
	uint32_t blen;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	cr_assert_eq(recv_frame(fd, &ch, sizeof(ch), 5000, &blen), KRAY_MSG_NODE_CHALLENGE);
	cr_assert_eq(getrandom(a.nonce, sizeof(a.nonce), 0), (ssize_t)sizeof(a.nonce));
	a.node = self;
	msg[0] = 'C';
	memcpy(msg + 1, ch.nonce, KRAY_NONCE_LEN);
	memcpy(msg + 1 + KRAY_NONCE_LEN, a.nonce, KRAY_NONCE_LEN);
	memcpy(msg + 1 + 2 * KRAY_NONCE_LEN, &a.node, 4);
	HMAC(EVP_sha256(), TOKEN, (int)strlen(TOKEN), msg, sizeof(msg), a.mac, &len);
	send_frame(fd, KRAY_MSG_NODE_AUTH, &a, sizeof(a));
	cr_assert_eq(recv_frame(fd, body, sizeof(body), 5000, &blen), KRAY_MSG_NODE_AUTH_OK);
	send_frame(fd, KRAY_MSG_NODE_REGISTER, &m, sizeof(m));
	return fd;
}

/* The next frame of type want (views and the like skipped); its type, 0 or -1 as above. */
static int expect_type(int fd, int want, void *body, size_t cap)
{
	int64_t t0 = harness_now_ms();
	uint32_t len;
	int t;

	do {
		t = recv_frame(fd, body, cap, 5000, &len);
	} while (t > 0 && t != want && harness_now_ms() - t0 < 10000);
	return t;
}

/* A head on loopback, with a node of this test's own making linked to it. */
static int raw_head(unsigned short *ret_port)
{
	static const char *const args[] = { "--head", "--node-listen", "127.0.0.1:0", "--token",
					    TOKEN,    "--bpf",	       "off",	      NULL };
	kray *k;
	char *text = NULL, *p;

	cr_assert_eq(harness_start_krayd_opts(&node[0], 1, args), 0);
	k = harness_connect(node[0].sock);
	cr_assert_eq(kray_describe_nodes(k, &text), 0);
	p = strstr(text, "127.0.0.1:");
	cr_assert_not_null(p, "no listening address in:\n%s", text);
	*ret_port = (unsigned short)atoi(p + strlen("127.0.0.1:"));
	free(text);
	harness_shutdown(k);
	return join_as(*ret_port, 0x5eed0001);
}

/* A FETCH of an object the node does not have is answered with an error value at once. */
Test(cluster_pull, fetch_of_an_unknown_object_is_answered_with_an_error)
{
	unsigned short port;
	int fd = raw_head(&port);
	struct kray_msg_obj_where w = {
		.oid = { 0x5eed0001, 7, 7, 0 }, .size = 1 << 20, .kind = KRAY_WHERE_FETCH, .from = 3
	};
	uint8_t body[512];
	struct kray_msg_obj_push m;

	send_frame(fd, KRAY_MSG_OBJ_WHERE, &w, sizeof(w));
	cr_assert_eq(expect_type(fd, KRAY_MSG_OBJ_PUSH, body, sizeof(body)), KRAY_MSG_OBJ_PUSH,
		     "no answer to the fetch");
	memcpy(&m, body, sizeof(m));
	cr_assert_eq(m.type, KRAY_WT_ERROR, "answered with type %u", m.type);
	cr_assert_eq(m.err, KRAY_WE_OBJECT_LOST);
	cr_assert(!memcmp(&m.oid, &w.oid, sizeof(m.oid)));
	cr_assert_not_null(memmem(body + sizeof(m), m.len, "holds no copy", 13));
	/* The link still serves: another unknown fetch, another error. */
	w.oid.seq = 8;
	send_frame(fd, KRAY_MSG_OBJ_WHERE, &w, sizeof(w));
	cr_assert_eq(expect_type(fd, KRAY_MSG_OBJ_PUSH, body, sizeof(body)), KRAY_MSG_OBJ_PUSH);
	close(fd);
	harness_expect_serving(&node[0], "unknown fetches");
}

/* A location (PULL) that does not come from the object's owner, a location of no size,
 * an unknown kind and a short message each close the link; the node keeps serving. */
Test(cluster_pull, forged_locations_close_the_link)
{
	unsigned short port;
	uint8_t body[512];
	struct kray_msg_obj_where w = { .oid = { 0x0bad0bad, 1, 1, 0 },
					.size = 1 << 20,
					.holder = 0x5eed0001,
					.kind = KRAY_WHERE_PULL };
	int fd = raw_head(&port);

	send_frame(fd, KRAY_MSG_OBJ_WHERE, &w, sizeof(w)); /* not the owner */
	cr_assert_eq(expect_type(fd, -2, body, sizeof(body)), 0, "the link stayed open");
	close(fd);

	fd = join_as(port, 0x5eed0002);
	w.oid.node = 0x5eed0002;
	w.size = 0;
	send_frame(fd, KRAY_MSG_OBJ_WHERE, &w, sizeof(w)); /* no size */
	cr_assert_eq(expect_type(fd, -2, body, sizeof(body)), 0, "the link stayed open");
	close(fd);

	fd = join_as(port, 0x5eed0003);
	w.kind = 9;
	send_frame(fd, KRAY_MSG_OBJ_WHERE, &w, sizeof(w));
	cr_assert_eq(expect_type(fd, -2, body, sizeof(body)), 0, "the link stayed open");
	close(fd);

	fd = join_as(port, 0x5eed0004);
	send_frame(fd, KRAY_MSG_OBJ_WHERE, &w, 8);
	cr_assert_eq(expect_type(fd, -2, body, sizeof(body)), 0, "the link stayed open");
	close(fd);
	harness_expect_serving(&node[0], "forged locations");
}

/*
 * A member that streams a large object to the head keeps heartbeating: its heartbeats go
 * between two chunks (net_out_urgent()), not behind the whole object.  Node 2's sending
 * is limited to 80 Mbit/s, so the 24 MiB result of a task there takes 2.5 s or more to
 * reach the head, longer than the 1 s the head waits for a heartbeat.
 */
Test(cluster_pull, heartbeats_overtake_a_slow_large_transfer)
{
	const size_t size = 24u << 20;
	char why[128];
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value a[2] = { KRAY_V_INT((int64_t)size), KRAY_V_INT(77) }, v = { .type = KRAY_NIL };
	kray_ref r;
	kray *k;
	int rc;

	if ((rc = netns_cluster_up(&net, 2, why, sizeof(why))))
		cr_skip_test("needs network namespaces: %s", why);
	start_node(0, "n1:1", NULL);
	start_node(1, "n2:1", NULL);
	wait_alive(0, 2);
	wait_alive(1, 2);
	if (netns_limit_rate(&net, 1, "80mbit"))
		cr_skip_test("needs tc's tbf qdisc (iproute2)");
	/* An eager get: a lazy one would map the object at once, and a reader of an object
	 * whose node died mid-transfer gets SIGBUS (docs/objects.md), not a clear failure. */
	setenv("KRAY_LAZY", "0", 1);
	k = harness_connect(node[0].sock);
	o.resources = "n2:1";
	o.max_retries = 0;
	cr_assert_eq(kray_call(k, "make_pattern", a, 2, &o, &r), 0, "%s", kray_errmsg(k));
	rc = harness_get1(k, r, 60000, &v);
	unsetenv("KRAY_LAZY");
	cr_assert_eq(rc, 0, "get: %d %s", rc,
		     v.type == KRAY_ERROR ? (const char *)v.data : kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_BYTES, "type %d", v.type);
	cr_assert_eq(v.len, size);
	cr_assert_eq(pattern_check(v.data, 0, size, 77), -1, "the object differs");
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	cr_assert_eq(harness_count_alive(k), 2, "the head declared node 2 dead mid-transfer");
	harness_shutdown(k);
}
