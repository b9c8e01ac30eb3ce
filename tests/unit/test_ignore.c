/*
 * test_ignore.c - gitignore semantics of the ignore rules.
 *
 * Most cases are rows of a table: the lines of a root .wkfsignore, a path,
 * whether it is a directory, and the verdict of ignore_match().  Every row is
 * checked and every wrong verdict printed before the test fails, so one
 * broken feature shows up as the list of rows it breaks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ignore.h"

#define D true	/* a directory */
#define F false /* anything else */

struct row {
	const char *rules; /* lines of a root .wkfsignore */
	const char *path;
	bool is_dir;
	bool want;
};

static const struct row rows[] = {
	/* plain names match at any depth, and all below them */
	{"foo", "foo", F, true},
	{"foo", "a/foo", F, true},
	{"foo", "a/b/foo", D, true},
	{"foo", "foo/bar", F, true},
	{"foo", "foobar", F, false},
	{"foo", "xfoo", F, false},
	{"foo", "a/foo.c", F, false},
	{"foo", "", D, false},
	/* '*' */
	{"*.log", "a.log", F, true},
	{"*.log", "x/y/a.log", F, true},
	{"*.log", ".log", F, true},
	{"*.log", "a.logx", F, false},
	{"*.log", "a.lo", F, false},
	{"a*b", "ab", F, true},
	{"a*b", "axyzb", F, true},
	{"a*b", "a/b", F, false},
	{"a*b*c", "abxbc", F, true},
	{"a*b*c", "abxbcx", F, false},
	{"*", "anything", F, true},
	{"/a*b", "axb", F, true},
	{"/a*b", "a/b", F, false},
	{"/a*b", "ax/yb", F, false},
	{"a/*.c", "a/x.c", F, true},
	{"a/*.c", "a/b/x.c", F, false},
	{"a/*.c", "x/a/x.c", F, false},
	{"a/*", "a/x", F, true},
	{"a/*", "a", D, false},
	/* '?' */
	{"?.txt", "a.txt", F, true},
	{"?.txt", "ab.txt", F, false},
	{"?.txt", ".txt", F, false},
	{"/a?b", "axb", F, true},
	{"/a?b", "a/b", F, false},
	/* classes */
	{"[abc].c", "a.c", F, true},
	{"[abc].c", "c.c", F, true},
	{"[abc].c", "d.c", F, false},
	{"[a-c]x", "bx", F, true},
	{"[a-c]x", "dx", F, false},
	{"x[0-9][0-9]", "x42", F, true},
	{"x[0-9][0-9]", "x4a", F, false},
	{"[a-cx-z]", "y", F, true},
	{"[a-cx-z]", "m", F, false},
	{"[!a-c]x", "dx", F, true},
	{"[!a-c]x", "bx", F, false},
	{"[^a]x", "bx", F, true},
	{"[^a]x", "ax", F, false},
	{"[]]x", "]x", F, true},
	{"[]]x", "ax", F, false},
	{"[!]]x", "ax", F, true},
	{"[!]]x", "]x", F, false},
	{"[a-]x", "-x", F, true},
	{"[a-]x", "ax", F, true},
	{"[a-]x", "bx", F, false},
	{"[\\]a]", "]", F, true},
	{"[\\]a]", "\\", F, false},
	{"[*?]", "*", F, true},
	{"[*?]", "a", F, false},
	{"/a[/]b", "a/b", F, false},
	{"/a[!x]b", "a/b", F, false},
	{"[z-a]", "m", F, false},
	/* escapes */
	{"\\*", "*", F, true},
	{"\\*", "a", F, false},
	{"\\?", "?", F, true},
	{"\\?", "a", F, false},
	{"\\[a]", "[a]", F, true},
	{"\\[a]", "a", F, false},
	{"\\#foo", "#foo", F, true},
	{"\\!important", "!important", F, true},
	{"\\!important", "important", F, false},
	{"a\\\\b", "a\\b", F, true},
	{"\\a", "a", F, true},
	/* trailing spaces are cut unless escaped; leading ones are kept */
	{"foo   ", "foo", F, true},
	{"foo\\ ", "foo ", F, true},
	{"foo\\ ", "foo", F, false},
	{"foo\\  ", "foo ", F, true},
	{"foo\\\\ ", "foo\\", F, true},
	{" foo", " foo", F, true},
	{" foo", "foo", F, false},
	/* comments and blank lines */
	{"# foo", "# foo", F, false},
	{"# foo\nfoo", "foo", F, true},
	{"\n\n   \nfoo\n", "foo", F, true},
	{"#*.log", "a.log", F, false},
	/* '!' re-includes; the last matching rule wins */
	{"*.log\n!keep.log", "keep.log", F, false},
	{"*.log\n!keep.log", "a.log", F, true},
	{"!keep.log\n*.log", "keep.log", F, true},
	{"*.log\n!keep.log\nkeep.log", "keep.log", F, true},
	{"!foo", "foo", F, false},
	/* trailing '/': directories only */
	{"build/", "build", D, true},
	{"build/", "build", F, false},
	{"build/", "build/x", F, true},
	{"build/", "a/build", D, true},
	{"build/", "a/build/x/y", F, true},
	{"/build/", "a/build", D, false},
	{"/build/", "build", D, true},
	{"a/b/", "a/b", D, true},
	{"a/b/", "a/b", F, false},
	/* a leading or middle '/' anchors at the base */
	{"/foo", "foo", F, true},
	{"/foo", "a/foo", F, false},
	{"a/b", "a/b", F, true},
	{"a/b", "x/a/b", F, false},
	{"a/b", "a/b/c", F, true},
	{"doc/*.txt", "doc/a.txt", F, true},
	{"doc/*.txt", "doc/x/a.txt", F, false},
	/* '**' */
	{"**/foo", "foo", F, true},
	{"**/foo", "a/foo", F, true},
	{"**/foo", "a/b/foo", F, true},
	{"**/foo", "a/foox", F, false},
	{"**/foo/bar", "foo/bar", F, true},
	{"**/foo/bar", "x/y/foo/bar", F, true},
	{"**/foo/bar", "foo/x/bar", F, false},
	{"a/**", "a", D, false},
	{"a/**", "a/x", F, true},
	{"a/**", "a/x/y", F, true},
	{"a/**", "b/a/x", F, false},
	{"a/**/b", "a/b", F, true},
	{"a/**/b", "a/x/b", F, true},
	{"a/**/b", "a/x/y/b", F, true},
	{"a/**/b", "a/x/y/bc", F, false},
	{"a/**/b", "b", F, false},
	{"a/**/b", "ab", F, false},
	{"a/**/b/*.c", "a/b/x.c", F, true},
	{"a/**/b/*.c", "a/q/r/b/x.c", F, true},
	{"a/**/b/*.c", "a/q/r/b/s/x.c", F, false},
	{"a/**/**/b", "a/b", F, true},
	{"a/**/**/b", "a/x/y/z/b", F, true},
	{"**", "anything", F, true},
	{"**", "a/b", F, true},
	{"/**/x", "x", F, true},
	{"/**/x", "a/b/x", F, true},
	{"**/*.o", "a/b/c.o", F, true},
	{"**/*.o", "a/b/c.c", F, false},
	{"**/build/", "x/build", D, true},
	{"**/build/", "x/build", F, false},
	/* '**' that is not a whole component is just '*' */
	{"a**b", "axxb", F, true},
	{"a**b", "x/axb", F, true},
	{"/a**b", "a/b", F, false},
	{"/x/a**", "x/a/b", F, true}, /* through ancestor x/a */
	{"/x/a**", "x/ab", F, true},
	{"**a", "xa", F, true},
	{"/a**/b", "a/x/b", F, false},
	{"/a**/b", "ax/b", F, true},
	{"/a/**b", "a/x/b", F, false},
	{"/a/**b", "a/xb", F, true},
	{"/**a", "x/a", F, false},
	/* Backtracking must stay cheap: these fail fast. */
	{"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", F, false},
	{"**/a/**/a/**/a/**/a/**/a/**/b",
	 "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/c", F, false},
	{"/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa/aaaaaaaaaaaaaaaaaaaaaab", F, false},
	/* no re-include below an ignored directory */
	{"build/\n!build/keep.txt", "build/keep.txt", F, true},
	{"build\n!build/keep.txt", "build/keep.txt", F, true},
	{"build/*\n!build/keep.txt", "build/keep.txt", F, false},
	{"build/*\n!build/keep.txt", "build/other.txt", F, true},
	{"/*\n!/keep/", "keep", D, false},
	{"/*\n!/keep/", "keep/x", F, false},
	{"/*\n!/keep/", "other/x", F, true},
	/* CRLF line ends */
	{"*.b\r\n*.c\r\n", "x.b", F, true},
	{"*.b\r\n*.c\r\n", "x.c", F, true},
	/* bad lines are skipped, the rest still count */
	{"[oops\n*.b", "x.b", F, true},
	{"[oops\n*.b", "[oops", F, false},
	{"trailing\\\n*.b", "x.b", F, true},
	{"!\n/\n*.b", "x.b", F, true},
	/* case matters */
	{"README", "readme", F, false},
};

