/* SPDX-License-Identifier: Apache-2.0 */
/* krayd's log: levelled lines to stderr (journald reads them), one line per event. */
#ifndef KRAYD_LOG_H
#define KRAYD_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_level;

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "error", "warn", "info" or "debug".  Returns the level or -EINVAL. */
int log_parse_level(const char *s);

/* At most a burst of lines per call site every few seconds; the rest are counted and the
 * count is logged when the site may speak again.  For faults a peer can repeat at will. */
struct ratelimit {
	long long window;
	unsigned n, suppressed;
};
bool log_ratelimit_ok(struct ratelimit *rl);

#define log_ratelimited(level, ...)                  \
	do {                                         \
		static struct ratelimit rl_;         \
		if (log_ratelimit_ok(&rl_))          \
			log_msg(level, __VA_ARGS__); \
	} while (0)
#define log_warn_ratelimited(...) log_ratelimited(LOG_WARN, __VA_ARGS__)

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                   \
	do {                                             \
		if (log_level >= LOG_DEBUG)              \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
