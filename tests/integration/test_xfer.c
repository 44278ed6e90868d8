// SPDX-License-Identifier: Apache-2.0
/*
 * Objects arriving from another node (daemon/cluster/xfer.c, docs/cluster.md "Data
 * path"), with the test as that node: it connects to a head krayd's node port on
 * loopback, proves the cluster token as net.c's connector does, and sends OBJ_PUSH and
 * OBJ_CHUNK frames by hand.
 *
 *  - a whole object in chunks (each partly in the receive that brings its header, the
 *    rest straight into the object's memfd), then another behind it, are sealed, and go
 *    when the link that held them does (their bytes are checked end to end by
 *    test_cluster's 1 GiB transfer);
 *  - a chunk longer than the object announced, one at the wrong offset, one whose frame
 *    length disagrees with its own, and one for no object each close the link (counted
 *    in frames_rejected), and krayd goes on serving;
 *  - a node that goes away in the middle of an object leaves nothing behind: the
 *    half-written object is freed (store_bytes back where it was), never sealed;
 *  - chunks out of order (the last first: what an OBJ_RANGE asks for) make the object
 *    whole; a chunk sent twice, or not at a multiple of KRAY_CHUNK, closes the link;
 *  - as the sender: an object pulled back from the head streams with the chunk asked for
 *    first (OBJ_RANGE) ahead of its turn, every chunk once and byte-exact; a range request
 *    for an object not streaming is ignored, a malformed one or one past the object's end
 *    closes the link, and krayd goes on serving.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../include/uapi/kray_wire.h"
#include "../fixtures/pattern.h"
#include "harness.h"

#define TOKEN "test-xfer-token-0123456789abcdef"
#define FAKE_NODE 0x7e57u
#define MiB (1u << 20)

static struct harness head;
static unsigned short port;

static void fini(void)
{
	harness_cleanup();
}

TestSuite(xfer, .init = NULL, .fini = fini, .timeout = 120);

/* A free TCP port on loopback (the kernel's pick; krayd binds it right after). */
static unsigned short free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static kray *start_head(void)
{
	char listen[32];
	const char *args[] = { "--head", "--node-listen", listen, "--token", TOKEN, NULL };

	port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	cr_assert_eq(harness_start_krayd_opts(&head, 1, args), 0, "the head did not start");
	return harness_connect(head.sock);
}

static bool lenient; /* sends after a bad frame: the head may have closed already */

static void send_all(int fd, const void *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && lenient)
			return;
		cr_assert_gt(n, 0, "send to the head: %s", strerror(errno));
		p = (const uint8_t *)p + n;
		len -= (size_t)n;
	}
}

static void send_hdr(int fd, uint16_t type, uint32_t len, uint64_t req)
{
	struct kray_frame_hdr h = { .magic = KRAY_WIRE_MAGIC,
				    .version = KRAY_WIRE_VERSION,
				    .type = type,
				    .len = len,
				    .req = req };

	send_all(fd, &h, sizeof(h));
}

/* Reads one whole frame; its body into body (at most cap bytes). */
static uint16_t recv_frame(int fd, void *body, size_t cap)
{
	struct kray_frame_hdr h;
	size_t got = 0;

	while (got < sizeof(h)) {
		ssize_t n = recv(fd, (uint8_t *)&h + got, sizeof(h) - got, 0);

		cr_assert_gt(n, 0, "the head closed the link during the handshake");
		got += (size_t)n;
	}
	cr_assert(h.magic == KRAY_WIRE_MAGIC && h.len <= cap, "not a frame from the head");
	for (got = 0; got < h.len;) {
		ssize_t n = recv(fd, (uint8_t *)body + got, h.len - got, 0);

		cr_assert_gt(n, 0, "the head closed the link during the handshake");
		got += (size_t)n;
	}
	return h.type;
}

