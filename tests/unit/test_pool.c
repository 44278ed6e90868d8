// SPDX-License-Identifier: Apache-2.0
/*
 * The pool of pre-faulted memfds (daemon/core/pool.c) alone: takes are refilled by its
 * thread, which steps aside while objects are being written (pool_writing()), for a time
 * their sizes set (1 GB/s, 50 ms to 2 s) and no longer.
 */
#include <time.h>
#include <unistd.h>

#include "core.h"

#define SIZE (8ull << 20)

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Waits up to ms for the pool to hold want bytes; returns what it holds. */
static uint64_t wait_bytes(struct pool *p, uint64_t want, double ms)
{
	double until = now_ms() + ms;

	while (pool_bytes(p) < want && now_ms() < until)
		usleep(1000);
	return pool_bytes(p);
}

TestSuite(pool, .timeout = 30);

Test(pool, a_take_is_refilled_in_the_background)
{
	struct pool *p = pool_start(4 * SIZE, false);
	int fd = pool_take(p, SIZE); /* (none ready: a fresh one, and one ordered) */

	cr_assert_geq(fd, 0);
	cr_assert_eq(wait_bytes(p, SIZE, 10000), SIZE, "the pool did not refill");
	close(fd);
	fd = pool_take(p, SIZE);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pool_bytes(p), 0, "the ready memfd was not taken");
	close(fd);
	pool_stop(p);
}

Test(pool, the_filler_steps_aside_while_an_object_is_written)
{
	struct pool *p = pool_start(4 * SIZE, false);
	double t0 = now_ms();
	int fd;

	pool_writing(p, true, SIZE);
	fd = pool_take(p, SIZE);
	cr_assert_geq(fd, 0);
	usleep(20000);
	/* (50 ms for a small object: only a check made before then counts) */
	if (now_ms() - t0 < 45)
		cr_assert_eq(pool_bytes(p), 0, "the pool refilled while an object was written");
	pool_writing(p, false, SIZE);
	cr_assert_eq(wait_bytes(p, SIZE, 10000), SIZE, "no refill once the writing ended");
	close(fd);
	pool_stop(p);
}

Test(pool, a_large_object_keeps_the_filler_aside_longer)
{
	struct pool *p = pool_start(4 * SIZE, false);
	double t0 = now_ms();
	int fd;

	pool_writing(p, true, 1ull << 30); /* 1 GiB: about a second at 1 GB/s */
	fd = pool_take(p, SIZE);
	cr_assert_geq(fd, 0);
	usleep(200000);
	if (now_ms() - t0 < 900)
		cr_assert_eq(pool_bytes(p), 0, "the pool refilled while 1 GiB was written");
	pool_writing(p, false, 1ull << 30);
	cr_assert_eq(wait_bytes(p, SIZE, 10000), SIZE, "no refill once the writing ended");
	close(fd);
	pool_stop(p);
}

Test(pool, a_writer_that_never_seals_does_not_keep_the_pool_empty)
{
	struct pool *p = pool_start(4 * SIZE, false);
	int fd;

	pool_writing(p, true, SIZE);
	fd = pool_take(p, SIZE);
	cr_assert_geq(fd, 0);
	cr_assert_eq(wait_bytes(p, SIZE, 10000), SIZE, "the pool stayed empty behind a writer");
	pool_writing(p, false, SIZE);
	pool_writing(p, false, SIZE); /* (one end too many is ignored) */
	close(fd);
	pool_stop(p);
}
