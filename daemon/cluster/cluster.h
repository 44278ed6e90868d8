/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster inside krayd (issue 7, docs/cluster.md): what the node-link files share.
 *
 *  - net.c     TCP links between nodes on the io_uring loop, and the token handshake
 *  - gcs.c     the head's tables: nodes (with heartbeats and deaths)
 *  - node.c    the member side: joining the head, heartbeats, the cluster view, placement
 *  - remote.c  tasks run on another node: forwarding, results, retries on node death
 *  - ractor.c  actors living on another node: placement, calls, restarts
 *  - lineage.c large returns kept where they were made: pulls, lineage reconstruction
 *  - gcs_log.c the head's log (the default GCS store); gcs_redis.c the same in Redis
 *  - lookup.c  requests the head or another node answers
 *  - xfer.c    objects sent between nodes: values inline, large objects in chunks
 *  - query.c   other nodes' summaries and timelines for a dashboard (NODE_QUERY)
 *  - gactor.c  actors the head restarts when their node dies (creation records, LOCATE)
 *
 * A link is one TCP connection (struct conn with role ROLE_PEER_AUTH, then ROLE_PEER)
 * plus this state.  Links carry frames both ways: a node answers on the link a request
 * came in on, so a node that connected out needs no connection back.
 */
#ifndef KRAYD_CLUSTER_H
#define KRAYD_CLUSTER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/krayd.h"

/* A large object streaming to another node over a link (xfer.c), in the link's queue. */
#define XFER_WANT_MAX 16 /* chunks a receiver asked for first (OBJ_RANGE), not yet sent */

struct xitem {
	struct obj *o; /* held (ref and pin) until it has been sent */
	uint64_t off, size; /* off: the next byte of the object to stream (the current chunk's) */
	uint64_t seq; /* the next chunk in order not yet started */
	uint8_t *sent; /* per KRAY_CHUNK: started already; NULL until a range is asked for */
	uint32_t want[XFER_WANT_MAX]; /* the chunks asked for first, in the order asked */
	unsigned nwant;
	uint32_t chunk_left; /* payload bytes of the current chunk not yet in the pipe */
	uint32_t in_pipe; /* spliced into the pipe, not yet into the socket */
	uint8_t pad; /* zero bytes owed after the current chunk's payload */
	uint8_t stage; /* the splice in flight: 1 memfd -> pipe (and its linked pipe ->
			* socket), 2 pipe -> socket; or 3: a raw send from map */
	int err; /* what the pair's first splice failed with, once its second is back */
	const uint8_t *map; /* the object mapped read-only, its chunks sent from there (or
			     * NULL: spliced) */
	size_t map_len;
	bool map_tried; /* map was chosen or refused already */
	struct kbuf after; /* frames queued behind it (net_out()) */
	struct xitem *next;
};

struct link;

/* An actor handle that arrived over a link, new on this node (xfer.c -> ractor_adopt()). */
struct lent_handle {
	struct kray_oid id;
	uint32_t host; /* the actor's node, as the sender knew it */
	uint32_t pad;
};

/* What the cluster's top (cluster.c) does with the events of a link: net.c, which owns the
 * links, calls only these.  frame: a frame on a link that has proven the token (returns 0,
 * or conn_fail()'s code); up: it has been proven both ways; gone: its connection closed;
 * sent: its output ran low; spliced: a splice on it finished with res; head, sunk: a
 * frame's head, and its body received elsewhere (struct conn_kind's). */
struct net_hooks {
	int (*frame)(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body);
	void (*up)(struct link *l);
	void (*gone)(struct link *l);
	void (*sent)(struct link *l);
	void (*spliced)(struct link *l, int res);
	int (*head)(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body,
		    uint32_t avail);
	void (*sunk)(struct link *l);
	void (*sinking)(struct link *l);
};

typedef int (*gcs_apply_fn)(struct krayd *d, uint16_t type, const uint8_t *body, uint32_t len,
			    bool log);
