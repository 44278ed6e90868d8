/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kray.h - the C API of kray, a distributed task framework in the line of Ray.
 *
 * A driver connects with kray_init(), submits remote functions with kray_call() and gets
 * futures (kray_ref) back; kray_get() waits for their values.  Remote functions live in
 * shared libraries on the job's code search path and are declared with KRAY_REMOTE().
 *
 * Conventions: every call that acts returns 0 or a negative errno, and on error leaves a
 * message retrievable with kray_errmsg().  Out-parameters are written only on success.
 * Running out of memory inside the library is -ENOMEM from the call that needed it, never
 * an abort(): what that call queued is dropped and the handle stays usable, except where
 * a reply being received could not be kept (the handle then says -EPIPE from then on).
 * A kray handle is not thread-safe: use one per thread.  The library owns no thread.
 */
#ifndef KRAY_KRAY_H
#define KRAY_KRAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KRAY_VERSION_MAJOR 0
#define KRAY_VERSION_MINOR 1

typedef struct kray kray; /* a connection to krayd: a driver, or a worker's own */
typedef struct kray_ctx kray_ctx; /* the task a worker is running */

/* A future: names the task that will make the object and the process that owns it. */
typedef struct kray_ref {
	uint32_t node, owner, seq, index;
} kray_ref;

enum kray_type {
	KRAY_NIL = 0,
	KRAY_INT64 = 1,
	KRAY_F64 = 2,
	KRAY_BYTES = 3,
	KRAY_REF = 4, /* only as an argument: resolved to the object's value before the call */
	KRAY_ERROR = 5, /* only from kray_get: the task failed; err says how, data why */
	KRAY_ACTOR = 8, /* an actor handle (.ref), passed to tasks and actors as is */
};

enum kray_errkind {
	KRAY_ERR_NONE = 0,
	KRAY_ERR_TASK = 1, /* the function reported an error (kray_fail) */
	KRAY_ERR_WORKER_DIED = 2, /* its worker died max_retries + 1 times */
	KRAY_ERR_UNKNOWN_FUNCTION = 3, /* no such function on the job's code search path */
	KRAY_ERR_BAD_ARGS = 4, /* wrong number of arguments, or an argument refers to itself */
	KRAY_ERR_OBJECT_LOST = 5, /* the object does not exist, or this process does not
				   * hold a ref to it (never received, or released) */
	KRAY_ERR_INTERNAL = 6,
	KRAY_ERR_STORE_FULL = 7, /* the object store is full and nothing could be spilled */
	KRAY_ERR_ACTOR_DIED = 8, /* the actor is dead: killed, crashed past max_restarts, or
				  * its creator exited; the message says which */
	KRAY_ERR_CANCELLED = 9, /* the task was cancelled (kray_cancel) */
	KRAY_ERR_TIMED_OUT = 10, /* the task ran past its timeout_ms (its worker was
				  * replaced) */
	KRAY_ERR_STREAM_END = 11, /* a streaming call has no more items (kray_stream_next) */
	KRAY_ERR_UNSCHEDULABLE = 12, /* its resources' "@node=" names a node that is gone or
				      * lacks the other resources (kray_call_opts) */
};

/*
 * A value: an argument, a return value, or what kray_get() hands back.  For KRAY_BYTES,
 * data/len; for KRAY_ERROR, data is a NUL-terminated message (len excludes the NUL) and
 * err the kind.  Values from kray_get() own their memory: release with kray_value_clear().
 * A large object's bytes (over the inline limit, 64 KiB by default) are a read-only view
 * of the object store's shared memory, not a copy: writing to them faults.  A spilled one
 * may come back lazily (krayd's lazy-restore): its pages are read from disk as they are
 * first touched, and a page whose spill file was damaged meanwhile raises SIGBUS in the
 * process that touches it (docs/objects.md, "Lazy restore").  So may one that lives on
 * another node: its pages appear as its transfer brings them, and a page of an object lost
 * before it came raises SIGBUS (docs/objects.md, "Lazy gets of objects on another node").
 */
typedef struct kray_value {
	enum kray_type type;
	enum kray_errkind err;
	int64_t i;
	double f;
	const void *data;
	size_t len;
	kray_ref ref;
	/* From kray_get(): the refs this object contains (nested refs).  The getter now
	 * holds a reference on each (it borrows them) and releases them with kray_release(). */
	const kray_ref *refs;
	size_t nrefs;
	void *priv_; /* owned memory, freed by kray_value_clear() */
} kray_value;

#define KRAY_V_INT(x) ((kray_value){ .type = KRAY_INT64, .i = (x) })
#define KRAY_V_F64(x) ((kray_value){ .type = KRAY_F64, .f = (x) })
#define KRAY_V_BYTES(p, n) ((kray_value){ .type = KRAY_BYTES, .data = (p), .len = (n) })
#define KRAY_V_REF(r) ((kray_value){ .type = KRAY_REF, .ref = (r) })
#define KRAY_V_ACTOR(a) ((kray_value){ .type = KRAY_ACTOR, .ref = (a) })

/* Frees what a value owns and resets it to KRAY_NIL.  NULL-safe. */
void kray_value_clear(kray_value *v);

/* ---- connecting ---------------------------------------------------------------------- */

struct kray_config {
	/* Socket path of a running krayd (kray start).  NULL: start a private krayd for this
	 * process, stopped by kray_shutdown(), as ray.init() does.  The environment variable
	 * KRAY_ADDRESS is used when this is NULL and it is set. */
	const char *address;
	/* Colon-separated directories and .so files holding this job's remote functions. */
	const char *code_path;
	/* Private krayd only: CPU slots (0: one per online CPU) and krayd binary (NULL: next
	 * to libkray, then $KRAY_KRAYD, then PATH). */
	int num_cpus;
	const char *krayd_path;
	/* Private krayd only: more settings for it, as krayd flags ("--store-size", "2G",
	 * ...), NULL-terminated; NULL: none. */
	const char *const *krayd_args;
};

