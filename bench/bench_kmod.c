// SPDX-License-Identifier: Apache-2.0
/*
 * bench_kmod.c - what /dev/kray (kmod/, docs/kmod.md) takes out of a local get of a large
 * object, measured beside the floors of the machine in the same run.
 *
 *   null_syscall_us         getppid(): the cost of any one system call (floor)
 *   unix_pingpong_rt_us     64-byte AF_UNIX ping-pong between two processes (floor of a
 *                           round trip to krayd)
 *   socket_get_repeat_us    kray_get of a 1 MiB object this process already maps, through
 *                           krayd: the GET round trip alone (krayd sends the fd again, the
 *                           mapping is reused).  This is what the module removes
 *   socket_get_first_us     kray_get of a 1 MiB object this process does not map yet,
 *                           through krayd: round trip, fd, checks, mmap
 *   reopen_us               no krayd: what KRAY_IOC_GET does in the kernel, done by hand
 *                           on a sealed 1 MiB memfd: a read-only reopen, as
 *                           open("/proc/self/fd/N") (the module's dentry_open skips that
 *                           path walk), and close
 *   check_map_us            libkray's seal and size checks and mmap of the 1 MiB object
 *                           (pages present): what every get that maps does, either path
 *   kmod_get_repeat_us, kmod_get_first_us
 *                           the two gets through the module, when /dev/kray is loaded
 *                           (never on kray's build machines; in the qemu guest the times
 *                           are emulated and meaningless, the counts below are not)
 *
 * With --syscalls it also counts the system calls each kind of get makes (itself re-run
 * under strace -f, which also follows its private krayd): the driver's and krayd's, per
 * get.  --counts-only counts without timing anything (the qemu guest's test does that).
 * Times are medians over rounds.
 *
 *	bench_kmod [--quick] [--syscalls | --counts-only] [--json FILE]
 */
#include <kray/kray.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"

#define SIZE (1u << 20)
#define MAX_ROUNDS 16
#define COUNT_GETS 200
#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

extern char **environ;

static int rounds = 7, per_round = 2000;

enum metric { NULL_SYSCALL, PINGPONG, S_REPEAT, S_FIRST, REOPEN, MAP, K_REPEAT, K_FIRST, NMETRIC };
static const char *const names[NMETRIC] = {
	"null_syscall_us", "unix_pingpong_rt_us", "socket_get_repeat_us", "socket_get_first_us",
	"reopen_us",	   "check_map_us",	  "kmod_get_repeat_us",	  "kmod_get_first_us",
};
static double res[NMETRIC][MAX_ROUNDS];
static int have[NMETRIC];

/*
 * Runs body per_round times per round and records each round's median in µs; untimed
 * runs after each body, outside the clock (an unmap or a clear that is not part of it).
 */
#define TIMED_THEN(m, body, untimed)                                      \
	do {                                                              \
		double *s_ = malloc(sizeof(double) * (size_t)per_round);  \
		if (!s_)                                                  \
			bench_die("malloc", "out of memory");             \
		for (int r_ = 0; r_ < rounds; r_++) {                     \
			for (int i_ = 0; i_ < per_round; i_++) {          \
				double t0_ = bench_now();                 \
				body;                                     \
				s_[i_] = (bench_now() - t0_) * 1e6;       \
				untimed;                                  \
			}                                                 \
			res[m][r_] = bench_median(s_, (size_t)per_round); \
		}                                                         \
		have[m] = 1;                                              \
		free(s_);                                                 \
	} while (0)
#define TIMED(m, body) TIMED_THEN(m, body, )

static void pingpong(void)
{
	char buf[64] = { 0 };
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		bench_die("socketpair", strerror(errno));
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		while (read(sv[1], buf, sizeof(buf)) == sizeof(buf) &&
		       write(sv[1], buf, sizeof(buf)) == sizeof(buf))
			;
		_exit(0);
	}
	close(sv[1]);
	TIMED(PINGPONG,
	      if (write(sv[0], buf, sizeof(buf)) != sizeof(buf) ||
		  read(sv[0], buf, sizeof(buf)) != sizeof(buf)) bench_die("ping-pong", "peer"));
	close(sv[0]);
	waitpid(pid, NULL, 0);
}

/* libkray's checks and mapping of a large object's fd (libclient/objects.c). */
static void *check_and_map(int fd)
{
	struct stat st;
	struct statfs fs;
	void *p;

	if ((fcntl(fd, F_GET_SEALS) & ALL_SEALS) != ALL_SEALS || fstat(fd, &st) ||
	    fstatfs(fd, &fs) || st.st_size != SIZE)
		bench_die("reopen", "not a sealed 1 MiB memfd");
	p = mmap(NULL, SIZE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED)
		bench_die("mmap", strerror(errno));
	return p;
}