typedef uint64_t (*gcs_snapshot_fn)(struct krayd *d, struct kbuf *b);
/* The store has every write up to seq (UINT64_MAX: answer every held reply now). */
typedef void (*gcs_durable_fn)(struct krayd *d, uint64_t seq);

struct node_entry;
/* Where the head keeps its tables beyond memory (gcs-storage): the log file (gcs_log.c) or
 * Redis (gcs_redis.c).  gcs.c applies every change to memory first, then hands the same
 * record to the store; open() replays what the store holds through apply (log false). */
struct gcs_store {
	int (*open)(struct krayd *d, gcs_apply_fn apply, gcs_snapshot_fn snapshot,
		    gcs_durable_fn durable);
	/* A GCS_ACTOR, KV or GCS_JOB record that was applied. */
	void (*append)(struct krayd *d, uint16_t type, const void *body, size_t len);
	/* A node joined (alive) or died; NULL: the store keeps no node table. */
	void (*node_changed)(struct krayd *d, const struct node_entry *e);
	void (*tick)(struct krayd *d, int64_t now); /* NULL: none */
	void (*describe)(struct krayd *d, struct kbuf *b); /* a line for LIST_NODES */
	/* The sequence number of the last write handed over, while the store may not have
	 * it yet: a KV reply waits for durable(that number).  NULL or 0: it has it. */
	uint64_t (*pending)(struct krayd *d);
	void (*close)(struct krayd *d);
};
extern const struct gcs_store gcs_log_store, gcs_redis_store;
struct gcs_redis;

struct link {
	struct krayd *d;
	struct conn *c; /* NULL once its connection is gone (freed by net_sweep()) */
	uint32_t id; /* tasks name their link by id: a link may go while they live */
	uint32_t node; /* the node at the other end, once it has proven the token */
	bool outbound; /* we connected */
	bool up; /* proven both ways */
	bool to_head; /* our link to the head (member side) */
	bool proved; /* outbound: we sent our proof (so a close now means a refusal) */
	uint64_t view_sent; /* head: the view version last sent over it (0: none yet) */
	uint8_t nonce[KRAY_NONCE_LEN]; /* ours */
	uint8_t peer_nonce[KRAY_NONCE_LEN];
	struct sockaddr_in sa; /* outbound: where it connects (kept for the connect) */
	int64_t since; /* made at; unproven links are closed after AUTH_TIMEOUT_NS */
	struct kbuf backlog; /* frames queued before it was proven */
	struct xitem *xhead, *xtail; /* large objects streaming out, in order */
	struct kbuf urgent; /* frames that overtake them, at a chunk's end (net_out_urgent()) */
	struct kbuf lent; /* struct lent_handle: handles that came in the last frame */
	int pipe[2]; /* memfd -> pipe -> socket for their chunks; -1 until first needed */
	unsigned pipe_size;
	bool no_splice; /* splicing failed once: chunks are copied instead */
	struct {
		struct kray_oid id; /* the large object arriving, chunk by chunk */
		uint64_t off, size; /* off: the offset of the chunk arriving */
		uint64_t got; /* its bytes received, all chunks */
		uint64_t next; /* the end of the chunk before (one that starts elsewhere jumped) */
		uint8_t *have; /* per KRAY_CHUNK: received (each comes once) */
		bool active, discard;
		uint8_t *refs; /* the refs it contains (OBJ_PUSH's block), taken at its end */
		uint16_t nrefs;
		uint32_t chunk; /* the bytes of the chunk arriving into map */
		uint8_t *map; /* the object's memfd mapped writable until it is whole */
		size_t map_len;
		bool lazy; /* mapped lazily by readers while it comes (store_lazy_net.c) */
		uint32_t lazy_put; /* the bytes of the chunk arriving that they have already */
	} rx;
	struct link *next;
};

