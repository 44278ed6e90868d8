// SPDX-License-Identifier: Apache-2.0
/*
 * counter_fns.c - the Counter actor class of the seed example: a state struct, a
 * constructor and two methods, in a shared library on the job's code path.
 */
#include <kray/kray.h>

struct counter {
	int64_t n;
};

KRAY_ACTOR(Counter, struct counter, 0)
{
	self->n = 0;
	return 0;
}

KRAY_METHOD(Counter, increment, 0)
{
	self->n++;
	return 0;
}

KRAY_METHOD(Counter, read, 0)
{
	return kray_return_int(ctx, 0, self->n);
}
