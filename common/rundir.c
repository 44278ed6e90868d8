// SPDX-License-Identifier: Apache-2.0
/*
 * The runtime directory of a krayd and the pid check of its pid file (rundir.h).  The
 * rules are ssh-agent's and tmux's: a socket directory must be ours (or root's) and shut
 * to others; PostgreSQL's: a pid in a pid file is only believed when that process is our
 * daemon.  Here "our daemon" means: named krayd and holding the listening socket bound at
 * the path, which nobody else can hold while the directory is safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rundir.h"

#define SO_ACCEPTCON_FLAG 0x10000 /* __SO_ACCEPTCON in /proc/net/unix: listening */

void rundir_default_socket(char *buf, size_t len)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");

	if (rt && *rt)
		snprintf(buf, len, "%s/kray-%u/krayd.sock", rt, (unsigned)getuid());
	else if (!getuid())
		snprintf(buf, len, "/run/kray/krayd.sock");
	else
		snprintf(buf, len, "/tmp/kray-%u/krayd.sock", (unsigned)getuid());
}

int rundir_prepare(const char *sock, char *why, size_t why_len)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;
	uid_t me = geteuid();

	snprintf(dir, sizeof(dir), "%s", sock);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		int r = -errno;

		snprintf(why, why_len, "cannot create the runtime directory %s: %s", dir,
			 strerror(-r));
		return r;
	}
	/* Whether we just made it or it was there: lstat, so that a symlink is refused. */
	if (lstat(dir, &st)) {
		int r = -errno;

		snprintf(why, why_len, "runtime directory %s: %s", dir, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, why_len,
			 "refusing runtime directory %s: it is %s, not a directory (remove it or "
			 "choose another --socket)",
			 dir, S_ISLNK(st.st_mode) ? "a symlink" : "a file");
		return -ENOTDIR;
	}
	if (st.st_uid != me && st.st_uid != 0) {
		snprintf(why, why_len,
			 "refusing runtime directory %s: it is owned by uid %u, not by uid %u "
			 "(another user may have created it; remove it or choose another --socket)",
			 dir, (unsigned)st.st_uid, (unsigned)me);
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_uid == 0 && (st.st_mode & S_ISVTX))) {
		snprintf(why, why_len,
			 "refusing runtime directory %s: mode %04o lets others write in it "
			 "(chmod 0700 it, or remove it)",
			 dir, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int rundir_open_log(const char *path)
{
	struct stat st;
	int fd =
		open(path,
		     O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC,
		     0600);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

pid_t rundir_read_pid(const char *path)
{
	char buf[32], *end;
	struct stat st;
	ssize_t n;
	long pid;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno || end == buf || pid <= 0 || pid > INT_MAX || (*end && *end != '\n'))
		return -EINVAL;
	return (pid_t)pid;
}

/* The last component of path, without the " (deleted)" of a replaced executable. */
static bool named_krayd(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strcspn(base, " ");
	return n == 5 && !strncmp(base, "krayd", 5);
}

static bool is_named_krayd(pid_t pid)
{
	char p[64], exe[PATH_MAX];
	ssize_t n;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
	n = readlink(p, exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		if (named_krayd(exe))
			return true;
	}
	/* Under a wrapper (valgrind, a sanitizer runtime) the executable differs: argv[0]. */
	snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return false;
	n = (ssize_t)fread(exe, 1, sizeof(exe) - 1, f);
	fclose(f);
	if (n <= 0)
		return false;
	exe[n] = 0;
	return named_krayd(exe);
}

/* Whether pid has an fd open on the socket inode ino. */
static bool holds_inode(pid_t pid, unsigned long ino)
{
	char p[64], link[64], want[48];
	struct dirent *e;
	bool found = false;
	DIR *dir;

	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%lu]", ino);
	dir = opendir(p);
	if (!dir)
		return false;
	while (!found && (e = readdir(dir))) {
		ssize_t n = readlinkat(dirfd(dir), e->d_name, link, sizeof(link) - 1);

		if (n > 0) {
			link[n] = 0;
			found = !strcmp(link, want);
		}
	}
	closedir(dir);
	return found;
}

bool rundir_is_krayd(pid_t pid, const char *sock)
{
	char p[64], line[PATH_MAX + 128];
	bool ok = false;
	FILE *f;

	if (pid <= 0 || !is_named_krayd(pid))
		return false;
	/* The unix sockets of pid's network namespace: "Num RefCount Protocol Flags Type St
	 * Inode Path"; krayd's is the listening one bound at sock. */
	snprintf(p, sizeof(p), "/proc/%d/net/unix", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f)) {
		unsigned long flags, ino;
		int at = 0;
		char *path;

		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %n", &flags, &ino, &at) != 2 || !at)
			continue;
		path = line + at;
		path[strcspn(path, "\n")] = 0;
		if ((flags & SO_ACCEPTCON_FLAG) && !strcmp(path, sock))
			ok = holds_inode(pid, ino);
	}
	fclose(f);
	return ok;
}
