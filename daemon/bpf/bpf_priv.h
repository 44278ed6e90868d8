/* SPDX-License-Identifier: Apache-2.0 */
/* What daemon/bpf/bpf_metrics.c and daemon/bpf/bpf_sched.c share: the loaded programs' state. */
#ifndef KRAYD_BPF_PRIV_H
#define KRAYD_BPF_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../include/uapi/kray_bpf.h"

#define KBPF_INFO_NS (100 * 1000 * 1000LL) /* winfo refresh period (the view's lag) */

#include <pthread.h>

#define KBPF_PINS_MAX 8 /* maps the programs pin */

struct sched_metrics;
struct bpf_map;
struct loop_watch;

struct kbpf {
	struct sched_metrics *skel;
	char dir[64]; /* /sys/fs/bpf/kray/<node> */
	/* The load (bpf_metrics.c): on a thread unless bpf-wait; pinned and attached by the
	 * loop once loaded. */
	pthread_t loader;
	int efd; /* the thread's "loaded" wake-up */
	struct loop_watch *watch;
	bool loaded; /* (atomic) the thread is done; err says how */
	int err;
	int64_t load_ns; /* when the load began */
	struct bpf_map *pins[KBPF_PINS_MAX];
	unsigned npins;
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

/* Why BPF is off after error err, in words for the log. */
const char *kbpf_why_off(int err);

#endif
