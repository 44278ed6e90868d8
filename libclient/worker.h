/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker host's private pieces: the job code it loaded (code.c), one task or method
 * call from EXEC to RESULT (call.c), the actor it may host and its threads (host.c), and
 * the loop that ties them together (worker.c).
 */
#ifndef KRAY_LIBCLIENT_WORKER_H
#define KRAY_LIBCLIENT_WORKER_H

#include <pthread.h>

#include "client.h"

struct job;

/*
 * The last task krayd asked to interrupt (KRAY_CANCEL_SIGNAL's value: owner << 32 | seq),
 * kept by the worker's signal handler (worker.c; defined in call.c).  A request can come before its task has
 * started here (still on its way, its code loading): call_execute() then fails the task
 * instead of running it.  A language host that installs its own handler passes the signal
 * on to this one.
 */
extern volatile uintptr_t kc_cancel_asked;

/* An EXEC frame as received, with its large arguments' memfds.  One allocation holds
 * the descriptors and the body (exec_new); a fast task's body is its own (body_apart). */
struct exec {
	uint8_t *body;
	uint32_t len;
	unsigned nfds;
	int *fds;
	bool fast; /* a FAST_EXEC: the answer goes back on the fast connection */
	bool body_apart; /* body was allocated on its own: exec_free frees it */
	bool actor_call; /* a fast actor call (fast_actor.c): runs only after after_seq */
	uint32_t after_seq;
	struct exec *next;
	int data[]; /* nfds descriptors, then the body */
};

#define STOPPED_MAX 64 /* started calls cancelled, remembered (kray_ctx_cancelled) */
#define FAST_ACTOR_SEEN 64 /* callers whose order an actor's worker keeps for fast calls */

struct kray_ctx {
	struct kray *k; /* NULL on an actor's thread */
	struct kray *shared; /* the connection its actor shares with its threads, or NULL */
	kray_ref task; /* the EXEC's task id (a constructor's: the actor id at index 0) */
	unsigned num_returns;
	kray_value *rets;
	char *err; /* kray_fail()'s text (malloc'd) */
	bool failed;
	bool raised; /* kray_ctx_raised(): the values are the error it raised */
	int store_err; /* a large return did not fit in the object store */
	unsigned max_concurrency;
	uint32_t yielded; /* kray_yield(): items sent so far */
};

/* One call from EXEC to RESULT. */
struct call {
	struct exec *e;
	struct wire_exec x;
	char name[KRAY_NAME_MAX + 1];
	kray_fn fn; /* a task, or */
	kray_method_fn method; /* a method or constructor (self is the actor's state) */
	void *self;
	kray_value *args;
	struct kray_ctx ctx;
	int rc;
	bool not_run; /* the task returned KRAY_NOT_RUN (its fast stand-in would not do) */
	uint64_t t0, ns;
	/* A method of a host's (see host.c): what it returned, and, for KRAY_PENDING, pending
	 * once it returned and finished once kray_ctx_done() ran, under the host's lock. */
	struct host *host;
	int returned;
	uint64_t returned_ns;
	bool pending, finished;
	struct call *next;
};

/*
 * The fast calls this worker ran and krayd has not been told of yet (fast_count.c): per
 * function, sent as FAST_COUNT frames every FAST_COUNT_BATCH calls, or FAST_COUNT_NS
 * after the first of them, or with anything else the worker sends krayd meanwhile.
 */
#define FAST_COUNT_FNS 8
#define FAST_COUNT_BATCH 256
#define FAST_COUNT_NS 5000000 /* 5 ms */
struct fast_counts {
	struct {
		uint32_t runs, failed, stored;
		uint64_t run_ns;
		uint8_t len;
		char name[KRAY_NAME_MAX];
	} fn[FAST_COUNT_FNS];
	unsigned nfn;
	/* Each call, for krayd's timeline: its record and its function's place in fn[]. */
	struct kray_fast_run rec[FAST_COUNT_BATCH];
	uint8_t rec_fn[FAST_COUNT_BATCH];
	uint32_t runs; /* in all (and records in rec[]) */
	int64_t first_ns; /* CLOCK_MONOTONIC when the first of them was counted */
	int tfd; /* a timerfd, armed FAST_COUNT_NS after the first of them; -1: none yet */
};