static void reopen_map(void)
{
	int fd = memfd_create("bench-kmod", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	char path[64];
	void *p;

	if (fd < 0 || ftruncate(fd, SIZE))
		bench_die("memfd", strerror(errno));
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		bench_die("mmap", strerror(errno));
	memset(p, 7, SIZE);
	munmap(p, SIZE);
	if (fcntl(fd, F_ADD_SEALS, ALL_SEALS))
		bench_die("seal", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	TIMED(REOPEN, {
		int ro = open(path, O_RDONLY | O_CLOEXEC);

		if (ro < 0)
			bench_die("reopen", strerror(errno));
		close(ro);
	});
	/* The unmap is not part of a get (it comes with the value's clear). */
	TIMED_THEN(MAP, p = check_and_map(fd), munmap(p, SIZE));
	close(fd);
}

static void mark(const char *what)
{
	/* A system call strace shows and nothing else makes: write to fd -1. */
	if (write(-1, what, strlen(what)) >= 0)
		bench_die("mark", "wrote to fd -1");
}

static kray *connect_krayd(int use_kmod)
{
	kray *k;

	setenv("KRAY_KMOD", use_kmod ? "1" : "0", 1); /* read by each kray_init() */
	if (kray_init(&k, NULL))
		bench_die("kray_init", "cannot start or reach krayd");
	return k;
}

static void put_big(kray *k, kray_ref *ref)
{
	void *data;

	if (kray_create(k, SIZE, ref, &data))
		bench_die("kray_create", kray_errmsg(k));
	memset(data, 5, SIZE);
	if (kray_seal(k, ref))
		bench_die("kray_seal", kray_errmsg(k));
}

static void get_one(kray *k, const kray_ref *ref, kray_value *v)
{
	if (kray_get(k, ref, 1, 10000, v) || v->type != KRAY_BYTES || v->len != SIZE ||
	    ((const uint8_t *)v->data)[SIZE - 1] != 5)
		bench_die("kray_get", kray_errmsg(k));
}

/* Gets through krayd (use_kmod 0) or the module: repeat (mapped) and first (not). */
static void gets(int use_kmod, int count_only)
{
	struct kray_stats st;
	kray *k = connect_krayd(use_kmod);
	kray_value hold, v;
	kray_ref ref;
	const char *tag = use_kmod ? "kmod" : "socket";
	char m[64];

	put_big(k, &ref);
	if (kray_status(k, &st))
		bench_die("kray_status", kray_errmsg(k));
	get_one(k, &ref, &hold); /* mapped while the repeat gets run */
	if (count_only) {
		snprintf(m, sizeof(m), "kray-mark:begin:%s_get_repeat", tag);
		for (int i = 0; i < COUNT_GETS; i++) {
			mark(m);
			get_one(k, &ref, &v);
			mark("kray-mark:end");
			kray_value_clear(&v);
		}
	} else {
		TIMED(use_kmod ? K_REPEAT : S_REPEAT, {
			get_one(k, &ref, &v);
			kray_value_clear(&v);
		});
	}
	kray_value_clear(&hold);
	/* First gets: the clear (munmap, unpin) between them is not timed but counted
	 * apart, so the counts are per get. */
	if (count_only) {
		snprintf(m, sizeof(m), "kray-mark:begin:%s_get_first", tag);
		for (int i = 0; i < COUNT_GETS; i++) {
			mark(m);
			get_one(k, &ref, &v);
			mark("kray-mark:end");
			kray_value_clear(&v);
			kray_flush(k);
		}
	} else {
		TIMED_THEN(use_kmod ? K_FIRST : S_FIRST, get_one(k, &ref, &v),
			   kray_value_clear(&v));
	}
	kray_release(k, &ref, 1);
	kray_shutdown(k);
}

static int kmod_loaded(void)
{
	return access("/dev/kray", R_OK | W_OK) == 0;
}

/* ---- system call counts: this program again, under strace -f --------------------------- */

struct count {
	char name[48];
	unsigned long driver, krayd, gets;
};

static int count_syscalls(const char *self, struct count *c, int max)
{
	char out[] = "/tmp/bench_kmod.strace.XXXXXX", line[4096], cur[48] = "";
	char *argv[] = { "strace", "-f",	 "-qq",		  "-s", "128", "-o",
			 out,	   (char *)self, "--count-child", NULL };
	int fd = mkstemp(out), n = 0, st;
	pid_t pid, main_pid = 0;
	FILE *f;

	if (fd < 0)
		return -1;
	close(fd);
	if (posix_spawnp(&pid, "strace", NULL, NULL, argv, environ) ||
	    waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		unlink(out);
		return -1;
	}
	f = fopen(out, "re");
	while (f && fgets(line, sizeof(line), f)) {
		long p = strtol(line, NULL, 10);
		char *mk = strstr(line, "write(-1, \"kray-mark:");

		if (!main_pid)
			main_pid = (pid_t)p;
		if (mk) {
			char *b = mk + strlen("write(-1, \"kray-mark:");

			if (!strncmp(b, "begin:", 6)) {
				sscanf(b + 6, "%47[a-z_]", cur);
				int i;

				for (i = 0; i < n && strcmp(c[i].name, cur); i++)
					;
				if (i == n && n < max)
					snprintf(c[n++].name, sizeof(c[0].name), "%s", cur);
				if (i < n)
					c[i].gets++;
			} else {
				cur[0] = 0;
			}
			continue;
		}
		/* Each call once: the "resumed" half of an interrupted line is not a call. */
		if (!cur[0] || strstr(line, "resumed>") || strstr(line, " --- ") ||
		    strstr(line, " +++ "))
			continue;
		for (int i = 0; i < n; i++)
			if (!strcmp(c[i].name, cur)) {
				if (p == main_pid)
					c[i].driver++;
				else
					c[i].krayd++;
			}
	}
	if (f)
		fclose(f);
	unlink(out);
	return n;
}

static void count_child(void)
{
	gets(0, 1);
	if (kmod_loaded())
		gets(1, 1);
}

/* ---- report ------------------------------------------------------------------------- */

static double med(enum metric m)
{
	return bench_median_of(res[m], (size_t)rounds);
}

/* What json() needs beside the results. */
struct report {
	const struct count *counts;
	int ncount, krayd_traced;
};

static void json(FILE *f, void *arg)
{
	const struct report *rep = arg;

	fprintf(f, "{\"kmod_loaded\": %s, \"rounds\": %d, \"gets_per_round\": %d",
		kmod_loaded() ? "true" : "false", rounds, per_round);
	for (int m = 0; m < NMETRIC; m++)
		if (have[m])
			fprintf(f, ", \"%s\": %.3f", names[m], med(m));
	for (int i = 0; i < rep->ncount; i++) {
		const struct count *c = &rep->counts[i];

		fprintf(f, ", \"syscalls_%s\": {\"driver\": %.2f, \"krayd\": ", c->name,
			(double)c->driver / (double)c->gets);
		if (rep->krayd_traced)
			fprintf(f, "%.2f}", (double)c->krayd / (double)c->gets);
		else
			fprintf(f, "null}");
	}
	fprintf(f, "}\n");
}

int main(int argc, char **argv)
{
	const char *json_file = NULL;
	int syscalls = 0, counts_only = 0, ncount = -1;
	struct count counts[8] = { 0 };
	char self[PATH_MAX];
	ssize_t len;

	bench_init("bench_kmod");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count-child")) {
			count_child();
			return 0;
		} else if (!strcmp(argv[i], "--quick")) {
			rounds = 3;
			per_round = 300;
		} else if (!strcmp(argv[i], "--syscalls")) {
			syscalls = 1;
		} else if (!strcmp(argv[i], "--counts-only")) {
			/* Where timing means nothing (the qemu guest). */
			syscalls = counts_only = 1;
		} else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json_file = argv[++i];
		} else {
			fprintf(stderr,
				"usage: %s [--quick] [--syscalls | --counts-only] [--json FILE]\n",
				argv[0]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (!counts_only) {
		TIMED(NULL_SYSCALL, (void)getppid());
		pingpong();
		reopen_map();
		gets(0, 0);
		if (kmod_loaded())
			gets(1, 0);
	}
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (syscalls && len > 0) {
		self[len] = 0;
		ncount = count_syscalls(self, counts, 8);
	}

	if (counts_only)
		printf("bench_kmod: system calls per get of a 1 MiB object%s\n",
		       kmod_loaded() ? "" : "; /dev/kray is not loaded here");
	else
		printf("bench_kmod: medians of %d rounds x %d gets of a 1 MiB object (µs)%s\n",
		       rounds, per_round, kmod_loaded() ? "" : "; /dev/kray is not loaded here");
	for (int m = 0; m < NMETRIC; m++)
		if (have[m])
			printf("  %-24s %9.2f\n", names[m], med(m));
	if (have[S_REPEAT] && have[NULL_SYSCALL])
		printf("  the socket round trip of a get costs %.1f null system calls; a get "
		       "through the module is one ioctl\n",
		       med(S_REPEAT) / med(NULL_SYSCALL));
	if (syscalls && ncount < 0)
		printf("  system calls: not counted (strace missing or failed)\n");
	/* A krayd this program did not start (KRAY_ADDRESS) is not a child: not traced. */
	int krayd_traced = !getenv("KRAY_ADDRESS");

	for (int i = 0; i < ncount; i++) {
		printf("  system calls per %-18s driver %5.2f", counts[i].name,
		       (double)counts[i].driver / (double)counts[i].gets);
		if (krayd_traced)
			printf("  krayd %5.2f\n", (double)counts[i].krayd / (double)counts[i].gets);
		else
			printf("  krayd (not traced: $KRAY_ADDRESS)\n");
	}

	bench_json_out(json_file, json, &(struct report){ counts, ncount, krayd_traced });
	return 0;
}