struct node_entry {
	struct kray_msg_node m;
	struct wire_resource res[KRAY_RESOURCES_MAX];
	int nres;
	char res_text[256];
	int64_t last_seen; /* head: last register or heartbeat */
	struct link *link; /* head: the link the node reports over */
	uint64_t ver; /* head: the view version of its last change (gcs.c) */
	uint32_t link_id; /* the proven link net_link_to() found to it last (a hint) */
	uint32_t sent; /* tasks this node forwarded to it and not done: placement spreads them
			* (kept across the views that replace the entry) */
};

/* The head's tables besides nodes: named actors and the key-value store (gcs.c), kept in
 * memory and in the GCS log (gcs_log.c). */
struct gname {
	struct kray_oid id;
	uint32_t host;
	bool detached;
	/* Claimed by host, its actor not registered yet (it may be on its way to another
	 * node): lookups wait for the registration until then (0: registered). */
	int64_t claimed_until;
	char name[KRAY_NAME_MAX + 1], ns[KRAY_NAME_MAX + 1];
	struct gname *next;
};

struct gjob {
	struct kray_msg_gcs_job m;
	char *path;
	struct gjob *next;
};

/* A KV reply held until the store has the write it answers (gcs.c). */
struct gheld {
	uint64_t seq;
	uint32_t conn_id, link_id; /* a local client's connection, or a node link */
	struct kbuf frame;
	struct gheld *next;
};

struct gkv {
	char key[KRAY_NAME_MAX + 1];
	void *val;
	uint32_t len;
	struct gkv *next;
};

/* A client request this node passed on (to the head, or to an actor's node) and answers
 * when the reply comes back. */
enum pend_kind { PEND_LOOKUP, PEND_ATTACH, PEND_KV, PEND_CLAIM, PEND_NAME };

struct pending {
	uint64_t token;
	enum pend_kind kind;
	uint32_t conn_id; /* the client's connection (it may be gone by then) */
	uint64_t req;
	struct kray_oid actor; /* PEND_ATTACH */
	uint32_t host;
	struct kbuf create; /* PEND_CLAIM: the ACTOR_CREATE body to run once the name is ours;
			     * PEND_NAME (a lookup on the head waiting for a claimed name's
			     * actor): name, NUL, namespace */
	int64_t deadline;
	struct pending *next;
};

/* An actor on another node, seen from a node that holds handles to it. */
struct ractor {
	struct kray_oid id;
	uint32_t link, node; /* where it lives now, and the link that holds our handle */
	int16_t max_restarts, max_task_retries; /* known when this node created it */
	uint16_t restarts;
	bool no_restart;
	/* Its node died and the head was asked where it lives now (ACTOR_LOCATE): its
	 * calls wait in parked, in order, for the answer. */
	bool locating, asked;
	struct task **parked;
	size_t nparked, cap_parked;
	/* A handle lent by a node other than the actor's: that node's link still holds one
	 * for us (released with ours, after the actor's node holds one: ACTOR_ATTACH). */
	uint32_t hold_link;
};

