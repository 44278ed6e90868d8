/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the C benchmarks share (linked into every build/bench/bench_*): the clock, dying
 * with the bench's name, samples and medians, the AF_UNIX ping-pong floor, a private krayd
 * started and stopped by pid and the CPU time it uses, finding the build next to the
 * program, and printing a JSON report to stdout and a file.  Benchmarks are programs, not
 * tests: every failure here ends the bench with a message (bench_die), so nothing returns
 * an error.
 */
#ifndef KRAY_BENCH_COMMON_H
#define KRAY_BENCH_COMMON_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* The bench's name for messages ("bench_tasks"); call first in main(). */
void bench_init(const char *name);

/*
 * In a process forked by the bench that must not run the bench's exit handlers (its
 * krayd and directories are the parent's): bench_die() then says "<name> (<tag>)" and
 * _exit()s.
 */
void bench_set_child(const char *tag);

/* Prints "<name>: what: why" (or "<name>: what" when why is NULL) and exits 1. */
__attribute__((noreturn)) void bench_die(const char *what, const char *why);

/* The options the call and object benches share (what --quick means is each bench's). */
struct bench_opts {
	bool quick; /* --quick: fewer, shorter rounds */
	const char *json_file; /* --json FILE: the JSON line into FILE too */
	const char *address; /* --address SOCKET: a running krayd instead of a private one */
};

/*
 * If argv[*i] is --quick, --json FILE or, when with_address, --address SOCKET: notes it
 * in o, moves *i past its value and returns true.  Returns false for anything else (the
 * bench's own options, or a usage error).
 */
bool bench_opt(int argc, char **argv, int *i, bool with_address, struct bench_opts *o);

/*
 * All of argv through bench_opt() (no --address): anything else prints
 * "usage: <usage>" and exits 2.
 */
void bench_opts_parse(int argc, char **argv, const char *usage, struct bench_opts *o);

/* Seconds on the monotonic clock. */
double bench_now(void);

/* A growing array of samples (zero-initialise; bench_samples_free() frees it). */
struct bench_samples {
	double *v;
	size_t n, cap;
};

void bench_push(struct bench_samples *s, double x);
void bench_samples_free(struct bench_samples *s);

/* Median of s's samples, 0 when it has none; leaves them in order. */
double bench_med(const struct bench_samples *s);

/* Median of v[0..n), 0 when n is 0; sorts v. */
double bench_median(double *v, size_t n);

/* The same, leaving v in order. */
double bench_median_of(const double *v, size_t n);

/*
 * The floor of a round trip: a 64-byte AF_UNIX stream ping-pong with a forked peer,
 * 1,000 warm-up exchanges, then `rounds` rounds of round_s seconds; rt_us[r] is round r's
 * median round trip in µs.
 */
void bench_pingpong(int rounds, double round_s, double *rt_us);
/*
 * The kernel's floor for a cross-process wake-up (KERNEL-FACTS.md): a forked peer and
 * this process hand a counter through a shared mapping and wake each other with
 * FUTEX_WAKE / FUTEX_WAIT, each polling the word `spin` times before it sleeps.  Same
 * rounds and result as bench_pingpong().
 */
void bench_futex_pingpong(int rounds, double round_s, unsigned spin, double *rt_us);

/* The directory this program is in (from /proc/self/exe). */
void bench_exe_dir(char *buf, size_t len);

/* $name when set and not empty, else <this program's dir>/<rel>. */
void bench_path_from_env(const char *name, const char *rel, char *buf, size_t len);

/* A krayd this bench started: its private directory and socket, its pid. */
struct bench_krayd {
	pid_t pid;
	char dir[128], sock[160];
};

/*
 * Starts "bin --socket <dir>/krayd.sock --log-level warn [--worker $KRAY_WORKER]
 * flags... more... --ready-fd FD" (flags and more NULL-terminated, either may be NULL) in
 * a new mkdtemp directory under $TMPDIR (or /tmp) and waits 10 s at most for its ready
 * byte (spawn_krayd(), shared with the tests' harness).  The krayd gets SIGTERM if the
 * bench dies.  Dies on failure.
 */
void bench_krayd_start(struct bench_krayd *d, const char *bin, const char *const *flags,
		       const char *const *more);

/*
 * bench_krayd_start() of this build's krayd with the test functions: $KRAY_KRAYD (else
 * ../bin/krayd next to this program) with "--code-path" $KRAY_TEST_CODE_PATH (else
 * ../tests next to it), then flags (NULL-terminated, may be NULL).  Dies on failure.
 */
void bench_krayd_start_build(struct bench_krayd *d, const char *const *flags);

/*
 * Stops it: SIGCONT (it may be stopped) and SIGTERM to its pid, SIGKILL after 5 s, then
 * removes its directory.  Only in the process that started it; safe to call twice.
 */
void bench_krayd_stop(struct bench_krayd *d);

/*
 * Prints "JSON: " and emit(stdout, arg), then, when file is not NULL, emit(file, arg)
 * into that file.  Dies if the file cannot be written.
 */
void bench_json_out(const char *file, void (*emit)(FILE *f, void *arg), void *arg);

/* `"name": [v[0], v[1], ...]` with n values, 3 decimals. */
void bench_json_array(FILE *f, const char *name, const double *v, int n);

/*
 * One line of a JSON object, indented by two: `"name": {"median": M, "rounds": [...]}`
 * (3 decimals), then "," unless last, then a newline.
 */
void bench_json_fig(FILE *f, const char *name, const struct bench_samples *s, bool last);

/* CPU seconds (utime + stime, /proc/<pid>/stat) the process has used; 0 if unreadable. */
double bench_proc_cpu_s(pid_t pid);

/* CPU seconds used by this process, by its children (a private krayd), and by their
 * children (that krayd's workers), as found now (/proc/<pid>/task/<pid>/children). */
struct bench_cpu {
	double self, krayd, workers;
};

void bench_cpu_now(struct bench_cpu *c);

/* (end - start) in µs per call, for calls calls. */
struct bench_cpu bench_cpu_per_call(const struct bench_cpu *start, const struct bench_cpu *end,
				    size_t calls);

#endif /* KRAY_BENCH_COMMON_H */
