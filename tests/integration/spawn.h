/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting and stopping a krayd (or any program that takes --ready-fd) owned by the
 * caller, shared by the integration harness (harness.c) and the benchmarks
 * (bench/bench_common.c): a private temp dir short enough for a socket path, a fork and
 * exec that waits for the ready byte, and a stop by pid that escalates to SIGKILL.  No
 * Criterion here, so that programs that are not tests can link it; every function
 * reports failure by its return value and leaves the messages to the caller.
 */
#ifndef KRAY_TESTS_SPAWN_H
#define KRAY_TESTS_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/*
 * A new private directory "<base>/<prefix>-XXXXXX" in buf, where base is $TMPDIR when it
 * is short (sun_path is 108 bytes), else /tmp.  Returns 0 or a negative errno.
 */
int spawn_tmpdir(const char *prefix, char *buf, size_t size);

/* Removes a directory tree; ignores errors. */
void spawn_rm_rf(const char *path);

/*
 * Forks and execs argv[0] with argv (NULL-terminated) and "--ready-fd FD" after it, with
 * SIGTERM as its parent-death signal, and waits up to timeout_ms for it to write a byte
 * to FD.  Returns 0 and the pid in *ret_pid; or -ECHILD (it exited or closed FD before
 * the byte) or -ETIMEDOUT, having killed and reaped it; or another negative errno.
 */
int spawn_ready(const char *const *argv, int timeout_ms, pid_t *ret_pid);

/*
 * spawn_ready() of "krayd --socket sock --log-level log_level [--worker $KRAY_WORKER]
 * flags... more..." (flags and more NULL-terminated, either may be NULL; 40 at most in
 * all): the flags every krayd of the tests and benchmarks gets, then the caller's.
 */
int spawn_krayd(const char *krayd, const char *sock, const char *log_level,
		const char *const *flags, const char *const *more, int timeout_ms, pid_t *ret_pid);

/*
 * Stops pid: SIGCONT (it may be stopped) and SIGTERM, then SIGKILL after grace_ms, and
 * reaps it.  Says so on stderr, as "<who>: ...", when it had to kill.  Returns the wait
 * status, or -1 if pid could not be waited for.
 */
int spawn_stop(pid_t pid, int grace_ms, const char *who);

#endif /* KRAY_TESTS_SPAWN_H */
