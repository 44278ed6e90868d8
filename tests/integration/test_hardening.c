// SPDX-License-Identifier: Apache-2.0
/*
 * krayd's files against another local user and against its own crashes (issue 21): a
 * runtime directory squatted by a second user (made here with useradd, removed in the
 * suite's fini even when a test fails) with symlinks named like the pid file and log is
 * refused and nothing is written through them; a directory others may write in is
 * refused; a forged or stale pid file makes `kray stop` signal nothing; a krayd started
 * after one was SIGKILLed removes its spill files and stale pid file and says so; and a
 * live krayd's spill directory is never shared or swept by a second krayd.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "harness.h"

/* A second user, created by the one test that needs her; removed by fini. */
static char squatter[32];
/* Processes a test started outside the harness (sleep; a krayd of `kray start`): killed
 * by fini if the test did not get to it. */
static pid_t strays[4];

static void remember(pid_t pid)
{
	for (int i = 0; i < 4; i++)
		if (!strays[i]) {
			strays[i] = pid;
			return;
		}
}

static void forget(pid_t pid)
{
	for (int i = 0; i < 4; i++)
		if (strays[i] == pid)
			strays[i] = 0;
}

static void hardening_fini(void)
{
	char cmd[96];

	for (int i = 0; i < 4; i++)
		if (strays[i] > 0) {
			kill(strays[i], SIGKILL);
			waitpid(strays[i], NULL, 0);
			strays[i] = 0;
		}
	if (squatter[0]) {
		snprintf(cmd, sizeof(cmd), "userdel %s >/dev/null 2>&1", squatter);
		if (system(cmd))
			fprintf(stderr, "hardening: userdel %s failed\n", squatter);
		squatter[0] = 0;
	}
	harness_cleanup();
}

TestSuite(hardening, .fini = hardening_fini, .timeout = 120);

/* Runs a shell command; its output (stdout and stderr) in out.  Returns the wait status. */
static int sh(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t len, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	size_t n;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	p = popen(cmd, "r");
	cr_assert_not_null(p, "popen %s", cmd);
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	return pclose(p);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* The whole of a small file, or "" if it cannot be read. */
static void read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
}

static const char *kray_bin(void)
{
	const char *bin = getenv("KRAY_BIN");

	cr_assert(bin && *bin, "KRAY_BIN is not set (run through make test-integration)");
	return bin;
}

/* After a `kray start` that should have been refused but was not: stop what it started,
 * by the pid it printed, so that the failing test leaves nothing running. */
static void stop_started(const char *out)
{
	const char *p = strstr(out, "(pid ");
	int pid = p ? atoi(p + 5) : 0;

	if (pid > 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 100 && !kill(pid, 0); i++)
			usleep(50000);
		kill(pid, SIGKILL);
	}
}

/* ---- the runtime directory ---------------------------------------------------------- */

