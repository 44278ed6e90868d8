/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: the job table (job.c).
 *
 * A job is a driver's connection, or a job of another node whose tasks run here.  Its
 * record lives as long as something refers to it: the driver's connection while it is
 * connected, and every task of the job (an actor's constructor included, which the actor
 * keeps), so that records do not pile up over weeks of drivers coming and going.
 *
 * The ready queue shares the CPU fairly between jobs (start-time fair queuing, sched.c):
 * each queued task gets a rank, one past its job's previous one, or past the rank of the
 * last task dispatched when the job had fallen behind; the queue is kept in rank order, so
 * the jobs with queued tasks take turns and one that queued 10,000 tasks does not hold
 * another's back.  Within a job the order stays FIFO.
 */
#ifndef KRAYD_CORE_JOB_H
#define KRAYD_CORE_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "core/krayd.h"

struct job {
	uint32_t id;
	uint32_t refs; /* its driver's connection, its tasks */
	char *code_path;
	/* The fair queue (sched.c): */
	uint64_t vt; /* the rank of its last queued task */
	struct task *qlast; /* its last task in the ready queue, or NULL */
};

/* The job with that id, or NULL. */
struct job *job_get(struct krayd *d, uint32_t id);
/* Adds job id (nothing refers to it yet: job_hold()). */
struct job *job_add(struct krayd *d, uint32_t id, const char *path, size_t len);
const char *job_code_path(struct krayd *d, uint32_t id);
void job_hold(struct job *j);
/* Drops a reference: the last one frees the record (NULL: nothing). */
void job_drop(struct krayd *d, struct job *j);
/* t belongs to job id from now on (and holds it, when the record exists). */
void task_set_job(struct krayd *d, struct task *t, uint32_t id);
/* Job records now (for the soak test and the status). */
unsigned job_count(struct krayd *d);
void job_fini(struct krayd *d);

#endif
