// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF scheduler metrics end to end (issue 5; docs/observability.md): krayd's maps are
 * pinned per instance with BTF and removed at shutdown, a worker burning 200 ms of CPU is
 * counted as 200 ms, dispatch latency is sampled, an oversubscribed machine shows
 * run-queue wait and makes krayd queue instead of starting workers, `kray top` shows the
 * table, and without BPF (by flag or for lack of privileges) krayd says so once and runs
 * tasks all the same.  Maps are read with the bpf(2) system call (common/bpfmap.h).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <time.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../../common/bpfmap.h"
#include "../../include/uapi/kray_bpf.h"
#include "harness.h"

TestSuite(bpf, .fini = harness_cleanup, .timeout = 60);

static const char *const map_names[] = { "workers", "winfo", "submits", "dispatch", "sched" };

static void sleep_ms(int ms);

/* Skips the test where krayd cannot run BPF programs: not root, or a kernel without BTF
 * (krayd then runs without them, as the off_* tests check). */
static void require_bpf(void)
{
	if (geteuid() != 0)
		cr_skip_test("BPF needs root (CAP_BPF and CAP_PERFMON): not root here");
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		cr_skip_test("the kernel has no BTF (/sys/kernel/btf/vmlinux): no tp_btf programs");
}

static void pin_dir(kray *k, char *buf, size_t len)
{
	struct kray_stats st = harness_status(k);

	snprintf(buf, len, KRAY_BPF_PIN_ROOT "/%08llx", (unsigned long long)st.node);
}

static int open_map(const char *dir, const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = kbm_open(path);
	cr_assert_geq(fd, 0, "open pinned map %s: %s (is krayd running with BPF?)", path,
		      strerror(-fd));
	return fd;
}

static struct kray_worker_stats worker_stats(const char *dir, int pid)
{
	struct kray_worker_stats s;
	int fd = open_map(dir, "workers");
	__u32 key = (__u32)pid;
	int r = kbm_lookup(fd, &key, &s);

	close(fd);
	cr_assert_eq(r, 0, "worker pid %d is not in %s/workers: %s", pid, dir, strerror(-r));
	return s;
}

/* utime + stime of a process, in ns (clock ticks of /proc/<pid>/stat). */
static int64_t proc_cpu_ns(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	cr_assert_not_null(p);
	p = strrchr(buf, ')');
	cr_assert_not_null(p);
	/* after ") ": state(3) ppid ... utime is field 14, stime 15 */
	cr_assert_eq(
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st),
		2);
	return (int64_t)(ut + st) * (1000000000 / sysconf(_SC_CLK_TCK));
}

static bool dir_exists(const char *dir)
{
	struct stat st;

	return !stat(dir, &st);
}

static int64_t call_int(kray *k, const char *fn, int64_t arg)
{
	kray_value a = KRAY_V_INT(arg), v;
	kray_ref r = harness_call1(k, fn, &a, 1);
	int rc = harness_get1(k, r, 30000, &v);

	cr_assert_eq(rc, 0, "get %s(%lld): %d %s", fn, (long long)arg, rc, kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_INT64, "%s returned type %d", fn, v.type);
	kray_release(k, &r, 1);
	return v.i;
}

/* ---- pinning ------------------------------------------------------------------------- */

/* Every map is pinned in the krayd's own directory, carries BTF (named fields in bpftool),
 * and the directory goes away when krayd stops. */