/*
 * Connects to krayd, or starts a private one.  cfg may be NULL (all defaults).
 * Returns 0 and *ret_k, or a negative errno; on error *ret_k is untouched and a message is
 * printed by nobody: use kray_init_errmsg() for it.
 */
int kray_init(kray **ret_k, const struct kray_config *cfg);

/* The reason the last kray_init() in this thread failed. */
const char *kray_init_errmsg(void);

/* Disconnects (releasing every ref this process holds) and stops a private krayd.
 * NULL-safe. */
void kray_shutdown(kray *k);

/* Who k is: the node, its client id (the owner of the objects it makes), the job its
 * calls belong to (in a worker running a task: the task's job) and krayd's inline limit. */
struct kray_ids {
	uint32_t node, client, job;
	uint32_t inline_max; /* largest object carried inline (larger ones are memfds) */
};
void kray_ids(const kray *k, struct kray_ids *ret_ids);

/* The message of the last failed call on k (never NULL). */
const char *kray_errmsg(const kray *k);

/* The connection's socket, for poll()-based event loops (see "kray in your event loop"
 * below: wait on it with kray_process(), never read it yourself). */
int kray_fd(const kray *k);

/* ---- tasks and objects --------------------------------------------------------------- */

struct kray_call_opts {
	unsigned num_returns; /* 0 is allowed; the default (opts NULL) is 1 */
	int max_retries; /* retries after a worker (or node) death; -1 forever; default 3 */
	/* Custom resources the task needs, "NAME:QTY,..." (NULL: none).  In a cluster a task
	 * whose resources this node lacks runs on a node that has them (docs/cluster.md);
	 * if no live node has them, it fails with KRAY_ERR_BAD_ARGS.  One scheduling
	 * strategy may be among them (Ray's scheduling_strategy, docs/cluster.md):
	 * "@spread" (the live nodes that have its resources, in turn), "@node=XXXXXXXX" (only
	 * that node, its id in hex from kray_ids() or kray_list_nodes(); the task fails with
	 * KRAY_ERR_UNSCHEDULABLE if the node is gone or lacks the resources) or
	 * "@prefer=XXXXXXXX" (that node if it can, else anywhere). */
	const char *resources;
	/* A streaming generator (Ray's num_returns="streaming"): num_returns must be 1, and
	 * that ref is the call's completion; the function sends its items with kray_yield()
	 * while it runs and the caller takes them with kray_stream_next().  The call runs on
	 * the caller's node. */
	int streaming;
	/* A task still running after timeout_ms fails with KRAY_ERR_TIMED_OUT and its
	 * worker is killed and replaced; it is not retried (0: no limit; tasks only, not
	 * actor method calls). */
	unsigned timeout_ms;
	/* A task's first argument (a ref) as an inline stand-in, for the fast path only
	 * (docs/fastpath.md): a call whose first argument is a ref may still go fast, and
	 * the worker's function then gets this value (bytes of at most 8 KiB, or a scalar)
	 * in its place.  A function that cannot run from the stand-in returns KRAY_NOT_RUN,
	 * and the call goes to krayd with the ref after all.  The Python wrapper sends a
	 * function's pickled body this way: a worker that loaded it runs the call from its
	 * cache.  NULL: none (a ref argument makes the call take krayd's path). */
	const kray_value *fast_arg0;
};
#define KRAY_CALL_OPTS_DEFAULT ((struct kray_call_opts){ .num_returns = 1, .max_retries = 3 })

/*
 * Submits fn(args...) and writes its num_returns futures to ret_refs.  Arguments of type
 * KRAY_REF are resolved to their objects' values before the call (the task waits for
 * them).  Submission is asynchronous and batched: nothing is sent until a call that waits
 * (kray_get, kray_status) or kray_flush().  Returns 0, -EINVAL (bad name, counts or
 * argument type), -E2BIG (frame too large) or -EPIPE (krayd is gone).  A name
 * "fn:label" runs fn; krayd keeps run-time statistics, errors and kray top under the
 * whole name (the Python wrapper labels each function so).
 */
int kray_call(kray *k, const char *fn, const kray_value *args, size_t nargs,
	      const struct kray_call_opts *opts, kray_ref *ret_refs);

/* Stores a value (not a REF or ERROR) as a new object owned by this process.  A large
 * value is copied once, into the object store (see kray_create()).  Returns 0, -EINVAL,
 * -ENOSPC (the store is full and nothing can be spilled) or -EPIPE. */
int kray_put(kray *k, const kray_value *v, kray_ref *ret_ref);

/*
 * kray_put() of the bytes of n pieces laid end to end (a KRAY_BYTES object), without
 * gathering them first: a large object is written from the pieces straight into the
 * store's memory.  The Python wrapper puts a pickled value and its buffers this way.
 * Returns as kray_put(), or -EFBIG when they add up to more than KRAY_OBJECT_MAX.
 */
struct iovec;
int kray_put_iov(kray *k, const struct iovec *iov, size_t n, kray_ref *ret_ref);

/*
 * Waits until all n objects exist and writes their values to ret_vals (each to be
 * released with kray_value_clear()).  timeout_ms < 0 waits forever.
 * Returns 0; -ETIMEDOUT when the timeout passed first (ret_vals untouched);
 * -EREMOTEIO when at least one value is a KRAY_ERROR (all of ret_vals is written, and
 * kray_errmsg() gives the first error); -EPIPE if krayd went away; -EINVAL on bad input;
 * in a worker, -ECANCELED when the task calling it was cancelled (kray_cancel()).
 * In a worker, a get that waits gives the worker's CPU slot back while it waits.
 */
int kray_get(kray *k, const kray_ref *refs, size_t n, int64_t timeout_ms, kray_value *ret_vals);

