/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The timing loops of the call benchmarks (bench_tasks, bench_actors), measured the same
 * way for whatever is called: one submission of a no-op (a task, an actor method) is an
 * op's submit(); a sync round submits one and gets it, again and again; an async round
 * submits a batch and gets it all, again and again.  Every failure ends the bench
 * (bench_die).
 */
#ifndef KRAY_BENCH_CALLS_H
#define KRAY_BENCH_CALLS_H

#include <stddef.h>
#include <stdint.h>

#include <kray/kray.h>

/* A call to measure: submit() makes call number i of a batch and writes its ref. */
struct bench_op {
	kray *k;
	void (*submit)(const struct bench_op *op, size_t i, kray_ref *ret_ref);
	void *arg; /* the submit()'s own */
};

/* Gets refs[0..n) (60 s at most), clears the values and releases the refs. */
void bench_get_all(kray *k, kray_ref *refs, size_t n, kray_value *vals);

/* n calls (refs and vals hold n), then one get of them all.  Returns n. */
size_t bench_batch(const struct bench_op *op, size_t n, kray_ref *refs, kray_value *vals);

/*
 * Warm-up for min(round_s, 1) seconds: a batch of n and 100 one-by-one calls, repeated,
 * so that the workers exist and the caches and pools of both paths are full.
 */
void bench_warm_up(const struct bench_op *op, size_t n, double round_s, kray_ref *refs,
		   kray_value *vals);

/* Per round of round_s: calls/s and the median round trip in µs of one call (number 0)
 * and its get.  Returns the calls made in all. */
size_t bench_sync_rounds(const struct bench_op *op, int rounds, double round_s, double *per_s,
			 double *rt_us);

/* The same, each get with timeout_ms (-1: none; bench_sync_rounds: 60 s, Ray's
 * get-with-timeout shape). */
size_t bench_sync_rounds_get(const struct bench_op *op, int rounds, double round_s,
			     int64_t timeout_ms, double *per_s, double *rt_us);

/* Per round of round_s: calls/s in batches of n.  Returns the calls made in all. */
size_t bench_async_rounds(const struct bench_op *op, size_t n, int rounds, double round_s,
			  kray_ref *refs, kray_value *vals, double *per_s);

#endif /* KRAY_BENCH_CALLS_H */
