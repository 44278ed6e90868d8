/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's state: one struct per thing the daemon tracks (connection, worker, task,
 * object, pending get) and the daemon itself.  Everything runs on the one io_uring loop
 * thread, so nothing here is locked.
 *
 * Who owns what:
 *  - struct krayd owns the connections, the workers, the object table and the task queue.
 *  - A task is owned by exactly one place at a time: the dependency wait (deps_left > 0),
 *    the ready queue, or a worker's in-flight list.
 *  - An object is freed when it is ready and nothing references it (refs == 0): refs
 *    count client references (mirrored per connection in conn->refs) and argument holds
 *    of pending tasks.
 */
#ifndef KRAYD_KRAYD_H
#define KRAYD_KRAYD_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "../../common/buf.h"
#include "../../common/oidmap.h"
#include "../../common/wire.h"
#include "bpf/bpf.h"
#include "core/config.h"
#include "core/ext.h"

#define LOOP_TIMERS 4

struct krayd;
struct worker;
struct actor;
struct listener;

enum conn_role {
	ROLE_NONE = 0,
	ROLE_DRIVER = KRAY_ROLE_DRIVER,
	ROLE_WORKER = KRAY_ROLE_WORKER,
	ROLE_METRICS = 100, /* a Prometheus scrape */
	ROLE_PEER_AUTH = 101, /* a TCP link to another node that has not proven the token */
	ROLE_PEER = 102, /* an authenticated link to another node (daemon/cluster/net.c) */
};

struct link;
struct cluster;
struct conn;

/*
 * What the loop does with a connection's events: each part that makes connections has one
 * (proto.c: clients and workers; metrics.c: Prometheus scrapes; cluster/net.c: node links).
 * frame: a whole frame arrived (the loop parses them, at most frame_max bytes of body);
 * returns 0, or conn_fail()'s code to refuse it and close the connection.  recv: bytes
 * arrived in c->in, unparsed (instead of frame).  sent: some output went.  spliced,
 * connected: a conn_splice() or conn_connect() finished with res.  gone: it closed.
 * All but frame/recv may be NULL.
 */
struct conn_kind {
	int (*frame)(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
	void (*recv)(struct conn *c);
	void (*sent)(struct conn *c);
	void (*spliced)(struct conn *c, int res);
	void (*connected)(struct conn *c, int res);
	void (*gone)(struct conn *c);
};

/* A handler of one frame type (proto_on()). */
typedef int (*proto_handler)(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);

/* Descriptors queued to go out with a connection's frames (SCM_RIGHTS), each owned by
 * the queue (a dup) and due with the frame at stream positions [start, end). */
struct fdq_ent {
	int fd;
	uint64_t start, end;
};

struct fdq {
	struct fdq_ent *e;
	unsigned head, n, cap;
};

struct conn {
	struct krayd *d;
	const struct conn_kind *kind;
	int fd;
	uint32_t frame_max; /* the largest frame body it may send (0: KRAY_FRAME_MAX) */
	uint32_t id; /* client id: the owner field of the oids this connection creates */
	enum conn_role role;
	uint32_t job; /* the job this connection's submissions belong to */
	uint32_t pid; /* drivers: the pid they said (for the cluster's job table) */
	uint64_t start_ms; /* drivers: when they connected (realtime) */
	struct kbuf in; /* received, not yet parsed */
	struct kbuf out; /* queued replies */
	struct kbuf sending; /* what the in-flight send is sending */
	struct oidmap refs; /* oid -> references this connection holds */
	struct oidmap pins; /* oid -> views of large objects handed to this connection */
	struct fdq fdq; /* fds for frames in `sending` and `out` */
	int frame_fds[KRAY_FDS_PER_MSG]; /* fds of the frame being built */
	unsigned frame_nfds;
	uint64_t sent; /* stream bytes sent so far */
	unsigned send_nfds; /* fds attached to the send in flight */
	struct msghdr msg; /* the send in flight */
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(int) * KRAY_FDS_PER_MSG)];
		struct cmsghdr align;
	} cmsg;
	struct worker *worker; /* ROLE_WORKER */
	uint32_t spawned; /* the id of the worker krayd started on this socketpair; 0: an
			   * accepted connection (a worker hello is refused on it) */
	struct link *link; /* ROLE_PEER_AUTH, ROLE_PEER */
	uint16_t fast_slot; /* drivers: its fast connection's slot + 1 (bpf_fast.c); 0 none */
	int ops; /* io_uring operations in flight on fd */
	bool recv_armed, send_armed, closed, dirty;
	bool splicing; /* node links: a splice writes to the socket (xfer.c); sends wait */
	bool close_when_sent; /* metrics: close once the reply is out */
	const char *why; /* why its last frame was refused (conn_fail()), for the ERROR frame */
	struct conn *next, *prev; /* d->conns */
	struct conn *dirty_next; /* d->dirty list: has output to send */
};

