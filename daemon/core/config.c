// SPDX-License-Identifier: Apache-2.0
/*
 * Settings from defaults, a config file and flags (see config.h).  One table lists every
 * setting once; flags and file keys both go through set_key(), so they cannot drift.
 */
#include "core/config.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/rundir.h"
#include "../../common/wire.h"
#include "core/log.h"

enum kind { K_STR, K_INT, K_SIZE, K_LEVEL, K_BOOL, K_AUTO };

struct key {
	const char *name;
	enum kind kind;
	size_t off, size;
	long min, max; /* K_BOOL: max 1 lets the flag stand alone (--head) */
	const char *help;
};

#define INT(n, f, lo, hi, h)                                                 \
	{                                                                    \
		n, K_INT, offsetof(struct config, f), sizeof(int), lo, hi, h \
	}

static const struct key keys[] = {
	{ "socket", K_STR, offsetof(struct config, socket), sizeof(((struct config *)0)->socket), 0,
	  0, "unix socket path for local clients" },
	INT("num-cpus", num_cpus, 0, 4096, "CPU slots for tasks (0: online CPUs)"),
	INT("max-workers", max_workers, 1, 65536, "most worker processes, blocked ones included"),
	INT("prestart", prestart, -1, 4096, "workers started at boot (-1: num-cpus)"),
	{ "store-size", K_SIZE, offsetof(struct config, store_size), 8, 0, 0,
	  "object store capacity (bytes, K/M/G suffix)" },
	{ "spill-dir", K_STR, offsetof(struct config, spill_dir), PATH_MAX, 0, 0,
	  "directory for spilled objects (default: <socket>.spill)" },
	{ "spill-thread", K_BOOL, offsetof(struct config, spill_thread), sizeof(bool), 0, 0,
	  "on/off: spill and restore files on a thread of their own, off the event loop "
	  "(default on)" },
	{ "pool-size", K_SIZE, offsetof(struct config, pool_size), 8, 0, 0,
	  "pre-faulted memory kept ready for new objects (0: none)" },
	{ "pool-max", K_SIZE, offsetof(struct config, pool_max), 8, 0, 0,
	  "how far the pool grows when creates (of objects up to pool-size) find it empty, "
	  "back to pool-size after 30 s without a create (at most store-size)" },
	{ "pool-reuse", K_BOOL, offsetof(struct config, pool_reuse), sizeof(bool), 0, 0,
	  "on/off: the memory of a freed object (1M or more) goes back to the pool as it is, "
	  "once nobody maps it, for the next object (not zeroed again; readers get a "
	  "read-only descriptor rather than a write-sealed memfd; default on)" },
	INT("hugepages", hugepages, 0, 1,
	    "1: objects of 1M or more in huge pages (needs vm.nr_hugepages)"),
	{ "thp", K_AUTO, offsetof(struct config, thp), sizeof(int), 0, 0,
	  "auto/off: large objects in shmem transparent huge pages (auto, as root, sets "
	  "shmem_enabled from never to advise)" },
	{ "lazy-restore", K_AUTO, offsetof(struct config, lazy_restore), sizeof(int), 0, 0,
	  "auto/off: a get of a spilled object maps it at once and its pages are read from "
	  "disk on first touch (userfaultfd); off: read back whole before the reply" },
	{ "lazy-minor", K_AUTO, offsetof(struct config, lazy_minor), sizeof(int), 0, 0,
	  "auto/off: a lazy get of an object from another node maps the object's own memfd, "
	  "its faults resolved with UFFDIO_CONTINUE (shmem minor faults); off: a second memfd "
	  "filled with UFFDIO_COPY" },
	{ "lazy-first-read", K_SIZE, offsetof(struct config, lazy_first_read), 8, 0, 0,
	  "lazy restore: bytes around a fault read and handed to the reader first, before the "
	  "rest of its 2M chunk (default 64K; 0: the whole chunk first)" },
	INT("kmod", kmod, 0, 1, "1: publish large objects in /dev/kray when it is loaded"),
	{ "resources", K_STR, offsetof(struct config, resources), 256, 0, 0,
	  "custom resources of this node, e.g. GPU:2,ssd:1" },
	{ "metrics", K_STR, offsetof(struct config, metrics), 256, 0, 0,
	  "HOST:PORT for the Prometheus endpoint (default off)" },
	{ "dashboard", K_STR, offsetof(struct config, dashboard), 256, 0, 0,
	  "HOST:PORT for the web dashboard and its JSON API (default off; beyond loopback "
	  "it needs the cluster token)" },
	INT("timeline-events", timeline_events, 0, 1048576,
	    "tasks kept in the timeline ring for `kray timeline` (0: off)"),
	{ "inline-max", K_SIZE, offsetof(struct config, inline_max), 4, 0, 0,
	  "largest object carried inline (bytes)" },
	{ "code-path", K_STR, offsetof(struct config, code_path),
	  sizeof(((struct config *)0)->code_path), 0, 0, "default code search path (dirs, .so)" },
	{ "warm-code-path", K_STR, offsetof(struct config, warm_code_path),
	  sizeof(((struct config *)0)->warm_code_path), 0, 0,
	  "code each worker loads as it starts, running its kray_warm() (the Python package's "
	  "libkray_python.so: Python is ready before the first task)" },
	{ "worker", K_STR, offsetof(struct config, worker), PATH_MAX, 0, 0, "worker host binary" },
	{ "worker-user", K_STR, offsetof(struct config, worker_user), 64, 0, 0,
	  "run workers (and so every task and actor) as this user, without capabilities; "
	  "krayd must run as root (default: krayd's own user)" },
	{ "pidfile", K_STR, offsetof(struct config, pidfile), PATH_MAX, 0, 0,
	  "write the pid here" },
	{ "remove-dir", K_STR, offsetof(struct config, remove_dir), PATH_MAX, 0, 0,
	  "remove this (private) directory at exit" },
	{ "log-level", K_LEVEL, offsetof(struct config, log_level), sizeof(int), 0, 0,
	  "error, warn, info or debug" },
	INT("ready-fd", ready_fd, -1, 65535, "write one byte to this fd when serving"),
	{ "bpf", K_BOOL, offsetof(struct config, bpf), sizeof(bool), 0, 0,
	  "on/off: scheduler metrics in BPF maps (default on; env KRAY_BPF)" },
	{ "bpf-wait", K_BOOL, offsetof(struct config, bpf_wait), sizeof(bool), 0, 0,
	  "on/off: load the scheduler-metrics programs before serving (default off: krayd "
	  "serves at once and attaches them about 0.1 s later, when libbpf has parsed the "
	  "kernel's BTF; env KRAY_BPF_WAIT)" },
	INT("oversubscribed-wait", oversub_wait, 0, 100,
	    "run-queue wait % of busy workers that stops new workers (0: never)"),
	{ "actor-adopt", K_BOOL, offsetof(struct config, actor_adopt), sizeof(bool), 0, 0,
	  "on/off: an actor is hosted by an idle pool worker (refilled behind it) rather than "
	  "a process started for it (default on; env KRAY_ACTOR_ADOPT)" },
	{ "fastpath", K_BOOL, offsetof(struct config, fastpath), sizeof(bool), 0, 0,
	  "on/off: synchronous calls steered to idle workers in BPF (needs bpf; default on; "
	  "env KRAY_FASTPATH)" },
	{ "fastpath-actors", K_BOOL, offsetof(struct config, fastpath_actors), sizeof(bool), 0, 0,
	  "on/off: synchronous calls to plain actors steered to the actor's worker in BPF too "
	  "(needs fastpath; default on; env KRAY_FASTPATH_ACTORS)" },
	{ "fastpath-ring", K_BOOL, offsetof(struct config, fastpath_ring), sizeof(bool), 0, 0,
	  "on/off: drivers of krayd's user call idle workers through shared memory and futexes "
	  "instead of the fast path's sockets (needs fastpath; default on; env KRAY_FAST_RING)" },
	/* The cluster (docs/cluster.md). */
	{ "head", K_BOOL, offsetof(struct config, head), sizeof(bool), 0, 1,
	  "run the cluster's GCS here (--head, or head = 1); standby: take over from the "
	  "active head when it dies (needs gcs-storage = redis://...)" },
	{ "address", K_STR, offsetof(struct config, address), 256, 0, 0,
	  "HOST:PORT of the head to join (with standby heads: HOST:PORT,HOST:PORT,...)" },
	{ "node-listen", K_STR, offsetof(struct config, node_listen), 256, 0, 0,
	  "HOST:PORT for links from other nodes (default 127.0.0.1:6380 on the head, "
	  "127.0.0.1:0 elsewhere)" },
	{ "token-file", K_STR, offsetof(struct config, token_file), PATH_MAX, 0, 0,
	  "the cluster token (the head writes one if missing; default <socket>.token)" },
	{ "token", K_STR, offsetof(struct config, token), 256, 0, 0,
	  "the cluster token itself (instead of token-file)" },
	{ "gcs-log", K_STR, offsetof(struct config, gcs_log), PATH_MAX, 0, 0,
	  "the head's GCS log (named actors, KV); default <socket>.gcs" },
	{ "gcs-storage", K_STR, offsetof(struct config, gcs_storage), 256, 0, 0,
	  "where the head keeps the GCS: log (the gcs-log file, default) or "
	  "redis://HOST:PORT[/DB]" },
	{ "gcs-redis-password-file", K_STR, offsetof(struct config, gcs_redis_password_file),
	  PATH_MAX, 0, 0, "file holding the password (AUTH) of gcs-storage's Redis" },
	{ "gcs-redis-namespace", K_STR, offsetof(struct config, gcs_redis_namespace), 64, 0, 0,
	  "prefix of the Redis keys of this cluster's GCS (default kray)" },
	INT("heartbeat-ms", heartbeat_ms, 10, 600000, "how often a node reports to the head"),
	INT("node-timeout-ms", node_timeout_ms, 20, 3600000, "a node silent this long is dead"),
	INT("direct-pull", direct_pull, 0, 1,
	    "1: a task's node pulls a large argument from any node holding a copy; 0: its "
	    "owner sends it"),
	/* Limits on clients (docs/limits.md, "Connections and memory"). */
	INT("max-clients", max_clients, 0, 1048576,
	    "most connections at once (0: the fd limit less a reserve); more get an ERROR"),
	INT("hello-timeout-ms", hello_timeout_ms, 10, 3600000,
	    "a client that has not said HELLO this long after connecting is closed"),
	INT("frame-timeout-ms", frame_timeout_ms, 10, 3600000,
	    "a frame begun and not finished this long closes its connection"),
	{ "client-output-limit", K_SIZE, offsetof(struct config, client_output_limit), 8, 0, 0,
	  "replies queued to one client (not read) past which it is disconnected (0: none)" },
	{ "client-buffers-max", K_SIZE, offsetof(struct config, client_buffers_max), 8, 0, 0,
	  "all connections' buffers together; past it the greediest client is closed "
	  "(0: none)" },
	INT("max-unproven-links", max_unproven_links, 1, 65536,
	    "node links at once that have not proven the cluster token; more are closed"),
	INT("dead-actors-kept", dead_actors_kept, 0, 1000000,
	    "records of dead actors no handle refers to, kept for listings; older ones go"),
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int parse_size(const char *s, uint64_t *ret)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9') /* strtoull() takes " 1", "+1" and "-1" (ULLONG_MAX) */
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'G':
	case 'g':
		shift = 30;
		end++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		end++;
		break;
	case 'K':
	case 'k':
		shift = 10;
		end++;
		break;
	}
	if (*end || v > UINT64_MAX >> shift)
		return -EINVAL;
	*ret = (uint64_t)v << shift;
	return 0;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const char *a = keys[i].name, *b = name;

		/* "num_cpus" and "num-cpus" are the same key. */
		while (*a && (*a == *b || (*a == '-' && *b == '_')))
			a++, b++;
		if (!*a && !*b)
			return &keys[i];
	}
	return NULL;
}

