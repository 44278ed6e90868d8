// SPDX-License-Identifier: Apache-2.0
/* Levelled log lines: "krayd[pid]: <level>: message". */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int log_level = LOG_INFO;

static const char *const names[] = { "error", "warn", "info", "debug" };

void log_msg(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "krayd[%d]: %s: ", (int)getpid(), names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write per line so concurrent writers (workers share stderr) do not interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

int log_parse_level(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -EINVAL;
}