enum worker_state { W_STARTING, W_READY, W_DEAD };

struct worker {
	uint32_t id;
	pid_t pid;
	enum worker_state state;
	struct conn *conn;
	struct task *head, *tail; /* in flight, in dispatch order; head is running */
	unsigned inflight;
	bool blocked; /* in a get: its CPU slot is given back */
	uint32_t cpu_milli; /* CPU (thousandths of a slot) its running task holds */
	bool plain; /* runs tasks of the default shape only (1 CPU, no custom resources):
		     * more of those may be pipelined to it */
	struct actor *actor; /* the actor it hosts: not in the task pool */
	struct oidmap jobs; /* {job, 0, 0, 0}: jobs whose code path it has been told */
	uint64_t tasks_done; /* results it sent */
	uint64_t bpf_wait, bpf_run; /* run-queue wait and on-CPU ns at the last BPF sample */
	unsigned bpf_slot; /* its slot in the BPF `submits` map, when bpf_in */
	bool bpf_in, bpf_dirty; /* accounted in the BPF maps; its winfo entry is stale */
	uint16_t fast_slot; /* its fast connection's slot + 1 (bpf_fast.c); 0: none */
	struct worker *next;
};

/* Per-function statistics, interned by name: drive how deep krayd pipelines tasks. */
struct fnstat {
	char *name;
	uint8_t name_len;
	uint64_t avg_ns; /* moving average of the run time; 0 = not known yet */
	uint64_t runs;
	struct fnstat *next;
};

struct task {
	struct kray_oid id; /* index 0 */
	uint32_t job;
	struct fnstat *fn;
	uint16_t num_returns, nargs;
	int16_t max_retries;
	uint16_t attempts; /* worker deaths so far */
	bool cancelled; /* kray_cancel(): fails with KRAY_WE_CANCELLED instead of finishing */
	struct kray_oid parent; /* the task whose worker submitted it (all zero: a driver) */
	int deps_left;
	bool holds; /* holds a reference on each REF argument */
	bool ctor; /* an actor's constructor (owned by the actor, never queued) */
	struct actor *actor; /* a method call (or constructor) of this actor */
	struct conn *submitter; /* only while its arguments are checked */
	int64_t submit_ns; /* when it was submitted (dispatch latency, starvation guard) */
	struct wire_resource *res; /* custom resources it needs (a node that has them runs it) */
	uint8_t nres;
	bool res_held; /* its custom resources are taken from the node's while it runs */
	uint32_t cpu_milli; /* CPU slots it holds while it runs, in thousandths (1000 unless
			     * submitted with "CPU:n"; 0 runs beside the slots) */
	uint32_t fwd_node; /* owner side: the node it was forwarded to (0: none) */
	uint32_t fwd_link; /* owner side: the id of the link it went over */
	struct task *fwd_prev; /* owner side: in the forwarded list (next is the other way) */
	uint32_t from_link; /* run here for another node: the id of the link it came from */
	bool ractor; /* owner side: a call of an actor on another node (ractor_id) */
	uint16_t held_remote; /* owner side: its returns still kept by the node that ran it:
			       * the task is kept as their lineage */
	struct kray_oid ractor_id;
	uint8_t *args; /* the submit's encoded arguments */
	uint32_t args_len;
	struct task *next; /* ready queue, actor queue or worker in-flight list */
};

/*
 * An actor: a class instance in its own worker process.  Its method calls queue here in
 * submission order and go to its worker, at most max_concurrency at a time; a call waits
 * at the head until its arguments exist, so later calls never overtake it.  Its handle is
 * the object with the actor's id: whoever holds a reference to that object holds a
 * handle, and when the object is freed the actor ends.
 */
