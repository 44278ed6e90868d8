/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers of krayd's text listings (listing.c), apart from client.h so that a unit test
 * can build them alone.
 */
#ifndef KRAY_LIBCLIENT_LISTING_H
#define KRAY_LIBCLIENT_LISTING_H

#include <stddef.h>

#include "kray/kray.h"

/* One line (len bytes, no newline) into *ret: 0, or -EINVAL when it is not such a line. */
int kc_parse_node_line(const char *line, size_t len, struct kray_node_info *ret);
int kc_parse_actor_line(const char *line, size_t len, struct kray_actor_info *ret);
/* Every line of text through parse (one of the above, as void *) into a malloc()ed
 * array of entries of size bytes: 0 (NULL and 0 when none parsed) or -ENOMEM. */
int kc_parse_listing(const char *text, int (*parse)(const char *, size_t, void *), size_t size,
		     void **ret, size_t *ret_n);

#endif