Test(bpf, maps_pinned_with_btf_and_removed)
{
	struct harness h;
	char dir[128], cmd[300], out[8192];
	kray *k;
	FILE *p;
	size_t n;

	require_bpf();

	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	k = harness_connect(h.sock);
	pin_dir(k, dir, sizeof(dir));
	cr_assert(dir_exists(dir), "%s does not exist: krayd did not pin its maps", dir);
	for (size_t i = 0; i < sizeof(map_names) / sizeof(map_names[0]); i++) {
		struct bpf_map_info info;
		int fd = open_map(dir, map_names[i]);

		cr_assert_eq(kbm_info(fd, &info), 0);
		cr_assert_neq(info.btf_id, 0, "map %s has no BTF", map_names[i]);
		cr_assert_neq(info.btf_value_type_id, 0, "map %s value has no BTF type",
			      map_names[i]);
		close(fd);
	}
	snprintf(cmd, sizeof(cmd), "bpftool map dump pinned %s/workers 2>&1", dir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	if (pclose(p) != 0 && strstr(out, "not found"))
		cr_skip_test("bpftool is not installed (package bpftool)");
	cr_assert(strstr(out, "\"oncpu_ns\"") && strstr(out, "\"rq_hist\"") &&
			  strstr(out, "\"nivcsw\""),
		  "bpftool does not print named fields:\n%s", out);

	harness_shutdown(k);
	harness_stop_krayd(&h);
	cr_assert(!dir_exists(dir), "%s is still there after krayd stopped", dir);
}

/* Two krayds at once: two directories, neither disturbs the other. */
Test(bpf, two_krayds_two_dirs)
{
	struct harness a, b;
	char da[128], db[128];
	kray *ka, *kb;

	require_bpf();

	cr_assert_eq(harness_start_krayd(&a, 1), 0);
	cr_assert_eq(harness_start_krayd(&b, 1), 0);
	ka = harness_connect(a.sock);
	kb = harness_connect(b.sock);
	pin_dir(ka, da, sizeof(da));
	pin_dir(kb, db, sizeof(db));
	cr_assert_str_neq(da, db);
	cr_assert(dir_exists(da) && dir_exists(db));
	harness_shutdown(ka);
	harness_stop_krayd(&a);
	cr_assert(!dir_exists(da));
	cr_assert(dir_exists(db), "stopping one krayd removed the other's maps");
	harness_expect_int(kb, "square", &KRAY_V_INT(7), 1, 49);
}

/*
 * A SIGKILLed krayd cannot unpin its maps.  Its programs go with it, which is how the
 * next krayd (at start) and the tests (harness_sweep_bpf) tell its directory from a live
 * krayd's: the dead one's is removed, the live one's stays.
 */
Test(bpf, killed_krayds_pins_are_swept)
{
	struct harness dead, live;
	char dd[128], dl[128];
	kray *kd, *kl;
	int status;

	require_bpf();

	cr_assert_eq(harness_start_krayd(&dead, 1), 0);
	cr_assert_eq(harness_start_krayd(&live, 1), 0);
	kd = harness_connect(dead.sock);
	kl = harness_connect(live.sock);
	pin_dir(kd, dd, sizeof(dd));
	pin_dir(kl, dl, sizeof(dl));
	harness_shutdown(kd);
	cr_assert_eq(kill(dead.pid, SIGKILL), 0);
	status = harness_stop_krayd(&dead); /* reaps it, removes its temp dir */
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	cr_assert(dir_exists(dd), "%s went with its krayd: nothing to sweep", dd);

	/* the programs are released asynchronously after the process is gone */
	for (int i = 0; i < 100 && dir_exists(dd); i++) {
		harness_sweep_bpf();
		if (dir_exists(dd))
			sleep_ms(20);
	}
	cr_assert(!dir_exists(dd), "%s of the SIGKILLed krayd is still pinned after sweeps", dd);
	cr_assert(dir_exists(dl), "the sweep removed the live krayd's %s", dl);
	harness_expect_int(kl, "square", &KRAY_V_INT(6), 1, 36);
}

/* ---- loaded in the background (bpf-wait off: krayd's default) ------------------------- */

static bool map_pinned(const char *dir, const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = kbm_open(path);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* krayd serves while its metrics programs load; when they are loaded it pins and attaches
 * them, and accounts the workers it started meanwhile. */
Test(bpf, metrics_attach_after_serving)
{
	const char *opts[] = { "--bpf-wait", "off", "--prestart", "1", NULL };
	struct kray_worker_stats s;
	struct harness h;
	char dir[128], path[256];
	int64_t pid;
	kray *k;
	int fd, r = -1;

	require_bpf();

	cr_assert_eq(harness_start_krayd_opts(&h, 1, opts), 0);
	k = harness_connect(h.sock);
	pid = call_int(k, "burn_cpu_ms", 0); /* served whether or not they are loaded */
	pin_dir(k, dir, sizeof(dir));
	for (int i = 0; i < 500 && !map_pinned(dir, "workers"); i++)
		sleep_ms(20);
	for (size_t i = 0; i < sizeof(map_names) / sizeof(map_names[0]); i++)
		cr_assert(map_pinned(dir, map_names[i]), "%s/%s is not pinned after 10 s", dir,
			  map_names[i]);
	/* The prestarted worker, started before the programs were attached, is in the map. */
	snprintf(path, sizeof(path), "%s/workers", dir);
	fd = kbm_open(path);
	cr_assert_geq(fd, 0);
	for (int i = 0; i < 100 && r; i++) {
		__u32 key = (__u32)pid;

		r = kbm_lookup(fd, &key, &s);
		if (r)
			sleep_ms(20);
	}
	close(fd);
	cr_assert_eq(r, 0, "worker %lld started before the programs loaded is not accounted",
		     (long long)pid);
	cr_assert_eq(call_int(k, "burn_cpu_ms", 0), pid);
	harness_shutdown(k);
	harness_stop_krayd(&h);
	cr_assert(!dir_exists(dir), "%s is still there after krayd stopped", dir);
}

/* A krayd stopped while its programs load (a short script's private krayd) exits at once
 * and cleanly, and leaves no pins behind: the loading thread pins nothing. */
Test(bpf, stopped_while_loading_leaves_nothing)
{
	const char *opts[] = { "--bpf-wait", "off", NULL };

	require_bpf();

	for (int round = 0; round < 3; round++) {
		struct harness h;
		char dir[128];
		kray *k;
		int status;

		cr_assert_eq(harness_start_krayd_opts(&h, 1, opts), 0);
		k = harness_connect(h.sock);
		pin_dir(k, dir, sizeof(dir));
		harness_shutdown(k);
		status = harness_stop_krayd(&h);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "krayd stopped while loading: status %#x", status);
		cr_assert(!dir_exists(dir), "%s is left behind", dir);
	}
}

/* ---- the figures --------------------------------------------------------------------- */

/* A task that burns 200 ms of CPU adds about 200 ms to its worker's on-CPU time, as the
 * kernel's own accounting (/proc/<pid>/stat) does. */
Test(bpf, burn_200ms_counts_200ms)
{
	struct harness h;
	const char *opts[] = { "--prestart", "1", NULL };
	struct kray_worker_stats s0, s1;
	char dir[128];
	int64_t pid, pid2, p0, p1, bpf_ms, proc_ms;

	/* krayd's dispatch latency is of the tasks krayd sends: synchronous calls would take
	 * the fast path, past it (docs/fastpath.md). */
	setenv("KRAY_FASTPATH", "off", 1);
	kray *k;

	require_bpf();

	cr_assert_eq(harness_start_krayd_opts(&h, 1, opts), 0);
	k = harness_connect(h.sock);
	pin_dir(k, dir, sizeof(dir));
	pid = call_int(k, "burn_cpu_ms", 0); /* warm: library loaded, worker idle after */
	/* A worker still busy starting (or not yet asleep) when its task comes gets no CPU
	 * to read it, so that task gives no dispatch sample: let it fall asleep. */
	sleep_ms(50);
	s0 = worker_stats(dir, (int)pid);
	p0 = proc_cpu_ns((int)pid);
	pid2 = call_int(k, "burn_cpu_ms", 200);
	cr_assert_eq(pid2, pid, "the second task ran in another worker (%lld, %lld)",
		     (long long)pid, (long long)pid2);
	/* On-CPU time is added when the worker leaves the CPU, which may come after its
	 * result reached us: read once it has stopped changing (the worker waits). */
	s1 = worker_stats(dir, (int)pid);
	for (int i = 0; i < 50; i++) {
		struct kray_worker_stats again;

		sleep_ms(20);
		again = worker_stats(dir, (int)pid);
		if (again.oncpu_ns == s1.oncpu_ns)
			break;
		s1 = again;
	}
	p1 = proc_cpu_ns((int)pid);
	bpf_ms = (int64_t)(s1.oncpu_ns - s0.oncpu_ns) / 1000000;
	proc_ms = (p1 - p0) / 1000000;
	cr_log_info("burn 200 ms: BPF counts %lld ms on CPU, /proc %lld ms", (long long)bpf_ms,
		    (long long)proc_ms);
	/* A wakeup racing a switch may lose one segment (bpf/sched_metrics.bpf.c): 15% slack. */
	cr_assert(bpf_ms >= 170 && bpf_ms <= 280, "BPF counted %lld ms for a 200 ms burn",
		  (long long)bpf_ms);
	cr_assert(llabs(bpf_ms - proc_ms) <= 30, "BPF %lld ms vs /proc %lld ms", (long long)bpf_ms,
		  (long long)proc_ms);
	/* It left its CPU to wait for its first task at least (voluntary, or involuntary when
	 * the task arrived before the switch completed): some switch is counted. */
	cr_assert_gt(s1.nvcsw + s1.nivcsw, 0, "no switch counted at all");
	cr_assert_eq(s1.worker_id, 1);

	/* The run-queue histogram holds every wait it counted. */
	uint64_t sum = 0;

	for (int i = 0; i < KRAY_BPF_HIST_SLOTS; i++)
		sum += s1.rq_hist[i];
	cr_assert_eq(sum, s1.rq_waits);

	/* One more task for a worker asleep waiting for it.  The burn and this one went to an
	 * idle, sleeping worker: two dispatch-latency samples at least (the warm-up's may be
	 * lost, above). */
	sleep_ms(50);
	cr_assert_eq(call_int(k, "burn_cpu_ms", 0), pid);
	struct kray_hist hist;
	__u32 zero = 0;
	int fd = open_map(dir, "dispatch");

	cr_assert_eq(kbm_lookup(fd, &zero, &hist), 0);
	close(fd);
	cr_assert_geq(hist.count, 2, "dispatch latency samples: %llu",
		      (unsigned long long)hist.count);
	cr_assert_gt(hist.sum_ns, 0);
	cr_assert_lt(hist.sum_ns / hist.count, 1000000000ull, "mean dispatch latency over 1 s");

	/* And the worker's info (refreshed every 100 ms): tasks done, idle now. */
	struct kray_worker_info wi;
	__u32 key = (__u32)pid;

	fd = open_map(dir, "winfo");
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(kbm_lookup(fd, &key, &wi), 0);
		if (wi.tasks_done == 2 && !wi.busy)
			break;
		sleep_ms(20);
	}
	close(fd);
	cr_assert_eq(wi.tasks_done, 2, "winfo says %llu tasks done",
		     (unsigned long long)wi.tasks_done);
	cr_assert_eq(wi.busy, 0);
	cr_assert_eq(wi.fn[0], 0, "an idle worker shows '%.48s'", wi.fn);
	cr_assert_eq(wi.worker_id, 1);
}