static void test_table(void **state)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct ignore *ig = ignore_new();
		bool got;

		ignore_set_file(ig, "", r->rules, strlen(r->rules));
		got = ignore_match(ig, r->path, r->is_dir);
		if (got != r->want) {
			print_error("row %zu: rules \"%s\" path \"%s\"%s: got "
				    "%d want %d\n",
				    i, r->rules, r->path, r->is_dir ? "/" : "",
				    got, r->want);
			bad++;
		}
		ignore_free(ig);
	}
	assert_int_equal(bad, 0);
}

static void test_defaults(void **state)
{
	static const struct {
		const char *path;
		bool want;
	} cases[] = {
		{".notes.txt.swp", true},
		{"dir/.notes.txt.swp", true},
		{".notes.txt.swo", true},
		{".notes.txt.swx", true},
		{".notes.txt.swpx", true},
		{".notes.txt.swn", true},
		{".a.swa", true},
		{".a.swq", false},
		{"a.swp", true},
		{"a.swo", false},
		{"4913", true},
		{"dir/4913", true},
		{"49134", false},
		{"#notes.txt#", true},
		{"#notes.txt", false},
		{".#notes.txt", true},
		{"notes.txt~", true},
		{"~notes.txt", false},
		{"~$report.docx", true},
		{".~lock.report.odt#", true},
		{".~lock.report.odt", false},
		{"big.iso.part", true},
		{"big.part.iso", false},
		{"f.crdownload", true},
		{".DS_Store", true},
		{"a/.DS_Store", true},
		{"Thumbs.db", true},
		{"thumbs.db", false},
		{"notes.txt", false},
		{"swp", false},
		{"", false},
	};
	struct ignore *ig = ignore_new();
	int bad = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = ignore_match(ig, cases[i].path, false);

		if (got != cases[i].want) {
			print_error("default: \"%s\": got %d want %d\n",
				    cases[i].path, got, cases[i].want);
			bad++;
		}
	}
	assert_int_equal(bad, 0);

	/* A directory named like a backup file is ignored with its tree. */
	assert_true(ignore_match(ig, "old~/a.txt", false));
	/* The user can take a default back. */
	assert_int_equal(ignore_add_pattern(ig, "", "!*.part"), 0);
	assert_false(ignore_match(ig, "big.iso.part", false));
	assert_true(ignore_match(ig, "a.swp", false));
	ignore_free(ig);
}