/* Makes the squatter's directory and symlinks as her: fork, drop to her uid, act. */
static void squat(uid_t uid, gid_t gid, const char *dir, const char *pid_target,
		  const char *log_target)
{
	char path[512];
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork");
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
			_exit(10);
		if (mkdir(dir, 0777) || chmod(dir, 0777))
			_exit(11);
		snprintf(path, sizeof(path), "%s/krayd.sock.pid", dir);
		if (symlink(pid_target, path))
			_exit(12);
		snprintf(path, sizeof(path), "%s/krayd.sock.log", dir);
		if (symlink(log_target, path))
			_exit(13);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the squatter could not make %s and its symlinks (step %d)", dir,
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

Test(hardening, squatted_runtime_dir_is_refused)
{
	char base[128], rt[192], dir[256], vpid[192], vlog[192], sock[320], out[4096], text[256];
	struct passwd *pw;
	struct stat st;
	int rc;

	if (geteuid() != 0)
		cr_skip("needs root (useradd, and root's own kray start is what is attacked)");
	snprintf(squatter, sizeof(squatter), "kraysq%d", (int)getpid());
	rc = sh(out, sizeof(out), "useradd -M -N -r -s /usr/sbin/nologin %s", squatter);
	if (rc) {
		squatter[0] = 0;
		cr_assert_fail("useradd: %s", out);
	}
	pw = getpwnam(squatter);
	cr_assert_not_null(pw, "getpwnam %s after useradd", squatter);

	/* base (root's, 0711) / rt (1777, like /tmp or a shared XDG_RUNTIME_DIR) */
	harness_tmpdir(base, sizeof(base));
	cr_assert_eq(chmod(base, 0711), 0);
	snprintf(rt, sizeof(rt), "%s/rt", base);
	cr_assert_eq(mkdir(rt, 0777), 0);
	cr_assert_eq(chmod(rt, 01777), 0);
	snprintf(vpid, sizeof(vpid), "%s/root-file-1", base);
	snprintf(vlog, sizeof(vlog), "%s/root-file-2", base);
	write_file(vpid, "root's first file\n", 0600);
	write_file(vlog, "root's second file\n", 0600);

	/* She makes root's default directory for this XDG_RUNTIME_DIR before root does. */
	snprintf(dir, sizeof(dir), "%s/kray-0", rt);
	squat(pw->pw_uid, pw->pw_gid, dir, vpid, vlog);

	/* root: kray start with the default socket ($XDG_RUNTIME_DIR/kray-0/krayd.sock) */
	rc = sh(out, sizeof(out),
		"env -u KRAY_ADDRESS XDG_RUNTIME_DIR='%s' '%s/kray' start --num-cpus 1 "
		"--log-level warn",
		rt, kray_bin());
	if (!rc)
		stop_started(out);
	cr_assert_neq(rc, 0, "kray start in a directory another user owns succeeded: %s", out);
	cr_assert(strstr(out, "refusing runtime directory") && strstr(out, "owned by uid"),
		  "kray start did not say why: %s", out);

	/* the same with --socket naming a file in it */
	snprintf(sock, sizeof(sock), "%s/krayd.sock", dir);
	rc = sh(out, sizeof(out), "'%s/kray' start --socket '%s' --num-cpus 1 --log-level warn",
		kray_bin(), sock);
	if (!rc)
		stop_started(out);
	cr_assert_neq(rc, 0, "kray start --socket in her directory succeeded: %s", out);
	cr_assert(strstr(out, "refusing runtime directory"), "kray start said: %s", out);

	/* krayd itself, started directly, refuses as well */
	rc = sh(out, sizeof(out), "timeout 20 '%s' --socket '%s' --num-cpus 1 --prestart 0",
		getenv("KRAY_KRAYD"), sock);
	cr_assert_neq(rc, 0, "krayd in her directory started: %s", out);
	cr_assert(strstr(out, "refusing runtime directory"), "krayd said: %s", out);

	/* Nothing was written through her symlinks, and nothing was served there. */
	read_file(vpid, text, sizeof(text));
	cr_assert_str_eq(text, "root's first file\n", "the pid file's target was written");
	read_file(vlog, text, sizeof(text));
	cr_assert_str_eq(text, "root's second file\n", "the log's target was written");
	cr_assert_neq(lstat(sock, &st), 0, "a socket was made in her directory");
}

Test(hardening, dir_others_can_write_is_refused)
{
	char base[128], dir[192], sock[256], out[4096];
	int rc;

	harness_tmpdir(base, sizeof(base));
	snprintf(dir, sizeof(dir), "%s/open", base);
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(chmod(dir, 0777), 0);
	snprintf(sock, sizeof(sock), "%s/krayd.sock", dir);
	rc = sh(out, sizeof(out), "'%s/kray' start --socket '%s' --num-cpus 1 --log-level warn",
		kray_bin(), sock);
	if (!rc)
		stop_started(out);
	cr_assert_neq(rc, 0, "kray start in a 0777 directory succeeded: %s", out);
	cr_assert(strstr(out, "lets others write"), "kray start said: %s", out);
	cr_assert_neq(access(sock, F_OK), 0, "a socket was made in a 0777 directory");

	/* 0700 again: the same start works */
	cr_assert_eq(chmod(dir, 0700), 0);
	rc = sh(out, sizeof(out), "'%s/kray' start --socket '%s' --num-cpus 1 --log-level warn",
		kray_bin(), sock);
	cr_assert_eq(rc, 0, "kray start in a 0700 directory: %s", out);
	rc = sh(out, sizeof(out), "'%s/kray' stop --socket '%s'", kray_bin(), sock);
	cr_assert_eq(rc, 0, "kray stop: %s", out);
}

/* ---- the pid file ------------------------------------------------------------------- */

static pid_t start_sleep(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork");
	if (pid == 0) {
		execlp("sleep", "sleep", "300", (char *)NULL);
		_exit(127);
	}
	remember(pid);
	return pid;
}

static bool still_running(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

/* Whether pid (not necessarily our child) has exited: gone, or a zombie nobody reaped yet
 * (the test may be a subreaper of what `kray start` left behind). */
static bool exited(pid_t pid)
{
	char path[64], stat[512], *paren;

	if (waitpid(pid, NULL, WNOHANG) == pid || kill(pid, 0))
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	read_file(path, stat, sizeof(stat));
	paren = strrchr(stat, ')');
	return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X';
}

Test(hardening, forged_pid_file_kills_nothing)
{
	char dir[128], sock[192], pidfile[200], log[200], out[4096], text[4096];
	pid_t victim = start_sleep(), krayd;
	int rc;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/krayd.sock", dir);
	snprintf(pidfile, sizeof(pidfile), "%s.pid", sock);
	snprintf(log, sizeof(log), "%s.log", sock);

	/* no krayd at all, and a pid file naming an unrelated process */
	snprintf(text, sizeof(text), "%d\n", (int)victim);
	write_file(pidfile, text, 0644);
	rc = sh(out, sizeof(out), "'%s/kray' stop --socket '%s'", kray_bin(), sock);
	usleep(100000);
	cr_assert(still_running(victim),
		  "kray stop killed pid %d (sleep) named by a forged pid "
		  "file: %s",
		  (int)victim, out);
	cr_assert_neq(rc, 0, "kray stop succeeded without a krayd: %s", out);
	cr_assert(strstr(out, "not the krayd serving"), "kray stop said: %s", out);

	/* kray start over that stale pid file: krayd replaces it and says so */
	rc = sh(out, sizeof(out), "'%s/kray' start --socket '%s' --num-cpus 1 --log-level warn",
		kray_bin(), sock);
	cr_assert_eq(rc, 0, "kray start over a stale pid file: %s", out);
	read_file(pidfile, text, sizeof(text));
	krayd = atoi(text);
	cr_assert(krayd > 0 && krayd != victim, "the pid file holds '%s'", text);
	remember(krayd);
	read_file(log, text, sizeof(text));
	cr_assert(strstr(text, "replaced a stale one"), "krayd's log: %s", text);

	/* a running krayd, and the pid file rewritten to name the sleep */
	snprintf(text, sizeof(text), "%d\n", (int)victim);
	write_file(pidfile, text, 0644);
	rc = sh(out, sizeof(out), "'%s/kray' stop --socket '%s'", kray_bin(), sock);
	usleep(100000);
	cr_assert(still_running(victim), "kray stop killed the sleep while a krayd ran: %s", out);
	cr_assert_neq(rc, 0, "kray stop: %s", out);
	cr_assert_eq(kill(krayd, 0), 0, "krayd died");

	/* the right pid: stopped */
	snprintf(text, sizeof(text), "%d\n", (int)krayd);
	write_file(pidfile, text, 0644);
	rc = sh(out, sizeof(out), "'%s/kray' stop --socket '%s'", kray_bin(), sock);
	cr_assert_eq(rc, 0, "kray stop of the real krayd: %s", out);
	cr_assert(exited(krayd), "krayd still runs after kray stop");
	forget(krayd);
	cr_assert(still_running(victim));
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	forget(victim);
}

/* ---- spill files after a crash ------------------------------------------------------ */

#define OBJ_LEN (4u << 20)
#define NOBJ 8 /* 32 MiB into a 16 MiB store: about half of them spill */

static int count_spill_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".obj") != NULL;
	closedir(d);
	return n;
}

