// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_resources: wire_parse_resources(), the "NAME:QTY,..." lists of custom resources
 * that krayd's resources setting and every ACTOR_CREATE carry.  The input is the list,
 * copied to a buffer of exactly its length (it is not NUL-terminated on the wire).
 *
 * Oracles, when the parser takes a list:
 *  - the count is at most KRAY_RESOURCES_MAX, and the same without a result array;
 *  - the list holds no NUL byte (krayd passes the setting on as a C string);
 *  - each name is 1 to 31 bytes of [A-Za-z0-9_.-], NUL-terminated; each quantity at most
 *    the largest a list can say (1e9 and 3 decimals);
 *  - no name appears twice: krayd finds a resource by name and counts an actor's use per
 *    entry, so a repeated name would be checked once but held twice;
 *  - the list written again canonically ("name:whole.milli,...") parses to the same.
 * And for wire_parse_placed() (the same list with a scheduling strategy, "@..."):
 *  - a list wire_parse_resources() takes, it takes the same, with no strategy;
 *  - what it takes has at most one of spread and a node (never node 0), and written
 *    again canonically with its strategy parses to the same.
 */
#include <errno.h>
#include <string.h>

#include "../../common/wire.h"
#include "fuzz.h"

static int name_char(char c)
{
	return c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static void check_placed(const char *s, size_t size)
{
	struct wire_resource res[KRAY_RESOURCES_MAX], again[KRAY_RESOURCES_MAX];
	struct wire_place pl, pl2;
	char text[KRAY_RESOURCES_MAX * 64 + 32];
	size_t len = 0;
	int n = wire_parse_placed(s, size, res, &pl), plain = wire_parse_resources(s, size, NULL);

	FUZZ_CHECK(n == -EINVAL || (n >= 0 && n <= KRAY_RESOURCES_MAX));
	if (plain >= 0)
		FUZZ_CHECK(n == plain && !pl.node && !pl.spread && !pl.soft);
	if (n < 0)
		return;
	FUZZ_CHECK(!(pl.spread && pl.node) && (pl.node || !pl.soft));
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s:%llu.%03llu,",
					res[i].name, (unsigned long long)(res[i].milli / 1000),
					(unsigned long long)(res[i].milli % 1000));
	if (pl.spread)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "@spread");
	else if (pl.node)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "@%s=%08x",
					pl.soft ? "prefer" : "node", pl.node);
	FUZZ_CHECK(len < sizeof(text));
	if (len >= 1024)
		return; /* longer than wire_parse_placed() takes (an input near its limit) */
	FUZZ_CHECK(wire_parse_placed(text, len, again, &pl2) == n);
	FUZZ_CHECK(pl2.node == pl.node && pl2.soft == pl.soft && pl2.spread == pl.spread);
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(!strcmp(res[i].name, again[i].name) && res[i].milli == again[i].milli);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_resource res[KRAY_RESOURCES_MAX], again[KRAY_RESOURCES_MAX];
	char text[KRAY_RESOURCES_MAX * 64], *s;
	size_t len = 0;
	int n, m;

	s = malloc(size ? size : 1);
	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	check_placed(s, size);
	n = wire_parse_resources(s, size, res);
	FUZZ_CHECK(n == -EINVAL || (n >= 0 && n <= KRAY_RESOURCES_MAX));
	FUZZ_CHECK(wire_parse_resources(s, size, NULL) == n);
	if (n < 0) {
		free(s);
		return 0;
	}
	FUZZ_CHECK(!size || !memchr(s, 0, size));
	free(s);

	for (int i = 0; i < n; i++) {
		size_t nl = strnlen(res[i].name, sizeof(res[i].name));

		FUZZ_CHECK(nl >= 1 && nl < sizeof(res[i].name));
		for (size_t j = 0; j < nl; j++)
			FUZZ_CHECK(name_char(res[i].name[j]));
		FUZZ_CHECK(res[i].milli <= 1000000000ull * 1000 + 999);
		for (int j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(res[i].name, res[j].name) != 0);
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s:%llu.%03llu",
					i ? "," : "", res[i].name,
					(unsigned long long)(res[i].milli / 1000),
					(unsigned long long)(res[i].milli % 1000));
		FUZZ_CHECK(len < sizeof(text));
	}
	m = wire_parse_resources(text, len, again);
	FUZZ_CHECK(m == n);
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(!strcmp(res[i].name, again[i].name) && res[i].milli == again[i].milli);
	return 0;
}
