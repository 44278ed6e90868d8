// SPDX-License-Identifier: Apache-2.0
/*
 * A krayd started by its caller and stopped by pid (see spawn.h): one copy of the
 * fork/exec/ready-fd handshake for the tests and the benchmarks.
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

int spawn_tmpdir(const char *prefix, char *buf, size_t size)
{
	const char *base = getenv("TMPDIR");

	/* sun_path is 108 bytes: keep the directory short. */
	if (!base || !*base || strlen(base) > 60)
		base = "/tmp";
	if ((size_t)snprintf(buf, size, "%s/%s-XXXXXX", base, prefix) >= size)
		return -ENAMETOOLONG;
	if (!mkdtemp(buf)) {
		buf[0] = '\0';
		return -errno;
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void spawn_rm_rf(const char *path)
{
	if (path && *path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* In the child: argv, then --ready-fd on a descriptor kept across exec. */
static void exec_child(const char *const *argv, int rfd, int wfd)
{
	char *args[MAX_ARGS + 3], fdstr[16];
	int n = 0;

	/* Die with the parent, even if it is killed by a timeout. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	close(rfd);
	if (wfd < 3) {
		wfd = fcntl(wfd, F_DUPFD, 3);
		if (wfd < 0)
			_exit(126);
	} else {
		fcntl(wfd, F_SETFD, 0); /* keep it across exec */
	}
	snprintf(fdstr, sizeof(fdstr), "%d", wfd);
	while (argv[n] && n < MAX_ARGS) {
		args[n] = (char *)argv[n];
		n++;
	}
	args[n++] = "--ready-fd";
	args[n++] = fdstr;
	args[n] = NULL;
	execv(args[0], args);
	fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
	_exit(127);
}

int spawn_ready(const char *const *argv, int timeout_ms, pid_t *ret_pid)
{
	struct pollfd p;
	int pfd[2], rc;
	char byte;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (pid == 0)
		exec_child(argv, pfd[0], pfd[1]);
	close(pfd[1]);
	p = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
	rc = poll(&p, 1, timeout_ms);
	if (rc == 1 && read(pfd[0], &byte, 1) == 1) {
		close(pfd[0]);
		*ret_pid = pid;
		return 0;
	}
	close(pfd[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return rc == 1 ? -ECHILD : -ETIMEDOUT;
}

int spawn_krayd(const char *krayd, const char *sock, const char *log_level,
		const char *const *flags, const char *const *more, int timeout_ms, pid_t *ret_pid)
{
	const char *worker = getenv("KRAY_WORKER");
	const char *argv[MAX_ARGS + 1] = { krayd, "--socket", sock, "--log-level", log_level };
	const char *const *lists[2] = { flags, more };
	int n = 5;

	if (worker && *worker) {
		argv[n++] = "--worker";
		argv[n++] = worker;
	}
	for (int l = 0; l < 2; l++)
		for (int i = 0; lists[l] && lists[l][i]; i++) {
			if (n == MAX_ARGS)
				return -E2BIG;
			argv[n++] = lists[l][i];
		}
	argv[n] = NULL;
	return spawn_ready(argv, timeout_ms, ret_pid);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int spawn_stop(pid_t pid, int grace_ms, const char *who)
{
	double deadline = now_s() + grace_ms / 1000.0;
	int status = -1;
	pid_t r;

	kill(pid, SIGCONT);
	kill(pid, SIGTERM);
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_s() < deadline)
		usleep(10000);
	if (r == 0) {
		fprintf(stderr, "%s: krayd %d ignored SIGTERM for %d ms, killing it\n", who,
			(int)pid, grace_ms);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	} else if (r < 0) {
		status = -1;
	}
	return status;
}
