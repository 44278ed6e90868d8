/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: the object table and large objects (store.c, store_mem.c, store_large.c, pool.c).
 *
 * An object is freed when it is ready and nothing references it (refs == 0): refs count
 * client references (mirrored per connection in conn->refs) and argument holds of pending
 * tasks.
 */
#ifndef KRAYD_CORE_STORE_H
#define KRAYD_CORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/wire.h"

#include "core/krayd.h"

/* Something waiting for an object (a task's argument, a get): ready(d, arg, o) runs once
 * o is sealed (store_wait()). */
struct dep {
	struct dep *next;
	void (*ready)(struct krayd *d, void *arg, struct obj *o);
	void *arg;
};

enum obj_state { OBJ_PENDING, OBJ_READY };

/* A large object's I/O in flight with the spill thread (store_io.c, store_mem.c). */
enum obj_io {
	IO_NONE,
	IO_SPILL, /* being written to disk: still in memory, and usable (a use cancels it) */
	IO_ROOM, /* spilled, its restore waiting for spills to make room */
	IO_RESTORE, /* spilled, being read back into a new memfd: not usable until it is */
};

/*
 * An object.  Small values are inline (data/len).  A large one (type KRAY_WT_FD) is a
 * sealed memfd of `size` bytes, in memory (fd >= 0, on the LRU list) or spilled to a file
 * (spilled); while its creator writes it, it is pending with `writer` set.
 */
struct obj {
	struct kray_oid id;
	enum obj_state state;
	uint8_t type, err; /* enum kray_wire_type / kray_wire_err */
	uint64_t scalar;
	void *data;
	uint32_t len;
	uint32_t refs;
	uint32_t pins; /* views handed out and not yet dropped */
	int fd;
	int mem; /* pool-reuse: the memfd itself, kept to reuse its memory once nobody holds it;
		  * fd is then a read-only open of it (store_reuse.c).  -1: fd is sealed */
	bool spilled;
	uint8_t io; /* enum obj_io */
	int io_err; /* spilled: why its last restore failed (-errno; told to the next get) */
	uint32_t spill_gen; /* spilled: names its file (store_mem.c's spill_path) */
	struct sio_job *job; /* io: the spill thread's job */
	bool exec_pin; /* pinned while an EXEC that takes it is built */
	bool kmod; /* published in /dev/kray (kmod.c) */
	uint64_t size;
	struct conn *writer; /* the connection writing it (pending large objects) */
	uint32_t remote_link; /* pending: made elsewhere and kept there; pulled over this link
			       * when wanted (remote.c) */
	bool pulling;
	bool stub; /* a ref another node lent (cluster): freed with its last reference even
		    * while pending, since no task here will seal it */
	struct lazy *lazy; /* spilled and mapped lazily by readers (store_lazy.c) */
	struct kray_oid *contained; /* nested refs: objects this one keeps alive */
	uint16_t ncontained;
	struct obj *lru_prev, *lru_next; /* large objects in memory, oldest first */
	struct dep *deps;
};

/* store.c */
struct obj *store_get(struct krayd *d, const struct kray_oid *id);
struct obj *store_create(struct krayd *d, const struct kray_oid *id);
void store_seal(struct krayd *d, struct obj *o, const struct wire_value *v);
/* Pending o keeps the n objects of refs alive (nested refs, as a seal with refs does);
 * ids not here are kept as zero ids.  Once per object. */
void store_contain(struct krayd *d, struct obj *o, const struct kray_oid *refs, uint16_t n);
/* Whether connection c holds every ref a value contains (it may then store them). */
bool store_holds_refs(struct conn *c, const struct wire_value *v);
void store_seal_error(struct krayd *d, struct obj *o, uint8_t err, const char *msg, size_t len);
void store_ref(struct obj *o);
/* store_list.c: the largest objects (10,000 at most) as JSON, {"objects": [...], "total",
 * "shown"} (docs/state.md). */
void store_list(struct krayd *d, struct kbuf *b);
/* Calls ready(d, arg, o) when pending object o is sealed (once; o is held while it runs). */
void store_wait(struct krayd *d, struct obj *o,
		void (*ready)(struct krayd *d, void *arg, struct obj *o), void *arg);