/* ---- the scheduling decision --------------------------------------------------------- */

/* Two CPU hogs per online CPU (at most MAX_HOGS), so that kray's workers wait for a CPU
 * whatever the machine's size.  Returns how many were started. */
#define MAX_HOGS 64

static int hog_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) * 2;

	return n < 4 ? 4 : n > MAX_HOGS ? MAX_HOGS : (int)n;
}

/* CPU hogs outside kray, dying with the test process whatever happens to it. */
static void start_hogs(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (!pids[i]) {
			volatile unsigned long x = 0;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				x++;
		}
	}
}

static void stop_hogs(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * 8 CPU slots, and two hogs per CPU outside kray: the busy workers wait for a CPU most
 * of the time.  With the decision on (oversubscribed-wait
 * 25%), krayd queues new tasks instead of starting workers; with it off it starts a
 * worker per task.  Both runs finish every task with the right result.
 */
static void oversubscribed_run(const char *limit, bool expect_deferred)
{
	enum { LONG = 2, SHORT = 4 };
	const int HOGS = hog_count();
	const char *opts[] = { "--prestart", "0", "--oversubscribed-wait", limit, NULL };
	struct harness h;
	pid_t hogs[MAX_HOGS];
	kray_ref refs[LONG + SHORT];
	char dir[128];
	kray *k;
	struct kray_stats st;

	require_bpf();

	cr_assert_eq(harness_start_krayd_opts(&h, 8, opts), 0);
	k = harness_connect(h.sock);
	pin_dir(k, dir, sizeof(dir));
	start_hogs(hogs, HOGS);
	for (int i = 0; i < LONG; i++)
		refs[i] = harness_call1(k, "spin_wall_ms", &KRAY_V_INT(3000), 1);
	for (int i = 0; i < 100; i++) {
		st = harness_status(k);
		if (st.workers_busy == LONG)
			break;
		sleep_ms(20);
	}
	cr_assert_eq(st.workers_busy, LONG, "the long tasks did not start");
	sleep_ms(500); /* a few sample windows of contended running */
	for (int i = 0; i < SHORT; i++)
		refs[LONG + i] = harness_call1(k, "spin_wall_ms", &KRAY_V_INT(100), 1);
	cr_assert_eq(kray_flush(k), 0);
	sleep_ms(400);
	st = harness_status(k);

	struct kray_sched_state ss;
	__u32 zero = 0;
	int fd = open_map(dir, "sched");

	cr_assert_eq(kbm_lookup(fd, &zero, &ss), 0);
	close(fd);
	cr_log_info("oversubscribed-wait %s: %llu workers, run-queue wait %llu permille, "
		    "oversubscribed %u, %llu rounds deferred",
		    limit, (unsigned long long)st.workers, (unsigned long long)ss.wait_permille,
		    ss.oversubscribed, (unsigned long long)ss.spawns_deferred);
	cr_assert_geq(ss.wait_permille, 250,
		      "%d hogs and 2 spinning workers on this machine, yet the workers waited "
		      "only %llu permille of the time for a CPU",
		      HOGS, (unsigned long long)ss.wait_permille);
	{
		/* The run-queue wait shows in the workers' own entries too. */
		uint64_t wait = 0;
		__u32 key, next;
		struct kray_worker_stats s;
		int wfd = open_map(dir, "workers");
		int r = kbm_next(wfd, NULL, &next);

		while (!r) {
			key = next;
			if (!kbm_lookup(wfd, &key, &s))
				wait += s.rq_wait_ns;
			r = kbm_next(wfd, &key, &next);
		}
		close(wfd);
		cr_assert_gt(wait, 100000000ull, "workers waited only %llu ns in all",
			     (unsigned long long)wait);
	}
	if (expect_deferred) {
		cr_assert_eq(ss.oversubscribed, 1);
		cr_assert_gt(ss.spawns_deferred, 0);
		cr_assert_eq(st.workers, LONG, "krayd started workers on oversubscribed CPUs");
		cr_assert_eq(st.tasks_queued, SHORT);
	} else {
		cr_assert_eq(ss.spawns_deferred, 0);
		cr_assert_eq(st.workers, LONG + SHORT, "krayd did not start a worker per task");
	}
	stop_hogs(hogs, HOGS);
	for (int i = 0; i < LONG + SHORT; i++) {
		kray_value v;

		cr_assert_eq(harness_get1(k, refs[i], 30000, &v), 0, "task %d: %s", i,
			     kray_errmsg(k));
		cr_assert_eq(v.type, KRAY_INT64);
		cr_assert_gt(v.i, 0, "task %d returned pid %lld", i, (long long)v.i);
	}
	kray_release(k, refs, LONG + SHORT);
}

Test(bpf, oversubscribed_cpus_queue_instead_of_starting_workers)
{
	oversubscribed_run("25", true);
}

Test(bpf, decision_off_starts_workers)
{
	oversubscribed_run("0", false);
}

/* ---- kray top ------------------------------------------------------------------------ */

Test(bpf, top_once_shows_the_running_task)
{
	struct harness h;
	const char *opts[] = { "--prestart", "1", NULL };
	const char *bin = getenv("KRAY_BIN");
	char cmd[512], out[8192];
	kray_ref r;
	kray_value v;
	kray *k;
	FILE *p;
	size_t n;

	require_bpf();

	cr_assert_not_null(bin, "KRAY_BIN is not set (run through make)");
	cr_assert_eq(harness_start_krayd_opts(&h, 1, opts), 0);
	k = harness_connect(h.sock);
	r = harness_call1(k, "spin_wall_ms", &KRAY_V_INT(3000), 1);
	cr_assert_eq(kray_flush(k), 0);
	/* The worker is spinning before kray top samples (a loaded machine, or ASan, may take
	 * longer than a fixed pause to start it). */
	for (int i = 0; i < 1000 && harness_status(k).workers_busy < 1; i++)
		sleep_ms(10);
	sleep_ms(100);
	snprintf(cmd, sizeof(cmd), "%s/kray top --socket %s --once --interval 300 2>&1", bin,
		 h.sock);
	unsigned id, pid;
	char task[64];
	double cpu = 0;

	/* Any share: on a loaded machine (ASan, other tests) a spinning worker may get none
	 * of a CPU for 300 ms; it is sampled again then, while it still spins. */
	for (int tries = 0; tries < 3 && cpu <= 1.0; tries++) {
		char *line;

		p = popen(cmd, "r");
		cr_assert_not_null(p);
		n = fread(out, 1, sizeof(out) - 1, p);
		out[n] = 0;
		cr_assert_eq(pclose(p), 0, "kray top failed:\n%s", out);
		cr_log_info("kray top --once:\n%s", out);
		/* The worker's row: id 1, the task it runs, and some CPU. */
		line = strstr(out, "spin_wall_ms");
		cr_assert_not_null(line, "no row shows the running task:\n%s", out);
		while (line > out && line[-1] != '\n')
			line--;
		cr_assert_eq(sscanf(line, "%u %u %63s %lf", &id, &pid, task, &cpu), 4,
			     "row: %.100s", line);
		cr_assert_eq(id, 1);
	}
	cr_assert_gt(cpu, 1.0, "a spinning worker shows %.1f%% CPU", cpu);
	cr_assert(strstr(out, "RQ p99") && strstr(out, "dispatch latency"), "%s", out);
	cr_assert_eq(harness_get1(k, r, 30000, &v), 0);
	cr_assert_eq(v.i, (int64_t)pid, "the row's pid is not the worker's");
	kray_release(k, &r, 1);
}

Test(bpf, top_without_bpf_says_why)
{
	struct harness h;
	const char *opts[] = { "--bpf", "off", NULL };
	const char *bin = getenv("KRAY_BIN");
	char cmd[512], out[4096];
	FILE *p;
	size_t n;

	cr_assert_not_null(bin);
	cr_assert_eq(harness_start_krayd_opts(&h, 1, opts), 0);
	snprintf(cmd, sizeof(cmd), "%s/kray top --socket %s --once 2>&1", bin, h.sock);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	cr_assert_neq(pclose(p), 0, "kray top succeeded without maps:\n%s", out);
	cr_assert(strstr(out, "BPF off"), "kray top does not say why:\n%s", out);
}

/* ---- without BPF --------------------------------------------------------------------- */

/* Starts a krayd whose stderr goes to <dir>/log (returned in log). */
static void start_logged(struct harness *h, const char *const *opts, char *log, size_t len)
{
	char dir[128];
	int fd, saved;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(log, len, "%s/log", dir);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	saved = dup(2);
	dup2(fd, 2);
	close(fd);
	int r = harness_start_krayd_opts(h, 1, opts);

	dup2(saved, 2);
	close(saved);
	cr_assert_eq(r, 0, "krayd did not start (log %s)", log);
}

static unsigned count_lines(const char *path, const char *needle)
{
	char line[1024];
	unsigned n = 0;
	FILE *f = fopen(path, "re");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void expect_daemon_path(struct harness *h, const char *log, const char *why)
{
	char dir[128];
	kray *k = harness_connect(h->sock);

	pin_dir(k, dir, sizeof(dir));
	cr_assert(!dir_exists(dir), "%s exists although BPF is off", dir);
	for (int i = 0; i < 5; i++)
		harness_expect_int(k, "square", &KRAY_V_INT(i), 1, i * i);
	harness_shutdown(k);
	harness_stop_krayd(h);
	cr_assert_eq(count_lines(log, "bpf: off"), 1, "krayd must say once that BPF is off");
	cr_assert_eq(count_lines(log, why), 1, "the log does not say '%s'", why);
}

Test(bpf, off_by_flag)
{
	struct harness h;
	const char *opts[] = { "--bpf", "off", "--log-level", "info", NULL };
	char log[256];

	start_logged(&h, opts, log, sizeof(log));
	expect_daemon_path(&h, log, "off by configuration");
}

/* Root without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (dropped from the bounding set of
 * this test's process, so krayd starts without them): krayd cannot load the programs. */
Test(bpf, off_without_privileges)
{
	struct harness h;
	char log[256];
	int caps[] = { CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN };

	require_bpf();

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0))
			cr_skip_test("cannot drop capability %d from the bounding set: %s", caps[i],
				     strerror(errno));
	const char *opts[] = { "--log-level", "info", NULL };

	start_logged(&h, opts, log, sizeof(log));
	expect_daemon_path(&h, log, "no privileges for BPF");
}