enum actor_state { A_PENDING, A_STARTING, A_ALIVE, A_DEAD };

struct actor {
	struct kray_oid id; /* index KRAY_OID_ACTOR */
	struct task *ctor; /* class name, job and constructor arguments */
	uint32_t owner; /* the creator's connection id */
	char *name, *ns; /* NULL: unnamed */
	bool detached, no_restart;
	int16_t max_restarts, max_task_retries;
	uint16_t max_concurrency;
	uint32_t slots_milli; /* CPU slots held while placed */
	struct wire_resource res[KRAY_RESOURCES_MAX]; /* custom resources held while placed */
	int nres;
	bool placed;
	enum actor_state state;
	struct worker *w;
	struct task *qhead, *qtail; /* calls not sent yet */
	unsigned inflight;
	uint16_t restarts;
	uint8_t death_err; /* enum kray_wire_err */
	char death[512];
	struct actor *next;
};

/* Something waiting for an object (a task's argument, a get): ready(d, arg, o) runs once
 * o is sealed (store_wait()). */
struct dep {
	struct dep *next;
	void (*ready)(struct krayd *d, void *arg, struct obj *o);
	void *arg;
};

enum obj_state { OBJ_PENDING, OBJ_READY };

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
	bool spilled;
	bool exec_pin; /* pinned while an EXEC that takes it is built */
	bool kmod; /* published in /dev/kray (kmod.c) */
	uint64_t size;
	struct conn *writer; /* the connection writing it (pending large objects) */
	uint32_t remote_link; /* pending: made elsewhere and kept there; pulled over this link
			       * when wanted (remote.c) */
	bool pulling;
	struct kray_oid *contained; /* nested refs: objects this one keeps alive */
	uint16_t ncontained;
	struct obj *lru_prev, *lru_next; /* large objects in memory, oldest first */
	struct dep *deps;
};

struct getreq {
	struct conn *conn; /* NULL once the connection is gone */
	uint64_t req;
	bool wait; /* a kray_wait(): answer with ready flags once `missing` reaches 0 */
	uint32_t n, missing;
	unsigned deps; /* dep entries still pointing here */
	bool done;
	int64_t deadline_ns; /* < 0: none */
	struct kray_oid *ids;
	struct getreq *next, *prev; /* d->gets, when it has a deadline */
};

struct job {
	uint32_t id;
	char *code_path;
	struct job *next;
};

struct krayd {
	struct config cfg;
	struct io_uring ring;
	int listen_fd, signal_fd;
	int metrics_fd; /* -1: no metrics endpoint */
	int kmod_fd; /* /dev/kray, attached as this node's daemon; -1: not used */
	uint32_t node;
	uint32_t next_client, next_worker;
	bool stopping;

	struct conn *conns, *dirty;
	struct worker *workers;
	unsigned nworkers, starting, start_failures;
	struct job *jobs;
	struct oidmap job_index; /* {job, 0, 0, 0} -> struct job * */
	struct fnstat *fns;

	struct actor *actors;
	uint32_t actor_slots_milli; /* CPU slots held by placed actors */
	struct node_resource {
		struct wire_resource r; /* name and total */
		uint64_t used_milli;
	} res[KRAY_RESOURCES_MAX]; /* this node's custom resources */
	int nres;
	struct oidmap objs; /* oid -> struct obj * */
	struct obj *lru_head, *lru_tail; /* large objects in memory */
	struct pool *pool;
	struct task *qhead, *qtail; /* ready queue */
	struct getreq *gets; /* gets with a deadline */
	struct oidmap cancelled; /* tasks cancelled while they wait for arguments */

