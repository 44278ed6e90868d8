/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the fuzz targets share.  Each tests/fuzz/fuzz_<name>.c defines
 * LLVMFuzzerTestOneInput(); it is linked either with libFuzzer (make fuzz) or with the
 * plain driver.c (make test-fuzz-replay), so a target may not depend on either.
 *
 * An oracle that fails calls fuzz_fail(), which aborts: libFuzzer saves the input as a
 * crash, and the replay dies with the input's name on stderr.
 */
#ifndef KRAY_TESTS_FUZZ_H
#define KRAY_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Straight to fd 2: fuzz_config points the stdio stderr at /dev/null. */
static inline __attribute__((noreturn)) void fuzz_fail(const char *what, const char *file, int line)
{
	dprintf(STDERR_FILENO, "%s:%d: oracle failed: %s\n", file, line, what);
	abort();
}

#define FUZZ_CHECK(cond)                                      \
	do {                                                  \
		if (!(cond))                                  \
			fuzz_fail(#cond, __FILE__, __LINE__); \
	} while (0)

#endif /* KRAY_TESTS_FUZZ_H */
