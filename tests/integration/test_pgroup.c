// SPDX-License-Identifier: Apache-2.0
/*
 * Placement groups through libkray (kray_pg_create/remove/table, docs/util.md): a group's
 * bundles are reserved on the node (other work cannot take them), tasks that ask for the
 * group's resources run in them, a group that does not fit waits (and says why), removal
 * gives everything back and fails the group's waiting tasks, a driver's groups go with
 * it unless detached, and krayd refuses malformed requests without harm.  (Across nodes:
 * tests/python/test_placement_group.py.)
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../../common/wire.h"
#include "harness.h"

TestSuite(pgroup, .fini = harness_cleanup);

static kray *start(struct harness *h)
{
	const char *extra[] = { "--resources", "accel:2", NULL };

	cr_assert_eq(harness_start_krayd_opts(h, 2, extra), 0);
	return harness_connect(h->sock);
}

static void create(kray *k, const char *bundles, int strategy, const char *name, int detached,
		   char *id)
{
	int rc = kray_pg_create(k, bundles, strategy, name, detached, id);

	cr_assert_eq(rc, 0, "kray_pg_create(%s): %d %s", bundles, rc, kray_errmsg(k));
	cr_assert_eq(strlen(id), 12);
}

/* The table's row of group id, as JSON text (malloc()ed), or NULL. */
static char *row_of(kray *k, const char *id)
{
	char *json = NULL, *row, *end;
	char key[64];

	cr_assert_eq(kray_pg_table(k, &json), 0, "%s", kray_errmsg(k));
	snprintf(key, sizeof(key), "{\"placement_group_id\":\"%s\"", id);
	row = strstr(json, key);
	if (!row) {
		free(json);
		return NULL;
	}
	end = strstr(row, "]}");
	row = strndup(row, end ? (size_t)(end - row) + 2 : strlen(row));
	free(json);
	return row;
}

/* Whether group id's row contains needle within ms. */
static bool row_has(kray *k, const char *id, const char *needle, int ms)
{
	int64_t end = harness_now_ms() + ms;

	do {
		char *row = row_of(k, id);
		bool has = row && strstr(row, needle);

		free(row);
		if (has)
			return true;
		usleep(20000);
	} while (harness_now_ms() < end);
	return false;
}

static kray_ref call_res(kray *k, int64_t ms, const char *res)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value arg = KRAY_V_INT(ms);
	kray_ref r;
	int rc;

	o.resources = res;
	rc = kray_call(k, "sleep_ms", &arg, 1, &o, &r);
	cr_assert_eq(rc, 0, "kray_call(%s): %d %s", res, rc, kray_errmsg(k));
	return r;
}

static void expect_value(kray *k, kray_ref r, int64_t want)
{
	kray_value v = { 0 };
	int rc = harness_get1(k, r, 30000, &v);

	cr_assert(rc == 0 && v.type == KRAY_INT64 && v.i == want, "rc %d type %d err %s: %s", rc,
		  v.type, harness_errkind(v.err), v.type == KRAY_ERROR ? (const char *)v.data : "");
	kray_value_clear(&v);
	kray_release(k, &r, 1);
}

static bool done_within(kray *k, kray_ref r, int ms)
{
	kray_value v = { 0 };
	int rc = harness_get1(k, r, ms, &v);

	kray_value_clear(&v);
	return rc == 0;
}

Test(pgroup, reserve_use_and_release)
{
	struct harness h;
	kray *k = start(&h);
	char id[13], id2[13], res[256];
	kray_ref outside, r;

	create(k, "CPU:1,accel:1;accel:1", KRAY_PLACEMENT_PACK, "g", 0, id);
	cr_assert(row_has(k, id, "\"state\":\"CREATED\"", 5000));
	cr_assert(row_has(k, id, "\"bundles\":[{\"CPU\":1.000,\"accel\":1.000},{\"accel\":1.000}]",
			  0));

	/* Both accels are the group's: a task outside it that needs one waits. */
	outside = call_res(k, 1, "CPU:0,accel:1");
	cr_assert_not(done_within(k, outside, 500), "a task took a reserved accel");

	/* The group's tasks run on its bundles: bundle 1's accel, any bundle's CPU. */
	snprintf(res, sizeof(res), "CPU:0,accel_group_1_%s:1,bundle_group_1_%s:0.001", id, id);
	expect_value(k, call_res(k, 5, res), 5);
	snprintf(res, sizeof(res), "CPU:0,CPU_group_%s:1", id);
	expect_value(k, call_res(k, 5, res), 5);
	/* More than the bundle holds is more than any node has: refused, not queued. */
	snprintf(res, sizeof(res), "CPU:0,CPU_group_0_%s:2", id);
	r = call_res(k, 5, res);
	{
		kray_value v = { 0 };

		cr_assert_eq(harness_get1(k, r, 10000, &v), -EREMOTEIO, "%s", kray_errmsg(k));
		cr_assert(v.type == KRAY_ERROR && strstr(v.data, "no live node has the resources"),
			  "%s", (const char *)v.data);
		kray_value_clear(&v);
	}

	/* A group that needs the reserved CPU waits, and says for what. */
	create(k, "CPU:2", KRAY_PLACEMENT_STRICT_PACK, NULL, 0, id2);
	cr_assert(row_has(k, id2, "waiting for 2 CPUs (1 free)", 2000));

	/* Removal gives it all back: the task outside runs, the second group is placed. */
	cr_assert_eq(kray_pg_remove(k, id), 0, "%s", kray_errmsg(k));
	cr_assert(row_has(k, id, "\"state\":\"REMOVED\"", 0));
	expect_value(k, outside, 1);
	cr_assert(row_has(k, id2, "\"state\":\"CREATED\"", 5000));
	cr_assert_eq(kray_pg_remove(k, id2), 0);
	harness_shutdown(k);
}