struct cluster {
	struct net_hooks hooks; /* set by cluster.c */
	int listen_fd;
	struct sockaddr_in self; /* where other nodes reach this one */
	uint8_t token[256];
	size_t token_len;
	struct link *links;
	/* member side */
	struct link *head_link;
	struct sockaddr_in head_sa[4]; /* address: the head, then its standbys */
	unsigned nheads, head_cur; /* head_cur: the one tried next */
	int64_t next_heartbeat, next_connect;
	/* every node known: the head's table on the head, the last view elsewhere */
	struct node_entry *nodes;
	unsigned nnodes, cap;
	struct oidmap node_index; /* {node} -> its index in nodes + 1 (node_find()) */
	struct oidmap link_index; /* {.owner = link id} -> struct link * (net_link_by_id()) */
	uint64_t pick_rng; /* node_pick()'s sample start (xorshift) */
	uint64_t view_ver; /* head: the version of the latest change to the view */
	struct task *fwd; /* tasks this node forwarded and still waits for */
	struct oidmap fwd_index; /* their ids -> struct task * */
	struct oidmap jobs; /* {owner node, owner job} -> job id here (forwarded tasks) */
	struct oidmap ractors; /* actors living on other nodes that this node holds handles
				* to -> struct ractor * */
	struct oidmap lineage; /* task id -> struct task *: finished elsewhere, returns kept
				* there; run again if that node dies before they are pulled */
	uint64_t pulled, rebuilt; /* counters */
	/* objects between any two nodes (pull.c) */
	struct oidmap located; /* owner: object id -> struct located * (its copies) */
	struct oidmap dpulls; /* puller: object id -> struct dpull * (fetches in flight) */
	uint64_t where_sent, fetched, served, fallbacks; /* counters */
	uint64_t ranges_asked, ranges_served; /* OBJ_RANGE sent, and chunks sent out of order */
	struct {
		uint32_t node;
		uint64_t out, in;
	} bytes[64]; /* large objects' bytes sent to and received from each node (xfer.c) */
	uint64_t forwarded, received; /* counters for kray status */
	uint32_t next_link;
	unsigned spread_next; /* SPREAD's turn in nodes[] (node_place()) */
	int64_t next_tick;
	bool view_from_head; /* a member has heard from the head */
	/* the head's tables and log */
	struct gname *names;
	struct gkv *kv;
	struct gjob *jobs_table;
	const struct gcs_store *store; /* gcs_open() picks it from gcs-storage */
	struct gcs_redis *redis; /* gcs_redis.c's state */
	struct gheld *held, **held_tail; /* KV replies waiting for the store (gcs.c) */
	int log_fd;
	gcs_apply_fn log_apply; /* replay and compaction call back into gcs.c */
	gcs_snapshot_fn log_snapshot;
	uint64_t log_records;
	uint64_t log_base; /* records the log held after its last compaction (or replay) */
	/* requests passed on */
	struct pending *pend;
	struct name_wait *name_waits; /* head: GCS_LOOKUPs waiting for a claimed name (gcs.c) */
	uint64_t next_token;
	struct gather *gathers; /* node queries for a dashboard (query.c) */
	/* actors the head restarts (gactor.c) */
	struct oidmap gactors; /* head: actor id -> struct gactor * (creation records) */
	struct oidmap recorded; /* host: actors of ours the head has a record of */
	uint64_t restarted; /* head: actors restarted on another node */
};

#define AUTH_TIMEOUT_NS (5ll * 1000000000)

/* net.c */
int net_init(struct krayd *d);
void net_fini(struct krayd *d);
/* The link to node (connecting it if need be), or NULL when the node is not known. */
struct link *net_link_to(struct krayd *d, uint32_t node);
/* Opens an outbound link to sa. */
struct link *net_connect(struct krayd *d, const struct sockaddr_in *sa);
/* Where frames for l go now: its backlog until it is up, behind streaming objects, or
 * its connection's output.  Call net_flush() after writing. */
struct kbuf *net_out(struct link *l);
/*
 * Where a frame goes that names no object and may overtake the large objects streaming out
 * (a heartbeat, the head's view): it is sent at the end of the chunk in flight, so that a
 * 1 GiB transfer does not hold it for seconds.  net_out() when none streams.
 */
struct kbuf *net_out_urgent(struct link *l);
void net_flush(struct link *l);
/* Sends a frame whose body is the fixed struct m (len bytes) over l, now. */
void net_send_fixed(struct link *l, uint16_t type, const void *m, size_t len);
void net_close_unproven(struct krayd *d, int64_t now);
/* Frees the links whose connection has gone (not while anything walks the list). */
void net_sweep(struct krayd *d);
struct link *net_link_by_id(struct krayd *d, uint32_t id);
/* Closes every link to node (it died). */
void net_drop_node(struct krayd *d, uint32_t node);
/* Parses "IPV4:PORT" ("localhost" too).  Returns 0 or -EINVAL. */
int net_parse_addr(const char *s, struct sockaddr_in *ret);

