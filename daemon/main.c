// SPDX-License-Identifier: Apache-2.0
/*
 * krayd: kray's per-node daemon.  Reads its settings, opens its socket, prestarts the
 * worker pool, tells whoever started it that it is ready, runs the event loop until
 * SIGTERM, then stops every worker and removes what it created.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf/bpf.h"
#include "cluster/cluster.h"
#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/getreq.h"
#include "core/sched.h"
#include "core/proto.h"
#include "core/pgroup.h"
#include "core/timeout.h"
#include "core/metrics.h"
#include "core/appmetric.h"
#include "core/timeline.h"
#include "dashboard/dashboard.h"
#include "core/log.h"
#include "kmod/kmod.h"
#include "../common/rundir.h"

static uint32_t new_node_id(void)
{
	uint32_t id = 0;

	while (!id)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = (uint32_t)getpid();
	return id;
}

/*
 * Writes krayd's pid to path, created O_EXCL and never through a symlink.  A pid file that
 * is there already is stale unless it names a running krayd serving sock (common/rundir.c):
 * a stale one is replaced, and the log says so.  Returns 0 or -errno.
 */
static int write_pidfile(const char *path, const char *sock)
{
	char buf[32];
	int fd, n;

	for (int tries = 0; tries < 2; tries++) {
		pid_t old;

		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST)
			break;
		old = rundir_read_pid(path);
		if (old > 0 && old != getpid() && rundir_is_krayd(old, sock))
			return -EBUSY;
		if (unlink(path) && errno != ENOENT)
			return -errno;
		if (old > 0)
			log_warn("pidfile %s: replaced a stale one (pid %d is not a krayd serving "
				 "%s)",
				 path, (int)old, sock);
		else
			log_warn("pidfile %s: replaced a stale one (%s)", path,
				 old == -ELOOP ? "a symlink" : "no pid in it");
	}
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		int r = -errno;

		close(fd);
		return r ? r : -EIO;
	}
	return close(fd) ? -errno : 0;
}

int main(int argc, char **argv)
{
	static struct krayd d;
	int r;

	r = config_load(&d.cfg, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;
	log_level = d.cfg.log_level;
	d.node = new_node_id();
	{
		struct wire_resource res[KRAY_RESOURCES_MAX];

		/* Checked by config_load(). */
		d.nres = wire_parse_resources(d.cfg.resources, strlen(d.cfg.resources), res);
		for (int i = 0; i < d.nres; i++)
			d.res[i].r = res[i];
		d.nres_own = d.nres;
	}
	/* The socket's directory: created 0700, or refused if it is not ours or others may
	 * write in it (issue 21), before krayd writes anything there. */
	{
		char why[PATH_MAX + 256];

		if (rundir_prepare(d.cfg.socket, why, sizeof(why))) {
			log_err("%s", why);
			return 1;
		}
	}

	r = loop_init(&d);
	if (r)
		return 1;
	/* The core's own wiring to the loop: clients on krayd's socket, the scheduler after
	 * each batch of events, worker deaths on SIGCHLD, get deadlines; then the parts
	 * outside the core plug in (cluster, /dev/kray, BPF: core/ext.h). */
	d.client_kind = &proto_client;
	d.worker_ready = actor_worker_ready;
	d.worker_lost = sched_worker_lost;
	d.handle_gone = actor_handle_gone;
	loop_on_turn(&d, sched_dispatch);
	loop_on_child(&d, worker_reap);
	if (loop_listen(&d, d.listen_fd, proto_accepted, "clients") ||
	    loop_timer(&d, get_next_deadline, get_expire) ||
	    loop_timer(&d, ext_next_deadline, ext_tick) || timeout_init(&d) || metrics_init(&d)) {
		loop_fini(&d);
		return 1;
	}
	/* Its spill dir is its own while it runs: another krayd's files stay untouched, a
	 * crashed one's are removed (store_spill.c). */
	if (store_spill_open(&d)) {
		loop_fini(&d);
		return 1;
	}
	if (store_mem_init(&d) || (r = store_io_start(&d, store_io_drain)) ||
	    (r = store_lazy_start(&d))) {
		log_err("object store: %s", d.pool ? strerror(-r) : "out of memory");
		loop_fini(&d);
		store_spill_close(&d);
		return 1;
	}
	if (timeline_init(&d) || timeline_start(&d)) {
		log_err("timeline: out of memory for %d records", d.cfg.timeline_events);
		loop_fini(&d);
		store_mem_fini(&d);
		store_spill_close(&d);
		return 1;
	}
	/* Placement groups first: their hook holds a group's tasks before the cluster's
	 * placement sees them. */
	if (pgroup_init(&d) || cluster_init(&d)) {
		loop_fini(&d);
		cluster_fini(&d);
		store_mem_fini(&d);
		store_spill_close(&d);
		timeline_fini(&d);
		return 1;
	}
	if (dashboard_init(&d)) {
		loop_fini(&d);
		cluster_fini(&d);
		store_mem_fini(&d);
		store_spill_close(&d);
		timeline_fini(&d);
		return 1;
	}
	kmod_init(&d);
	bpf_plug(&d); /* before the first worker, so that every worker is accounted */
	if (d.cfg.pidfile[0] && (r = write_pidfile(d.cfg.pidfile, d.cfg.socket)))
		log_warn("pidfile %s: %s", d.cfg.pidfile,
			 r == -EBUSY ? "names another running krayd; left alone" : strerror(-r));
	for (int i = 0; i < d.cfg.prestart; i++)
		if (worker_spawn(&d))
			break;
	log_info("serving %s: node %08x, %d CPU slots, code path '%s'", d.cfg.socket, d.node,
		 d.cfg.num_cpus, d.cfg.code_path);
	/* Under systemd (Type=notify): serving now. */
	sd_notifyf(0, "READY=1\nSTATUS=serving %s, %d CPU slots", d.cfg.socket, d.cfg.num_cpus);
	if (d.cfg.ready_fd >= 0) {
		if (write(d.cfg.ready_fd, "R", 1) != 1)
			log_warn("ready fd: %s", strerror(errno));
		close(d.cfg.ready_fd);
	}

	r = loop_run(&d);

	sd_notify(0, "STOPPING=1");
	d.stopping = true;
	worker_stop_all(&d);
	bpf_unplug(&d);
	loop_fini(&d);
	metrics_fini(&d);
	appmetric_fini(&d);
	dashboard_fini(&d); /* after loop_fini(): its connections are gone */
	cluster_fini(&d);
	pgroup_fini(&d);
	sched_fini(&d);
	actor_fini(&d);
	store_fini(&d);
	get_fini(&d); /* after the objects' waiters are gone */
	job_fini(&d); /* after every task */
	timeline_fini(&d);
	kmod_fini(&d);
	store_mem_fini(&d);
	store_spill_close(&d);
	if (d.cfg.pidfile[0])
		unlink(d.cfg.pidfile);
	if (d.cfg.remove_dir[0] && rmdir(d.cfg.remove_dir))
		log_warn("rmdir %s: %s", d.cfg.remove_dir, strerror(errno));
	log_info("stopped");
	return r ? 1 : 0;
}