/* Forgets what store_wait(d, o, ready, arg) asked; returns how many such waits there were.
 * Not from inside one of o's ready callbacks. */
unsigned store_unwait(struct krayd *d, struct obj *o,
		      void (*ready)(struct krayd *d, void *arg, struct obj *o), void *arg);
/* A reference held by connection c (released when c goes). */
void store_conn_ref(struct conn *c, struct obj *o);
void store_conn_unref(struct conn *c, const struct kray_oid *id);
void store_pin(struct krayd *d, struct obj *o);
void store_unpin(struct krayd *d, struct obj *o);
void store_unref(struct krayd *d, struct obj *o);
/* Appends o's value to c's output; a large object goes as an FD value with its memfd
 * (restored from disk first if need be), and counts as a pin until c unpins it. */
void store_send_value(struct conn *c, struct obj *o);
void store_fini(struct krayd *d);
/* Wakes what waits for o (store_wait()) and drops o if nobody holds it. */
void store_fire(struct krayd *d, struct obj *o);

/* Tries of a seal that finds its writer not yet gone (1 ms apart: store_seal_fd(),
 * store_seal_reuse()). */
#define STORE_SEAL_TRIES 5
/* Every seal of a large object's memfd: immutable from then on. */
#define STORE_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
/* An object whose own memfd lazy readers map in MINOR mode (their mappings count as
 * writable, so F_SEAL_WRITE fails): sealed for good once they let go (store_lazy.c). */
#define STORE_SEALS_FUTURE (F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

/* store_mem.c: the memory of large objects (capacity, pool, LRU, spill and restore) */
/* Spills until size more bytes fit.  Returns 0, -ENOSPC, or (with the spill thread)
 * -EAGAIN: spills in flight will make the room (store_room_wait()). */
int store_make_room(struct krayd *d, uint64_t size);
/* Calls cb(d, arg, status) once size bytes fit (status 0: store_make_room() now succeeds)
 * or cannot (-ENOSPC); waiters are served in order, as spills end. */
void store_room_wait(struct krayd *d, uint64_t size,
		     void (*cb)(struct krayd *d, void *arg, int status), void *arg);
/* Forgets every store_room_wait() of arg. */
void store_room_cancel(struct krayd *d, void *arg);
/* c writes o from now on, until it seals it or the write fails (store_writer_end()): the
 * pool's filler steps aside meanwhile (pool_write_begins()). */
void store_writer_begin(struct conn *c, struct obj *o);
void store_writer_end(struct krayd *d, struct obj *o);
/* A memfd of size bytes to write (restore: for a restore from disk), or -errno.
 * *ret_filled (where not NULL): every page of it exists (a pre-faulted one from the pool). */
int store_new_memfd(struct krayd *d, uint64_t size, bool restore, bool *ret_filled);
/* o (sealed, in memory) joins / leaves the spill order. */
void store_lru_add(struct krayd *d, struct obj *o);
void store_lru_del(struct krayd *d, struct obj *o);
/* Brings spilled o back into memory (no-op when it is there).  Returns 0 or -errno. */
int store_restore(struct krayd *d, struct obj *o);
/* A get of ready object o wants it in memory: starts its restore from disk if it is
 * spilled (with the spill thread).  Returns whether the get must wait for it (store_wait();
 * woken when the restore ends, however it ends); false: use it now. */
bool store_want(struct krayd *d, struct obj *o);
/* Whether a get waits for o: pending, or being restored. */
static inline bool store_awaited(const struct obj *o)
{
	return o->state != OBJ_READY || o->io == IO_ROOM || o->io == IO_RESTORE;
}
/* o is in use (pinned): a spill of it in flight is given up. */
void store_keep(struct krayd *d, struct obj *o);
/* Frees o's memory or spill file. */
void store_drop_large(struct krayd *d, struct obj *o);
int store_mem_init(struct krayd *d);
void store_mem_fini(struct krayd *d);
/* KRAY_STORE_* for the STATUS reply: the huge pages new large objects get now. */
uint32_t store_huge_flags(struct krayd *d);

