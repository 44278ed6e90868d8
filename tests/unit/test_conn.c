// SPDX-License-Identifier: Apache-2.0
/*
 * libclient/conn.c alone (issue 15: the connection knows nothing of the layers above it,
 * so it links without them).  A socketpair plays krayd: frames whole and in pieces,
 * descriptors that come with frames (the ring wrapping around), the layer hooks
 * (before_flush, on_frame, on_hello, on_close), an unexpected or malformed frame, krayd
 * going away, and a frame that cannot be queued for lack of memory.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../libclient/client.h"

static struct kray k;
static int peer = -1;

static void setup(void)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	k = (struct kray){ .fd = sv[0], .kmod_fd = -1 };
	peer = sv[1];
}

static void teardown(void)
{
	kc_close(&k);
	if (peer >= 0)
		close(peer);
	peer = -1;
}

TestSuite(conn, .init = setup, .fini = teardown, .timeout = 20);

/* A frame from "krayd": type, req, body, and fds sent with it. */
static void send_frame(uint16_t type, uint64_t req, const void *body, size_t len, const int *fds,
		       unsigned nfds)
{
	struct kbuf b = { 0 };
	size_t off = wire_begin(&b, type, req);
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct kray_frame_hdr h;

	kbuf_put(&b, body, len);
	wire_end(&b, off);
	memcpy(&h, b.data, sizeof(h));
	h.flags = (uint16_t)nfds;
	memcpy(b.data, &h, sizeof(h));
	iov = (struct iovec){ b.data, b.len };
	if (nfds) {
		struct cmsghdr *c;

		msg.msg_control = cmsg.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	cr_assert_eq(sendmsg(peer, &msg, 0), (ssize_t)b.len);
	kbuf_free(&b);
}

static int next(struct kray_frame_hdr *h, const uint8_t **body)
{
	return kc_next_frame(&k, false, h, body);
}

Test(conn, whole_and_partial_frames)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	struct kbuf b = { 0 };
	size_t off;

	cr_assert_eq(next(&h, &body), 0, "nothing has arrived: no frame, no waiting");
	send_frame(KRAY_MSG_STATUS_REPLY, 7, "abcdefgh", 8, NULL, 0);
	cr_assert_eq(next(&h, &body), 1);
	cr_assert_eq(h.type, KRAY_MSG_STATUS_REPLY);
	cr_assert_eq(h.req, 7);
	cr_assert_eq(h.len, 8);
	cr_assert(!memcmp(body, "abcdefgh", 8));
	kc_consume(&k, &h);
	cr_assert_eq(next(&h, &body), 0);

	/* Half a frame, then the rest. */
	off = wire_begin(&b, KRAY_MSG_STATUS_REPLY, 8);
	kbuf_put(&b, "12345678", 8);
	wire_end(&b, off);
	cr_assert_eq(write(peer, b.data, 10), 10);
	cr_assert_eq(next(&h, &body), 0);
	cr_assert_eq(write(peer, b.data + 10, b.len - 10), (ssize_t)(b.len - 10));
	cr_assert_eq(next(&h, &body), 1);
	cr_assert_eq(h.req, 8);
	kc_consume(&k, &h);
	kbuf_free(&b);
}

static ino_t ino(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

Test(conn, descriptors_wrap_around_the_ring)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	int fds[4], *got;
	ino_t want[4];

	/* 14 frames of one descriptor, taken: the ring's head moves to 14 of 16. */
	for (int i = 0; i < 14; i++) {
		int fd = memfd_create("one", MFD_CLOEXEC);

		send_frame(KRAY_MSG_STATUS_REPLY, (uint64_t)i, "x", 1, &fd, 1);
		close(fd);
		cr_assert_eq(next(&h, &body), 1);
		cr_assert_eq(h.req, (uint64_t)i);
		cr_assert_not_null(kc_frame_fds(&k, &h));
		kc_consume(&k, &h); /* closes the untaken descriptor */
	}
	/* Four more wrap around: they must still come out contiguous and in order. */
	for (int i = 0; i < 4; i++) {
		fds[i] = memfd_create("four", MFD_CLOEXEC);
		want[i] = ino(fds[i]);
	}
	send_frame(KRAY_MSG_STATUS_REPLY, 99, "y", 1, fds, 4);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	cr_assert_eq(next(&h, &body), 1);
	cr_assert_eq(KRAY_FRAME_NFDS(h.flags), 4);
	got = kc_frame_fds(&k, &h);
	cr_assert_not_null(got);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ino(got[i]), want[i], "descriptor %d out of order", i);
	got[0] = -1; /* taken by the test: closed here */
	kc_consume(&k, &h);
	cr_assert_eq(k.fds.n, 0);
}

