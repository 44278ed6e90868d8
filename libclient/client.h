/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libkray's private state and the connection layer shared by the driver API (api.c),
 * start-up (init.c) and the worker host (worker.c).  Never installed.
 */
#ifndef KRAY_LIBCLIENT_CLIENT_H
#define KRAY_LIBCLIENT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kray/kray.h"
#include "../common/buf.h"
#include "../common/wire.h"

#define KRAY_EXPORT __attribute__((visibility("default")))

struct worker_state;

struct kray {
	int fd;
	pid_t krayd_pid; /* a private krayd this handle started, or 0 */
	char *private_dir;
	uint32_t node, client, job, inline_max;
	uint32_t next_seq;
	uint64_t next_req;
	struct kbuf out; /* frames not sent yet */
	struct kbuf in; /* bytes received, not yet parsed */
	bool broken; /* the connection is unusable */
	char err[1024];
	/* In a worker: frames that are not replies (EXEC, JOB) go here. */
	void (*on_frame)(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body);
	struct worker_state *ws;
};

/* Sets k's error message and returns code (a negative errno). */
int kc_fail(struct kray *k, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Connects to the krayd socket at path and says hello.  Returns 0 or -errno. */
int kc_connect(struct kray *k, const char *path, uint32_t role, uint32_t worker_id,
	       const char *code_path);

/* Writes everything in k->out.  Returns 0 or -EPIPE. */
int kc_flush(struct kray *k);

/*
 * Makes the next frame available in k->in.  With block false, returns 0 when no whole
 * frame has arrived yet.  Returns 1 with *ret_h and *ret_body set (valid until
 * kc_consume()), or -EPIPE (krayd went away) / -EBADMSG (a malformed frame).
 */
int kc_next_frame(struct kray *k, bool block, struct kray_frame_hdr *ret_h,
		  const uint8_t **ret_body);
void kc_consume(struct kray *k, const struct kray_frame_hdr *h);

/*
 * Flushes, then reads frames until the reply of the given type and request id arrives;
 * other frames go to k->on_frame.  Returns 0 with the reply left unconsumed, or -errno.
 */
int kc_wait(struct kray *k, uint16_t type, uint64_t req, struct kray_frame_hdr *ret_h,
	    const uint8_t **ret_body);

/* worker.c: called by kray_get() in a worker before it blocks. */
void kc_worker_before_block(struct kray *k);

#endif
