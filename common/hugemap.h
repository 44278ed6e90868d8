/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mapping large objects on 2 MiB boundaries.  A shmem memfd's pages are huge (shmem
 * transparent huge pages, or hugetlb) only if the mapping's address is aligned like its
 * offset: otherwise every 2 MiB page is mapped in 512 pieces, one fault each.  So a large
 * mapping reserves len + 4 MiB of address space (PROT_NONE), maps the memfd over it at the
 * first address aligned like the offset (MAP_FIXED) and gives back the rest; then
 * MADV_HUGEPAGE asks for huge pages where shmem_enabled is "advise".  Used by krayd (the
 * pool, and node links receiving an object chunk by chunk) and libkray (writers and
 * readers).  Header-only: both link it without a library.
 */
#ifndef KRAY_HUGEMAP_H
#define KRAY_HUGEMAP_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define KRAY_HUGE_PAGE (2ul << 20)

/*
 * Maps len bytes of fd from offset off (a multiple of the page size; MAP_SHARED, prot)
 * like mmap(NULL, ...), at an address congruent to off modulo 2 MiB when len is at least
 * 2 MiB, so that huge pages of the file map whole; with huge, also madvise(MADV_HUGEPAGE)
 * (where the kernel lacks it the mapping works as before).  Returns the address or
 * MAP_FAILED (errno set).  The caller unmaps (addr, len) as usual.
 */
static inline void *kray_map_huge_at(int fd, off_t off, size_t len, int prot, int flags, bool huge)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), rlen = len + 2 * KRAY_HUGE_PAGE, tail;
	char *r, *a;
	void *p;

	if (len < KRAY_HUGE_PAGE)
		return mmap(NULL, len, prot, MAP_SHARED | flags, fd, off);
	r = mmap(NULL, rlen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return MAP_FAILED;
	a = (char *)(((uintptr_t)r + KRAY_HUGE_PAGE - 1) & ~(uintptr_t)(KRAY_HUGE_PAGE - 1));
	a += (uint64_t)off & (KRAY_HUGE_PAGE - 1);
	p = mmap(a, len, prot, MAP_SHARED | MAP_FIXED | (flags & ~MAP_POPULATE), fd, off);
	if (p == MAP_FAILED) {
		int e = errno;

		munmap(r, rlen);
		errno = e;
		return MAP_FAILED;
	}
	if (a > r)
		munmap(r, (size_t)(a - r));
	tail = (len + pg - 1) & ~(pg - 1);
	if (a + tail < r + rlen)
		munmap(a + tail, (size_t)(r + rlen - (a + tail)));
#ifdef MADV_HUGEPAGE
	if (huge)
		madvise(a, len, MADV_HUGEPAGE);
#endif
	if (flags & MAP_POPULATE)
		madvise(a, len,
			(prot & PROT_WRITE) ? 23 /* MADV_POPULATE_WRITE */ :
					      22 /* MADV_POPULATE_READ */);
	return a;
}

/* The same from offset 0. */
static inline void *kray_map_huge(int fd, size_t len, int prot, int flags, bool huge)
{
	return kray_map_huge_at(fd, 0, len, prot, flags, huge);
}

#endif
