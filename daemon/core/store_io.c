// SPDX-License-Identifier: Apache-2.0
/*
 * The spill thread: the file I/O of spilling and restoring large objects, off the loop.
 *
 * Writing a 1 GiB object to disk takes seconds; on the loop thread that is seconds in which
 * no client gets an answer.  So the loop hands the I/O to this thread as jobs and goes on:
 * a spill job writes a memfd (a dup the job owns, so the memory stays valid whatever the
 * loop does meanwhile) to its file and fsyncs it; a restore job reads a file into a fresh
 * memfd and seals it; a close job drops the last reference to a large memfd (freeing a
 * GiB of pages takes milliseconds too).  Finished jobs go on a done list, and an eventfd
 * wakes the loop (loop_on_event()), whose drain (store.c's store_io_drain()) applies them
 * to the objects (store_mem.c's store_io_apply()) and wakes their waiters.
 *
 * The thread knows nothing of objects: it reads only what a job says (fds, size, path)
 * and writes only its result.  job->o and job->cancel are the loop's: the loop detaches a
 * job from its object when the object no longer wants the result (freed, used while it
 * was being spilled), and a cancelled spill stops at its next chunk.  One thread, jobs in
 * order: a restore queued behind a spill waits for it (both are disk-bound anyway).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/store.h"
#include "core/log.h"

#define CHUNK (64ull << 20) /* a cancelled spill stops within this many bytes */

struct store_io {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* jobs queued, or stop */
	pthread_cond_t done_cond; /* a job finished (store_io_wait()) */
	pthread_t thread;
	int efd;
	bool stop;
	struct sio_job *head, *tail; /* queued */
	struct sio_job *done_head, *done_tail; /* finished, not yet seen by the loop */
};

/*
 * Seals fd for good.  F_SEAL_WRITE fails with EBUSY while a writable mapping exists or a
 * page has extra references; a writer that unmapped just before its SEAL frame may still
 * have the unmap in flight in the kernel (seen once in a long soak), and a restore's fresh
 * pages were refused once too, so EBUSY is tried again, briefly, before the object fails:
 * at most STORE_SEAL_TRIES times 1 ms.  Returns 0 or -1 (errno).
 */

int store_seal_fd(int fd, bool lazy_readers)
{
	struct timespec ms = { 0, 1000000 };

	for (int i = 0;; i++) {
		if (!fcntl(fd, F_ADD_SEALS, STORE_SEALS))
			return 0;
		/* Lazy readers map it in MINOR mode (their mappings count as writable): sealed
		 * against any write from now on, and for good when they let go (store_lazy.c). */
		if (errno == EBUSY && lazy_readers)
			return fcntl(fd, F_ADD_SEALS, STORE_SEALS_FUTURE);
		if (errno != EBUSY || i + 1 == STORE_SEAL_TRIES)
			return -1;
		nanosleep(&ms, NULL);
	}
}

int store_io_copy(int out, int in, uint64_t size, const int *cancel)
{
	off_t off = 0;

	while ((uint64_t)off < size) {
		uint64_t want = size - (uint64_t)off;
		ssize_t n;

		if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED))
			return -ECANCELED;
		n = sendfile(out, in, &off, want < CHUNK ? want : CHUNK);
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
		uint64_t want = size - done;
		ssize_t n = write(out, (char *)p + done, want < CHUNK ? want : CHUNK);

		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			done += (uint64_t)n;
		if (!r && cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED))
			r = -ECANCELED;
	}
	munmap(p, (size_t)st.st_size);
	return r;
}

static void do_spill(struct sio_job *j)
{
	int out = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (out < 0) {
		j->res = -errno;
		snprintf(j->why, sizeof(j->why), "cannot create the spill file: %s",
			 strerror(errno));
		goto out;
	}
	j->res = store_io_copy(out, j->fd, j->size, &j->cancel);
	if (!j->res && fsync(out))
		j->res = -errno;
	/* Written and synced: the page cache need not keep a second copy of it. */
	if (!j->res)
		posix_fadvise(out, 0, 0, POSIX_FADV_DONTNEED);
	if (close(out) && !j->res)
		j->res = -errno;
	if (j->res) {
		snprintf(j->why, sizeof(j->why), "%s", strerror(-j->res));
		unlink(j->path); /* never a half-written file */
	}
out:
	close(j->fd);
	j->fd = -1;
}

