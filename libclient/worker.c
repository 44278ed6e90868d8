// SPDX-License-Identifier: Apache-2.0
/*
 * The worker host's loop (kray_worker_main) and the task context remote functions see.
 *
 * A worker connects to krayd with the id krayd gave it, then runs the tasks krayd sends,
 * in order.  krayd may pipeline several short tasks; they wait in a local queue.  When a
 * task blocks in kray_get(), the queued tasks are handed back (REJECT) so that they can
 * run elsewhere, and tasks that arrive during the get are handed back at once: a worker
 * never sits on work it cannot start.  Results are sent in one batch whenever the local
 * queue runs dry.
 *
 * Functions come from the job's code search path: directories (every *.so in them) and
 * .so files, dlopen()ed the first time the job sends a task here, and looked up by the
 * symbol KRAY_REMOTE() defines.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

struct fn_cache {
	char *name;
	const struct kray_fn_desc *desc;
	struct fn_cache *next;
};

struct job {
	uint32_t id;
	char *path;
	void **libs;
	unsigned nlibs;
	char errors[1024]; /* what failed to load */
	struct fn_cache *fns;
	struct job *next;
};

struct exec {
	uint8_t *body;
	uint32_t len;
	int fds[KRAY_FDS_PER_MSG]; /* its large arguments' memfds */
	unsigned nfds;
	struct exec *next;
};

static void exec_free(struct exec *e);

struct worker_state {
	struct job *jobs;
	struct exec *qhead, *qtail;
	bool in_task;
};

struct kray_ctx {
	struct kray *k;
	unsigned num_returns;
	kray_value *rets;
	char err[4096];
	bool failed;
	int store_err; /* a large return did not fit in the object store */
};

/* ---- code loading ---- */

static void add_lib(struct job *j, const char *file)
{
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	size_t used = strlen(j->errors);

	if (!h) {
		snprintf(j->errors + used, sizeof(j->errors) - used, "%s%s", used ? "; " : "",
			 dlerror());
		return;
	}
	void **libs = realloc(j->libs, (j->nlibs + 1) * sizeof(*libs));

	if (!libs)
		abort();
	j->libs = libs;
	j->libs[j->nlibs++] = h;
}

static int so_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 3 && !strcmp(e->d_name + n - 3, ".so");
}

static void load_job(struct job *j)
{
	char *copy = strdup(j->path), *save = NULL;

	if (!copy)
		abort();
	for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		struct dirent **list;
		int n = scandir(p, &list, so_filter, alphasort);

		if (n < 0) {
			add_lib(j, p); /* not a directory: a library file */
			continue;
		}
		for (int i = 0; i < n; i++) {
			char file[4096];

			snprintf(file, sizeof(file), "%s/%s", p, list[i]->d_name);
			add_lib(j, file);
			free(list[i]);
		}
		free(list);
	}
	free(copy);
}

static struct job *find_job(struct worker_state *ws, uint32_t id)
{
	for (struct job *j = ws->jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

static void on_job(struct worker_state *ws, const uint8_t *body, uint32_t len)
{
	struct wire_text t;
	struct job *j;

	if (wire_dec_job(body, len, &t) || find_job(ws, (uint32_t)t.code))
		return;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strndup(t.text, t.len)))
		abort();
	j->id = (uint32_t)t.code;
	j->next = ws->jobs;
	ws->jobs = j;
	load_job(j);
}

static const struct kray_fn_desc *find_fn(struct job *j, const char *name)
{
	char sym[sizeof(KRAY_FN_SYMBOL_PREFIX) + KRAY_NAME_MAX];
	const struct kray_fn_desc *desc = NULL;
	struct fn_cache *c;

	for (c = j->fns; c; c = c->next)
		if (!strcmp(c->name, name))
			return c->desc;
	snprintf(sym, sizeof(sym), KRAY_FN_SYMBOL_PREFIX "%s", name);
	for (unsigned i = 0; i < j->nlibs && !desc; i++)
		desc = dlsym(j->libs[i], sym);
	if (!desc || desc->abi != KRAY_FN_ABI)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(name)))
		abort();
	c->desc = desc;
	c->next = j->fns;
	j->fns = c;
	return desc;
}