	struct kray_wire_stats st;
	/* The parts outside the core: their hook tables (core/ext.h), and the state each
	 * keeps (the core never reads it). */
	const struct conn_kind *client_kind; /* a worker's connection (proto_client) */
	/* The core's own upward calls, wired by main.c, so that worker.c and store.c call
	 * nothing above them: an actor's worker connected (actor_worker_ready); a worker was
	 * reaped (sched_worker_lost); the last handle of an actor went (actor_handle_gone). */
	void (*worker_ready)(struct krayd *d, struct worker *w);
	void (*worker_lost)(struct krayd *d, struct worker *w, const char *how, bool was_starting,
			    bool fast_ran);
	void (*handle_gone)(struct krayd *d, const struct kray_oid *id);
	const struct ext *ext[EXT_MAX];
	unsigned next_ext;
	proto_handler handlers[KRAY_MSG_TYPE_MAX + 1]; /* proto_on() */
	/* What registered with the loop (loop_listen(), loop_timer(), ...). */
	struct {
		struct listener *listeners;
		struct {
			int64_t (*next)(struct krayd *d);
			void (*run)(struct krayd *d, int64_t now);
		} timers[LOOP_TIMERS];
		unsigned ntimers;
		void (*turn)(struct krayd *d);
		void (*child)(struct krayd *d);
	} loop;
	struct kbpf *bpf; /* BPF programs and maps (daemon/bpf.h); NULL: BPF off */
	struct kfast *fast; /* the BPF fast path (daemon/bpf.h); NULL: off */
	struct cluster *cl; /* NULL: a single node (daemon/cluster/cluster.h) */
};

/* loop.c */
int loop_init(struct krayd *d);
int loop_run(struct krayd *d);
void loop_fini(struct krayd *d);
void conn_flush_later(struct conn *c);
/* Adds fd (dup'ed) to the frame being built in c->out.  Returns 0 or -errno (-EMFILE,
 * or -E2BIG past KRAY_FDS_PER_MSG). */
int conn_frame_fd(struct conn *c, int fd);
/* Ends the frame begun at out offset off: its length, its fd count, and its fds queued. */
void conn_end_frame(struct conn *c, size_t off);
void conn_close(struct conn *c, const char *why);
/* Refuses the frame being handled: notes why (a static string) for the ERROR frame that
 * answers it, and returns code (a negative errno) for the handler to return. */
int conn_fail(struct conn *c, const char *why, int code);
/* A connection for fd (taken over), of that kind, with its first receive armed. */
struct conn *conn_new(struct krayd *d, int fd, enum conn_role role,
		      const struct conn_kind *kind);
/* The same, without a receive armed (conn_connect() and conn_start_recv() do). */
struct conn *conn_new_idle(struct krayd *d, int fd, enum conn_role role,
			   const struct conn_kind *kind);
/* Accepts connections on listening socket fd as they come: accepted(d, new fd).  what
 * names it in logs.  Returns 0 or -ENOMEM.  The caller closes fd after loop_fini(). */
int loop_listen(struct krayd *d, int fd, void (*accepted)(struct krayd *d, int fd),
		const char *what);
/* Has the loop wake by next(d) (CLOCK_MONOTONIC ns; -1: no deadline) and then call run
 * (may be NULL).  Returns 0 or -ENOSPC past LOOP_TIMERS. */
int loop_timer(struct krayd *d, int64_t (*next)(struct krayd *d),
	       void (*run)(struct krayd *d, int64_t now));
/* turn runs after each batch of completions (the scheduler); child on SIGCHLD. */
static inline void loop_on_turn(struct krayd *d, void (*turn)(struct krayd *d))
{
	d->loop.turn = turn;
}
static inline void loop_on_child(struct krayd *d, void (*child)(struct krayd *d))
{
	d->loop.child = child;
}
/* Arms c's send if it has output (node links call it after queueing). */
void conn_kick(struct conn *c);
int64_t now_ns(void);

/* metrics.c: the Prometheus endpoint (when `metrics` is set) */
int metrics_init(struct krayd *d);
void metrics_fini(struct krayd *d);
void metrics_render(struct krayd *d, struct kbuf *b);

/* proto.c: frames from clients and workers */
/* The ACTOR_REPLY to a client's ACTOR_CREATE, GET_ACTOR or KILL. */
void actor_reply(struct conn *c, uint64_t req, int status, const struct kray_oid *id,
		 const char *why);
/* Has fn answer frames of this type from clients and workers (a part outside the core:
 * the fast path's, KMOD_PIN, KV).  fn returns 0, or conn_fail()'s code. */