/* A bad value for the switch is refused at start, naming the key. */
Test(bpf, bad_switch_value_refused)
{
	char cmd[512], out[1024];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "'%s' --bpf maybe 2>&1", getenv("KRAY_KRAYD"));
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	cr_assert_eq(WEXITSTATUS(pclose(p)), 2, "krayd --bpf maybe:\n%s", out);
	cr_assert(strstr(out, "--bpf") && strstr(out, "not on or off"), "%s", out);
}

/* ---- reconciliation ------------------------------------------------------------------ */

/* A worker that dies leaves the maps when krayd reaps it; its replacement is accounted. */
Test(bpf, dead_worker_leaves_the_maps)
{
	struct harness h;
	const char *opts[] = { "--prestart", "1", NULL };
	char dir[128];
	int64_t pid, pid2;
	__u32 key;
	struct kray_worker_stats s;
	kray *k;
	int fd, r = 0;

	require_bpf();

	cr_assert_eq(harness_start_krayd_opts(&h, 1, opts), 0);
	k = harness_connect(h.sock);
	pin_dir(k, dir, sizeof(dir));
	pid = call_int(k, "burn_cpu_ms", 0);
	key = (__u32)pid;
	fd = open_map(dir, "workers");
	cr_assert_eq(kbm_lookup(fd, &key, &s), 0);
	/* The pid a task of this test's own krayd returned: that worker and no other. */
	cr_assert_eq(kill((pid_t)pid, SIGKILL), 0);
	for (int i = 0; i < 250; i++) {
		r = kbm_lookup(fd, &key, &s);
		if (r == -ENOENT)
			break;
		sleep_ms(20);
	}
	cr_assert_eq(r, -ENOENT, "the dead worker %lld is still in the map", (long long)pid);
	pid2 = call_int(k, "burn_cpu_ms", 0);
	cr_assert_neq(pid2, pid);
	key = (__u32)pid2;
	cr_assert_eq(kbm_lookup(fd, &key, &s), 0, "the new worker is not accounted");
	cr_assert_eq(s.worker_id, 2);
	close(fd);
}