/* ---- the task context ---- */

KRAY_EXPORT int kray_return(kray_ctx *ctx, unsigned idx, const kray_value *v)
{
	kray_value *dst;
	kray_ref id;
	void *p;
	uint64_t scalar = 0;
	int r;

	if (idx >= ctx->num_returns || !v ||
	    (v->type != KRAY_NIL && v->type != KRAY_INT64 && v->type != KRAY_F64 &&
	     v->type != KRAY_BYTES) ||
	    (v->type == KRAY_BYTES && v->len && !v->data) || v->len > KRAY_FRAME_MAX / 2)
		return -EINVAL;
	dst = &ctx->rets[idx];
	kray_value_clear(dst);
	if (v->type == KRAY_BYTES && v->len > ctx->k->inline_max) {
		/* A large result goes straight into the object store; the slot names it
		 * (an internal KRAY_REF: krayd moves that object into the return slot). */
		r = kc_create(ctx->k, v->len, &id, &p);
		if (r) {
			/* The task fails with the store's reason, whatever the function does. */
			ctx->store_err = r;
			snprintf(ctx->err, sizeof(ctx->err), "%s", ctx->k->err);
			return r;
		}
		memcpy(p, v->data, v->len);
		r = kray_seal(ctx->k, &id);
		if (r)
			return r;
		*dst = (kray_value){ .type = KRAY_REF, .ref = id };
		return 0;
	}
	memcpy(&scalar, v->type == KRAY_F64 ? (const void *)&v->f : (const void *)&v->i,
	       sizeof(scalar));
	kc_mem_value((uint8_t)v->type, scalar, v->data, v->type == KRAY_BYTES ? v->len : 0, dst);
	return 0;
}

KRAY_EXPORT int kray_return_int(kray_ctx *ctx, unsigned idx, int64_t x)
{
	return kray_return(ctx, idx, &KRAY_V_INT(x));
}

KRAY_EXPORT int kray_return_f64(kray_ctx *ctx, unsigned idx, double x)
{
	return kray_return(ctx, idx, &KRAY_V_F64(x));
}

KRAY_EXPORT int kray_return_bytes(kray_ctx *ctx, unsigned idx, const void *data, size_t len)
{
	return kray_return(ctx, idx, &KRAY_V_BYTES(data, len));
}

KRAY_EXPORT int kray_fail(kray_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
	va_end(ap);
	ctx->failed = true;
	return -EREMOTEIO;
}

KRAY_EXPORT kray *kray_ctx_client(kray_ctx *ctx)
{
	return ctx->k;
}

KRAY_EXPORT unsigned kray_ctx_num_returns(const kray_ctx *ctx)
{
	return ctx->num_returns;
}

/* ---- running tasks ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void put_reject(struct kray *k, const struct kray_oid *task)
{
	struct kray_msg_reject m = { .task = *task };
	size_t off = wire_begin(&k->out, KRAY_MSG_REJECT, 0);

	kbuf_put(&k->out, &m, sizeof(m));
	wire_end(&k->out, off);
}

void kc_worker_before_block(struct kray *k)
{
	struct worker_state *ws = k->ws;

	if (!ws->in_task)
		return;
	while (ws->qhead) {
		struct exec *e = ws->qhead;
		struct kray_msg_exec m;

		ws->qhead = e->next;
		memcpy(&m, e->body, sizeof(m));
		put_reject(k, &m.task);
		exec_free(e);
	}
	ws->qtail = NULL;
}

static void exec_free(struct exec *e)
{
	for (unsigned i = 0; i < e->nfds; i++)
		if (e->fds[i] >= 0)
			close(e->fds[i]);
	free(e->body);
	free(e);
}

static void on_frame(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct worker_state *ws = k->ws;
	struct exec *e;

	if (h->type == KRAY_MSG_JOB) {
		on_job(ws, body, h->len);
		return;
	}
	if (h->len < sizeof(struct kray_msg_exec))
		return;
	if (ws->in_task) {
		/* Blocked in a get: this task can run elsewhere. */
		struct kray_msg_exec m;

		memcpy(&m, body, sizeof(m));
		put_reject(k, &m.task);
		return;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->body = malloc(h->len)))
		abort();
	memcpy(e->body, body, h->len);
	e->len = h->len;
	e->nfds = KRAY_FRAME_NFDS(h->flags);
	if (e->nfds) {
		int *fds = kc_frame_fds(k, h);

		for (unsigned i = 0; i < e->nfds; i++) {
			e->fds[i] = fds[i];
			fds[i] = -1;
		}
	}
	if (ws->qtail)
		ws->qtail->next = e;
	else
		ws->qhead = e;
	ws->qtail = e;
}

