// SPDX-License-Identifier: Apache-2.0
/*
 * libkray without memory (issue 15): kray.h promises -errno, so an allocation that fails
 * inside the library must come back as -ENOMEM, never abort() the program that loaded it.
 * This binary interposes malloc, calloc and realloc (libkray's calls go through the PLT to
 * them) and makes the n-th allocation of the calling thread fail, for n = 0, 1, 2, ...
 * over a sequence of puts, calls and gets: every step must succeed or say -ENOMEM, the
 * process must live, and with the allocations back the handle must work (or say -EPIPE,
 * where the reply it waited for could not be received: then a new handle works).
 *
 * Not under AddressSanitizer (make test-asan): its allocator cannot be interposed here.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kray/kray.h>

#include "harness.h"

TestSuite(nomem, .fini = harness_cleanup, .timeout = 120);

#if defined(__SANITIZE_ADDRESS__)
#define NOMEM_INTERPOSE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOMEM_INTERPOSE 0
#endif
#endif
#ifndef NOMEM_INTERPOSE
#define NOMEM_INTERPOSE 1
#endif

/* Allocations this thread may still make before one fails; -1: never fails. */
static __thread long fail_in = -1;
/* Allocations failed so far (by this thread). */
static __thread long failed;

#if NOMEM_INTERPOSE
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static int should_fail(void)
{
	if (fail_in < 0)
		return 0;
	if (fail_in-- > 0)
		return 0;
	failed++;
	errno = ENOMEM;
	return 1;
}

void *malloc(size_t size)
{
	return should_fail() ? NULL : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	return should_fail() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	return should_fail() ? NULL : __libc_realloc(p, size);
}
#endif

static void arm(long n)
{
	failed = 0;
	fail_in = n;
}

static void disarm(void)
{
	fail_in = -1;
}

/* One round of work on k with the n-th allocation failing.  Returns the number of
 * -ENOMEM answers; asserts that every answer is 0 or -ENOMEM (or -EPIPE after an -ENOMEM
 * broke the handle). */
static int round_with_failure(kray *k, long n, char *big, size_t big_len)
{
	kray_value v, args[1];
	kray_ref put_ref, call_ref;
	struct kray_ids ids;
	kray_ref large_ref;
	int nomem = 0, r;
	int rs[7];
	size_t large_len;
	char *large;

	kray_ids(k, &ids);
	large_len = ids.inline_max + 1; /* a memfd object: create, map, view */
	large = malloc(large_len);
	cr_assert(large);
	memset(large, 'y', large_len);

	arm(n);
	rs[0] = r = kray_put(k, &KRAY_V_BYTES(big, 1000), &put_ref);
	args[0] = KRAY_V_BYTES(big, big_len);
	rs[1] = kray_call(k, "echo_bytes", args, 1, NULL, &call_ref);
	if (!rs[1]) {
		rs[2] = kray_get(k, &call_ref, 1, 30000, &v);
		if (!rs[2]) {
			long left = fail_in;

			disarm(); /* Criterion's asserts allocate */
			cr_assert_eq(v.type, KRAY_BYTES);
			cr_assert_eq(v.len, big_len);
			cr_assert(!memcmp(v.data, big, big_len));
			fail_in = left;
			kray_value_clear(&v);
		}
	} else {
		rs[2] = 0;
	}
	rs[3] = r ? 0 : kray_get(k, &put_ref, 1, 30000, &v);
	if (!r && !rs[3])
		kray_value_clear(&v);
	rs[4] = kray_put(k, &KRAY_V_BYTES(large, large_len), &large_ref);
	rs[5] = rs[4] ? 0 : kray_get(k, &large_ref, 1, 30000, &v);
	if (!rs[4] && !rs[5]) {
		long left = fail_in;

		disarm();
		cr_assert_eq(v.len, large_len);
		cr_assert(!memcmp(v.data, large, large_len));
		fail_in = left;
		kray_value_clear(&v);
	}
	rs[6] = kray_flush(k);
	disarm();
	free(large);
	for (int i = 0; i < 7; i++) {
		cr_assert(rs[i] == 0 || rs[i] == -ENOMEM || (rs[i] == -EPIPE && nomem),
			  "step %d with allocation %ld failing: %d (%s)", i, n, rs[i],
			  kray_errmsg(k));
		nomem += rs[i] == -ENOMEM;
	}
	return nomem;
}

Test(nomem, every_allocation_fails_in_turn)
{
	struct harness h;
	static char big[20000];
	int total_nomem = 0;
	long n;

	if (!NOMEM_INTERPOSE)
		cr_skip_test("malloc cannot be interposed under AddressSanitizer");
	memset(big, 'x', sizeof(big));
	cr_assert_eq(harness_start_krayd(&h, 2), 0);
	for (n = 0; n < 400; n++) {
		kray *k = harness_connect(h.sock);
		kray_value v;
		kray_ref ref;
		int got = round_with_failure(k, n, big, sizeof(big));

		total_nomem += got;
		if (!failed) { /* the round needed fewer than n allocations: all done */
			cr_assert_eq(got, 0);
			harness_shutdown(k);
			break;
		}
		/* Memory is back: the handle works, unless the failure broke it. */
		if (kray_flush(k) == 0) {
			ref = harness_call1(k, "square", &KRAY_V_INT(7), 1);
			cr_assert_eq(kray_get(k, &ref, 1, 30000, &v), 0, "after allocation %ld: %s",
				     n, kray_errmsg(k));
			cr_assert_eq(v.i, 49);
		}
		harness_shutdown(k);
	}
	cr_log_info("%ld rounds, %d answers of -ENOMEM", n, total_nomem);
	cr_assert_lt(n, 400, "the round never ran without a failure");
	cr_assert_gt(total_nomem, 0, "no step ever said -ENOMEM");
	cr_assert(harness_krayd_alive(&h));
}

Test(nomem, init_without_memory)
{
	struct harness h;
	struct kray_config cfg = { 0 };
	kray *k = NULL;
	int r = 0;

	if (!NOMEM_INTERPOSE)
		cr_skip_test("malloc cannot be interposed under AddressSanitizer");
	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	cfg.address = h.sock;
	/* The first few allocations of kray_init() fail in turn: -ENOMEM each time. */
	for (long n = 0; n < 6; n++) {
		arm(n);
		r = kray_init(&k, &cfg);
		disarm();
		cr_assert(r == 0 || r == -ENOMEM, "allocation %ld failing: kray_init said %d", n,
			  r);
		if (!r)
			kray_shutdown(k);
	}
	arm(0);
	r = kray_init(&k, &cfg);
	disarm();
	cr_assert_eq(r, -ENOMEM);
	cr_assert(strstr(kray_init_errmsg(), "memory"), "%s", kray_init_errmsg());
}
