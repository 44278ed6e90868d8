// SPDX-License-Identifier: Apache-2.0
/*
 * The memory of large objects: memfds from the pool of pre-faulted memory, a capacity,
 * and spilling to disk when the capacity is reached (writing them is store_large.c's).
 *
 * Room is made by spilling the least recently created unpinned objects that are still
 * referenced to files under spill_dir (unreferenced objects are freed at once, so there
 * is nothing to evict); a get restores them into a fresh memfd.  Only when nothing can be
 * spilled does a create fail with -ENOSPC.
 *
 * With the spill thread (store_io.c, spill-thread = 1, the default) the file I/O is not
 * the loop's: store_make_room() starts spills and says -EAGAIN when those in flight will
 * make the room, and the caller waits for it (store_room_wait(): a create's reply, a
 * restore); a get of a spilled object waits for its restore (store_want()).  An object
 * being spilled stays in memory and usable until its file is written and synced; using it
 * (a pin) gives the spill up.  Without the thread (spill-thread = 0) both are synchronous
 * on the loop, as before.
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
#include "core/conn.h"
#include "core/store.h"
#include "core/log.h"

#define HUGE_PAGE (2ull << 20)
#define HUGE_MIN (1ull << 20)
#define SHMEM_ENABLED "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

void store_lru_add(struct krayd *d, struct obj *o)
{
	o->lru_next = NULL;
	o->lru_prev = d->lru_tail;
	if (d->lru_tail)
		d->lru_tail->lru_next = o;
	else
		d->lru_head = o;
	d->lru_tail = o;
}

void store_lru_del(struct krayd *d, struct obj *o)
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

/* A spill file's name: the object's id and a generation, so that a file an abandoned spill
 * is still writing is never the one a later spill of the same object writes. */
static void spill_path(struct krayd *d, const struct obj *o, uint32_t gen, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%08x-%u-%u-%u-%u.obj", d->cfg.spill_dir, o->id.node, o->id.owner,
		 o->id.seq, o->id.index, gen);
}

/* The object's memory is gone to disk (the file is written and synced). */
static void spilled(struct krayd *d, struct obj *o, uint32_t gen)
{
	store_lru_del(d, o);
	store_free_mem(d, o);
	o->spilled = true;
	o->spill_gen = gen;
	d->st.store_bytes -= o->size;
	d->st.objects_spilled++;
	d->st.bytes_spilled += o->size;
	d->st.spilled_total += o->size;
	log_debug("spilled %u.%u.%u (%llu bytes)", o->id.owner, o->id.seq, o->id.index,
		  (unsigned long long)o->size);
}

/* Writes o to its spill file and frees its memory, on the loop (spill-thread = 0).
 * Returns 0 or -errno (the object is then untouched). */
static int spill_now(struct krayd *d, struct obj *o)
{
	char path[PATH_MAX + 64];
	uint32_t gen = o->spill_gen + 1;
	int fd, r;

	/* A reader that mapped it through /dev/kray holds it: as good as a pin. */
	if (ext_obj_withdraw(d, o, true))
		return -EBUSY;
	if (mkdir(d->cfg.spill_dir, 0700) && errno != EEXIST) {
		r = -errno;
		goto err_republish;
	}
	spill_path(d, o, gen, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto err_republish;
	}
	r = store_io_copy(fd, o->fd, o->size, NULL);
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (r) {
		unlink(path);
		goto err_republish;
	}
	spilled(d, o, gen);
	return 0;

err_republish:
	ext_obj_published(d, o);
	return r;
}

/* Starts writing o to disk on the spill thread: o stays in memory, and usable, until the
 * file is written; d->spilling_bytes counts it as leaving.  Returns 0 or -errno. */