/* A node link to the head, the token proven (the connector's side of net.c). */
static int join(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct kray_msg_node_challenge ch;
	struct kray_msg_node_auth a = { .node = FAKE_NODE };
	uint8_t msg[1 + 2 * KRAY_NONCE_LEN + 4], body[256];
	unsigned len = KRAY_MAC_LEN;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cr_assert_eq(recv_frame(fd, &ch, sizeof(ch)), KRAY_MSG_NODE_CHALLENGE);
	cr_assert_eq(getrandom(a.nonce, sizeof(a.nonce), 0), (ssize_t)sizeof(a.nonce));
	msg[0] = 'C';
	memcpy(msg + 1, ch.nonce, KRAY_NONCE_LEN);
	memcpy(msg + 1 + KRAY_NONCE_LEN, a.nonce, KRAY_NONCE_LEN);
	memcpy(msg + 1 + 2 * KRAY_NONCE_LEN, &a.node, 4);
	HMAC(EVP_sha256(), TOKEN, (int)strlen(TOKEN), msg, sizeof(msg), a.mac, &len);
	send_hdr(fd, KRAY_MSG_NODE_AUTH, sizeof(a), 0);
	send_all(fd, &a, sizeof(a));
	cr_assert_eq(recv_frame(fd, body, sizeof(body)), KRAY_MSG_NODE_AUTH_OK,
		     "the head refused the token");
	return fd;
}

/* The header of a large object of size bytes, as an argument (the link keeps the copy). */
static void send_push(int fd, const struct kray_oid *id, uint64_t size)
{
	struct kray_msg_obj_push m = {
		.oid = *id, .type = KRAY_WT_FD, .scalar = size, .size = size
	};

	send_hdr(fd, KRAY_MSG_OBJ_PUSH, sizeof(m), KRAY_PUSH_ARG);
	send_all(fd, &m, sizeof(m));
}

/* A chunk: frame length flen (0: the right one for len), then len bytes of pattern seed
 * from offset off of the object, and the padding. */
static void send_chunk(int fd, const struct kray_oid *id, uint64_t off, uint32_t len, uint32_t flen,
		       uint64_t seed)
{
	struct kray_msg_obj_chunk m = { .oid = *id, .offset = off, .len = len };
	size_t padded = KRAY_PAD8((size_t)len);
	uint8_t *p = calloc(1, padded ? padded : 1);

	cr_assert_not_null(p);
	pattern_fill(p, off, len, seed);
	send_hdr(fd, KRAY_MSG_OBJ_CHUNK, flen ? flen : (uint32_t)(sizeof(m) + padded), 0);
	send_all(fd, &m, sizeof(m));
	/* In pieces, as a real stream comes: the first with the header's receive. */
	for (size_t done = 0; done < padded;) {
		size_t n = padded - done < 300000 ? padded - done : 300000;

		send_all(fd, p + done, n);
		done += n;
	}
	free(p);
}

/* Whether the head closes fd within ms (reading and dropping what it sends). */
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

static void wait_store_bytes(kray *k, uint64_t want, const char *what)
{
	int64_t t0 = harness_now_ms();
	struct kray_stats st;

	do {
		st = harness_status(k);
		if (st.store_bytes == want)
			return;
		usleep(10000);
	} while (harness_now_ms() - t0 < 5000);
	cr_assert_fail("%s: store_bytes %llu, want %llu", what, (unsigned long long)st.store_bytes,
		       (unsigned long long)want);
}

Test(xfer, object_in_chunks_is_sealed_and_released_with_its_link)
{
	kray *k = start_head();
	struct kray_oid id = { .node = FAKE_NODE, .owner = 1, .seq = 1, .index = 1 };
	const uint64_t size = 10 * MiB + 3; /* chunks of 4 MiB, 4 MiB, 2 MiB + 3 (padded) */
	uint64_t objects = harness_status(k).objects;
	int fd = join();

	send_push(fd, &id, size);
	for (uint64_t off = 0; off < size; off += KRAY_CHUNK) {
		uint32_t n = size - off < KRAY_CHUNK ? (uint32_t)(size - off) : KRAY_CHUNK;

		send_chunk(fd, &id, off, n, 0, 77);
	}
	/* A frame behind it is read as one: the stream kept its place. */
	send_push(fd, &(struct kray_oid){ .node = FAKE_NODE, .owner = 1, .seq = 2, .index = 1 },
		  4 * MiB);
	send_chunk(fd, &(struct kray_oid){ .node = FAKE_NODE, .owner = 1, .seq = 2, .index = 1 }, 0,
		   4 * MiB, 0, 78);
	wait_store_bytes(k, size + 4 * MiB, "the objects that came");
	cr_assert_eq(harness_status(k).objects, objects + 2);
	cr_assert_not(closed_within(fd, 300), "the link was closed");
	cr_assert_eq(harness_status(k).frames_rejected, 0);
	/* The link held them (arguments): they go with it. */
	close(fd);
	wait_store_bytes(k, 0, "after the link went");
}

