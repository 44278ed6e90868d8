/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * kray's wire protocol: the one definition of every frame that travels between krayd,
 * drivers and workers (and, later, between nodes).  Shared by user space, BPF programs and
 * the kernel module, so it uses fixed-width types only, explicit padding, and pins every
 * size with _Static_assert.
 *
 * A frame is a 24-byte header followed by `len` bytes of body.  Every variable part of a
 * body (names, values) is padded to 8 bytes so that the next fixed struct is aligned.
 * Integers are little-endian (kray runs on x86-64 and arm64 only).
 */
#ifndef KRAY_UAPI_WIRE_H
#define KRAY_UAPI_WIRE_H

#ifndef __VMLINUX_H__ /* BPF programs get the types from vmlinux.h */
#include <linux/types.h>
#endif

#define KRAY_WIRE_MAGIC 0x5952414bu /* "KRAY" */
#define KRAY_WIRE_VERSION 1

/* Limits enforced by every decoder.  A frame past them is rejected, never truncated. */
#define KRAY_FRAME_MAX (256u << 20) /* body bytes in one frame */
#define KRAY_NAME_MAX 255 /* function name bytes */
#define KRAY_PATH_MAX 4096 /* code search path bytes */
#define KRAY_ARGS_MAX 1024 /* arguments of one task */
#define KRAY_RETURNS_MAX 256 /* num_returns of one task */
#define KRAY_REFS_MAX 65536 /* refs in one get, wait or release */
#define KRAY_OBJECT_MAX (1ull << 40) /* bytes of one object */
#define KRAY_ERRMSG_MAX (64u << 10) /* error text: longer keeps its head and tail */

/*
 * An object id names the task that made the object and the process that owns it:
 * (node, owner, seq) is the task id, index the return slot.  kray_put objects use
 * index KRAY_OID_PUT.  Task ids are allocated by the owner without a round trip, so a
 * submit needs no reply.
 */
struct kray_oid {
	__u32 node; /* node of the owner */
	__u32 owner; /* client id of the owning process on that node */
	__u32 seq; /* task (or put) sequence number in the owner */
	__u32 index; /* return slot, or KRAY_OID_PUT */
};
_Static_assert(sizeof(struct kray_oid) == 16, "kray_oid is 16 bytes");
#define KRAY_OID_PUT 0xffffffffu

struct kray_frame_hdr {
	__u32 magic; /* KRAY_WIRE_MAGIC */
	__u16 version; /* KRAY_WIRE_VERSION */
	__u16 type; /* enum kray_msg_type */
	__u32 len; /* body bytes that follow, <= KRAY_FRAME_MAX */
	__u32 flags; /* per-type flags, 0 unless stated */
	__u64 req; /* request id, echoed in the reply */
};
_Static_assert(sizeof(struct kray_frame_hdr) == 24, "frame header is 24 bytes");

