// SPDX-License-Identifier: Apache-2.0
/*
 * Streaming generators from C (kray_call_opts.streaming, kray_yield, kray_stream_next):
 * items in order while the call runs, a large item moved into the store, the end, an
 * error that ends the stream, bad input.  stream_count is in tests/fixtures/returnfns.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include <kray/kray.h>

#include "harness.h"

TestSuite(stream, .fini = harness_cleanup, .timeout = 60);

static kray_ref call_stream(kray *k, int64_t n, int64_t fail_at)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value a[2] = { KRAY_V_INT(n), KRAY_V_INT(fail_at) };
	kray_ref r;

	o.streaming = 1;
	cr_assert_eq(kray_call(k, "stream_count", a, 2, &o, &r), 0, "%s", kray_errmsg(k));
	return r;
}

Test(stream, items_in_order_then_the_end)
{
	kray *k = harness_embedded(1);
	kray_ref call = call_stream(k, 1000, -1), s = call, item;
	kray_value v;

	for (int64_t i = 0; i < 1000; i++) {
		cr_assert_eq(kray_stream_next(k, &s, 30000, &item), 0, "item %lld: %s",
			     (long long)i, kray_errmsg(k));
		cr_assert_eq(harness_get1(k, item, 30000, &v), 0, "%s", kray_errmsg(k));
		cr_assert_eq(v.type, KRAY_INT64);
		cr_assert_eq(v.i, i);
		kray_value_clear(&v);
		kray_release(k, &item, 1);
	}
	cr_assert_eq(kray_stream_next(k, &s, 30000, &item), 0, "%s", kray_errmsg(k));
	cr_assert_eq(harness_get1(k, item, 30000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, 8u << 20, "the large item");
	for (size_t i = 0; i < v.len; i += 4093)
		cr_assert_eq(((const unsigned char *)v.data)[i], (unsigned char)(i % 251));
	kray_value_clear(&v);
	kray_release(k, &item, 1);
	cr_assert_eq(kray_stream_next(k, &s, 30000, &item), 1, "the end");
	cr_assert_eq(kray_stream_next(k, &s, 0, &item), 1, "still the end");
	cr_assert_eq(harness_get1(k, call, 30000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 1000, "the completion");
	kray_value_clear(&v);
}

Test(stream, error_ends_the_stream)
{
	kray *k = harness_embedded(1);
	kray_ref call = call_stream(k, 10, 3), s = call, item;
	kray_value v;

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(kray_stream_next(k, &s, 30000, &item), 0, "%s", kray_errmsg(k));
		kray_release(k, &item, 1);
	}
	/* A C function's failure is the call's error: the item after the last says it. */
	cr_assert_eq(kray_stream_next(k, &s, 30000, &item), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_get(k, &item, 1, 30000, &v), -EREMOTEIO);
	cr_assert_eq(v.type, KRAY_ERROR);
	cr_assert_eq(v.err, KRAY_ERR_TASK);
	cr_assert_not_null(strstr(v.data, "failed at item 3"), "%s", (const char *)v.data);
	kray_value_clear(&v);
	kray_release(k, &item, 1);
	cr_assert_eq(kray_stream_next(k, &s, 30000, &item), 1, "nothing after the error");
	cr_assert_eq(kray_get(k, &call, 1, 30000, &v), -EREMOTEIO);
	kray_value_clear(&v);
}

Test(stream, closed_early_and_bad_input)
{
	kray *k = harness_embedded(1);
	kray_ref s = call_stream(k, 100000, -1), item;
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_ref two[2];

	cr_assert_eq(kray_stream_next(k, &s, 30000, &item), 0, "%s", kray_errmsg(k));
	kray_release(k, &item, 1);
	cr_assert_eq(kray_stream_close(k, &s), 0);
	cr_assert_eq(kray_stream_next(k, &s, 0, &item), 1, "closed");
	o.streaming = 1;
	o.num_returns = 2;
	cr_assert_eq(kray_call(k, "stream_count", NULL, 0, &o, two), -EINVAL);
	cr_assert_eq(kray_stream_next(k, NULL, 0, &item), -EINVAL);
	/* krayd goes on. */
	harness_expect_int(k, "square", &KRAY_V_INT(7), 1, 49);
}