/*
 * Stores a value that contains refs: the new object keeps
 * the objects they name alive until it is freed itself, and a process that gets it
 * borrows them (see kray_value.refs).  This process must hold each ref.
 * Any size: a value above the inline limit becomes a large object (as kray_put()) that
 * contains the refs the same way, and crosses nodes with them.
 * Returns 0, -EINVAL (too many refs: at most 65,535), -ENOSPC or -EPIPE.
 */
int kray_put_refs(kray *k, const kray_value *v, const kray_ref *refs, size_t nrefs,
		  kray_ref *ret_ref);

/* Drops this process's references; an object nobody references is freed.  Batched like
 * kray_call(): krayd hears of it with the next call that waits, or kray_flush(). */
int kray_release(kray *k, const kray_ref *refs, size_t n);

/*
 * Keeps refs this process borrowed (the refs inside an argument object of the task it
 * runs, lent for the duration of the call) as references of its own, as Ray's borrowers
 * do: the objects live until it kray_release()s them, and it may return them later.  A
 * ref the process does not hold now is ignored.  Batched like kray_release(); it must be
 * called before the task returns.  Returns 0, -EINVAL or -EPIPE.
 */
int kray_hold(kray *k, const kray_ref *refs, size_t n);

/*
 * Creates an object of size bytes to be written in place (no extra copy): *ret_data is
 * writable memory until kray_seal(), which publishes the object and unmaps it.  Objects
 * over the inline limit live in a memfd from the object store's pool of pre-faulted
 * memory, sealed (F_SEAL_WRITE|SHRINK|GROW|SEAL) before anyone else sees them, or (1 MiB
 * or more, krayd's pool-reuse) handed to readers as read-only descriptors, the memory
 * reused once nobody holds it; either way immutable to every reader.  With pool-reuse
 * the memory may hold an earlier object's bytes until written.
 * Returns 0, -ENOSPC (the store is full and nothing can be spilled: every object is
 * mapped, or the spill directory is full), -EINVAL or -EPIPE.
 */
int kray_create(kray *k, size_t size, kray_ref *ret_ref, void **ret_data);

/* Publishes an object made by kray_create().  Returns 0, -ENOENT (not being created
 * here) or -EPIPE. */
int kray_seal(kray *k, const kray_ref *ref);

/*
 * Waits until num_ready of the n objects exist (or the timeout passes: timeout_ms < 0
 * waits forever, 0 only polls) and writes 1 or 0 per ref to ret_ready and the count to
 * *ret_num_ready.  Returns 0 (also on timeout), -EINVAL, -EPIPE, or in a worker -ECANCELED
 * when the task calling it was cancelled.
 */
int kray_wait(kray *k, const kray_ref *refs, size_t n, size_t num_ready, int64_t timeout_ms,
	      uint8_t *ret_ready, size_t *ret_num_ready);

/*
 * Cancels the task that makes ref (one of its return refs; this process must hold it), as
 * Ray's cancel: a task not started yet (queued, or waiting for its arguments) fails at
 * once and never runs; a running one is killed with its worker when force is set, else a
 * Python task is interrupted (KeyboardInterrupt), a kray_get()/kray_wait() it is blocked
 * in returns -ECANCELED, and a C task runs to its end; either way its results become
 * KRAY_ERROR values of kind KRAY_ERR_CANCELLED.  With recursive, the tasks it submitted
 * (queued, waiting or running) are cancelled too.  An actor call that has not started
 * (in krayd or queued in the actor's process) never runs; one that has started, a
 * finished task and a put object are left alone.  Batched like kray_call().  Returns 0,
 * -EINVAL or -EPIPE.
 */
int kray_cancel(kray *k, const kray_ref *ref, int force, int recursive);

/* Sends everything buffered. */
int kray_flush(kray *k);

struct kray_stats {
	uint64_t node, drivers, workers, workers_busy, workers_blocked;
	uint64_t tasks_submitted, tasks_finished, tasks_failed, tasks_retried;
	uint64_t tasks_queued, tasks_waiting;
	uint64_t objects; /* objects in the store, pending ones included */
	uint64_t object_bytes; /* bytes of inline objects */
	uint64_t workers_started, workers_died, frames_rejected;
	uint64_t store_capacity; /* bytes */
	uint64_t store_bytes; /* bytes of large objects in memory */
	uint64_t objects_pinned; /* large objects some process has mapped */
	uint64_t objects_spilled, bytes_spilled; /* now on disk */
	uint64_t spilled_total, restored_total; /* bytes ever written to / read from disk */
	uint64_t evicted_total; /* objects freed because nothing referenced them */
	uint64_t pool_bytes; /* pre-faulted memory ready for new objects */
	uint64_t actors_alive, actors_pending; /* pending: waiting for CPUs or arguments */
	uint64_t tasks_handed_back; /* pipelined to a worker that then blocked in a get, and
				     * handed back unstarted to run elsewhere */
	uint64_t num_cpus; /* this node's CPU slots (krayd's num-cpus) */
	uint64_t fast_tasks; /* synchronous calls steered in the kernel (docs/fastpath.md) */
	uint64_t fast_bounced; /* fast calls that found no idle worker (ran on krayd's path) */
	uint32_t store_huge; /* KRAY_STORE_THP (shmem transparent huge pages), KRAY_STORE_HUGETLB
			      * (hugetlb memfds): the huge pages new large objects get; 0: 4 KiB */
	uint32_t loop_stall_max_us; /* the longest krayd's event loop went without waiting for
				     * events since it started (µs): every client waited that long */
};

#ifndef KRAY_STORE_THP /* the same in uapi/kray_wire.h */
#define KRAY_STORE_THP 1u
#define KRAY_STORE_HUGETLB 2u
#endif

/* Asks krayd for its counters. */
int kray_status(kray *k, struct kray_stats *ret_stats);

/* What krayd's limits did to greedy, slow or runaway clients, and what it keeps
 * (docs/limits.md).  All counters since krayd started unless "now". */