/* store_io.c: the spill thread, file I/O off the loop. */
enum sio_kind { SIO_SPILL, SIO_RESTORE, SIO_CLOSE };
struct sio_job {
	struct sio_job *next;
	enum sio_kind kind;
	int fd; /* spill: a dup of the object's memfd; restore: the memfd to fill; close */
	uint64_t size;
	int res; /* 0 or -errno, once done */
	bool done;
	int cancel; /* set by the loop: a spill stops at its next chunk */
	struct obj *o; /* the loop's: NULL once the object does not want the result */
	uint32_t gen; /* spill: the file's generation (spill_path) */
	char why[160]; /* what failed, for the log or the reader */
	char path[]; /* the spill file */
};
#define STORE_IO_CLOSE_MIN (16ull << 20) /* larger memfds are closed by the thread */
/* Starts the thread (spill-thread = 1) and its eventfd on the loop, which calls drain(d)
 * when jobs are done (store_io_drain()).  0 or -errno. */
int store_io_start(struct krayd *d, void (*drain)(struct krayd *d));
/* Stops it; the jobs left are undone (objects first: after store_fini()). */
void store_io_stop(struct krayd *d);
struct sio_job *store_io_job(enum sio_kind kind, int fd, uint64_t size, const char *path);
void store_io_submit(struct krayd *d, struct sio_job *j);
/* The jobs done since last asked, oldest first (a list through ->next). */
struct sio_job *store_io_done(struct krayd *d);
/* Has the loop call drain soon (for waiters to wake: d->io_fire). */
void store_io_kick(struct krayd *d);
/* Blocks until j is done and takes it off the done list: the caller applies it. */
void store_io_wait(struct krayd *d, struct sio_job *j);
/* Closes fd (the last reference to size bytes of memfd) on the thread when it is large. */
void store_io_close(struct krayd *d, int fd, uint64_t size);
/* Copies size bytes of in to out (files or memfds); stops with -ECANCELED once *cancel.
 * Returns 0 or -errno. */
int store_io_copy(int out, int in, uint64_t size, const int *cancel);
/* Seals a large object's memfd for good (STORE_SEALS), trying EBUSY again briefly; with
 * lazy_readers (MINOR-mode mappings, which F_SEAL_WRITE refuses) STORE_SEALS_FUTURE for
 * now (store_lazy.c seals it for good when they let go).  0 or -1 (errno). */
int store_seal_fd(int fd, bool lazy_readers);
void store_io_discard(struct sio_job *j);
/* store_mem.c: applies a finished job to its object; the waiters to wake go on
 * d->io_fire (and d->io_orphans). */
void store_io_apply(struct krayd *d, struct sio_job *j);
/* store.c: the loop's side of the spill thread: applies what it did, wakes the waiters. */
void store_io_drain(struct krayd *d);

/* store_lazy.c: lazy restore with userfaultfd (lazy-restore = auto) */
#define STORE_LAZY_MIN (4ull << 20) /* smaller spilled objects are restored whole */
/* Starts its thread where the config, the spill thread and the kernel allow (0 also when
 * off), after store_io_start(); stopped by store_mem_fini(). */
int store_lazy_start(struct krayd *d);
void store_lazy_stop(struct krayd *d);
/* c's GET named its userfaultfd (number + 1; 0: none): krayd takes a copy, once. */
void store_lazy_conn(struct conn *c, uint32_t uffd_no);
/* A lazy memfd for spilled o (its spill file at path), or NULL (the eager path then). */
struct lazy *store_lazy_new(struct krayd *d, struct obj *o, const char *path, bool minor);
int store_lazy_fd(const struct lazy *lz);
uint64_t store_lazy_size(const struct lazy *lz);
/* Whether c may map lz: a memfd in MINOR mode only for a reader whose userfaultfd has minor
 * faults (it registers MISSING|MINOR). */
bool store_lazy_takes(const struct lazy *lz, const struct conn *c);
/* Whether c's userfaultfd has minor faults (its lazy mappings are MISSING|MINOR). */
bool store_conn_lazy_minor(const struct conn *c);
/* The bytes lz holds in the store beside its object (0 for the object's own memfd). */
uint64_t store_lazy_room(const struct lazy *lz);
/* Whether lz is the object's own memfd, mapped by readers in MINOR mode (its seal waits). */
bool store_lazy_in_place(const struct lazy *lz);
/* One line for `kray status` (the nodes part): lazy gets from other nodes by mode. */
int store_lazy_describe(struct krayd *d, char *buf, size_t len);
/* store_lazy_net.c: objects that come from another node, mapped lazily while they arrive.
 * A lazy memfd of size bytes filled by store_lazy_net_put(), or NULL (lazy gets off). */