/* gcs.c (the head) */
void gcs_on_report(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body);
void gcs_tick(struct krayd *d, int64_t now);
/* Whether name entry g is claimed and its actor not registered yet (lookups wait). */
bool gcs_name_claimed(const struct gname *g, int64_t now);
/* Entry e of the head's view changed: the next view on each link carries it. */
void gcs_entry_changed(struct krayd *d, struct node_entry *e);
void gcs_link_gone(struct link *l);
/* Applies a GCS_ACTOR or KV (put/delete) record, from a node or from the store's replay;
 * log: hand it to the store.  Returns 0 or -EBADMSG. */
int gcs_apply(struct krayd *d, uint16_t type, const uint8_t *body, uint32_t len, bool log);
struct gname *gcs_find_name(struct krayd *d, const char *name, size_t len, const char *ns,
			    size_t ns_len);
struct gkv *gcs_kv_find(struct krayd *d, const char *key, size_t len);
int gcs_on_lookup(struct link *l, const uint8_t *body, uint32_t len);
int gcs_on_kv(struct link *l, const uint8_t *body, uint32_t len);
void gcs_fini(struct krayd *d);
/* Opens the head's store (gcs-storage) and replays it into the tables. */
int gcs_open(struct krayd *d);
/* The job table as text (head only), after the nodes in LIST_NODES. */
void gcs_describe_jobs(struct krayd *d, struct kbuf *b);
/* Sends this node's live named actors to the head (after joining it again). */
void gcs_reregister(struct krayd *d, struct link *head);

/* The tables as records (GCS_ACTOR, KV puts, GCS_JOB) for a store to rewrite itself. */
uint64_t gcs_snapshot(struct krayd *d, struct kbuf *b);

/* pend.c: requests passed on for local clients */
struct pending *pend_new(struct krayd *d, enum pend_kind kind, struct conn *c, uint64_t req);
struct pending *pend_take(struct krayd *d, uint64_t token);
void pend_free(struct pending *p);
struct conn *pend_conn(struct krayd *d, const struct pending *p);

/* lookup.c: named actors elsewhere, and KV requests, for local clients */
/* Creates the named actor of an ACTOR_CREATE (body) once the head has given this node its
 * name (a name is the cluster's, as in Ray); answers the client then. */
void claim_start(struct conn *c, uint64_t req, const struct wire_actor_create *m,
		 const uint8_t *body, uint32_t len);
/* Gives the name claimed for actor id back to the head's table (its creation failed). */
void gcs_name_release(struct krayd *d, const struct kray_oid *id, const char *name, size_t len,
		      const char *ns, size_t ns_len);
/* On the head: gives name in ns to actor on host, or returns the entry of the live actor
 * (on a live node) that has it already. */
struct gname *gcs_claim(struct krayd *d, const char *name, size_t len, const char *ns,
			size_t ns_len, const struct kray_oid *actor, uint32_t host);
void pend_expire(struct krayd *d, int64_t now);
int lookup_on_reply(struct link *l, const uint8_t *body, uint32_t len);
int lookup_on_attach(struct link *l, const uint8_t *body, uint32_t len);
int lookup_on_attach_reply(struct link *l, const uint8_t *body, uint32_t len);
int kv_on_reply(struct link *l, const uint8_t *body, uint32_t len);
void lookup_fini(struct krayd *d);

/* What cluster.c plugs into the core (core/ext.h) and into the links (struct net_hooks). */
int64_t cluster_next_deadline(struct krayd *d);
void cluster_tick(struct krayd *d, int64_t now);
/* The LIST_NODES text. */
void cluster_describe(struct krayd *d, struct kbuf *b);
/* Streams more of the objects queued to a node link when its output ran low. */
void xfer_refill(struct conn *c);
/* A splice of a node link finished with res (bytes or -errno). */
void xfer_spliced(struct conn *c, int res);
/* Forwards t to a node that has its resources when this one lacks them.  Returns true
 * when t was taken (forwarded, or failed for want of such a node). */