struct kray_guard_stats {
	uint64_t jobs; /* job records now: a connected driver's, or a job with tasks here */
	uint64_t actors_dead; /* dead actors' records kept now (bounded) */
	uint64_t connections, buffer_bytes; /* open now, and their buffers' bytes */
	uint64_t clients_refused; /* past max-clients */
	uint64_t closed_slow; /* past hello-timeout-ms or frame-timeout-ms */
	uint64_t closed_output; /* past client-output-limit */
	uint64_t closed_buffers; /* past client-buffers-max */
	uint64_t closed_nomem; /* for want of memory */
	uint64_t accept_pauses; /* accepts paused at the descriptor limit */
	uint64_t links_refused; /* node links refused before they proved the token */
	uint64_t nest_stalled; /* 1 while every pool worker is blocked in a get with tasks
				* queued (nested deeper than max-workers) */
	uint64_t workers_over; /* pool workers started past max-workers for nesting, now */
	uint64_t nest_failed; /* tasks failed for nesting past the raised limit */
	uint64_t tasks_timed_out; /* tasks ended by their timeout */
	uint64_t jobs_ended; /* jobs ended with their driver (its tasks cancelled) */
};

/* Asks krayd for its guards' counters. */
int kray_guard_status(kray *k, struct kray_guard_stats *ret);

/* A line per actor krayd knows (id, class, namespace/name, state, and why it waits or
 * died), for people: *ret_text is malloc()ed, NUL-terminated, freed by the caller. */
int kray_describe_actors(kray *k, char **ret_text);

/*
 * The cluster's key-value table, kept by the head (and in its GCS log, so it survives a
 * head restart).  Keys are 1 to 255 bytes, values up to 1 MiB.  kray_kv_get() gives a
 * malloc()ed copy (*ret_val, freed by the caller) and its length.  Each returns 0,
 * -ENOENT (get: no such key), -ENOTCONN (not in a cluster), -EAGAIN or -ETIMEDOUT (the
 * head is not reachable), -EINVAL or -EPIPE.  Deleting a missing key is not an error.
 */
int kray_kv_put(kray *k, const char *key, const void *val, size_t len);
int kray_kv_get(kray *k, const char *key, void **ret_val, size_t *ret_len);
int kray_kv_del(kray *k, const char *key);

/*
 * Placement groups (docs/util.md): kray_pg_create() asks krayd to reserve bundles of
 * resources, "CPU:1,GPU:1;CPU:2" (bundles separated by ';'), with a strategy below; the
 * group's id (12 hex characters) goes to ret_id (13 bytes).  The group may be pending:
 * kray_pg_table() says its state (JSON: a list of groups with their id, name, strategy,
 * state PENDING/CREATED/REMOVED, why it waits, bundles and their nodes; malloc()ed, freed
 * by the caller).  Tasks use a group through its resources (CPU_group_0_ID:1, ...).
 * kray_pg_remove() frees the resources, kills the group's actors and fails its queued
 * tasks.  Each returns 0 or -errno (-EINVAL, -EEXIST: the name is taken, -ENOENT).
 */
#define KRAY_PLACEMENT_PACK 0
#define KRAY_PLACEMENT_SPREAD 1
#define KRAY_PLACEMENT_STRICT_PACK 2
#define KRAY_PLACEMENT_STRICT_SPREAD 3
int kray_pg_create(kray *k, const char *bundles, int strategy, const char *name, int detached,
		   char *ret_id);
int kray_pg_remove(kray *k, const char *id);
int kray_pg_table(kray *k, char **ret_json);

/* A line per node of the cluster (id, address, ALIVE or DEAD, CPUs, load, resources),
 * for people: *ret_text is malloc()ed, NUL-terminated ("" outside a cluster), freed by
 * the caller.  Returns 0, -EPIPE or -EBADMSG. */
int kray_describe_nodes(kray *k, char **ret_text);

/*
 * The task timeline of the connected krayd (docs/timeline.md): the last tasks its workers
 * ran (`timeline-events` of them), as Chrome trace JSON ({"traceEvents": [...]}, one "X"
 * event per task: pid = node, tid = worker, name = function; chrome://tracing and Perfetto
 * open it).  *ret_json is malloc()ed, NUL-terminated, freed by the caller; with the
 * timeline off it holds no task events.  Returns 0, -EPIPE, -EBADMSG or -ENOMEM.
 */
int kray_timeline(kray *k, char **ret_json);

/*
 * The connected krayd's objects as JSON (docs/state.md): {"objects": [...], "total": N,
 * "shown": M}, the largest first, at most 10,000, each with object_id, task_id,
 * object_size, task_status, type, location (INLINE, SHARED_MEMORY, SPILLED, NONE), refs,
 * pins and error.  *ret_json is malloc()ed, freed by the caller.  Returns 0, -EPIPE,
 * -EBADMSG or -ENOMEM.
 */
int kray_describe_objects(kray *k, char **ret_json);

/*
 * The connected krayd's worker processes and drivers as JSON (docs/state.md):
 * {"api", "node_id", "workers": [{worker_id (krayd's worker number), client_id, pid,
 * state (STARTING, IDLE, BUSY, BLOCKED, DEAD), tasks_in_flight, tasks_done, task, actor_id,
 * ...}], "drivers": [{client_id, job_id, pid, start_time_ms}]}.  *ret_json is malloc()ed,
 * freed by the caller.  Returns 0, -EPIPE, -EBADMSG or -ENOMEM.
 */
int kray_describe_workers(kray *k, char **ret_json);

/*
 * Application metrics (docs/observability.md; Python: kray.util.metrics), served by the
 * node's krayd on its Prometheus endpoint (`metrics = HOST:PORT`) as ray_<name>:
 * ray_<name>_total for a counter, ray_<name> for a gauge, ray_<name>_bucket{le=...},
 * _sum and _count for a histogram.  A metric is its type, name ([a-zA-Z_:][a-zA-Z0-9_:]*,
 * up to 128 bytes), description (up to 1024 bytes) and, for a histogram, its boundaries
 * (1 to 64, finite, strictly ascending); a series is a metric with values for its tags
 * (up to 16 pairs tag_keys[i] = tag_values[i], in any order; a key is a Prometheus label
 * name, up to 64 bytes, not "le" nor starting with "__"; a value up to 256 bytes).
 */