struct lazy *store_lazy_new_net(struct krayd *d, const struct kray_oid *id, uint64_t size);
/* The same in MINOR mode: the readers map objfd, the object's own memfd, which the receive
 * writes in place; NULL where MINOR mode is off (lazy-minor, the kernel, hugetlb). */
struct lazy *store_lazy_new_net_minor(struct krayd *d, const struct kray_oid *id, uint64_t size,
				      int objfd);
/* The chunks that lazy readers faulted in before the stream brought them: ask() is called
 * for each (object id, its lazy memfd, the range), for the loop to ask the node that sends
 * it for that first.  The loop's (store_io_drain()), after the lazy thread kicked it. */
void store_lazy_net_asks(struct krayd *d,
			 void (*ask)(struct krayd *d, const struct kray_oid *id,
				     const struct lazy *lz, uint64_t off, uint64_t len));
/* lz's transfer starts again (from another holder): the chunks its readers asked for and
 * that are not in are asked for again, at the loop's next drain (store_lazy_net_asks()). */
void store_lazy_net_reask(struct krayd *d, struct lazy *lz);
/* The len bytes at src (srcfd's, the object's memfd) are the object's from offset off
 * (page-aligned; len whole pages unless it ends the object): the pages of them lz lacks go
 * in (nothing to copy when srcfd is lz's own memfd: MINOR mode), and the faults of its
 * readers there are woken.  0, or -errno (lz is lost then: store_lazy_net_fail()). */
int store_lazy_net_put(struct krayd *d, struct lazy *lz, int srcfd, uint64_t off,
		       const uint8_t *src, uint64_t len);
/* The object is whole in memfd fd: whatever lz still lacks is put in from it.  0 or -errno. */
int store_lazy_net_fill(struct krayd *d, struct lazy *lz, int fd);
/* lz can never be whole (why): its readers get SIGBUS where they touch it. */
void store_lazy_net_fail(struct krayd *d, struct lazy *lz, const char *why);
/* KRAY_MSG_LAZY_MAP: c mapped lazy object id (lz) at [addr, addr + len).  0 or -EINVAL. */
int store_lazy_mapped(struct conn *c, struct lazy *lz, const struct kray_oid *id, uint64_t addr,
		      uint64_t len);
/* KRAY_MSG_LAZY_MAP of an object that is lazy no longer (whole: promoted or received to
 * the end; or failed) by the time it came.  A reader whose mapping takes minor faults
 * waits on them: its range is served as a whole lazy object's until it lets go (then the
 * object is sealed for good), or poisoned (SIGBUS where it touches) when the object
 * failed.  Nothing waits for a MISSING-mode reader.  0 or -EINVAL. */
int store_lazy_mapped_late(struct conn *c, struct obj *o, const struct kray_oid *id, uint64_t addr,
			   uint64_t len);
/* c dropped its last view of id. */
void store_lazy_unmapped(struct conn *c, const struct kray_oid *id);
void store_lazy_conn_gone(struct conn *c);
/* The object lets go of lz (freed, lost, restored eagerly): readers that still map it get
 * the rest of it in the background, then it goes. */
void store_lazy_detach(struct krayd *d, struct lazy *lz);
/* Objects whose lazy memfd is whole (whole(): sealed memfd fd, taken) or cannot be read
 * (lost()), each detached from its lazy memfd first. */
void store_lazy_drain(struct krayd *d,
		      void (*lost)(struct krayd *d, struct obj *o, const char *why),
		      void (*whole)(struct krayd *d, struct obj *o, int fd));
/* Nobody maps lz any more: its sealed memfd (taken; lz detached) when it is whole and could
 * be sealed, else -1. */
int store_lazy_settle(struct krayd *d, struct lazy *lz);
/* Brings d->st.restored_total up to date. */
void store_lazy_status(struct krayd *d);
/* store_mem.c's side: whether a get by c of ready o sends it lazily (its lazy memfd made
 * if need be); o's lazy memfd let go; store_lazy_drain() applied. */