static void fill(kray *k, kray_ref *refs)
{
	for (int i = 0; i < NOBJ; i++) {
		void *p;

		cr_assert_eq(kray_create(k, OBJ_LEN, &refs[i], &p), 0, "create %d: %s", i,
			     kray_errmsg(k));
		memset(p, 'a' + i, OBJ_LEN);
		cr_assert_eq(kray_seal(k, &refs[i]), 0, "seal %d: %s", i, kray_errmsg(k));
	}
}

/* harness_start_krayd_opts() with krayd's stderr (its log) going to logpath. */
static int start_logged(struct harness *h, const char *const *flags, const char *logpath)
{
	int saved = dup(STDERR_FILENO), fd, rc;

	fflush(stderr);
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert(saved >= 0 && fd >= 0, "log %s: %s", logpath, strerror(errno));
	dup2(fd, STDERR_FILENO);
	close(fd);
	rc = harness_start_krayd_opts(h, 1, flags);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return rc;
}

Test(hardening, restart_after_sigkill_removes_spill_files)
{
	char base[128], spill[160], pidfile[160], logpath[160], text[8192], want[64];
	const char *flags[] = { "--store-size", "16M",	     "--pool-size", "0", "--spill-dir",
				spill,		"--pidfile", pidfile,	    NULL };
	struct harness h1, h2;
	kray_ref refs[NOBJ];
	int n;

	harness_tmpdir(base, sizeof(base));
	snprintf(spill, sizeof(spill), "%s/spill", base);
	snprintf(pidfile, sizeof(pidfile), "%s/krayd.pid", base);
	snprintf(logpath, sizeof(logpath), "%s/second.log", base);

	cr_assert_eq(harness_start_krayd_opts(&h1, 1, flags), 0);
	kray *k = harness_connect(h1.sock);

	fill(k, refs);
	n = count_spill_files(spill);
	cr_assert_geq(n, 3, "only %d objects spilled", n);
	cr_assert_eq(kill(h1.pid, SIGKILL), 0);
	harness_stop_krayd(&h1); /* reaps it */
	harness_shutdown(k);
	cr_assert_eq(count_spill_files(spill), n, "the spill files went with the crash");
	cr_assert_eq(access(pidfile, F_OK), 0, "no pid file left by the crash");

	cr_assert_eq(start_logged(&h2, flags, logpath), 0, "a krayd on the crashed one's files");
	cr_assert_eq(count_spill_files(spill), 0, "%d spill files of the crashed krayd remain",
		     count_spill_files(spill));
	read_file(logpath, text, sizeof(text));
	snprintf(want, sizeof(want), "removed %d spill files (%llu bytes)", n,
		 (unsigned long long)n * OBJ_LEN);
	cr_assert(strstr(text, want), "krayd's log does not say '%s': %s", want, text);
	cr_assert(strstr(text, "replaced a stale one"), "nothing about the pid file: %s", text);
	read_file(pidfile, want, sizeof(want));
	cr_assert_eq(atoi(want), (int)h2.pid, "the pid file holds '%s', not %d", want, (int)h2.pid);

	/* and it spills and serves as usual */
	k = harness_connect(h2.sock);
	fill(k, refs);
	kray_value v;

	cr_assert_eq(harness_get1(k, refs[0], 30000, &v), 0, "%s", kray_errmsg(k));
	cr_assert(v.len == OBJ_LEN && ((const char *)v.data)[OBJ_LEN - 1] == 'a');
	kray_value_clear(&v);
	harness_shutdown(k);
	harness_stop_krayd(&h2);
}

