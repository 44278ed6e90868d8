// SPDX-License-Identifier: Apache-2.0
/*
 * pi_fns.c - the remote function of the pi example (examples/pi.c), built into
 * libpi_fns.so.  pi_hits(seed, samples) throws `samples` random points at the unit
 * square and returns how many fall inside the quarter circle.
 */
#include <kray/kray.h>
#include <stdint.h>

/* splitmix64: small, fast, and good enough for Monte Carlo; a distinct seed per task. */
static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

KRAY_REMOTE(pi_hits, 2)
{
	if (args[0].type != KRAY_INT64 || args[1].type != KRAY_INT64 || args[1].i < 0)
		return kray_fail(ctx, "pi_hits(seed, samples): two integers, samples >= 0");

	uint64_t state = (uint64_t)args[0].i * 0xd1342543de82ef95ULL + 1;
	int64_t samples = args[1].i, hits = 0;

	/* One draw gives two 31-bit coordinates; x^2 + y^2 < 2^62 is the circle test. */
	for (int64_t n = 0; n < samples; n++) {
		uint64_t r = splitmix64(&state);
		uint64_t x = r >> 33, y = r & 0x7fffffff;

		hits += x * x + y * y < (1ULL << 62);
	}
	return kray_return_int(ctx, 0, hits);
}
