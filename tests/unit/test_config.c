/*
 * test_config.c - config.ini: every key, the defaults, the exact error
 * message (with its line) for each kind of mistake, config_write() round
 * trips, and config_load_at() on a real directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* Parses len bytes of text as "config.ini". */
static int parse_mem(const char *text, size_t len, struct wk_config *c,
		     char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)text, len, "r");
	int rc;

	assert_non_null(f);
	rc = config_parse(f, "config.ini", c, err, errlen);
	fclose(f);
	return rc;
}

static int parse_str(const char *text, struct wk_config *c, char *err,
		     size_t errlen)
{
	/* fmemopen() rejects a size of 0 on older glibc; "" reads the same. */
	return parse_mem(text[0] ? text : "\n", text[0] ? strlen(text) : 1, c,
			 err, errlen);
}

static void assert_defaults(const struct wk_config *c)
{
	assert_null(c->device_name);
	assert_null(c->ignore);
	assert_int_equal(c->n_ignore, 0);
	assert_null(c->remote_url);
	assert_null(c->remote_token);
	assert_false(c->remote_insecure);
	assert_null(c->remote_ca);
	assert_false(c->world_writable);
	assert_string_equal(c->remote_branch, "wk/oplog");
	assert_int_equal(c->remote_interval_s, 30);
}

static void assert_config_equal(const struct wk_config *a,
				const struct wk_config *b)
{
#define STR_EQ(x, y)                                   \
	do {                                           \
		if (!(x) || !(y))                      \
			assert_ptr_equal((x), (y));    \
		else                                   \
			assert_string_equal((x), (y)); \
	} while (0)
	STR_EQ(a->device_name, b->device_name);
	assert_int_equal(a->n_ignore, b->n_ignore);
	for (size_t i = 0; i < a->n_ignore; i++)
		assert_string_equal(a->ignore[i], b->ignore[i]);
	STR_EQ(a->remote_url, b->remote_url);
	STR_EQ(a->remote_token, b->remote_token);
	STR_EQ(a->remote_branch, b->remote_branch);
	assert_int_equal(a->remote_interval_s, b->remote_interval_s);
#undef STR_EQ
}

static void test_defaults(void **state)
{
	struct wk_config c;

	config_init(&c);
	assert_defaults(&c);
	config_release(&c);
	/* Released twice, or released after a zero fill: both harmless. */
	config_release(&c);
}