static void test_defaults_list(void **state)
{
	static const char *const want[] = {
		".*.sw[a-px]",	/* vim swap and its probe */
		".*.sw[a-p]x",	/* vim probe beside a swap file */
		"*.swp",	/* vim swap elsewhere */
		"4913",		/* vim probe */
		"\\#*#",	/* emacs auto-save */
		".#*",		/* emacs lock */
		"*~",		/* backups */
		"~$*",		/* Office owner file */
		".~lock.*#",	/* LibreOffice lock */
		"*.part",	/* partial download */
		"*.crdownload", /* Chromium download */
		".DS_Store",	/* Finder */
		"Thumbs.db",	/* Explorer thumbnails */
	};
	size_t n = 0;

	while (ignore_defaults[n])
		n++;
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++)
		assert_string_equal(ignore_defaults[i], want[i]);
}

static void test_add_pattern(void **state)
{
	struct ignore *ig = ignore_new();

	assert_int_equal(ignore_add_pattern(ig, "", "*.x"), 0);
	assert_true(ignore_match(ig, "a.x", false));
	assert_true(ignore_match(ig, "d/a.x", false));
	assert_int_equal(ignore_add_pattern(ig, "", "!a.x"), 0);
	assert_false(ignore_match(ig, "a.x", false));
	assert_true(ignore_match(ig, "b.x", false));

	/* anchored at a base directory */
	assert_int_equal(ignore_add_pattern(ig, "docs", "*.pdf"), 0);
	assert_int_equal(ignore_add_pattern(ig, "docs", "/top.txt"), 0);
	assert_true(ignore_match(ig, "docs/a.pdf", false));
	assert_true(ignore_match(ig, "docs/x/a.pdf", false));
	assert_false(ignore_match(ig, "a.pdf", false));
	assert_false(ignore_match(ig, "docsx/a.pdf", false));
	assert_false(ignore_match(ig, "docs", true));
	assert_true(ignore_match(ig, "docs/top.txt", false));
	assert_false(ignore_match(ig, "docs/x/top.txt", false));
	assert_false(ignore_match(ig, "top.txt", false));

	/* lines that are no pattern */
	assert_int_equal(ignore_add_pattern(ig, "", "[abc"), -EINVAL);
	assert_int_equal(ignore_add_pattern(ig, "", "[]"), -EINVAL);
	assert_int_equal(ignore_add_pattern(ig, "", "[a-"), -EINVAL);
	assert_int_equal(ignore_add_pattern(ig, "", "foo\\"), -EINVAL);
	assert_int_equal(ignore_add_pattern(ig, "", "!"), -EINVAL);
	assert_int_equal(ignore_add_pattern(ig, "", "/"), -EINVAL);
	assert_int_equal(ignore_add_pattern(ig, "", "!/"), -EINVAL);
	/* no-ops, not errors */
	assert_int_equal(ignore_add_pattern(ig, "", ""), 0);
	assert_int_equal(ignore_add_pattern(ig, "", "   "), 0);
	assert_int_equal(ignore_add_pattern(ig, "", "# comment"), 0);
	/* nothing of the above landed */
	assert_false(ignore_match(ig, "abc", false));
	assert_false(ignore_match(ig, "foo", false));
	assert_false(ignore_match(ig, "# comment", false));
	ignore_free(ig);
}