Test(pgroup, pending_group_holds_its_tasks)
{
	struct harness h;
	kray *k = start(&h);
	char full[13], id[13], res[128];
	kray_ref ready, never;
	int rc;
	kray_value v = { 0 };

	create(k, "CPU:2", KRAY_PLACEMENT_PACK, NULL, 0, full);
	create(k, "CPU:1", KRAY_PLACEMENT_PACK, NULL, 0, id);
	snprintf(res, sizeof(res), "CPU:0,bundle_group_%s:0.001", id); /* Ray's pg.ready() */
	ready = call_res(k, 3, res);
	cr_assert_not(done_within(k, ready, 300));
	cr_assert_eq(kray_pg_remove(k, full), 0);
	expect_value(k, ready, 3);
	cr_assert_eq(kray_pg_remove(k, id), 0);

	/* Never placeable on one node: it says so; its task fails when it is removed. */
	create(k, "CPU:1;CPU:1", KRAY_PLACEMENT_STRICT_SPREAD, NULL, 0, id);
	cr_assert(row_has(k, id, "infeasible: STRICT_SPREAD needs 2 nodes", 2000));
	create(k, "CPU:3", KRAY_PLACEMENT_PACK, NULL, 0, full);
	cr_assert(row_has(k, full, "infeasible: the bundles need 3 CPUs", 2000));
	snprintf(res, sizeof(res), "CPU:0,bundle_group_%s:0.001", id);
	never = call_res(k, 3, res);
	cr_assert_not(done_within(k, never, 200));
	cr_assert_eq(kray_pg_remove(k, id), 0);
	rc = harness_get1(k, never, 10000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "rc %d %s", rc, kray_errmsg(k));
	cr_assert(v.type == KRAY_ERROR && v.err == KRAY_ERR_CANCELLED, "%s",
		  harness_errkind(v.err));
	cr_assert(strstr(v.data, "was removed"), "%s", (const char *)v.data);
	kray_value_clear(&v);
	harness_shutdown(k);
}

Test(pgroup, groups_end_with_their_driver_unless_detached)
{
	struct harness h;
	kray *k = start(&h), *other = harness_connect(h.sock);
	char mine[13], kept[13];

	create(other, "CPU:1", KRAY_PLACEMENT_PACK, "mine", 0, mine);
	create(other, "accel:1", KRAY_PLACEMENT_PACK, "kept", 1, kept);
	harness_shutdown(other);
	cr_assert(row_has(k, mine, "\"state\":\"REMOVED\"", 5000));
	cr_assert(row_has(k, kept, "\"state\":\"CREATED\"", 0));
	cr_assert(row_has(k, kept, "\"detached\":true", 0));
	harness_shutdown(k);
}

Test(pgroup, bad_requests)
{
	struct harness h;
	kray *k = start(&h);
	char id[13];
	const char *bad[] = { "CPU",
			      "",
			      "CPU:1;",
			      "CPU:0",
			      "a_name_far_too_long_for_it:1",
			      "x:1,x:1",
			      "CPU_group_1:1",
			      "x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;"
			      "x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;"
			      "x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;"
			      "x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;"
			      "x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1;x:1" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(kray_pg_create(k, bad[i], KRAY_PLACEMENT_PACK, NULL, 0, id), -EINVAL,
			     "bundles '%s' accepted", bad[i]);
	cr_assert_eq(kray_pg_create(k, "CPU:1", 7, NULL, 0, id), -EINVAL);
	create(k, "CPU:1", KRAY_PLACEMENT_PACK, "once", 0, id);
	cr_assert_eq(kray_pg_create(k, "CPU:1", KRAY_PLACEMENT_PACK, "once", 0, id), -EEXIST);
	cr_assert_eq(kray_pg_remove(k, "000000000000"), -ENOENT);
	cr_assert_eq(kray_pg_remove(k, "short"), -EINVAL);

	/* Malformed frames: an ERROR, that connection closed, krayd serves on. */
	struct {
		struct kray_frame_hdr h;
		struct kray_msg_pg m;
	} f = { .h = { .magic = KRAY_WIRE_MAGIC,
		       .version = KRAY_WIRE_VERSION,
		       .type = KRAY_MSG_PG,
		       .len = sizeof(struct kray_msg_pg) } };

	f.m.op = KRAY_PG_CREATE;
	f.m.bundles_len = 64; /* more than follows */
	harness_raw_expect_error(&h, &f, sizeof(f), -EBADMSG, "bundles past the body");
	f.m.bundles_len = 0;
	f.m.op = 9;
	harness_raw_expect_error(&h, &f, sizeof(f), -EBADMSG, "unknown op");
	f.m.op = KRAY_PG_TABLE;
	f.m.detached = 2;
	harness_raw_expect_error(&h, &f, sizeof(f), -EBADMSG, "detached not 0 or 1");
	cr_assert(row_has(k, id, "\"state\":\"CREATED\"", 0));
	harness_shutdown(k);
}