/* The link is closed for what the fake node sends after a push of an 8 MiB object; krayd
 * frees the object begun and goes on serving. */
static void refused(kray *k, const char *what, void (*send_bad)(int fd, const struct kray_oid *id))
{
	static uint32_t seq = 100;
	struct kray_oid id = { .node = FAKE_NODE, .owner = 1, .seq = ++seq, .index = 1 };
	uint64_t before = harness_status(k).frames_rejected;
	int fd = join();

	send_push(fd, &id, 8 * MiB);
	lenient = true;
	send_bad(fd, &id);
	lenient = false;
	cr_assert(closed_within(fd, 5000), "%s: the link was not closed", what);
	close(fd);
	cr_assert(harness_krayd_alive(&head), "%s: krayd died", what);
	cr_assert_geq(harness_status(k).frames_rejected, before + 1, "%s: not counted", what);
	wait_store_bytes(k, 0, what);
	harness_expect_serving(&head, what);
}

static void past_the_size(int fd, const struct kray_oid *id)
{
	send_chunk(fd, id, 0, 4 * MiB, 0, 1);
	send_chunk(fd, id, 4 * MiB, 4 * MiB + 8, 0, 1); /* 8 bytes more than announced */
}

static void wrong_offset(int fd, const struct kray_oid *id)
{
	send_chunk(fd, id, 0, 4 * MiB, 0, 1);
	send_chunk(fd, id, 3 * MiB, 4 * MiB, 0, 1); /* not at a chunk */
}

static void short_chunk(int fd, const struct kray_oid *id)
{
	send_chunk(fd, id, 0, 1 * MiB, 0, 1); /* chunks are KRAY_CHUNK long, the last one less */
}

static void chunk_twice(int fd, const struct kray_oid *id)
{
	send_chunk(fd, id, 4 * MiB, 4 * MiB, 0, 1);
	send_chunk(fd, id, 4 * MiB, 4 * MiB, 0, 1);
}

static void frame_longer_than_chunk(int fd, const struct kray_oid *id)
{
	/* The frame says 1 MiB more than the chunk does. */
	send_chunk(fd, id, 0, 1 * MiB, sizeof(struct kray_msg_obj_chunk) + 2 * MiB, 1);
}

static void chunk_of_another_object(int fd, const struct kray_oid *id)
{
	struct kray_oid other = *id;

	other.seq += 1000;
	send_chunk(fd, id, 0, 4 * MiB, 0, 1);
	send_chunk(fd, &other, 4 * MiB, 4 * MiB, 0, 1);
}

static void zero_length_chunk(int fd, const struct kray_oid *id)
{
	send_chunk(fd, id, 0, 0, 0, 1);
}

Test(xfer, lying_sender_gets_its_link_closed)
{
	kray *k = start_head();

	refused(k, "a chunk past the announced size", past_the_size);
	refused(k, "a chunk at the wrong offset", wrong_offset);
	refused(k, "a chunk shorter than KRAY_CHUNK", short_chunk);
	refused(k, "a chunk sent twice", chunk_twice);
	refused(k, "a frame longer than its chunk", frame_longer_than_chunk);
	refused(k, "a chunk of an object not announced", chunk_of_another_object);
	refused(k, "an empty chunk", zero_length_chunk);
	/* A chunk with no push before it at all. */
	struct kray_oid id = { .node = FAKE_NODE, .owner = 2, .seq = 1, .index = 1 };
	int fd = join();

	lenient = true;
	send_chunk(fd, &id, 0, 1 * MiB, 0, 1);
	lenient = false;
	cr_assert(closed_within(fd, 5000), "a chunk without a push was taken");
	close(fd);
	harness_expect_serving(&head, "a chunk without a push");
}

