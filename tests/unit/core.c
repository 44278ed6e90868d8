// SPDX-License-Identifier: Apache-2.0
/* The core fixture of tests/unit/core.h. */
#include <ftw.h>

#include "core.h"

struct krayd d;
struct probe probe;
char tmpdir[64];

static void probe_published(struct krayd *k, struct obj *o)
{
	(void)k;
	(void)o;
	probe.published++;
}

static int probe_withdraw(struct krayd *k, struct obj *o, bool if_unused)
{
	(void)k;
	(void)o;
	(void)if_unused;
	probe.withdrawn++;
	return 0;
}

static void probe_settled(struct krayd *k, struct obj *o)
{
	(void)k;
	(void)o;
	probe.settled++;
}

static bool probe_place(struct krayd *k, struct task *t)
{
	(void)k;
	if (!probe.place_custom || !t->nres)
		return false;
	probe.placed++;
	task_free(k, t); /* taken: as the cluster would, it owns t now */
	return true;
}

static bool probe_claim(struct krayd *k, struct worker *w)
{
	(void)k;
	(void)w;
	probe.claims++;
	return !probe.refuse_claims;
}

static void probe_exec_sent(struct krayd *k, struct worker *w, const struct task *t)
{
	(void)k;
	(void)w;
	(void)t;
	probe.exec_sent++;
}

static const struct ext probe_ext = {
	.name = "probe",
	.obj_published = probe_published,
	.obj_withdraw = probe_withdraw,
	.obj_settled = probe_settled,
	.place = probe_place,
	.worker_claim = probe_claim,
	.exec_sent = probe_exec_sent,
};

static void handle_gone(struct krayd *k, const struct kray_oid *id)
{
	(void)k;
	probe.handles_gone++;
	probe.last_handle = *id;
}

void core_setup(const char *const *flags)
{
	char sock[128];
	/* No workers of its own: the scheduler's refill (sched_refill()) starts none. */
	const char *argv[32] = { "krayd", "--socket",	sock, "--log-level", "error", "--pool-size",
				 "0",	  "--num-cpus", "1",  "--prestart",  "0" };
	int argc = 11;

	memset(&d, 0, sizeof(d));
	memset(&probe, 0, sizeof(probe));
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kray-unit-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(sock, sizeof(sock), "%s/krayd.sock", tmpdir);
	for (; flags && *flags && argc < 31; flags++)
		argv[argc++] = *flags;
	cr_assert_eq(config_load(&d.cfg, argc, (char **)argv), 0, "config");
	d.node = 7;
	d.kmod_fd = -1; /* (as kmod_init() leaves it without /dev/kray) */
	d.client_kind = &proto_client;
	d.handle_gone = handle_gone;
	d.worker_lost = sched_worker_lost;
	cr_assert_eq(ext_add(&d, &probe_ext), 0);
	cr_assert_eq(store_mem_init(&d), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void core_teardown(void)
{
	sched_fini(&d);
	store_fini(&d);
	store_mem_fini(&d);
	job_fini(&d);
	nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

struct conn *core_client(void)
{
	struct conn *c = calloc(1, sizeof(*c));

	cr_assert_not_null(c);
	c->d = &d;
	c->kind = &proto_client;
	c->fd = -1;
	c->id = ++d.next_client;
	c->role = ROLE_DRIVER;
	c->job = c->id;
	d.st.drivers++; /* as a hello counts it (proto_conn_gone() uncounts) */
	job_hold(job_add(&d, c->job, "", 0)); /* as a hello does */
	return c;
}

void core_client_free(struct conn *c)
{
	struct fdq *q = &c->fdq;

	proto_conn_gone(c); /* the real release of whatever it holds */
	for (unsigned i = 0; i < q->n; i++)
		close(q->e[(q->head + i) % q->cap].fd);
	free(q->e);
	for (unsigned i = 0; i < c->frame_nfds; i++)
		close(c->frame_fds[i]);
	kbuf_free(&c->in);
	kbuf_free(&c->out);
	kbuf_free(&c->sending);
	free(c);
}