/*
 * The decision never stalls nested tasks: with the most eager threshold, hogs on the CPUs
 * and a long task keeping a worker busy, a tree of nested tasks (whose parents block in
 * gets) still completes, and correctly.
 */
Test(bpf, nested_tasks_finish_on_oversubscribed_cpus)
{
	const int HOGS = hog_count();
	const char *opts[] = { "--prestart", "0", "--oversubscribed-wait", "1", NULL };
	struct harness h;
	pid_t hogs[MAX_HOGS];
	kray_value args[2] = { KRAY_V_INT(2), KRAY_V_INT(3) }, v;
	kray_ref spin, tree;
	int64_t t0;
	kray *k;

	require_bpf();

	cr_assert_eq(harness_start_krayd_opts(&h, 4, opts), 0);
	k = harness_connect(h.sock);
	start_hogs(hogs, HOGS);
	spin = harness_call1(k, "spin_wall_ms", &KRAY_V_INT(3000), 1);
	cr_assert_eq(kray_flush(k), 0);
	sleep_ms(500);
	t0 = harness_now_ms();
	tree = harness_call1(k, "nested", args, 2);
	cr_assert_eq(harness_get1(k, tree, 40000, &v), 0, "nested: %s", kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_INT64);
	cr_assert_eq(v.i, 9, "nested(2, 3) = %lld", (long long)v.i);
	cr_log_info("nested(2, 3) on oversubscribed CPUs: %lld ms",
		    (long long)(harness_now_ms() - t0));
	stop_hogs(hogs, HOGS);
	cr_assert_eq(harness_get1(k, spin, 30000, &v), 0);
	kray_release(k, &spin, 1);
	kray_release(k, &tree, 1);
}