Test(xfer, node_gone_mid_object_leaves_nothing)
{
	kray *k = start_head();
	struct kray_oid id = { .node = FAKE_NODE, .owner = 3, .seq = 1, .index = 1 };
	uint64_t objects = harness_status(k).objects;
	int fd = join();

	send_push(fd, &id, 64 * MiB);
	send_chunk(fd, &id, 0, 4 * MiB, 0, 9);
	/* Half a chunk: its bytes go straight into the object, then the node is gone. */
	struct kray_msg_obj_chunk m = { .oid = id, .offset = 4 * MiB, .len = 4 * MiB };
	uint8_t *half = calloc(1, 2 * MiB);

	cr_assert_not_null(half);
	send_hdr(fd, KRAY_MSG_OBJ_CHUNK, sizeof(m) + 4 * MiB, 0);
	send_all(fd, &m, sizeof(m));
	send_all(fd, half, 2 * MiB);
	free(half);
	wait_store_bytes(k, 64 * MiB, "while the object arrives");
	close(fd);
	wait_store_bytes(k, 0, "after its node went");
	cr_assert_eq(harness_status(k).objects, objects, "the half-written object was kept");
	harness_expect_serving(&head, "a node gone in the middle of an object");
}

static void send_range(int fd, const struct kray_oid *id, uint64_t off, uint64_t len, uint32_t flen)
{
	struct kray_msg_obj_range m = { .oid = *id, .offset = off, .len = len };

	send_hdr(fd, KRAY_MSG_OBJ_RANGE, flen ? flen : sizeof(m), 0);
	send_all(fd, &m, sizeof(m));
}

/* Reads frames until the next OBJ_CHUNK of id (others dropped); its payload into buf
 * (KRAY_CHUNK), its offset and length into *off, *len. */
static void recv_chunk(int fd, const struct kray_oid *id, uint8_t *buf, uint64_t *off,
		       uint32_t *len)
{
	static uint8_t body[KRAY_CHUNK + 64];

	for (;;) {
		struct kray_frame_hdr h;
		struct kray_msg_obj_chunk m;
		size_t got = 0;

		while (got < sizeof(h)) {
			ssize_t n = recv(fd, (uint8_t *)&h + got, sizeof(h) - got, 0);

			cr_assert_gt(n, 0, "the head closed the link");
			got += (size_t)n;
		}
		cr_assert(h.magic == KRAY_WIRE_MAGIC && h.len <= sizeof(body), "not a frame");
		for (got = 0; got < h.len;) {
			ssize_t n = recv(fd, body + got, h.len - got, 0);

			cr_assert_gt(n, 0, "the head closed the link");
			got += (size_t)n;
		}
		if (h.type != KRAY_MSG_OBJ_CHUNK)
			continue;
		memcpy(&m, body, sizeof(m));
		cr_assert(!memcmp(&m.oid, id, sizeof(*id)), "a chunk of another object");
		memcpy(buf, body + sizeof(m), m.len);
		*off = m.offset;
		*len = m.len;
		return;
	}
}

/* Chunks out of order (the last first, as an OBJ_RANGE has them sent) each land at their
 * offset: the object is sealed whole, and pulled back it is byte-exact. */
Test(xfer, chunks_out_of_order_make_the_object_whole)
{
	kray *k = start_head();
	struct kray_oid id = { .node = FAKE_NODE, .owner = 4, .seq = 1, .index = 1 };
	struct kray_msg_obj_held pull = { .oid = id };
	const uint64_t size = 10 * MiB + 3;
	uint8_t *buf = malloc(KRAY_CHUNK);
	int fd = join();

	cr_assert_not_null(buf);
	send_push(fd, &id, size);
	send_chunk(fd, &id, 8 * MiB, 2 * MiB + 3, 0, 79); /* the last first */
	send_chunk(fd, &id, 0, 4 * MiB, 0, 79);
	send_chunk(fd, &id, 4 * MiB, 4 * MiB, 0, 79);
	wait_store_bytes(k, size, "the object that came");
	send_hdr(fd, KRAY_MSG_OBJ_PULL, sizeof(pull), 0);
	send_all(fd, &pull, sizeof(pull));
	for (int i = 0; i < 3; i++) {
		uint64_t off;
		uint32_t len;
		int64_t bad;

		recv_chunk(fd, &id, buf, &off, &len);
		bad = pattern_check(buf, off, len, 79);
		cr_assert_eq(bad, -1, "byte %lld differs", (long long)bad);
	}
	free(buf);
	cr_assert_not(closed_within(fd, 300), "the link was closed");
	cr_assert_eq(harness_status(k).frames_rejected, 0);
	close(fd);
	wait_store_bytes(k, 0, "after the link went");
}

