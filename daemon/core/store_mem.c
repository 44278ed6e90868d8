// SPDX-License-Identifier: Apache-2.0
/*
 * Large objects: memfds sealed before anyone but their writer sees them, a capacity, and
 * spilling to disk when the capacity is reached.
 *
 * A writer asks for an object (CREATE): krayd makes room, hands it a memfd from the pool
 * of pre-faulted memory, and the writer maps it, writes it and asks krayd to SEAL it.
 * krayd seals (F_SEAL_WRITE fails while any writable mapping exists, so a sealed object
 * is immutable) and publishes it.  Readers get a dup of the fd and map it read-only;
 * each view is a pin until the reader drops it.
 *
 * Room is made by spilling the least recently created unpinned objects that are still
 * referenced to files under spill_dir (unreferenced objects are freed at once, so there
 * is nothing to evict); a get restores them into a fresh memfd.  Only when nothing can be
 * spilled does a create fail with -ENOSPC.  Spilling and restoring are synchronous file
 * I/O on the loop thread for now.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/log.h"

#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define HUGE_PAGE (2ull << 20)
#define HUGE_MIN (1ull << 20)

static void lru_add(struct krayd *d, struct obj *o)
{
	o->lru_next = NULL;
	o->lru_prev = d->lru_tail;
	if (d->lru_tail)
		d->lru_tail->lru_next = o;
	else
		d->lru_head = o;
	d->lru_tail = o;
}

static void lru_del(struct krayd *d, struct obj *o)
{
	if (o->lru_prev)
		o->lru_prev->lru_next = o->lru_next;
	else if (d->lru_head == o)
		d->lru_head = o->lru_next;
	if (o->lru_next)
		o->lru_next->lru_prev = o->lru_prev;
	else if (d->lru_tail == o)
		d->lru_tail = o->lru_prev;
	o->lru_prev = o->lru_next = NULL;
}

static void spill_path(struct krayd *d, const struct obj *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%08x-%u-%u-%u.obj", d->cfg.spill_dir, o->id.node, o->id.owner,
		 o->id.seq, o->id.index);
}

/* Copies all of in to out (files or memfds).  Returns 0 or -errno. */
static int copy_fd(int out, int in, uint64_t size)
{
	off_t off = 0;

	while ((uint64_t)off < size) {
		ssize_t n = sendfile(out, in, &off, size - (uint64_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && off == 0 && (errno == EINVAL || errno == ENOSYS))
			break; /* a source sendfile cannot read (hugetlbfs): map it instead */
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the source is shorter than it claims */
	}
	if ((uint64_t)off == size)
		return 0;

	struct stat st;
	void *p;
	int r = 0;

	if (fstat(in, &st))
		return -errno;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, in, 0);
	if (p == MAP_FAILED)
		return -errno;
	for (uint64_t done = 0; done < size && !r;) {
		ssize_t n = write(out, (char *)p + done, size - done);

		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			done += (uint64_t)n;
	}
	munmap(p, (size_t)st.st_size);
	return r;
}

/* Writes o to its spill file and frees its memory.  Returns 0 or -errno (the object is
 * then untouched). */
static int spill(struct krayd *d, struct obj *o)
{
	char path[PATH_MAX + 64];
	int fd, r;

	/* A reader that mapped it through /dev/kray holds it: as good as a pin. */
	if (kmod_withdraw(d, o, true))
		return -EBUSY;
	if (mkdir(d->cfg.spill_dir, 0700) && errno != EEXIST) {
		r = -errno;
		goto err_republish;
	}
	spill_path(d, o, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto err_republish;
	}
	r = copy_fd(fd, o->fd, o->size);
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (r) {
		unlink(path);
		goto err_republish;
	}
	lru_del(d, o);
	close(o->fd);
	o->fd = -1;
	o->spilled = true;
	d->st.store_bytes -= o->size;
	d->st.objects_spilled++;
	d->st.bytes_spilled += o->size;
	d->st.spilled_total += o->size;
	log_debug("spilled %u.%u.%u (%llu bytes)", o->id.owner, o->id.seq, o->id.index,
		  (unsigned long long)o->size);
	return 0;

err_republish:
	kmod_publish(d, o);
	return r;
}

/* Spills until size more bytes fit.  Returns 0 or -ENOSPC. */
static int make_room(struct krayd *d, uint64_t size)
{
	struct obj *o = d->lru_head, *next;
	int last = 0;

	if (size > d->cfg.store_size)
		return -ENOSPC;
	for (; o && d->st.store_bytes + size > d->cfg.store_size; o = next) {
		next = o->lru_next;
		if (o->pins || o->state != OBJ_READY)
			continue;
		last = spill(d, o);
		if (last && last != -EBUSY) /* -EBUSY: mapped through /dev/kray */
			log_warn("cannot spill to %s: %s", d->cfg.spill_dir, strerror(-last));
	}
	return d->st.store_bytes + size > d->cfg.store_size ? -ENOSPC : 0;
}

/*
 * A memfd for an object of size bytes.  With `hugepages` set and huge pages reserved
 * (vm.nr_hugepages), objects of 1 MiB or more get a hugetlb memfd, rounded up to whole
 * 2 MiB pages (readers map the whole file; the object's size travels in the frame): 512
 * times fewer page faults, which on our VMs is ten times the write speed.  Otherwise the
 * memfd comes from the pool and has exactly size bytes.  A restore never uses hugetlb
 * (hugetlbfs cannot be written with write(2)).
 */
