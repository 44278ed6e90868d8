// SPDX-License-Identifier: Apache-2.0
/*
 * `kray top`: a per-worker table of how the kernel schedules kray's workers, read from
 * the BPF maps krayd pins under /sys/fs/bpf/kray/<node>/ (include/uapi/kray_bpf.h).  It
 * asks krayd only for its node id (to find the directory); every figure comes from the
 * maps, so it costs krayd nothing while it refreshes.
 *
 * CPU % is on-CPU time over the refresh interval (100 = one whole CPU); run-queue wait
 * percentiles come from the log2 histogram since the worker started, so they are upper
 * bounds of a power-of-two bucket.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../common/bpfmap.h"
#include "../include/uapi/kray_bpf.h"
#include "kray_top.h"

#define MAX_ROWS 512

struct row {
	__u32 pid;
	struct kray_worker_stats s;
	struct kray_worker_info wi;
	bool have_info;
	uint64_t run; /* on-CPU ns including the current run */
};

struct maps {
	int workers, winfo, dispatch, sched;
};

static volatile sig_atomic_t stop;

static void on_sigint(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_maps(const char *dir, struct maps *m)
{
	char path[256];
	int *fds[] = { &m->workers, &m->winfo, &m->dispatch, &m->sched };
	const char *names[] = { "workers", "winfo", "dispatch", "sched" };

	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		*fds[i] = kbm_open(path);
		if (*fds[i] < 0) {
			int err = *fds[i];

			while (i--)
				close(*fds[i]);
			return err;
		}
	}
	return 0;
}

static void close_maps(struct maps *m)
{
	close(m->workers);
	close(m->winfo);
	close(m->dispatch);
	close(m->sched);
}

static int by_worker(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	return x->s.worker_id < y->s.worker_id ? -1 : x->s.worker_id > y->s.worker_id;
}

/* Reads every worker's entries into rows (sorted by worker id); returns the count. */
static unsigned read_rows(const struct maps *m, struct row *rows, uint64_t now)
{
	__u32 key, next;
	unsigned n = 0;
	int r = kbm_next(m->workers, NULL, &next);

	while (!r && n < MAX_ROWS) {
		struct row *w = &rows[n];

		key = next;
		memset(w, 0, sizeof(*w));
		w->pid = key;
		if (!kbm_lookup(m->workers, &key, &w->s)) {
			w->have_info = !kbm_lookup(m->winfo, &key, &w->wi);
			w->run = w->s.oncpu_ns;
			if (w->s.oncpu_since && now > w->s.oncpu_since)
				w->run += now - w->s.oncpu_since;
			n++;
		}
		r = kbm_next(m->workers, &key, &next);
	}
	qsort(rows, n, sizeof(*rows), by_worker);
	return n;
}

static const struct row *find_row(const struct row *rows, unsigned n, __u32 pid)
{
	for (unsigned i = 0; i < n; i++)
		if (rows[i].pid == pid)
			return &rows[i];
	return NULL;
}

static void print_us(char *buf, size_t len, uint64_t us)
{
	if (!us)
		snprintf(buf, len, "-");
	else if (us < 10000)
		snprintf(buf, len, "%lluus", (unsigned long long)us);
	else
		snprintf(buf, len, "%llums", (unsigned long long)(us / 1000));
}