static int flushes, hellos, closes, seen;
static int fail_flush;

static int t_before_flush(struct kray *kk)
{
	(void)kk;
	flushes++;
	return fail_flush;
}

static int t_on_frame(struct kray *kk, const struct kray_frame_hdr *h, const uint8_t *body)
{
	(void)kk;
	(void)body;
	if (h->type != KRAY_MSG_GET_REPLY)
		return 0;
	seen++;
	return 1;
}

static void t_on_close(struct kray *kk)
{
	(void)kk;
	closes++;
}

static const struct kc_layer test_layer = {
	.name = "test",
	.before_flush = t_before_flush,
	.on_frame = t_on_frame,
	.on_close = t_on_close,
};

Test(conn, layer_hooks)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	char buf[64];
	size_t off;

	kc_layer_add(&k, &test_layer);
	off = wire_begin(&k.out, KRAY_MSG_STATUS, 1);
	cr_assert_eq(kc_end(&k, off), 0);

	/* A layer that refuses the flush: nothing is written. */
	fail_flush = -ENOMEM;
	cr_assert_eq(kc_flush(&k), -ENOMEM);
	cr_assert_eq(flushes, 1);
	cr_assert_gt(kbuf_pending(&k.out), 0);
	fail_flush = 0;
	cr_assert_eq(kc_flush(&k), 0);
	cr_assert_eq(flushes, 2);
	cr_assert_eq(kbuf_pending(&k.out), 0);
	cr_assert_eq(read(peer, buf, sizeof(buf)), (ssize_t)sizeof(struct kray_frame_hdr));

	/* A frame nobody waits for goes to the layer that takes it; the wait goes on. */
	send_frame(KRAY_MSG_GET_REPLY, 77, "zzzzzzzz", 8, NULL, 0);
	send_frame(KRAY_MSG_STATUS_REPLY, 1, "abcdefgh", 8, NULL, 0);
	cr_assert_eq(kc_wait(&k, KRAY_MSG_STATUS_REPLY, 1, &h, &body), 0, "%s", k.err);
	cr_assert_eq(seen, 1);
	cr_assert_eq(h.req, 1);
	kc_consume(&k, &h);

	/* One no layer takes breaks the connection. */
	send_frame(KRAY_MSG_WAIT_REPLY, 5, "wwwwwwww", 8, NULL, 0);
	cr_assert_eq(kc_wait(&k, KRAY_MSG_STATUS_REPLY, 2, &h, &body), -EPROTO);
	cr_assert(k.broken);
	kc_close(&k);
	cr_assert_eq(closes, 1);
}

static void t_on_hello(struct kray *kk)
{
	cr_assert_eq(kk->node, 3, "the hello is answered before on_hello runs");
	hellos++;
}

Test(conn, hello_runs_on_hello)
{
	static const struct kc_layer bare = { .name = "bare" };
	static const struct kc_layer l = { .name = "h", .on_hello = t_on_hello };
	struct kray_msg_hello_ok ok = { .node = 3, .client = 4, .job = 5, .inline_max = 100 };

	kc_layer_add(&k, &bare); /* a layer without hooks is fine */
	kc_layer_add(&k, &l);
	send_frame(KRAY_MSG_HELLO_OK, 0, &ok, sizeof(ok), NULL, 0);
	cr_assert_eq(kc_hello(&k, KRAY_ROLE_DRIVER, 0, NULL), 0, "%s", k.err);
	cr_assert_eq(hellos, 1);
	cr_assert_eq(k.node, 3);
	cr_assert_eq(k.client, 4);
	cr_assert_eq(k.inline_max, 100);
}

