/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KRAY_TOOLS_TOP_H
#define KRAY_TOOLS_TOP_H

#include <stdbool.h>

/* `kray top`: the per-worker table of the krayd at sock, refreshed every interval_ms
 * until SIGINT, or printed once (after one interval, for CPU %) when once is set.
 * Returns the exit status. */
int kray_top_main(const char *sock, bool once, unsigned interval_ms);

#endif
