// SPDX-License-Identifier: Apache-2.0
/* Object-id hash map: see oidmap.h. */
#include "oidmap.h"

#include <stdlib.h>

void oidmap_free(struct oidmap *m)
{
	free(m->slots);
	*m = (struct oidmap){ 0 };
}

static size_t slot_of(const struct oidmap *m, const struct kray_oid *key)
{
	return oid_hash(key) & (m->cap - 1);
}

uint64_t *oidmap_get(const struct oidmap *m, const struct kray_oid *key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
		struct oidmap_slot *s = &m->slots[i];

		if (!s->used)
			return NULL;
		if (oid_eq(&s->key, key))
			return &s->val;
	}
}

static bool grow(struct oidmap *m)
{
	struct oidmap old = *m;

	m->cap = old.cap ? old.cap * 2 : 64;
	m->n = 0;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (!m->slots) {
#ifdef KRAY_KBUF_SOFT /* libkray: the caller gets NULL, the map is unchanged */
		*m = old;
		return false;
#else
		abort();
#endif
	}
	oidmap_for_each (&old, s) {
		bool fresh;

		*oidmap_upsert(m, &s->key, &fresh) = s->val;
	}
	free(old.slots);
	return true;
}

uint64_t *oidmap_upsert(struct oidmap *m, const struct kray_oid *key, bool *ret_new)
{
	uint64_t *v = oidmap_get(m, key);

	if (v) {
		*ret_new = false;
		return v;
	}
	if ((m->n + 1) * 4 > m->cap * 3 && !grow(m))
		return NULL;
	size_t i = slot_of(m, key);

	while (m->slots[i].used)
		i = (i + 1) & (m->cap - 1);
	m->slots[i] = (struct oidmap_slot){ .key = *key, .val = 0, .used = true };
	m->n++;
	*ret_new = true;
	return &m->slots[i].val;
}

bool oidmap_del(struct oidmap *m, const struct kray_oid *key)
{
	size_t mask = m->cap - 1, i;

	if (!m->cap)
		return false;
	for (i = slot_of(m, key);; i = (i + 1) & mask) {
		if (!m->slots[i].used)
			return false;
		if (oid_eq(&m->slots[i].key, key))
			break;
	}
	/* Backward shift: pull later entries of the run into the hole when their home slot
	 * does not lie cyclically between the hole and their position. */
	for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
		if (!m->slots[j].used)
			break;
		size_t home = slot_of(m, &m->slots[j].key);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].used = false;
	m->n--;
	return true;
}