Test(conn, malformed_frame_and_krayd_gone)
{
	struct kray_frame_hdr h = { .magic = 0xdeadbeef, .len = 8 };
	const uint8_t *body;

	cr_assert_eq(write(peer, &h, sizeof(h)), (ssize_t)sizeof(h));
	cr_assert_eq(next(&h, &body), -EBADMSG);
	cr_assert(k.broken);
	teardown();
	setup();
	close(peer);
	peer = -1;
	cr_assert_eq(next(&h, &body), -EPIPE);
	cr_assert(k.broken);
}

Test(conn, a_frame_without_memory_is_dropped)
{
	size_t off, before;

#ifdef __SANITIZE_ADDRESS__
	cr_skip_test("AddressSanitizer reports a petabyte request instead of failing it");
#endif
	off = wire_begin(&k.out, KRAY_MSG_STATUS, 1);
	cr_assert_eq(kc_end(&k, off), 0);
	before = k.out.len;
	/* No allocator gives a petabyte: the append fails, the frame goes, the rest stays. */
	off = wire_begin(&k.out, KRAY_MSG_PUT, 2);
	kbuf_put(&k.out, NULL, (size_t)1 << 50);
	cr_assert(k.out.nomem);
	kbuf_put(&k.out, "more", 4); /* dropped too: the frame is already lost */
	cr_assert_eq(kc_end(&k, off), -ENOMEM);
	cr_assert_eq(k.out.len, before);
	cr_assert(!k.out.nomem);
	cr_assert(strstr(k.err, "out of memory"), "%s", k.err);
	cr_assert_eq(kc_flush(&k), 0, "the frame before it still goes");
}

/* Frames put in ahead of the queue (libclient's fast results registered before frames
 * that name them) go after a frame a partial write left half sent, never into it. */
Test(conn, insert_after_a_half_sent_frame)
{
	struct kbuf ins = { 0 };
	uint8_t got[256];
	uint16_t want[] = { KRAY_MSG_STATUS, KRAY_MSG_PUT, KRAY_MSG_GET, KRAY_MSG_WAIT };
	size_t off, n = 0;

	for (int i = 0; i < 3; i++) {
		off = wire_begin(&k.out,
				 i == 0 ? KRAY_MSG_STATUS :
				 i == 1 ? KRAY_MSG_GET :
					  KRAY_MSG_WAIT,
				 (uint64_t)i);
		kbuf_put(&k.out, "0123456789abcdef", 16);
		cr_assert_eq(kc_end(&k, off), 0);
	}
	/* A non-blocking write that took 10 bytes of the first frame. */
	cr_assert_eq(send(k.fd, k.out.data, 10, 0), 10);
	kbuf_consume(&k.out, 10);
	off = wire_begin(&ins, KRAY_MSG_PUT, 9);
	kbuf_put(&ins, "xy", 2);
	wire_end(&ins, off);
	cr_assert_eq(kc_out_insert(&k, ins.data, ins.len), 0);
	cr_assert_eq(k.out.off, 10, "what was sent stays counted");
	cr_assert_eq(kc_flush(&k), 0);
	while (n < 3 * (sizeof(struct kray_frame_hdr) + 16) + ins.len) {
		ssize_t r = read(peer, got + n, sizeof(got) - n);

		cr_assert_gt(r, 0);
		n += (size_t)r;
	}
	/* Four whole frames in order: the half-sent one, the inserted one, the others. */
	for (size_t at = 0, i = 0; i < 4; i++) {
		struct kray_frame_hdr h;

		memcpy(&h, got + at, sizeof(h));
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "frame %zu is torn", i);
		cr_assert_eq(h.type, want[i], "frame %zu: type %u", i, h.type);
		at += sizeof(h) + h.len;
		cr_assert_leq(at, n);
	}
	/* Nothing half sent: they go first. */
	cr_assert_eq(kbuf_pending(&k.out), 0);
	off = wire_begin(&k.out, KRAY_MSG_GET, 3);
	cr_assert_eq(kc_end(&k, off), 0);
	cr_assert_eq(kc_out_insert(&k, ins.data, ins.len), 0);
	cr_assert_eq(((struct kray_frame_hdr *)k.out.data)->type, KRAY_MSG_PUT);
	kbuf_free(&ins);
}