/* Sets one key.  Returns 0, or -EINVAL with *ret_why set. */
static int set_key(struct config *cfg, const struct key *k, const char *val, const char **ret_why)
{
	char *dst = (char *)cfg + k->off;
	char *end;
	long v;
	uint64_t sz;
	int lvl;

	switch (k->kind) {
	case K_STR:
		if (strlen(val) >= k->size) {
			*ret_why = "value too long";
			return -EINVAL;
		}
		strcpy(dst, val);
		return 0;
	case K_INT:
		errno = 0;
		v = strtol(val, &end, 10);
		if (errno || end == val || *end || v < k->min || v > k->max) {
			*ret_why = "not an integer in range";
			return -EINVAL;
		}
		*(int *)dst = (int)v;
		return 0;
	case K_SIZE:
		if (parse_size(val, &sz) || (k->size == 4 && sz > UINT32_MAX)) {
			*ret_why = "not a size (bytes, with optional K/M/G)";
			return -EINVAL;
		}
		if (k->size == 4)
			*(uint32_t *)dst = (uint32_t)sz;
		else
			*(uint64_t *)dst = sz;
		return 0;
	case K_BOOL:
		/* head = standby: a head that waits for the active one's lease. */
		if (k->off == offsetof(struct config, head))
			cfg->head_standby = !strcmp(val, "standby");
		if (cfg->head_standby && k->off == offsetof(struct config, head)) {
			cfg->head = true;
			return 0;
		}
		if (!strcmp(val, "on") || !strcmp(val, "1") || !strcmp(val, "true") ||
		    !strcmp(val, "yes")) {
			*(bool *)dst = true;
		} else if (!strcmp(val, "off") || !strcmp(val, "0") || !strcmp(val, "false") ||
			   !strcmp(val, "no")) {
			*(bool *)dst = false;
		} else {
			*ret_why = "not on or off";
			return -EINVAL;
		}
		return 0;
	case K_AUTO:
		if (!strcmp(val, "auto") || !strcmp(val, "on") || !strcmp(val, "1")) {
			*(int *)dst = 1;
		} else if (!strcmp(val, "off") || !strcmp(val, "0")) {
			*(int *)dst = 0;
		} else {
			*ret_why = "not auto or off";
			return -EINVAL;
		}
		return 0;
	case K_LEVEL:
		lvl = log_parse_level(val);
		if (lvl < 0) {
			*ret_why = "not one of error, warn, info, debug";
			return -EINVAL;
		}
		*(int *)dst = lvl;
		return 0;
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

static int load_file(struct config *cfg, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[8192];
	int lineno = 0, r = 0;

	if (!f) {
		fprintf(stderr, "krayd: %s: %s\n", path, strerror(errno));
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		bool whole = strchr(line, '\n') || feof(f); /* before trim() drops the '\n' */
		char *s = trim(line), *eq, *key, *val;
		const struct key *k;
		const char *why;

		lineno++;
		if (!whole) {
			fprintf(stderr, "krayd: %s:%d: line longer than %zu bytes\n", path, lineno,
				sizeof(line) - 2);
			r = -EINVAL;
			break;
		}
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "krayd: %s:%d: expected 'key = value'\n", path, lineno);
			r = -EINVAL;
			break;
		}
		*eq = 0;
		key = trim(s);
		val = trim(eq + 1);
		k = find_key(key);
		/* (ready-fd is a flag only, however spelt: ready_fd too) */
		if (!k || !strcmp(k->name, "ready-fd")) {
			fprintf(stderr, "krayd: %s:%d: unknown key '%s'\n", path, lineno, key);
			r = -EINVAL;
			break;
		}
		if (set_key(cfg, k, val, &why)) {
			fprintf(stderr, "krayd: %s:%d: %s: %s: '%s'\n", path, lineno, key, why,
				val);
			r = -EINVAL;
			break;
		}
	}
	fclose(f);
	return r;
}