#define KRAY_COUNTER 1
#define KRAY_GAUGE 2
#define KRAY_HISTOGRAM 3
#define KRAY_METRIC_MAX_TAGS 16
#define KRAY_METRIC_MAX_BOUNDARIES 64
struct kray_metric {
	int type; /* KRAY_COUNTER, KRAY_GAUGE or KRAY_HISTOGRAM */
	const char *name;
	const char *description; /* NULL: "" */
	const double *boundaries; /* a histogram's; else NULL */
	size_t nboundaries;
	const char *const *tag_keys; /* ntags each; NULL when ntags is 0 */
	const char *const *tag_values;
	size_t ntags;
};

/*
 * Records an update of the series m names: a counter goes up by value (> 0, finite), a
 * gauge is set to value, a histogram observes value when buckets is NULL; with buckets
 * (nboundaries + 1 counts, the last for values above every boundary), it adds those
 * observations and value is their sum.  The frame is queued like kray_call()'s and sent
 * with the next call that waits, or kray_flush(): a caller with many updates sums them
 * first (as kray.util.metrics does, one frame per series per flush); krayd merges the
 * node's processes (counters and histograms add; a gauge keeps the last value set).
 * Returns 0, -EINVAL (kray_errmsg() says what is wrong), -ENOMEM or -EPIPE.  krayd drops
 * (and counts in kray_app_metric_dropped_total / _refused_total) an update whose name has
 * another type there, or that its table (1,024 names, 10,000 series) has no room for.
 */
int kray_metric_record(kray *k, const struct kray_metric *m, double value, const uint64_t *buckets);

/*
 * Declares a metric (its tags are not looked at) and waits for krayd's answer: 0, -EEXIST
 * (the name has another type, or a histogram other boundaries, on this node; kray_errmsg()
 * says which), -ENOSPC (krayd's table has no room for another name), -EINVAL or -EPIPE.
 */
int kray_metric_define(kray *k, const struct kray_metric *m);

/*
 * The same listings as structs, for programs (the Python package's kray.nodes() uses
 * them).  krayd sends text (the lines above); libkray parses it, so lines it cannot parse
 * (a newer krayd's, say) are skipped rather than guessed at.  *ret is a malloc()ed array of
 * *ret_n entries (NULL and 0 when there are none), freed by the caller with free().
 * Returns 0, -EPIPE, -EBADMSG or -ENOMEM.  docs/libkray.md shows both forms.
 */
struct kray_node_info {
	uint32_t node; /* the node id (krayd's) */
	uint16_t port; /* where it takes node links */
	uint8_t alive; /* 1 ALIVE, 0 DEAD (missed its heartbeats) */
	uint8_t head; /* 1 for the head (the first entry, when known) */
	uint8_t self; /* 1 for the node this process is connected to */
	uint32_t num_cpus, workers, workers_busy;
	uint64_t tasks_queued, tasks_finished;
	uint64_t store_mib; /* memory the object store uses, MiB */
	char address[48]; /* IPv4, dotted */
	char resources[256]; /* custom resources, "NAME:QTY,..." ("" for none) */
	uint64_t reserved_[4];
};
/* Outside a cluster there is no list: 0 entries. */
int kray_list_nodes(kray *k, struct kray_node_info **ret, size_t *ret_n);

enum kray_actor_state {
	KRAY_ACTOR_PENDING = 0, /* waiting for constructor arguments or for resources */
	KRAY_ACTOR_STARTING = 1,
	KRAY_ACTOR_ALIVE = 2,
	KRAY_ACTOR_DEAD = 3,
};
struct kray_actor_info {
	kray_ref id; /* the handle, as kray_actor_create() gives it */
	enum kray_actor_state state;
	int32_t pid; /* an alive actor's worker, else 0 */
	uint32_t calls_in_flight, restarts; /* an alive actor's, else 0 */
	char class_name[256];
	char ns[256], name[256]; /* a named actor's namespace and name; "" when unnamed */
	char detail[640]; /* why it waits, how it died, or its pid and calls (as described) */
	uint64_t reserved_[4];
};
int kray_list_actors(kray *k, struct kray_actor_info **ret, size_t *ret_n);

/* ---- kray in your event loop ------------------------------------------------------------ */

/*
 * As hiredis' async client: libkray never owns the loop and never blocks in these calls.
 * Queue work (kray_call, kray_put, kray_release and kray_get_async only queue), then
 * watch kray_fd() for POLLIN (and POLLOUT while kray_want_write() says so) and call
 * kray_process() whenever it is ready.  Example: examples/poll_loop.c; docs/eventloop.md.
 * Blocking calls (kray_get, kray_wait, ...) still work on the same handle: replies to
 * asynchronous gets that arrive meanwhile are kept for the next kray_process().
 */

/*
 * The callback of kray_get_async(): status 0 with *val the value, -EREMOTEIO with *val the
 * error value (KRAY_ERROR), or another -errno with *val KRAY_NIL (-EPIPE: krayd is gone,
 * -ENOMEM).  *val is the callback's: kray_value_clear() it, or move it somewhere and keep
 * it.  It runs only from kray_process(), and may queue more work on k.
 */
typedef void kray_result_fn(kray *k, kray_ref ref, int status, kray_value *val, void *arg);

/* Asks for ref's value without waiting: fn(k, ref, status, val, arg) runs from a later
 * kray_process() once it is there (a value this process has already: from the next one).
 * Keep ref until then.  kray_shutdown() drops callbacks that have not run, without running
 * them.  Returns 0, or -EINVAL, -ENOMEM or -EPIPE (fn will not run). */