static void put_result_error(struct kray *k, const struct kray_oid *task, uint64_t ns,
			     uint8_t err, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void put_result_error(struct kray *k, const struct kray_oid *task, uint64_t ns,
			     uint8_t err, const char *fmt, ...)
{
	struct kray_msg_result m = { .task = *task, .exec_ns = ns, .n = 1 };
	char msg[4096];
	va_list ap;
	size_t off;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	off = wire_begin(&k->out, KRAY_MSG_RESULT, 0);
	kbuf_put(&k->out, &m, sizeof(m));
	wire_put_value(&k->out, KRAY_WT_ERROR, err, 0, msg, (uint32_t)strlen(msg));
	wire_end(&k->out, off);
}

static void run(struct kray *k, struct exec *e)
{
	struct worker_state *ws = k->ws;
	struct wire_exec x;
	struct job *j;
	const struct kray_fn_desc *desc;
	char name[KRAY_NAME_MAX + 1];
	kray_value args[KRAY_ARGS_MAX];
	struct kray_ctx ctx = { .k = k };
	uint64_t t0;
	int rc;

	if (wire_dec_exec(e->body, e->len, &x))
		return; /* krayd sent garbage: nothing sensible to answer */
	memcpy(name, x.name, x.m.name_len);
	name[x.m.name_len] = 0;
	j = find_job(ws, x.m.job);
	desc = j ? find_fn(j, name) : NULL;
	if (!desc) {
		put_result_error(k, &x.m.task, 0, KRAY_WE_UNKNOWN_FUNCTION,
				 "unknown function '%s': not found on the job's code path '%s'%s%s",
				 name, j ? j->path : "", j && j->errors[0] ? "; load errors: " : "",
				 j ? j->errors : "");
		return;
	}
	if (desc->nargs != KRAY_NARGS_ANY && (unsigned)desc->nargs != x.m.nargs) {
		put_result_error(k, &x.m.task, 0, KRAY_WE_BAD_ARGS,
				 "%s() takes %d argument%s, got %u", name, desc->nargs,
				 desc->nargs == 1 ? "" : "s", x.m.nargs);
		return;
	}
	int *fds = e->fds, nfd_used = 0;

	for (unsigned i = 0; i < x.m.nargs; i++) {
		struct wire_value w;

		wire_rd_value(&x.args, &w); /* validated by wire_dec_exec() */
		if (w.type == KRAY_WT_FD) {
			/* A large argument: a read-only view of the store's memory. */
			int *f = (unsigned)nfd_used < e->nfds ? fds + nfd_used : NULL;

			kc_take_value(k, &w, &f, &args[i]);
			nfd_used++;
			if (args[i].type == KRAY_ERROR) {
				put_result_error(k, &x.m.task, 0, KRAY_WE_INTERNAL,
						 "argument %u of '%s': %s", i, name,
						 (const char *)args[i].data);
				for (unsigned a = 0; a <= i; a++)
					if (args[a].priv_)
						kray_value_clear(&args[a]);
				return;
			}
			continue;
		}
		args[i] = (kray_value){ .type = (enum kray_type)w.type, .data = w.data,
					.len = w.len };
		memcpy(w.type == KRAY_WT_F64 ? (void *)&args[i].f : (void *)&args[i].i, &w.scalar,
		       sizeof(w.scalar));
	}
	ctx.num_returns = x.m.num_returns;
	ctx.rets = calloc(x.m.num_returns ? x.m.num_returns : 1, sizeof(*ctx.rets));
	if (!ctx.rets)
		abort();

	uint32_t saved_job = k->job;

	k->job = x.m.job; /* nested tasks belong to the same job */
	ws->in_task = true;
	t0 = mono_ns();
	rc = desc->fn(&ctx, args, x.m.nargs);
	uint64_t ns = mono_ns() - t0;

	ws->in_task = false;
	k->job = saved_job;
	if (ctx.store_err) {
		put_result_error(k, &x.m.task, ns,
				 ctx.store_err == -ENOSPC ? KRAY_WE_STORE_FULL : KRAY_WE_INTERNAL,
				 "task '%s' failed: its result: %s", name, ctx.err);
	} else if (rc || ctx.failed) {
		put_result_error(k, &x.m.task, ns, KRAY_WE_TASK, "task '%s' failed: %s", name,
				 ctx.failed ? ctx.err : "returned an error code");
	} else {
		struct kray_msg_result m = { .task = x.m.task, .exec_ns = ns,
					     .n = x.m.num_returns };
		size_t off = wire_begin(&k->out, KRAY_MSG_RESULT, 0);

		kbuf_put(&k->out, &m, sizeof(m));
		for (unsigned i = 0; i < x.m.num_returns; i++) {
			const kray_value *v = &ctx.rets[i];
			uint64_t scalar = 0;

			if (v->type == KRAY_REF) { /* a large result, already in the store */
				wire_put_value(&k->out, KRAY_WT_OBJECT, 0, 0, &v->ref,
					       sizeof(v->ref));
				continue;
			}
			memcpy(&scalar, v->type == KRAY_F64 ? (const void *)&v->f : (const void *)&v->i,
			       sizeof(scalar));
			wire_put_value(&k->out, (uint8_t)v->type, 0,
				       v->type == KRAY_BYTES ? 0 : scalar, v->data,
				       v->type == KRAY_BYTES ? (uint32_t)v->len : 0);
		}
		wire_end(&k->out, off);
	}
	for (unsigned i = 0; i < x.m.num_returns; i++)
		if (ctx.rets[i].type != KRAY_REF)
			kray_value_clear(&ctx.rets[i]);
	free(ctx.rets);
	for (unsigned i = 0; i < x.m.nargs; i++)
		if (args[i].priv_)
			kray_value_clear(&args[i]);
}

KRAY_EXPORT int kray_worker_main(int argc, char **argv)
{
	const char *sock = getenv("KRAY_SOCKET"), *id = getenv("KRAY_WORKER_ID");
	const char *ppid = getenv("KRAY_PARENT_PID");
	struct worker_state ws = { 0 };
	struct kray k = { .fd = -1, .ws = &ws, .on_frame = on_frame };
	int r;

	(void)argc;
	(void)argv;
	if (!sock || !id) {
		fprintf(stderr, "kray-worker: started by krayd only (KRAY_SOCKET, KRAY_WORKER_ID)\n");
		return 2;
	}
	/* Die with krayd, even if it is SIGKILLed. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (ppid && getppid() != (pid_t)atoi(ppid))
		return 1;
	r = kc_connect(&k, sock, KRAY_ROLE_WORKER, (uint32_t)strtoul(id, NULL, 10), NULL);
	if (r) {
		fprintf(stderr, "kray-worker: %s\n", k.err);
		return 1;
	}
	for (;;) {
		struct kray_frame_hdr h;
		const uint8_t *body;

		/* Take in everything that has arrived, then run one task. */
		while ((r = kc_next_frame(&k, !ws.qhead, &h, &body)) == 1) {
			if (h.type == KRAY_MSG_EXEC || h.type == KRAY_MSG_JOB)
				on_frame(&k, &h, body);
			kc_consume(&k, &h);
			if (!ws.qhead)
				continue;
			break;
		}
		if (r < 0)
			break; /* krayd closed the connection: time to go */
		if (ws.qhead) {
			struct exec *e = ws.qhead;

			ws.qhead = e->next;
			if (!ws.qhead)
				ws.qtail = NULL;
			run(&k, e);
			exec_free(e);
		}
		if (!ws.qhead && kc_flush(&k))
			break;
	}
	return 0;
}
