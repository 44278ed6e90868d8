/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KRAY_TOOLS_STATE_H
#define KRAY_TOOLS_STATE_H

/* `kray timeline [FILE]`: the krayd at sock's task timeline as Chrome trace JSON, written
 * to FILE (file NULL or "-": stdout).  Returns the exit status. */
int kray_timeline_main(const char *sock, const char *file);

/* `kray status --json`: the krayd at sock's counters, nodes and actors as one JSON object
 * on stdout (docs/state.md).  Returns the exit status. */
int kray_status_json_main(const char *sock);

#endif
