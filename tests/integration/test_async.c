// SPDX-License-Identifier: Apache-2.0
/*
 * kray in another program's event loop (issue 15, kray.h "kray in your event loop"):
 * kray_get_async() only queues, kray_process() never blocks and runs the callbacks,
 * replies met by a blocking kray_get() are kept for kray_process(), errors and a krayd
 * that goes away reach every callback, bad input is -EINVAL, and examples/poll_loop runs.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <kray/kray.h>

#include "harness.h"

TestSuite(async, .fini = harness_cleanup, .timeout = 60);

struct slot {
	int ran, status;
	kray_value val;
	kray_ref ref;
};

static void keep(kray *k, kray_ref ref, int status, kray_value *val, void *arg)
{
	struct slot *s = arg;

	(void)k;
	s->ran++;
	s->status = status;
	s->ref = ref;
	s->val = *val; /* moved: cleared by the test */
	*val = (kray_value){ .type = KRAY_NIL };
}

/* Runs a poll() loop on kray_fd() until nothing is pending (or timeout_ms passes). */
static int loop_until_done(kray *k, int64_t timeout_ms)
{
	int64_t end = harness_now_ms() + timeout_ms;
	int r = 0;

	while (kray_pending(k) && harness_now_ms() < end) {
		struct pollfd p = { .fd = kray_fd(k),
				    .events = POLLIN | (kray_want_write(k) ? POLLOUT : 0) };

		poll(&p, 1, 100);
		r = kray_process(k);
		if (r < 0)
			return r;
	}
	return kray_pending(k) ? -ETIMEDOUT : 0;
}

Test(async, many_results_in_a_poll_loop)
{
	enum { N = 300 };
	static struct slot s[N];
	kray_ref refs[N];
	kray *k = harness_embedded(2);

	cr_assert_eq(kray_set_nonblocking(k, 1), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(kray_call(k, "square", &KRAY_V_INT(i), 1, NULL, &refs[i]), 0);
		cr_assert_eq(kray_get_async(k, &refs[i], keep, &s[i]), 0, "%s", kray_errmsg(k));
	}
	cr_assert_eq(kray_pending(k), N);
	cr_assert_eq(loop_until_done(k, 30000), 0, "%s", kray_errmsg(k));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(s[i].ran, 1);
		cr_assert_eq(s[i].status, 0);
		cr_assert_eq(s[i].val.type, KRAY_INT64);
		cr_assert_eq(s[i].val.i, (int64_t)i * i);
		cr_assert(!memcmp(&s[i].ref, &refs[i], sizeof(refs[i])));
		kray_value_clear(&s[i].val);
	}
	cr_assert_eq(kray_release(k, refs, N), 0);
	harness_shutdown(k);
}

Test(async, callbacks_run_only_from_process)
{
	struct slot s = { 0 };
	kray_ref ref;
	kray *k = harness_embedded(1);

	/* A value this process has already: still not from inside kray_get_async(). */
	cr_assert_eq(kray_put(k, &KRAY_V_INT(5), &ref), 0);
	cr_assert_eq(kray_get_async(k, &ref, keep, &s), 0);
	cr_assert_eq(s.ran, 0);
	cr_assert_eq(kray_pending(k), 1);
	cr_assert_eq(kray_process(k), 1);
	cr_assert_eq(s.ran, 1);
	cr_assert_eq(s.status, 0);
	cr_assert_eq(s.val.i, 5);
	cr_assert_eq(kray_pending(k), 0);
	kray_value_clear(&s.val);
	harness_shutdown(k);
}

Test(async, process_never_blocks)
{
	struct slot s = { 0 };
	kray_ref ref;
	int64_t t0;
	kray *k = harness_embedded(1);

	cr_assert_eq(kray_process(k), 0); /* nothing at all */
	ref = harness_call1(k, "sleep_ms", &KRAY_V_INT(1500), 1);
	cr_assert_eq(kray_get_async(k, &ref, keep, &s), 0);
	t0 = harness_now_ms();
	for (int i = 0; i < 20; i++)
		cr_assert_geq(kray_process(k), 0);
	cr_assert_lt(harness_now_ms() - t0, 500, "kray_process() waited");
	cr_assert_eq(s.ran, 0);
	cr_assert_eq(loop_until_done(k, 20000), 0);
	cr_assert_eq(s.ran, 1);
	kray_value_clear(&s.val);
	harness_shutdown(k);
}

Test(async, mixes_with_blocking_calls)
{
	struct slot s = { 0 };
	kray_ref slow, quick;
	kray_value v;
	int r;
	kray *k = harness_embedded(2);

	slow = harness_call1(k, "sleep_ms", &KRAY_V_INT(300), 1);
	cr_assert_eq(kray_get_async(k, &slow, keep, &s), 0);
	/* The async reply arrives while this get waits for its own: kept, not an error. */
	quick = harness_call1(k, "square", &KRAY_V_INT(9), 1);
	cr_assert_eq(kray_get(k, &slow, 1, 10000, &v), 0, "%s", kray_errmsg(k));
	kray_value_clear(&v);
	r = kray_get(k, &quick, 1, 10000, &v);
	cr_assert_eq(r, 0, "%d %s", r, kray_errmsg(k));
	cr_assert_eq(v.i, 81);
	cr_assert_eq(s.ran, 0);
	cr_assert_eq(loop_until_done(k, 10000), 0);
	cr_assert_eq(s.ran, 1);
	cr_assert_eq(s.status, 0);
	kray_value_clear(&s.val);
	harness_shutdown(k);
}