bool remote_take(struct krayd *d, struct task *t);
/* A forwarded task ended here: its returns go back to its owner's node. */
void remote_task_done(struct krayd *d, struct task *t);
/* Named actors elsewhere in the cluster (lookup.c): answers c's GET_ACTOR req later. */
/* Head: lookups of its own clients that waited for a claimed name are answered now if its
 * actor registered (or the wait is over). */
void lookup_names_changed(struct krayd *d, int64_t now);
void lookup_start(struct conn *c, uint64_t req, const char *name, size_t len, const char *ns,
		  size_t ns_len);
/* A named actor of this node was born (alive) or died: the head's table learns it. */
void gcs_actor_changed(struct krayd *d, struct actor *a, bool alive);
/* A driver connected (alive) or went: the head's job table learns it (gcs.c). */
void gcs_job_changed(struct conn *c, bool alive);
/* KV frames from a local client (gcs.c). */
int kv_from_client(struct conn *c, uint64_t req, const uint8_t *body, uint32_t len);
/* An object made on another node and kept there: something here waits for it, so pull
 * it (once).  No-op for other objects. */
void remote_want(struct krayd *d, struct obj *o);
/* o, made elsewhere, arrived (pulled) or is being freed here: the other node may drop it. */
void remote_obj_settled(struct krayd *d, struct obj *o);
/* Actors on other nodes (ractor.c).  remote_actor_create() returns 0 when node (0: one
 * that has the resources) took it (*ret_id written), -ENOENT when none has them. */
int remote_actor_create(struct conn *c, const struct wire_actor_create *m,
			const struct wire_resource *res, int nres, uint32_t node,
			struct kray_oid *ret_id);
bool remote_actor_known(struct krayd *d, const struct kray_oid *id);
void remote_actor_gone(struct krayd *d, const struct kray_oid *id);
int remote_actor_kill(struct krayd *d, const struct kray_oid *id, bool no_restart);

/* cluster.c: the part's top.  cluster_init() plugs it into the core (always: a single node
 * answers KV requests and LIST_NODES through it too). */
int cluster_init(struct krayd *d);
void cluster_fini(struct krayd *d);

/* node.c */
void node_self(struct krayd *d, struct node_entry *ret);
struct node_entry *node_find(struct krayd *d, uint32_t node);
/* Appends a zeroed entry for node (indexed); may move the others. */
struct node_entry *node_add(struct cluster *cl, uint32_t node);
/* Indexes nodes[] again after it was replaced. */
void node_index_rebuild(struct cluster *cl);
/* Writes one kray_msg_node (+ resources) for e to b. */
void node_put_entry(struct kbuf *b, const struct node_entry *e);
/* Whether this node's totals cover need. */
/* ",NAME:QTY" (QTY from thousandths) appended to buf at off if it fits, so that the text
 * always parses; the new length. */
size_t node_res_add(char *buf, size_t off, size_t len, const char *name, uint64_t milli);
bool node_has(const struct node_entry *e, const struct wire_resource *need, int n);
/* A live node other than this one (and avoid) whose totals cover need, the least loaded
 * (tasks queued and running per CPU, with those sent since its last report); its load in
 * *ret_load (may be NULL).  0: none. */
uint32_t node_pick(struct krayd *d, const struct wire_resource *need, int n, uint32_t avoid,
		   double *ret_load);
/* Whether this node's own totals cover need. */
bool node_here_has(struct krayd *d, const struct wire_resource *need, int n);
/* Where pl (a task's or actor's scheduling strategy, wire.h) sends work that needs need:
 * *ret_node is the node (this one included), or 0 for "as without a strategy" (a soft
 * preference that cannot be met, SPREAD with no node fit).  Returns 0, or -1 with why
 * when a hard node affinity cannot be met (the work fails: UNSCHEDULABLE). */
int node_place(struct krayd *d, const struct wire_resource *need, int n,
	       const struct wire_place *pl, uint32_t *ret_node, char *why, size_t why_len);