enum kray_msg_type {
	KRAY_MSG_HELLO = 1, /* C->D  kray_msg_hello + code path */
	KRAY_MSG_HELLO_OK = 2, /* D->C  kray_msg_hello_ok */
	KRAY_MSG_SUBMIT = 3, /* C->D  kray_msg_submit + name + values */
	KRAY_MSG_GET = 4, /* C->D  kray_msg_get + oids */
	KRAY_MSG_GET_REPLY = 5, /* D->C  kray_msg_get_reply + values */
	KRAY_MSG_PUT = 6, /* C->D  kray_msg_put + value */
	KRAY_MSG_RELEASE = 7, /* C->D  kray_msg_refs + oids */
	KRAY_MSG_STATUS = 8, /* C->D  empty */
	KRAY_MSG_STATUS_REPLY = 9, /* D->C  kray_wire_stats */
	KRAY_MSG_ERROR = 10, /* D->C  kray_msg_error + text; the connection then closes */
	KRAY_MSG_EXEC = 11, /* D->W  kray_msg_exec + name + values */
	KRAY_MSG_RESULT = 12, /* W->D  kray_msg_result + values */
	KRAY_MSG_REJECT = 13, /* W->D  kray_msg_reject: task handed back unstarted */
	KRAY_MSG_JOB = 14, /* D->W  kray_msg_job + code path */
	KRAY_MSG_CREATE = 15, /* C->D  kray_msg_create: a memfd for a large object */
	KRAY_MSG_CREATE_REPLY = 16, /* D->C  kray_msg_create_reply, + 1 fd on success */
	KRAY_MSG_SEAL = 17, /* C->D  kray_msg_seal: the object is written; publish it */
	KRAY_MSG_UNPIN = 18, /* C->D  kray_msg_refs: views of these objects were dropped */
	KRAY_MSG_WAIT = 19, /* C->D  kray_msg_wait + oids */
	KRAY_MSG_WAIT_REPLY = 20, /* D->C  kray_msg_wait_reply + one byte per oid (1 = ready) */
	KRAY_MSG_ACTOR_CREATE = 21, /* C->D  kray_msg_actor_create + class, name, ns + args */
	KRAY_MSG_GET_ACTOR = 22, /* C->D  kray_msg_get_actor + name + ns */
	KRAY_MSG_KILL = 23, /* C->D  kray_msg_kill */
	KRAY_MSG_ACTOR_REPLY = 24, /* D->C  kray_msg_actor_reply (to the three above) */
	KRAY_MSG_ACTOR_STOP = 25, /* D->W  empty: run the destructor and exit */
	KRAY_MSG_LIST_ACTORS = 26, /* C->D  empty */
	KRAY_MSG_TEXT_REPLY = 27, /* D->C  kray_msg_error layout: 0 + text (LIST_ACTORS) */
	KRAY_MSG_TIMELINE = 28, /* C->D  empty; TEXT_REPLY with Chrome trace JSON */
	KRAY_MSG_LIST_OBJECTS = 29, /* C->D  empty; TEXT_REPLY with the objects as JSON */
	KRAY_MSG_GUARDS = 30, /* C->D  empty */
	KRAY_MSG_GUARDS_REPLY = 31, /* D->C  kray_wire_guards */
	/* 32-39: the Python wrapper's range (issue 6), and placement groups (issue 16) */
	KRAY_MSG_CANCEL = 32, /* C->D  kray_msg_cancel; no reply.  D->W: drop that queued call */
	KRAY_MSG_HOLD = 33, /* C->D  kray_msg_refs + oids: keep these borrowed refs; no reply */
	KRAY_MSG_YIELD = 34, /* W->D  kray_msg_yield + 1 value: an item of a streaming call */
	KRAY_MSG_PG = 35, /* C->D  kray_msg_pg + name + bundles; TEXT_REPLY (placement groups) */
	KRAY_MSG_LAZY_MAP = 36, /* C->D  kray_msg_lazy_map: where a KRAY_WV_LAZY object is
				 * mapped and registered with the asker's userfaultfd; no reply */
	KRAY_MSG_JOB_END = 37, /* D->W  kray_msg_job (path_len 0): nothing of that job is left,
				* forget what JOB told */
	KRAY_MSG_LIST_WORKERS = 38, /* C->D  empty; TEXT_REPLY with the workers and drivers as
				     * JSON (kray.util.state.list_workers) */
	KRAY_MSG_METRIC = 39, /* C->D  kray_msg_metric + name, help, tags, bounds, buckets: an
			       * application metric's update (kray.util.metrics); no reply,
			       * unless req != 0: then TEXT_REPLY (code 0 or -errno + why) */
	/* 40-47: the BPF fast path for synchronous calls (docs/fastpath.md).  FAST_EXEC and
	 * FAST_RESULT travel only on fast connections, where krayd's BPF program steers them
	 * and krayd never reads; a driver that gets its own FAST_EXEC back there was bounced
	 * (no idle worker) and submits on the daemon path. */
	KRAY_MSG_FAST_EXEC = 40, /* driver -> worker  kray_msg_fast + kray_msg_exec + ... */
	KRAY_MSG_FAST_RESULT = 41, /* worker -> driver  kray_msg_fast + kray_msg_result + ... */
	KRAY_MSG_FAST_OPEN = 42, /* C->D  empty: give me a fast connection */
	KRAY_MSG_FAST_OPEN_REPLY = 43, /* D->C  kray_msg_fast_open_reply, + 1 fd on success */
	KRAY_MSG_FAST_DONE = 44, /* C->D  kray_msg_result + 1 value: a fast task's result */
	KRAY_MSG_FAST_LOST = 45, /* D->C  kray_msg_fast_lost + text: its worker died */
	KRAY_MSG_FAST_STORE = 46, /* W->D  kray_msg_result + values: a result too large for a
				   * fast frame, kept by krayd for the driver */
	KRAY_MSG_FAST_COUNT = 47, /* W->D  kray_msg_fast_count + name: fast calls it ran */
	KRAY_MSG_FAST_TYPE_MIN = 40,
	KRAY_MSG_FAST_TYPE_MAX = 47,
	/* Between nodes (issue 7), numbers 48-79: only on authenticated TCP links, except
	 * LIST_NODES, which a local client sends.  See docs/cluster.md. */
	KRAY_MSG_NODE_CHALLENGE = 48, /* N->N kray_msg_node_challenge: the acceptor's nonce */
	KRAY_MSG_NODE_AUTH = 49, /* N->N kray_msg_node_auth: the connector's proof */
	KRAY_MSG_NODE_AUTH_OK = 50, /* N->N kray_msg_node_auth: the acceptor's proof */
	KRAY_MSG_NODE_REGISTER = 51, /* N->head kray_msg_node + resources */
	KRAY_MSG_NODE_HEARTBEAT = 52, /* N->head kray_msg_node + resources */
	KRAY_MSG_NODE_VIEW = 53, /* head->N kray_msg_refs layout: n, then n node entries */
	KRAY_MSG_LIST_NODES = 54, /* C->D empty; answered with TEXT_REPLY */
	KRAY_MSG_FWD_TASK = 55, /* N->N kray_msg_fwd_task + name, path, resources, args */
	KRAY_MSG_OBJ_PUSH = 56, /* N->N kray_msg_obj_push + inline payload or first chunk */
	KRAY_MSG_OBJ_CHUNK = 57, /* N->N kray_msg_obj_chunk + data */
	KRAY_MSG_FWD_DONE = 58, /* N->N kray_msg_fwd_done: the task's returns were pushed */
	KRAY_MSG_PEER_RELEASE = 59, /* N->N kray_msg_refs + oids: drop the link's holds */
	KRAY_MSG_FWD_ACTOR = 60, /* N->N kray_msg_fwd_actor + path + an ACTOR_CREATE body */
	KRAY_MSG_FWD_KILL = 61, /* N->N kray_msg_kill */
	KRAY_MSG_GCS_ACTOR = 62, /* N->head kray_msg_gcs_actor + name + ns: a named actor */
	KRAY_MSG_GCS_LOOKUP = 63, /* N->head kray_msg_gcs_lookup + name + ns */
	KRAY_MSG_GCS_LOOKUP_REPLY = 64, /* head->N kray_msg_gcs_lookup_reply */
	KRAY_MSG_ACTOR_ATTACH = 65, /* N->N kray_msg_actor_attach: hold a handle for me */
	KRAY_MSG_ACTOR_ATTACH_REPLY = 66, /* N->N kray_msg_actor_attach (status set) */
	KRAY_MSG_KV = 67, /* C->D, N->head kray_msg_kv + key + value: put, get or delete */
	KRAY_MSG_KV_REPLY = 68, /* D->C, head->N kray_msg_kv + value (get) */
	KRAY_MSG_OBJ_HELD = 69, /* N->owner kray_msg_obj_held: I keep this return; pull it */
	KRAY_MSG_OBJ_PULL = 70, /* owner->N kray_msg_obj_held: push it to me now */
	KRAY_MSG_GCS_JOB = 71, /* N->head kray_msg_gcs_job + code path: a driver came or went */
	KRAY_MSG_FWD_CANCEL = 72, /* N->N kray_msg_cancel: cancel this forwarded task there */
	KRAY_MSG_FWD_JOB_END = 73, /* N->N kray_msg_fwd_job_end: the job's driver exited */
	KRAY_MSG_PG_RESERVE = 74, /* home->N kray_msg_pg_node + bundles: reserve those in mask */
	KRAY_MSG_PG_RESERVED = 75, /* N->home kray_msg_pg_node (status) + why it refused */
	KRAY_MSG_PG_RELEASE = 76, /* home->N kray_msg_pg_node: give the group's bundles back */
	KRAY_MSG_NODE_QUERY = 77, /* head->N kray_msg_node_query: send me your what */
	KRAY_MSG_NODE_QUERY_REPLY = 78, /* N->head kray_msg_node_query + len bytes of JSON */
	KRAY_MSG_OBJ_WHERE = 79, /* N->N kray_msg_obj_where: where an object lives, pull it */
	KRAY_MSG_NODE_TYPE_MIN = 48,
	KRAY_MSG_NODE_TYPE_MAX = 79,
	/* 80-87: /dev/kray (kmod/, docs/kmod.md) */
	KRAY_MSG_KMOD_PIN = 80, /* C->D  kray_msg_refs + oids: mapped through /dev/kray, pin */
	/* 88-95: the cluster again (48-79 are full): actors the head restarts */
	KRAY_MSG_ACTOR_RECORD = 88, /* N->head kray_msg_actor_record (+ FWD_ACTOR body: ADD) */
	KRAY_MSG_ACTOR_RESTART = 89, /* head->N kray_msg_actor_record + FWD_ACTOR body */
	KRAY_MSG_ACTOR_LOCATE = 90, /* N->head kray_msg_actor_locate: its node died, where now? */
	KRAY_MSG_ACTOR_LOCATED = 91, /* head->N kray_msg_actor_locate: there (or dead) */
	KRAY_MSG_OBJ_RANGE = 92, /* N->N kray_msg_obj_range: send these chunks of it first */
	KRAY_MSG_NODE2_TYPE_MIN = 88,
	KRAY_MSG_NODE2_TYPE_MAX = 92,
	KRAY_MSG_TYPE_MAX = 92, /* the highest type; the gaps below it are not types */
};