static void usage(void)
{
	printf("usage: krayd [--config FILE] [--KEY VALUE]...\n\nsettings:\n");
	for (size_t i = 0; i < NKEYS; i++)
		printf("  --%-14s %s\n", keys[i].name, keys[i].help);
}

static void set_defaults(struct config *cfg)
{
	*cfg = (struct config){ 0 };
	/* $XDG_RUNTIME_DIR/kray-UID, for root /run/kray, else /tmp/kray-UID (issue 21). */
	rundir_default_socket(cfg->socket, sizeof(cfg->socket));
	cfg->store_size = 1ull << 30;
	cfg->inline_max = 64 << 10;
	cfg->pool_size = 256ull << 20;
	cfg->pool_max = 1ull << 30;
	cfg->pool_reuse = true;
	cfg->log_level = LOG_INFO;
	cfg->ready_fd = -1;
	cfg->prestart = -1;
	cfg->max_workers = 0;
	/* KRAY_BPF=off switches BPF off for every krayd a process starts (the tests run the
	 * task suite both ways with it); the file and flags still win. */
	const char *bpf = getenv("KRAY_BPF");

	cfg->bpf = !(bpf && (!strcmp(bpf, "off") || !strcmp(bpf, "0")));
	cfg->oversub_wait = 50;
	/* KRAY_FASTPATH=off: the same for the fast path alone (bpf = off also turns it off). */
	const char *fast = getenv("KRAY_FASTPATH");

	cfg->fastpath = !(fast && (!strcmp(fast, "off") || !strcmp(fast, "0")));
	const char *fast_actors = getenv("KRAY_FASTPATH_ACTORS");
	/* KRAY_ACTOR_ADOPT=off: every actor in a process started for it (docs/actors.md). */
	const char *adopt = getenv("KRAY_ACTOR_ADOPT");

	cfg->actor_adopt = !(adopt && (!strcmp(adopt, "off") || !strcmp(adopt, "0")));

	cfg->fastpath_actors =
		!(fast_actors && (!strcmp(fast_actors, "off") || !strcmp(fast_actors, "0")));
	/* KRAY_FAST_RING=off: the fast path's sockets instead of its shared-memory ring
	 * (docs/fastpath.md). */
	const char *ring = getenv("KRAY_FAST_RING");

	cfg->fastpath_ring = !(ring && (!strcmp(ring, "off") || !strcmp(ring, "0")));
	/* KRAY_BPF_WAIT=on: every krayd a process starts has its metrics from the start (the
	 * C suites, which look at them). */
	const char *bpf_wait = getenv("KRAY_BPF_WAIT");

	cfg->bpf_wait = bpf_wait && (!strcmp(bpf_wait, "on") || !strcmp(bpf_wait, "1"));
	cfg->heartbeat_ms = 500;
	cfg->direct_pull = 1;
	cfg->node_timeout_ms = 5000;
	cfg->hello_timeout_ms = 10000;
	cfg->frame_timeout_ms = 10000;
	cfg->timeline_events = 10000;
	cfg->client_output_limit = 512ull << 20; /* two frames of KRAY_FRAME_MAX */
	cfg->client_buffers_max = 1ull << 30;
	cfg->max_unproven_links = 64;
	cfg->dead_actors_kept = 1000;
	cfg->kmod = 1;
	cfg->thp = 1;
	cfg->lazy_restore = 1;
	cfg->lazy_first_read = 64 << 10;
	cfg->lazy_minor = 1;
	snprintf(cfg->gcs_storage, sizeof(cfg->gcs_storage), "log");
	snprintf(cfg->gcs_redis_namespace, sizeof(cfg->gcs_redis_namespace), "kray");
	cfg->spill_thread = true;
}