static void test_nested_file(void **state)
{
	struct ignore *ig = ignore_new();
	const char *text = "*.tmp\n/local\n";

	ignore_set_file(ig, "sub", text, strlen(text));
	assert_true(ignore_match(ig, "sub/a.tmp", false));
	assert_true(ignore_match(ig, "sub/x/a.tmp", false));
	assert_false(ignore_match(ig, "a.tmp", false));
	assert_false(ignore_match(ig, "subx/a.tmp", false));
	assert_false(ignore_match(ig, "su/a.tmp", false));
	assert_true(ignore_match(ig, "sub/local", false));
	assert_false(ignore_match(ig, "sub/x/local", false));
	assert_false(ignore_match(ig, "local", false));
	assert_false(ignore_match(ig, "sub", true));

	/* Deeper bases, and a base written with slashes around it. */
	ignore_set_file(ig, "/sub/deep/", "x", 1);
	assert_true(ignore_match(ig, "sub/deep/x", false));
	assert_false(ignore_match(ig, "sub/x", false));
	ignore_free(ig);
}

/* A deeper .wkfsignore wins over a shallower one, whatever the order in
 * which they were read. */
static void test_nested_precedence(void **state)
{
	for (int order = 0; order < 2; order++) {
		struct ignore *ig = ignore_new();
		const char *root = "*.dat\n";
		const char *sub = "!keep.dat\n";
		const char *deep = "keep.dat\n";

		if (order == 0) {
			ignore_set_file(ig, "", root, strlen(root));
			ignore_set_file(ig, "a", sub, strlen(sub));
			ignore_set_file(ig, "a/b", deep, strlen(deep));
		} else {
			ignore_set_file(ig, "a/b", deep, strlen(deep));
			ignore_set_file(ig, "a", sub, strlen(sub));
			ignore_set_file(ig, "", root, strlen(root));
		}
		assert_true(ignore_match(ig, "keep.dat", false));
		assert_false(ignore_match(ig, "a/keep.dat", false));
		assert_false(ignore_match(ig, "a/x/keep.dat", false));
		assert_true(ignore_match(ig, "a/other.dat", false));
		assert_true(ignore_match(ig, "a/b/keep.dat", false));
		assert_true(ignore_match(ig, "a/b/c/keep.dat", false));
		ignore_free(ig);
	}
}

/* .wkfsignore files come after config.ini patterns, which come after the
 * built-in defaults. */