/* Whether t is a message type: numbers in the gaps between the ranges are not. */
static inline int kray_msg_type_known(unsigned int t)
{
	return (t >= KRAY_MSG_HELLO && t <= KRAY_MSG_GUARDS_REPLY) || t == KRAY_MSG_CANCEL ||
	       t == KRAY_MSG_HOLD || t == KRAY_MSG_YIELD || t == KRAY_MSG_PG ||
	       t == KRAY_MSG_LAZY_MAP || t == KRAY_MSG_JOB_END || t == KRAY_MSG_LIST_WORKERS ||
	       t == KRAY_MSG_METRIC ||
	       (t >= KRAY_MSG_FAST_TYPE_MIN && t <= KRAY_MSG_FAST_TYPE_MAX) ||
	       (t >= KRAY_MSG_NODE_TYPE_MIN && t <= KRAY_MSG_NODE_TYPE_MAX) ||
	       t == KRAY_MSG_KMOD_PIN ||
	       (t >= KRAY_MSG_NODE2_TYPE_MIN && t <= KRAY_MSG_NODE2_TYPE_MAX);
}

/*
 * File descriptors travel with frames by SCM_RIGHTS, krayd -> client only.  A frame that
 * carries fds says how many in the low bits of its flags; they arrive no later than the
 * frame's last byte and are taken in order, one per KRAY_WT_FD value.
 */
#define KRAY_FRAME_NFDS(flags) ((flags)&0xffffu)
#define KRAY_FDS_PER_MSG 253 /* SCM_MAX_FD */

enum kray_role {
	KRAY_ROLE_DRIVER = 1,
	KRAY_ROLE_WORKER = 2,
};

struct kray_msg_hello {
	__u32 role; /* enum kray_role */
	__u32 pid;
	__u32 worker_id; /* workers: the id krayd gave at spawn */
	__u32 path_len; /* code search path bytes that follow (drivers) */
};
_Static_assert(sizeof(struct kray_msg_hello) == 16, "hello is 16 bytes");

struct kray_msg_hello_ok {
	__u32 node;
	__u32 client; /* the connection's owner id */
	__u32 job; /* the driver's job id (workers: 0) */
	__u32 inline_max; /* largest object carried inline */
};
_Static_assert(sizeof(struct kray_msg_hello_ok) == 16, "hello_ok is 16 bytes");

/* Value types; the public enum kray_type uses the same numbers. */
enum kray_wire_type {
	KRAY_WT_NIL = 0,
	KRAY_WT_INT64 = 1,
	KRAY_WT_F64 = 2,
	KRAY_WT_BYTES = 3,
	KRAY_WT_REF = 4, /* payload: struct kray_oid */
	KRAY_WT_ERROR = 5, /* err: enum kray_wire_err, payload: message text */
	KRAY_WT_FD = 6, /* a large object: payload = its oid, scalar = size; its sealed
			 * memfd is the frame's next fd (err = KRAY_WV_LAZY: not sealed, and
			 * filled on first touch: docs/objects.md, "Lazy restore") */
	KRAY_WT_OBJECT = 7, /* RESULT only: payload = oid of a sealed object the worker
			     * created; it becomes this return slot (moved, not copied) */
	KRAY_WT_ACTOR = 8, /* an actor handle: payload = the actor's id */
	KRAY_WT_MAX = 8,
};

/* A KRAY_WT_FD value's err byte: its memfd is restored from disk as it is touched.  The
 * receiver maps it (never populated), registers the mapping with the userfaultfd it named in
 * its GET (MISSING mode) and sends KRAY_MSG_LAZY_MAP before it touches a byte. */
#define KRAY_WV_LAZY 1

enum kray_wire_err {
	KRAY_WE_NONE = 0,
	KRAY_WE_TASK = 1, /* the function reported an error */
	KRAY_WE_WORKER_DIED = 2, /* the worker died, retries exhausted */
	KRAY_WE_UNKNOWN_FUNCTION = 3,
	KRAY_WE_BAD_ARGS = 4, /* wrong argument count or type */
	KRAY_WE_OBJECT_LOST = 5, /* an argument object does not exist */
	KRAY_WE_INTERNAL = 6,
	KRAY_WE_STORE_FULL = 7, /* the object store is full of pinned objects */
	KRAY_WE_ACTOR_DIED = 8, /* the actor is dead (killed, crashed, its creator exited) */
	KRAY_WE_CANCELLED = 9, /* the task was cancelled (kray_cancel) */
	KRAY_WE_TIMED_OUT = 10, /* the task ran past its timeout */
	KRAY_WE_STREAM_END = 11, /* a streaming call's item after its last: the end */
	KRAY_WE_UNSCHEDULABLE = 12, /* its scheduling strategy names a node that is gone or
				     * lacks its resources (wire_place) */
	KRAY_WE_MAX = 12,
};

/*
 * A value: this header, then `len` payload bytes padded to 8, then `nrefs` object ids the
 * value contains (nested refs: only in PUT, RESULT, GET_REPLY and EXEC values).
 */
struct kray_wire_value {
	__u8 type; /* enum kray_wire_type */
	__u8 err; /* enum kray_wire_err, for KRAY_WT_ERROR */
	__u16 nrefs; /* contained object ids after the payload */
	__u32 len; /* payload bytes (BYTES, REF, ERROR) */
	__u64 scalar; /* INT64 or F64 bits */
};
_Static_assert(sizeof(struct kray_wire_value) == 16, "value header is 16 bytes");

