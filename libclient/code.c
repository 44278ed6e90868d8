// SPDX-License-Identifier: Apache-2.0
/*
 * Job code in a worker: each job's code search path (directories, whose every *.so is
 * loaded, and .so files) is dlopen()ed when krayd first tells the job here (at its first
 * call, or when its driver connects while this worker is idle), and symbols (kray_fn__*,
 * kray_class__*, kray_method__*) are looked up in its libraries and cached.  A library's
 * kray_warm(), if it has one, runs once it is loaded (kray.h); code_preload() loads
 * krayd's warm-code-path the same way as the worker starts.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

struct sym_cache {
	char *sym;
	const void *addr;
	struct sym_cache *next;
};

struct job {
	uint32_t id;
	char *path;
	void **libs;
	unsigned nlibs;
	char errors[1024]; /* what failed to load */
	struct sym_cache *syms;
	struct job *next;
};

static void add_lib(struct job *j, const char *file)
{
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	size_t used = strlen(j->errors);
	void **libs;

	if (!h) {
		snprintf(j->errors + used, sizeof(j->errors) - used, "%s%s", used ? "; " : "",
			 dlerror());
		return;
	}
	libs = realloc(j->libs, (j->nlibs + 1) * sizeof(*libs));
	if (!libs) {
		dlclose(h);
		snprintf(j->errors + used, sizeof(j->errors) - used, "%s%s: out of memory",
			 used ? "; " : "", file);
		return;
	}
	j->libs = libs;
	j->libs[j->nlibs++] = h;
}

static int so_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 3 && !strcmp(e->d_name + n - 3, ".so");
}

static void load(struct job *j)
{
	char *copy = strdup(j->path), *save = NULL;

	if (!copy) {
		snprintf(j->errors, sizeof(j->errors), "out of memory loading the code path");
		return;
	}
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
	for (unsigned i = 0; i < j->nlibs; i++) {
		void (*warm)(void);
		void *sym = dlsym(j->libs[i], KRAY_WARM_SYMBOL);

		memcpy(&warm, &sym, sizeof(warm));
		if (warm)
			warm();
	}
}

static struct job *add_job(struct worker_state *ws, uint32_t id, const char *path, size_t len)
{
	struct job *j = calloc(1, sizeof(*j));

	/* Out of memory: the job stays unknown, and its calls fail saying so. */
	if (!j || !(j->path = strndup(path, len))) {
		free(j);
		return NULL;
	}
	j->id = id;
	j->next = ws->jobs;
	ws->jobs = j;
	load(j);
	return j;
}

void code_preload(struct worker_state *ws, const char *path)
{
	/* Job 0 is nobody's (client ids start at 1): its libraries stay loaded, and a job
	 * that names them later gets the same handles from dlopen(). */
	if (!code_job(ws, 0))
		add_job(ws, 0, path, strlen(path));
}

struct job *code_job(struct worker_state *ws, uint32_t id)
{
	/* A worker that served many drivers knows many jobs; calls come in runs of one. */
	if (ws->last_job && ws->last_job->id == id)
		return ws->last_job;
	for (struct job *j = ws->jobs; j; j = j->next)
		if (j->id == id)
			return ws->last_job = j;
	return NULL;
}

static void job_free(struct job *j)
{
	while (j->syms) {
		struct sym_cache *c = j->syms;

		j->syms = c->next;
		free(c->sym);
		free(c);
	}
	free(j->libs); /* the libraries stay loaded until exit */
	free(j->path);
	free(j);
}

void code_on_job(struct worker_state *ws, const uint8_t *body, uint32_t len)
{
	struct wire_text t;

	if (wire_dec_job(body, len, &t) || !t.code || code_job(ws, (uint32_t)t.code))
		return;
	add_job(ws, (uint32_t)t.code, t.text, t.len);
}

/* krayd forgets a job once nothing of it is left (its driver gone, its tasks done) and
 * tells the workers it told (JOB_END); without this a pool worker kept every driver it
 * ever heard of, and looked through all of them for a job it did not have at hand. */
void code_end_job(struct worker_state *ws, const uint8_t *body, uint32_t len)
{
	struct kray_msg_job m;

	if (wire_dec_fixed(body, len, &m, sizeof(m)) || !m.job || m.path_len)
		return;
	for (struct job **p = &ws->jobs; *p; p = &(*p)->next) {
		struct job *j = *p;

		if (j->id != m.job)
			continue;
		*p = j->next;
		if (ws->last_job == j)
			ws->last_job = NULL;
		if (ws->fn_job == j)
			ws->fn_job = NULL;
		job_free(j);
		return;
	}
}

unsigned code_jobs_known(const struct worker_state *ws)
{
	unsigned n = 0;

	for (const struct job *j = ws->jobs; j; j = j->next)
		n++;
	return n;
}

const void *code_find(struct job *j, const char *sym)
{
	const void *addr = NULL;
	struct sym_cache *c;

	if (!j)
		return NULL;
	for (c = j->syms; c; c = c->next)
		if (!strcmp(c->sym, sym))
			return c->addr;
	for (unsigned i = 0; i < j->nlibs && !addr; i++)
		addr = dlsym(j->libs[i], sym);
	if (!addr)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->sym = strdup(sym))) {
		free(c);
		return addr; /* found, just not cached */
	}
	c->addr = addr;
	c->next = j->syms;
	j->syms = c;
	return addr;
}

void code_describe(struct job *j, char *buf, size_t len)
{
	snprintf(buf, len, "not found on the job's code path '%s'%s%s", j ? j->path : "",
		 j && j->errors[0] ? "; load errors: " : "", j ? j->errors : "");
}

void code_fini(struct worker_state *ws)
{
	ws->last_job = NULL;
	ws->fn_job = NULL;
	while (ws->jobs) {
		struct job *j = ws->jobs;

		ws->jobs = j->next;
		job_free(j);
	}
}