int kray_get_async(kray *k, const kray_ref *ref, kray_result_fn *fn, void *arg);

/*
 * Does what kray_fd() has for us, without blocking: writes what the socket takes of the
 * queued requests, reads what arrived, completes the gets it answers and runs their
 * callbacks (in submission order).  Returns how many callbacks ran, or -errno: -EPIPE
 * when krayd is gone (every pending callback has then run, with -EPIPE), -ENOMEM (nothing
 * lost: call it again), -EINVAL (k NULL).
 */
int kray_process(kray *k);

/* 1 while queued requests wait for kray_fd() to be writable (poll it for POLLOUT and call
 * kray_process()), else 0. */
int kray_want_write(const kray *k);

/* kray_get_async() calls whose callbacks have not run yet. */
size_t kray_pending(const kray *k);

/* With on set, calls that only queue (kray_call, kray_put of inline values, kray_release)
 * never wait for the socket either: past 1 MiB queued they write what it takes now, and
 * kray_process() writes the rest.  Off (the default) they block until it is written.
 * Returns 0 or -EINVAL. */
int kray_set_nonblocking(kray *k, int on);

/* ---- actors -------------------------------------------------------------------------- */

/*
 * An actor is an instance of a class declared with KRAY_ACTOR() in a shared library on
 * the job's code path, living in its own worker process.  Its handle is a kray_ref: pass
 * it to kray_actor_call(), to tasks and to other actors (KRAY_V_ACTOR), and drop it with
 * kray_release().  An actor ends when no handle to it remains or its creator exits (unless
 * detached), or when killed.
 */
struct kray_actor_opts {
	const char *name; /* NULL: unnamed; else unique in its namespace */
	const char *ns; /* namespace of the name; NULL: "" */
	int detached; /* outlives its creator; ends only by kray_kill() */
	int max_restarts; /* restarts after its process dies; -1 forever; default 0 */
	int max_task_retries; /* retries of calls in flight when it died; -1 forever */
	unsigned max_concurrency; /* methods that may run at once, on threads; default 1 */
	double num_cpus; /* CPU slots it holds while alive; default 0 */
	const char *resources; /* custom resources it holds while alive: "GPU:1,ssd:0.5"
				* (the node declares its own with krayd's `resources`),
				* and maybe a scheduling strategy (kray_call_opts) */
};
#define KRAY_ACTOR_OPTS_DEFAULT ((struct kray_actor_opts){ .max_concurrency = 1 })

/*
 * Creates an actor of class cls with constructor args.  Returns 0 and its handle once
 * krayd accepted it (the constructor runs in the actor's process; if it fails, every call
 * fails with its error), or -EEXIST (the name is taken), -EHOSTDOWN (its "@node=" names a
 * node that is gone or lacks its resources), -EINVAL, -EPIPE.
 */
int kray_actor_create(kray *k, const char *cls, const kray_value *args, size_t nargs,
		      const struct kray_actor_opts *opts, kray_ref *ret_actor);

/*
 * Calls method on the actor, like kray_call(): returns num_returns futures.  Calls made
 * through one connection run in the order they were made, also when earlier ones wait for
 * arguments.  A call on a dead actor fails with KRAY_ERR_ACTOR_DIED at get.
 */
int kray_actor_call(kray *k, kray_ref actor, const char *method, const kray_value *args,
		    size_t nargs, const struct kray_call_opts *opts, kray_ref *ret_refs);

/* Looks up a named actor (ns NULL: "") and gives this process a handle to it.
 * Returns 0, -ENOENT (no live actor has that name) or -EPIPE. */
int kray_get_actor(kray *k, const char *name, const char *ns, kray_ref *ret_actor);

/* In an actor's method (or constructor), on kray_ctx_client(): a handle to that actor
 * itself, as kray_get_actor() gives one (named or not).  Returns 0, -ENOENT (not the
 * worker of a live actor) or -EPIPE. */
int kray_actor_self(kray *k, kray_ref *ret_actor);

/* Kills the actor's process now.  With no_restart, or when no restarts are left, the actor
 * is dead for good; else it restarts.  Returns 0, -ENOENT (unknown or already dead) or
 * -EPIPE. */
int kray_kill(kray *k, kray_ref actor, int no_restart);

/* Declares an actor class: a state struct type, a constructor with nargs arguments:
 *
 *	struct counter { int64_t n; };
 *	KRAY_ACTOR(Counter, struct counter, 0) { self->n = 0; return 0; }
 *	KRAY_METHOD(Counter, incr, 0) { return kray_return_int(ctx, 0, ++self->n); }
 *
 * The constructor and methods see ctx, self (the state, zeroed before the constructor),
 * args and nargs.  KRAY_ACTOR_DESTRUCTOR(Counter) { ... } runs when the actor ends
 * normally (not when its process is killed). */
typedef int (*kray_method_fn)(kray_ctx *ctx, void *self, const kray_value *args, size_t nargs);
typedef void (*kray_dtor_fn)(void *self);

#define KRAY_CLASS_SYMBOL_PREFIX "kray_class__"
#define KRAY_METHOD_SYMBOL_PREFIX "kray_method__"
#define KRAY_DTOR_SYMBOL_PREFIX "kray_dtor__"

struct kray_class_desc {
	uint32_t abi; /* KRAY_FN_ABI */
	int32_t nargs; /* constructor arguments, or KRAY_NARGS_ANY */
	const char *name;
	size_t state_size;
	kray_method_fn ctor;
};

struct kray_method_desc {
	uint32_t abi;
	int32_t nargs;
	const char *name;
	kray_method_fn fn;
};

