// SPDX-License-Identifier: Apache-2.0
/*
 * The pool of pre-faulted memfds (daemon/core/pool.c) alone: takes are refilled by its
 * thread, which steps aside while objects are being written (pool_write_begins()), for a
 * time their sizes set (1 GB/s, 50 ms to 2 s) and no longer.  Takes that find it empty
 * grow it up to its max; without such misses it shrinks back.
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

TestSuite(pool, .timeout = 60);

/* A take that found a memfd ready says so, and every page of that memfd exists (what
 * KRAY_CREATE_FILLED tells a writer); a fresh one has none. */
Test(pool, a_take_is_refilled_in_the_background)
{
	struct pool *p = pool_start(4 * SIZE, 4 * SIZE, false);
	bool ready = true;
	int fd = pool_take(p, SIZE, false, &ready); /* (none ready: a fresh one, one ordered) */

	cr_assert_geq(fd, 0);
	cr_assert_not(ready, "a fresh memfd was said to be ready");
	cr_assert_eq(lseek(fd, 0, SEEK_DATA), -1, "a fresh memfd has pages");
	cr_assert_eq(wait_bytes(p, SIZE, 10000), SIZE, "the pool did not refill");
	close(fd);
	fd = pool_take(p, SIZE, false, &ready);
	cr_assert_geq(fd, 0);
	cr_assert(ready, "the ready memfd was not said to be");
	cr_assert_eq(lseek(fd, 0, SEEK_HOLE), (off_t)SIZE, "a ready memfd lacks pages");
	cr_assert_eq(pool_bytes(p), 0, "the ready memfd was not taken");
	close(fd);
	pool_stop(p);
}

/* A pool holding one memfd ready, taken before: what a writer that finds one takes. */
static struct pool *stocked(void)
{
	struct pool *p = pool_start(4 * SIZE, 4 * SIZE, false);
	int fd = pool_take(p, SIZE, false, NULL);

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(wait_bytes(p, SIZE, 10000), SIZE, "the pool did not refill");
	return p;
}

/* While an object of size bytes is written into the memfd the pool had ready, its take is
 * not refilled (checked after wait_us, if that is still before aside_ms: the time size
 * sets); once the writing ends it is. */
static void aside_while_writing(uint64_t size, useconds_t wait_us, double aside_ms)
{
	struct pool *p = stocked();
	double t0 = now_ms();
	int fd;

	pool_write_begins(p, size);
	fd = pool_take(p, SIZE, false, NULL);
	cr_assert_geq(fd, 0);
	usleep(wait_us);
	if (now_ms() - t0 < aside_ms)
		cr_assert_eq(pool_bytes(p), 0, "the pool refilled while %llu bytes were written",
			     (unsigned long long)size);
	pool_write_ends(p);
	cr_assert_eq(wait_bytes(p, SIZE, 10000), SIZE, "no refill once the writing ended");
	close(fd);
	pool_stop(p);
}

Test(pool, the_filler_steps_aside_while_an_object_is_written)
{
	aside_while_writing(SIZE, 20000, 45); /* a small object: 50 ms */
}

Test(pool, a_large_object_keeps_the_filler_aside_longer)
{
	aside_while_writing(1ull << 30, 200000, 900); /* 1 GiB: about a second at 1 GB/s */
}

Test(pool, a_writer_that_never_seals_does_not_keep_the_pool_empty)
{
	struct pool *p = stocked();
	int fd;

	pool_write_begins(p, SIZE);
	fd = pool_take(p, SIZE, false, NULL);
	cr_assert_geq(fd, 0);
	cr_assert_eq(wait_bytes(p, SIZE, 10000), SIZE, "the pool stayed empty behind a writer");
	pool_write_ends(p);
	pool_write_ends(p); /* (one end too many is ignored) */
	close(fd);
	pool_stop(p);
}

/* A writer that finds the pool empty writes fresh memory anyway: the filler refills
 * beside it rather than stepping aside. */
Test(pool, the_filler_refills_beside_a_writer_that_found_nothing)
{
	struct pool *p = pool_start(4 * SIZE, 4 * SIZE, false);
	int fd;

	pool_write_begins(p, 1ull << 30); /* (1 s aside, were it to step aside) */
	fd = pool_take(p, SIZE, false, NULL);
	cr_assert_geq(fd, 0);
	cr_assert_eq(wait_bytes(p, SIZE, 500), SIZE, "the filler stepped aside");
	pool_write_ends(p);
	close(fd);
	pool_stop(p);
}

/* A burst of takes that find the pool empty (in microseconds, where filling one of these
 * takes tens of ms): each grows it by its size, up to its max; the next burst finds all
 * three ready.  Without misses it shrinks back to its base, letting the extra memfds go. */
#define BIG (128ull << 20)
Test(pool, misses_grow_it_up_to_its_max_then_it_shrinks_back)
{
	struct pool *p = pool_start(BIG, 3 * BIG, false);
	int fd[4];

	for (int i = 0; i < 4; i++) {
		fd[i] = pool_take(p, BIG, false, NULL);
		cr_assert_geq(fd[i], 0);
	}
	cr_assert_eq(pool_budget(p), 3 * BIG, "budget %llu after 4 misses",
		     (unsigned long long)pool_budget(p));
	cr_assert_eq(wait_bytes(p, 3 * BIG, 20000), 3 * BIG, "the grown pool did not fill");
	for (int i = 0; i < 4; i++)
		close(fd[i]);
	for (int i = 0; i < 3; i++) {
		fd[i] = pool_take(p, BIG, false, NULL);
		cr_assert_geq(fd[i], 0);
	}
	cr_assert_eq(pool_bytes(p), 0, "the burst did not take the three ready memfds");
	cr_assert_eq(pool_budget(p), 3 * BIG);
	cr_assert_eq(wait_bytes(p, 3 * BIG, 20000), 3 * BIG, "no refill after the burst");
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	pool_shrink_after(p, 100 * 1000000ll);
	for (double t0 = now_ms(); pool_budget(p) > BIG && now_ms() - t0 < 10000;)
		usleep(1000);
	cr_assert_eq(pool_budget(p), BIG, "the pool did not shrink back");
	cr_assert_eq(pool_bytes(p), BIG, "%llu bytes ready after the shrink",
		     (unsigned long long)pool_bytes(p));
	pool_stop(p);
}

/* A pool whose max is its base does not grow. */
Test(pool, no_growth_past_a_max_equal_to_its_base)
{
	struct pool *p = pool_start(SIZE, SIZE, false);
	int fd;

	pool_write_begins(p, SIZE);
	for (int i = 0; i < 3; i++) {
		fd = pool_take(p, SIZE, false, NULL);
		cr_assert_geq(fd, 0);
		close(fd);
	}
	cr_assert_eq(pool_budget(p), SIZE);
	pool_write_ends(p);
	pool_stop(p);
}

/* Takes larger than its base do not grow it: not worth that much idle memory. */
Test(pool, no_growth_for_objects_larger_than_its_base)
{
	struct pool *p = pool_start(SIZE, 8 * SIZE, false);

	for (int i = 0; i < 3; i++) {
		int fd = pool_take(p, 2 * SIZE, false, NULL);

		cr_assert_geq(fd, 0);
		close(fd);
	}
	cr_assert_eq(pool_budget(p), SIZE);
	pool_stop(p);
}