struct kray_msg_submit {
	__u32 seq; /* task id = (node, sender's client id, seq) */
	__u32 job; /* job the task belongs to */
	__u16 num_returns;
	__u16 nargs;
	__s16 max_retries; /* -1: retry forever */
	__u8 name_len; /* function (or method) name bytes that follow, padded to 8 */
	__u8 res_len; /* custom resources the task needs, "NAME:QTY,...", after the name,
		       * padded to 8: a node that has them runs it (issue 7) */
	__u32 timeout_ms; /* a task (not a call) that runs longer fails, its worker is
			   * replaced; 0: no limit */
	__u32 flags; /* KRAY_SUBMIT_* */
	struct kray_oid actor; /* a method call on this actor; all zero: a task */
};
/* A streaming generator (Ray's num_returns="streaming"): num_returns is 1, the call's
 * completion; its items are the objects (task, 1), (task, 2), ... that the worker sends
 * with YIELD while it runs.  krayd keeps one pending item object ahead, held by the
 * submitter: the owner waits on it like on any ref.  When the call ends that object is
 * sealed with KRAY_WE_STREAM_END (or the call's error), and no other is made. */
#define KRAY_SUBMIT_STREAMING 1u
/* A driver's resubmission of a fast call whose worker died (docs/fastpath.md): krayd
 * counts it in tasks_retried, as a retry of its own. */
#define KRAY_SUBMIT_RETRY 2u
_Static_assert(sizeof(struct kray_msg_submit) == 40, "submit is 40 bytes");

struct kray_msg_get {
	__s64 timeout_ms; /* < 0: wait forever */
	__u32 n; /* oids that follow */
	__u32 uffd; /* the asker's userfaultfd number + 1 (0: none; krayd older than issue 14
		     * ignores it): spilled objects may come back lazily (KRAY_WV_LAZY) */
};
_Static_assert(sizeof(struct kray_msg_get) == 16, "get is 16 bytes");

struct kray_msg_get_reply {
	__s32 status; /* 0, -ETIMEDOUT, or -ECANCELED: the task asking was cancelled (no
		       * values follow) */
	__u32 n; /* values that follow, one per requested oid */
};
_Static_assert(sizeof(struct kray_msg_get_reply) == 8, "get_reply is 8 bytes");

struct kray_msg_lazy_map {
	struct kray_oid id;
	__u64 addr; /* the mapping's first byte in the sender */
	__u64 len; /* bytes registered (the size rounded up to whole pages) */
};
_Static_assert(sizeof(struct kray_msg_lazy_map) == 32, "lazy_map is 32 bytes");

struct kray_msg_put {
	struct kray_oid oid; /* owner must be the sender */
};

struct kray_msg_refs {
	__u32 n; /* oids that follow */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_refs) == 8, "refs is 8 bytes");

struct kray_msg_wait_reply {
	__u32 n; /* ready flags that follow, one byte per oid (padded) */
	__s32 status; /* 0, or -ECANCELED: the task asking was cancelled (flags all 0) */
};
_Static_assert(sizeof(struct kray_msg_wait_reply) == 8, "wait_reply is 8 bytes");

struct kray_msg_error {
	__s32 code; /* negative errno */
	__u32 len; /* message bytes that follow */
};
_Static_assert(sizeof(struct kray_msg_error) == 8, "error is 8 bytes");

struct kray_msg_exec {
	struct kray_oid task; /* index 0 */
	__u32 job;
	__u16 num_returns;
	__u16 nargs;
	__u8 name_len;
	__u8 ctor; /* 1: construct the actor of class `name`; the worker is its host */
	__u16 max_concurrency; /* ctor: methods that may run at once (threads) */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_exec) == 32, "exec is 32 bytes");

/* Actor ids are object ids with this index: (node, creator, seq) names the creation. */
#define KRAY_OID_ACTOR 0xfffffffeu

struct kray_msg_actor_create {
	__u32 seq; /* actor id = (node, sender, seq, KRAY_OID_ACTOR) */
	__u32 job;
	__s16 max_restarts; /* -1: forever */
	__s16 max_task_retries; /* calls in flight when it died: -1 forever */
	__u16 max_concurrency; /* >= 1 */
	__u16 nargs; /* constructor arguments that follow the names */
	__u32 num_cpus_milli; /* CPU slots it holds while alive, in thousandths */
	__u8 detached; /* outlives its creator: ends only by kill */
	__u8 class_len; /* then class, name, namespace and resources, each padded to 8 */
	__u8 name_len; /* 0: unnamed */
	__u8 ns_len;
	__u8 res_len; /* custom resources it holds while alive: "NAME:QTY,..." */
	__u8 pad[7];
};
_Static_assert(sizeof(struct kray_msg_actor_create) == 32, "actor_create is 32 bytes");

#define KRAY_RESOURCES_MAX 16 /* custom resources of a node or an actor */

struct kray_msg_get_actor {
	__u8 name_len; /* then name and namespace bytes, each padded to 8 */
	__u8 ns_len;
	__u8 flags; /* KRAY_GET_ACTOR_*, else 0 */
	__u8 pad[5];
};
/* The actor the asking worker hosts (name_len and ns_len 0): its handle, for
 * get_runtime_context().current_actor; -ENOENT from anyone else. */
#define KRAY_GET_ACTOR_SELF 1u
_Static_assert(sizeof(struct kray_msg_get_actor) == 8, "get_actor is 8 bytes");

struct kray_msg_kill {
	struct kray_oid actor;
	__u32 no_restart;
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_kill) == 24, "kill is 24 bytes");

/* Placement groups (docs/util.md): create (name, strategy, bundles "CPU:1,GPU:1;CPU:2"),
 * remove (id) or list.  Answered with TEXT_REPLY: its code is 0 or -errno, its text the new
 * group's id (create), the reason (an error) or the table as JSON (list). */
enum kray_pg_op { KRAY_PG_CREATE = 1, KRAY_PG_REMOVE = 2, KRAY_PG_TABLE = 3 };
enum kray_pg_strategy {
	KRAY_PG_PACK = 0,
	KRAY_PG_SPREAD = 1,
	KRAY_PG_STRICT_PACK = 2,
	KRAY_PG_STRICT_SPREAD = 3,
};
#define KRAY_PG_ID_LEN 12 /* hex characters of a group's id */
#define KRAY_PG_BUNDLES_MAX 64

struct kray_msg_pg {
	__u8 op; /* enum kray_pg_op */
	__u8 strategy; /* enum kray_pg_strategy */
	__u8 detached; /* lives on after its creator's job */
	__u8 name_len; /* then the name, padded to 8 */
	__u32 bundles_len; /* then the bundles' text, padded to 8 */
	char id[16]; /* remove: the group's id (KRAY_PG_ID_LEN characters, NUL-padded) */
};
_Static_assert(sizeof(struct kray_msg_pg) == 24, "pg is 24 bytes");