static int spill_start(struct krayd *d, struct obj *o)
{
	char path[PATH_MAX + 64];
	struct sio_job *j;
	int fd;

	if (ext_obj_withdraw(d, o, true))
		return -EBUSY;
	if (mkdir(d->cfg.spill_dir, 0700) && errno != EEXIST) {
		int r = -errno;

		ext_obj_published(d, o);
		return r;
	}
	fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		int r = -errno;

		ext_obj_published(d, o);
		return r;
	}
	spill_path(d, o, o->spill_gen + 1, path, sizeof(path));
	j = store_io_job(SIO_SPILL, fd, o->size, path);
	j->o = o;
	j->gen = o->spill_gen + 1;
	o->spill_gen++;
	o->io = IO_SPILL;
	o->job = j;
	d->spilling_bytes += o->size;
	store_io_submit(d, j);
	return 0;
}

/* Gives up o's spill in flight: o stays in memory; the thread stops and the file goes. */
static void spill_cancel(struct krayd *d, struct obj *o, bool republish)
{
	__atomic_store_n(&o->job->cancel, 1, __ATOMIC_RELAXED);
	o->job->o = NULL;
	o->job = NULL;
	o->io = IO_NONE;
	d->spilling_bytes -= o->size;
	if (republish)
		ext_obj_published(d, o);
}

void store_keep(struct krayd *d, struct obj *o)
{
	if (o->io == IO_SPILL)
		spill_cancel(d, o, true);
}

/* Spills, on the loop, until size more bytes fit.  Returns 0 or -ENOSPC. */
static int make_room_now(struct krayd *d, uint64_t size)
{
	struct obj *o = d->lru_head, *next;
	int last = 0;

	if (size > d->cfg.store_size)
		return -ENOSPC;
	for (; o && d->st.store_bytes + size > d->cfg.store_size; o = next) {
		next = o->lru_next;
		if (o->pins || o->state != OBJ_READY || o->io != IO_NONE)
			continue;
		last = spill_now(d, o);
		if (last && last != -EBUSY) /* -EBUSY: mapped through /dev/kray */
			log_warn("cannot spill to %s: %s", d->cfg.spill_dir, strerror(-last));
	}
	return d->st.store_bytes + size > d->cfg.store_size ? -ENOSPC : 0;
}

int store_make_room(struct krayd *d, uint64_t size)
{
	struct obj *o = d->lru_head, *next;
	uint64_t cap = d->cfg.store_size;
	int r;

	if (!d->sio)
		return make_room_now(d, size);
	if (size > cap)
		return -ENOSPC;
	/* Spills in flight count as gone: more start only for what they do not cover. */
	for (; o && d->st.store_bytes - d->spilling_bytes + size > cap; o = next) {
		next = o->lru_next;
		if (o->pins || o->state != OBJ_READY || o->io != IO_NONE)
			continue;
		r = spill_start(d, o);
		if (r && r != -EBUSY)
			log_warn_ratelimited("cannot spill to %s: %s", d->cfg.spill_dir,
					     strerror(-r));
	}
	if (d->st.store_bytes + size <= cap)
		return 0;
	return d->st.store_bytes - d->spilling_bytes + size <= cap ? -EAGAIN : -ENOSPC;
}

/* Something waiting for room (a create, a restore), in order of arrival. */
struct room_wait {
	struct room_wait *next;
	uint64_t size;
	void (*cb)(struct krayd *d, void *arg, int status);
	void *arg;
};

void store_room_wait(struct krayd *d, uint64_t size,
		     void (*cb)(struct krayd *d, void *arg, int status), void *arg)
{
	struct room_wait *w = calloc(1, sizeof(*w));

	if (!w)
		abort();
	*w = (struct room_wait){ .size = size, .cb = cb, .arg = arg };
	if (d->room_tail)
		d->room_tail->next = w;
	else
		d->room_head = w;
	d->room_tail = w;
}

