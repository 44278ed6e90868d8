/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libkray's private state and the connection layer shared by the driver API (api.c),
 * start-up (init.c) and the worker host (worker.c).  Never installed.
 */
#ifndef KRAY_LIBCLIENT_CLIENT_H
#define KRAY_LIBCLIENT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "kray/kray.h"
#include "../common/buf.h"
#include "../common/oidmap.h"
#include "../common/wire.h"

/* CLOCK_MONOTONIC in ns: libkray's one clock for run times, deadlines and batching. */
static inline int64_t kc_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Frames krayd sends only to workers, which a worker's nested get (or
 * kray_get_async()) reads and hands to the worker's loop (on_frame). */
static inline bool kc_worker_frame(uint16_t type)
{
	return type == KRAY_MSG_EXEC || type == KRAY_MSG_JOB || type == KRAY_MSG_JOB_END ||
	       type == KRAY_MSG_ACTOR_STOP || type == KRAY_MSG_CANCEL;
}

#define KRAY_EXPORT __attribute__((visibility("default")))

struct worker_state;
struct kray;

/* A fast call whose get timed out (fast.c): still in flight on the fast connection until
 * its answer comes there, which settles it. */
struct kc_fast_late {
	struct kray_oid task;
	struct kbuf submit; /* its SUBMIT frame, for the daemon path */
	bool released; /* its ref was released: the answer is dropped */
	bool cancelled; /* kray_cancel(): its value is the cancellation error already */
	/* Ref arguments whose values went in its FAST_EXEC: held with krayd (HOLD) until it
	 * is settled, so that its SUBMIT can still name them (an array of kray_ref). */
	struct kbuf held;
};

/*
 * A layer over the connection.  The fast path (fast.c), /dev/kray (kmod.c) and the
 * object cache (objects.c) each register one on a handle (kc_layers_init(), init.c); the
 * connection (conn.c) calls them at its events without knowing what they are.  Any hook
 * may be NULL.
 */
struct kc_layer {
	const char *name;
	/* The hello was answered: k->node, k->client, ... are known. */
	void (*on_hello)(struct kray *k);
	/* k->out is about to be written: a layer may put its own frames in front.  0, or
	 * -errno with nothing written. */
	int (*before_flush)(struct kray *k);
	/* A frame no blocking wait asked for: returns 1 when the layer took it (the
	 * connection consumes it then), 0 to leave it to others. */
	int (*on_frame)(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body);
	/* This process now holds a reference to each of the n refs (kc_hold()). */
	void (*on_hold)(struct kray *k, const kray_ref *refs, size_t n);
	/* kc_close(): frees what the layer keeps on k. */
	void (*on_close)(struct kray *k);
};
#define KC_LAYERS_MAX 4

extern const struct kc_layer kc_fast_layer, kc_kmod_layer, kc_objects_layer, kc_async_layer;

/* Descriptors received with frames, in order (see KRAY_FRAME_NFDS). */
struct rfdq {
	int *fd;
	unsigned head, n, cap;
};

