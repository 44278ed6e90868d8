/* SPDX-License-Identifier: Apache-2.0 */
/* What daemon/bpf_metrics.c and daemon/bpf_sched.c share: the loaded programs' state. */
#ifndef KRAYD_BPF_PRIV_H
#define KRAYD_BPF_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

struct sched_metrics;

struct kbpf {
	struct sched_metrics *skel;
	char dir[64]; /* /sys/fs/bpf/kray/<node> */
	int workers_fd, winfo_fd, sched_fd, dispatch_fd;
	int64_t sampled_ns; /* last window's end; 0: none yet */
	int64_t published_ns; /* sampled_ns of what the sched map shows */
	bool oversubscribed; /* the last window's verdict */
	unsigned busy; /* busy workers at the last sample */
	int64_t deferred_since; /* a worker start waits on the verdict; 0: none */
	uint64_t wait_permille, windows_over;
	uint64_t spawns_deferred; /* dispatch rounds that queued instead of starting workers */
};

#endif