/* A placement group's bundles on another node (daemon/cluster/pgplace.c). */
struct kray_msg_pg_node {
	char id[16]; /* the group's id (KRAY_PG_ID_LEN characters, NUL-padded) */
	__u64 mask; /* the bundles for that node: bit i for bundle i */
	__s32 status; /* RESERVED: 0 or -errno */
	__u32 len; /* RESERVE: every bundle's text; RESERVED: the reason; padded to 8 */
};
_Static_assert(sizeof(struct kray_msg_pg_node) == 32, "pg_node is 32 bytes");

struct kray_msg_actor_reply {
	__s32 status; /* 0 or -errno */
	__u32 len; /* message bytes after the id, padded */
	struct kray_oid actor;
};
_Static_assert(sizeof(struct kray_msg_actor_reply) == 24, "actor_reply is 24 bytes");

/* Cancel the task that makes oid (any of its return objects; the sender must hold it). */
struct kray_msg_cancel {
	struct kray_oid oid;
	__u32 flags; /* KRAY_CANCEL_* */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_cancel) == 24, "cancel is 24 bytes");
#define KRAY_CANCEL_FORCE 1u /* a running task: kill its worker */
#define KRAY_CANCEL_RECURSIVE 2u /* also the tasks it submitted */
/* Without FORCE, krayd queues this signal to the worker running the task, with the task's
 * (owner << 32 | seq) as its value: a worker that can interrupt the task (the Python
 * host) does so if it still runs that task; kray-worker ignores it otherwise. */
#define KRAY_CANCEL_SIGNAL 12 /* SIGUSR2 on Linux */

struct kray_msg_result {
	struct kray_oid task;
	__u64 exec_ns; /* time the function ran */
	__u32 n; /* values: num_returns, or 1 of type ERROR */
	__u32 flags; /* KRAY_RESULT_* */
};
/* The values are the exception the function raised (a language's own error value, which
 * krayd does not open): the task counts as failed in the timeline and the state API. */
#define KRAY_RESULT_RAISED 1u
_Static_assert(sizeof(struct kray_msg_result) == 32, "result is 32 bytes");

/* YIELD: item index (0, 1, ...) of the streaming call task, which this worker runs.  A
 * retried call yields its items again: krayd keeps the first copy of each. */
struct kray_msg_yield {
	struct kray_oid task;
	__u32 index;
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_yield) == 24, "yield is 24 bytes");

struct kray_msg_reject {
	struct kray_oid task;
};

struct kray_msg_create {
	struct kray_oid oid; /* a put id of the sender */
	__u64 size; /* > inline_max */
};
_Static_assert(sizeof(struct kray_msg_create) == 24, "create is 24 bytes");

struct kray_msg_create_reply {
	__s32 status; /* 0 (one fd follows) or -errno, e.g. -ENOSPC */
	__u32 flags; /* KRAY_CREATE_*; 0 from a krayd older than them */
};
#define KRAY_CREATE_HUGE 1u /* map the memfd with MADV_HUGEPAGE (krayd's thp is on) */
/* Every page of the memfd exists (pre-faulted by the pool, or an earlier object's):
 * pwrite(2) fills it without allocating, faster than through a new mapping. */
#define KRAY_CREATE_FILLED 2u
_Static_assert(sizeof(struct kray_msg_create_reply) == 8, "create_reply is 8 bytes");

struct kray_msg_seal {
	struct kray_oid oid;
};

struct kray_msg_wait {
	__s64 timeout_ms; /* < 0: wait forever */
	__u32 n; /* oids that follow */
	__u32 num_ready; /* answer once this many are ready */
};
_Static_assert(sizeof(struct kray_msg_wait) == 16, "wait is 16 bytes");

struct kray_msg_job {
	__u32 job;
	__u32 path_len; /* code search path bytes that follow */
};
_Static_assert(sizeof(struct kray_msg_job) == 8, "job is 8 bytes");

/*
 * The fast path (docs/fastpath.md).  FAST_EXEC and FAST_RESULT start with this prefix: the
 * sender's slot and the slot's secret token, which krayd handed out with the connection
 * and the BPF program checks (and zeroes before the frame leaves).  A fast frame is at most
 * KRAY_FAST_FRAME_MAX bytes, header included, so that it is one skb.
 */
struct kray_msg_fast {
	__u32 slot; /* FAST_EXEC: the driver's slot; FAST_RESULT: the worker's */
	__u32 flags; /* KRAY_FAST_* */
	__u64 token;
};
_Static_assert(sizeof(struct kray_msg_fast) == 16, "fast prefix is 16 bytes");
#define KRAY_FAST_FRAME_MAX 16384u
#define KRAY_FAST_STORED 1u /* FAST_RESULT: krayd keeps the result (FAST_STORE): get it */
#define KRAY_FAST_NOT_RUN 2u /* FAST_RESULT: not run here (unknown job): use the daemon path */
/* FAST_EXEC: a method call on an actor; the frame ends with a kray_msg_fast_actor (after
 * the arguments), and the program steers it only to that actor's worker. */
#define KRAY_FAST_ACTOR 4u
/* FAST_EXEC, set by the program on a bounce: the actor has no fast worker (not a plain
 * synchronous actor, or not on this node): the driver stops trying for a while. */
#define KRAY_FAST_NO_ACTOR 8u

/* The trailer of an actor call's FAST_EXEC (docs/fastpath.md, "Actor calls"). */
struct kray_msg_fast_actor {
	struct kray_oid actor; /* the actor called (index KRAY_OID_ACTOR) */
	__u32 after_seq; /* the caller's previous call to this actor (task seq), or 0: the
			  * worker runs this one only once it ran that one, else NOT_RUN */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_fast_actor) == 24, "fast_actor is 24 bytes");

struct kray_msg_fast_open_reply {
	__s32 status; /* 0 (one fd follows: the fast socket; three with fastpath-ring: then
		       * the ring's memfd and the fast_workers map, kray_ring.h), -EOPNOTSUPP
		       * (fast path off), -ENOSPC (no slot), -EPERM (the ring is on and this
		       * client may not use it) */
	__u32 slot;
	__u64 token;
};
_Static_assert(sizeof(struct kray_msg_fast_open_reply) == 16, "fast_open_reply is 16 bytes");

/* A worker's account of the fast calls of one function it ran since its last FAST_COUNT,
 * so that krayd counts them as its own tasks (tasks_submitted/finished/failed, the
 * function's run time, the worker's tasks_done) without being on their path.  The
 * function's name follows, padded.  failed + stored <= runs. */
struct kray_msg_fast_count {
	__u64 run_ns; /* the calls' run times, summed */
	__u32 runs; /* calls the worker ran (each answered) */
	__u32 failed; /* of them: answered with an error in the fast frame */
	__u32 stored; /* of them: answered through krayd (FAST_STORE), which counted the end */
	__u8 name_len; /* 1..KRAY_NAME_MAX */
	__u8 pad;
	__u16 nrec; /* kray_fast_run records after the name (at most runs): krayd's timeline */
};
_Static_assert(sizeof(struct kray_msg_fast_count) == 24, "fast_count is 24 bytes");

