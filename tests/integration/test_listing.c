// SPDX-License-Identifier: Apache-2.0
/*
 * kray_list_actors() and kray_list_nodes() against a real krayd: the structs agree with
 * what was created (class, namespace/name, state, pid) and with the text listing, and
 * outside a cluster there are no nodes.  Bad input is -EINVAL.  kray_describe_workers()
 * names the workers and drivers; a LIST_WORKERS with a body is refused.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kray/kray.h>
#include <uapi/kray_wire.h>

#include "harness.h"

TestSuite(listing, .fini = harness_cleanup, .timeout = 60);

Test(listing, actors_as_structs)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct kray_actor_info *a = NULL;
	kray_ref named, plain, out[1];
	kray_value v;
	size_t n = 0;
	int found = 0;
	char *text;
	kray *k = harness_embedded(2);

	o.name = "lister";
	o.ns = "tests";
	cr_assert_eq(kray_actor_create(k, "Counter", &KRAY_V_INT(1), 1, &o, &named), 0, "%s",
		     kray_errmsg(k));
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, NULL, &plain), 0, "%s",
		     kray_errmsg(k));
	/* A call answered: both constructors ran, the actors are alive. */
	cr_assert_eq(kray_actor_call(k, named, "incr", &KRAY_V_INT(1), 1, NULL, out), 0);
	cr_assert_eq(kray_get(k, out, 1, 20000, &v), 0, "%s", kray_errmsg(k));
	kray_value_clear(&v);
	cr_assert_eq(kray_actor_call(k, plain, "incr", &KRAY_V_INT(1), 1, NULL, out), 0);
	cr_assert_eq(kray_get(k, out, 1, 20000, &v), 0, "%s", kray_errmsg(k));
	kray_value_clear(&v);

	cr_assert_eq(kray_list_actors(k, &a, &n), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_describe_actors(k, &text), 0);
	cr_assert_geq(n, 2, "listing: %s", text);
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(a[i].class_name, "Counter");
		cr_assert_eq(a[i].state, KRAY_ACTOR_ALIVE, "%s", text);
		cr_assert_gt(a[i].pid, 0);
		if (!memcmp(&a[i].id, &named, sizeof(named))) {
			cr_assert_str_eq(a[i].ns, "tests");
			cr_assert_str_eq(a[i].name, "lister");
			found |= 1;
		} else if (!memcmp(&a[i].id, &plain, sizeof(plain))) {
			cr_assert_str_eq(a[i].name, "");
			found |= 2;
		}
	}
	cr_assert_eq(found, 3, "both actors listed by handle: %s", text);
	free(text);
	free(a);
	cr_assert_eq(kray_list_actors(k, NULL, &n), -EINVAL);
	harness_shutdown(k);
}

Test(listing, no_nodes_outside_a_cluster)
{
	struct kray_node_info *e = (void *)1;
	size_t n = 99;
	kray *k = harness_embedded(1);

	cr_assert_eq(kray_list_nodes(k, &e, &n), 0, "%s", kray_errmsg(k));
	cr_assert_eq(n, 0);
	cr_assert_null(e);
	cr_assert_eq(kray_list_nodes(k, &e, NULL), -EINVAL);
	harness_shutdown(k);
}

/* kray_describe_workers() (LIST_WORKERS): the worker that ran a task, with its pid and the
 * client id it got, and this driver, with its pid and job. */
Test(listing, workers_and_drivers)
{
	struct harness h;
	kray_value v;
	char pid[32], *json = NULL, *drivers;
	kray *k;

	setenv("KRAY_FASTPATH", "off", 1); /* krayd's worker runs it, not the fast path */
	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	k = harness_connect(h.sock);
	cr_assert_eq(harness_get1(k, harness_call1(k, "square", &KRAY_V_INT(3), 1), 20000, &v), 0,
		     "%s", kray_errmsg(k));
	kray_value_clear(&v);
	cr_assert_eq(kray_describe_workers(k, &json), 0, "%s", kray_errmsg(k));
	cr_assert(!strncmp(json, "{\"api\":\"v1\",\"node_id\":\"", 23), "%s", json);
	cr_assert_not_null(strstr(json, "\"workers\":[{\"worker_id\":"), "%s", json);
	cr_assert_not_null(strstr(json, "\"tasks_done\":1"), "the worker ran the task: %s", json);
	drivers = strstr(json, "\"drivers\":[{\"client_id\":");
	cr_assert_not_null(drivers, "%s", json);
	snprintf(pid, sizeof(pid), "\"pid\":%d,", (int)getpid());
	cr_assert_not_null(strstr(drivers, pid), "this driver's pid: %s", drivers);
	cr_assert_null(strstr(drivers, "\"start_time_ms\":0}"), "%s", drivers);
	free(json);
	harness_shutdown(k);
}

/* A LIST_WORKERS request with a body is refused; krayd keeps serving. */
Test(listing, list_workers_with_a_body_is_refused)
{
	struct harness h;
	struct {
		struct kray_frame_hdr h;
		uint64_t junk;
	} f = { .h = { .magic = KRAY_WIRE_MAGIC,
		       .version = KRAY_WIRE_VERSION,
		       .type = KRAY_MSG_LIST_WORKERS,
		       .len = 8,
		       .req = 1 } };

	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	harness_raw_expect_error(&h, &f, sizeof(f), -EBADMSG, "LIST_WORKERS with a body");
	harness_expect_serving(&h, "a malformed LIST_WORKERS");
}