struct kray {
	int fd;
	int kmod_fd; /* /dev/kray for local gets (kmod.c), or -1 */
	int uffd; /* lazy.c: this process's userfaultfd for lazy restores, or -1 */
	pid_t uffd_pid; /* the process uffd belongs to; 0: not made yet */
	bool uffd_minor; /* lazy.c: uffd has shmem minor faults (lazy mappings MISSING|MINOR) */
	struct oidmap held; /* with kmod_fd: refs this process holds, counted as krayd does */
	pid_t krayd_pid; /* a private krayd this handle started, or 0 */
	char *private_dir;
	uint32_t node, client, job, inline_max;
	uint32_t next_seq;
	uint64_t next_req;
	struct kbuf out; /* frames not sent yet */
	struct kbuf in; /* bytes received, not yet parsed */
	struct rfdq fds; /* descriptors received, not yet taken */
	struct oidmap views; /* oid -> struct view *: large objects mapped here */
	struct oidmap cache; /* oid -> struct kray_mem *: small values this process has */
	struct oidmap writing; /* oid -> struct view *: objects being created here */
	bool broken; /* the connection is unusable */
	/* The last read from krayd took less than it could: the socket was empty then, so
	 * the next read is skipped once where something else is sure to look again (conn.c:
	 * kc_next_frame). */
	bool in_short;
	char err[1024];
	/* In a worker: frames that are not replies (EXEC, JOB) go here. */
	void (*on_frame)(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body);
	/* In a worker: a blocking wait or an async reply may have read frames for the loop
	 * (an actor's thread did, on a shared connection): the loop looks again. */
	void (*wake)(struct kray *k);
	/* Set while k->wake is called for a get answered from the cache: the loop must look
	 * again even when its own thread asked (it may be inside its host's wait hook, an
	 * async actor's event loop, which only the eventfd wakes). */
	bool wake_self;
	struct worker_state *ws;
	/* The BPF fast path (fast.c).  fast_state: 0 not asked yet, 1 open, -1 unavailable. */
	int fast_state;
	int fast_fd;
	uint32_t fast_slot;
	uint64_t fast_token;
	struct kbuf fast_in; /* received on fast_fd, not yet parsed */
	struct kbuf fast_pending; /* FAST_DONE frames krayd has not been sent yet */
	struct kc_fast_late *fast_late; /* calls whose get timed out, in flight */
	size_t fast_nlate, fast_late_cap;
	int64_t fast_rcvtimeo_ms; /* SO_RCVTIMEO on fast_fd; 0: none */
	bool fast_busy; /* reading fast_in: a flush must not read it too */
	bool fast_requeued; /* a late call's SUBMIT (or RELEASE) was queued: flush it */
	struct kc_fast_actor *fast_actors; /* per actor called: order, skips (fast_actor.c) */
	size_t fast_nactors, fast_actors_cap;
	bool fast_actors_lost; /* out of memory for one: no fast actor calls */
	struct kc_ring *ring; /* the fast path's shared-memory ring (ring.c); NULL: sockets */
	/* The last call's SUBMIT is out[defer_off, defer_end) and may still go fast. */
	bool defer;
	size_t defer_off, defer_end;
	uint32_t defer_seq;
	/* Its first argument's stand-in on the fast path (kray_call_opts.fast_arg0), as a
	 * wire value; empty: the arguments go as they are. */
	struct kbuf fast_arg0;
	/* The last stand-in a worker declined (NOT_RUN), by hash: calls with it skip the
	 * fast path for fast_skip more calls, a number that doubles while it is declined. */
	uint64_t fast_declined;
	uint32_t fast_skip, fast_backoff;
	/* kray_get_async() (async.c): gets in flight and done; kray_set_nonblocking(). */
	struct kc_async *async;
	bool nonblock;
	/* What registered on the connection (struct kc_layer). */
	const struct kc_layer *layers[KC_LAYERS_MAX];
	unsigned nlayers;
};

/* Adds a layer to k (in order: hooks run in the order layers were added). */
void kc_layer_add(struct kray *k, const struct kc_layer *l);
/* Registers the fast path, the module and objects on k (init.c): every handle's. */
void kc_layers_init(struct kray *k);
/* Offers a frame nobody waits for to the layers: 1 when one took it. */
int kc_layers_take(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body);
/* Tells the layers that this process holds the n refs. */
void kc_hold(struct kray *k, const kray_ref *refs, size_t n);

