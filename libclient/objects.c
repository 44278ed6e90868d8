// SPDX-License-Identifier: Apache-2.0
/*
 * Objects on the client side: the memory behind kray_values, read-only views of large
 * objects, the small values this process already has, and creating large objects.
 *
 * A large object arrives as a sealed memfd.  It is checked (all four seals, the size
 * krayd announced) and mapped read-only once per process: later gets of the same object,
 * here or by another value, share the mapping.  When the last value using a view is
 * cleared, it is unmapped and krayd is told (UNPIN), so the object may be freed or spilled.
 *
 * Small values this process put or got are kept (they are immutable) until it releases
 * its reference, so getting them again needs no round trip: in Ray, small objects live in
 * their owner's memory for the same reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "client.h"
#include "../common/hugemap.h"

#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#define FUTURE_SEALS (F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)
#define POPULATE_MAX (4u << 20)

static const char nomem_why[] = "out of memory";

static const struct kray_oid *oid(const kray_ref *r)
{
	return (const struct kray_oid *)r;
}

static struct kray_mem *mem_new(uint8_t type, uint64_t scalar, const void *data, size_t len)
{
	struct kray_mem *m = malloc(sizeof(*m) + len + 1);

	if (!m)
		return NULL;
	*m = (struct kray_mem){
		.kind = MEM_HEAP, .refs = 1, .len = len, .type = type, .scalar = scalar
	};
	if (len)
		memcpy(m->data, data, len);
	m->data[len] = 0; /* error text (and text bytes) can be used as a C string */
	return m;
}

static int mem_set_nested(struct kray_mem *m, const struct kray_oid *refs, size_t n)
{
	if (!n)
		return 0;
	m->nested = malloc(n * sizeof(*m->nested));
	if (!m->nested)
		return -ENOMEM;
	memcpy(m->nested, refs, n * sizeof(*m->nested));
	m->nnested = n;
	return 0;
}

/* What a value becomes when its memory cannot be had: an error that owns nothing (no
 * priv_, so kray_value_clear() frees nothing). */
static void nomem_value(kray_value *v)
{
	static const char msg[] = "out of memory in libkray";

	*v = (kray_value){
		.type = KRAY_ERROR, .err = KRAY_ERR_INTERNAL, .data = msg, .len = sizeof(msg) - 1
	};
}

static void mem_put(struct kray_mem *m)
{
	if (--m->refs)
		return;
	free(m->nested);
	free(m);
}

static void value_from_mem(struct kray_mem *m, kray_value *v)
{
	*v = (kray_value){
		.type = (enum kray_type)m->type, .priv_ = m, .refs = m->nested, .nrefs = m->nnested
	};
	switch (m->type) {
	case KRAY_WT_INT64:
		memcpy(&v->i, &m->scalar, sizeof(v->i));
		break;
	case KRAY_WT_F64:
		memcpy(&v->f, &m->scalar, sizeof(v->f));
		break;
	case KRAY_WT_BYTES:
	case KRAY_WT_ERROR:
		v->data = m->data;
		v->len = m->len;
		v->err = (enum kray_errkind)(m->scalar & 0xff);
		break;
	}
}

int kc_put_unpin(struct kray *k, const kray_ref *id)
{
	struct kray_msg_refs m = { .n = 1 };
	size_t off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_UNPIN, 0, WIRE_FIXED(m),
				     WIRE_RAW(id, sizeof(*id)));

	return kc_end(k, off);
}

/* A value as the wire carries it (a call argument, an inline put). */
void kc_put_value(struct kbuf *b, const kray_value *v, const struct kray_oid *refs, uint16_t nrefs)
{
	uint64_t scalar = 0;
	uint8_t type = KRAY_WT_NIL;
	const void *data = NULL;
	uint32_t len = 0;

	switch (v->type) {
	case KRAY_INT64:
		memcpy(&scalar, &v->i, sizeof(scalar));
		type = KRAY_WT_INT64;
		break;
	case KRAY_F64:
		memcpy(&scalar, &v->f, sizeof(scalar));
		type = KRAY_WT_F64;
		break;
	case KRAY_BYTES:
		type = KRAY_WT_BYTES;
		data = v->data;
		len = (uint32_t)v->len;
		break;
	case KRAY_REF:
	case KRAY_ACTOR:
		type = v->type == KRAY_REF ? KRAY_WT_REF : KRAY_WT_ACTOR;
		data = &v->ref;
		len = sizeof(v->ref);
		break;
	default:
		break;
	}
	wire_put_value_refs(b, type, 0, scalar, data, len, refs, nrefs);
}