/* Counts a task forwarded to (delta 1) or back from (-1) node. */
void node_sent(struct krayd *d, uint32_t node, int delta);
void node_describe(struct krayd *d, struct kbuf *b);
/* The local job for (owner node, job) with that job's code path (made on first use). */
uint32_t node_map_job(struct krayd *d, uint32_t node, uint32_t job, const char *path,
		      uint32_t path_len);

/* remote.c */
bool remote_forward(struct krayd *d, struct task *t);
int remote_on_task(struct link *l, const uint8_t *body, uint32_t len);
int remote_on_done(struct link *l, const uint8_t *body, uint32_t len);
/* Link l went: the tasks forwarded over it are retried elsewhere or failed. */
void remote_link_gone(struct link *l);
int remote_on_actor(struct link *l, const uint8_t *body, uint32_t len);
int remote_on_kill(struct link *l, const uint8_t *body, uint32_t len);
int remote_on_held(struct link *l, const uint8_t *body, uint32_t len);
/* Task tid was cancelled here: where it was forwarded, and (RECURSIVE) its children that
 * were, the nodes running them cancel them (FWD_CANCEL). */
void remote_cancel(struct krayd *d, const struct kray_oid *tid, uint32_t flags);
int remote_on_cancel(struct link *l, const uint8_t *body, uint32_t len);
/* Local job ended (its driver went): every node this one links to ends what it runs of
 * it (FWD_JOB_END), and passes the end on to where those tasks sent theirs. */
void remote_job_end(struct krayd *d, uint32_t job);
int remote_on_job_end(struct link *l, const uint8_t *body, uint32_t len);

/* pull.c: objects between any two nodes */
/* Tells l's node where large argument o (owned here) lives instead of pushing it; false
 * when o is not for this (the caller pushes it). */
bool pull_send_arg(struct krayd *d, struct link *l, struct obj *o);
/* Forwarded task t is done or gone: its node's copies of t's arguments may go. */
void pull_task_gone(struct krayd *d, struct task *t);
int pull_on_where(struct link *l, const uint8_t *body, uint32_t len);
/* OBJ_PUSH h (body, len) over l, before xfer_on_push(): true when it is an error that
 * answers a fetch of ours and another node is asked instead (the frame is dropped). */
bool pull_refused(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body,
		  uint32_t len);
void pull_link_gone(struct krayd *d, struct link *l);
void pull_fini(struct krayd *d);
/* Counts n bytes of a large object sent to (out) or received from node. */
void node_bytes(struct krayd *d, uint32_t node, uint64_t n, bool out);

/* ractor.c: actors on other nodes */
/* The record of actor id (made if missing and add). */
struct ractor *ractor_get(struct krayd *d, const struct kray_oid *id, bool add);
/* l went: actors this node created over it are created again elsewhere. */
void ractor_link_gone(struct krayd *d, struct link *l);
/* The handles that came over l in its last frame (l->lent), new here: l's node holds one
 * for us; each actor lives on its host.  Their calls go there (asking the host to hold a
 * handle for us when it is a third node). */
void ractor_adopt(struct link *l);
void ractor_fini(struct krayd *d);

/* The calls of actor ra wait for the head's answer (ra->locating): t is kept in order. */
void ractor_park(struct krayd *d, struct ractor *ra, struct task *t);
/* The head's answer: ra lives on node now (status KRAY_ALOC_AT), or not any more. */
void ractor_located(struct krayd *d, const struct kray_msg_actor_locate *m);
int ractor_on_located(struct link *l, const uint8_t *body, uint32_t len);

/* gactor.c: actors the head restarts when their node dies (Ray's GCS actor manager) */
/* Host: actor a, created here from another node's FWD_ACTOR x, may be restarted by the
 * head: the head gets its creation record. */
void gactor_created(struct krayd *d, const struct wire_fwd_actor *x, const uint8_t *body,
		    uint32_t len);