#define KRAY_ACTOR(cls, state_type, nargs_decl)                                                   \
	typedef state_type kray_state__##cls;                                                     \
	static int kray_ctor__##cls(kray_ctx *, kray_state__##cls *, const kray_value *, size_t); \
	static int kray_ctor_thunk__##cls(kray_ctx *c, void *s, const kray_value *a, size_t n)    \
	{                                                                                         \
		return kray_ctor__##cls(c, s, a, n);                                              \
	}                                                                                         \
	__attribute__((visibility("default"), used))                                              \
	const struct kray_class_desc kray_class__##cls = { KRAY_FN_ABI, (nargs_decl), #cls,       \
							   sizeof(state_type),                    \
							   kray_ctor_thunk__##cls };              \
	static int kray_ctor__##cls(kray_ctx *ctx __attribute__((unused)),                        \
				    kray_state__##cls *self __attribute__((unused)),              \
				    const kray_value *args __attribute__((unused)),               \
				    size_t nargs __attribute__((unused)))

#define KRAY_METHOD(cls, method, nargs_decl)                                                       \
	static int kray_m__##cls##__##method(kray_ctx *, kray_state__##cls *, const kray_value *,  \
					     size_t);                                              \
	static int kray_mt__##cls##__##method(kray_ctx *c, void *s, const kray_value *a, size_t n) \
	{                                                                                          \
		return kray_m__##cls##__##method(c, s, a, n);                                      \
	}                                                                                          \
	__attribute__((visibility("default"), used))                                               \
	const struct kray_method_desc kray_method__##cls##__##method = {                           \
		KRAY_FN_ABI, (nargs_decl), #method, kray_mt__##cls##__##method                     \
	};                                                                                         \
	static int kray_m__##cls##__##method(kray_ctx *ctx __attribute__((unused)),                \
					     kray_state__##cls *self __attribute__((unused)),      \
					     const kray_value *args __attribute__((unused)),       \
					     size_t nargs __attribute__((unused)))

#define KRAY_ACTOR_DESTRUCTOR(cls)                                                         \
	static void kray_d__##cls(kray_state__##cls *);                                    \
	static void kray_dt__##cls(void *s)                                                \
	{                                                                                  \
		kray_d__##cls(s);                                                          \
	}                                                                                  \
	__attribute__((visibility("default"), used)) const kray_dtor_fn kray_dtor__##cls = \
		kray_dt__##cls;                                                            \
	static void kray_d__##cls(kray_state__##cls *self __attribute__((unused)))

/* ---- remote functions ---------------------------------------------------------------- */

typedef int (*kray_fn)(kray_ctx *ctx, const kray_value *args, size_t nargs);

#define KRAY_FN_ABI 1
#define KRAY_FN_SYMBOL_PREFIX "kray_fn__"

/* A job library may also export `void kray_warm(void)`: a worker calls it when it has
 * loaded the library for a job (so once per job that names it: make it idempotent),
 * before that job's first call there.  Idle pool workers load the code of the last
 * driver that connected with a code path, and, with krayd's warm-code-path, that code as
 * they start, so whatever kray_warm() prepares (the Python package's starts the
 * interpreter) is not paid by the first call.  It runs on the worker's loop thread. */
#define KRAY_WARM_SYMBOL "kray_warm"
#define KRAY_NARGS_ANY (-1)

struct kray_fn_desc {
	uint32_t abi; /* KRAY_FN_ABI */
	int32_t nargs; /* argument count, or KRAY_NARGS_ANY */
	const char *name;
	kray_fn fn;
};

/*
 * Declares a remote function in a shared library:
 *
 *	KRAY_REMOTE(square, 1)
 *	{
 *		return kray_return_int(ctx, 0, args[0].i * args[0].i);
 *	}
 *
 * The body sees ctx, args and nargs, returns 0 on success or the result of kray_fail().
 * A return slot the function leaves unset is KRAY_NIL.
 */
#define KRAY_REMOTE(fname, nargs_decl)                                                             \
	static int fname(kray_ctx *ctx, const kray_value *args, size_t nargs);                     \
	__attribute__((visibility("default"), used))                                               \
	const struct kray_fn_desc kray_fn__##fname = { KRAY_FN_ABI, (nargs_decl), #fname, fname }; \
	static int fname(kray_ctx *ctx __attribute__((unused)),                                    \
			 const kray_value *args __attribute__((unused)),                           \
			 size_t nargs __attribute__((unused)))

/* Sets return slot idx (copied; a large value goes straight into the object store).
 * Returns 0, -EINVAL (idx out of range, bad type), -ENOMEM (no memory for the copy: the
 * slot is left NIL), or -ENOSPC when a large value does not fit in the store: the task
 * then fails with KRAY_ERR_STORE_FULL whatever it returns. */
int kray_return(kray_ctx *ctx, unsigned idx, const kray_value *v);
int kray_return_int(kray_ctx *ctx, unsigned idx, int64_t x);
int kray_return_f64(kray_ctx *ctx, unsigned idx, double x);
int kray_return_bytes(kray_ctx *ctx, unsigned idx, const void *data, size_t len);

/*
 * Sets return slot idx to a BYTES value that contains refs (nested refs, as
 * kray_put_refs()): whoever gets the result borrows them.  A value above the inline limit
 * goes to the object store as a large object with its refs (as kray_return() does).  The
 * worker must hold each ref until the task's result is sent (refs it made, or that its
 * arguments lent it).  Returns 0 or -EINVAL (bad slot, type, or more than 65,535 refs).
 */
int kray_return_refs(kray_ctx *ctx, unsigned idx, const kray_value *v, const kray_ref *refs,
		     size_t nrefs);

/* Sets return slot idx to a large object this worker made with kray_create() and
 * kray_seal() on kray_ctx_client(ctx): krayd moves it into the slot (no copy).  Returns 0
 * or -EINVAL (not this worker's put object, or no client in this context). */
int kray_return_object(kray_ctx *ctx, unsigned idx, const kray_ref *ref);

/*
 * Streaming generators.  In a call made with kray_call_opts.streaming, sends the next item
 * to the caller at once (as kray_return() would store a result: a large value goes
 * straight into the object store).  The call's own return (its completion) is set as
 * usual.  nrefs refs inside a small value go with it (see kray_return_refs()).  Returns
 * 0, -EINVAL (bad value, or not on a thread that holds the connection), -ENOMEM, -ENOSPC,
 * or -EPIPE.
 */
