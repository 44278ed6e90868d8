/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer with a read offset: the output queue of every connection and the
 * builder of every frame.  Header-only; both krayd and libkray use it.
 */
#ifndef KRAY_COMMON_BUF_H
#define KRAY_COMMON_BUF_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kbuf {
	uint8_t *data;
	size_t len; /* bytes written */
	size_t off; /* bytes already consumed from the front */
	size_t cap;
	bool nomem; /* libkray only: an append failed for lack of memory (see kbuf_reserve) */
};

static inline void kbuf_free(struct kbuf *b)
{
	free(b->data);
	*b = (struct kbuf){ 0 };
}

/*
 * Makes room for n more bytes; returns whether it did.  In krayd running out of memory for
 * a message buffer is fatal, as in Redis' zmalloc: there is no useful way to go on with
 * half a frame queued.  libkray is built with KRAY_KBUF_SOFT (the Makefile's pic rule):
 * there it must not kill the program that loaded it, so a failed reserve sets b->nomem,
 * every later append is dropped until someone clears it, and wire_end() drops the partial
 * frame and returns -ENOMEM to the caller.
 */
static inline bool kbuf_reserve(struct kbuf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return true;
	if (b->off && b->off == b->len) {
		b->off = b->len = 0;
		if (n <= b->cap)
			return true;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p) {
#ifdef KRAY_KBUF_SOFT
		b->nomem = true;
		return false;
#else
		abort();
#endif
	}
	b->data = p;
	b->cap = cap;
	return true;
}

/*
 * The same without the abort: returns 0, or -ENOMEM with b unchanged.  For buffers whose
 * size a peer decides (what a connection receives): its failure closes that connection.
 */
static inline int kbuf_try_reserve(struct kbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (b->len + n <= b->cap)
		return 0;
	while (cap < b->len + n) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Appends n bytes (p may be NULL to append zeroes). */
static inline void kbuf_put(struct kbuf *b, const void *p, size_t n)
{
	if (!n) /* nothing to add: b->data may still be NULL (UBSan objects to NULL + 0) */
		return;
	if (b->nomem || !kbuf_reserve(b, n))
		return;
	if (p)
		memcpy(b->data + b->len, p, n);
	else
		memset(b->data + b->len, 0, n);
	b->len += n;
}

/* Appends printf(fmt, ...), cut at 511 bytes: a line of a text or JSON export. */
static inline void kbuf_printf(struct kbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline void kbuf_printf(struct kbuf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		kbuf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static inline size_t kbuf_pending(const struct kbuf *b)
{
	return b->len - b->off;
}

/* Drops n consumed bytes from the front; compacts when everything was consumed. */
static inline void kbuf_consume(struct kbuf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

/* Moves unconsumed bytes to the front so that the tail has room for reads. */
static inline void kbuf_compact(struct kbuf *b)
{
	if (!b->off)
		return;
	memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

#endif /* KRAY_COMMON_BUF_H */