/* Host: a head this node joins (again) learns the records of the actors it runs. */
void gactor_reregister(struct krayd *d, struct link *head);
/* Host: an actor ended here (for good). */
/* Host: actor a, created here by a driver of this node, gives the head its record too
 * when another node may hold it (it is named or detached, or a handle to it was lent to
 * another node: gactor_lent()), so that a holder elsewhere still finds it after this node
 * dies.  Not on the head, and once per actor. */
void gactor_local(struct krayd *d, struct actor *a);
void gactor_lent(struct krayd *d, const struct kray_oid *id);
void gactor_ended(struct krayd *d, const struct kray_oid *id);
int gactor_on_record(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body);
int gactor_on_restart(struct link *l, const uint8_t *body, uint32_t len);
int gactor_on_locate(struct link *l, const uint8_t *body, uint32_t len);
/* Holders: asks the head (or is the head) where each actor this node lost (locating, not
 * asked yet) lives now. */
void gactor_ask(struct krayd *d);
/* Head: node died: its recorded actors are restarted elsewhere, once. */
void gactor_node_dead(struct krayd *d, uint32_t node);
void gactor_tick(struct krayd *d, int64_t now);
void gactor_describe(struct krayd *d, struct kbuf *b);
void gactor_fini(struct krayd *d);

/* lineage.c: large returns held where they were made */
/* l went: objects held at its other end are rebuilt by running their tasks again. */
void lineage_link_gone(struct krayd *d, struct link *l);
void lineage_fini(struct krayd *d);
int remote_on_pull(struct link *l, const uint8_t *body, uint32_t len);
void remote_fini(struct krayd *d);

/* xfer.c */
/* Sends o's value over l (a large one streams), with the refs it contains lent to the
 * other node (the link holds them until it releases them); why: enum kray_push_why. */
void xfer_push(struct link *l, struct obj *o, enum kray_push_why why);
void xfer_push_error(struct link *l, const struct kray_oid *id, const char *msg);
int xfer_on_push(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body, uint32_t len);
int xfer_on_chunk(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body);
/* The head of a frame on l (net_hooks.head): an object's chunk is received straight into
 * the object's memfd (conn_sink()); xfer_chunk_sunk() once it is in. */
int xfer_chunk_head(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body,
		    uint32_t avail);
void xfer_chunk_sunk(struct link *l);
/* Part of that chunk is in: readers that map the object lazily get what is (store_lazy_net.c). */
void xfer_chunk_sinking(struct link *l);
void xfer_link_gone(struct link *l);
/* A lazy reader here waits for [off, off + len) of pending o, arriving over a link: that
 * link's sender is asked for it first (OBJ_RANGE), unless it is in or nothing streams. */
void xfer_range_wanted(struct krayd *d, struct obj *o, uint64_t off, uint64_t len);
/* OBJ_RANGE over l: the chunks asked for go next in the object streaming to its node. */
int xfer_on_range(struct link *l, const uint8_t *body, uint32_t len);

/* query.c: NODE_QUERY, for a dashboard's cluster view (the ext gather hook) */
int query_gather(struct conn *c, uint32_t what, ext_gather_fn done);
int query_on_request(struct link *l, const uint8_t *body, uint32_t len);
int query_on_reply(struct link *l, const uint8_t *body, uint32_t len);
void query_expire(struct krayd *d, int64_t now);
void query_fini(struct krayd *d);

/* pgplace.c: placement groups across the nodes (core/pgroup.c keeps them). */
struct pgroup;
bool pgplace_place(struct krayd *d, struct pgroup *g);
void pgplace_removed(struct krayd *d, struct pgroup *g);
/* A node died: the bundles of this node's groups there are placed again. */
void pgplace_node_dead(struct krayd *d, uint32_t node);
int pgplace_on_reserve(struct link *l, const uint8_t *body, uint32_t len);
int pgplace_on_reserved(struct link *l, const uint8_t *body, uint32_t len);
int pgplace_on_release(struct link *l, const uint8_t *body, uint32_t len);
void pgplace_link_gone(struct link *l);

#endif
