// SPDX-License-Identifier: Apache-2.0
/*
 * The job table: a record per job that something still refers to (see job.h).
 */
#include <stdlib.h>
#include <string.h>

#include "core/krayd.h"
#include "core/job.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/task.h"

static struct kray_oid job_key(uint32_t id)
{
	return (struct kray_oid){ .node = id };
}

struct job *job_get(struct krayd *d, uint32_t id)
{
	struct kray_oid key = job_key(id);
	uint64_t *v = id ? oidmap_get(&d->job_index, &key) : NULL;

	return v ? (struct job *)(uintptr_t)*v : NULL;
}

const char *job_code_path(struct krayd *d, uint32_t id)
{
	struct job *j = job_get(d, id);

	return j ? j->code_path : NULL;
}

struct job *job_add(struct krayd *d, uint32_t id, const char *path, size_t len)
{
	struct kray_oid key = job_key(id);
	struct job *j = job_get(d, id);
	bool fresh;

	if (j)
		return j;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->code_path = strndup(path, len)))
		abort();
	j->id = id;
	*oidmap_upsert(&d->job_index, &key, &fresh) = (uint64_t)(uintptr_t)j;
	return j;
}

/* The record is gone: the workers told its code path (sched_tell_job()) forget it. */
static void end_in_workers(struct krayd *d, uint32_t job)
{
	struct kray_msg_job m = { .job = job };
	struct kray_oid key = { .node = job };

	for (struct worker *w = d->workers; w; w = w->next) {
		if (!oidmap_del(&w->jobs, &key) || !w->conn || w->conn->closed)
			continue;
		WIRE_FRAME(&w->conn->out, KRAY_MSG_JOB_END, 0, WIRE_FIXED(m));
		conn_flush_later(w->conn);
	}
}

void job_hold(struct job *j)
{
	j->refs++;
}

static void job_free(struct job *j)
{
	free(j->code_path);
	free(j);
}

void job_drop(struct krayd *d, struct job *j)
{
	struct kray_oid key;

	if (!j || --j->refs)
		return;
	key = job_key(j->id);
	oidmap_del(&d->job_index, &key);
	end_in_workers(d, j->id);
	job_free(j);
}

void task_set_job(struct krayd *d, struct task *t, uint32_t id)
{
	t->job = id;
	t->jp = job_get(d, id);
	if (t->jp)
		job_hold(t->jp);
}

unsigned job_count(struct krayd *d)
{
	return (unsigned)d->job_index.n;
}

void job_fini(struct krayd *d)
{
	oidmap_for_each (&d->job_index, s)
		job_free((struct job *)(uintptr_t)s->val);
	oidmap_free(&d->job_index);
}