static void print_table(const char *dir, const struct maps *m, const struct row *prev,
			unsigned nprev, const struct row *rows, unsigned n, uint64_t dt_ns)
{
	struct kray_hist h = { 0 };
	struct kray_sched_state st = { 0 };
	__u32 zero = 0;
	char p50[16], p99[16];

	kbm_lookup(m->dispatch, &zero, &h);
	kbm_lookup(m->sched, &zero, &st);
	print_us(p50, sizeof(p50), kbm_hist_pct(h.slot, KRAY_BPF_HIST_SLOTS, 500));
	print_us(p99, sizeof(p99), kbm_hist_pct(h.slot, KRAY_BPF_HIST_SLOTS, 990));
	printf("kray top  %s  %u workers\n", dir, n);
	printf("dispatch latency (submit to start): %llu tasks, p50 %s, p99 %s\n",
	       (unsigned long long)h.count, p50, p99);
	printf("scheduler: run-queue wait of busy workers %llu.%llu%% (limit %u%%): %s; "
	       "%llu dispatch rounds queued instead of starting workers\n\n",
	       (unsigned long long)st.wait_permille / 10, (unsigned long long)st.wait_permille % 10,
	       st.threshold_permille / 10,
	       st.oversubscribed ? "OVERSUBSCRIBED, not starting workers" : "ok",
	       (unsigned long long)st.spawns_deferred);
	printf("%6s %8s %-24s %6s %9s %9s %8s %8s %8s\n", "WORKER", "PID", "TASK", "CPU%", "RQ p50",
	       "RQ p99", "VCSW", "IVCSW", "DONE");
	for (unsigned i = 0; i < n; i++) {
		const struct row *w = &rows[i], *o = find_row(prev, nprev, w->pid);
		double cpu = o && dt_ns && w->run >= o->run ?
				     100.0 * (double)(w->run - o->run) / (double)dt_ns :
				     0.0;
		const char *task = w->have_info && w->wi.fn[0] ? w->wi.fn : "-";

		print_us(p50, sizeof(p50), kbm_hist_pct(w->s.rq_hist, KRAY_BPF_HIST_SLOTS, 500));
		print_us(p99, sizeof(p99), kbm_hist_pct(w->s.rq_hist, KRAY_BPF_HIST_SLOTS, 990));
		printf("%6u %8u %-24.*s %6.1f %9s %9s %8llu %8llu %8llu\n", w->s.worker_id, w->pid,
		       KRAY_BPF_FN_LEN, task, cpu, p50, p99, (unsigned long long)w->s.nvcsw,
		       (unsigned long long)w->s.nivcsw,
		       (unsigned long long)(w->have_info ? w->wi.tasks_done : 0));
	}
	fflush(stdout);
}

int kray_top_main(const char *sock, bool once, unsigned interval_ms)
{
	struct kray_config cfg = { .address = sock };
	struct kray_stats st;
	struct maps m;
	char dir[64];
	kray *k;
	int r;
	static struct row a[MAX_ROWS], b[MAX_ROWS];
	struct row *prev = a, *cur = b;
	unsigned nprev, ncur;
	uint64_t t0, t1;

	/* First thing, so that an interrupt while it connects ends it too (a background
	 * job may have inherited SIGINT ignored, which would make it run on for ever). */
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	r = kray_init(&k, &cfg);
	if (r) {
		fprintf(stderr, "kray top: %s\n", kray_init_errmsg());
		return 1;
	}
	r = kray_status(k, &st);
	kray_shutdown(k);
	if (r) {
		fprintf(stderr, "kray top: status: %s\n", strerror(-r));
		return 1;
	}
	snprintf(dir, sizeof(dir), KRAY_BPF_PIN_ROOT "/%08llx", (unsigned long long)st.node);
	r = open_maps(dir, &m);
	if (r) {
		fprintf(stderr,
			"kray top: cannot open the BPF maps in %s: %s\n"
			"  (krayd runs with BPF off: `bpf = off`, KRAY_BPF=off, or no BPF support; "
			"its log says which)\n",
			dir, strerror(-r));
		return 1;
	}
	t0 = mono_ns();
	nprev = read_rows(&m, prev, t0);
	for (;;) {
		struct timespec ts = { interval_ms / 1000, (long)(interval_ms % 1000) * 1000000 };
		struct row *tmp;

		nanosleep(&ts, NULL);
		if (stop)
			break;
		/* Our fds keep the maps alive after krayd exits: its removing them is the sign. */
		if (access(dir, F_OK)) {
			fprintf(stderr, "kray top: %s is gone: krayd stopped\n", dir);
			close_maps(&m);
			return 1;
		}
		t1 = mono_ns();
		ncur = read_rows(&m, cur, t1);
		if (!once)
			printf("\033[H\033[J"); /* home, clear: a live table */
		print_table(dir, &m, prev, nprev, cur, ncur, t1 - t0);
		if (once || stop)
			break;
		tmp = prev;
		prev = cur;
		cur = tmp;
		nprev = ncur;
		t0 = t1;
	}
	close_maps(&m);
	return 0;
}
