// SPDX-License-Identifier: Apache-2.0
/*
 * gen_corpus OUTDIR: writes the seed corpus of the fuzz targets, valid inputs made with
 * the wire_put_* writers, so that the tree holds no binary files:
 *
 *   OUTDIR/frame/   one file per kind of frame the codec knows (every message type, most
 *                   in more than one shape), and streams of several frames;
 *   OUTDIR/values/  value sequences of every value type, at several reader placements;
 *   OUTDIR/resources/  resource lists ("NAME:QTY,...") of every shape the parser takes;
 *   OUTDIR/config/  config files setting every key.
 *
 * Hand-made and regression inputs live in tests/fuzz/corpus/<target>/ instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/wire.h"

static const char *outdir;
static struct kbuf stream; /* every frame, in order */

static void mkdir_p(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST) {
		fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void emit(const char *target, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "we");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
		fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* ---- frames ------------------------------------------------------------------------- */

static struct kbuf fb;
static size_t foff;
static unsigned int nframes;

static void frame(uint16_t type)
{
	fb = (struct kbuf){ 0 };
	foff = wire_begin(&fb, type, 1000 + nframes);
}

/* Ends the frame being built and writes it as frame/NN-name. */
static void done(const char *name)
{
	char file[128];

	wire_end(&fb, foff);
	snprintf(file, sizeof(file), "%02u-%s", nframes++, name);
	emit("frame", file, fb.data, fb.len);
	kbuf_put(&stream, fb.data, fb.len);
	kbuf_free(&fb);
}

static void put(const void *p, size_t n)
{
	kbuf_put(&fb, p, n);
}

static void put_name(const char *s)
{
	wire_put_padded(&fb, s, strlen(s));
}

static uint64_t f64(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static const struct kray_oid A = { 0x11, 2, 3, 0 };
static const struct kray_oid B = { 0x11, 2, 4, 1 };
static const struct kray_oid P = { 0x11, 2, 5, KRAY_OID_PUT };
static const struct kray_oid ACTOR = { 0x11, 2, 6, KRAY_OID_ACTOR };
static const struct kray_oid AB[2] = { { 0x11, 2, 3, 0 }, { 0x11, 2, 4, 1 } };

/* One value of every type a message's list allows. */
static void v_plain(struct kbuf *b)
{
	wire_put_value(b, KRAY_WT_NIL, 0, 0, NULL, 0);
	wire_put_value(b, KRAY_WT_INT64, 0, (uint64_t)-42, NULL, 0);
	wire_put_value(b, KRAY_WT_F64, 0, f64(2.5), NULL, 0);
	wire_put_value(b, KRAY_WT_BYTES, 0, 0, "hello", 5);
	wire_put_value(b, KRAY_WT_BYTES, 0, 0, NULL, 0);
}

static void frames(void)
{
	struct kbuf *b = &fb;

	{
		struct kray_msg_hello m = { .role = KRAY_ROLE_DRIVER, .pid = 4242 };
		const char *path = "/opt/kray/jobs:/srv/lib/libfns.so";

		frame(KRAY_MSG_HELLO);
		m.path_len = (uint32_t)strlen(path);
		put(&m, sizeof(m));
		put_name(path);
		done("hello-driver");
		frame(KRAY_MSG_HELLO);
		m = (struct kray_msg_hello){ .role = KRAY_ROLE_WORKER,
					     .pid = 4343,
					     .worker_id = 7 };
		put(&m, sizeof(m));
		done("hello-worker");
	}
	{
		struct kray_msg_hello_ok m = { 0x11, 2, 1, 64 << 10 };

		frame(KRAY_MSG_HELLO_OK);
		put(&m, sizeof(m));
		done("hello-ok");
	}
	{
		struct kray_msg_submit m = { .seq = 3,
					     .job = 1,
					     .num_returns = 2,
					     .nargs = 7,
					     .max_retries = -1,
					     .name_len = 6 };

		frame(KRAY_MSG_SUBMIT);
		put(&m, sizeof(m));
		put_name("square");
		v_plain(b);
		wire_put_value(b, KRAY_WT_REF, 0, 0, &A, sizeof(A));
		wire_put_value(b, KRAY_WT_ACTOR, 0, 0, &ACTOR, sizeof(ACTOR));
		done("submit");
		m = (struct kray_msg_submit){ .seq = 4,
					      .job = 1,
					      .num_returns = 1,
					      .max_retries = 3,
					      .name_len = 9,
					      .actor = ACTOR };
		frame(KRAY_MSG_SUBMIT);
		put(&m, sizeof(m));
		put_name("increment");
		done("submit-method");
		/* With resources: run where they are (issue 7). */
		m = (struct kray_msg_submit){ .seq = 5,
					      .job = 1,
					      .num_returns = 1,
					      .nargs = 1,
					      .max_retries = 3,
					      .name_len = 6,
					      .res_len = 11 };
		frame(KRAY_MSG_SUBMIT);
		put(&m, sizeof(m));
		put_name("square");
		put_name("GPU:1,ssd:2");
		wire_put_value(b, KRAY_WT_INT64, 0, 7, NULL, 0);
		done("submit-resources");
	}
	{
		/* A task forwarded to another node, with its code path. */
		struct kray_msg_fwd_task m = { .task = { 0x11, 2, 9, 0 },
					       .job = 1,
					       .num_returns = 1,
					       .nargs = 2,
					       .max_retries = 3,
					       .name_len = 6,
					       .path_len = 14 };

		frame(KRAY_MSG_FWD_TASK);
		put(&m, sizeof(m));
		put_name("square");
		put_name("/opt/kray/jobs");
		wire_put_value(b, KRAY_WT_INT64, 0, 7, NULL, 0);
		wire_put_value(b, KRAY_WT_REF, 0, 0, &A, sizeof(A));
		done("fwd-task");
	}
	{
		struct kray_msg_get m = { .timeout_ms = -1, .n = 3 };
		const struct kray_oid ids[3] = { A, B, P };

		frame(KRAY_MSG_GET);
		put(&m, sizeof(m));
		put(ids, sizeof(ids));
		done("get");
		m = (struct kray_msg_get){ .timeout_ms = 100 };
		frame(KRAY_MSG_GET);
		put(&m, sizeof(m));
		done("get-none");
	}
	{
		struct kray_msg_get_reply m = { .n = 9 };

		frame(KRAY_MSG_GET_REPLY);
		put(&m, sizeof(m));
		v_plain(b);
		wire_put_errorf(b, KRAY_WE_TASK, "task failed: %s", "ZeroDivisionError");
		wire_put_value(b, KRAY_WT_FD, 0, 1 << 20, &A, sizeof(A));
		wire_put_value_refs(b, KRAY_WT_BYTES, 0, 0, "nested", 6, AB, 2);
		wire_put_value_refs(b, KRAY_WT_FD, 0, 4 << 20, &B, sizeof(B), &P, 1);
		done("get-reply");
		m = (struct kray_msg_get_reply){ .status = -ETIMEDOUT };
		frame(KRAY_MSG_GET_REPLY);
		put(&m, sizeof(m));
		done("get-reply-timeout");
	}
	{
		frame(KRAY_MSG_PUT);
		put(&P, sizeof(P));
		wire_put_value_refs(b, KRAY_WT_BYTES, 0, 0, "a list of refs", 14, AB, 2);
		done("put-nested");
		frame(KRAY_MSG_PUT);
		put(&P, sizeof(P));
		wire_put_value(b, KRAY_WT_INT64, 0, 7, NULL, 0);
		done("put-int");
	}
	{
		struct kray_msg_refs m = { .n = 2 };

		frame(KRAY_MSG_RELEASE);
		put(&m, sizeof(m));
		put(AB, sizeof(AB));
		done("release");
		frame(KRAY_MSG_HOLD);
		put(&m, sizeof(m));
		put(AB, sizeof(AB));
		done("hold");
		m.n = 1;
		frame(KRAY_MSG_UNPIN);
		put(&m, sizeof(m));
		put(&P, sizeof(P));
		done("unpin");
		frame(KRAY_MSG_KMOD_PIN);
		put(&m, sizeof(m));
		put(&P, sizeof(P));
		done("kmod-pin");
	}
	{
		struct kray_wire_stats st = { .node = 0x11, .drivers = 1, .workers = 4 };

		frame(KRAY_MSG_STATUS);
		done("status");
		frame(KRAY_MSG_STATUS_REPLY);
		put(&st, sizeof(st));
		done("status-reply");
		frame(KRAY_MSG_LIST_WORKERS);
		done("list-workers");
	}
	{
		/* METRIC: a counter with two tags, a gauge, a histogram, a declaration. */
		static const char tags[] = "actor\0a\0route\0/x\0";
		static const double bounds[] = { 10, 100, 1000 };
		static const uint64_t buckets[] = { 1, 2, 0, 1 };
		struct kray_msg_metric m = { .kind = KRAY_METRIC_COUNTER,
					     .name_len = 12,
					     .ntags = 2,
					     .help_len = 9,
					     .tags_len = sizeof(tags) - 1,
					     .value = f64(2.5) };

		fb = (struct kbuf){ 0 };
		foff = 0;
		wire_put_metric(&fb, 1000 + nframes, &m, "num_requests", "Requests.", tags, NULL,
				NULL);
		done("metric-counter");
		m = (struct kray_msg_metric){ .kind = KRAY_METRIC_GAUGE,
					      .name_len = 5,
					      .value = f64(-3) };
		fb = (struct kbuf){ 0 };
		wire_put_metric(&fb, 0, &m, "level", "", "", NULL, NULL);
		done("metric-gauge");
		m = (struct kray_msg_metric){ .kind = KRAY_METRIC_HISTOGRAM,
					      .name_len = 10,
					      .nbounds = 3,
					      .ntags = 1,
					      .tags_len = 8,
					      .value = f64(5089),
					      .count = 4 };
		fb = (struct kbuf){ 0 };
		wire_put_metric(&fb, 0, &m, "latency_ms", "", "route\0/\0", bounds, buckets);
		done("metric-histogram");
		m = (struct kray_msg_metric){ .kind = KRAY_METRIC_HISTOGRAM,
					      .flags = KRAY_METRIC_DEFINE,
					      .name_len = 10,
					      .nbounds = 3,
					      .help_len = 8 };
		fb = (struct kbuf){ 0 };
		wire_put_metric(&fb, 1000 + nframes, &m, "latency_ms", "Latency.", "", bounds,
				NULL);
		done("metric-define");
	}
	{
		fb = (struct kbuf){ 0 };
		foff = fb.len;
		wire_put_error_frame(&fb, 1000 + nframes, -EBADMSG, "malformed submit");
		/* wire_put_error_frame() ended it already; done() ends it again, the same. */
		done("error");
	}
	{
		struct kray_msg_exec m = { .task = { 0x11, 2, 3, 0 },
					   .job = 1,
					   .num_returns = 1,
					   .nargs = 7,
					   .name_len = 6 };

		frame(KRAY_MSG_EXEC);
		put(&m, sizeof(m));
		put_name("square");
		v_plain(b);
		wire_put_value(b, KRAY_WT_FD, 0, 1 << 20, &A, sizeof(A));
		wire_put_value(b, KRAY_WT_ACTOR, 0, 0, &ACTOR, sizeof(ACTOR));
		done("exec");
		m = (struct kray_msg_exec){ .task = ACTOR,
					    .job = 1,
					    .num_returns = 0,
					    .nargs = 1,
					    .name_len = 7,
					    .ctor = 1,
					    .max_concurrency = 4 };
		frame(KRAY_MSG_EXEC);
		put(&m, sizeof(m));
		put_name("Counter");
		wire_put_value(b, KRAY_WT_INT64, 0, 10, NULL, 0);
		done("exec-ctor");
	}
	{
		struct kray_msg_result m = { .task = { 0x11, 2, 3, 0 }, .exec_ns = 1234, .n = 4 };

		frame(KRAY_MSG_RESULT);
		put(&m, sizeof(m));
		wire_put_value(b, KRAY_WT_INT64, 0, 49, NULL, 0);
		wire_put_value(b, KRAY_WT_OBJECT, 0, 0, &P, sizeof(P));
		wire_put_value_refs(b, KRAY_WT_BYTES, 0, 0, "x", 1, &A, 1);
		wire_put_value(b, KRAY_WT_F64, 0, f64(-0.0), NULL, 0);
		done("result");
		m.n = 1;
		frame(KRAY_MSG_RESULT);
		put(&m, sizeof(m));
		wire_put_errorf(b, KRAY_WE_UNKNOWN_FUNCTION, "no function '%s'", "sqare");
		done("result-error");
	}
	{
		struct kray_msg_reject m = { .task = { 0x11, 2, 3, 0 } };

		frame(KRAY_MSG_REJECT);
		put(&m, sizeof(m));
		done("reject");
	}
	{
		const char *path = "/opt/kray/jobs";
		struct kray_msg_job m = { .job = 1, .path_len = (uint32_t)strlen(path) };

		frame(KRAY_MSG_JOB);
		put(&m, sizeof(m));
		put_name(path);
		done("job");
	}
	{
		struct kray_msg_job m = { .job = 1 };

		frame(KRAY_MSG_JOB_END);
		put(&m, sizeof(m));
		done("job_end");
	}
	{
		struct kray_msg_create c = { .oid = P, .size = 8 << 20 };
		struct kray_msg_create_reply r = { .status = 0 };
		struct kray_msg_seal s = { .oid = P };

		frame(KRAY_MSG_CREATE);
		put(&c, sizeof(c));
		done("create");
		frame(KRAY_MSG_CREATE_REPLY);
		put(&r, sizeof(r));
		done("create-reply");
		r.status = -ENOSPC;
		frame(KRAY_MSG_CREATE_REPLY);
		put(&r, sizeof(r));
		done("create-reply-enospc");
		frame(KRAY_MSG_SEAL);
		put(&s, sizeof(s));
		done("seal");
	}
	{
		struct kray_msg_wait m = { .timeout_ms = 500, .n = 3, .num_ready = 1 };
		const struct kray_oid ids[3] = { A, B, P };
		struct kray_msg_refs r = { .n = 3 };
		const uint8_t ready[3] = { 1, 0, 1 };

		frame(KRAY_MSG_WAIT);
		put(&m, sizeof(m));
		put(ids, sizeof(ids));
		done("wait");
		frame(KRAY_MSG_WAIT_REPLY);
		put(&r, sizeof(r));
		wire_put_padded(b, ready, sizeof(ready));
		done("wait-reply");
	}
	{
		struct kray_msg_actor_create m = { .seq = 6,
						   .job = 1,
						   .max_restarts = 2,
						   .max_task_retries = -1,
						   .max_concurrency = 1,
						   .nargs = 2,
						   .num_cpus_milli = 1000,
						   .class_len = 7,
						   .name_len = 7,
						   .ns_len = 5,
						   .res_len = 14 };

		frame(KRAY_MSG_ACTOR_CREATE);
		put(&m, sizeof(m));
		put_name("Counter");
		put_name("counter");
		put_name("jobs1");
		put_name("GPU:1,ssd:0.25");
		wire_put_value(b, KRAY_WT_INT64, 0, 10, NULL, 0);
		wire_put_value(b, KRAY_WT_REF, 0, 0, &A, sizeof(A));
		done("actor-create");
		m = (struct kray_msg_actor_create){
			.seq = 7, .max_concurrency = 8, .detached = 1, .class_len = 3
		};
		frame(KRAY_MSG_ACTOR_CREATE);
		put(&m, sizeof(m));
		put_name("Log");
		done("actor-create-anon");
	}
	{
		/* An actor's creation record (FWD_ACTOR; ACTOR_RECORD and ACTOR_RESTART carry
		 * it after their own header: gactor.c). */
		struct kray_msg_fwd_actor f = { .actor = ACTOR, .job = 1, .path_len = 14 };
		struct kray_msg_actor_create m = { .seq = 6,
						   .nargs = 1,
						   .max_concurrency = 1,
						   .max_restarts = 2,
						   .max_task_retries = -1,
						   .class_len = 7,
						   .name_len = 3,
						   .res_len = 5 };
		struct kray_msg_actor_record r = { .actor = ACTOR,
						   .host = 0x22,
						   .op = KRAY_AREC_ADD };
		struct kray_msg_actor_locate l = { .actor = ACTOR, .node = 0x33, .restarts = 1 };
		static const uint16_t types[3] = { KRAY_MSG_FWD_ACTOR, KRAY_MSG_ACTOR_RECORD,
						   KRAY_MSG_ACTOR_RESTART };
		static const char *const names[3] = { "fwd-actor", "actor-record",
						      "actor-restart" };

		for (int i = 0; i < 3; i++) {
			frame(types[i]);
			r.op = i == 2 ? KRAY_AREC_RESTART : KRAY_AREC_ADD;
			if (i)
				put(&r, sizeof(r));
			put(&f, sizeof(f));
			put_name("/opt/kray/jobs");
			put(&m, sizeof(m));
			put_name("Counter");
			put_name("svc");
			put_name("any:1");
			wire_put_value(b, KRAY_WT_INT64, 0, 10, NULL, 0);
			done(names[i]);
		}
		r.op = KRAY_AREC_GONE;
		frame(KRAY_MSG_ACTOR_RECORD);
		put(&r, sizeof(r));
		done("actor-record-gone");
		frame(KRAY_MSG_ACTOR_LOCATE);
		put(&l, sizeof(l));
		done("actor-locate");
	}
	{
		/* A lazy reader faulted deep in an object that streams in: its chunk first. */
		struct kray_msg_obj_range m = { .oid = A, .offset = 252u << 20, .len = 4096 };

		frame(KRAY_MSG_OBJ_RANGE);
		put(&m, sizeof(m));
		done("obj-range");
		m.offset = KRAY_OBJECT_MAX - 1;
		m.len = 2; /* past the largest object: refused */
		frame(KRAY_MSG_OBJ_RANGE);
		put(&m, sizeof(m));
		done("obj-range-past-max");
	}
	{
		struct kray_msg_get_actor m = { .name_len = 7, .ns_len = 5 };

		frame(KRAY_MSG_GET_ACTOR);
		put(&m, sizeof(m));
		put_name("counter");
		put_name("jobs1");
		done("get-actor");
		m.ns_len = 0;
		frame(KRAY_MSG_GET_ACTOR);
		put(&m, sizeof(m));
		put_name("counter");
		done("get-actor-no-ns");
		m = (struct kray_msg_get_actor){ .flags = KRAY_GET_ACTOR_SELF };
		frame(KRAY_MSG_GET_ACTOR);
		put(&m, sizeof(m));
		done("get-actor-self");
	}
	{
		struct kray_msg_fast_count m = {
			.run_ns = 123456, .runs = 9, .failed = 2, .stored = 1, .name_len = 6
		};

		frame(KRAY_MSG_FAST_COUNT);
		put(&m, sizeof(m));
		put_name("square");
		done("fast-count");
	}
	{
		struct kray_msg_fast_count m = {
			.run_ns = 300, .runs = 2, .failed = 1, .name_len = 3, .nrec = 2
		};
		struct kray_fast_run r[2] = {
			{ .task = P, .end_ns = 1000, .run_ns = 100, .job = 1 },
			{ .task = P, .end_ns = 2000, .run_ns = 200, .job = 1, .failed = 1 }
		};

		frame(KRAY_MSG_FAST_COUNT);
		put(&m, sizeof(m));
		put_name("add");
		put(r, sizeof(r));
		done("fast-count-records");
	}
	{
		struct kray_msg_kill m = { .actor = ACTOR, .no_restart = 1 };
		const char *text = "no such live actor";
		struct kray_msg_actor_reply r = { .status = -ENOENT,
						  .len = (uint32_t)strlen(text),
						  .actor = ACTOR };

		frame(KRAY_MSG_KILL);
		put(&m, sizeof(m));
		done("kill");
		frame(KRAY_MSG_ACTOR_REPLY);
		put(&r, sizeof(r));
		put_name(text);
		done("actor-reply");
		frame(KRAY_MSG_ACTOR_STOP);
		done("actor-stop");
	}
	/* Types newer than this generator: an empty body, and an ERROR-layout text. */
	for (unsigned int t = KRAY_MSG_ACTOR_STOP + 1; t <= KRAY_MSG_TYPE_MAX; t++) {
		if (!kray_msg_type_known(t))
			continue;
		struct kray_msg_error m = { .code = 0, .len = 4 };
		char name[32];

		frame((uint16_t)t);
		snprintf(name, sizeof(name), "type%u-empty", t);
		done(name);
		frame((uint16_t)t);
		put(&m, sizeof(m));
		put_name("text");
		snprintf(name, sizeof(name), "type%u-text", t);
		done(name);
	}

	emit("frame", "stream-all", stream.data, stream.len);
	/* A stream that ends inside a frame, as a read often does. */
	emit("frame", "stream-cut", stream.data, stream.len / 2 + 3);
	kbuf_free(&stream);
}

/* ---- values ------------------------------------------------------------------------- */

/* values/NAME: the placement byte, then the values in b. */
static void emit_values(const char *name, uint8_t place, const char *junk, struct kbuf *b)
{
	struct kbuf f = { 0 };

	kbuf_put(&f, &place, 1);
	kbuf_put(&f, junk, strlen(junk));
	kbuf_put(&f, b->data, b->len);
	emit("values", name, f.data, f.len);
	kbuf_free(&f);
}

static void values(void)
{
	struct kbuf all = { 0 }, b = { 0 };

	/* Each type alone. */
	wire_put_value(&b, KRAY_WT_NIL, 0, 0, NULL, 0);
	emit_values("nil", 0, "", &b);
	b.len = 0;
	wire_put_value(&b, KRAY_WT_INT64, 0, (uint64_t)INT64_MIN, NULL, 0);
	emit_values("int64", 0, "", &b);
	b.len = 0;
	wire_put_value(&b, KRAY_WT_F64, 0, f64(1e300), NULL, 0);
	emit_values("f64", 0, "", &b);
	b.len = 0;
	wire_put_value(&b, KRAY_WT_BYTES, 0, 0, "0123456789abcdef", 16);
	emit_values("bytes", 0, "", &b);
	b.len = 0;
	wire_put_value(&b, KRAY_WT_REF, 0, 0, &A, sizeof(A));
	emit_values("ref", 0, "", &b);
	b.len = 0;
	wire_put_errorf(&b, KRAY_WE_WORKER_DIED, "worker %d died: %s", 77, "SIGSEGV");
	emit_values("error", 0, "", &b);
	b.len = 0;
	wire_put_value(&b, KRAY_WT_FD, 0, 1 << 20, &A, sizeof(A));
	emit_values("fd", 0, "", &b);
	b.len = 0;
	wire_put_value(&b, KRAY_WT_OBJECT, 0, 0, &P, sizeof(P));
	emit_values("object", 0, "", &b);
	b.len = 0;
	wire_put_value(&b, KRAY_WT_ACTOR, 0, 0, &ACTOR, sizeof(ACTOR));
	emit_values("actor", 0, "", &b);
	b.len = 0;
	wire_put_value_refs(&b, KRAY_WT_BYTES, 0, 0, "abc", 3, AB, 2);
	emit_values("bytes-nested", 0, "", &b);
	b.len = 0;
	wire_put_value_refs(&b, KRAY_WT_FD, 0, 2 << 20, &B, sizeof(B), &A, 1);
	emit_values("fd-nested", 0, "", &b);

	/* Lists as the messages carry them. */
	v_plain(&all);
	emit_values("list-plain", 0, "", &all);
	wire_put_value(&all, KRAY_WT_REF, 0, 0, &A, sizeof(A));
	wire_put_value(&all, KRAY_WT_ACTOR, 0, 0, &ACTOR, sizeof(ACTOR));
	emit_values("list-submit", 0, "", &all);
	b.len = 0;
	v_plain(&b);
	wire_put_value(&b, KRAY_WT_FD, 0, 1 << 20, &A, sizeof(A));
	wire_put_errorf(&b, KRAY_WE_OBJECT_LOST, "lost");
	wire_put_value_refs(&b, KRAY_WT_BYTES, 0, 0, "n", 1, AB, 2);
	emit_values("list-get-reply", 0, "", &b);
	b.len = 0;
	wire_put_value(&b, KRAY_WT_OBJECT, 0, 0, &P, sizeof(P));
	wire_put_value_refs(&b, KRAY_WT_INT64, 0, 5, NULL, 0, &A, 1);
	emit_values("list-result", 0, "", &b);

	/* The same lists misaligned and behind junk (placement: skip << 3 | misalign). */
	emit_values("list-submit-mis3", 3, "", &all);
	emit_values("list-submit-skip5-mis1", 5 << 3 | 1, "junk!", &all);
	emit_values("list-result-mis7", 7, "", &b);
	kbuf_free(&all);
	kbuf_free(&b);
}

/* ---- resources ---------------------------------------------------------------------- */

static void resources(void)
{
	static const char *const lists[] = {
		"GPU:2",
		"GPU:2,ssd:1",
		"GPU:0.5, ssd:1.25, fpga-x.1:0.125",
		"a:1000000000.999",
		"r0:1,r1:1,r2:1,r3:1,r4:1,r5:1,r6:1,r7:1,r8:1,r9:1,ra:1,rb:1,rc:1,rd:1,re:1,rf:1",
		"abcdefghijklmnopqrstuvwxyz01234:.5,",
	};
	char name[16];

	emit("resources", "empty", "", 0);
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		snprintf(name, sizeof(name), "list%zu", i);
		emit("resources", name, lists[i], strlen(lists[i]));
	}
}

/* ---- config ------------------------------------------------------------------------- */

static void config(void)
{
	static const char *const lines[] = {
		"socket = /run/kray/krayd.sock",
		"num-cpus = 4",
		"max-workers = 64",
		"prestart = -1",
		"store-size = 1G",
		"spill-dir = /var/lib/kray/spill",
		"pool-size = 256M",
		"hugepages = 1",
		"metrics = 127.0.0.1:9464",
		"resources = GPU:2,ssd:1.5,fpga-x.1:0.125",
		"inline-max = 64K",
		"code-path = /opt/kray/jobs:/srv/lib/libfns.so",
		"worker = /usr/local/bin/kray-worker",
		"pidfile = /run/kray/krayd.pid",
		"remove-dir = /tmp/kray-test",
		"log-level = debug",
	};
	struct kbuf all = { 0 };
	char name[64], text[256];

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int n = snprintf(text, sizeof(text), "%s\n", lines[i]);

		snprintf(name, sizeof(name), "key-%.*s", (int)strcspn(lines[i], " "), lines[i]);
		emit("config", name, text, (size_t)n);
		kbuf_put(&all, text, (size_t)n);
	}
	emit("config", "all-keys", all.data, all.len);
	kbuf_free(&all);
}

int main(int argc, char **argv)
{
	char path[4096];
	static const char *const targets[] = { "frame", "values", "resources", "config" };

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus OUTDIR\n");
		return 1;
	}
	outdir = argv[1];
	mkdir_p(outdir);
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", outdir, targets[i]);
		mkdir_p(path);
	}
	frames();
	values();
	resources();
	config();
	return 0;
}