/* ---- kray top, live ------------------------------------------------------------------ */

/* The live table refreshes (clearing the screen each time) and ends on SIGINT. */
Test(bpf, top_live_refreshes_until_interrupted)
{
	struct harness h;
	const char *bin = getenv("KRAY_BIN");
	char cmd[512], out[16384];
	unsigned tables = 0;
	FILE *p;
	size_t n;

	require_bpf();

	cr_assert_not_null(bin);
	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	/* -k: a kray top that misses the interrupt is killed, and the test fails instead of
	 * hanging */
	snprintf(cmd, sizeof(cmd),
		 "timeout -k 5 -s INT 2.5 '%s/kray' top --socket %s --interval 200", bin, h.sock);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	pclose(p);
	for (char *s = strstr(out, "\033[H\033[J"); s; s = strstr(s + 1, "\033[H\033[J"))
		tables++;
	cr_assert_geq(tables, 2, "%u refreshes in 2.5 s at 200 ms:\n%s", tables, out);
	cr_assert(strstr(out, "WORKER"), "%s", out);
}

/* ---- Prometheus ---------------------------------------------------------------------- */

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* The value of the first sample line that starts with prefix, or -1. */
static double sample(const char *text, const char *prefix)
{
	for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix))
		if (p == text || p[-1] == '\n')
			return strtod(p + strlen(prefix), NULL);
	return -1;
}

