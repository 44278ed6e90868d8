// SPDX-License-Identifier: Apache-2.0
/*
 * Loads the scheduler-metrics programs (bpf/sched_metrics.bpf.c) into krayd and keeps
 * their maps pinned, with BTF, under /sys/fs/bpf/kray/<node>/ so that bpftool and
 * `kray top` can read them.  The node id is random per krayd start, so krayds on one
 * machine get distinct directories; the directory is removed at clean shutdown.
 *
 * BPF is an optimisation and a view, never a requirement: any failure here (no bpffs,
 * no CAP_BPF, a kernel without BTF) is logged once and krayd runs without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../common/bpfmap.h"
#include "../../include/uapi/kray_bpf.h"
#include "bpf/bpf.h"
#include "bpf/bpf_priv.h"
#include "core/krayd.h"
#include "core/worker.h"
#include "core/task.h"
#include "core/conn.h"
#include "core/log.h"
#include "sched_metrics.skel.h"

#define SUBMITS_LEN (KRAY_BPF_MAX_WORKERS * sizeof(__u64)) /* whole pages */

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/* libbpf's own messages go to the debug log: a failed load is summarised once by us. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];

	if (level == LIBBPF_DEBUG || log_level < LOG_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	log_debug("libbpf: %s", line);
	return 0;
}

/*
 * bpffs must be mounted at /sys/fs/bpf for pinning.  Systemd mounts it; a bare VM may not
 * have: mount it then, as bpftool does.  The check and the mount run under a lock so that
 * two krayds starting together do not stack two mounts (the second would hide the first
 * one's pins).
 */
