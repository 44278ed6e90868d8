// SPDX-License-Identifier: Apache-2.0
/*
 * square_fns.c - the remote function of the square example (examples/square.c),
 * built into libsquare_fns.so and loaded by kray's workers.
 */
#include <kray/kray.h>

KRAY_REMOTE(square, 1)
{
	return kray_return_int(ctx, 0, args[0].i * args[0].i);
}
