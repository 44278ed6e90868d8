// SPDX-License-Identifier: Apache-2.0
/*
 * A worker's account of the fast calls it ran, for krayd (docs/fastpath.md, "Seeing it").
 *
 * krayd is not on a fast call's path, so it would not count it: tasks_submitted and
 * tasks_finished, `kray top`'s DONE column and the function's run time, which sets how
 * deep krayd pipelines its calls, would leave it out.  The worker counts each fast call it
 * answered, per function, and tells krayd in FAST_COUNT frames, batched so that krayd
 * wakes once per FAST_COUNT_BATCH calls at most and the worker pays no system call of its
 * own for them: the frames go with anything else it sends krayd, or once FAST_COUNT_BATCH
 * calls gathered, or FAST_COUNT_NS after the first of them.  For a worker that goes idle
 * meanwhile, a timerfd armed once per batch (not a timeout on every sleep: arming a timer
 * per call costs microseconds in a VM) wakes it to send them.  Counts of a worker that
 * dies before it sends them are lost with it.  Each call also goes as a record (its task
 * id, end and run time, job, whether it failed), which krayd puts in its timeline, so that
 * `kray timeline` and the state API's task list show fast calls as they show its own.
 */
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

void fast_count_put(struct kray *k)
{
	struct fast_counts *fc = &k->ws->counts;
	struct kray_fast_run recs[FAST_COUNT_BATCH];

	for (unsigned i = 0; i < fc->nfn; i++) {
		struct kray_msg_fast_count m = { .run_ns = fc->fn[i].run_ns,
						 .runs = fc->fn[i].runs,
						 .failed = fc->fn[i].failed,
						 .stored = fc->fn[i].stored,
						 .name_len = fc->fn[i].len };

		for (uint32_t j = 0; j < fc->runs && m.nrec < m.runs; j++)
			if (fc->rec_fn[j] == i)
				recs[m.nrec++] = fc->rec[j];
		wire_put_fast_count(&k->out, &m, fc->fn[i].name, recs);
	}
	/* Out of memory: the counts are lost (krayd counts fewer); the calls went well. */
	k->out.nomem = false;
	fc->nfn = 0;
	fc->runs = 0;
}

void fast_count_add(struct kray *k, const char *name, uint8_t len, const struct kray_oid *task,
		    uint32_t job, const struct kc_fast_ran *ran)
{
	struct fast_counts *fc = &k->ws->counts;
	unsigned i;

	if (!ran->ran || !len)
		return;
	for (i = 0; i < fc->nfn; i++)
		if (fc->fn[i].len == len && !memcmp(fc->fn[i].name, name, len))
			break;
	if (i == FAST_COUNT_FNS) { /* more functions than places: send what is there */
		fast_count_put(k);
		i = 0;
	}
	if (i == fc->nfn) {
		memset(&fc->fn[i], 0, sizeof(fc->fn[i]));
		memcpy(fc->fn[i].name, name, len);
		fc->fn[i].len = len;
		fc->nfn++;
	}
	fc->fn[i].runs++;
	fc->fn[i].failed += ran->failed;
	fc->fn[i].stored += ran->stored;
	fc->fn[i].run_ns += ran->ns;
	/* (runs < FAST_COUNT_BATCH here: a batch that reaches it is sent below) */
	fc->rec[fc->runs] = (struct kray_fast_run){ .task = *task,
						    .end_ns = kc_mono_ns(),
						    .run_ns = ran->ns,
						    .job = job,
						    .failed = ran->failed || ran->raised };
	fc->rec_fn[fc->runs] = (uint8_t)i;
	if (!fc->runs++) {
		struct itimerspec due = { .it_value = { .tv_nsec = FAST_COUNT_NS } };

		fc->first_ns = kc_mono_ns();
		if (fc->tfd < 0)
			fc->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (fc->tfd < 0 || timerfd_settime(fc->tfd, 0, &due, NULL)) {
			fast_count_put(k); /* no timer: nothing would send them, so now */
			return;
		}
	} else if (fc->runs >= FAST_COUNT_BATCH || kc_mono_ns() - fc->first_ns >= FAST_COUNT_NS) {
		fast_count_put(k);
	}
}

int fast_count_fd(struct kray *k)
{
	return k->ws->counts.tfd;
}

void fast_count_due(struct kray *k)
{
	struct fast_counts *fc = &k->ws->counts;
	uint64_t n;

	if (read(fc->tfd, &n, sizeof(n)) < 0)
		return; /* not due yet (re-armed meanwhile) */
	if (fc->runs)
		fast_count_put(k);
}

void fast_count_fini(struct kray *k)
{
	struct fast_counts *fc = &k->ws->counts;

	if (fc->tfd >= 0)
		close(fc->tfd);
	fc->tfd = -1;
}