/* One fast call, for krayd's timeline (and so the state API's task list). */
struct kray_fast_run {
	struct kray_oid task;
	__s64 end_ns; /* CLOCK_MONOTONIC when its answer went */
	__u64 run_ns;
	__u32 job;
	__u32 failed; /* 1: answered with an error, or the function raised; else 0 */
};
_Static_assert(sizeof(struct kray_fast_run) == 40, "fast_run is 40 bytes");

struct kray_msg_fast_lost {
	struct kray_oid task; /* the fast task whose worker died */
	__u32 len; /* how it died: text that follows, padded */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_fast_lost) == 24, "fast_lost is 24 bytes");

struct kray_wire_stats {
	__u64 node;
	__u64 drivers; /* driver connections */
	__u64 workers;
	__u64 workers_busy;
	__u64 workers_blocked;
	__u64 tasks_submitted;
	__u64 tasks_finished;
	__u64 tasks_failed;
	__u64 tasks_retried;
	__u64 tasks_queued;
	__u64 tasks_waiting; /* waiting for argument objects */
	__u64 objects;
	__u64 object_bytes;
	__u64 workers_started;
	__u64 workers_died;
	__u64 frames_rejected;
	/* the object store */
	__u64 store_capacity;
	__u64 store_bytes; /* bytes of memfd objects in memory */
	__u64 objects_pinned; /* objects some process has mapped */
	__u64 objects_spilled; /* now on disk */
	__u64 bytes_spilled; /* now on disk */
	__u64 spilled_total; /* bytes ever written to disk */
	__u64 restored_total; /* bytes ever read back */
	__u64 evicted_total; /* objects freed because nothing referenced them */
	__u64 pool_bytes; /* pre-faulted memory waiting in the pool */
	__u64 actors_alive;
	__u64 actors_pending; /* waiting for CPU slots or constructor arguments */
	__u64 tasks_handed_back; /* pipelined tasks a worker blocked in a get gave back */
	__u64 num_cpus; /* CPU slots of this node */
	__u64 fast_tasks; /* steered by the BPF fast path to a worker (krayd never saw them) */
	__u64 fast_bounced; /* fast frames sent back to their driver: no idle worker */
	__u32 store_huge; /* KRAY_STORE_*: which huge pages new large objects get */
	__u32 loop_stall_max_us; /* the loop's longest turn (µs) since krayd started */
};
/* What krayd's guards against greedy and runaway clients did (docs/limits.md): the same
 * layout as struct kray_guard_stats in kray/kray.h. */
struct kray_wire_guards {
	__u64 jobs; /* job records now (a driver's, or a job with tasks here) */
	__u64 actors_dead; /* dead actors' records kept now */
	__u64 connections; /* open now */
	__u64 buffer_bytes; /* held by every connection's buffers now */
	__u64 clients_refused; /* past max-clients */
	__u64 closed_slow; /* past hello-timeout-ms or frame-timeout-ms */
	__u64 closed_output; /* past client-output-limit */
	__u64 closed_buffers; /* past client-buffers-max */
	__u64 closed_nomem; /* for want of memory */
	__u64 accept_pauses; /* at the descriptor limit */
	__u64 links_refused; /* node links refused before they proved the token */
	__u64 nest_stalled; /* 1: every pool worker is blocked in a get while tasks wait */
	__u64 workers_over; /* pool workers started past max-workers for nesting, now */
	__u64 nest_failed; /* tasks failed for nesting past the raised limit */
	__u64 tasks_timed_out; /* tasks ended by their timeout */
	__u64 jobs_ended; /* jobs ended with their driver */
};
_Static_assert(sizeof(struct kray_wire_guards) == 128, "guards is 128 bytes");

#ifndef KRAY_STORE_THP /* the same in kray/kray.h */
#define KRAY_STORE_THP 1u /* shmem transparent huge pages (thp = auto, shmem_enabled allows) */
#define KRAY_STORE_HUGETLB 2u /* hugetlb memfds (hugepages = 1) */
#endif
_Static_assert(sizeof(struct kray_wire_stats) == 256, "stats is 256 bytes");

/* ---- between nodes (issue 7) ---------------------------------------------------------- */

#define KRAY_NONCE_LEN 32
#define KRAY_MAC_LEN 32 /* HMAC-SHA256 */
#define KRAY_AUTH_BODY_MAX 128 /* longest body read from a link that has not proven itself */

struct kray_msg_node_challenge {
	__u8 nonce[KRAY_NONCE_LEN];
};
_Static_assert(sizeof(struct kray_msg_node_challenge) == 32, "challenge is 32 bytes");

/*
 * The proof of the cluster token: mac = HMAC-SHA256(token, role || nonce_acceptor ||
 * nonce_connector || node), role "C" from the connector, "A" from the acceptor, so that
 * neither proof can be replayed as the other.  The token itself never travels.
 */
struct kray_msg_node_auth {
	__u8 nonce[KRAY_NONCE_LEN]; /* the connector's nonce (AUTH); zero in AUTH_OK */
	__u8 mac[KRAY_MAC_LEN];
	__u32 node; /* the sender's node id */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_node_auth) == 72, "node_auth is 72 bytes");

/* A node's entry: its address for node links, its capacity and its load. */
/* NODE_VIEW's frame flags: the view holds only the entries that changed since the last
 * view the head sent on this link (the first view on a link is whole). */
#define KRAY_VIEW_DELTA 1u

struct kray_msg_node {
	__u32 node;
	__u32 addr; /* IPv4, network byte order */
	__u16 port; /* host byte order */
	__u8 alive; /* in NODE_VIEW: 0 once the head declared it dead */
	__u8 res_len; /* resources "NAME:QTY,..." that follow, padded to 8 */
	__u32 num_cpus;
	__u32 workers;
	__u32 workers_busy;
	__u64 tasks_queued;
	__u64 store_bytes;
	__u64 tasks_finished;
};
_Static_assert(sizeof(struct kray_msg_node) == 48, "node is 48 bytes");

/* NODE_QUERY and its reply: a node's view for the head's dashboard (docs/dashboard.md). */
#define KRAY_QUERY_SUMMARY 1u /* its workers, tasks and actors (the dashboard's JSON) */
#define KRAY_QUERY_TIMELINE 2u /* its timeline (Chrome trace JSON, docs/timeline.md) */
struct kray_msg_node_query {
	__u64 token; /* the asker's, returned in the reply */
	__u32 what; /* KRAY_QUERY_* */
	__s32 status; /* reply: 0, or -errno (and no text) */
	__u32 len; /* reply: the JSON's bytes that follow (padded to 8) */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_node_query) == 24, "node query is 24 bytes");