int kc_put_inline(struct kray *k, const kray_ref *id, const kray_value *v, const kray_ref *refs,
		  uint16_t nrefs)
{
	struct kray_msg_put m;
	size_t off;

	memcpy(&m.oid, id, sizeof(m.oid));
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_PUT, 0, WIRE_FIXED(m));
	kc_put_value(&k->out, v, (const struct kray_oid *)refs, nrefs);
	if (kc_end(k, off))
		return -ENOMEM;
	if (!nrefs)
		kc_cache_put(k, id, v); /* a cache: without memory, it is not kept */
	return 0;
}

static void view_put(struct view *vw)
{
	struct kray *k = vw->k;

	if (--vw->refs)
		return;
	munmap(vw->addr, vw->maplen);
	if (k) {
		oidmap_del(&k->views, oid(&vw->id));
		if (!k->broken) {
			kc_put_unpin(k, &vw->id);
			/* A worker's unpins go with its results; a driver's go now, so krayd
			 * can free or spill the object. */
			if (!k->ws && !k->nonblock)
				kc_flush(k);
			else if (!k->ws)
				kc_flush_some(k);
		}
	}
	free(vw->nested);
	free(vw);
}

KRAY_EXPORT void kray_value_clear(kray_value *v)
{
	uint32_t *kind;

	if (!v)
		return;
	kind = v->priv_;
	if (kind && *kind == MEM_HEAP)
		mem_put(v->priv_);
	else if (kind && *kind == MEM_VIEW)
		view_put(v->priv_);
	*v = (kray_value){ .type = KRAY_NIL };
}

int kc_mem_value(uint8_t type, uint64_t scalar, const void *data, size_t len, kray_value *ret)
{
	struct kray_mem *m = mem_new(type, scalar, data, len);

	if (!m) {
		*ret = (kray_value){ .type = KRAY_NIL };
		return -ENOMEM;
	}
	value_from_mem(m, ret);
	return 0;
}

int kc_mem_value_refs(uint8_t type, const void *data, size_t len, const kray_ref *refs,
		      size_t nrefs, kray_value *ret)
{
	struct kray_mem *m = mem_new(type, 0, data, len);

	if (!m || mem_set_nested(m, (const struct kray_oid *)refs, nrefs)) {
		free(m);
		*ret = (kray_value){ .type = KRAY_NIL };
		return -ENOMEM;
	}
	value_from_mem(m, ret);
	return 0;
}

void kc_view_value(struct view *vw, kray_value *v)
{
	vw->refs++;
	*v = (kray_value){ .type = KRAY_BYTES,
			   .data = vw->addr,
			   .len = vw->size,
			   .priv_ = vw,
			   .refs = vw->nested,
			   .nrefs = vw->nnested };
}

/* A large object's view learns the refs it contains (the same in every value of it). */
static int view_set_nested(struct view *vw, const struct wire_value *w)
{
	if (!w->nrefs || vw->nnested)
		return 0;
	vw->nested = malloc(w->nrefs * sizeof(*vw->nested));
	if (!vw->nested)
		return -ENOMEM;
	memcpy(vw->nested, w->refs, w->nrefs * sizeof(*vw->nested));
	vw->nnested = w->nrefs;
	return 0;
}

static void error_value(kray_value *v, const char *fmt, const kray_ref *id, const char *why)
{
	char msg[256];
	struct kray_mem *m;

	snprintf(msg, sizeof(msg), fmt, id->node, id->owner, id->seq, id->index, why);
	m = mem_new(KRAY_WT_ERROR, KRAY_WE_INTERNAL, msg, strlen(msg));
	if (m)
		value_from_mem(m, v);
	else
		nomem_value(v);
}