static void do_restore(struct sio_job *j)
{
	int in = open(j->path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (in < 0) {
		j->res = -errno;
		snprintf(j->why, sizeof(j->why), "its spill file %s: %s",
			 errno == ENOENT ? "was removed" : "cannot be opened", strerror(errno));
		return;
	}
	if (fstat(in, &st)) {
		j->res = -errno;
		snprintf(j->why, sizeof(j->why), "its spill file: %s", strerror(errno));
	} else if ((uint64_t)st.st_size != j->size) {
		j->res = -EIO;
		snprintf(j->why, sizeof(j->why),
			 "its spill file holds %llu bytes, not %llu (truncated or replaced)",
			 (unsigned long long)st.st_size, (unsigned long long)j->size);
	} else if ((j->res = store_io_copy(j->fd, in, j->size, NULL))) {
		snprintf(j->why, sizeof(j->why), "reading its spill file: %s", strerror(-j->res));
	} else if (store_seal_fd(j->fd, false)) {
		j->res = -errno;
		snprintf(j->why, sizeof(j->why), "sealing it: %s", strerror(errno));
	}
	posix_fadvise(in, 0, 0, POSIX_FADV_DONTNEED);
	close(in);
	if (!j->res)
		unlink(j->path); /* in memory now; a spill again writes a new file */
}

static void *io_thread(void *arg)
{
	struct store_io *s = arg;
	uint64_t one = 1;

	/* Copying a GiB keeps a CPU busy for a while: on a small machine the loop must not
	 * wait behind it for the CPU, so this thread yields (nice 10 above the process's). */
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, (id_t)gettid());

	if (errno || setpriority(PRIO_PROCESS, (id_t)gettid(), nice + 10 > 19 ? 19 : nice + 10))
		log_debug("spill thread: setpriority: %s", strerror(errno));

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct sio_job *j;

		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stop)
			break;
		j = s->head;
		s->head = j->next;
		if (!s->head)
			s->tail = NULL;
		pthread_mutex_unlock(&s->lock);

		switch (j->kind) {
		case SIO_SPILL:
			do_spill(j);
			break;
		case SIO_RESTORE:
			do_restore(j);
			break;
		case SIO_CLOSE:
			close(j->fd);
			free(j);
			j = NULL;
			break;
		}
		pthread_mutex_lock(&s->lock);
		if (!j)
			continue;
		j->next = NULL;
		__atomic_store_n(&j->done, true, __ATOMIC_RELEASE);
		if (s->done_tail)
			s->done_tail->next = j;
		else
			s->done_head = j;
		s->done_tail = j;
		pthread_cond_broadcast(&s->done_cond);
		if (write(s->efd, &one, sizeof(one)) != sizeof(one))
			log_warn_ratelimited("spill thread: eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct sio_job *store_io_done(struct krayd *d)
{
	struct store_io *s = d->sio;
	struct sio_job *j;

	pthread_mutex_lock(&s->lock);
	j = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	return j;
}

void store_io_kick(struct krayd *d)
{
	uint64_t one = 1;

	if (write(d->sio->efd, &one, sizeof(one)) != sizeof(one))
		log_warn_ratelimited("spill thread: eventfd: %s", strerror(errno));
}

struct sio_job *store_io_job(enum sio_kind kind, int fd, uint64_t size, const char *path)
{
	size_t plen = path ? strlen(path) + 1 : 1;
	struct sio_job *j = calloc(1, sizeof(*j) + plen);

	if (!j)
		abort();
	j->kind = kind;
	j->fd = fd;
	j->size = size;
	memcpy(j->path, path ? path : "", plen);
	return j;
}

void store_io_submit(struct krayd *d, struct sio_job *j)
{
	struct store_io *s = d->sio;

	j->next = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void store_io_close(struct krayd *d, int fd, uint64_t size)
{
	/* Small ones cost little to free: not worth a trip to the thread. */
	if (!d->sio || size < STORE_IO_CLOSE_MIN) {
		close(fd);
		return;
	}
	store_io_submit(d, store_io_job(SIO_CLOSE, fd, size, NULL));
}

void store_io_wait(struct krayd *d, struct sio_job *j)
{
	struct store_io *s = d->sio;

	pthread_mutex_lock(&s->lock);
	while (!__atomic_load_n(&j->done, __ATOMIC_ACQUIRE))
		pthread_cond_wait(&s->done_cond, &s->lock);
	/* Out of the done list: the caller applies it now. */
	for (struct sio_job **pp = &s->done_head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			if (s->done_tail == j)
				s->done_tail = prev;
			break;
		}
	pthread_mutex_unlock(&s->lock);
}

int store_io_start(struct krayd *d, void (*drain)(struct krayd *d))
{
	struct store_io *s;
	int r;

	if (!d->cfg.spill_thread)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0) {
		r = -errno;
		free(s);
		return r;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_cond_init(&s->done_cond, NULL);
	r = -pthread_create(&s->thread, NULL, io_thread, s);
	if (r) {
		close(s->efd);
		free(s);
		return r;
	}
	d->sio = s;
	r = loop_on_event(d, s->efd, drain);
	if (r) {
		store_io_stop(d);
		return r;
	}
	return 0;
}

/* A job nobody will apply: what it made is undone. */
static void discard(struct sio_job *j)
{
	if (j->kind == SIO_SPILL && __atomic_load_n(&j->done, __ATOMIC_ACQUIRE) && !j->res)
		unlink(j->path);
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

void store_io_stop(struct krayd *d)
{
	struct store_io *s = d->sio;
	struct sio_job *j;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	/* The objects went first (store_fini()): what is left was theirs. */
	for (j = s->head; j;) {
		struct sio_job *next = j->next;

		discard(j);
		j = next;
	}
	for (j = s->done_head; j;) {
		struct sio_job *next = j->next;

		discard(j);
		j = next;
	}
	close(s->efd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->done_cond);
	free(s);
	d->sio = NULL;
}

void store_io_discard(struct sio_job *j)
{
	discard(j);
}
