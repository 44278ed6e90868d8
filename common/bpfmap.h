/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading kray's pinned BPF maps (include/uapi/kray_bpf.h) with the bpf(2) system call
 * alone, for `kray top` and the tests: they need four commands, not libbpf (krayd, which
 * loads programs, links libbpf).  Each returns 0 or -errno, like the rest of kray.
 */
#ifndef KRAY_COMMON_BPFMAP_H
#define KRAY_COMMON_BPFMAP_H

#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
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