/* Sets k's error message and returns code (a negative errno). */
int kc_fail(struct kray *k, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Connects to the krayd socket at path and says hello.  Returns 0 or -errno. */
int kc_connect(struct kray *k, const char *path, uint32_t role, uint32_t worker_id,
	       const char *code_path);
/* Says hello on k->fd, connected already (a worker's socketpair end).  0 or -errno. */
int kc_hello(struct kray *k, uint32_t role, uint32_t worker_id, const char *code_path);

/* Closes the connection and frees everything k holds but k itself. */
void kc_close(struct kray *k);

/* Ends the frame begun at off in k->out.  Returns 0, or -ENOMEM with k's message set when
 * an append ran out of memory (the partial frame is dropped: k->out is as before it). */
int kc_end(struct kray *k, size_t off);

/* Writes everything in k->out.  Returns 0 or -EPIPE (or a layer's -errno). */
int kc_flush(struct kray *k);
/* Writes what the socket takes now without waiting (the rest stays queued).  0/-errno. */
int kc_flush_some(struct kray *k);
/* Puts n bytes of whole frames into k->out ahead of every frame not yet begun, but after
 * one a partial write (kc_flush_some) left half sent.  0, or -ENOMEM (k->out unchanged). */
int kc_out_insert(struct kray *k, const void *frames, size_t n);
/* A round trip to krayd (a STATUS): everything sent before it has been handled.  0/-errno. */
int kc_sync(struct kray *k);

/*
 * Makes the next frame available in k->in.  With block false, returns 0 when no whole
 * frame has arrived yet.  Returns 1 with *ret_h and *ret_body set (valid until
 * kc_consume()), or -EPIPE (krayd went away) / -EBADMSG (a malformed frame).
 */
int kc_next_frame(struct kray *k, bool block, struct kray_frame_hdr *ret_h,
		  const uint8_t **ret_body);
void kc_consume(struct kray *k, const struct kray_frame_hdr *h);

/*
 * Flushes, then reads frames until the reply of the given type and request id arrives;
 * other frames go to k->on_frame.  Returns 0 with the reply left unconsumed, or -errno.
 */
int kc_wait(struct kray *k, uint16_t type, uint64_t req, struct kray_frame_hdr *ret_h,
	    const uint8_t **ret_body);
/* The same for any request id in [lo, hi]: replies to pipelined requests may come in any
 * order. */
int kc_wait_range(struct kray *k, uint16_t type, uint64_t lo, uint64_t hi,
		  struct kray_frame_hdr *ret_h, const uint8_t **ret_body);

/* The descriptors of the frame h (KRAY_FRAME_NFDS of them), at the front of k->fds.  A
 * taker sets an entry to -1; kc_consume() closes whatever was not taken. */
int *kc_frame_fds(struct kray *k, const struct kray_frame_hdr *h);

/* objects.c: what a kray_value's priv_ points to. */
enum mem_kind { MEM_HEAP = 1, MEM_VIEW = 2 };

struct kray_mem { /* a heap copy: header, contained refs, then len + 1 bytes */
	uint32_t kind; /* MEM_HEAP */
	uint32_t refs; /* the cache and values share it */
	size_t len;
	uint8_t type;
	uint64_t scalar;
	kray_ref *nested; /* contained refs, nnested of them */
	size_t nnested;
	char data[];
};

struct view { /* a read-only mapping of a large object */
	uint32_t kind; /* MEM_VIEW */
	uint32_t refs;
	struct kray *k; /* NULL after kray_shutdown() */
	kray_ref id;
	void *addr;
	size_t size; /* the object's */
	size_t maplen; /* the mapping's: whole (huge) pages */
	int fd; /* the writer's fd, while being created */
	kray_ref *nested; /* the refs the object contains (kray_value.refs of its values) */
	size_t nnested;
};

/* Maps a large object's memfd read-only after checking its seals and size; NULL with
 * *ret_why set when it cannot.  The fd stays the caller's.  lazy: a KRAY_WV_LAZY memfd
 * (not sealed, filled by krayd as it is touched): registered with the userfaultfd and
 * announced to krayd before it is returned. */
struct view *kc_map_fd(struct kray *k, const kray_ref *id, int fd, uint64_t size, bool lazy,
		       const char **ret_why);

/* lazy.c: lazy restore (krayd's store_lazy.c) */
/* The userfaultfd number + 1 to name in a GET (made on first use), or 0: none. */
uint32_t kc_lazy_uffd(struct kray *k);
/* Registers [addr, addr + len) in MISSING mode.  0 or -errno. */
int kc_lazy_register(struct kray *k, void *addr, size_t len);
/* Tells krayd (KRAY_MSG_LAZY_MAP, flushed) where lazy object id is mapped.  0 or -errno. */
int kc_lazy_announce(struct kray *k, const kray_ref *id, void *addr, size_t len);
void kc_lazy_close(struct kray *k);
/* Queues an UNPIN of id: krayd pinned it once for every FD value it sent this process.
 * 0 or -ENOMEM (not queued: krayd keeps the pin until this process disconnects). */
int kc_put_unpin(struct kray *k, const kray_ref *id);
/* A new value using the view (one more reference to it). */
void kc_view_value(struct view *vw, kray_value *ret);

/* Turns a received value into a kray_value.  FD values take the frame's next descriptor
 * from *fds (verifying its seals and size) and map it, or reuse this process's mapping.
 * Returns 0, or -ENOMEM with *ret a KRAY_ERROR value saying so (static: nothing to free). */
int kc_take_value(struct kray *k, const struct wire_value *w, int **fds, kray_value *ret);
/* A value that owns a heap copy of data.  0, or -ENOMEM with *ret KRAY_NIL. */
int kc_mem_value(uint8_t type, uint64_t scalar, const void *data, size_t len, kray_value *ret);
/* The same, with refs the value contains (its .refs and .nrefs). */
int kc_mem_value_refs(uint8_t type, const void *data, size_t len, const kray_ref *refs,
		      size_t nrefs, kray_value *ret);
/* Queues a PUT of an inline value (with nrefs contained refs) under id.  0 or -ENOMEM
 * (nothing queued). */
int kc_put_inline(struct kray *k, const kray_ref *id, const kray_value *v, const kray_ref *refs,
		  uint16_t nrefs);
/* A new reference to a cached small value or mapped object, or false. */
bool kc_cached(struct kray *k, const kray_ref *id, kray_value *ret);
/* The cached small value of id, borrowed (valid until the cache changes), or NULL. */
struct kray_mem *kc_cache_peek(struct kray *k, const kray_ref *id);
/* Remembers a small value this process put or got. */
void kc_cache_put(struct kray *k, const kray_ref *id, const kray_value *v);
void kc_cache_drop(struct kray *k, const kray_ref *id);
/* Creates a large object for this process (also used for a worker's large returns). */
int kc_create(struct kray *k, size_t size, kray_ref *ret_ref, void **ret_data);
/* kray_seal() of an object that contains nrefs refs (held by this process). */
int kc_seal_refs(struct kray *k, const kray_ref *ref, const kray_ref *refs, uint16_t nrefs);
/* Stores the n pieces of iov, one after the other, as a new large object that contains
 * nrefs refs: created, written (with pwritev(2) where krayd's memory allows) and sealed
 * (create.c).  0 or -errno, with kc_fail()'s message. */
int kc_put_large(struct kray *k, const struct iovec *iov, size_t n, const kray_ref *refs,
		 uint16_t nrefs, kray_ref *ret_ref);
/* Copies the n pieces of iov one after the other into dst. */
void kc_gather(void *dst, const struct iovec *iov, size_t n);

/* kmod.c: /dev/kray, when the module is loaded (docs/kmod.md).  Its layer opens it after
 * the hello unless $KRAY_KMOD is 0 (without it, k->kmod_fd stays -1) and counts kc_hold(). */
/* A large object the module holds, as a value (mapped, or this process's mapping reused),
 * in one ioctl; false when the module does not have it for us: ask krayd. */
bool kc_kmod_get(struct kray *k, const kray_ref *id, kray_value *ret);
/* Whether the module holds every one of the n refs (all ready), in one ioctl. */
bool kc_kmod_all_ready(struct kray *k, const kray_ref *refs, size_t n);
/* This process got (hold) or released (unhold) a reference to each of the n refs: the
 * module is asked only for refs held here, so that it answers as krayd would. */
void kc_kmod_hold(struct kray *k, const kray_ref *refs, size_t n);
void kc_kmod_unhold(struct kray *k, const kray_ref *refs, size_t n);

/* api.c: shared by calls and actor calls (actor NULL: a task). */
int kc_submit(struct kray *k, const kray_ref *actor, const char *fn, const kray_value *args,
	      size_t nargs, const struct kray_call_opts *opts, kray_ref *ret_refs);
int kc_check_value(struct kray *k, const kray_value *v, bool allow_ref);
void kc_put_value(struct kbuf *b, const kray_value *v, const struct kray_oid *refs, uint16_t nrefs);

/* fast.c: the BPF fast path for synchronous calls (docs/fastpath.md). */
/* Whether a call may take it (its SUBMIT frame is frame_len bytes). */
bool kc_fast_eligible(struct kray *k, const kray_ref *actor, const kray_value *args, size_t nargs,
		      const struct kray_call_opts *o, size_t frame_len);
/* Whether o->fast_arg0 can stand in for a first argument (kray_call_opts). */
bool kc_fast_stand_in_ok(const kray_value *v);
/* Notes the deferred call's stand-in (o->fast_arg0, or none).  0, or -ENOMEM or -EAGAIN
 * (a stand-in workers declined lately): the call then takes krayd's path. */
int kc_fast_stand_in(struct kray *k, const struct kray_call_opts *o);
/* kray_get() of the deferred call's return ref: runs the call on the fast path, waiting
 * up to timeout_ms (-1: for ever).  Returns 0 or -EREMOTEIO with *ret set (the answer),
 * 1 when the SUBMIT went back to the output buffer (ask krayd as usual), 2 when krayd
 * holds the result already (ask krayd), -ETIMEDOUT (the call stays in flight: a later
 * get of its ref settles it, kc_fast_settle()), or another -errno. */
int kc_fast_get(struct kray *k, int64_t timeout_ms, kray_value *ret);
/* Queues the pending registrations of fast results (FAST_DONE) for krayd now, before
 * what is queued already: a frame about to be queued names one.  0 or -ENOMEM. */
int kc_fast_register(struct kray *k);
/* Before a frame that names args (a call's, an actor constructor's): the late fast calls
 * among them settled, and pending registrations of fast results queued first, so that
 * krayd knows every object they name.  0 or -errno. */
int kc_fast_args_known(struct kray *k, const kray_value *args, size_t nargs);
/* Waits up to *timeout_ms (-1: for ever) until none of refs[n] is a fast call whose get
 * timed out: each is then cached here, queued for krayd again, or held by krayd.  Sets
 * *timeout_ms to what is left.  0, -ETIMEDOUT (no message set) or -errno. */
int kc_fast_settle(struct kray *k, const kray_ref *refs, size_t n, int64_t *timeout_ms);
/* kray_cancel() of ref: a fast call whose get timed out, and whose answer has not come,
 * is cancelled here (its value is the cancellation error; its answer is dropped).  0 or
 * -ENOMEM. */
int kc_fast_cancel(struct kray *k, const kray_ref *ref);
/* Whether ref is a fast call whose get timed out, still in flight. */
bool kc_fast_is_late(struct kray *k, const kray_ref *ref);
/* A released ref whose registration is still pending: dropped, or a late fast call's
 * answer will be; returns whether it was one of these (krayd never heard of it). */
bool kc_fast_forget(struct kray *k, const kray_ref *ref);
/* fast_actor.c: actor calls on the fast path.  Notes a call (seq) to actor; whether a
 * call to actor may go fast; appends the FAST_EXEC's trailer for call seq to b (0 or
 * -errno); a bounced actor FAST_EXEC (body after the header) that says NO_ACTOR. */
void kc_fast_actor_called(struct kray *k, const kray_ref *actor, uint32_t seq);
/* The handle got a handle to actor from krayd (kray_actor_create, kray_get_actor), or
 * released one: only the calls of a holder go fast (krayd checks the daemon path's). */
void kc_fast_actor_held(struct kray *k, const kray_ref *actor);
void kc_fast_actor_released(struct kray *k, const kray_ref *actor);
bool kc_fast_actor_ok(struct kray *k, const kray_ref *actor);
int kc_fast_actor_trailer(struct kray *k, const struct kray_oid *actor, uint32_t seq,
			  struct kbuf *b);
void kc_fast_actor_bounced(struct kray *k, const uint8_t *body, size_t len);
/* Everything queued for krayd is being sent: no actor call waits in the buffer. */
void kc_fast_actor_flushed(struct kray *k);
/* The ring (ring.c): where it notes actor's worker's slot (+ 1; 0: unknown), NULL for an
 * actor whose calls do not go fast; actor has no fast worker now (as a NO_ACTOR bounce). */
uint32_t *kc_fast_actor_ring_slot(struct kray *k, const struct kray_oid *actor);
void kc_fast_actor_no_worker(struct kray *k, const struct kray_oid *actor);
void kc_fast_actor_free(struct kray *k);
/* Worker side: opens the worker's fast connection (0 or -EOPNOTSUPP); takes one arrived
 * FAST_EXEC's exec body into ret_body (1; 0 when none arrived; -EPIPE); sends the answer
 * to the fast task, from the RESULT frame in res (empty: not run), and says in *ran
 * (unless NULL) what krayd is to count of it. */
struct kc_fast_ran {
	bool ran; /* res held a result: the call ran (or was refused with an error) */
	bool failed; /* an error went back in the fast frame */
	bool stored; /* the result went through krayd (FAST_STORE) */
	bool raised; /* the function raised (a language's exception as its value) */
	uint64_t ns; /* its run time */
};
int kc_fast_worker_open(struct kray *k);
/* A pool worker krayd gave an actor to host lets go of its pool fast connection (and ring
 * slot) before the constructor runs; it asks again once constructed (worker.c). */
void kc_fast_worker_close(struct kray *k);
int kc_fast_take(struct kray *k, struct kbuf *ret_body);
int kc_fast_reply(struct kray *k, struct kbuf *res, const struct kray_oid *task,
		  struct kc_fast_ran *ran);

/* ring.c: the fast path's shared-memory ring (`fastpath-ring`, docs/fastpath.md).  A
 * FAST_OPEN reply with the ring's memfd and the `fast_workers` map (fds[0], fds[1]) maps
 * them (0 or -errno; the fds are the caller's). */
int kc_ring_map(struct kray *k, const int *fds);
void kc_ring_unmap(struct kray *k);
/* Driver: runs the FAST_EXEC frame exec (for task) on an idle worker through the ring.
 * 1: the answer frame (FAST_RESULT or FAST_LOST, header included) is in *ret_frame;
 * 0: no idle worker (the daemon path); -ETIMEDOUT at deadline (ns, -1: none): the call
 * stays in flight and its answer comes on the fast connection, as a late socket call's;
 * -EPIPE: krayd hung up the fast connection (it died: no answer will come). */
int kc_ring_call(struct kray *k, const struct kbuf *exec, const struct kray_oid *task,
		 int64_t deadline, struct kbuf *ret_frame);
/* Worker: sleeps until a ring request or frames from krayd come (or timeout_ms passes).
 * Returns KC_RING_REQ and/or KC_RING_KRAYD (also on a timeout: look anyway), or -errno. */
#define KC_RING_REQ 1
#define KC_RING_KRAYD 2
int kc_ring_wait(struct kray *k, int timeout_ms);
/* Worker: the request that woke it, its exec body (the FAST_EXEC frame's, after the
 * fast prefix) into ret_body: 1; 0 when there is none (a stray or forged request:
 * ignored); 2 when the claimant's request is unfit to run (garbage, or no memory): it is
 * to be answered NOT_RUN for *ret_task (kc_fast_reply with an empty result). */
int kc_ring_take(struct kray *k, struct kbuf *ret_body, struct kray_oid *ret_task);
/* Worker: whether the answer to the fast task it runs goes on the ring, and sends it
 * there (the fast frame, header included): 1 sent, 0 not a ring call or its driver gave
 * up (send it on the fast connection: the program gives it to the driver). */
int kc_ring_reply(struct kray *k, uint8_t *frame, size_t len);

/* worker.c: called by kray_get() in a worker before it blocks. */
void kc_worker_before_block(struct kray *k);
/* async.c: runs the callbacks of the finished kray_get_async() gets. */
void kc_async_run(struct kray *k);

#endif
