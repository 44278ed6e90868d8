// SPDX-License-Identifier: Apache-2.0
/*
 * The driver side of actors: create, call, look up by name, kill.  A call is a SUBMIT
 * naming the actor, so it is batched like any call and keeps the connection's order;
 * create, lookup and kill wait for krayd's answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "listing.h"

static int actor_request(struct kray *k, uint64_t req, kray_ref *ret_actor)
{
	struct kray_frame_hdr h;
	struct wire_actor_reply rep;
	const uint8_t *body;
	int r = kc_wait(k, KRAY_MSG_ACTOR_REPLY, req, &h, &body);

	if (r)
		return r;
	if (wire_dec_actor_reply(body, h.len, &rep)) {
		kc_consume(k, &h);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed actor reply from krayd");
	}
	if (rep.m.status) {
		r = kc_fail(k, rep.m.status < 0 ? rep.m.status : -EPROTO, "%.*s", (int)rep.m.len,
			    rep.text);
	} else if (ret_actor) {
		memcpy(ret_actor, &rep.m.actor, sizeof(*ret_actor));
		kc_fast_actor_held(k, ret_actor); /* its calls may go fast (fast_actor.c) */
	}
	kc_consume(k, &h);
	return r;
}

static int check_name(struct kray *k, const char *what, const char *s, size_t *ret_len)
{
	size_t n = s ? strlen(s) : 0;

	if (n > KRAY_NAME_MAX)
		return kc_fail(k, -EINVAL, "%s longer than %d bytes", what, KRAY_NAME_MAX);
	*ret_len = n;
	return 0;
}

KRAY_EXPORT int kray_actor_create(struct kray *k, const char *cls, const kray_value *args,
				  size_t nargs, const struct kray_actor_opts *opts,
				  kray_ref *ret_actor)
{
	struct kray_actor_opts o = opts ? *opts : KRAY_ACTOR_OPTS_DEFAULT;
	struct kray_msg_actor_create m = { 0 };
	size_t cls_len = 0, name_len = 0, ns_len = 0, res_len = 0, off;
	uint64_t req = ++k->next_req;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!cls || !*cls || !ret_actor)
		return kc_fail(k, -EINVAL, "kray_actor_create needs a class name and ret_actor");
	if ((r = check_name(k, "class name", cls, &cls_len)) ||
	    (r = check_name(k, "actor name", o.name, &name_len)) ||
	    (r = check_name(k, "namespace", o.ns, &ns_len)))
		return r;
	if (o.name && !name_len)
		return kc_fail(k, -EINVAL, "an actor name cannot be empty");
	res_len = o.resources ? strlen(o.resources) : 0;
	if (res_len > 255 || wire_parse_placed(o.resources, res_len, NULL, NULL) < 0)
		return kc_fail(k, -EINVAL, "resources must be \"NAME:QTY,...\" (at most %d)",
			       KRAY_RESOURCES_MAX);
	if (nargs > KRAY_ARGS_MAX || (nargs && !args))
		return kc_fail(k, -EINVAL, "at most %d constructor arguments", KRAY_ARGS_MAX);
	if (o.max_restarts < -1 || o.max_restarts > INT16_MAX || o.max_task_retries < -1 ||
	    o.max_task_retries > INT16_MAX)
		return kc_fail(k, -EINVAL, "max_restarts and max_task_retries: -1 to %d",
			       INT16_MAX);
	if (!o.max_concurrency || o.max_concurrency > 1024)
		return kc_fail(k, -EINVAL, "max_concurrency must be 1 to 1024");
	if (o.num_cpus < 0 || o.num_cpus > 4096)
		return kc_fail(k, -EINVAL, "num_cpus must be 0 to 4096");
	for (size_t i = 0; i < nargs; i++)
		if ((r = kc_check_value(k, &args[i], true)))
			return r;
	if ((r = kc_fast_args_known(k, args, nargs)))
		return r;
	m.seq = ++k->next_seq;
	m.job = k->job;
	m.max_restarts = (int16_t)o.max_restarts;
	m.max_task_retries = (int16_t)o.max_task_retries;
	m.max_concurrency = (uint16_t)o.max_concurrency;
	m.nargs = (uint16_t)nargs;
	m.num_cpus_milli = (uint32_t)(o.num_cpus * 1000 + 0.5);
	m.detached = o.detached ? 1 : 0;
	m.class_len = (uint8_t)cls_len;
	m.name_len = (uint8_t)name_len;
	m.ns_len = (uint8_t)ns_len;
	m.res_len = (uint8_t)res_len;
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_ACTOR_CREATE, req, WIRE_FIXED(m),
			      WIRE_PADDED(cls, cls_len), WIRE_PADDED(o.name, name_len),
			      WIRE_PADDED(o.ns, ns_len), WIRE_PADDED(o.resources, res_len));
	for (size_t i = 0; i < nargs; i++)
		kc_put_value(&k->out, &args[i], NULL, 0);
	if (!k->out.nomem && k->out.len - off - sizeof(struct kray_frame_hdr) > KRAY_FRAME_MAX) {
		k->out.len = off;
		return kc_fail(k, -E2BIG, "constructor arguments larger than %u bytes",
			       KRAY_FRAME_MAX);
	}
	if (kc_end(k, off))
		return -ENOMEM;
	return actor_request(k, req, ret_actor);
}

KRAY_EXPORT int kray_actor_call(struct kray *k, kray_ref actor, const char *method,
				const kray_value *args, size_t nargs,
				const struct kray_call_opts *opts, kray_ref *ret_refs)
{
	if (actor.index != KRAY_OID_ACTOR)
		return kc_fail(k, -EINVAL, "not an actor handle");
	return kc_submit(k, &actor, method, args, nargs, opts, ret_refs);
}

