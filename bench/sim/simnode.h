/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A simulated node: the node protocol of a krayd against a real head, from a test or a
 * benchmark, cheaply enough that one process hosts a thousand of them (bench_scale,
 * test_simnode).  It joins as net.c's connector does (the token handshake), registers
 * and reports like cluster.c's report(), counts the views the head sends back, and runs
 * the tasks the head forwards to it as remote.c's running side answers them: each return
 * pushed inline (OBJ_PUSH, KRAY_PUSH_ARG) and then FWD_DONE.  Its "worker" computes
 * square(x) for a task whose first argument is the integer x, nil otherwise, at once.
 *
 * The head forwards over the link the node joined with (links carry frames both ways:
 * net_link_to() takes any proven link to the node), so a simulated node listens nowhere;
 * it advertises port 9, which the head never dials while the link is up.
 */
#ifndef KRAY_SIMNODE_H
#define KRAY_SIMNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct simnode {
	int fd; /* its link to the head, blocking (reads with MSG_DONTWAIT) */
	uint32_t node;
	uint32_t load; /* what it reports as queued */
	bool busy; /* reports workers_busy = 1 */
	int64_t next_ms; /* the caller's: when it reports next */
	char res[32]; /* its resources, "NAME:QTY,...", reported with every report */
	uint64_t answered; /* forwarded tasks it answered */
	size_t have;
	uint8_t in[1 << 16];
};

/* What a set of simulated nodes saw; zero-initialise, the calls add to it. */
struct simnode_stats {
	uint64_t view_bytes; /* NODE_VIEW frames, headers included */
	uint64_t reports; /* heartbeats sent */
	uint64_t tasks; /* forwarded tasks answered */
};

/*
 * Connects to the head at 127.0.0.1:port, proves token and registers s (s->node, s->res
 * and s->busy set by the caller).  Returns 0, or -1 with why written.
 */
int simnode_join(struct simnode *s, unsigned short port, const char *token, char *why,
		 size_t why_len);

/* Sends a report (KRAY_MSG_NODE_REGISTER or _HEARTBEAT) with s's load.  0, or -1. */
int simnode_report(struct simnode *s, uint16_t type, struct simnode_stats *st);

/*
 * Reads what the head sent without waiting: views counted, forwarded tasks answered,
 * anything else (PEER_RELEASE, queries) read and ignored.  Returns 0, or -1 when the
 * head closed the link or sent what is not a frame.
 */
int simnode_drain(struct simnode *s, struct simnode_stats *st);

#endif /* KRAY_SIMNODE_H */
