/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON text for krayd's exports (the task timeline) and the CLI's --json output: the one
 * string escaper both use.  Header-only, like buf.h.
 */
#ifndef KRAY_COMMON_JSON_H
#define KRAY_COMMON_JSON_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

/* Appends s (len bytes) as a JSON string's contents, without the quotes: quotes,
 * backslashes and control bytes escaped, bytes that are not well-formed UTF-8 replaced by
 * '?' (a C function's name, say, is any bytes). */
static inline void json_put_str(struct kbuf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		unsigned c = p[i];
		unsigned n = c < 0x80 ? 0 :
			     c < 0xc2 ? 4 :
			     c < 0xe0 ? 1 :
			     c < 0xf0 ? 2 :
			     c < 0xf5 ? 3 :
					4;
		char esc[8];

		if (!n) {
			if (c == '"' || c == '\\') {
				kbuf_put(b, "\\", 1);
				kbuf_put(b, &p[i], 1);
			} else if (c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				kbuf_put(b, esc, 6);
			} else {
				kbuf_put(b, &p[i], 1);
			}
			i++;
			continue;
		}
		bool ok = n < 4 && i + n < len;

		for (unsigned k = 1; ok && k <= n; k++)
			ok = (p[i + k] & 0xc0) == 0x80;
		if (ok) {
			kbuf_put(b, &p[i], n + 1);
			i += n + 1;
		} else {
			kbuf_put(b, "?", 1);
			i++;
		}
	}
}

#endif /* KRAY_COMMON_JSON_H */
