// SPDX-License-Identifier: Apache-2.0
/*
 * The memory of large objects: memfds from the pool of pre-faulted memory, a capacity,
 * and spilling to disk when the capacity is reached (writing them is store_large.c's).
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
	if (ext_obj_withdraw(d, o, true))
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
	store_lru_del(d, o);
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
	ext_obj_published(d, o);
	return r;
}

/* Spills until size more bytes fit.  Returns 0 or -ENOSPC. */
int store_make_room(struct krayd *d, uint64_t size)
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
int store_new_memfd(struct krayd *d, uint64_t size, bool restore)
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

int store_restore(struct krayd *d, struct obj *o)
{
	char path[PATH_MAX + 64];
	int in, fd, r;

	if (!o->spilled)
		return 0;
	r = store_make_room(d, o->size);
	if (r)
		return r;
	spill_path(d, o, path, sizeof(path));
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	fd = store_new_memfd(d, o->size, true);
	if (fd < 0) {
		close(in);
		return fd;
	}
	r = copy_fd(fd, in, o->size);
	close(in);
	if (!r && fcntl(fd, F_ADD_SEALS, STORE_SEALS))
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	unlink(path);
	o->fd = fd;
	o->spilled = false;
	store_lru_add(d, o);
	ext_obj_published(d, o);
	d->st.store_bytes += o->size;
	d->st.objects_spilled--;
	d->st.bytes_spilled -= o->size;
	d->st.restored_total += o->size;
	return 0;
}

void store_drop_large(struct krayd *d, struct obj *o)
{
	if (o->fd >= 0) {
		ext_obj_withdraw(d, o, false); /* out of the table before its memory goes */
		store_lru_del(d, o);
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
	d->st.store_capacity = d->cfg.store_size;
	thp_init(d);
	d->pool = pool_start(d->cfg.pool_size < d->cfg.store_size ? d->cfg.pool_size :
								    d->cfg.store_size,
			     d->thp);
	return d->pool ? 0 : -ENOMEM;
}

void store_mem_fini(struct krayd *d)
{
	pool_stop(d->pool);
	d->pool = NULL;
	rmdir(d->cfg.spill_dir); /* only if empty: spill files of live objects were unlinked */
}
