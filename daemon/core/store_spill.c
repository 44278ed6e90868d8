// SPDX-License-Identifier: Apache-2.0
/*
 * krayd's claim on its spill directory, and the clean-up after a crash (issue 21).  A
 * krayd that was killed leaves its spill files behind (they are only unlinked when their
 * objects are freed), and nothing else would ever remove them.  So every krayd holds an
 * exclusive flock() on the spill directory itself while it runs: the kernel drops it
 * when the process dies, however it dies.  The next krayd that gets the lock knows that
 * no live krayd uses the directory and removes the spill files in it; one that does not
 * get it refuses to start rather than share (or sweep) a live krayd's files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/store.h"
#include "core/log.h"

/* Whether name is a spill file's: "%08x-%u-%u-%u-%u.obj" (store_mem.c's spill_path: the
 * id and a generation), or the "%08x-%u-%u-%u.obj" of older krayds. */
static bool spill_name(const char *name)
{
	unsigned node, owner, seq, index, gen;
	int end = 0;

	if (sscanf(name, "%8x-%u-%u-%u-%u.obj%n", &node, &owner, &seq, &index, &gen, &end) == 5 &&
	    end > 0 && !name[end])
		return true;
	end = 0;
	return sscanf(name, "%8x-%u-%u-%u.obj%n", &node, &owner, &seq, &index, &end) == 4 &&
	       end > 0 && !name[end];
}

/* Removes the spill files in the locked directory dfd; says how many in the log. */
static void sweep(struct krayd *d, int dfd)
{
	unsigned long long bytes = 0;
	unsigned files = 0;
	struct dirent *e;
	struct stat st;
	int fd = dup(dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		log_warn("spill dir %s: cannot list it: %s", d->cfg.spill_dir, strerror(errno));
		return;
	}
	while ((e = readdir(dir))) {
		if (!spill_name(e->d_name) || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (unlinkat(dfd, e->d_name, 0)) {
			log_warn("spill dir %s: %s: %s", d->cfg.spill_dir, e->d_name,
				 strerror(errno));
			continue;
		}
		files++;
		bytes += (unsigned long long)st.st_size;
	}
	closedir(dir);
	if (files)
		log_warn("spill dir %s: removed %u spill files (%llu bytes) left by a krayd that "
			 "did not stop cleanly",
			 d->cfg.spill_dir, files, bytes);
}

int store_spill_open(struct krayd *d)
{
	const char *path = d->cfg.spill_dir;
	struct stat st, now;
	int fd = -1;

	d->spill_lock = -1;
	/* A krayd that stops removes its (empty) directory while it holds the lock; a lock
	 * won on a directory that is no longer at path is worth nothing: try again. */
	for (int tries = 0; tries < 5; tries++) {
		if (mkdir(path, 0700) && errno != EEXIST) {
			log_warn("spill dir %s: %s (objects cannot be spilled)", path,
				 strerror(errno));
			return 0;
		}
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			int r = -errno;

			log_err("spill dir %s: %s", path,
				r == -ELOOP || r == -ENOTDIR ? "not a directory (a symlink?)" :
							       strerror(-r));
			return r;
		}
		if (fstat(fd, &st)) {
			log_err("spill dir %s: %s", path, strerror(errno));
			close(fd);
			return -EIO;
		}
		if (st.st_uid != geteuid() ||
		    ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
			log_err("spill dir %s: owned by uid %u with mode %04o: it must be this "
				"user's (uid %u) and not writable by others",
				path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
				(unsigned)geteuid());
			close(fd);
			return -EPERM;
		}
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			if (errno == EWOULDBLOCK)
				log_err("spill dir %s is in use by another running krayd: "
					"give each krayd its own spill-dir",
					path);
			else
				log_err("spill dir %s: flock: %s", path, strerror(errno));
			close(fd);
			return -EBUSY;
		}
		if (!stat(path, &now) && now.st_dev == st.st_dev && now.st_ino == st.st_ino)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		log_err("spill dir %s keeps being replaced", path);
		return -EBUSY;
	}
	d->spill_lock = fd;
	sweep(d, fd);
	return 0;
}

void store_spill_close(struct krayd *d)
{
	if (d->spill_lock >= 0)
		close(d->spill_lock);
	d->spill_lock = -1;
}