/* The endpoint carries the workers' figures too (its format is checked by test_service). */
Test(bpf, prometheus_endpoint_has_the_bpf_metrics)
{
	struct harness h;
	char port_s[32], out[65536];
	int port = free_port();
	kray *k;
	size_t n;
	double cpu;

	require_bpf();

	snprintf(port_s, sizeof(port_s), "127.0.0.1:%d", port);
	const char *opts[] = { "--prestart", "1", "--metrics", port_s, NULL };

	/* Dispatch latency is of the tasks krayd sends: synchronous calls would take the
	 * fast path, past it (docs/fastpath.md). */
	setenv("KRAY_FASTPATH", "off", 1);
	cr_assert_eq(harness_start_krayd_opts(&h, 1, opts), 0);
	k = harness_connect(h.sock);
	/* The worker's on-CPU time is counted from the first time it gets a CPU once it is
	 * accounted: a worker still starting when the burn came would count none of it. */
	call_int(k, "burn_cpu_ms", 0);
	usleep(50 * 1000);
	call_int(k, "burn_cpu_ms", 100);
	/* A dispatch sample is taken when an idle worker gets a CPU to read its task: a few
	 * more calls once it is blocked waiting for work. */
	for (int i = 0; i < 3; i++) {
		usleep(50 * 1000);
		call_int(k, "burn_cpu_ms", 1);
	}
	{
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ssize_t r;

		cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
			     strerror(errno));
		cr_assert_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
		n = 0;
		while (n < sizeof(out) - 1 && (r = read(fd, out + n, sizeof(out) - 1 - n)) > 0)
			n += (size_t)r;
		out[n] = 0;
		close(fd);
	}
	cpu = sample(out, "kray_worker_cpu_seconds_total{worker=\"1\"} ");
	cr_assert_geq(cpu, 0.09, "worker 1 on-CPU %g s after a 100 ms burn:\n%s", cpu, out);
	cr_assert_geq(sample(out, "kray_worker_runqueue_wait_seconds_total{worker=\"1\"} "), 0);
	cr_assert_geq(
		sample(out, "kray_worker_context_switches_total{worker=\"1\",kind=\"voluntary\"} "),
		0);
	cr_assert_geq(
		sample(out,
		       "kray_worker_context_switches_total{worker=\"1\",kind=\"involuntary\"} "),
		0);
	cr_assert_geq(sample(out, "kray_dispatch_latency_samples_total "), 1);
	cr_assert_geq(sample(out, "kray_cpus_oversubscribed "), 0);
}

/* The live table ends, saying why, when its krayd stops (the maps it holds stay valid, so
 * it would otherwise show a dead krayd's last figures forever). */
Test(bpf, top_ends_when_krayd_stops)
{
	struct harness h;
	const char *bin = getenv("KRAY_BIN");
	char cmd[512], out[16384];
	FILE *p;
	size_t n;
	int status;

	require_bpf();

	cr_assert_not_null(bin);
	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	/* The stop happens while it runs: (sleep; kill) in the background of the shell. */
	snprintf(cmd, sizeof(cmd),
		 "(sleep 0.5; kill %d) & timeout 10 '%s/kray' top --socket %s --interval 100 2>&1",
		 (int)h.pid, bin, h.sock);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	status = pclose(p);
	cr_assert_eq(WEXITSTATUS(status), 1, "kray top exited %d:\n%s", WEXITSTATUS(status), out);
	cr_assert(strstr(out, "krayd stopped"), "%s", out);
	harness_stop_krayd(&h);
}