struct view *kc_map_fd(struct kray *k, const kray_ref *id, int fd, uint64_t size, bool lazy,
		       const char **ret_why)
{
	struct stat st;
	struct statfs fs;
	int seals = fcntl(fd, F_GET_SEALS);
	struct view *vw;
	size_t maplen;
	void *p;

	/* An object that lazy readers still map in MINOR mode is sealed against writes from
	 * now on (F_SEAL_FUTURE_WRITE), and F_SEAL_WRITE and F_SEAL_SEAL wait for their
	 * mappings to go (krayd adds them then): FUTURE_WRITE|SHRINK|GROW with the seals still
	 * open is krayd's seal in progress.  A memfd whose seals are closed without
	 * F_SEAL_WRITE is refused.  A read-only open of a memfd is an object whose memory
	 * krayd reuses once nobody holds it (pool-reuse): nothing can write, map it
	 * writable, resize or seal it through this descriptor. */
	if (!lazy &&
	    (seals < 0 || ((seals & ALL_SEALS) != ALL_SEALS &&
			   ((seals & FUTURE_SEALS) != FUTURE_SEALS || (seals & F_SEAL_SEAL)))) &&
	    (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY) {
		*ret_why = "its memfd is not sealed";
		return NULL;
	}
	/* Exactly size bytes, or for a hugetlb memfd size rounded up to whole huge pages. */
	if (fstat(fd, &st) || fstatfs(fd, &fs)) {
		*ret_why = strerror(errno);
		return NULL;
	}
	maplen = size;
	if (fs.f_type == HUGETLBFS_MAGIC && st.st_blksize > 0)
		maplen = (size + (size_t)st.st_blksize - 1) / (size_t)st.st_blksize *
			 (size_t)st.st_blksize;
	if ((uint64_t)st.st_size != maplen) {
		*ret_why = "its memfd's size does not match";
		return NULL;
	}
	/* Small objects are mapped in one pass; large ones fault their pages in as they are
	 * read, so a get costs the same whatever the size (a 1 GiB populate is ~40 ms).
	 * Large ones are mapped on a 2 MiB boundary with MADV_HUGEPAGE, so that an object in
	 * huge pages costs a fault per 2 MiB, not per 4 KiB (common/hugemap.h). */
	p = maplen ? kray_map_huge(fd, maplen, PROT_READ,
				   !lazy && maplen <= POPULATE_MAX ? MAP_POPULATE : 0, true) :
		     NULL;
	if (p == MAP_FAILED) {
		*ret_why = strerror(errno);
		return NULL;
	}
	/* A lazy one must not be touched before it is registered: a page faulted in without
	 * the userfaultfd would be a page of zeros in every reader's object. */
	if (lazy) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE), reglen = (maplen + pg - 1) / pg * pg;
		int r = kc_lazy_register(k, p, reglen);

		/* The object's own memfd (MINOR mode) that became whole after krayd answered:
		 * sealed against writes now, so the mapping may not be written (no VM_MAYWRITE)
		 * and a userfaultfd refuses it.  It needs none: every page is there. */
		if (r == -EPERM && (seals = fcntl(fd, F_GET_SEALS)) >= 0 &&
		    (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
			r = 0;
		else if (!r)
			r = kc_lazy_announce(k, id, p, reglen);
		if (r) {
			munmap(p, maplen);
			*ret_why = r == -EBADF ?
					   "it came lazily to a process without a userfaultfd" :
					   strerror(-r);
			return NULL;
		}
	}
	bool fresh;
	uint64_t *slot = oidmap_upsert(&k->views, oid(id), &fresh);

	vw = slot ? calloc(1, sizeof(*vw)) : NULL;
	if (!vw) {
		if (slot)
			oidmap_del(&k->views, oid(id));
		if (p)
			munmap(p, maplen);
		*ret_why = nomem_why;
		return NULL;
	}
	*vw = (struct view){ .kind = MEM_VIEW,
			     .k = k,
			     .id = *id,
			     .addr = p,
			     .size = size,
			     .maplen = maplen,
			     .fd = -1 };
	*slot = (uint64_t)(uintptr_t)vw;
	return vw;
}

int kc_take_value(struct kray *k, const struct wire_value *w, int **fds, kray_value *ret)
{
	struct kray_mem *m;
	uint64_t *slot;
	kray_ref id;
	const char *why = "no descriptor came with it";
	int fd;

	if ((w->type == KRAY_WT_INT64 || w->type == KRAY_WT_F64 || w->type == KRAY_WT_NIL) &&
	    !w->nrefs) {
		/* A scalar lives in the value itself: nothing to allocate or free. */
		*ret = (kray_value){ .type = (enum kray_type)w->type };
		if (w->type == KRAY_WT_INT64)
			memcpy(&ret->i, &w->scalar, sizeof(ret->i));
		else if (w->type == KRAY_WT_F64)
			memcpy(&ret->f, &w->scalar, sizeof(ret->f));
		return 0;
	}
	if (w->type != KRAY_WT_FD) {
		m = mem_new(w->type, w->type == KRAY_WT_ERROR ? w->err : w->scalar, w->data,
			    w->len);
		if (!m || mem_set_nested(m, w->refs, w->nrefs)) {
			free(m);
			nomem_value(ret);
			return -ENOMEM;
		}
		value_from_mem(m, ret);
		return 0;
	}
	memcpy(&id, w->data, sizeof(id));
	fd = *fds ? **fds : -1;
	if (*fds) {
		**fds = -1; /* taken: closed here, not by kc_consume() */
		(*fds)++;
	}
	slot = oidmap_get(&k->views, oid(&id));
	if (slot) {
		/* Mapped already: krayd pinned it once more; one pin per view is enough. */
		struct view *vw = (struct view *)(uintptr_t)*slot;

		kc_put_unpin(k, &id);
		if (fd >= 0)
			close(fd);
		if (view_set_nested(vw, w)) {
			nomem_value(ret);
			return -ENOMEM;
		}
		kc_view_value(vw, ret);
		return 0;
	}
	if (fd >= 0) {
		struct view *vw = kc_map_fd(k, &id, fd, w->scalar, w->err == KRAY_WV_LAZY, &why);

		close(fd);
		if (vw && view_set_nested(vw, w)) {
			vw->refs++;
			view_put(vw); /* unmapped: no value holds it */
			nomem_value(ret);
			return -ENOMEM;
		}
		if (vw) {
			kc_view_value(vw, ret);
			return 0;
		}
	}
	error_value(ret, "object %u.%u.%u.%u cannot be mapped: %s", &id, why);
	return ret->priv_ && why != nomem_why ? 0 : -ENOMEM;
}

bool kc_cached(struct kray *k, const kray_ref *id, kray_value *ret)
{
	struct kray_mem *m = kc_cache_peek(k, id);

	if (m) {
		value_from_mem(m, ret);
		if (m->type == KRAY_WT_BYTES || m->nnested)
			m->refs++;
		else
			ret->priv_ = NULL; /* a scalar: the value holds it all */
		return true;
	}
	/* Not views: a view may outlive the ref (released), and a get must then fail.  A get
	 * of a mapped object asks krayd, and kc_take_value() reuses the mapping. */
	return false;
}

struct kray_mem *kc_cache_peek(struct kray *k, const kray_ref *id)
{
	uint64_t *slot = k->cache.n ? oidmap_get(&k->cache, oid(id)) : NULL;

	return slot ? (struct kray_mem *)(uintptr_t)*slot : NULL;
}

void kc_cache_put(struct kray *k, const kray_ref *id, const kray_value *v)
{
	struct kray_mem *m;
	uint64_t scalar = 0;
	bool fresh;
	uint64_t *slot;

	/* Errors are not kept (a retry may fix them) and views are kept as views. */
	if (v->type == KRAY_ERROR || v->type == KRAY_REF || v->nrefs ||
	    (v->priv_ && *(uint32_t *)v->priv_ == MEM_VIEW))
		return;
	if (v->type == KRAY_INT64)
		memcpy(&scalar, &v->i, sizeof(scalar));
	else if (v->type == KRAY_F64)
		memcpy(&scalar, &v->f, sizeof(scalar));
	/* A cache: without memory the value is simply not kept. */
	slot = oidmap_upsert(&k->cache, oid(id), &fresh);
	if (!slot || !fresh)
		return;
	if (v->priv_ && *(uint32_t *)v->priv_ == MEM_HEAP) {
		m = v->priv_;
		m->refs++;
	} else {
		m = mem_new((uint8_t)v->type, scalar, v->data, v->type == KRAY_BYTES ? v->len : 0);
		if (!m) {
			oidmap_del(&k->cache, oid(id));
			return;
		}
	}
	*slot = (uint64_t)(uintptr_t)m;
}

void kc_cache_drop(struct kray *k, const kray_ref *id)
{
	uint64_t *slot = oidmap_get(&k->cache, oid(id));

	if (!slot)
		return;
	mem_put((struct kray_mem *)(uintptr_t)*slot);
	oidmap_del(&k->cache, oid(id));
}

static void objects_fini(struct kray *k)
{
	oidmap_for_each (&k->cache, s)
		mem_put((struct kray_mem *)(uintptr_t)s->val);
	oidmap_free(&k->cache);
	/* Values still using a view keep their mapping; it is theirs to clear. */
	oidmap_for_each (&k->views, s)
		((struct view *)(uintptr_t)s->val)->k = NULL;
	oidmap_free(&k->views);
	oidmap_for_each (&k->writing, s) {
		struct view *vw = (struct view *)(uintptr_t)s->val;

		if (vw->kind == MEM_VIEW) {
			if (vw->fd >= 0) { /* (not yet let go by kc_seal_refs()) */
				munmap(vw->addr, vw->maplen);
				close(vw->fd);
			}
		} else {
			free(vw->addr);
		}
		free(vw);
	}
	oidmap_free(&k->writing);
}

const struct kc_layer kc_objects_layer = {
	.name = "objects",
	.on_close = objects_fini,
};