/* A task sent to the node that runs it.  Its id keeps the owner's node: the returns are
 * pushed back to that node (OBJ_PUSH) and FWD_DONE ends it. */
struct kray_msg_fwd_task {
	struct kray_oid task; /* index 0 */
	struct kray_oid actor; /* a method call on this actor (on the receiving node); zero:
				* a task */
	__u32 job; /* the job on the owner's node */
	__u16 num_returns;
	__u16 nargs;
	__s16 max_retries;
	__u8 name_len;
	__u8 res_len;
	__u32 path_len; /* the job's code search path */
	__u32 timeout_ms; /* as the submit's */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_fwd_task) == 56, "fwd_task is 56 bytes");

/* An object's value sent to another node.  Inline values (size == len) come whole; a
 * large object (type KRAY_WT_FD) comes in OBJ_CHUNK frames of KRAY_CHUNK bytes (the last one
 * shorter), each at a multiple of KRAY_CHUNK: in order, except those the receiver asked for
 * first (OBJ_RANGE), and each once.  The ids of the refs the
 * value contains follow the payload (nrefs of them): the sender's link holds each until
 * the receiver releases it (PEER_RELEASE), so the receiver may pull them later.  An actor
 * handle (type KRAY_WT_ACTOR) is held the same way; its scalar names the actor's node.
 * The frame's request id says why it comes (enum kray_push_why). */
struct kray_msg_obj_push {
	struct kray_oid oid;
	__u8 type; /* enum kray_wire_type of the value (FD: large) */
	__u8 err;
	__u16 nrefs; /* contained refs, after the payload */
	__u32 len; /* payload bytes in this frame */
	__u64 scalar;
	__u64 size; /* whole payload */
};
_Static_assert(sizeof(struct kray_msg_obj_push) == 40, "obj_push is 40 bytes");
#define KRAY_CHUNK (4u << 20)

struct kray_msg_obj_chunk {
	struct kray_oid oid;
	__u64 offset;
	__u32 len;
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_obj_chunk) == 32, "obj_chunk is 32 bytes");

/*
 * OBJ_RANGE: the receiver of a large object that is streaming to it asks the sender for
 * [offset, offset + len) before the rest (a reader of it faulted there: docs/objects.md
 * "Lazy gets of objects on another node").  The sender sends the KRAY_CHUNK-aligned chunks
 * that cover the range next (each OBJ_CHUNK says its offset), then goes on with the chunks
 * not sent yet, in order; every chunk still comes once.  A request for an object that is not
 * streaming over the link (any more) is ignored; one past the object's end closes the link.
 * len is at least 1; offset + len is at most KRAY_OBJECT_MAX (wire_dec_obj_range()).
 */
struct kray_msg_obj_range {
	struct kray_oid oid;
	__u64 offset;
	__u64 len;
};
_Static_assert(sizeof(struct kray_msg_obj_range) == 32, "obj_range is 32 bytes");

enum kray_push_why {
	KRAY_PUSH_ARG = 0, /* an argument or a return: the link keeps the copy for the task */
	KRAY_PUSH_ANSWER = 1, /* the answer to an OBJ_PULL of the receiver */
};

struct kray_msg_fwd_done {
	struct kray_oid task;
};

/* A driver's job ended on the sender's node: its tasks forwarded to the receiver end too. */
struct kray_msg_fwd_job_end {
	__u32 job; /* the sender's job id */
	__u32 pad;
};

/* A large return kept by the node that made it, until its owner pulls it (on the first
 * get or use) or releases it (PEER_RELEASE). */
struct kray_msg_obj_held {
	struct kray_oid oid;
	__u64 size;
};
_Static_assert(sizeof(struct kray_msg_obj_held) == 24, "obj_held is 24 bytes");

/*
 * Objects between any two nodes (daemon/cluster/pull.c, docs/cluster.md).  An owner that
 * forwards a task taking a large object it owns tells the task's node where a copy lives
 * (PULL: holder is the owner or a node that has a copy for a task of its own), and that
 * node asks the holder for it (FETCH, answered by an OBJ_PUSH with KRAY_PUSH_ANSWER, an
 * error value when the holder does not have it).  A node whose copy is complete tells the
 * owner (HAVE), which then hands it out to later pullers.
 */
enum kray_where_kind {
	KRAY_WHERE_PULL = 0, /* owner -> N: the next task's argument; pull it from holder */
	KRAY_WHERE_FETCH = 1, /* N -> holder: push me this object */
	KRAY_WHERE_HAVE = 2, /* N -> owner: my copy is complete */
};

struct kray_msg_obj_where {
	struct kray_oid oid;
	__u64 size;
	__u32 holder; /* PULL: the node to pull from */
	__u32 kind; /* enum kray_where_kind */
	/* PULL: the number the owner gave the receiver's copy (seq) and the holder's (from);
	 * FETCH: the holder's, as the owner named it.  A holder serves a copy it is still
	 * receiving only for the number it was given: pulls wait only on older copies, so
	 * they never wait on each other in a circle. */
	__u32 seq, from;
};
_Static_assert(sizeof(struct kray_msg_obj_where) == 40, "obj_where is 40 bytes");

/* An actor created on another node: its id keeps the creator's node and client. */
struct kray_msg_fwd_actor {
	struct kray_oid actor;
	__u32 job; /* the creator's job on its node */
	__u32 path_len; /* its code search path, padded, then the ACTOR_CREATE body */
};
_Static_assert(sizeof(struct kray_msg_fwd_actor) == 24, "fwd_actor is 24 bytes");

/* An actor the head may restart when its node dies (docs/cluster.md, "Actor fault
 * tolerance across nodes").  ACTOR_RECORD ADD: the actor's node tells the head it runs
 * it, with its creation record (a FWD_ACTOR body) after this; GONE: it ended for good
 * there.  ACTOR_RESTART: the head has host create it again (restarts: this one included),
 * the same FWD_ACTOR body after this. */
enum kray_actor_rec_op { KRAY_AREC_ADD = 1, KRAY_AREC_GONE = 2, KRAY_AREC_RESTART = 3 };
struct kray_msg_actor_record {
	struct kray_oid actor;
	__u32 host;
	__u16 restarts;
	__u8 op; /* enum kray_actor_rec_op */
	__u8 pad;
};
_Static_assert(sizeof(struct kray_msg_actor_record) == 24, "actor_record is 24 bytes");

/* ACTOR_LOCATE: a node that holds a handle lost the actor with node; ACTOR_LOCATED: the
 * head's answer, node where it lives now (status KRAY_ALOC_AT) or why it does not. */
