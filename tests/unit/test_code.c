// SPDX-License-Identifier: Apache-2.0
/*
 * A worker's job table (libclient/code.c) on its own: JOB adds a job once, JOB_END forgets
 * it (and the caches that point at it), malformed frames change nothing.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../common/wire.h"
#include "../../libclient/worker.h"

static struct worker_state ws;

static void frame(uint16_t type, uint32_t job, const char *path, struct kbuf *b,
		  struct kray_frame_hdr *h)
{
	struct kray_msg_job m = { .job = job, .path_len = path ? (uint32_t)strlen(path) : 0 };
	size_t off = wire_begin(b, type, 0);

	kbuf_put(b, &m, sizeof(m));
	if (path)
		wire_put_padded(b, path, m.path_len);
	cr_assert_eq(wire_end(b, off), 0);
	memcpy(h, b->data + off, sizeof(*h));
}

static void job(uint32_t id, const char *path)
{
	struct kbuf b = { 0 };
	struct kray_frame_hdr h;

	frame(KRAY_MSG_JOB, id, path, &b, &h);
	code_on_job(&ws, b.data + sizeof(h), h.len);
	kbuf_free(&b);
}

static void job_end(uint32_t id, size_t cut)
{
	struct kbuf b = { 0 };
	struct kray_frame_hdr h;

	frame(KRAY_MSG_JOB_END, id, NULL, &b, &h);
	code_end_job(&ws, b.data + sizeof(h), h.len - (uint32_t)cut);
	kbuf_free(&b);
}

static void fini(void)
{
	code_fini(&ws);
	memset(&ws, 0, sizeof(ws));
}

TestSuite(code, .fini = fini, .timeout = 30);

Test(code, a_job_is_added_once_and_forgotten_at_its_end)
{
	job(5, "/nonexistent/libfns.so"); /* (a library that does not load: still a job) */
	job(6, "/nonexistent/libfns.so");
	job(5, "/nonexistent/libfns.so");
	cr_assert_eq(code_jobs_known(&ws), 2);
	cr_assert_not_null(code_job(&ws, 5)); /* job 5 is now the cached last one */
	job_end(5, 0);
	cr_assert_eq(code_jobs_known(&ws), 1);
	cr_assert_null(code_job(&ws, 5), "the cache must not keep a forgotten job");
	cr_assert_not_null(code_job(&ws, 6));
	job_end(5, 0); /* (twice: nothing) */
	job_end(7, 0); /* (never told: nothing) */
	cr_assert_eq(code_jobs_known(&ws), 1);
	job(5, "/nonexistent/libfns.so"); /* told again: known again */
	cr_assert_eq(code_jobs_known(&ws), 2);
}

Test(code, a_malformed_job_end_changes_nothing)
{
	struct kbuf b = { 0 };
	struct kray_frame_hdr h;

	job(5, "/nonexistent/libfns.so");
	job_end(5, 1); /* short */
	job_end(0, 0); /* job 0: nobody's */
	frame(KRAY_MSG_JOB_END, 5, "x", &b, &h); /* a path where none belongs */
	code_end_job(&ws, b.data + sizeof(h), h.len);
	kbuf_free(&b);
	cr_assert_eq(code_jobs_known(&ws), 1);
	cr_assert_not_null(code_job(&ws, 5));
}
