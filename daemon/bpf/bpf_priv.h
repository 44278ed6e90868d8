/* SPDX-License-Identifier: Apache-2.0 */
/* What daemon/bpf/bpf_metrics.c and daemon/bpf/bpf_sched.c share: the loaded programs' state. */
#ifndef KRAYD_BPF_PRIV_H
#define KRAYD_BPF_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../include/uapi/kray_bpf.h"

#define KBPF_INFO_NS (100 * 1000 * 1000LL) /* winfo refresh period (the view's lag) */

struct sched_metrics;

struct kbpf {
	struct sched_metrics *skel;
	char dir[64]; /* /sys/fs/bpf/kray/<node> */
	int workers_fd, winfo_fd, sched_fd, dispatch_fd;
	uint64_t *submits; /* the `submits` map, mapped: slot -> submit ns of a task sent */
	bool slot_used[KRAY_BPF_MAX_WORKERS];
	unsigned ndirty; /* workers whose winfo entry is out of date */
	int64_t info_ns; /* when winfo was last written */
	int64_t sampled_ns; /* last window's end; 0: none yet */
	int64_t published_ns; /* sampled_ns of what the sched map shows */
	bool oversubscribed; /* the last window's verdict */
	unsigned busy; /* busy workers at the last sample */
	int64_t deferred_since; /* a worker start waits on the verdict; 0: none */
	uint64_t wait_permille, windows_over;
	uint64_t spawns_deferred; /* dispatch rounds that queued instead of starting workers */
};

#endif