void proto_on(struct krayd *d, uint16_t type, proto_handler fn);
int proto_handle(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
/* Clients' and workers' connections; proto_accepted() makes one for an accepted fd. */
extern const struct conn_kind proto_client;
void proto_accepted(struct krayd *d, int fd);
int proto_release(struct conn *c, const uint8_t *body, uint32_t len);
void proto_conn_gone(struct conn *c);

/* store.c */
struct obj *store_get(struct krayd *d, const struct kray_oid *id);
struct obj *store_create(struct krayd *d, const struct kray_oid *id);
void store_seal(struct krayd *d, struct obj *o, const struct wire_value *v);
/* Whether connection c holds every ref a value contains (it may then store them). */
bool store_holds_refs(struct conn *c, const struct wire_value *v);
void store_seal_error(struct krayd *d, struct obj *o, uint8_t err, const char *msg, size_t len);
void store_ref(struct obj *o);
/* Calls ready(d, arg, o) when pending object o is sealed (once; o is held while it runs). */
void store_wait(struct krayd *d, struct obj *o, void (*ready)(struct krayd *d, void *arg,
							      struct obj *o), void *arg);
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

/* Every seal of a large object's memfd: immutable from then on. */
#define STORE_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* store_mem.c: the memory of large objects (capacity, pool, LRU, spill and restore) */
/* Spills until size more bytes fit.  Returns 0 or -ENOSPC. */
int store_make_room(struct krayd *d, uint64_t size);
/* A memfd of size bytes to write (restore: for a restore from disk), or -errno. */
int store_new_memfd(struct krayd *d, uint64_t size, bool restore);
/* o (sealed, in memory) joins / leaves the spill order. */
void store_lru_add(struct krayd *d, struct obj *o);
void store_lru_del(struct krayd *d, struct obj *o);
/* Brings spilled o back into memory (no-op when it is there).  Returns 0 or -errno. */
int store_restore(struct krayd *d, struct obj *o);
/* Frees o's memory or spill file. */
void store_drop_large(struct krayd *d, struct obj *o);
int store_mem_init(struct krayd *d);
void store_mem_fini(struct krayd *d);

/* store_large.c: writing large objects */
int store_create_large(struct conn *c, const struct kray_oid *id, uint64_t size, int *ret_fd);
int store_seal_large(struct conn *c, const struct kray_oid *id);
/* Gives pending object o a memfd of size bytes that c writes (an object arriving from
 * another node), then store_seal_large().  Returns 0 or -errno (-ENOSPC, -EBUSY). */
int store_begin_large(struct conn *c, struct obj *o, uint64_t size);
/* Undoes store_begin_large(): o is pending with no memory again. */
void store_abort_large(struct krayd *d, struct obj *o);
int store_move(struct krayd *d, struct obj *dst, struct obj *src);

/* pool.c: pre-faulted memfds */
struct pool *pool_start(uint64_t budget);
/* A memfd of at least size bytes (pre-faulted if the pool had one), or -errno. */
int pool_take(struct pool *p, uint64_t size);
uint64_t pool_bytes(struct pool *p);
void pool_stop(struct pool *p);

/* task.c */
void task_submit(struct conn *c, const struct wire_submit *s);
void task_finish(struct conn *from, struct task *t, struct wire_rd values, uint32_t n);
int task_set_resources(struct krayd *d, struct task *t, const char *s, size_t len);
void task_fail(struct krayd *d, struct task *t, uint8_t err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void task_free(struct krayd *d, struct task *t);
/* Drops t's references on its arguments (a dead actor's constructor keeps its struct). */
void task_release_holds(struct krayd *d, struct task *t);
/* Takes holds on t's ref arguments and registers it on the pending ones.  Returns 1 when
 * it must wait, 0 when it can run, -1 when it failed (a missing or error argument; t is
 * failed and freed, unless it is a constructor: then its actor is). */
int task_resolve(struct krayd *d, struct conn *submitter, struct task *t);
/* The first argument of t that is an error object, or NULL (*ret_arg: its index). */
struct obj *task_error_arg(struct krayd *d, struct task *t, unsigned *ret_arg);
void task_fail_from_arg(struct krayd *d, struct task *t, struct obj *o, unsigned arg);

/* Fails t with KRAY_WE_CANCELLED. */
void task_fail_cancelled(struct krayd *d, struct task *t);
/* Fails t if it was cancelled while it waited; returns whether it did. */
bool task_cancelled_fail(struct krayd *d, struct task *t);

/* cancel.c */
/* Cancels the task making object id (see kray_cancel()).  flags: KRAY_CANCEL_*. */
void task_cancel(struct krayd *d, const struct kray_oid *id, uint32_t flags);

/* actor.c */
/* This node's custom resource of that name, or NULL. */
struct node_resource *node_res(struct krayd *d, const char *name);
int actor_create(struct conn *c, const struct wire_actor_create *m, struct kray_oid *ret_id,
		 const char **ret_why);
/* The same for an actor another node asked for: id and job given; c is the link. */
int actor_create_as(struct conn *c, const struct wire_actor_create *m,
		    const struct kray_oid *id, uint32_t job, const char **ret_why);
struct actor *actor_find(struct krayd *d, const struct kray_oid *id);
struct actor *actor_by_name(struct krayd *d, const char *name, size_t len, const char *ns,
			    size_t ns_len);
int actor_kill(struct krayd *d, struct actor *a, bool no_restart);
void actor_enqueue(struct krayd *d, struct actor *a, struct task *t);
void actor_dispatch(struct krayd *d, struct actor *a);
void actor_ctor_ready(struct krayd *d, struct actor *a);
void actor_ctor_failed(struct krayd *d, struct actor *a, uint8_t err, const char *msg, size_t len);
void actor_result(struct conn *c, struct task *t, const struct wire_result *r);
void actor_worker_ready(struct krayd *d, struct worker *w);
void actor_worker_died(struct krayd *d, struct worker *w, const char *how);
void actor_handle_gone(struct krayd *d, const struct kray_oid *id);
void actor_owner_gone(struct krayd *d, uint32_t owner);
void actor_fini(struct krayd *d);
unsigned actor_count(struct krayd *d, enum actor_state state);
void actor_describe(struct krayd *d, struct kbuf *b);

/* sched.c */
/* Returns 0, or -1 when t cannot be sent (too many or too large arguments, an argument
 * that cannot be restored): t has been failed. */
int sched_send_exec(struct krayd *d, struct worker *w, struct task *t);
/* Gives back the actor handles a worker's connection borrowed for running t. */
void sched_unlend(struct conn *c, struct task *t);
void sched_enqueue(struct krayd *d, struct task *t, bool front);
/* Takes the queued task *pp (prev: the one before it, NULL at the head) out of the queue. */
struct task *sched_unqueue(struct krayd *d, struct task **pp, struct task *prev);
void sched_dispatch(struct krayd *d);
/* Gives back the custom resources t held on its worker (result, hand-back, death). */
void sched_res_give(struct krayd *d, struct task *t);
void sched_result(struct conn *c, const struct wire_result *r);
void sched_reject(struct conn *c, const struct kray_oid *task);
void sched_blocked(struct worker *w, bool blocked);
struct fnstat *sched_fn(struct krayd *d, const char *name, uint8_t len);
/* Sends w the JOB frame (code path) of job, unless it has had it. */
void sched_tell_job(struct worker *w, uint32_t job, const char *path);
const char *job_code_path(struct krayd *d, uint32_t job);
int job_add(struct krayd *d, uint32_t id, const char *path, size_t len);
void sched_fini(struct krayd *d);
/* Worker w was reaped (how it died): its tasks are queued again or failed, or its actor is
 * told; with was_starting, three failed starts in a row fail the queue. */
void sched_worker_lost(struct krayd *d, struct worker *w, const char *how, bool was_starting,
		       bool fast_ran);

/* worker.c */
int worker_spawn(struct krayd *d);
/* A worker dedicated to hosting actor a (started now; a is told when it connects). */
int worker_spawn_actor(struct krayd *d, struct actor *a);
struct worker *worker_by_id(struct krayd *d, uint32_t id);
void worker_attach(struct worker *w, struct conn *c);
void worker_conn_lost(struct worker *w);
void worker_reap(struct krayd *d);
void worker_stop_all(struct krayd *d);

/* getreq.c */
void get_start(struct conn *c, uint64_t req, const struct wire_oids *ids, int64_t timeout_ms,
	       bool wait, uint32_t num_ready);
void get_expire(struct krayd *d, int64_t now);
int64_t get_next_deadline(struct krayd *d);
void get_conn_gone(struct conn *c);

#endif