struct worker_state {
	struct job *jobs, *last_job;
	/* The function the last task ran, by job and name (call.c: resolve). */
	struct job *fn_job;
	const struct kray_fn_desc *fn;
	char fn_name[KRAY_NAME_MAX + 1];
	struct exec *qhead, *qtail; /* EXECs not started */
	bool in_task; /* a task runs on the loop thread (its gets reject new EXECs) */
	bool stop; /* ACTOR_STOP: finish, run the destructor, exit */
	/* The actor this worker hosts, once constructed. */
	const struct kray_class_desc *cls;
	struct job *cls_job;
	void *self;
	kray_dtor_fn dtor;
	struct host *host; /* threads, for max_concurrency > 1 */
	struct kray_host_opts hopts; /* what the constructor chose (kray_ctx_host) */
	kray_ref *cancels; /* started calls krayd cancelled, for hopts.cancel (host_turn) */
	unsigned ncancels, cap_cancels;
	/* The last STOPPED_MAX started calls krayd cancelled, for kray_ctx_cancelled(): it
	 * may run on an actor's method thread, hence the lock. */
	pthread_mutex_t stopped_mu;
	kray_ref stopped[STOPPED_MAX];
	unsigned stopped_next;
	pthread_t loop; /* the thread that runs kray_worker_main */
	struct kbuf *results; /* where RESULT frames go: k->out, or a fast task's buffer */
	struct fast_counts counts; /* fast calls krayd has not counted yet (fast_count.c) */
	/* A call's answer could not be queued for lack of memory: the worker exits, and
	 * krayd answers for it (WORKER_DIED) rather than let the caller wait forever. */
	bool nomem;
	uint64_t looked_ns; /* when the loop last read krayd's socket (worker.c: look_due) */
	/* An actor's worker: the last call it ran of each caller (fast_actor.c). */
	struct fast_actor_seen {
		uint32_t node, owner, seq; /* a caller (its client id on its node) */
	} seen[FAST_ACTOR_SEEN];
	unsigned nseen, seen_next;
	bool fast_asked; /* it asked for a fast connection as an actor's worker */
};

/* fast_actor.c: notes that the actor's worker runs task (its caller's order); whether a
 * fast call of task's caller that must come after after_seq may run now; strips the
 * trailer of an actor call's fast frame (0 or -EBADMSG). */
void fast_actor_ran(struct worker_state *ws, const struct kray_oid *task);
bool fast_actor_in_order(const struct worker_state *ws, const struct kray_oid *task,
			 uint32_t after_seq);
int fast_actor_untrail(struct exec *e);

/* code.c */
void code_on_job(struct worker_state *ws, const uint8_t *body, uint32_t len);
/* JOB_END: forgets the job (its code path, libraries' handles and symbols). */
void code_end_job(struct worker_state *ws, const uint8_t *body, uint32_t len);
/* Jobs the worker knows now (the unit test's view). */
unsigned code_jobs_known(const struct worker_state *ws);
/* Loads path's libraries (and runs their kray_warm()) before any job names them. */
void code_preload(struct worker_state *ws, const char *path);
struct job *code_job(struct worker_state *ws, uint32_t id);
/* The symbol in the job's libraries (cached), or NULL. */
const void *code_find(struct job *j, const char *sym);
/* "unknown ...: not found on the job's code path '...'; load errors: ..." */
void code_describe(struct job *j, char *buf, size_t len);
void code_fini(struct worker_state *ws);

/* call.c */
/* Decodes e and finds what to run.  Returns the call, or NULL when e was answered with an
 * error RESULT already (e is then freed). */
struct call *call_prepare(struct kray *k, struct exec *e);
void call_execute(struct call *c);
/* Sends the RESULT (on the loop thread), frees c and its exec. */
void call_finish(struct kray *k, struct call *c);
/* An exec with room for nfds descriptors and a body of len bytes (not filled in). */
struct exec *exec_new(unsigned nfds, uint32_t len);
void exec_free(struct exec *e);
/* Answers e, which will not run, with an error RESULT of kind err; frees e. */
void call_refuse(struct kray *k, struct exec *e, uint8_t err, const char *msg);

/* host.c: an actor's method threads */
/* Threads that run calls with run; NULL when none could be had (out of memory, no
 * threads): the actor's calls then run one at a time on the loop thread.  With 0
 * threads (a deferred host), host_submit() runs the call on the caller's thread. */
struct host *host_start(unsigned threads, void (*run)(struct call *c));
void host_submit(struct host *h, struct call *c);
/* kray_ctx_done() of a call that returned KRAY_PENDING, or is about to. */
void host_finish(struct host *h, struct call *c, int rc, uint64_t ns);
/* Wakes the loop thread (poll on host_fd()). */
void host_wake(struct host *h);
/* A finished call, or NULL. */
struct call *host_done(struct host *h);
/* Readable when a call has finished. */
int host_fd(const struct host *h);
unsigned host_busy(const struct host *h);
void host_stop(struct host *h);

/* fast_count.c: counts fast call ran of the function name (len bytes) for krayd; puts
 * the counts in k->out when FAST_COUNT_BATCH calls or FAST_COUNT_NS have gathered. */
void fast_count_add(struct kray *k, const char *name, uint8_t len, const struct kray_oid *task,
		    uint32_t job, const struct kc_fast_ran *ran);
/* Puts every count in k->out as FAST_COUNT frames (the caller flushes). */
void fast_count_put(struct kray *k);
/* The timer a worker that sleeps watches too (POLLIN: call fast_count_due()), or -1. */
int fast_count_fd(struct kray *k);
/* The timer fired: its counts, if any are left, go in k->out (the caller flushes). */
void fast_count_due(struct kray *k);
void fast_count_fini(struct kray *k);

#endif