/* The fake node pushes an object to the head (the link holds it), pulls it back, and asks
 * for its last chunk first: that chunk comes before its turn, every chunk comes once. */
Test(xfer, range_request_sends_that_chunk_first)
{
	kray *k = start_head();
	struct kray_oid id = { .node = FAKE_NODE, .owner = 5, .seq = 1, .index = 1 };
	struct kray_oid none = { .node = FAKE_NODE, .owner = 5, .seq = 99, .index = 1 };
	const uint64_t size = 40 * MiB + 5; /* 11 chunks */
	const unsigned nchunks = 11;
	struct kray_msg_obj_held pull = { .oid = id };
	bool seen[11] = { false };
	unsigned order_of_last = 0;
	uint8_t *buf = malloc(KRAY_CHUNK);
	int fd = join();

	cr_assert_not_null(buf);
	send_push(fd, &id, size);
	for (uint64_t off = 0; off < size; off += KRAY_CHUNK)
		send_chunk(fd, &id, off,
			   size - off < KRAY_CHUNK ? (uint32_t)(size - off) : KRAY_CHUNK, 0, 80);
	wait_store_bytes(k, size, "the object that came");
	/* Pulled back, the last chunk asked for at once; a request for an object that is not
	 * streaming (none) is ignored. */
	send_range(fd, &none, 0, 4096, 0);
	send_hdr(fd, KRAY_MSG_OBJ_PULL, sizeof(pull), 0);
	send_all(fd, &pull, sizeof(pull));
	send_range(fd, &id, size - 1, 1, 0);
	for (unsigned i = 0; i < nchunks; i++) {
		uint64_t off;
		uint32_t len;
		int64_t bad;

		recv_chunk(fd, &id, buf, &off, &len);
		cr_assert(off % KRAY_CHUNK == 0 && off < size, "chunk at %llu",
			  (unsigned long long)off);
		cr_assert_eq(len, size - off < KRAY_CHUNK ? size - off : KRAY_CHUNK, "length %u",
			     len);
		cr_assert_not(seen[off / KRAY_CHUNK], "chunk at %llu twice",
			      (unsigned long long)off);
		seen[off / KRAY_CHUNK] = true;
		bad = pattern_check(buf, off, len, 80);
		cr_assert_eq(bad, -1, "byte %lld of the chunk at %llu differs", (long long)bad,
			     (unsigned long long)off);
		if (off / KRAY_CHUNK == nchunks - 1)
			order_of_last = i;
	}
	free(buf);
	cr_log_info("the last chunk came %u-th of %u", order_of_last + 1, nchunks);
	cr_assert_lt(order_of_last, nchunks - 1, "the chunk asked for came last");
	/* Past the object's end: the link closes, krayd serves on. */
	lenient = true;
	send_range(fd, &id, size, 1, 0);
	lenient = false;
	cr_assert(closed_within(fd, 5000), "a range past the end was taken");
	close(fd);
	harness_expect_serving(&head, "a range request past the end");
	/* A malformed one (a short body) too. */
	fd = join();
	lenient = true;
	send_range(fd, &id, 0, 1, sizeof(struct kray_msg_obj_range) - 8);
	lenient = false;
	cr_assert(closed_within(fd, 5000), "a malformed range request was taken");
	close(fd);
	cr_assert(harness_krayd_alive(&head), "krayd died");
	harness_expect_serving(&head, "a malformed range request");
}
