/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's settings: defaults, then the config file (--config), then flags, each later one
 * overriding.  The file is "key = value" lines with '#' comments; keys are the long flag
 * names.  An unknown key or a bad value is an error that names the line.
 */
#ifndef KRAYD_CONFIG_H
#define KRAYD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "../../include/uapi/kray_wire.h"

struct config {
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int num_cpus; /* CPU slots; 0 = online CPUs */
	int max_workers; /* including workers blocked in get */
	uint64_t store_size; /* object store capacity, bytes */
	uint32_t inline_max; /* largest object carried inline */
	char code_path[KRAY_PATH_MAX + 1]; /* default code search path for jobs */
	char warm_code_path[KRAY_PATH_MAX + 1]; /* loaded by each worker as it starts */
	char worker[PATH_MAX]; /* worker host binary */
	char worker_user[64]; /* run workers as this user; empty: krayd's own */
	uid_t worker_uid; /* worker_user resolved (when set) */
	gid_t worker_gid;
	char pidfile[PATH_MAX];
	char remove_dir[PATH_MAX]; /* a private directory removed at exit */
	char spill_dir[PATH_MAX]; /* where full-store objects go; default <socket>.spill */
	bool spill_thread; /* spill and restore on store_io.c's thread (default), not the loop */
	uint64_t pool_size; /* pre-faulted memory kept ready for new objects */
	uint64_t pool_max; /* what the pool grows to when creates find it empty (pool.c) */
	bool pool_reuse; /* freed objects' memory back to the pool (store_reuse.c) */
	int hugepages; /* large objects in hugetlb memfds when huge pages are reserved */
	int thp; /* 1 (auto): large objects in shmem transparent huge pages where allowed */
	int lazy_restore; /* 1 (auto): a get of a spilled object maps it at once and its pages
			   * come from disk on first touch (store_lazy.c); 0: eager restore */
	int lazy_minor; /* 1 (auto): lazy gets of objects from other nodes map the object's own
			 * memfd in MINOR mode (store_lazy_net.c); 0: a second memfd (MISSING) */
	uint64_t lazy_first_read; /* bytes around a fault filled first (0: its whole chunk) */
	int kmod; /* 1: publish large objects in /dev/kray when the module is loaded */
	char metrics[256]; /* HOST:PORT of the Prometheus endpoint; empty: off */
	char dashboard[256]; /* HOST:PORT of the dashboard (daemon/dashboard/); empty: off */
	int timeline_events; /* records in the task timeline ring (timeline.c); 0: off */
	char resources[256]; /* custom resources of this node: "NAME:QTY,..." */
	char config[PATH_MAX]; /* the config file, re-read on SIGHUP */
	bool log_level_flag; /* --log-level was given: a reload keeps it */
	int log_level;
	int ready_fd; /* written one byte when serving; -1 none */
	int prestart; /* workers started at boot */
	bool bpf; /* scheduler metrics in BPF (daemon/bpf.h); default on, KRAY_BPF=off */
	int oversub_wait; /* percent of run-queue wait that stops new workers; 0: never */
	bool actor_adopt; /* an actor takes an idle pool worker; default on, KRAY_ACTOR_ADOPT */
	bool fastpath; /* the BPF fast path for synchronous calls; default on, KRAY_FASTPATH */
	bool fastpath_actors; /* ... and for plain actors' calls; default on, KRAY_FASTPATH_ACTORS */
	bool fastpath_ring; /* its shared-memory ring; default on, KRAY_FAST_RING */
	bool bpf_wait; /* load the metrics programs before serving (default: in the background) */
	/* The cluster */
	bool head; /* run the GCS */
	bool head_standby; /* head = standby: wait for the active head's lease (gcs_redis.c) */
	char address[256]; /* HOST:PORT of the head to join; empty: none */
	char node_listen[256]; /* HOST:PORT for node links; empty: single node */
	char token_file[PATH_MAX];
	char token[256];
	int heartbeat_ms, node_timeout_ms;
	int direct_pull; /* 1: tasks' nodes pull large arguments from any holder (pull.c) */
	char gcs_log[PATH_MAX]; /* the head's GCS log; default <socket>.gcs */
	char gcs_storage[256]; /* "", "log" or redis://HOST:PORT[/DB] (cluster/gcs_redis.c) */
	char gcs_redis_password_file[PATH_MAX];
	char gcs_redis_namespace[64]; /* key prefix; default "kray" */
	/* Limits on clients (docs/limits.md) */
	int max_clients; /* connections at once; 0: derived from RLIMIT_NOFILE */
	int hello_timeout_ms, frame_timeout_ms;
	uint64_t client_output_limit; /* unread replies of one client; 0: none */
	uint64_t client_buffers_max; /* all connections' buffers; 0: none */
	int max_unproven_links; /* node links before the token's proof */
	int dead_actors_kept; /* dead actors' records with no handle, for listings */
};

/* Fills cfg from defaults, the config file and flags.  Returns 0, 1 for --help (usage
 * printed), or -EINVAL with a message on stderr. */
int config_load(struct config *cfg, int argc, char **argv);

/* SIGHUP: re-reads the config file and applies what can change while running (the log
 * level).  Returns 0 or -EINVAL (message on stderr; nothing changed). */
int config_reload(struct config *cfg);

#endif
