// SPDX-License-Identifier: Apache-2.0
/*
 * The listings krayd sends as text (LIST_NODES, LIST_ACTORS: the lines `kray status`
 * prints), parsed into kray_node_info and kray_actor_info for programs.  krayd's wire
 * format stays text; this file is the one place that knows its lines, and it depends on
 * nothing but libc so that tests/unit/test_listing.c can test it alone.  A line that does
 * not parse is skipped (returns -EINVAL), never guessed at.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listing.h"
#include "uapi/kray_wire.h"

/* Copies [p, p + n) into dst (size bytes) as a C string; -EINVAL when it does not fit. */
static int copy_str(char *dst, size_t size, const char *p, size_t n)
{
	if (n >= size)
		return -EINVAL;
	memcpy(dst, p, n);
	dst[n] = 0;
	return 0;
}

/* "%08x %s:%u ALIVE|DEAD cpus %u workers %u (%u busy) queued %llu finished %llu store
 *  %llu MiB resources '%s'[ head][ (this node)]" (daemon/node.c, node_describe()) */
int kc_parse_node_line(const char *line, size_t len, struct kray_node_info *ret)
{
	char buf[600], addr[64], state[8];
	unsigned node, port, cpus, workers, busy;
	unsigned long long queued, finished, mib;
	const char *res, *end;
	int n = -1;

	if (copy_str(buf, sizeof(buf), line, len))
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (sscanf(buf,
		   "%8x %63[0-9.]:%u %7s cpus %u workers %u (%u busy) queued %llu "
		   "finished %llu store %llu MiB resources '%n",
		   &node, addr, &port, state, &cpus, &workers, &busy, &queued, &finished, &mib,
		   &n) != 10 ||
	    n < 0 || port > 65535)
		return -EINVAL;
	if (!strcmp(state, "ALIVE"))
		ret->alive = 1;
	else if (strcmp(state, "DEAD"))
		return -EINVAL;
	res = buf + n;
	end = strchr(res, '\'');
	if (!end || copy_str(ret->resources, sizeof(ret->resources), res, (size_t)(end - res)) ||
	    copy_str(ret->address, sizeof(ret->address), addr, strlen(addr)))
		return -EINVAL;
	ret->head = strstr(end, " head") != NULL;
	ret->self = strstr(end, " (this node)") != NULL;
	ret->node = node;
	ret->port = (uint16_t)port;
	ret->num_cpus = cpus;
	ret->workers = workers;
	ret->workers_busy = busy;
	ret->tasks_queued = queued;
	ret->tasks_finished = finished;
	ret->store_mib = mib;
	return 0;
}

/* "%u.%u.%u CLASS NS/NAME|- STATE: DETAIL" (daemon/actor.c, actor_describe()) */
int kc_parse_actor_line(const char *line, size_t len, struct kray_actor_info *ret)
{
	static const char *const states[] = { "pending", "starting", "alive", "dead" };
	char buf[1100], cls[256], named[520], state[16];
	unsigned node, owner, seq;
	const char *slash;
	int n = -1;
	size_t i;

	if (copy_str(buf, sizeof(buf), line, len))
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (sscanf(buf, "%u.%u.%u %255s %519s %15[a-z]:%n", &node, &owner, &seq, cls, named, state,
		   &n) != 6 ||
	    n < 0)
		return -EINVAL;
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (!strcmp(state, states[i]))
			break;
	if (i == sizeof(states) / sizeof(states[0]))
		return -EINVAL;
	ret->state = (enum kray_actor_state)i;
	ret->id = (kray_ref){ node, owner, seq, KRAY_OID_ACTOR };
	strcpy(ret->class_name, cls);
	if (strcmp(named, "-")) {
		slash = strchr(named, '/');
		if (!slash || copy_str(ret->ns, sizeof(ret->ns), named, (size_t)(slash - named)) ||
		    copy_str(ret->name, sizeof(ret->name), slash + 1, strlen(slash + 1)))
			return -EINVAL;
	}
	while (buf[n] == ' ')
		n++;
	snprintf(ret->detail, sizeof(ret->detail), "%s", buf + n);
	/* "pid %d, %u call(s) in flight, %u restart(s)" */
	if (ret->state == KRAY_ACTOR_ALIVE &&
	    sscanf(ret->detail, "pid %d, %u call", &ret->pid, &ret->calls_in_flight) == 2) {
		const char *r = strstr(ret->detail, "in flight, ");

		if (r)
			sscanf(r, "in flight, %u restart", &ret->restarts);
	}
	return 0;
}

int kc_parse_listing(const char *text, int (*parse)(const char *, size_t, void *), size_t size,
		     void **ret, size_t *ret_n)
{
	size_t n = 0, cap = 0;
	char *out = NULL;

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (n == cap) {
			char *bigger = realloc(out, (cap = cap ? cap * 2 : 8) * size);

			if (!bigger) {
				free(out);
				return -ENOMEM;
			}
			out = bigger;
		}
		if (!parse(p, len, out + n * size))
			n++;
		p += len + (nl ? 1 : 0);
	}
	if (!n) {
		free(out);
		out = NULL;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}
