// SPDX-License-Identifier: Apache-2.0
/*
 * common/json.h: the string escaper of krayd's timeline and the CLI's --json output keeps
 * every output valid JSON (and UTF-8) whatever bytes a name holds.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "../../common/json.h"

static void expect(const char *in, size_t len, const char *want)
{
	struct kbuf b = { 0 };

	json_put_str(&b, in, len);
	kbuf_put(&b, "", 1);
	cr_assert_str_eq((const char *)b.data, want);
	kbuf_free(&b);
}

Test(json, plain_text_unchanged)
{
	expect("square", 6, "square");
	expect("", 0, "");
}

Test(json, quotes_backslashes_and_controls_escaped)
{
	expect("a\"b\\c", 5, "a\\\"b\\\\c");
	expect("x\ny\t\x01", 5, "x\\u000ay\\u0009\\u0001");
	expect("a\0b", 3, "a\\u0000b");
}

Test(json, utf8_kept)
{
	expect("caf\xc3\xa9", 5, "caf\xc3\xa9");
	expect("\xe2\x82\xac", 3, "\xe2\x82\xac");
	expect("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");
}

Test(json, bad_utf8_replaced)
{
	expect("a\xff", 2, "a?");
	expect("\xc3", 1, "?"); /* cut short at the end */
	expect("\xc3(", 2, "?("); /* no continuation byte */
	expect("\xc0\xaf", 2, "??"); /* overlong lead */
	expect("\x80x", 2, "?x"); /* a lone continuation byte */
}