void store_room_cancel(struct krayd *d, void *arg)
{
	struct room_wait **pp = &d->room_head, *prev = NULL;

	while (*pp) {
		struct room_wait *w = *pp;

		if (w->arg != arg) {
			prev = w;
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (d->room_tail == w)
			d->room_tail = prev;
		free(w);
	}
}

/* A spill ended: the waiters that fit now get their room, in order; one that still waits
 * for spills in flight keeps the others behind it.  After a failed spill, waiters that do
 * not fit fail (as a create on the loop would) rather than start the same spills again. */
static void room_run(struct krayd *d)
{
	while (d->room_head) {
		struct room_wait *w = d->room_head;
		int r;

		if (d->room_err)
			r = d->st.store_bytes + w->size <= d->cfg.store_size ? 0 : -ENOSPC;
		else
			r = store_make_room(d, w->size);
		if (r == -EAGAIN)
			break;
		d->room_head = w->next;
		if (!d->room_head)
			d->room_tail = NULL;
		w->cb(d, w->arg, r);
		free(w);
	}
	if (!d->spilling_bytes)
		d->room_err = 0;
}

/*
 * A memfd for an object of size bytes.  With `hugepages` set and huge pages reserved
 * (vm.nr_hugepages), objects of 1 MiB or more get a hugetlb memfd, rounded up to whole
 * 2 MiB pages (readers map the whole file; the object's size travels in the frame): 512
 * times fewer page faults, which on our VMs is ten times the write speed.  Otherwise the
 * memfd comes from the pool and has exactly size bytes.  A restore never uses hugetlb
 * (hugetlbfs cannot be written with write(2)).
 */
int store_new_memfd(struct krayd *d, uint64_t size, bool restore, bool *ret_filled)
{
	int fd;

	if (ret_filled)
		*ret_filled = false;
	if (d->cfg.hugepages && !restore && size >= HUGE_MIN) {
		uint64_t len = (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
		void *m = MAP_FAILED;

		/* ftruncate() takes no huge page: a shared mapping reserves them for the file
		 * (until it is freed), or fails when vm.nr_hugepages has too few left, and the
		 * writer's mapping would have failed then. */
		fd = memfd_create("kray-object", MFD_HUGETLB | MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (fd >= 0 && !ftruncate(fd, (off_t)len))
			m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			munmap(m, len);
			return fd;
		}
		if (fd >= 0)
			close(fd);
		log_warn_ratelimited("no huge pages for a %llu-byte object (vm.nr_hugepages?): "
				     "using normal pages",
				     (unsigned long long)size);
	}
	fd = pool_take(d->pool, size, !restore && store_reusable(d, size), ret_filled);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

void store_writer_begin(struct conn *c, struct obj *o)
{
	o->writer = c;
	pool_write_begins(c->d->pool, o->size);
}

void store_writer_end(struct krayd *d, struct obj *o)
{
	if (!o->writer)
		return;
	o->writer = NULL;
	pool_write_ends(d->pool);
}

/* o's waiters wake on the next drain (store.c's store_io_drain()), o held until then. */
static void fire_later(struct krayd *d, struct obj *o)
{
	if (d->nio_fire == d->capio_fire) {
		unsigned cap = d->capio_fire ? d->capio_fire * 2 : 16;
		struct obj **n = realloc(d->io_fire, cap * sizeof(*n));

		if (!n)
			abort();
		d->io_fire = n;
		d->capio_fire = cap;
	}
	o->refs++;
	d->io_fire[d->nio_fire++] = o;
}

/* Spilled o is in memory again, in sealed memfd fd. */
static void in_memory(struct krayd *d, struct obj *o, int fd)
{
	o->fd = fd;
	o->spilled = false;
	o->io_err = 0;
	store_lru_add(d, o);
	ext_obj_published(d, o);
	d->st.objects_spilled--;
	d->st.bytes_spilled -= o->size;
}

/* Restored o is in memory again, in memfd fd. */
static void restored(struct krayd *d, struct obj *o, int fd)
{
	store_unlazy(d, o); /* lazy readers (if any) get the rest from its own memfd */
	in_memory(d, o, fd);
	d->st.restored_total += o->size;
}

/* Spilled o is whole in sealed memfd fd (its lazy one, taken; its room counted). */
static void promote(struct krayd *d, struct obj *o, int fd)
{
	char path[PATH_MAX + 64];

	spill_path(d, o, o->spill_gen, path, sizeof(path));
	unlink(path); /* in memory now; a spill again writes a new file */
	in_memory(d, o, fd);
}

/* o's spill file is gone or damaged: o is lost, and each get of it says why from now on. */
static void lose(struct krayd *d, struct obj *o, const char *why)
{
	char path[PATH_MAX + 64], msg[320];
	int n;

	store_unlazy(d, o);

	spill_path(d, o, o->spill_gen, path, sizeof(path));
	unlink(path);
	n = snprintf(msg, sizeof(msg), "object %u.%u.%u.%u (%llu bytes) is lost: %s", o->id.node,
		     o->id.owner, o->id.seq, o->id.index, (unsigned long long)o->size, why);
	log_warn("%s", msg);
	d->st.objects_spilled--;
	d->st.bytes_spilled -= o->size;
	o->spilled = false;
	o->size = 0;
	o->type = KRAY_WT_ERROR;
	o->err = KRAY_WE_OBJECT_LOST;
	o->scalar = 0;
	free(o->data);
	o->data = strdup(msg);
	if (!o->data)
		abort();
	o->len = (uint32_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1);
	d->st.object_bytes += o->len;
}

void store_unlazy(struct krayd *d, struct obj *o)
{
	if (!o->lazy)
		return;
	d->st.store_bytes -= store_lazy_room(o->lazy); /* (o->size is 0 for an aborted copy) */
	store_lazy_detach(d, o->lazy);
	o->lazy = NULL;
}

void store_lazy_sealed(struct krayd *d, struct obj *o)
{
	char why[192];
	int r;

	if (!o->lazy)
		return;
	if (o->type == KRAY_WT_FD && o->fd >= 0 && o->size != store_lazy_size(o->lazy)) {
		/* (made again from lineage, and not the same size this time) */
		store_lazy_net_fail(d, o->lazy, "it was made again with another size");
	} else if (o->type == KRAY_WT_FD && o->fd >= 0) {
		r = store_lazy_net_fill(d, o->lazy, o->fd);
		if (r) {
			log_warn("object %u.%u.%u.%u: filling its lazy readers' copy: %s",
				 o->id.node, o->id.owner, o->id.seq, o->id.index, strerror(-r));
			store_lazy_net_fail(d, o->lazy,
					    "its lazily mapped copy could not be filled");
		}
	} else {
		snprintf(why, sizeof(why), "%.*s", (int)(o->len < sizeof(why) ? o->len : 0),
			 o->type == KRAY_WT_ERROR && o->data ? (const char *)o->data : "");
		store_lazy_net_fail(d, o->lazy, why[0] ? why : "it ended as a non-object value");
	}
	store_unlazy(d, o);
}

bool store_want_lazily(struct conn *c, struct obj *o)
{
	struct krayd *d = c->d;
	char path[PATH_MAX + 64];
	int r;

	if (!c->lazy || !c->lazy_get)
		return false;
	if (o->lazy) /* (one in MINOR mode only for a reader with minor faults) */
		return store_lazy_takes(o->lazy, c);
	if (!d->lazy || o->type != KRAY_WT_FD || !o->spilled || o->io != IO_NONE || o->io_err ||
	    o->size < STORE_LAZY_MIN)
		return false;
	/* Its room is taken now, as an eager restore's is, and only if it is there now:
	 * store-size is never exceeded, so with spills to wait for (-EAGAIN) the get takes
	 * the eager path, which waits for them. */
	r = store_make_room(d, o->size);
	if (r)
		return false;
	spill_path(d, o, o->spill_gen, path, sizeof(path));
	o->lazy = store_lazy_new(d, o, path, store_conn_lazy_minor(c));
	if (!o->lazy)
		return false;
	d->st.store_bytes += o->size;
	return true;
}

static void lazy_lost(struct krayd *d, struct obj *o, const char *why)
{
	o->lazy = NULL;
	d->st.store_bytes -= o->size;
	/* (an eager restore in flight finds the damage itself and says so) */
	if (o->spilled && o->io == IO_NONE)
		lose(d, o, why);
}

static void lazy_whole(struct krayd *d, struct obj *o, int fd)
{
	o->lazy = NULL;
	if (!o->spilled || o->io != IO_NONE) { /* restored eagerly, or being restored */
		d->st.store_bytes -= o->size;
		store_io_close(d, fd, o->size);
		return;
	}
	promote(d, o, fd); /* the lazy memfd's room is the object's now */
}

void store_lazy_unmapped_all(struct krayd *d, struct obj *o)
{
	int fd;

	if (!o->lazy)
		return;
	fd = store_lazy_settle(d, o->lazy);
	if (fd >= 0)
		lazy_whole(d, o, fd);
	else
		store_unlazy(d, o); /* its room goes back (a later get starts again) */
}

void store_mem_lazy_drain(struct krayd *d)
{
	store_lazy_drain(d, lazy_lost, lazy_whole);
}

/* Starts reading spilled o back on the spill thread (room is made).  Returns 0 or -errno. */
static int restore_start(struct krayd *d, struct obj *o)
{
	char path[PATH_MAX + 64];
	struct sio_job *j;
	int fd = store_new_memfd(d, o->size, true, NULL);

	if (fd < 0)
		return fd;
	spill_path(d, o, o->spill_gen, path, sizeof(path));
	j = store_io_job(SIO_RESTORE, fd, o->size, path);
	j->o = o;
	o->io = IO_RESTORE;
	o->job = j;
	d->st.store_bytes += o->size; /* its room is taken now */
	store_io_submit(d, j);
	return 0;
}

/* A restore's room is made (status 0) or cannot be (-ENOSPC). */
static void restore_room(struct krayd *d, void *arg, int status)
{
	struct obj *o = arg;

	o->io = IO_NONE;
	if (!status)
		status = restore_start(d, o);
	if (status) {
		o->io_err = status;
		fire_later(d, o); /* its gets say why */
	}
}

bool store_want(struct krayd *d, struct obj *o)
{
	int r;

	if (o->type != KRAY_WT_FD || !o->spilled)
		return false;
	if (o->io == IO_ROOM || o->io == IO_RESTORE)
		return true;
	if (!d->sio)
		return false; /* restored on the loop when the get is answered */
	r = store_make_room(d, o->size);
	if (r == -EAGAIN) {
		o->io = IO_ROOM;
		store_room_wait(d, o->size, restore_room, o);
		return true;
	}
	if (!r)
		r = restore_start(d, o);
	if (r)
		o->io_err = r; /* the get says why at once */
	return !r;
}

void store_io_apply(struct krayd *d, struct sio_job *j)
{
	struct obj *o = j->o;

	if (!o) { /* abandoned: what it made goes */
		bool spill = j->kind == SIO_SPILL;

		if (j->kind == SIO_RESTORE && j->fd >= 0) {
			store_io_close(d, j->fd, j->size);
			j->fd = -1;
		}
		store_io_discard(j);
		if (spill) /* waiters counted on it: they look again */
			room_run(d);
		return;
	}
	o->job = NULL;
	o->io = IO_NONE;
	if (j->kind == SIO_SPILL) {
		d->spilling_bytes -= o->size;
		if (!j->res) {
			spilled(d, o, j->gen);
		} else {
			log_warn_ratelimited("cannot spill %u.%u.%u.%u (%llu bytes) to %s: %s",
					     o->id.node, o->id.owner, o->id.seq, o->id.index,
					     (unsigned long long)o->size, d->cfg.spill_dir, j->why);
			ext_obj_published(d, o);
			if (!d->room_err)
				d->room_err = j->res;
		}
		free(j);
		room_run(d);
		return;
	}
	/* SIO_RESTORE */
	if (!j->res) {
		restored(d, o, j->fd);
	} else {
		d->st.store_bytes -= o->size;
		store_io_close(d, j->fd, o->size);
		if (j->res == -ENOMEM || j->res == -EMFILE || j->res == -ENFILE ||
		    j->res == -ENOSPC) /* this time: the next get tries again */
			o->io_err = j->res;
		else
			lose(d, o, j->why);
	}
	free(j);
	fire_later(d, o);
}

int store_restore(struct krayd *d, struct obj *o)
{
	char path[PATH_MAX + 64];
	bool waiters = o->io == IO_ROOM;
	int in, fd, r;

	if (o->io == IO_SPILL) {
		spill_cancel(d, o, true); /* still in memory: wanted there after all */
		return 0;
	}
	if (o->io == IO_RESTORE) {
		/* A get started it; this caller cannot wait for the loop: wait here. */
		store_io_wait(d, o->job);
		store_io_apply(d, o->job);
		store_io_kick(d); /* its gets wake on the next drain */
		return o->spilled	     ? (o->io_err ? o->io_err : -EIO) :
		       o->type != KRAY_WT_FD ? -EIO :
					       0;
	}
	if (!o->spilled)
		return 0;
	if (waiters) {
		store_room_cancel(d, o);
		o->io = IO_NONE;
	}
	r = make_room_now(d, o->size);
	if (r)
		goto out;
	spill_path(d, o, o->spill_gen, path, sizeof(path));
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		r = -errno;
		goto out;
	}
	fd = store_new_memfd(d, o->size, true, NULL);
	if (fd < 0) {
		close(in);
		r = fd;
		goto out;
	}
	r = store_io_copy(fd, in, o->size, NULL);
	close(in);
	if (!r && store_seal_fd(fd, false))
		r = -errno;
	if (r) {
		close(fd);
		goto out;
	}
	unlink(path);
	restored(d, o, fd);
	d->st.store_bytes += o->size;
out:
	if (waiters) { /* gets that waited for the restore this one did */
		o->io_err = r;
		fire_later(d, o);
		store_io_kick(d);
	}
	return r;
}

void store_drop_large(struct krayd *d, struct obj *o)
{
	store_writer_end(d, o);
	store_unlazy(d, o); /* readers that map it lazily get the rest first */
	if (o->io == IO_SPILL) {
		spill_cancel(d, o, false);
	} else if (o->io == IO_RESTORE) {
		o->job->o = NULL; /* its memfd is closed when it is done */
		o->job = NULL;
		d->st.store_bytes -= o->size;
	} else if (o->io == IO_ROOM) {
		store_room_cancel(d, o);
	}
	if (o->io != IO_NONE && o->deps) { /* gets that waited for it: "not held" */
		struct dep *dep = o->deps;

		while (dep) {
			struct dep *next = dep->next;

			dep->next = d->io_orphans;
			d->io_orphans = dep;
			dep = next;
		}
		o->deps = NULL;
		store_io_kick(d);
	}
	o->io = IO_NONE;
	if (o->fd >= 0) {
		ext_obj_withdraw(d, o, false); /* out of the table before its memory goes */
		store_lru_del(d, o);
		store_free_mem(d, o);
		d->st.store_bytes -= o->size;
	}
	if (o->spilled) {
		char path[PATH_MAX + 64];

		spill_path(d, o, o->spill_gen, path, sizeof(path));
		unlink(path);
		d->st.objects_spilled--;
		d->st.bytes_spilled -= o->size;
	}
	if (o->pins)
		d->st.objects_pinned--;
	o->fd = -1;
	o->spilled = false;
}

/* The shmem THP setting in force ("always within_size [advise] never deny force" names
 * it in brackets) into buf; false where the kernel has no shmem THP. */
static bool shmem_thp_mode(char *buf, size_t len)
{
	char line[128], *a, *b;
	int fd = open(SHMEM_ENABLED, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	line[n] = 0;
	a = strchr(line, '[');
	b = a ? strchr(a, ']') : NULL;
	if (!b)
		return false;
	*b = 0;
	snprintf(buf, len, "%s", a + 1);
	return true;
}

/* Whether a mapping with MADV_HUGEPAGE gets huge pages under this shmem setting. */
static bool shmem_thp_allows(const char *mode)
{
	return !strcmp(mode, "advise") || !strcmp(mode, "always") || !strcmp(mode, "within_size") ||
	       !strcmp(mode, "force");
}

/*
 * thp = auto: large objects in shmem transparent huge pages.  shmem_enabled is "never" by
 * default; krayd (as root) sets it to "advise", which gives huge pages only to mappings that
 * ask with MADV_HUGEPAGE (kray's), and leaves it so at exit (other krayds on this machine
 * may rely on it).  "deny" is an administrator's no and is kept.  Where the setting cannot
 * be had, objects use 4 KiB pages as before.
 */
static void thp_init(struct krayd *d)
{
	char mode[32] = "";
	const char *why = NULL;
	int fd;

	d->thp = false;
	if (!d->cfg.thp) {
		log_info("large objects in 4 KiB pages (thp = off)");
		return;
	}
	if (!shmem_thp_mode(mode, sizeof(mode)))
		why = "the kernel has no shmem transparent huge pages (" SHMEM_ENABLED ")";
	else if (!strcmp(mode, "never")) {
		fd = open(SHMEM_ENABLED, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "advise", 6) != 6)
			why = errno == EACCES || errno == EPERM || errno == EROFS ?
				      "cannot set " SHMEM_ENABLED " to advise (needs root and a "
				      "writable /sys; see dist/systemd/krayd.service)" :
				      "cannot set " SHMEM_ENABLED " to advise";
		else
			log_info("set " SHMEM_ENABLED " from never to advise");
		if (fd >= 0)
			close(fd);
		if (!why && (!shmem_thp_mode(mode, sizeof(mode)) || !shmem_thp_allows(mode)))
			why = "shmem_enabled did not take advise";
	} else if (!shmem_thp_allows(mode)) {
		why = "shmem_enabled is deny";
	}
	if (why) {
		log_info("large objects in 4 KiB pages: %s", why);
		return;
	}
	d->thp = true;
	log_info("large objects in shmem transparent huge pages (shmem_enabled = %s)", mode);
}

uint32_t store_huge_flags(struct krayd *d)
{
	char mode[32];
	uint32_t f = d->cfg.hugepages ? KRAY_STORE_HUGETLB : 0;

	/* Read again: an administrator may have set it back to never since. */
	if (d->thp && shmem_thp_mode(mode, sizeof(mode)) && shmem_thp_allows(mode))
		f |= KRAY_STORE_THP;
	return f;
}

int store_mem_init(struct krayd *d)
{
	uint64_t base = d->cfg.pool_size < d->cfg.store_size ? d->cfg.pool_size : d->cfg.store_size;
	uint64_t max = d->cfg.pool_max < d->cfg.store_size ? d->cfg.pool_max : d->cfg.store_size;

	d->st.store_capacity = d->cfg.store_size;
	thp_init(d);
	d->pool = pool_start(base, max, d->thp); /* (a max below base: no growth) */
	return d->pool ? 0 : -ENOMEM;
}

void store_mem_fini(struct krayd *d)
{
	store_lazy_stop(d); /* (before the spill thread: it kicks the loop through it) */
	store_io_stop(d); /* (the objects went first: its jobs are undone) */
	while (d->room_head) {
		struct room_wait *w = d->room_head;

		d->room_head = w->next;
		free(w);
	}
	d->room_tail = NULL;
	free(d->io_fire); /* (their objects went with store_fini()) */
	d->io_fire = NULL;
	d->nio_fire = d->capio_fire = 0;
	while (d->io_orphans) {
		struct dep *dep = d->io_orphans;

		d->io_orphans = dep->next;
		free(dep);
	}
	pool_stop(d->pool);
	d->pool = NULL;
	rmdir(d->cfg.spill_dir); /* only if empty: spill files of live objects were unlinked */
}