KRAY_EXPORT int kray_get_actor(struct kray *k, const char *name, const char *ns,
			       kray_ref *ret_actor)
{
	struct kray_msg_get_actor m = { 0 };
	uint64_t req = ++k->next_req;
	size_t name_len = 0, ns_len = 0, off;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!name || !*name || !ret_actor)
		return kc_fail(k, -EINVAL, "kray_get_actor needs a name and ret_actor");
	if ((r = check_name(k, "actor name", name, &name_len)) ||
	    (r = check_name(k, "namespace", ns, &ns_len)))
		return r;
	m.name_len = (uint8_t)name_len;
	m.ns_len = (uint8_t)ns_len;
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_GET_ACTOR, req, WIRE_FIXED(m),
			      WIRE_PADDED(name, name_len), WIRE_PADDED(ns, ns_len));
	if (kc_end(k, off))
		return -ENOMEM;
	return actor_request(k, req, ret_actor);
}

KRAY_EXPORT int kray_actor_self(struct kray *k, kray_ref *ret_actor)
{
	struct kray_msg_get_actor m = { .flags = KRAY_GET_ACTOR_SELF };
	uint64_t req = ++k->next_req;
	size_t off;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!ret_actor)
		return kc_fail(k, -EINVAL, "kray_actor_self needs ret_actor");
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_GET_ACTOR, req, WIRE_FIXED(m));
	if (kc_end(k, off))
		return -ENOMEM;
	return actor_request(k, req, ret_actor);
}

KRAY_EXPORT int kray_kill(struct kray *k, kray_ref actor, int no_restart)
{
	struct kray_msg_kill m = { .no_restart = no_restart ? 1 : 0 };
	uint64_t req = ++k->next_req;
	size_t off;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (actor.index != KRAY_OID_ACTOR)
		return kc_fail(k, -EINVAL, "not an actor handle");
	memcpy(&m.actor, &actor, sizeof(m.actor));
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_KILL, req, WIRE_FIXED(m));
	if (kc_end(k, off))
		return -ENOMEM;
	return actor_request(k, req, NULL);
}

static int describe(struct kray *k, uint16_t type, char **ret_text);

KRAY_EXPORT int kray_describe_actors(struct kray *k, char **ret_text)
{
	return describe(k, KRAY_MSG_LIST_ACTORS, ret_text);
}

KRAY_EXPORT int kray_describe_nodes(struct kray *k, char **ret_text)
{
	return describe(k, KRAY_MSG_LIST_NODES, ret_text);
}

KRAY_EXPORT int kray_timeline(struct kray *k, char **ret_json)
{
	return describe(k, KRAY_MSG_TIMELINE, ret_json);
}

KRAY_EXPORT int kray_describe_objects(struct kray *k, char **ret_json)
{
	return describe(k, KRAY_MSG_LIST_OBJECTS, ret_json);
}

KRAY_EXPORT int kray_describe_workers(struct kray *k, char **ret_json)
{
	return describe(k, KRAY_MSG_LIST_WORKERS, ret_json);
}

/* Asks krayd for a listing (LIST_ACTORS, LIST_NODES) or an export (TIMELINE, LIST_OBJECTS,
 * LIST_WORKERS:
 * longer than a listing may be) answered with TEXT_REPLY. */
static int describe(struct kray *k, uint16_t type, char **ret_text)
{
	struct kray_frame_hdr h;
	struct wire_text t;
	const uint8_t *body;
	uint64_t req = ++k->next_req;
	size_t off;
	char *text;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	off = wire_frame_open(&k->out, type, req, NULL, 0);
	if ((r = kc_end(k, off)))
		return r;
	r = kc_wait(k, KRAY_MSG_TEXT_REPLY, req, &h, &body);
	if (r)
		return r;
	/* Exports, and the node list of a large cluster, may be longer than an error. */
	bool export = type == KRAY_MSG_TIMELINE || type == KRAY_MSG_LIST_OBJECTS ||
		      type == KRAY_MSG_LIST_NODES || type == KRAY_MSG_LIST_WORKERS;

	if ((export ? wire_dec_export : wire_dec_error)(body, h.len, &t)) {
		kc_consume(k, &h);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed listing from krayd");
	}
	text = strndup(t.text, t.len);
	kc_consume(k, &h);
	if (!text)
		return kc_fail(k, -ENOMEM, "out of memory");
	*ret_text = text;
	return 0;
}

static int parse_node(const char *line, size_t len, void *ret)
{
	return kc_parse_node_line(line, len, ret);
}

static int parse_actor(const char *line, size_t len, void *ret)
{
	return kc_parse_actor_line(line, len, ret);
}

KRAY_EXPORT int kray_list_nodes(struct kray *k, struct kray_node_info **ret, size_t *ret_n)
{
	char *text;
	int r;

	if (!ret || !ret_n)
		return kc_fail(k, -EINVAL, "kray_list_nodes needs ret and ret_n");
	if ((r = describe(k, KRAY_MSG_LIST_NODES, &text)))
		return r;
	r = kc_parse_listing(text, parse_node, sizeof(**ret), (void **)ret, ret_n);
	free(text);
	return r ? kc_fail(k, r, "out of memory") : 0;
}

KRAY_EXPORT int kray_list_actors(struct kray *k, struct kray_actor_info **ret, size_t *ret_n)
{
	char *text;
	int r;

	if (!ret || !ret_n)
		return kc_fail(k, -EINVAL, "kray_list_actors needs ret and ret_n");
	if ((r = describe(k, KRAY_MSG_LIST_ACTORS, &text)))
		return r;
	r = kc_parse_listing(text, parse_actor, sizeof(**ret), (void **)ret, ret_n);
	free(text);
	return r ? kc_fail(k, r, "out of memory") : 0;
}