static void test_empty_file(void **state)
{
	struct wk_config c;
	char err[256] = "junk";

	config_init(&c);
	assert_int_equal(parse_str("", &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_defaults(&c);
	assert_int_equal(
		parse_str("; only\n# comments\n\n", &c, err, sizeof(err)), 0);
	assert_defaults(&c);
	config_release(&c);
}

static void test_every_key(void **state)
{
	static const char text[] = "; wkfs\n"
				   "[device]\n"
				   "name = laptop\n"
				   "\n"
				   "[sync]\n"
				   "ignore = *.log\n"
				   "ignore = /build/\n"
				   "# a comment between\n"
				   "ignore = !keep.log\n"
				   "[remote]\n"
				   "url = wss://relay.example.org:7890/notes\n"
				   "token = s3cr3t-T0ken\n"
				   "branch = sync/main\n"
				   "interval = 120\n"
				   "insecure = no\n"
				   "ca = /etc/wkfs/ca.pem\n"
				   "[sync]\n"
				   "ignore = \\#*\n"
				   "world-writable = yes\n";
	struct wk_config c;
	char err[256];

	config_init(&c);
	assert_int_equal(parse_str(text, &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.device_name, "laptop");
	assert_int_equal(c.n_ignore, 4);
	assert_string_equal(c.ignore[0], "*.log");
	assert_string_equal(c.ignore[1], "/build/");
	assert_string_equal(c.ignore[2], "!keep.log");
	assert_string_equal(c.ignore[3], "\\#*");
	assert_string_equal(c.remote_url, "wss://relay.example.org:7890/notes");
	assert_string_equal(c.remote_token, "s3cr3t-T0ken");
	assert_string_equal(c.remote_branch, "sync/main");
	assert_int_equal(c.remote_interval_s, 120);
	assert_false(c.remote_insecure);
	assert_string_equal(c.remote_ca, "/etc/wkfs/ca.pem");
	assert_true(c.world_writable);
	config_release(&c);
}

/* Spelling that inih allows and that must not change the meaning. */
static void test_layout(void **state)
{
	static const char text[] = "\xEF\xBB\xBF[device]\r\n"
				   "  name   =   my laptop  \r\n"
				   "[remote]\n"
				   "\turl=git:/srv/notes.git\n"
				   "    interval: 5 ; every five seconds\n"
				   "token =;starts-with-semicolon\n";
	struct wk_config c;
	char err[256];

	config_init(&c);
	assert_int_equal(parse_str(text, &c, err, sizeof(err)), 0);
	assert_string_equal(c.device_name, "my laptop");
	assert_string_equal(c.remote_url, "git:/srv/notes.git");
	assert_int_equal(c.remote_interval_s, 5);
	assert_string_equal(c.remote_token, ";starts-with-semicolon");
	config_release(&c);
}

static void test_good_values(void **state)
{
	static const char *const good[] = {
		"[remote]\nurl = ws://localhost:7890/notes\n",
		"[remote]\nurl = ws://h\n",
		"[remote]\nurl = wss://[::1]:7890/n\n",
		"[remote]\nurl = git:https://example.org/notes.git\n",
		"[remote]\nurl = git:/home/me/My Notes.git\n",
		"[remote]\ninterval = 1\n",
		"[remote]\ninterval = 86400\n",
		"[remote]\ninterval = 007\n",
		"[remote]\nbranch = main\n",
		"[remote]\nbranch = wk/op-log_2\n",
		"[device]\nname = x\n",
		"[device]\nname = "
		"12345678901234567890123456789012345678901234567890123456789012"
		"34"
		"\n",
		"[device]\nname = caf\xc3\xa9 #2\n",
		"[sync]\nignore = a b\n",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct wk_config c;
		int rc;

		config_init(&c);
		rc = parse_str(good[i], &c, err, sizeof(err));
		if (rc != 0)
			fail_msg("\"%s\": %d %s", good[i], rc, err);
		config_release(&c);
	}
}

struct bad_case {
	const char *text;
	const char *msg;
};

#define NAME_EXPECT \
	"expected a short name (1 to 64 bytes, no '/' or control characters)"
#define INTERVAL_EXPECT "expected a whole number of seconds from 1 to 86400"
#define URL_EXPECT                                                   \
	"expected ws://HOST[:PORT]/PATH, wss://HOST[:PORT]/PATH or " \
	"git:PATH-or-URL"
#define BRANCH_EXPECT "expected a git branch name such as wk/oplog"
#define IGNORE_EXPECT "expected a gitignore pattern"
#define SYNTAX	      "expected '[section]', 'key = value' or a comment"

#define BAD_INTERVAL(v)                                              \
	{                                                            \
		"[remote]\ninterval =" v "\n",                       \
			"config.ini:2: bad value for 'interval' in " \
			"[remote]: " INTERVAL_EXPECT                 \
	}

static const struct bad_case bad_cases[] = {
	/* structure */
	{"[device]\nname = a\n[colour]\n",
	 "config.ini:3: unknown section [colour] (expected [device], [sync] or "
	 "[remote])"},
	{"\xEF\xBB\xBF[nope]\n",
	 "config.ini:1: unknown section [nope] (expected [device], [sync] or "
	 "[remote])"},
	{"[Device]\nname = a\n",
	 "config.ini:1: unknown section [Device] (expected [device], [sync] or "
	 "[remote])"},
	{"[sync]\n\ncolour = red\n",
	 "config.ini:3: unknown key 'colour' in [sync] (expected ignore or "
	 "world-writable)"},
	{"[device]\nhost = x\n",
	 "config.ini:2: unknown key 'host' in [device] (expected name)"},
	{"[remote]\nuri = ws://h/\n",
	 "config.ini:2: unknown key 'uri' in [remote] (expected url, token, "
	 "branch, interval, insecure or ca)"},
	{"[remote]\nURL = ws://h/\n",
	 "config.ini:2: unknown key 'URL' in [remote] (expected url, token, "
	 "branch, interval, insecure or ca)"},
	{"# top\nname = x\n",
	 "config.ini:2: key 'name' outside any section (expected [device], "
	 "[sync] or [remote] first)"},
	{"[device]\nname = a\nname = b\n",
	 "config.ini:3: duplicate key 'name' in [device] (give it once)"},
	{"[remote]\ninterval = 5\n[sync]\n[remote]\ninterval = 6\n",
	 "config.ini:5: duplicate key 'interval' in [remote] (give it once)"},
	/* inih's own syntax errors */
	{"[device]\nname laptop\n", "config.ini:2: " SYNTAX},
	{"[device\nname = x\n", "config.ini:1: " SYNTAX},
	/* the first error wins, whoever found it */
	{"[device]\noops\nname =\n", "config.ini:2: " SYNTAX},
	{"[device]\nname =\noops\n",
	 "config.ini:2: bad value for 'name' in [device]: " NAME_EXPECT},
	/* [device] name */
	{"[device]\nname =\n",
	 "config.ini:2: bad value for 'name' in [device]: " NAME_EXPECT},
	{"[device]\nname = a/b\n",
	 "config.ini:2: bad value for 'name' in [device]: " NAME_EXPECT},
	{"[device]\nname = a\tb\n",
	 "config.ini:2: bad value for 'name' in [device]: " NAME_EXPECT},
	{"[device]\nname = a\x7f\n",
	 "config.ini:2: bad value for 'name' in [device]: " NAME_EXPECT},
	{"[device]\nname = "
	 "12345678901234567890123456789012345678901234567890123456789012345\n",
	 "config.ini:2: bad value for 'name' in [device]: " NAME_EXPECT},
	/* [remote] interval */
	BAD_INTERVAL(" 0"),
	BAD_INTERVAL(" -5"),
	BAD_INTERVAL(" +5"),
	BAD_INTERVAL(" 30s"),
	BAD_INTERVAL(" 1.5"),
	BAD_INTERVAL(""),
	BAD_INTERVAL(" 86401"),
	BAD_INTERVAL(" 99999999999999999999999"),
	/* [remote] url */
	{"[remote]\nurl = http://h/x\n",
	 "config.ini:2: bad value for 'url' in [remote]: " URL_EXPECT},
	{"[remote]\nurl = ws://\n",
	 "config.ini:2: bad value for 'url' in [remote]: " URL_EXPECT},
	{"[remote]\nurl = wss:///x\n",
	 "config.ini:2: bad value for 'url' in [remote]: " URL_EXPECT},
	{"[remote]\nurl = ws://h x/\n",
	 "config.ini:2: bad value for 'url' in [remote]: " URL_EXPECT},
	{"[remote]\nurl = git:\n",
	 "config.ini:2: bad value for 'url' in [remote]: " URL_EXPECT},
	{"[remote]\nurl =\n",
	 "config.ini:2: bad value for 'url' in [remote]: " URL_EXPECT},
	/* yes or no, and the CA file */
	{"[remote]\ninsecure = true\n",
	 "config.ini:2: bad value for 'insecure' in [remote]: expected yes or "
	 "no"},
	{"[sync]\nworld-writable = 1\n",
	 "config.ini:2: bad value for 'world-writable' in [sync]: expected "
	 "yes or no"},
	{"[remote]\nca = ca.pem\n",
	 "config.ini:2: bad value for 'ca' in [remote]: expected the absolute "
	 "path of a CA certificate file (PEM)"},
	/* [remote] token */
	{"[remote]\ntoken =\n",
	 "config.ini:2: bad value for 'token' in [remote]: expected a token "
	 "(no control characters)"},
	{"[remote]\ntoken = a\x01z\n",
	 "config.ini:2: bad value for 'token' in [remote]: expected a token "
	 "(no control characters)"},
	/* [remote] branch */
	{"[remote]\nbranch =\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = a..b\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = -x\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = x.lock\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = a.lock/b\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = a b\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = /x\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = x/\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = a//b\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = a/.b\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = a~1\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = a@{1}\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	{"[remote]\nbranch = x.\n",
	 "config.ini:2: bad value for 'branch' in [remote]: " BRANCH_EXPECT},
	/* [sync] ignore */
	{"[sync]\nignore =\n",
	 "config.ini:2: bad value for 'ignore' in [sync]: " IGNORE_EXPECT},
	{"[sync]\nignore = *.log\nignore = [abc\n",
	 "config.ini:3: bad value for 'ignore' in [sync]: " IGNORE_EXPECT},
	{"[sync]\nignore = foo\\\n",
	 "config.ini:2: bad value for 'ignore' in [sync]: " IGNORE_EXPECT},
	{"[sync]\nignore = !\n",
	 "config.ini:2: bad value for 'ignore' in [sync]: " IGNORE_EXPECT},
	{"[sync]\nignore = #x\n",
	 "config.ini:2: bad value for 'ignore' in [sync]: expected a gitignore "
	 "pattern ('#' starts a comment: write '\\#' for a literal '#')"},
};

static void test_errors(void **state)
{
	char err[512];
	int bad = 0;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *b = &bad_cases[i];
		struct wk_config c;
		int rc;

		config_init(&c);
		strcpy(err, "unset");
		rc = parse_str(b->text, &c, err, sizeof(err));
		if (rc != -EINVAL || strcmp(err, b->msg) != 0) {
			print_error("case %zu: rc %d\n  got:  %s\n  want: %s\n",
				    i, rc, err, b->msg);
			bad++;
		}
		/* On error only the defaults are left. */
		assert_defaults(&c);
		config_release(&c);
	}
	assert_int_equal(bad, 0);
}

/* An error drops what the struct held before, and what was parsed. */
static void test_error_resets(void **state)
{
	struct wk_config c;
	char err[256];

	config_init(&c);
	assert_int_equal(parse_str("[device]\nname = a\n[sync]\nignore = x\n",
				   &c, err, sizeof(err)),
			 0);
	assert_string_equal(c.device_name, "a");
	assert_int_equal(parse_str("[sync]\nignore = y\n[remote]\n"
				   "interval = 7\nbranch = ..\n",
				   &c, err, sizeof(err)),
			 -EINVAL);
	assert_defaults(&c);
	/* A good parse replaces everything too. */
	assert_int_equal(
		parse_str("[device]\nname = a\n", &c, err, sizeof(err)), 0);
	assert_int_equal(
		parse_str("[remote]\ninterval = 9\n", &c, err, sizeof(err)), 0);
	assert_null(c.device_name);
	assert_int_equal(c.remote_interval_s, 9);
	config_release(&c);

	/* A struct that was only zeroed is fine too. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(
		parse_str("[device]\nname = z\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.device_name, "z");
	assert_string_equal(c.remote_branch, "wk/oplog");
	config_release(&c);
}

/* An error message is cut to the buffer, and no buffer is fine. */
static void test_error_buffer(void **state)
{
	struct wk_config c;
	char err[12];

	config_init(&c);
	memset(err, 'X', sizeof(err));
	assert_int_equal(parse_str("[x]\n", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "config.ini:");
	assert_int_equal(parse_str("[x]\n", &c, NULL, 0), -EINVAL);
	assert_int_equal(parse_str("[x]\n", &c, err, 0), -EINVAL);
	config_release(&c);
}

static void test_long_lines(void **state)
{
	char text[512], err[256], want[256];
	struct wk_config c;
	size_t n;

	config_init(&c);
	/* "token = " and 191 bytes: 199 in all, the longest line there is. */
	n = (size_t)snprintf(text, sizeof(text), "[remote]\ntoken = ");
	memset(text + n, 't', 191);
	strcpy(text + n + 191, "\nbranch = b\n");
	assert_int_equal(parse_str(text, &c, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.remote_token), 191);
	assert_string_equal(c.remote_branch, "b");
	/* The same without the final newline. */
	text[n + 191] = '\0';
	assert_int_equal(parse_str(text, &c, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.remote_token), 191);

	/* One byte more is an error on that line, and the rest of it is not
	 * read as a line of its own. */
	n = (size_t)snprintf(text, sizeof(text), "[remote]\n#\ntoken = ");
	memset(text + n, 't', 192);
	strcpy(text + n + 192, "\nbranch = b\n");
	assert_int_equal(parse_str(text, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "config.ini:3: line too long (at most 199 "
				 "bytes)");

	/* A long comment, then a mistake: the long line is reported. */
	text[0] = '#';
	memset(text + 1, 'c', 300);
	strcpy(text + 301, "\n[nope]\n");
	assert_int_equal(parse_str(text, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "config.ini:1: line too long (at most 199 "
				 "bytes)");

	/* Line numbers after a long line stay right. */
	snprintf(want, sizeof(want), "%s",
		 "config.ini:4: unknown section [nope] (expected [device], "
		 "[sync] or [remote])");
	strcpy(text, "[sync]\nignore = a\n; ");
	n = strlen(text);
	memset(text + n, 'c', 190);
	strcpy(text + n + 190, "\n[nope]\n");
	assert_int_equal(parse_str(text, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	config_release(&c);
}

static void test_nul_byte(void **state)
{
	static const char text[] = "[device]\nname = a\0b\n";
	struct wk_config c;
	char err[256];

	config_init(&c);
	assert_int_equal(
		parse_mem(text, sizeof(text) - 1, &c, err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err, "config.ini:2: unexpected NUL byte");
	assert_defaults(&c);
	config_release(&c);
}

/* Writes c with config_write() into a string the caller frees. */
static char *write_str(const struct wk_config *c, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*rc = config_write(f, c);
	fclose(f);
	return buf;
}

static void roundtrip(const struct wk_config *c)
{
	struct wk_config back;
	char err[256];
	char *text;
	int rc;

	text = write_str(c, &rc);
	assert_int_equal(rc, 0);
	config_init(&back);
	rc = parse_str(text, &back, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s\nin:\n%s", err, text);
	assert_config_equal(c, &back);
	config_release(&back);
	free(text);
}

static void test_write_roundtrip(void **state)
{
	static const char *const parsed[] = {
		"",
		"[device]\nname = laptop\n",
		"[sync]\nignore = *.log\nignore = !keep.log\nignore = "
		"/a/**/b/\n",
		"[remote]\nurl = ws://h:1/x\ntoken = t\nbranch = b\n"
		"interval = 86400\n",
		"[remote]\ntoken =;x ; y\n",
		"[sync]\nignore =;semi\n[device]\nname =;\n",
		"[sync]\nignore = \\#x\nignore = [#;]x\n",
		"[remote]\nurl = git:/home/me/My Notes.git\n",
	};
	struct wk_config c;
	char err[256];

	for (size_t i = 0; i < sizeof(parsed) / sizeof(parsed[0]); i++) {
		config_init(&c);
		assert_int_equal(parse_str(parsed[i], &c, err, sizeof(err)), 0);
		roundtrip(&c);
		config_release(&c);
	}

	/* Built by hand, as `wkfs init` would. */
	config_init(&c);
	roundtrip(&c);
	c.device_name = strdup("desk");
	c.ignore = calloc(2, sizeof(*c.ignore));
	c.ignore[0] = strdup("*.o");
	c.ignore[1] = strdup("build/");
	c.n_ignore = 2;
	c.remote_url = strdup("wss://relay.example.org/notes");
	c.remote_token = strdup("abc");
	c.remote_interval_s = 45;
	roundtrip(&c);
	/* No branch at all reads back as the default. */
	free(c.remote_branch);
	c.remote_branch = NULL;
	{
		int rc;
		char *text = write_str(&c, &rc);
		struct wk_config back;

		assert_int_equal(rc, 0);
		config_init(&back);
		assert_int_equal(parse_str(text, &back, err, sizeof(err)), 0);
		assert_string_equal(back.remote_branch, "wk/oplog");
		config_release(&back);
		free(text);
	}
	config_release(&c);
}

/*
 * A value read from a line as long as there is, written without a space
 * after '=', goes back without spaces too: with them the line would be
 * too long to read back (found by tests/fuzz/fuzz_config).
 */
static void test_write_longest_line(void **state)
{
	char text[512], err[256], *out;
	struct wk_config c;
	size_t n;
	int rc;

	config_init(&c);
	n = (size_t)snprintf(text, sizeof(text), "[sync]\nignore =");
	memset(text + n, 'x', 199 - strlen("ignore ="));
	strcpy(text + n + 199 - strlen("ignore ="), "\n");
	assert_int_equal(parse_str(text, &c, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.ignore[0]), 199 - strlen("ignore ="));
	out = write_str(&c, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "\nignore=xxx"));
	free(out);
	roundtrip(&c);
	config_release(&c);
}

static void test_write_text(void **state)
{
	static const char want[] =
		"# wkfs settings for this folder.\n"
		"\n"
		"[device]\n"
		"# Short name used in conflict file names (default: the host "
		"name).\n"
		"name = laptop\n"
		"\n"
		"[sync]\n"
		"# Paths never synced, in gitignore syntax; repeat the key for "
		"more.\n"
		"ignore = *.log\n"
		"ignore =;x\n" /* "ignore = ;x" would read back as "" */
		"\n"
		"[remote]\n"
		"# ws://HOST:PORT/PATH or wss://... (a relay, with its token), "
		"or "
		"git:PATH-or-URL.\n"
		"url = ws://h:7890/n\n"
		"token = t\n"
		"# For git remotes: the branch, and seconds between fetches.\n"
		"branch = wk/oplog\n"
		"interval = 30\n";
	struct wk_config c;
	char err[256];
	char *text;
	int rc;

	config_init(&c);
	assert_int_equal(parse_str("[device]\nname = laptop\n[sync]\n"
				   "ignore = *.log\nignore =;x\n[remote]\n"
				   "url = ws://h:7890/n\ntoken = t\n",
				   &c, err, sizeof(err)),
			 0);
	text = write_str(&c, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(text, want);
	free(text);
	config_release(&c);

	/* Defaults: commented examples, nothing set. */
	config_init(&c);
	text = write_str(&c, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "\n# name = laptop\n"));
	assert_non_null(strstr(text, "\n# ignore = *.log\n"));
	assert_non_null(strstr(text, "\n# url = "));
	assert_null(strstr(text, "\nname ="));
	assert_null(strstr(text, "\nurl ="));
	assert_null(strstr(text, "\ntoken"));
	free(text);
	config_release(&c);
}

/* What inih could not read back, or config_parse() would refuse. */
static void test_write_refuses(void **state)
{
	struct wk_config c;
	char *text;
	int rc;

#define REFUSE(field, value)                   \
	do {                                   \
		config_init(&c);               \
		free(c.field);                 \
		c.field = strdup(value);       \
		text = write_str(&c, &rc);     \
		assert_int_equal(rc, -EINVAL); \
		assert_string_equal(text, ""); \
		free(text);                    \
		config_release(&c);            \
	} while (0)
	REFUSE(device_name, "a/b");
	REFUSE(device_name, "");
	REFUSE(device_name, " lead");
	REFUSE(device_name, "trail ");
	REFUSE(device_name, "two\nlines");
	REFUSE(remote_token, "a ;comment");
	REFUSE(remote_token, "a\t;comment");
	REFUSE(remote_url, "ftp://x");
	REFUSE(remote_branch, "a..b");
#undef REFUSE

	config_init(&c);
	c.remote_interval_s = 0;
	text = write_str(&c, &rc);
	assert_int_equal(rc, -EINVAL);
	free(text);
	c.remote_interval_s = 86401;
	text = write_str(&c, &rc);
	assert_int_equal(rc, -EINVAL);
	free(text);
	c.remote_interval_s = 30;
	c.ignore = calloc(1, sizeof(*c.ignore));
	c.ignore[0] = strdup("[unclosed");
	c.n_ignore = 1;
	text = write_str(&c, &rc);
	assert_int_equal(rc, -EINVAL);
	free(text);
	/* A line inih's buffer cannot hold, even as "ignore=...". */
	free(c.ignore[0]);
	c.ignore[0] = calloc(1, 200);
	memset(c.ignore[0], 'x', 199 - strlen("ignore=") + 1);
	text = write_str(&c, &rc);
	assert_int_equal(rc, -EINVAL);
	free(text);
	c.ignore[0][199 - strlen("ignore=")] = '\0';
	text = write_str(&c, &rc);
	assert_int_equal(rc, 0);
	free(text);
	roundtrip(&c);
	config_release(&c);
}

/* ---- config_load_at() on a real directory ---- */

struct tmpdir {
	char path[64];
	int fd;
};

static int tmpdir_setup(void **state)
{
	struct tmpdir *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	strcpy(t->path, "/tmp/wkfs-test-config.XXXXXX");
	if (!mkdtemp(t->path))
		return -1;
	t->fd = open(t->path, O_RDONLY | O_DIRECTORY);
	if (t->fd < 0)
		return -1;
	*state = t;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	return remove(path);
}

static int tmpdir_teardown(void **state)
{
	struct tmpdir *t = *state;
	int rc;

	close(t->fd);
	rc = nftw(t->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return rc;
}

static void write_file(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_load_missing(void **state)
{
	struct tmpdir *t = *state;
	struct wk_config c;
	char err[256] = "junk";

	config_init(&c);
	/* No .wkfs at all. */
	assert_int_equal(config_load_at(t->fd, &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_defaults(&c);
	/* .wkfs without config.ini. */
	assert_int_equal(mkdirat(t->fd, ".wkfs", 0755), 0);
	assert_int_equal(config_load_at(t->fd, &c, err, sizeof(err)), 0);
	assert_defaults(&c);
	config_release(&c);
}

static void test_load_file(void **state)
{
	struct tmpdir *t = *state;
	struct wk_config c, back;
	char err[256];
	FILE *f;
	int fd;

	assert_int_equal(mkdirat(t->fd, ".wkfs", 0755), 0);
	write_file(t->fd, ".wkfs/config.ini",
		   "[device]\nname = desk\n[remote]\nurl = git:/srv/n.git\n"
		   "interval = 60\n");
	config_init(&c);
	assert_int_equal(config_load_at(t->fd, &c, err, sizeof(err)), 0);
	assert_string_equal(c.device_name, "desk");
	assert_string_equal(c.remote_url, "git:/srv/n.git");
	assert_int_equal(c.remote_interval_s, 60);

	/* Write it back through config_write() and load it again. */
	fd = openat(t->fd, ".wkfs/config.ini", O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(config_write(f, &c), 0);
	assert_int_equal(fclose(f), 0);
	config_init(&back);
	assert_int_equal(config_load_at(t->fd, &back, err, sizeof(err)), 0);
	assert_config_equal(&c, &back);
	config_release(&back);

	/* A bad file: the message names the path below DIR. */
	write_file(t->fd, ".wkfs/config.ini",
		   "[device]\nname = desk\n[remote]\ninterval = never\n");
	assert_int_equal(config_load_at(t->fd, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    ".wkfs/config.ini:4: bad value for 'interval' in "
			    "[remote]: expected a whole number of seconds from "
			    "1 to 86400");
	assert_defaults(&c);
	config_release(&c);
}

static void test_load_unreadable(void **state)
{
	struct tmpdir *t = *state;
	struct wk_config c;
	char err[256];

	config_init(&c);
	c.device_name = strdup("stale");

	/* .wkfs is a file. */
	write_file(t->fd, ".wkfs", "");
	assert_int_equal(config_load_at(t->fd, &c, err, sizeof(err)), -ENOTDIR);
	assert_string_equal(err, ".wkfs/config.ini: Not a directory");
	assert_defaults(&c);
	assert_int_equal(unlinkat(t->fd, ".wkfs", 0), 0);

	/* config.ini is a directory. */
	assert_int_equal(mkdirat(t->fd, ".wkfs", 0755), 0);
	assert_int_equal(mkdirat(t->fd, ".wkfs/config.ini", 0755), 0);
	assert_int_equal(config_load_at(t->fd, &c, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, ".wkfs/config.ini: Is a directory");
	assert_int_equal(unlinkat(t->fd, ".wkfs/config.ini", AT_REMOVEDIR), 0);

	/* config.ini is a FIFO: refused at once, not waited on. */
	assert_int_equal(mkfifoat(t->fd, ".wkfs/config.ini", 0644), 0);
	assert_int_equal(config_load_at(t->fd, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, ".wkfs/config.ini: Invalid argument");
	assert_defaults(&c);
	config_release(&c);
}

/* ws:// only to this machine unless insecure; decided from the URL. */
static void test_remote_url_check(void **state)
{
	static const char *const ok[] = {
		"ws://127.0.0.1:7890/n",     "ws://127.8.9.10/n",
		"ws://localhost:7890/n",     "ws://LocalHost/n",
		"ws://[::1]:7890/n",	     "ws://[::ffff:127.0.0.1]:1/n",
		"wss://relay.example.org/n", "wss://10.1.2.3:7890/n",
		"git:/srv/notes.git",	     "git:ssh://h/r.git",
	};
	static const char *const refused[] = {
		"ws://10.1.2.3:7890/n",
		"ws://relay.example.org/n",
		"ws://[2001:db8::1]:7890/n",
		"ws://128.0.0.1/n",
		"ws://localhost.example.org/n",
		"ws://127.1/n",
		"ws://0.0.0.0/n",
		"ws://[::]:1/n",
	};
	char err[1024];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (remote_url_check(ok[i], false, err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", ok[i], err);
		assert_string_equal(err, "");
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (remote_url_check(refused[i], false, err, sizeof(err)) !=
		    -EPERM)
			fail_msg("%s allowed", refused[i]);
		assert_non_null(strstr(err, refused[i]));
		assert_non_null(strstr(err, "unencrypted"));
		assert_non_null(strstr(err, "insecure = yes"));
		assert_null(strchr(err, '\n'));
		assert_int_equal(
			remote_url_check(refused[i], true, err, sizeof(err)),
			0);
	}
	assert_int_equal(
		remote_url_check("ws://10.1.2.3/n", false, err, sizeof(err)),
		-EPERM);
	assert_string_equal(err,
			    "ws://10.1.2.3/n: refusing ws:// to 10.1.2.3, "
			    "another machine: the folder's token and every "
			    "change would cross the network unencrypted; use "
			    "wss:// (see wkfs-relay(8)), or allow it with "
			    "'insecure = yes' under [remote] in "
			    ".wkfs/config.ini (wkfs init --insecure)");
}

/* insecure, ca and world-writable are written when set, and read back. */
static void test_write_security_keys(void **state)
{
	struct wk_config c, back;
	char err[256];
	char *text;
	int rc;

	config_init(&c);
	c.remote_url = strdup("ws://10.0.0.1:7890/n");
	c.remote_insecure = true;
	c.remote_ca = strdup("/etc/ca.pem");
	c.world_writable = true;
	text = write_str(&c, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "\ninsecure = yes\n"));
	assert_non_null(strstr(text, "\nca = /etc/ca.pem\n"));
	assert_non_null(strstr(text, "\nworld-writable = yes\n"));
	config_init(&back);
	assert_int_equal(parse_str(text, &back, err, sizeof(err)), 0);
	assert_true(back.remote_insecure);
	assert_true(back.world_writable);
	assert_string_equal(back.remote_ca, "/etc/ca.pem");
	free(text);
	config_release(&back);
	/* a relative CA path is not written */
	free(c.remote_ca);
	c.remote_ca = strdup("ca.pem");
	text = write_str(&c, &rc);
	assert_int_equal(rc, -EINVAL);
	free(text);
	config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_resets),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_write_roundtrip),
		cmocka_unit_test(test_write_longest_line),
		cmocka_unit_test(test_write_text),
		cmocka_unit_test(test_write_refuses),
		cmocka_unit_test(test_remote_url_check),
		cmocka_unit_test(test_write_security_keys),
		cmocka_unit_test_setup_teardown(test_load_missing, tmpdir_setup,
						tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_load_file, tmpdir_setup,
						tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_load_unreadable,
						tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