enum kray_actor_loc {
	KRAY_ALOC_AT = 0,
	KRAY_ALOC_NONE = 1, /* the head has no record: not restartable */
	KRAY_ALOC_SPENT = 2, /* max_restarts spent */
	KRAY_ALOC_NOWHERE = 3, /* no live node has its resources */
	KRAY_ALOC_UNREACHABLE = 4, /* its node is alive, but the asker lost its link */
};
struct kray_msg_actor_locate {
	struct kray_oid actor;
	__u32 node;
	__u16 restarts;
	__u8 status; /* LOCATED: enum kray_actor_loc */
	__u8 pad;
	__s16 max_task_retries; /* LOCATED: its creator's, for the calls that were in flight */
	__u16 pad2;
	__u32 pad3;
};
_Static_assert(sizeof(struct kray_msg_actor_locate) == 32, "actor_locate is 32 bytes");

/* A named actor in the head's table: where it lives.  alive 0 removes it. */
struct kray_msg_gcs_actor {
	struct kray_oid actor;
	__u32 host; /* the node whose krayd runs it */
	__u8 alive;
	__u8 detached;
	__u8 name_len; /* then name and namespace, each padded to 8 */
	__u8 ns_len;
};
_Static_assert(sizeof(struct kray_msg_gcs_actor) == 24, "gcs_actor is 24 bytes");

/* A job (a driver's connection) in the head's table. */
struct kray_msg_gcs_job {
	__u32 node; /* the node the driver is connected to */
	__u32 job; /* its job id there */
	__u32 pid;
	__u32 path_len; /* code search path that follows, padded */
	__u64 start_ms; /* CLOCK_REALTIME, milliseconds */
	__u64 end_ms; /* 0 while it runs */
};
_Static_assert(sizeof(struct kray_msg_gcs_job) == 32, "gcs_job is 32 bytes");

struct kray_msg_gcs_lookup {
	__u64 token; /* echoed */
	__u8 name_len;
	__u8 ns_len;
	__u8 claim; /* 1: take the name for actor if no live actor has it (the reply's
		     * status is -ENOENT then: it was free, and is now the claimant's) */
	__u8 pad[5];
	struct kray_oid actor; /* claim: the id the claimant's new actor has */
};
_Static_assert(sizeof(struct kray_msg_gcs_lookup) == 32, "gcs_lookup is 32 bytes");

struct kray_msg_gcs_lookup_reply {
	__u64 token;
	__s32 status; /* 0 or -ENOENT */
	__u32 host;
	struct kray_oid actor;
};
_Static_assert(sizeof(struct kray_msg_gcs_lookup_reply) == 32, "lookup_reply is 32 bytes");

struct kray_msg_actor_attach {
	__u64 token;
	__s32 status; /* reply: 0 (the link now holds a handle) or -ENOENT */
	__u32 pad;
	struct kray_oid actor;
};
_Static_assert(sizeof(struct kray_msg_actor_attach) == 32, "actor_attach is 32 bytes");

/* The cluster's key-value table, kept by the head (and in its log). */
enum kray_kv_op { KRAY_KV_PUT = 1, KRAY_KV_GET = 2, KRAY_KV_DEL = 3 };
#define KRAY_KV_VALUE_MAX (1u << 20)
struct kray_msg_kv {
	__u64 token; /* node links: echoed in the reply */
	__s32 status; /* reply: 0, -ENOENT */
	__u8 op; /* enum kray_kv_op */
	__u8 key_len; /* then key (padded), then value_len bytes (padded) */
	__u16 pad;
	__u32 value_len;
	__u32 pad2;
};
_Static_assert(sizeof(struct kray_msg_kv) == 24, "kv is 24 bytes");

/*
 * Application metrics (kray.util.metrics, docs/observability.md).  A process sums its
 * updates and sends, every flush, one METRIC frame per series (metric + tag set) that
 * changed: a counter's increment, a gauge's last value, a histogram's new observations
 * (per-bucket counts, not cumulative, their count and sum).  krayd merges the node's
 * processes and serves the series on its Prometheus endpoint as ray_<name>.
 *
 * After the header: name (name_len bytes, [a-zA-Z_:][a-zA-Z0-9_:]*), help (help_len bytes,
 * UTF-8), tags (tags_len bytes: ntags pairs "key\0value\0", keys in strictly ascending
 * byte order, each a Prometheus label name not starting with "__" and not "le"), each
 * padded to 8; then for a histogram nbounds boundaries (IEEE-754 doubles, finite, strictly
 * ascending) and nbounds + 1 bucket counts (__u64; the last is the +Inf bucket) whose sum
 * is count.  A frame with flags KRAY_METRIC_DEFINE carries no observation (value 0, count
 * 0, buckets 0): it declares the metric and, with req != 0, asks whether krayd takes it.
 */
enum kray_metric_kind {
	KRAY_METRIC_COUNTER = 1,
	KRAY_METRIC_GAUGE = 2,
	KRAY_METRIC_HISTOGRAM = 3,
};
#define KRAY_METRIC_DEFINE 0x1 /* flags: declare only */
#define KRAY_METRIC_NAME_MAX 128 /* name bytes */
#define KRAY_METRIC_HELP_MAX 1024 /* description bytes */
#define KRAY_METRIC_TAGS_MAX 16 /* tag keys of a metric */
#define KRAY_METRIC_KEY_MAX 64 /* bytes of a tag key */
#define KRAY_METRIC_VALUE_MAX 256 /* bytes of a tag value */
#define KRAY_METRIC_BOUNDS_MAX 64 /* histogram boundaries */
struct kray_msg_metric {
	__u8 kind; /* enum kray_metric_kind */
	__u8 flags; /* KRAY_METRIC_DEFINE */
	__u8 name_len; /* 1..KRAY_METRIC_NAME_MAX */
	__u8 ntags; /* 0..KRAY_METRIC_TAGS_MAX */
	__u8 nbounds; /* histogram: 1..KRAY_METRIC_BOUNDS_MAX; else 0 */
	__u8 pad;
	__u16 help_len; /* 0..KRAY_METRIC_HELP_MAX */
	__u16 tags_len; /* the tag pairs' bytes */
	__u16 pad2;
	__u32 pad3;
	__u64 value; /* a double's bits: counter increment (> 0, finite), gauge value (any),
		      * histogram sum of the observations (not NaN) */
	__u64 count; /* histogram: observations (the buckets' sum); else 0 */
};
_Static_assert(sizeof(struct kray_msg_metric) == 32, "metric is 32 bytes");

#define KRAY_PAD8(n) (((n) + 7u) & ~7u)

#endif /* KRAY_UAPI_WIRE_H */
