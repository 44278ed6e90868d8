/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading kray's pinned BPF maps (include/uapi/kray_bpf.h) with the bpf(2) system call
 * alone, for `kray top` and the tests: they need a few commands, not libbpf (krayd, which
 * loads programs, links libbpf), and removing the pins of krayds that are gone (krayd at
 * start, the tests after killing one).  Each returns 0 or -errno, like the rest of kray.
 */
#ifndef KRAY_COMMON_BPFMAP_H
#define KRAY_COMMON_BPFMAP_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int kbm_sys(int cmd, union bpf_attr *a)
{
	long r = syscall(__NR_bpf, cmd, a, sizeof(*a));

	return r < 0 ? -errno : (int)r;
}

/* Opens the map pinned at path (O_CLOEXEC is implied by the kernel).  Returns an fd. */
static inline int kbm_open(const char *path)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.pathname = (uint64_t)(uintptr_t)path;
	a.file_flags = BPF_F_RDONLY;
	return kbm_sys(BPF_OBJ_GET, &a);
}

static inline int kbm_lookup(int fd, const void *key, void *val)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(uintptr_t)key;
	a.value = (uint64_t)(uintptr_t)val;
	return kbm_sys(BPF_MAP_LOOKUP_ELEM, &a);
}

/* The key after key (key NULL: the first).  -ENOENT past the last. */
static inline int kbm_next(int fd, const void *key, void *ret_next)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(uintptr_t)key;
	a.next_key = (uint64_t)(uintptr_t)ret_next;
	return kbm_sys(BPF_MAP_GET_NEXT_KEY, &a);
}

static inline int kbm_info(int fd, struct bpf_map_info *ret_info)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	memset(ret_info, 0, sizeof(*ret_info));
	a.info.bpf_fd = (uint32_t)fd;
	a.info.info_len = sizeof(*ret_info);
	a.info.info = (uint64_t)(uintptr_t)ret_info;
	return kbm_sys(BPF_OBJ_GET_INFO_BY_FD, &a);
}

/*
 * Removes the pin directories under root (KRAY_BPF_PIN_ROOT) of krayds that are gone: a
 * krayd's maps stay pinned after it is SIGKILLed, but its programs go with it, so a
 * directory none of whose maps a loaded program uses is stale (and an empty one too: the
 * caller holds the root's flock, which krayd holds from mkdir to its first pins, so no
 * directory is half made; a krayd whose metrics load in the background makes its
 * directory again if it was taken meanwhile).  Needs CAP_SYS_ADMIN to see the programs;
 * without it nothing is removed.  Returns how many directories it removed, or -errno.
 */
#define KBM_MAX_MAP_IDS 4096

#define KBM_LOCK_WAIT_MS 5000

/* Locks root (flock on the directory) against krayds setting up or sweeping; returns
 * the fd to close, or -errno: -ETIMEDOUT when another holder kept it for wait_ms.  It is
 * held for a sweep and a few pins; a holder stopped or stuck must not stall every krayd
 * that starts after it (BPF is off in those). */
static inline int kbm_lock_wait(const char *root, int wait_ms)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB); waited++) {
		r = -errno;
		if ((r != -EWOULDBLOCK && r != -EINTR) || waited >= wait_ms) {
			close(fd);
			return r == -EWOULDBLOCK || r == -EINTR ? -ETIMEDOUT : r;
		}
		usleep(1000);
	}
	return fd;
}

static inline int kbm_lock(const char *root)
{
	return kbm_lock_wait(root, KBM_LOCK_WAIT_MS);
}

static inline int kbm_live_map_ids(uint32_t *ids, unsigned max, unsigned *ret_n)
{
	union bpf_attr a;
	uint32_t id = 0;
	unsigned n = 0;
	int r;

	for (;;) {
		uint32_t maps[64];
		struct bpf_prog_info info;
		int fd;

		memset(&a, 0, sizeof(a));
		a.start_id = id;
		r = kbm_sys(BPF_PROG_GET_NEXT_ID, &a);
		if (r == -ENOENT)
			break;
		if (r)
			return r;
		id = a.next_id;
		memset(&a, 0, sizeof(a));
		a.prog_id = id;
		fd = kbm_sys(BPF_PROG_GET_FD_BY_ID, &a);
		if (fd == -ENOENT)
			continue; /* unloaded meanwhile */
		if (fd < 0)
			return fd;
		memset(&info, 0, sizeof(info));
		info.nr_map_ids = 64;
		info.map_ids = (uint64_t)(uintptr_t)maps;
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = (uint32_t)fd;
		a.info.info_len = sizeof(info);
		a.info.info = (uint64_t)(uintptr_t)&info;
		r = kbm_sys(BPF_OBJ_GET_INFO_BY_FD, &a);
		close(fd);
		if (r)
			return r;
		for (unsigned i = 0; i < info.nr_map_ids && i < 64 && n < max; i++)
			ids[n++] = maps[i];
	}
	*ret_n = n;
	return 0;
}

/* Whether a map pinned in dir is used by a loaded program (live: their ids); true when
 * it cannot tell. */
static inline bool kbm_dir_used(const char *dir, const uint32_t *live, unsigned nlive)
{
	DIR *sub = opendir(dir);
	bool used = false;

	if (!sub)
		return errno != ENOENT;
	for (struct dirent *f; !used && (f = readdir(sub));) {
		struct bpf_map_info info;
		char entry[768];
		int fd;

		if (f->d_name[0] == '.')
			continue;
		snprintf(entry, sizeof(entry), "%s/%s", dir, f->d_name);
		fd = kbm_open(entry);
		if (fd < 0) {
			used = fd != -ENOENT && fd != -EINVAL; /* EINVAL: a program pin */
			continue;
		}
		if (kbm_info(fd, &info))
			used = true; /* cannot tell: keep it */
		for (unsigned i = 0; !used && i < nlive; i++)
			used = live[i] == info.id;
		close(fd);
	}
	closedir(sub);
	return used;
}

static inline int kbm_sweep(const char *root)
{
	static uint32_t live[KBM_MAX_MAP_IDS];
	unsigned nlive = 0;
	char path[512];
	struct dirent *e;
	int removed = 0, r;
	DIR *dir;

	r = kbm_live_map_ids(live, KBM_MAX_MAP_IDS, &nlive);
	if (r)
		return r;
	dir = opendir(root);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(dir))) {
		DIR *sub;
		bool used;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
		used = kbm_dir_used(path, live, nlive);
		if (used)
			continue;
		sub = opendir(path);
		if (!sub)
			continue;
		for (struct dirent *f; (f = readdir(sub));) {
			char entry[768];

			if (f->d_name[0] == '.')
				continue;
			snprintf(entry, sizeof(entry), "%s/%s", path, f->d_name);
			unlink(entry);
		}
		closedir(sub);
		removed += !rmdir(path);
	}
	closedir(dir);
	return removed;
}

/* The value below which fraction permille of a log2-microsecond histogram lies: the upper
 * bound of the slot that holds it, in microseconds (0: empty). */
static inline uint64_t kbm_hist_pct(const __u64 *slot, unsigned nslots, unsigned permille)
{
	uint64_t total = 0, seen = 0;

	for (unsigned i = 0; i < nslots; i++)
		total += slot[i];
	if (!total)
		return 0;
	for (unsigned i = 0; i < nslots; i++) {
		seen += slot[i];
		if (seen * 1000 >= total * permille)
			return 2ull << i;
	}
	return 2ull << (nslots - 1);
}

#endif
