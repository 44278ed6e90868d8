// SPDX-License-Identifier: Apache-2.0
/*
 * Levelled log lines on stderr: "krayd[pid]: <level>: message".  Under systemd (stderr is
 * the journal: $JOURNAL_STREAM is set) each line starts with its syslog priority, "<3>",
 * so journalctl shows and filters levels; the pid and time come from the journal then.
 */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO;

static const char *const names[] = { "error", "warn", "info", "debug" };

void log_msg(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	static const int prio[] = { 3, 4, 6, 7 }; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
	static int journal = -1;

	if (level > log_level)
		return;
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	if (journal)
		n = snprintf(line, sizeof(line), "<%d>%s: ", prio[level], names[level]);
	else
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

bool log_ratelimit_ok(struct ratelimit *rl)
{
	struct timespec ts;
	long long now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec / 5; /* 5-second windows */
	if (now != rl->window) {
		if (rl->suppressed)
			log_msg(LOG_WARN, "%u similar messages suppressed", rl->suppressed);
		rl->window = now;
		rl->n = rl->suppressed = 0;
	}
	if (rl->n < 10) {
		rl->n++;
		return true;
	}
	rl->suppressed++;
	return false;
}

int log_parse_level(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -EINVAL;
}
