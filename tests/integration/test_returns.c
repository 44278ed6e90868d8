// SPDX-License-Identifier: Apache-2.0
/*
 * The calls libkray gained for language hosts (the Python wrapper): results that contain
 * refs (kray_return_refs), large results moved into the return slot without a copy
 * (kray_return_object), the running task's id (kray_ctx_task) and a connection's ids
 * (kray_ids), and settings for a private krayd (kray_config.krayd_args).  Remote
 * functions from tests/fixtures/returnfns.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <kray/kray.h>

#include "harness.h"

TestSuite(returns, .fini = harness_cleanup, .timeout = 60);

Test(returns, result_with_ref)
{
	kray *k = harness_embedded(1);
	kray_ref r = harness_call1(k, "ret_with_ref", &KRAY_V_INT(42), 1);
	kray_value v, inner;

	cr_assert_eq(harness_get1(k, r, 30000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, 6);
	cr_assert_eq(memcmp(v.data, "holder", 6), 0);
	cr_assert_eq(v.nrefs, 1, "the ref did not come with the result");
	/* This process borrowed the object with the get. */
	cr_assert_eq(harness_get1(k, v.refs[0], 30000, &inner), 0, "%s", kray_errmsg(k));
	cr_assert_eq(inner.type, KRAY_INT64);
	cr_assert_eq(inner.i, 42);
	kray_release(k, v.refs, v.nrefs);
	kray_value_clear(&inner);
	kray_value_clear(&v);
}

Test(returns, large_result_moved)
{
	kray *k = harness_embedded(1);
	const int64_t n = 8 << 20;
	kray_ref r = harness_call1(k, "ret_object", &KRAY_V_INT(n), 1);
	struct kray_stats st;
	kray_value v;

	cr_assert_eq(harness_get1(k, r, 30000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq((int64_t)v.len, n);
	for (int64_t i = 0; i < n; i += 4093)
		cr_assert_eq(((const unsigned char *)v.data)[i], (unsigned char)(i % 251));
	cr_assert_eq(kray_status(k, &st), 0);
	cr_assert_geq(st.store_bytes, (uint64_t)n, "the result is not in the store");
	kray_value_clear(&v);
	harness_expect_int(k, "ret_bad_object", NULL, 0, 1);
}

Test(returns, task_and_client_ids)
{
	kray *k = harness_embedded(1);
	kray_ref r = harness_call1(k, "my_task_id", NULL, 0);
	struct kray_ids ids;
	kray_ref got;
	kray_value v;

	cr_assert_eq(harness_get1(k, r, 30000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.len, sizeof(got));
	memcpy(&got, v.data, sizeof(got));
	cr_assert(got.node == r.node && got.owner == r.owner && got.seq == r.seq && got.index == 0,
		  "task id %u.%u.%u.%u for ref %u.%u.%u.%u", got.node, got.owner, got.seq,
		  got.index, r.node, r.owner, r.seq, r.index);
	kray_value_clear(&v);
	kray_ids(k, &ids);
	cr_assert_eq(ids.node, r.node);
	cr_assert_eq(ids.client, r.owner);
	cr_assert_neq(ids.job, 0);
	cr_assert_geq(ids.inline_max, 1024);
}

/* kray_config.krayd_args reach a private krayd: its store size and custom resources. */
Test(returns, private_krayd_args)
{
	const char *args[] = { "--store-size", "64M", "--resources", "widget:2", NULL };
	struct kray_config cfg = { .num_cpus = 1, .krayd_args = args };
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct kray_stats st;
	kray_ref a;
	kray *k;

	cfg.code_path = getenv("KRAY_TEST_CODE_PATH");
	cr_assert_eq(kray_init(&k, &cfg), 0, "%s", kray_init_errmsg());
	cr_assert_eq(kray_status(k, &st), 0);
	cr_assert_eq(st.store_capacity, 64u << 20);
	o.resources = "widget:3";
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &o, &a), -EINVAL,
		     "an actor got 3 of the 2 widgets the krayd_args declared");
	kray_shutdown(k);

	const char *bad[] = { "--no-such-setting", "1", NULL };

	cfg.krayd_args = bad;
	cr_assert_neq(kray_init(&k, &cfg), 0, "krayd started with an unknown setting");
}
