// SPDX-License-Identifier: Apache-2.0
/*
 * bench_calls.c - the sync and async rounds of the call benchmarks (bench_calls.h), one
 * copy for tasks and actors so that their figures compare.
 */
#include "bench_calls.h"

#include "bench_common.h"

#define GET_TIMEOUT_MS 60000

void bench_get_all(kray *k, kray_ref *refs, size_t n, kray_value *vals)
{
	if (kray_get(k, refs, n, GET_TIMEOUT_MS, vals) < 0)
		bench_die("kray_get", kray_errmsg(k));
	for (size_t i = 0; i < n; i++)
		kray_value_clear(&vals[i]);
	if (kray_release(k, refs, n) < 0)
		bench_die("kray_release", kray_errmsg(k));
}

size_t bench_batch(const struct bench_op *op, size_t n, kray_ref *refs, kray_value *vals)
{
	for (size_t i = 0; i < n; i++)
		op->submit(op, i, &refs[i]);
	bench_get_all(op->k, refs, n, vals);
	return n;
}

void bench_warm_up(const struct bench_op *op, size_t n, double round_s, kray_ref *refs,
		   kray_value *vals)
{
	double end = bench_now() + (round_s < 1 ? round_s : 1);

	do {
		bench_batch(op, n, refs, vals);
		for (size_t i = 0; i < 100; i++) {
			op->submit(op, i, &refs[0]);
			bench_get_all(op->k, refs, 1, vals);
		}
	} while (bench_now() < end);
}

size_t bench_sync_rounds(const struct bench_op *op, int rounds, double round_s, double *per_s,
			 double *rt_us)
{
	return bench_sync_rounds_get(op, rounds, round_s, GET_TIMEOUT_MS, per_s, rt_us);
}

size_t bench_sync_rounds_get(const struct bench_op *op, int rounds, double round_s,
			     int64_t timeout_ms, double *per_s, double *rt_us)
{
	struct bench_samples s = { 0 };
	size_t all = 0;
	kray_value val;
	kray_ref ref;

	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now(), end = t0 + round_s, t = t0;

		s.n = 0;
		while (t < end) {
			op->submit(op, 0, &ref);
			if (kray_get(op->k, &ref, 1, timeout_ms, &val) < 0)
				bench_die("kray_get", kray_errmsg(op->k));
			kray_value_clear(&val);
			if (kray_release(op->k, &ref, 1) < 0)
				bench_die("kray_release", kray_errmsg(op->k));
			double t1 = bench_now();

			bench_push(&s, (t1 - t) * 1e6);
			t = t1;
		}
		per_s[r] = s.n / (t - t0);
		rt_us[r] = bench_median(s.v, s.n);
		all += s.n;
	}
	bench_samples_free(&s);
	return all;
}

size_t bench_async_rounds(const struct bench_op *op, size_t n, int rounds, double round_s,
			  kray_ref *refs, kray_value *vals, double *per_s)
{
	size_t all = 0;

	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now(), end = t0 + round_s, t = t0;
		size_t calls = 0;

		while (t < end) {
			calls += bench_batch(op, n, refs, vals);
			t = bench_now();
		}
		per_s[r] = calls / (t - t0);
		all += calls;
	}
	return all;
}
