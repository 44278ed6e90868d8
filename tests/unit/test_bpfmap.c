// SPDX-License-Identifier: Apache-2.0
/*
 * common/bpfmap.h: the lock on the pin root that krayds take to set up and sweep.  A holder
 * that never lets go (a stopped krayd) makes the next one give up, not wait for ever.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <time.h>

#include "../../common/bpfmap.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(bpfmap, lock_gives_up_on_a_holder_that_keeps_it)
{
	char root[] = "/tmp/kray-bpfmap-XXXXXX";
	int held, again;
	int64_t t0;

	cr_assert_not_null(mkdtemp(root));
	held = kbm_lock_wait(root, 0);
	cr_assert_geq(held, 0, "an unheld lock: %d", held);
	t0 = now_ms();
	again = kbm_lock_wait(root, 100); /* another open file: flock conflicts */
	cr_expect_eq(again, -ETIMEDOUT, "a held lock: %d", again);
	cr_expect_geq(now_ms() - t0, 100, "gave up after %lld ms", (long long)(now_ms() - t0));
	close(held);
	again = kbm_lock_wait(root, 100); /* let go: taken at once */
	cr_expect_geq(again, 0, "a released lock: %d", again);
	if (again >= 0)
		close(again);
	cr_expect_eq(kbm_lock_wait("/nonexistent/kray-bpfmap", 0), -ENOENT);
	rmdir(root);
}
