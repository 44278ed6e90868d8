// SPDX-License-Identifier: Apache-2.0
/*
 * Writing large objects.  A writer asks for an object (CREATE): krayd makes room, hands it
 * a memfd from the pool of pre-faulted memory (store_mem.c), and the writer maps it,
 * writes it and asks krayd to SEAL it.  krayd seals (F_SEAL_WRITE fails while any
 * writable mapping exists, so a sealed object is immutable; with pool-reuse a write lease
 * proves the same, and readers get a read-only open: store_reuse.c) and publishes it.
 * Readers get a dup of the fd and map it read-only; each view is a pin until the reader
 * drops it.
 * An object arriving from another node is written the same way (store_begin_large()),
 * and a task's large result may take over an object its worker made (store_move()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/store.h"

int store_create_large(struct conn *c, const struct kray_oid *id, uint64_t size, int *ret_fd,
		       bool *ret_filled)
{
	struct krayd *d = c->d;
	struct obj *o;
	bool fresh;
	int fd, r;

	r = store_make_room(d, size);
	if (r)
		return r;
	fd = store_new_memfd(d, size, false, ret_filled);
	if (fd < 0)
		return fd;
	*ret_fd = store_writer_fd(d, fd, size);
	o = *ret_fd >= 0 ? store_create(d, id) : NULL;
	if (!o) {
		r = *ret_fd >= 0 ? -EEXIST : *ret_fd;
		if (*ret_fd >= 0)
			close(*ret_fd);
		*ret_fd = -1;
		close(fd);
		return r;
	}
	o->type = KRAY_WT_FD;
	o->fd = fd;
	o->size = size;
	store_writer_begin(c, o);
	d->st.store_bytes += size;
	(*oidmap_upsert(&c->refs, id, &fresh))++;
	store_ref(o);
	return 0;
}

int store_begin_large(struct conn *c, struct obj *o, uint64_t size)
{
	struct krayd *d = c->d;
	int fd, r;

	if (o->state != OBJ_PENDING || o->writer || o->fd >= 0)
		return -EBUSY;
	r = store_make_room(d, size);
	if (r)
		return r;
	fd = store_new_memfd(d, size, false, NULL);
	if (fd < 0)
		return fd;
	o->type = KRAY_WT_FD;
	o->fd = fd;
	o->size = size;
	store_writer_begin(c, o);
	d->st.store_bytes += size;
	return 0;
}

void store_abort_large(struct krayd *d, struct obj *o)
{
	if (o->state != OBJ_PENDING || o->fd < 0)
		return;
	d->st.store_bytes -= o->size;
	close(o->fd);
	o->fd = -1;
	o->size = 0;
	o->type = KRAY_WT_NIL;
	store_writer_end(d, o);
}

int store_seal_large(struct conn *c, const struct kray_oid *id)
{
	struct krayd *d = c->d;
	struct obj *o = store_get(d, id);
	struct stat st;
	char msg[128];
	int r;

	if (!o || o->writer != c || o->state != OBJ_PENDING)
		return -ENOENT;
	store_writer_end(d, o);
	r = store_seal_reuse(d, o);
	if (r > 0)
		r = store_seal_fd(o->fd, o->lazy && store_lazy_in_place(o->lazy));
	if (r || fstat(o->fd, &st) || (uint64_t)st.st_size < o->size) {
		snprintf(msg, sizeof(msg), "object could not be sealed: %s",
			 errno == EBUSY ? "its writer still maps it writable" : strerror(errno));
		d->st.store_bytes -= o->size;
		store_free_mem(d, o);
		o->type = KRAY_WT_NIL;
		store_seal_error(d, o, KRAY_WE_INTERNAL, msg, strlen(msg));
		return 0;
	}
	store_lru_add(d, o);
	ext_obj_published(d, o); /* before the seal wakes anyone */
	struct wire_value v = { .type = KRAY_WT_FD, .scalar = o->size };

	store_seal(d, o, &v);
	return 0;
}

int store_move(struct krayd *d, struct obj *dst, struct obj *src)
{
	if (src->type != KRAY_WT_FD || src->state != OBJ_READY || src->pins)
		return -EINVAL;
	if (src->spilled) {
		int r = store_restore(d, src);

		if (r)
			return r;
	}
	/* Take src's memory and the refs it contains; src stays, empty, until its
	 * references go. */
	ext_obj_withdraw(d, src, false);
	if (!dst->ncontained) {
		dst->contained = src->contained;
		dst->ncontained = src->ncontained;
		src->contained = NULL;
		src->ncontained = 0;
	}
	dst->type = KRAY_WT_FD;
	dst->fd = src->fd;
	dst->mem = src->mem;
	dst->size = src->size;
	store_lru_del(d, src);
	src->fd = src->mem = -1;
	src->size = 0;
	src->type = KRAY_WT_NIL;
	store_lru_add(d, dst);
	ext_obj_published(d, dst);
	struct wire_value v = { .type = KRAY_WT_FD, .scalar = dst->size };

	store_seal(d, dst, &v);
	return 0;
}