Test(hardening, live_spill_dir_is_not_swept)
{
	char base[128], spill[160], logpath[160], text[8192];
	const char *flags[] = { "--store-size", "16M", "--pool-size", "0",
				"--spill-dir",	spill, NULL };
	struct harness h1, h2;
	kray_ref refs[NOBJ];
	int n;

	harness_tmpdir(base, sizeof(base));
	snprintf(spill, sizeof(spill), "%s/spill", base);
	snprintf(logpath, sizeof(logpath), "%s/second.log", base);
	cr_assert_eq(harness_start_krayd_opts(&h1, 1, flags), 0);
	kray *k = harness_connect(h1.sock);

	fill(k, refs);
	n = count_spill_files(spill);
	cr_assert_geq(n, 3, "only %d objects spilled", n);

	/* a second krayd (its own socket) given the same spill dir */
	int rc = start_logged(&h2, flags, logpath);

	if (!rc)
		harness_stop_krayd(&h2);
	read_file(logpath, text, sizeof(text));
	cr_assert_neq(rc, 0, "a second krayd started on a live krayd's spill dir");
	cr_assert(strstr(text, "in use by another running krayd"), "it said: %s", text);
	cr_assert_eq(count_spill_files(spill), n, "the live krayd's spill files were swept");

	/* every object of the first is still there, spilled ones included */
	cr_assert(harness_krayd_alive(&h1));
	for (int i = 0; i < NOBJ; i++) {
		kray_value v;

		cr_assert_eq(harness_get1(k, refs[i], 30000, &v), 0, "get %d: %s", i,
			     kray_errmsg(k));
		cr_assert(v.len == OBJ_LEN && ((const char *)v.data)[0] == 'a' + i &&
				  ((const char *)v.data)[OBJ_LEN - 1] == 'a' + i,
			  "object %d changed", i);
		kray_value_clear(&v);
	}
	harness_shutdown(k);
	harness_stop_krayd(&h1);
}
