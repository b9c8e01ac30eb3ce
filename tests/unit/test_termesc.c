/*
 * test_termesc.c - the one rule for printing foreign text (termesc.h):
 * controls, ESC, newlines, bad UTF-8 and hidden characters become
 * escapes; everything else is kept; a cut never splits an escape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "termesc.h"

static void check(const char *in, size_t n, unsigned flags, const char *want)
{
	char out[256];
	size_t len;

	if (n == (size_t)-1)
		n = strlen(in);
	len = term_escape(out, sizeof(out), in, n, flags);

	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
}

static void test_plain(void **state)
{
	check("notes/todo.txt", 14, 0, "notes/todo.txt");
	check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", -1, 0,
	      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	check("", 0, 0, "");
}

static void test_controls(void **state)
{
	check("a\nb", 3, 0, "a\\nb");
	check("a\tb\r", 4, 0, "a\\tb\\r");
	check("\x1b[31mred\x1b]0;title\a", -1, 0, "\\e[31mred\\e]0;title\\x07");
	check("x\x7fy\x01", 4, 0, "x\\x7fy\\x01");
	check("nul\0after", 9, 0, "nul\\x00after");
	check("back\\slash", 10, 0, "back\\\\slash");
	/* a log line keeps its backslashes, and escapes the rest */
	check("write '\\#'\n", 11, TERM_ESC_LOG, "write '\\#'\\n");
}

static void test_bad_utf8_and_hidden(void **state)
{
	/* a lone continuation byte, a cut sequence, an overlong '/' */
	check("a\x80z", 3, 0, "a\\x80z");
	check("\xe2\x82", 2, 0, "\\xe2\\x82");
	check("\xc0\xaf", 2, 0, "\\xc0\\xaf");
	/* 8-bit CSI as raw byte and as the C1 character U+009B */
	check("\x9b"
	      "31m",
	      4, 0, "\\x9b31m");
	check("\xc2\x9b"
	      "31m",
	      5, 0, "\\u009b31m");
	/* right-to-left override, zero-width space, BOM */
	check("evil\xe2\x80\xaetxt.exe", 14, 0, "evil\\u202etxt.exe");
	check("a\xe2\x80\x8b"
	      "b\xef\xbb\xbf",
	      8, 0, "a\\u200bb\\ufeff");
}

static void test_cut(void **state)
{
	char out[5];

	/* "ab\e" needs 4 bytes + NUL: fits; "ab\ec" does not */
	assert_int_equal(term_escape(out, sizeof(out),
				     "ab\x1b"
				     "c",
				     4, 0),
			 5);
	assert_string_equal(out, "ab\\e");
	/* an escape that does not fit is left out whole */
	assert_int_equal(term_escape(out, sizeof(out), "abc\x01", 4, 0), 7);
	assert_string_equal(out, "abc");
	assert_int_equal(term_escape(NULL, 0, "\n\n", 2, 0), 4);
}

static void test_dup(void **state)
{
	char *s = term_escape_dup("\x01\x02\x03\x04");

	assert_string_equal(s, "\\x01\\x02\\x03\\x04");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_bad_utf8_and_hidden),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_dup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
