/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An open-addressing hash map from object id to a 64-bit value (a pointer or a count):
 * krayd's object table, task table and per-connection reference sets.  Linear probing
 * with backward-shift deletion, so there are no tombstones and lookups stay short.
 */
#ifndef KRAY_COMMON_OIDMAP_H
#define KRAY_COMMON_OIDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct oidmap_slot {
	struct kray_oid key;
	uint64_t val;
	bool used;
};

struct oidmap {
	struct oidmap_slot *slots;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

void oidmap_free(struct oidmap *m);
/* Returns a pointer to key's value, or NULL. */
uint64_t *oidmap_get(const struct oidmap *m, const struct kray_oid *key);
/* Returns a pointer to key's value, inserting it with value 0 if absent (*ret_new says
 * which).  Out of memory is fatal in krayd; in libkray (KRAY_KBUF_SOFT) it returns NULL
 * and leaves the map as it was. */
uint64_t *oidmap_upsert(struct oidmap *m, const struct kray_oid *key, bool *ret_new);
/* Removes key.  Returns whether it was present. */
bool oidmap_del(struct oidmap *m, const struct kray_oid *key);

#define oidmap_for_each(m, s)                                                         \
	for (struct oidmap_slot *s = (m)->slots; s && s < (m)->slots + (m)->cap; s++) \
		if (s->used)

#endif /* KRAY_COMMON_OIDMAP_H */