int config_reload(struct config *cfg)
{
	struct config fresh;

	if (!cfg->config[0])
		return 0;
	set_defaults(&fresh);
	if (load_file(&fresh, cfg->config))
		return -EINVAL;
	if (!cfg->log_level_flag) /* flags win over the file, also on reload */
		cfg->log_level = fresh.log_level;
	return 0;
}

int config_load(struct config *cfg, int argc, char **argv)
{
	struct option opts[NKEYS + 3];
	const char *why;
	int c, idx;

	set_defaults(cfg);
	for (size_t i = 0; i < NKEYS; i++)
		opts[i] =
			(struct option){ keys[i].name,
					 keys[i].kind == K_BOOL && keys[i].max ? optional_argument :
										 required_argument,
					 NULL, 0 };
	opts[NKEYS] = (struct option){ "config", required_argument, NULL, 'c' };
	opts[NKEYS + 1] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[NKEYS + 2] = (struct option){ 0 };

	/* The file first, so that flags override it whatever their order. */
	for (int i = 1; i < argc; i++) {
		const char *path = NULL;

		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			path = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			path = argv[i] + 9;
		if (path && load_file(cfg, path))
			return -EINVAL;
		if (path)
			snprintf(cfg->config, sizeof(cfg->config), "%s", path);
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (c == 'h') {
			usage();
			return 1;
		}
		if (c == 'c')
			continue;
		if (c != 0) {
			fprintf(stderr, "krayd: try --help\n");
			return -EINVAL;
		}
		if (keys[idx].kind == K_LEVEL)
			cfg->log_level_flag = true;
		if (set_key(cfg, &keys[idx], optarg ? optarg : "1", &why)) {
			fprintf(stderr, "krayd: --%s: %s: '%s'\n", keys[idx].name, why, optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "krayd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->num_cpus) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->num_cpus = n > 0 ? (int)n : 1;
	}
	if (wire_parse_resources(cfg->resources, strlen(cfg->resources), NULL) < 0) {
		fprintf(stderr, "krayd: resources: not NAME:QTY,...: '%s'\n", cfg->resources);
		return -EINVAL;
	}
	if (!cfg->spill_dir[0])
		snprintf(cfg->spill_dir, sizeof(cfg->spill_dir), "%s.spill", cfg->socket);
	if (cfg->inline_max > (1u << 20)) {
		fprintf(stderr, "krayd: inline-max is at most 1M\n");
		return -EINVAL;
	}
	if (!cfg->node_listen[0] && (cfg->head || cfg->address[0]))
		snprintf(cfg->node_listen, sizeof(cfg->node_listen), "%s",
			 cfg->head ? "127.0.0.1:6380" : "127.0.0.1:0");
	if (!cfg->gcs_log[0])
		snprintf(cfg->gcs_log, sizeof(cfg->gcs_log), "%s.gcs", cfg->socket);
	if (strcmp(cfg->gcs_storage, "log") && strncmp(cfg->gcs_storage, "redis://", 8)) {
		fprintf(stderr, "krayd: gcs-storage: not log or redis://HOST:PORT[/DB]: '%s'\n",
			cfg->gcs_storage);
		return -EINVAL;
	}
	if (cfg->head_standby && strncmp(cfg->gcs_storage, "redis://", 8)) {
		fprintf(stderr, "krayd: head = standby needs gcs-storage = redis://...: the "
				"standby reads the active head's lease and tables there\n");
		return -EINVAL;
	}
	if (!cfg->gcs_redis_namespace[0] || strpbrk(cfg->gcs_redis_namespace, " \t\r\n")) {
		fprintf(stderr, "krayd: gcs-redis-namespace: empty or with blanks\n");
		return -EINVAL;
	}
	if (!cfg->token_file[0])
		snprintf(cfg->token_file, sizeof(cfg->token_file), "%s.token", cfg->socket);
	if (cfg->node_timeout_ms <= cfg->heartbeat_ms) {
		fprintf(stderr, "krayd: node-timeout-ms must be longer than heartbeat-ms\n");
		return -EINVAL;
	}
	if (cfg->worker_user[0]) {
		struct passwd *pw = getpwnam(cfg->worker_user);

		if (!pw) {
			fprintf(stderr, "krayd: worker-user: no such user '%s'\n",
				cfg->worker_user);
			return -EINVAL;
		}
		if (geteuid() != 0 && pw->pw_uid != geteuid()) {
			fprintf(stderr,
				"krayd: worker-user %s needs krayd to run as root (it runs "
				"as uid %u)\n",
				cfg->worker_user, (unsigned)geteuid());
			return -EINVAL;
		}
		cfg->worker_uid = pw->pw_uid;
		cfg->worker_gid = pw->pw_gid;
	}
	if (!cfg->max_workers)
		cfg->max_workers = cfg->num_cpus * 16 < 64 ? 64 : cfg->num_cpus * 16;
	if (cfg->prestart < 0 || cfg->prestart > cfg->num_cpus)
		cfg->prestart = cfg->num_cpus;
	return 0;
}
