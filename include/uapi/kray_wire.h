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

#include <linux/types.h>

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
	KRAY_MSG_WAIT_REPLY = 20, /* D->C  kray_msg_refs + one byte per oid (1 = ready), padded */
	KRAY_MSG_ACTOR_CREATE = 21, /* C->D  kray_msg_actor_create + class, name, ns + args */
	KRAY_MSG_GET_ACTOR = 22, /* C->D  kray_msg_get_actor + name + ns */
	KRAY_MSG_KILL = 23, /* C->D  kray_msg_kill */
	KRAY_MSG_ACTOR_REPLY = 24, /* D->C  kray_msg_actor_reply (to the three above) */
	KRAY_MSG_ACTOR_STOP = 25, /* D->W  empty: run the destructor and exit */
	KRAY_MSG_LIST_ACTORS = 26, /* C->D  empty */
	KRAY_MSG_TEXT_REPLY = 27, /* D->C  kray_msg_error layout: 0 + text (LIST_ACTORS) */
	KRAY_MSG_TYPE_MAX = 27, /* the last of the core types, 1 to 27 */
	/* 80-87: /dev/kray (kmod/, docs/kmod.md); only those below are known */
	KRAY_MSG_KMOD_PIN = 80, /* C->D  kray_msg_refs + oids: mapped through /dev/kray, pin */
};

/*
 * File descriptors travel with frames by SCM_RIGHTS, krayd -> client only.  A frame that
 * carries fds says how many in the low bits of its flags; they arrive no later than the
 * frame's last byte and are taken in order, one per KRAY_WT_FD value.
 */
#define KRAY_FRAME_NFDS(flags) ((flags) & 0xffffu)
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
			 * memfd is the frame's next fd */
	KRAY_WT_OBJECT = 7, /* RESULT only: payload = oid of a sealed object the worker
			     * created; it becomes this return slot (moved, not copied) */
	KRAY_WT_ACTOR = 8, /* an actor handle: payload = the actor's id */
	KRAY_WT_MAX = 8,
};

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
	KRAY_WE_MAX = 8,
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
	__u8 pad;
	__u64 reserved;
	struct kray_oid actor; /* a method call on this actor; all zero: a task */
};
_Static_assert(sizeof(struct kray_msg_submit) == 40, "submit is 40 bytes");

struct kray_msg_get {
	__s64 timeout_ms; /* < 0: wait forever */
	__u32 n; /* oids that follow */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_get) == 16, "get is 16 bytes");

struct kray_msg_get_reply {
	__s32 status; /* 0, or -ETIMEDOUT (no values follow) */
	__u32 n; /* values that follow, one per requested oid */
};
_Static_assert(sizeof(struct kray_msg_get_reply) == 8, "get_reply is 8 bytes");

struct kray_msg_put {
	struct kray_oid oid; /* owner must be the sender */
};

struct kray_msg_refs {
	__u32 n; /* oids that follow */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_refs) == 8, "refs is 8 bytes");

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
	__u8 pad[6];
};
_Static_assert(sizeof(struct kray_msg_get_actor) == 8, "get_actor is 8 bytes");

struct kray_msg_kill {
	struct kray_oid actor;
	__u32 no_restart;
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_kill) == 24, "kill is 24 bytes");

struct kray_msg_actor_reply {
	__s32 status; /* 0 or -errno */
	__u32 len; /* message bytes after the id, padded */
	struct kray_oid actor;
};
_Static_assert(sizeof(struct kray_msg_actor_reply) == 24, "actor_reply is 24 bytes");

struct kray_msg_result {
	struct kray_oid task;
	__u64 exec_ns; /* time the function ran */
	__u32 n; /* values: num_returns, or 1 of type ERROR */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_msg_result) == 32, "result is 32 bytes");

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
	__u32 pad;
};
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
	__u64 reserved[5];
};
_Static_assert(sizeof(struct kray_wire_stats) == 256, "stats is 256 bytes");

#define KRAY_PAD8(n) (((n) + 7u) & ~7u)

#endif /* KRAY_UAPI_WIRE_H */
