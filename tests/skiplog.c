// SPDX-License-Identifier: Apache-2.0
/*
 * Linked into every Criterion test binary: each skipped test is appended, with the reason
 * it gave (cr_skip_test()), to the file $KRAY_SKIP_LOG names, so that `make test` can end
 * with the list of what did not run and why (Criterion's own summary only counts them).
 * Without KRAY_SKIP_LOG it does nothing.  pytest does the same (tests/python/conftest.py).
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ReportHook(POST_TEST)(struct criterion_test_stats *st)
{
	const char *path = getenv("KRAY_SKIP_LOG");
	char line[1024];
	int fd, n;

	if (!path || !*path || st->test_status != CR_STATUS_SKIPPED)
		return;
	n = snprintf(line, sizeof(line), "%s::%s: %s\n", st->test->category, st->test->name,
		     st->message && *st->message ? st->message : "(no reason given)");
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* O_APPEND: suites and runs that share the file never interleave within a line. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) != n)
		perror("KRAY_SKIP_LOG");
	close(fd);
}
