/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A cache of freed blocks of one size, for one thread: krayd's loop takes the structs it
 * makes and frees for every task (struct task, struct obj, struct dep) from it.  A driver
 * that pipelines sends a thousand submits at once, far more than glibc's per-thread cache
 * holds (7 blocks a size), so each of them went to malloc's slow path and back: about a
 * sixth of krayd's CPU per task.  Blocks are plain heap blocks: free() of one is fine,
 * and freelist_put() takes any block of the list's size, however it was allocated.
 * Under AddressSanitizer the cache keeps nothing, so a use after free is still caught.
 */
#ifndef KRAY_COMMON_FREELIST_H
#define KRAY_COMMON_FREELIST_H

#include <stdlib.h>
#include <string.h>

#define FREELIST_MAX 4096 /* blocks kept at most; more go back to malloc */

struct freelist {
	void *head; /* each kept block starts with the pointer to the next */
	unsigned n;
};

#if defined(__SANITIZE_ADDRESS__)
#define FREELIST_KEEPS 0
#else
#define FREELIST_KEEPS 1
#endif

/* A zeroed block of size bytes (at least a pointer's), or NULL as calloc() would. */
static inline void *freelist_get(struct freelist *f, size_t size)
{
	void *p = f->head;

	if (!p)
		return calloc(1, size);
	f->head = *(void **)p;
	f->n--;
	memset(p, 0, size);
	return p;
}

/* Frees p (NULL or a block of the list's size) into the list. */
static inline void freelist_put(struct freelist *f, void *p)
{
	if (!p)
		return;
	if (!FREELIST_KEEPS || f->n >= FREELIST_MAX) {
		free(p);
		return;
	}
	*(void **)p = f->head;
	f->head = p;
	f->n++;
}

/* Frees every block kept. */
static inline void freelist_drain(struct freelist *f)
{
	while (f->head) {
		void *next = *(void **)f->head;

		free(f->head);
		f->head = next;
	}
	f->n = 0;
}

#endif /* KRAY_COMMON_FREELIST_H */