Test(async, task_error_reaches_the_callback)
{
	struct slot s = { 0 };
	kray_ref ref;
	kray *k = harness_embedded(1);

	ref = harness_call1(k, "fail", &KRAY_V_BYTES("no luck", 7), 1);
	cr_assert_eq(kray_get_async(k, &ref, keep, &s), 0);
	cr_assert_eq(loop_until_done(k, 20000), 0);
	cr_assert_eq(s.status, -EREMOTEIO);
	cr_assert_eq(s.val.type, KRAY_ERROR);
	cr_assert(strstr((const char *)s.val.data, "no luck"), "%s", (const char *)s.val.data);
	kray_value_clear(&s.val);
	harness_shutdown(k);
}

Test(async, bad_input)
{
	struct slot s = { 0 };
	kray_ref ref = { 0 };
	kray *k = harness_embedded(1);

	cr_assert_eq(kray_get_async(k, NULL, keep, &s), -EINVAL);
	cr_assert_eq(kray_get_async(k, &ref, NULL, &s), -EINVAL);
	cr_assert_eq(kray_get_async(NULL, &ref, keep, &s), -EINVAL);
	cr_assert_eq(kray_process(NULL), -EINVAL);
	cr_assert_eq(kray_set_nonblocking(NULL, 1), -EINVAL);
	cr_assert_eq(kray_want_write(NULL), 0);
	cr_assert_eq(kray_pending(NULL), 0);
	cr_assert_eq(kray_pending(k), 0);
	harness_shutdown(k);
}

Test(async, krayd_gone_fails_every_callback)
{
	struct harness h;
	struct slot s[3] = { 0 };
	kray_ref refs[3];
	kray *k;
	int r = 0;

	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	k = harness_connect(h.sock);
	for (int i = 0; i < 3; i++) {
		refs[i] = harness_call1(k, "sleep_ms", &KRAY_V_INT(20000), 1);
		cr_assert_eq(kray_get_async(k, &refs[i], keep, &s[i]), 0);
	}
	cr_assert_eq(kray_process(k), 0);
	harness_stop_krayd(&h);
	for (int i = 0; i < 100 && kray_pending(k); i++) {
		struct pollfd p = { .fd = kray_fd(k), .events = POLLIN };

		poll(&p, 1, 100);
		r = kray_process(k);
	}
	cr_assert_eq(r, -EPIPE);
	cr_assert_eq(kray_pending(k), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(s[i].ran, 1);
		cr_assert_eq(s[i].status, -EPIPE);
		cr_assert_eq(s[i].val.type, KRAY_NIL);
	}
	cr_assert_eq(kray_get_async(k, &refs[0], keep, &s[0]), -EPIPE);
	harness_shutdown(k);
}

/* The example a user would copy: examples/poll_loop.c. */
Test(async, poll_loop_example)
{
	char out[4096];

	harness_run_example(NULL, "poll_loop 500", out, sizeof(out));
	cr_assert(strstr(out, "500 squares") && strstr(out, "(right)"), "%s", out);
}

/*
 * An edge-triggered epoll on kray_fd(): a reply that a blocking kray_get() read (a read
 * that emptied the socket) must not make the next kray_process() skip reading what the
 * next edge announced, or the program would wait for an edge that never comes.
 */
Test(async, edge_triggered_epoll_sees_every_reply)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	kray *k = harness_embedded(2);

	cr_assert_geq(ep, 0);
	ev.data.fd = kray_fd(k);
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, kray_fd(k), &ev), 0);
	for (int round = 0; round < 5; round++) {
		kray_ref two[2], late;
		kray_value v[2];
		struct slot s = { 0 };
		int64_t end = harness_now_ms() + 10000;

		/* A blocking get through krayd (two refs: never the fast path). */
		cr_assert_eq(kray_call(k, "square", &KRAY_V_INT(3), 1, NULL, &two[0]), 0);
		cr_assert_eq(kray_call(k, "square", &KRAY_V_INT(4), 1, NULL, &two[1]), 0);
		cr_assert_eq(kray_get(k, two, 2, 10000, v), 0, "%s", kray_errmsg(k));
		cr_assert_eq(v[0].i + v[1].i, 25);
		cr_assert_eq(kray_release(k, two, 2), 0);
		/* Then a reply that comes later, waited for with the edge-triggered epoll. */
		cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(30), 1, NULL, &late), 0);
		cr_assert_eq(kray_get_async(k, &late, keep, &s), 0, "%s", kray_errmsg(k));
		cr_assert_eq(kray_flush(k), 0, "%s", kray_errmsg(k));
		while (!s.ran && harness_now_ms() < end) {
			struct epoll_event got;

			if (epoll_wait(ep, &got, 1, 200) == 1)
				cr_assert_geq(kray_process(k), 0, "%s", kray_errmsg(k));
		}
		cr_assert_eq(s.ran, 1, "round %d: the reply's edge came and went unread", round);
		cr_assert_eq(s.status, 0);
		cr_assert_eq(s.val.i, 30);
		kray_value_clear(&s.val);
		cr_assert_eq(kray_release(k, &late, 1), 0);
	}
	close(ep);
}