int kray_yield(kray_ctx *ctx, const kray_value *v, const kray_ref *refs, size_t nrefs);
/* The same for a large object this worker made (kray_create(), kray_seal()): moved. */
int kray_yield_object(kray_ctx *ctx, const kray_ref *ref);

/*
 * The caller's side of a streaming call.  *stream starts as the call's return ref (the
 * completion); this process holds the next item's ref from the submit on.  Waits up to
 * timeout_ms (< 0: forever) for the next item and returns 0 with *ret_item (a ref this
 * process now holds, to be released as any other: its value is the item, or the
 * function's error at that point), 1 when the stream has ended (no more items), or
 * -ETIMEDOUT, -ECANCELED (in a worker whose task was cancelled), -EINVAL, -EPIPE.  An
 * item that is a KRAY_ERROR ends the stream: the call after it returns 1.
 */
int kray_stream_next(kray *k, kray_ref *stream, int64_t timeout_ms, kray_ref *ret_item);
/* Drops the next item's ref of a stream not read to its end (items yielded later are not
 * kept).  Returns 0. */
int kray_stream_close(kray *k, kray_ref *stream);

/* Records the task's error message; return its result from the function. */
int kray_fail(kray_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Says that the return slots hold the error the task raised, in a language's own form (a
 * pickled Python exception): krayd then shows the task as FAILED in `kray timeline` and
 * the state API, while its callers get the values as set. */
void kray_ctx_raised(kray_ctx *ctx);

/* The worker's own connection, for nested tasks, puts, gets and actor calls.  NULL in
 * an actor with max_concurrency > 1 unless its constructor shared the connection
 * (kray_ctx_host): a kray handle serves one thread at a time. */
kray *kray_ctx_client(kray_ctx *ctx);

/*
 * How an actor's methods run, chosen by its constructor (struct kray_host_opts, given to
 * kray_ctx_host() before the constructor returns):
 *
 * - lock/unlock (both or neither): the worker's connection is shared with the actor's own
 *   threads.  The worker's loop thread holds the lock while it uses the connection; any
 *   other thread may use kray_ctx_client() (or the handle it returned) while it holds the
 *   lock.  Such a thread must not wait in kray_get() or kray_wait() for a result that the
 *   loop must send: it gets with kray_get_async(), whose callbacks the loop thread runs
 *   (under the lock), after a kray_flush().
 * - deferred: the methods start on the loop thread, one after the other, without method
 *   threads, and a method may return KRAY_PENDING and finish later, from any thread, with
 *   kray_ctx_done(): up to max_concurrency calls are in progress at once (an event loop
 *   of a language host runs them).
 * - wait (deferred hosts, optional): the loop thread waits here instead of in poll(),
 *   without the lock, until one of the n descriptors is readable (it may return sooner),
 *   so that a language host runs its event loop meanwhile on this very thread, and the
 *   methods it started finish there without a thread switch.
 * - cancel (deferred hosts, optional): kray_cancel() of a call that has started here
 *   (Ray cancels an async actor's running call).  Called on the loop thread, without the
 *   lock, at the loop's next turn, with the call's task id (kray_ctx_task()); the host
 *   ends the call as it likes with kray_ctx_done(), or lets it run.  Without it, a
 *   started call runs to its end, as a running call of any other actor does.
 */
struct kray_host_opts {
	void (*lock)(void *arg);
	void (*unlock)(void *arg);
	void *arg;
	int deferred;
	void (*wait)(void *arg, const int *fds, unsigned n);
	void (*cancel)(void *arg, kray_ref task);
};

/* What a method returns when it finishes later with kray_ctx_done(). */
#define KRAY_PENDING 1

/* What a task returns when it cannot run from its fast stand-in argument
 * (kray_call_opts.fast_arg0), before it set any return slot: the call goes to krayd
 * with the real argument instead.  On krayd's path it fails the task. */
#define KRAY_NOT_RUN 2

/* Called in an actor's constructor, on the loop thread: how its methods run (above), once
 * the constructor succeeds.  Returns 0, or -EINVAL (not a constructor, or only one of
 * lock and unlock). */
int kray_ctx_host(kray_ctx *ctx, const struct kray_host_opts *o);

/* Finishes a method that returned KRAY_PENDING, from any thread, with the result a
 * method returns (0, or an error after kray_fail()); its return slots must be set before.
 * ctx is gone once this returns.  Returns 0, or -EINVAL when ctx is not a method call of
 * an actor with a host (threads, or deferred). */
int kray_ctx_done(kray_ctx *ctx, int rc);

/* The max_concurrency of the actor whose constructor or method is running (1 in a
 * task). */
unsigned kray_ctx_max_concurrency(const kray_ctx *ctx);

/* The id of the running task: its return objects are this with index 0, 1, ...  In an
 * actor's constructor it is the actor's id with index 0. */
kray_ref kray_ctx_task(const kray_ctx *ctx);

/*
 * Whether kray_cancel() asked to stop the running task or method call (Ray's
 * get_runtime_context().is_canceled()): a call that cannot be interrupted polls it and
 * ends itself.  A running task is asked with KRAY_CANCEL_SIGNAL (a C task runs on; this
 * turns true); a started call of an actor other than an async one runs on too, and its
 * caller gets the cancellation whatever it returns.  On the loop thread of an actor
 * without threads this reads what krayd sent meanwhile (a system call).  Calls that went
 * on the fast path (docs/fastpath.md) are not told.
 */
int kray_ctx_cancelled(kray_ctx *ctx);

/* Number of return slots the caller asked for. */
unsigned kray_ctx_num_returns(const kray_ctx *ctx);

/* The worker host's main loop (kray-worker and language hosts call it).  Returns an exit
 * status. */
int kray_worker_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* KRAY_KRAY_H */