static int new_memfd(struct krayd *d, uint64_t size, bool restore)
{
	int fd;

	if (d->cfg.hugepages && !restore && size >= HUGE_MIN) {
		fd = memfd_create("kray-object", MFD_HUGETLB | MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (fd >= 0 && !ftruncate(fd, (off_t)((size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1))))
			return fd;
		if (fd >= 0)
			close(fd);
		log_warn_ratelimited("no huge pages for a %llu-byte object (vm.nr_hugepages?): "
				     "using normal pages",
				     (unsigned long long)size);
	}
	fd = pool_take(d->pool, size);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int store_create_large(struct conn *c, const struct kray_oid *id, uint64_t size, int *ret_fd)
{
	struct krayd *d = c->d;
	struct obj *o;
	bool fresh;
	int fd, r;

	r = make_room(d, size);
	if (r)
		return r;
	fd = new_memfd(d, size, false);
	if (fd < 0)
		return fd;
	o = store_create(d, id);
	if (!o) {
		close(fd);
		return -EEXIST;
	}
	o->type = KRAY_WT_FD;
	o->fd = fd;
	o->size = size;
	o->writer = c;
	d->st.store_bytes += size;
	(*oidmap_upsert(&c->refs, id, &fresh))++;
	store_ref(o);
	*ret_fd = fd;
	return 0;
}

int store_begin_large(struct conn *c, struct obj *o, uint64_t size)
{
	struct krayd *d = c->d;
	int fd, r;

	if (o->state != OBJ_PENDING || o->writer || o->fd >= 0)
		return -EBUSY;
	r = make_room(d, size);
	if (r)
		return r;
	fd = new_memfd(d, size, false);
	if (fd < 0)
		return fd;
	o->type = KRAY_WT_FD;
	o->fd = fd;
	o->size = size;
	o->writer = c;
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
	o->writer = NULL;
}

int store_seal_large(struct conn *c, const struct kray_oid *id)
{
	struct krayd *d = c->d;
	struct obj *o = store_get(d, id);
	struct stat st;
	char msg[128];

	if (!o || o->writer != c || o->state != OBJ_PENDING)
		return -ENOENT;
	o->writer = NULL;
	if (fcntl(o->fd, F_ADD_SEALS, ALL_SEALS) || fstat(o->fd, &st) ||
	    (uint64_t)st.st_size < o->size) {
		snprintf(msg, sizeof(msg), "object could not be sealed: %s",
			 errno == EBUSY ? "its writer still maps it writable" : strerror(errno));
		d->st.store_bytes -= o->size;
		close(o->fd);
		o->fd = -1;
		o->type = KRAY_WT_NIL;
		store_seal_error(d, o, KRAY_WE_INTERNAL, msg, strlen(msg));
		return 0;
	}
	lru_add(d, o);
	kmod_publish(d, o); /* before the seal wakes anyone */
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
	/* Take src's memory; src stays, empty, until its references go. */
	kmod_withdraw(d, src, false);
	dst->type = KRAY_WT_FD;
	dst->fd = src->fd;
	dst->size = src->size;
	lru_del(d, src);
	src->fd = -1;
	src->size = 0;
	src->type = KRAY_WT_NIL;
	lru_add(d, dst);
	kmod_publish(d, dst);
	struct wire_value v = { .type = KRAY_WT_FD, .scalar = dst->size };

	store_seal(d, dst, &v);
	return 0;
}

int store_restore(struct krayd *d, struct obj *o)
{
	char path[PATH_MAX + 64];
	int in, fd, r;

	if (!o->spilled)
		return 0;
	r = make_room(d, o->size);
	if (r)
		return r;
	spill_path(d, o, path, sizeof(path));
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	fd = new_memfd(d, o->size, true);
	if (fd < 0) {
		close(in);
		return fd;
	}
	r = copy_fd(fd, in, o->size);
	close(in);
	if (!r && fcntl(fd, F_ADD_SEALS, ALL_SEALS))
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	unlink(path);
	o->fd = fd;
	o->spilled = false;
	lru_add(d, o);
	kmod_publish(d, o);
	d->st.store_bytes += o->size;
	d->st.objects_spilled--;
	d->st.bytes_spilled -= o->size;
	d->st.restored_total += o->size;
	return 0;
}

void store_drop_large(struct krayd *d, struct obj *o)
{
	if (o->fd >= 0) {
		kmod_withdraw(d, o, false); /* out of the table before its memory goes */
		lru_del(d, o);
		close(o->fd);
		d->st.store_bytes -= o->size;
	}
	if (o->spilled) {
		char path[PATH_MAX + 64];

		spill_path(d, o, path, sizeof(path));
		unlink(path);
		d->st.objects_spilled--;
		d->st.bytes_spilled -= o->size;
	}
	if (o->pins)
		d->st.objects_pinned--;
	o->fd = -1;
	o->spilled = false;
}

int store_mem_init(struct krayd *d)
{
	d->st.store_capacity = d->cfg.store_size;
	d->pool = pool_start(d->cfg.pool_size < d->cfg.store_size ? d->cfg.pool_size :
								      d->cfg.store_size);
	return d->pool ? 0 : -ENOMEM;
}

void store_mem_fini(struct krayd *d)
{
	pool_stop(d->pool);
	d->pool = NULL;
	rmdir(d->cfg.spill_dir); /* only if empty: spill files of live objects were unlinked */
}