static int ensure_bpffs(void)
{
	struct statfs st;
	int lock, r = 0;

	if (!statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	lock = open("/sys/fs/bpf", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock < 0)
		return -errno;
	flock(lock, LOCK_EX);
	if (statfs("/sys/fs/bpf", &st) || st.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
			r = -errno;
		else
			log_info("bpf: mounted bpffs at /sys/fs/bpf");
	}
	flock(lock, LOCK_UN);
	close(lock);
	return r;
}

const char *kbpf_why_off(int err)
{
	switch (err) {
	case -EPERM:
		return "no privileges for BPF (needs root or CAP_BPF+CAP_PERFMON)";
	case -EACCES: /* what a program load returns when the verifier refuses it */
		return "the kernel refused the programs (no privileges, or the verifier: "
		       "--log-level debug shows its log)";
	case -ETIMEDOUT: /* kbm_lock() */
		return "another process held " KRAY_BPF_PIN_ROOT "'s lock for over 5 s (a stopped "
		       "krayd?)";
	case -ENOSYS:
	case -EOPNOTSUPP:
	case -EINVAL:
		return "the kernel does not support the programs (BPF, BTF tracepoints)";
	default:
		return strerror(-err);
	}
}

int kbpf_dir_lock(const struct krayd *d, char *dir, size_t len, bool first)
{
	int r, lock, swept;

	snprintf(dir, len, KRAY_BPF_PIN_ROOT "/%08x", d->node);
	r = ensure_bpffs();
	if (r)
		return r;
	if (mkdir(KRAY_BPF_PIN_ROOT, 0700) && errno != EEXIST)
		return -errno;
	lock = kbm_lock(KRAY_BPF_PIN_ROOT);
	if (lock < 0)
		return lock;
	if (first) {
		swept = kbm_sweep(KRAY_BPF_PIN_ROOT);
		if (swept > 0)
			log_info("bpf: removed %d pin director%s left by krayds that are gone",
				 swept, swept == 1 ? "y" : "ies");
	}
	/* The first time exclusive: a leftover directory is another krayd's, not ours.  Later
	 * it is ours, or it was swept while empty and is made again. */
	if (mkdir(dir, 0700) && (first || errno != EEXIST)) {
		r = -errno;
		close(lock);
		return r;
	}
	return lock;
}

/*
 * Opens and loads the programs, pinning nothing: libbpf parses the kernel's BTF for the
 * BTF tracepoints here (most of the 0.1 s), which is why it may run on a thread.  The maps
 * that ask to be pinned are noted for attach().
 */
static int load(struct kbpf *b)
{
	struct sched_metrics *skel = sched_metrics__open();
	struct bpf_map *map;
	int r;

	if (!skel)
		return -errno;
	bpf_object__for_each_map(map, skel->obj)
	{
		if (!bpf_map__pin_path(map))
			continue;
		if (b->npins < KBPF_PINS_MAX)
			b->pins[b->npins++] = map;
		bpf_map__set_pin_path(map, NULL);
	}
	r = sched_metrics__load(skel);
	if (r) {
		sched_metrics__destroy(skel);
		return r;
	}
	b->skel = skel;
	return 0;
}

/* On the loop: pins the maps in the node's directory, attaches the programs and maps
 * `submits`.  Returns 0 or -errno (the caller destroys the programs). */
static int attach(struct krayd *d, struct kbpf *b)
{
	struct kray_sched_state st = { .threshold_permille = (uint32_t)d->cfg.oversub_wait * 10 };
	char path[128];
	__u32 zero = 0;
	int r = 0, lock = kbpf_dir_lock(d, b->dir, sizeof(b->dir), false);

	if (lock < 0)
		return lock;
	for (unsigned i = 0; !r && i < b->npins; i++) {
		snprintf(path, sizeof(path), "%s/%s", b->dir, bpf_map__name(b->pins[i]));
		r = bpf_map__pin(b->pins[i], path);
	}
	if (!r)
		r = sched_metrics__attach(b->skel);
	close(lock);
	if (r)
		return r;
	b->workers_fd = bpf_map__fd(b->skel->maps.workers);
	b->winfo_fd = bpf_map__fd(b->skel->maps.winfo);
	b->sched_fd = bpf_map__fd(b->skel->maps.sched);
	b->dispatch_fd = bpf_map__fd(b->skel->maps.dispatch);
	b->submits = mmap(NULL, SUBMITS_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
			  bpf_map__fd(b->skel->maps.submits), 0);
	if (b->submits == MAP_FAILED) {
		b->submits = NULL;
		return -errno;
	}
	bpf_map_update_elem(b->sched_fd, &zero, &st, BPF_ANY);
	return 0;
}

static void destroy(struct kbpf *b)
{
	if (b->submits)
		munmap(b->submits, SUBMITS_LEN);
	if (b->skel) {
		bpf_object__unpin_maps(b->skel->obj, NULL);
		sched_metrics__destroy(b->skel);
	}
	free(b);
}

/* Attaches what load() made (or says why not); from then on d->bpf is set, and the
 * workers started meanwhile are accounted. */
static void finish(struct krayd *d, struct kbpf *b, int r)
{
	if (!r)
		r = attach(d, b);
	if (r) {
		log_warn("bpf: off: %s (%s); no scheduler metrics", kbpf_why_off(r), b->dir);
		rmdir(b->dir); /* (not empty when the fast path is on) */
		destroy(b);
		return;
	}
	d->bpf = b;
	for (struct worker *w = d->workers; w; w = w->next)
		if (w->pid > 0 && !w->bpf_in)
			kbpf_worker_add(d, w);
	log_info("bpf: scheduler metrics on (loaded in %lld ms), maps pinned in %s",
		 (long long)((now_ns() - b->load_ns) / 1000000), b->dir);
}

static void *load_thread(void *arg)
{
	struct kbpf *b = arg;
	uint64_t one = 1;

	/* Parsing the kernel's BTF takes 70-140 ms of CPU: let it use what krayd and its
	 * workers leave, so that a short program's own work goes first (Linux's nice is per
	 * thread).  Failing to lower it is harmless. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	b->err = load(b);
	__atomic_store_n(&b->loaded, true, __ATOMIC_RELEASE);
	if (write(b->efd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd below its limit takes it */
	return NULL;
}

static void loaded(void *arg, unsigned ev)
{
	struct krayd *d = arg;
	struct kbpf *b = d->bpf_loading;

	(void)ev;
	if (!__atomic_load_n(&b->loaded, __ATOMIC_ACQUIRE))
		return; /* (a spurious wake-up) */
	loop_watch_free(b->watch);
	pthread_join(b->loader, NULL);
	close(b->efd);
	d->bpf_loading = NULL;
	finish(d, b, b->err);
}

int kbpf_start(struct krayd *d, const char *dir)
{
	struct kbpf *b;
	int r;

	libbpf_set_print(libbpf_log);
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	snprintf(b->dir, sizeof(b->dir), "%s", dir);
	b->efd = -1;
	b->load_ns = now_ns();
	if (d->cfg.bpf_wait) {
		finish(d, b, load(b));
		return 0;
	}
	/* Serve first: the loop attaches the programs when the thread has loaded them. */
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0 || !(b->watch = loop_watch_new(d, b->efd, loaded, d))) {
		r = b->efd < 0 ? -errno : -ENOMEM;
		goto err;
	}
	r = -pthread_create(&b->loader, NULL, load_thread, b);
	if (r) {
		loop_watch_free(b->watch);
		goto err;
	}
	d->bpf_loading = b;
	loop_watch_set(b->watch, POLLIN);
	return 0;
err:
	if (b->efd >= 0)
		close(b->efd);
	log_warn("bpf: off: %s; no scheduler metrics", strerror(-r));
	free(b);
	return 0;
}

/* A krayd that stops while its programs load does not wait for them: the thread pins and
 * attaches nothing, so exiting leaves nothing behind.  Kept reachable for LeakSanitizer. */
static struct kbpf *volatile abandoned; /* (volatile: a store never read is elided) */

void kbpf_stop(struct krayd *d)
{
	struct kbpf *b = d->bpf_loading;

	if (b) {
		d->bpf_loading = NULL;
		loop_watch_free(b->watch);
		if (__atomic_load_n(&b->loaded, __ATOMIC_ACQUIRE)) {
			pthread_join(b->loader, NULL);
			close(b->efd);
			destroy(b);
		} else {
			pthread_detach(b->loader);
			abandoned = b; /* its eventfd stays open for the thread's write */
			log_info("bpf: stopping while the programs load: not waiting for them");
		}
	}
	b = d->bpf;
	if (!b)
		return;
	d->bpf = NULL;
	destroy(b);
}