static void test_source_order(void **state)
{
	struct ignore *ig = ignore_new();
	const char *text = "*.log\n";

	assert_int_equal(ignore_add_pattern(ig, "", "!x.log"), 0);
	assert_int_equal(ignore_add_pattern(ig, "", "!x.swp"), 0);
	ignore_set_file(ig, "", text, strlen(text));
	assert_true(ignore_match(ig, "x.log", false));
	assert_false(ignore_match(ig, "x.swp", false));
	assert_true(ignore_match(ig, "y.swp", false));
	/* A pattern added after a file was read still goes before it. */
	assert_int_equal(ignore_add_pattern(ig, "", "!y.log"), 0);
	assert_true(ignore_match(ig, "y.log", false));
	ignore_free(ig);
}

static void test_set_file_replaces(void **state)
{
	struct ignore *ig = ignore_new();

	ignore_set_file(ig, "sub", "*.a\n", 4);
	assert_true(ignore_match(ig, "sub/x.a", false));
	ignore_set_file(ig, "sub", "*.b\n", 4);
	assert_false(ignore_match(ig, "sub/x.a", false));
	assert_true(ignore_match(ig, "sub/x.b", false));

	/* Only len bytes count: no NUL needed, none read past. */
	ignore_set_file(ig, "sub", "*.c\n*.d", 4);
	assert_true(ignore_match(ig, "sub/x.c", false));
	assert_false(ignore_match(ig, "sub/x.d", false));
	assert_false(ignore_match(ig, "sub/x.b", false));
	ignore_set_file(ig, "sub", "*.c\n*.d", 7);
	assert_true(ignore_match(ig, "sub/x.d", false));

	/* A line with a NUL byte is a bad line. */
	ignore_set_file(ig, "sub", "*.e\0x\n*.f", 9);
	assert_false(ignore_match(ig, "sub/x.e", false));
	assert_true(ignore_match(ig, "sub/x.f", false));

	/* An empty file has no rules. */
	ignore_set_file(ig, "sub", "", 0);
	assert_false(ignore_match(ig, "sub/x.f", false));
	ignore_free(ig);
}

static void test_remove_file(void **state)
{
	struct ignore *ig = ignore_new();

	ignore_set_file(ig, "", "*.r\n", 4);
	ignore_set_file(ig, "sub", "*.s\n", 4);
	assert_true(ignore_match(ig, "sub/x.s", false));
	assert_true(ignore_match(ig, "sub/x.r", false));
	ignore_remove_file(ig, "sub");
	assert_false(ignore_match(ig, "sub/x.s", false));
	assert_true(ignore_match(ig, "sub/x.r", false));
	/* Forgetting a file that was never read changes nothing. */
	ignore_remove_file(ig, "nowhere");
	ignore_remove_file(ig, "sub");
	assert_true(ignore_match(ig, "x.r", false));
	ignore_remove_file(ig, "");
	assert_false(ignore_match(ig, "x.r", false));
	/* Defaults and added patterns are no file: they stay. */
	assert_int_equal(ignore_add_pattern(ig, "", "*.q"), 0);
	ignore_remove_file(ig, "");
	assert_true(ignore_match(ig, "x.q", false));
	assert_true(ignore_match(ig, "x.swp", false));
	ignore_free(ig);
}

static void test_leaf_vs_ancestors(void **state)
{
	struct ignore *ig = ignore_new();
	const char *text = "build/\n!build/keep.txt\ncache\n";

	ignore_set_file(ig, "", text, strlen(text));
	/* Own rules only: the re-include is the last rule that matches. */
	assert_false(ignore_match_leaf(ig, "build/keep.txt", false));
	assert_true(ignore_match(ig, "build/keep.txt", false));
	assert_false(ignore_match_leaf(ig, "build/other.txt", false));
	assert_true(ignore_match(ig, "build/other.txt", false));
	assert_true(ignore_match_leaf(ig, "build", true));
	assert_false(ignore_match_leaf(ig, "build", false));
	assert_true(ignore_match_leaf(ig, "a/cache", false));
	assert_false(ignore_match_leaf(ig, "a/cache/x", false));
	assert_true(ignore_match(ig, "a/cache/x", false));
	assert_false(ignore_match_leaf(ig, "", true));
	assert_false(ignore_match(ig, "", true));
	ignore_free(ig);
}

static void test_free_null(void **state)
{
	ignore_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_defaults_list),
		cmocka_unit_test(test_add_pattern),
		cmocka_unit_test(test_nested_file),
		cmocka_unit_test(test_nested_precedence),
		cmocka_unit_test(test_source_order),
		cmocka_unit_test(test_set_file_replaces),
		cmocka_unit_test(test_remove_file),
		cmocka_unit_test(test_leaf_vs_ancestors),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