bool store_want_lazily(struct conn *c, struct obj *o);
void store_unlazy(struct krayd *d, struct obj *o);
/* Pending o, mapped lazily while it arrives (store_lazy_net.c), is being sealed: whole (its
 * lazy memfd filled from o->fd) or an error (its lazy readers fail); then let go. */
void store_lazy_sealed(struct krayd *d, struct obj *o);
/* o's lazy memfd is mapped by nobody now: promoted when whole, else let go. */
void store_lazy_unmapped_all(struct krayd *d, struct obj *o);
void store_mem_lazy_drain(struct krayd *d);

/* store_spill.c: the spill directory, locked while krayd runs; a crashed krayd's spill
 * files removed.  Returns 0 (also when there is no spill dir to be had: spilling then
 * fails) or -errno when another live krayd holds it or it is not safe (logged). */
int store_spill_open(struct krayd *d);
/* Lets go of it (after store_mem_fini() removed it). */
void store_spill_close(struct krayd *d);

/* store_reuse.c: memory reused in place (pool-reuse) */
/* The descriptor to hand the writer of memfd (size bytes): a reopen of it, or a dup;
 * -errno.  The caller closes it once sent. */
int store_writer_fd(struct krayd *d, int memfd, uint64_t size);
/* Seals written o for reuse: no writer holds it any more (EBUSY: one does), and from now on
 * o->fd is a read-only open and o->mem the memfd.  0, -1 (errno), or 1: o is not to be
 * reused (seal it for good: store_seal_fd()). */
int store_seal_reuse(struct krayd *d, struct obj *o);
/* Whether a new object of size bytes written by a client or a node link is to be sealed
 * for reuse (its memory comes back to the pool when it is freed). */
bool store_reusable(struct krayd *d, uint64_t size);
/* Lets go of large o's memory (fd and mem -1 after): back to the pool when nobody holds it
 * and it was sealed for reuse, closed otherwise. */
void store_free_mem(struct krayd *d, struct obj *o);

/* store_large.c: writing large objects */
/* *ret_fd: the writer's descriptor, the caller's to send or close (-1 on an error);
 * *ret_filled (where not NULL): every page of its memfd exists. */
int store_create_large(struct conn *c, const struct kray_oid *id, uint64_t size, int *ret_fd,
		       bool *ret_filled);
int store_seal_large(struct conn *c, const struct kray_oid *id);
/* Gives pending object o a memfd of size bytes that c writes (an object arriving from
 * another node), then store_seal_large().  Returns 0 or -errno (-ENOSPC, -EBUSY). */
int store_begin_large(struct conn *c, struct obj *o, uint64_t size);
/* Undoes store_begin_large(): o is pending with no memory again. */
void store_abort_large(struct krayd *d, struct obj *o);
int store_move(struct krayd *d, struct obj *dst, struct obj *src);

/* pool.c: pre-faulted memfds */
/* A pool of budget bytes (0: none), which grows up to max bytes while takes find it
 * empty; huge: pre-fault in shmem transparent huge pages (MADV_HUGEPAGE). */
struct pool *pool_start(uint64_t budget, uint64_t max, bool huge);
/* A memfd of at least size bytes (pre-faulted if the pool had one: *ret_ready, where not
 * NULL), or -errno.  back: its memory is expected back when its object is freed
 * (pool-reuse), so a take that finds a memfd ready orders no refill. */
int pool_take(struct pool *p, uint64_t size, bool back, bool *ret_ready);
/* Takes back fd (size bytes, the memory of a freed object, nobody else's any more) as a
 * ready memfd if the budget has room (returns true; else the caller closes it). */
bool pool_give(struct pool *p, int fd, uint64_t size);
/* Bytes taken back so, ever (a counter). */
uint64_t pool_given(struct pool *p);
/* An object of size bytes begins (ends: sealed, aborted) being written: the filler steps
 * aside while some are, for a time their sizes set (pool.c). */
void pool_write_begins(struct pool *p, uint64_t size);
void pool_write_ends(struct pool *p);
uint64_t pool_bytes(struct pool *p);
/* Its budget now: pool-size, or more while it has grown (at most pool-max). */
uint64_t pool_budget(struct pool *p);
/* The time without a take after which it shrinks back (30 s; tests set less). */
void pool_shrink_after(struct pool *p, int64_t ns);
void pool_stop(struct pool *p);

#endif