void kbpf_dir_remove(const struct krayd *d)
{
	char dir[64];

	snprintf(dir, sizeof(dir), KRAY_BPF_PIN_ROOT "/%08x", d->node);
	if (rmdir(dir) && errno != ENOENT)
		log_warn("bpf: rmdir %s: %s", dir, strerror(errno));
}

/* Writes w's winfo entry (what it runs, tasks done): a system call, so it is done at most
 * every KBPF_INFO_NS for busy workers (kbpf_flush_info), never on a task's path. */
static void put_info(struct kbpf *b, struct worker *w)
{
	struct kray_worker_info wi = { .worker_id = w->id,
				       .busy = w->inflight,
				       .tasks_done = w->tasks_done };
	__u32 pid = (__u32)w->pid;

	if (w->head)
		memcpy(wi.fn, w->head->fn->name,
		       w->head->fn->name_len < KRAY_BPF_FN_LEN - 1 ? w->head->fn->name_len :
								     KRAY_BPF_FN_LEN - 1);
	bpf_map_update_elem(b->winfo_fd, &pid, &wi, BPF_ANY);
	w->bpf_dirty = false;
}

void kbpf_flush_info(struct krayd *d, int64_t now)
{
	struct kbpf *b = d->bpf;

	if (!b || !b->ndirty || now - b->info_ns < KBPF_INFO_NS)
		return;
	for (struct worker *w = d->workers; w; w = w->next)
		if (w->bpf_dirty)
			put_info(b, w);
	b->ndirty = 0;
	b->info_ns = now;
}

static void mark_dirty(struct kbpf *b, struct worker *w)
{
	if (!w->bpf_dirty) {
		w->bpf_dirty = true;
		b->ndirty++;
	}
}

void kbpf_worker_add(struct krayd *d, struct worker *w)
{
	struct kbpf *b = d->bpf;
	struct kray_worker_stats s = { .worker_id = w->id };
	__u32 pid = (__u32)w->pid;
	unsigned slot;

	if (!b)
		return;
	for (slot = 0; slot < KRAY_BPF_MAX_WORKERS && b->slot_used[slot]; slot++)
		;
	if (slot == KRAY_BPF_MAX_WORKERS) {
		log_warn_ratelimited("bpf: worker %u not accounted: %u workers are", w->id,
				     KRAY_BPF_MAX_WORKERS);
		return;
	}
	s.slot = slot;
	/* On a CPU from now, as far as the programs know: a worker added while it runs (just
	 * started, say) would otherwise count nothing until it next got a CPU.  If it is in
	 * fact asleep, its next switch-in restarts the clock (one run-queue wait goes
	 * uncounted).  bpf_ktime_get_ns() is CLOCK_MONOTONIC. */
	s.oncpu_since = (uint64_t)now_ns();
	__atomic_store_n(&b->submits[slot], 0, __ATOMIC_RELAXED);
	if (bpf_map_update_elem(b->workers_fd, &pid, &s, BPF_ANY)) {
		log_warn_ratelimited("bpf: worker %u not accounted: %s", w->id, strerror(errno));
		return;
	}
	b->slot_used[slot] = true;
	w->bpf_slot = slot;
	w->bpf_in = true;
	put_info(b, w);
}

void kbpf_worker_del(struct krayd *d, struct worker *w)
{
	struct kbpf *b = d->bpf;
	__u32 pid = (__u32)w->pid;

	if (!b || !w->bpf_in)
		return;
	bpf_map_delete_elem(b->workers_fd, &pid);
	bpf_map_delete_elem(b->winfo_fd, &pid);
	__atomic_store_n(&b->submits[w->bpf_slot], 0, __ATOMIC_RELAXED);
	b->slot_used[w->bpf_slot] = false;
	if (w->bpf_dirty)
		b->ndirty--;
	w->bpf_in = w->bpf_dirty = false;
}

void kbpf_worker_busy(struct krayd *d, struct worker *w, const struct task *t)
{
	struct kbpf *b = d->bpf;

	if (!b || !w->bpf_in)
		return;
	/* A store into the shared mapping, before the EXEC is sent: the worker cannot get
	 * a CPU for this task before the program can see it. */
	if (t->submit_ns > 0)
		__atomic_store_n(&b->submits[w->bpf_slot], (uint64_t)t->submit_ns,
				 __ATOMIC_RELEASE);
	mark_dirty(b, w);
}

void kbpf_worker_done(struct krayd *d, struct worker *w)
{
	kbpf_worker_done_n(d, w, 1);
}

void kbpf_worker_done_n(struct krayd *d, struct worker *w, uint32_t n)
{
	w->tasks_done += n;
	if (d->bpf && w->bpf_in)
		mark_dirty(d->bpf, w);
}
