/*
 * config.c - DIR/.wkfs/config.ini (see config.h for the keys).
 *
 * inih cuts the file into "[section]" and "key = value"; everything else is
 * ours: a table says which keys each section has, a validator per key says
 * which values are good, and the first problem becomes "FILE:LINE: ...".
 *
 * We drive inih with ini_parse_stream() and our own line reader rather than
 * ini_parse_file(), because the reader lets us
 *   - know the line of every handler call (inih itself only reports the line
 *     of its first error, and its handler gets no line number),
 *   - see the header of a section that holds no keys, to reject it too,
 *   - strip leading whitespace, so that an indented "key = value" is not
 *     folded into the value above it as a multi-line continuation,
 *   - reject a line too long for inih's buffer instead of letting inih read
 *     the rest of it as a line of its own.
 *
 * config_write() checks every value with the same validators and refuses
 * what inih could not read back, so what it writes parses to the same
 * struct.  Not thread-safe, and nothing here needs to be.
 */
#include "config.h"

#include "ignore.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_PATH		".wkfs/config.ini"
#define CONFIG_DEFAULT_BRANCH	"wk/oplog"
#define CONFIG_DEFAULT_INTERVAL 30
#define CONFIG_INTERVAL_MAX	86400 /* a day */
#define CONFIG_DEVICE_NAME_MAX	64    /* bytes; it goes into file names */
#define CONFIG_LINE_MAX		(INI_MAX_LINE - 1)

enum config_key {
	KEY_NAME,
	KEY_IGNORE,
	KEY_URL,
	KEY_TOKEN,
	KEY_BRANCH,
	KEY_INTERVAL,
	KEY_WORLD_WRITABLE,
	KEY_INSECURE,
	KEY_CA,
	KEY_COUNT,
};

struct config_parser;

struct config_key_def {
	const char *section;
	const char *name;
	bool repeats;
	/* NULL when value is good, else what was expected. */
	const char *(*check)(struct config_parser *p, const char *value);
};

struct config_section_def {
	const char *name;
	const char *keys; /* for "expected ..." */
};

struct config_parser {
	FILE *f;
	struct wk_config *c;
	struct ignore *patterns; /* scratch set to validate ignore patterns */
	unsigned line;		 /* lines read so far */
	unsigned err_line;	 /* line of our first error, 0: none */
	char msg[192];
	bool seen[KEY_COUNT];
};

static const struct config_section_def config_sections[] = {
	{"device", "name"},
	{"sync", "ignore or world-writable"},
	{"remote", "url, token, branch, interval, insecure or ca"},
};

#define N_SECTIONS (sizeof(config_sections) / sizeof(config_sections[0]))

/* ---- validators ---- */

static bool has_control(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return true;
	return false;
}

static const char *check_name(struct config_parser *p, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > CONFIG_DEVICE_NAME_MAX || strchr(v, '/') ||
	    has_control(v))
		return "a short name (1 to 64 bytes, no '/' or control "
		       "characters)";
	return NULL;
}

static const char *check_ignore(struct config_parser *p, const char *v)
{
	if (v[0] == '#')
		return "a gitignore pattern ('#' starts a comment: write '\\#' "
		       "for a literal '#')";
	if (!p->patterns)
		p->patterns = ignore_new();
	if (v[0] == '\0' || has_control(v) ||
	    ignore_add_pattern(p->patterns, "", v) < 0)
		return "a gitignore pattern";
	return NULL;
}

static const char *check_url(struct config_parser *p, const char *v)
{
	static const char expected[] =
		"ws://HOST[:PORT]/PATH, wss://HOST[:PORT]/PATH or "
		"git:PATH-or-URL";
	const char *rest = NULL;

	if (strncmp(v, "ws://", 5) == 0)
		rest = v + 5;
	else if (strncmp(v, "wss://", 6) == 0)
		rest = v + 6;
	if (rest) {
		/* A host, and no spaces anywhere. */
		if (*rest == '\0' || *rest == '/' || *rest == ':' ||
		    strchr(rest, ' '))
			return expected;
	} else if (strncmp(v, "git:", 4) == 0) {
		if (v[4] == '\0')
			return expected;
	} else {
		return expected;
	}
	return has_control(v) ? expected : NULL;
}

static const char *check_token(struct config_parser *p, const char *v)
{
	if (v[0] == '\0' || has_control(v))
		return "a token (no control characters)";
	return NULL;
}

/* The rules of git check-ref-format, for a branch name. */
static bool branch_valid(const char *v)
{
	const char *c;

	if (v[0] == '\0' || v[0] == '/' || v[0] == '-' || v[0] == '.' ||
	    strcmp(v, "@") == 0 || has_control(v))
		return false;
	if (strpbrk(v, " ~^:?*[\\") || strstr(v, "..") || strstr(v, "@{") ||
	    strstr(v, "//") || strstr(v, "/."))
		return false;
	c = v + strlen(v) - 1;
	if (*c == '/' || *c == '.')
		return false;
	for (c = v; (c = strstr(c, ".lock")); c++)
		if (c[5] == '\0' || c[5] == '/')
			return false;
	return true;
}

static const char *check_branch(struct config_parser *p, const char *v)
{
	return branch_valid(v)
		       ? NULL
		       : "a git branch name such as " CONFIG_DEFAULT_BRANCH;
}

/* Parses a decimal interval in seconds; 0 when v is not one. */
static unsigned interval_parse(const char *v)
{
	unsigned long n = 0;

	if (*v == '\0')
		return 0;
	for (; *v; v++) {
		if (!isdigit((unsigned char)*v))
			return 0;
		n = n * 10 + (unsigned)(*v - '0');
		if (n > CONFIG_INTERVAL_MAX)
			return 0;
	}
	return (unsigned)n;
}

static const char *check_interval(struct config_parser *p, const char *v)
{
	return interval_parse(v) ? NULL
				 : "a whole number of seconds from 1 to 86400";
}

static const char *check_yes_no(struct config_parser *p, const char *v)
{
	return strcmp(v, "yes") == 0 || strcmp(v, "no") == 0 ? NULL
							     : "yes or no";
}

static const char *check_ca(struct config_parser *p, const char *v)
{
	return v[0] == '/' && !has_control(v)
		       ? NULL
		       : "the absolute path of a CA certificate file (PEM)";
}

static const struct config_key_def config_keys[KEY_COUNT] = {
	[KEY_NAME] = {"device", "name", false, check_name},
	[KEY_IGNORE] = {"sync", "ignore", true, check_ignore},
	[KEY_URL] = {"remote", "url", false, check_url},
	[KEY_TOKEN] = {"remote", "token", false, check_token},
	[KEY_BRANCH] = {"remote", "branch", false, check_branch},
	[KEY_INTERVAL] = {"remote", "interval", false, check_interval},
	[KEY_WORLD_WRITABLE] = {"sync", "world-writable", false, check_yes_no},
	[KEY_INSECURE] = {"remote", "insecure", false, check_yes_no},
	[KEY_CA] = {"remote", "ca", false, check_ca},
};

/* ---- parsing ---- */

static void parser_fail(struct config_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Keeps the first error only: later ones are often its echo. */
static void parser_fail(struct config_parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line)
		return;
	p->err_line = p->line;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
}

static const struct config_section_def *section_find(const char *name,
						     size_t len)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (strlen(config_sections[i].name) == len &&
		    memcmp(config_sections[i].name, name, len) == 0)
			return &config_sections[i];
	return NULL;
}

/*
 * inih's line source: fgets() plus the checks listed at the top.  A line
 * that is too long or holds a NUL byte is replaced by an empty one, so inih
 * keeps counting lines as we do.
 */
static char *parser_read_line(char *str, int num, void *stream)
{
	struct config_parser *p = stream;
	size_t len, skip = 0;
	char *end;

	if (!fgets(str, num, p->f))
		return NULL;
	p->line++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		int ch = getc(p->f);

		if (ch != '\n' && ch != EOF) {
			while (ch != '\n' && ch != EOF)
				ch = getc(p->f);
			parser_fail(p, "line too long (at most %d bytes)",
				    num - 1);
			str[0] = '\0';
		}
	} else if ((len == 0 || str[len - 1] != '\n') && !feof(p->f)) {
		/* fgets() stops only at a newline, at the end or when full. */
		parser_fail(p, "unexpected NUL byte");
		str[0] = '\0';
	}
	if (p->line == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0)
		skip = 3;
	while (str[skip] && isspace((unsigned char)str[skip]))
		skip++;
	memmove(str, str + skip, strlen(str + skip) + 1);
	if (str[0] == '[' && (end = strchr(str, ']')) &&
	    !section_find(str + 1, end - str - 1))
		parser_fail(p,
			    "unknown section [%.*s] (expected [device], "
			    "[sync] or [remote])",
			    (int)(end - str - 1), str + 1);
	return str;
}

static void config_store(struct wk_config *c, enum config_key k, const char *v)
{
	switch (k) {
	case KEY_NAME:
		free(c->device_name);
		c->device_name = xstrdup(v);
		break;
	case KEY_IGNORE:
		c->ignore = xrealloc(c->ignore,
				     (c->n_ignore + 1) * sizeof(*c->ignore));
		c->ignore[c->n_ignore++] = xstrdup(v);
		break;
	case KEY_URL:
		free(c->remote_url);
		c->remote_url = xstrdup(v);
		break;
	case KEY_TOKEN:
		free(c->remote_token);
		c->remote_token = xstrdup(v);
		break;
	case KEY_BRANCH:
		free(c->remote_branch);
		c->remote_branch = xstrdup(v);
		break;
	case KEY_INTERVAL:
		c->remote_interval_s = interval_parse(v);
		break;
	case KEY_WORLD_WRITABLE:
		c->world_writable = strcmp(v, "yes") == 0;
		break;
	case KEY_INSECURE:
		c->remote_insecure = strcmp(v, "yes") == 0;
		break;
	case KEY_CA:
		free(c->remote_ca);
		c->remote_ca = xstrdup(v);
		break;
	case KEY_COUNT:
		break;
	}
}

/* inih's handler: one "key = value" of section. 1: good, 0: error. */
static int parser_handle(void *user, const char *section, const char *name,
			 const char *value)
{
	struct config_parser *p = user;
	const struct config_section_def *sec;
	const char *expected;
	int k;

	if (section[0] == '\0') {
		parser_fail(p,
			    "key '%s' outside any section (expected [device], "
			    "[sync] or [remote] first)",
			    name);
		return 0;
	}
	sec = section_find(section, strlen(section));
	if (!sec) {
		/* parser_read_line() has already said so. */
		parser_fail(p, "unknown section [%s]", section);
		return 0;
	}
	for (k = 0; k < KEY_COUNT; k++)
		if (strcmp(config_keys[k].section, section) == 0 &&
		    strcmp(config_keys[k].name, name) == 0)
			break;
	if (k == KEY_COUNT) {
		parser_fail(p, "unknown key '%s' in [%s] (expected %s)", name,
			    section, sec->keys);
		return 0;
	}
	if (p->seen[k] && !config_keys[k].repeats) {
		parser_fail(p, "duplicate key '%s' in [%s] (give it once)",
			    name, section);
		return 0;
	}
	p->seen[k] = true;
	expected = config_keys[k].check(p, value);
	if (expected) {
		parser_fail(p, "bad value for '%s' in [%s]: expected %s", name,
			    section, expected);
		return 0;
	}
	config_store(p->c, k, value);
	return 1;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void config_init(struct wk_config *c)
{
	memset(c, 0, sizeof(*c));
	c->remote_branch = xstrdup(CONFIG_DEFAULT_BRANCH);
	c->remote_interval_s = CONFIG_DEFAULT_INTERVAL;
}

void config_release(struct wk_config *c)
{
	free(c->device_name);
	for (size_t i = 0; i < c->n_ignore; i++)
		free(c->ignore[i]);
	free(c->ignore);
	free(c->remote_url);
	free(c->remote_token);
	free(c->remote_branch);
	free(c->remote_ca);
	memset(c, 0, sizeof(*c));
}

/* Back to defaults, dropping what c held (from config_init or a parse). */
static void config_reset(struct wk_config *c)
{
	config_release(c);
	config_init(c);
}

int config_parse(FILE *f, const char *fname, struct wk_config *c, char *err,
		 size_t errlen)
{
	struct config_parser p = {.f = f, .c = c};
	int rc;

	config_reset(c);
	errf(err, errlen, "%s", "");
	rc = ini_parse_stream(parser_read_line, &p, parser_handle, &p);
	ignore_free(p.patterns);
	if (rc == -2) {
		errf(err, errlen, "%s: out of memory", fname);
		rc = -ENOMEM;
		goto out_reset;
	}
	if (ferror(f)) {
		errf(err, errlen, "%s: read error", fname);
		rc = -EIO;
		goto out_reset;
	}
	/* inih's rc is the first line it or our handler rejected; a line
	 * before ours is one inih could not parse at all. */
	if (rc > 0 && (p.err_line == 0 || (unsigned)rc < p.err_line)) {
		errf(err, errlen,
		     "%s:%d: expected '[section]', 'key = value' or a comment",
		     fname, rc);
		rc = -EINVAL;
		goto out_reset;
	}
	if (p.err_line) {
		errf(err, errlen, "%s:%u: %s", fname, p.err_line, p.msg);
		rc = -EINVAL;
		goto out_reset;
	}
	return 0;

out_reset:
	config_reset(c);
	return rc;
}

int config_load_at(int dirfd, struct wk_config *c, char *err, size_t errlen)
{
	struct stat st;
	FILE *f;
	int fd, rc;

	/* O_NONBLOCK: a FIFO must not hang us; regular files ignore it. */
	fd = openat(dirfd, CONFIG_PATH,
		    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT) {
			config_reset(c);
			errf(err, errlen, "%s", "");
			return 0;
		}
		goto out_fail;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out_close_fd;
	}
	f = fdopen(fd, "r");
	if (!f) {
		rc = -errno;
		goto out_close_fd;
	}
	rc = config_parse(f, CONFIG_PATH, c, err, errlen);
	fclose(f);
	return rc;

out_close_fd:
	close(fd);
out_fail:
	config_reset(c);
	errf(err, errlen, "%s: %s", CONFIG_PATH, strerror(-rc));
	return rc;
}

/* ---- the transport rule ---- */

/* True when host (as a ws:// URL names it, brackets stripped) is this
 * machine: localhost, 127.0.0.0/8, ::1 or ::ffff:127.x.y.z.  Numbers and
 * that one name only: nothing is resolved. */
static bool host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

int remote_url_check(const char *url, bool insecure, char *err, size_t errlen)
{
	char host[256];
	const char *p, *end;
	size_t n;

	errf(err, errlen, "%s", "");
	if (strncmp(url, "ws://", 5) != 0 || insecure)
		return 0;
	p = url + 5;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = p + strcspn(p, ":/");
	}
	n = end ? (size_t)(end - p) : 0;
	if (n > 0 && n < sizeof(host)) {
		memcpy(host, p, n);
		host[n] = '\0';
		if (host_is_loopback(host))
			return 0;
	} else {
		snprintf(host, sizeof(host), "%s", "?");
	}
	errf(err, errlen,
	     "%s: refusing ws:// to %s, another machine: the folder's token "
	     "and every change would cross the network unencrypted; use "
	     "wss:// (see wkfs-relay(8)), or allow it with 'insecure = yes' "
	     "under [remote] in .wkfs/config.ini (wkfs init --insecure)",
	     url, host);
	return -EPERM;
}

/* ---- writing ---- */

/* True when inih reads "key = v" back as v. */
static bool value_storable(const char *key, const char *v)
{
	if (isspace((unsigned char)v[0]))
		return false;
	for (const char *s = v; *s; s++) {
		if (*s == '\n' || *s == '\r')
			return false;
		/* inih takes whitespace and ';' as an inline comment. */
		if (isspace((unsigned char)s[0]) &&
		    (s[1] == ';' || s[1] == '\0'))
			return false;
	}
	/* The shortest line that holds it, "key=v": inih reads that too. */
	return strlen(key) + strlen("=") + strlen(v) <= CONFIG_LINE_MAX;
}

static bool value_ok(struct config_parser *p, enum config_key k, const char *v)
{
	return value_storable(config_keys[k].name, v) &&
	       !config_keys[k].check(p, v);
}

static bool config_writable(const struct wk_config *c)
{
	struct config_parser p = {0};
	bool ok = true;

	if (c->device_name && !value_ok(&p, KEY_NAME, c->device_name))
		ok = false;
	for (size_t i = 0; ok && i < c->n_ignore; i++)
		if (!value_ok(&p, KEY_IGNORE, c->ignore[i]))
			ok = false;
	if (ok && c->remote_url && !value_ok(&p, KEY_URL, c->remote_url))
		ok = false;
	if (ok && c->remote_token && !value_ok(&p, KEY_TOKEN, c->remote_token))
		ok = false;
	if (ok && c->remote_branch &&
	    !value_ok(&p, KEY_BRANCH, c->remote_branch))
		ok = false;
	if (ok && c->remote_ca && !value_ok(&p, KEY_CA, c->remote_ca))
		ok = false;
	if (c->remote_interval_s == 0 ||
	    c->remote_interval_s > CONFIG_INTERVAL_MAX)
		ok = false;
	ignore_free(p.patterns);
	return ok;
}

static void write_key(FILE *f, const char *key, const char *v)
{
	/* A value that fits a line only without the spaces (it was read
	 * from one) goes without them. */
	bool roomy = strlen(key) + strlen(" = ") + strlen(v) <= CONFIG_LINE_MAX;
	const char *sep = roomy ? " = " : "=";

	/* "key = ;x" would read back as an empty value, "key =;x" as ";x". */
	if (roomy && v[0] == ';')
		sep = " =";
	fprintf(f, "%s%s%s\n", key, sep, v);
}

int config_write(FILE *f, const struct wk_config *c)
{
	if (!config_writable(c))
		return -EINVAL;
	fputs("# wkfs settings for this folder.\n\n[device]\n"
	      "# Short name used in conflict file names "
	      "(default: the host name).\n",
	      f);
	if (c->device_name)
		write_key(f, "name", c->device_name);
	else
		fputs("# name = laptop\n", f);
	fputs("\n[sync]\n"
	      "# Paths never synced, in gitignore syntax; repeat the key "
	      "for more.\n",
	      f);
	for (size_t i = 0; i < c->n_ignore; i++)
		write_key(f, "ignore", c->ignore[i]);
	if (c->n_ignore == 0)
		fputs("# ignore = *.log\n", f);
	if (c->world_writable)
		write_key(f, "world-writable", "yes");
	fputs("\n[remote]\n"
	      "# ws://HOST:PORT/PATH or wss://... (a relay, with its token), "
	      "or git:PATH-or-URL.\n",
	      f);
	if (c->remote_url)
		write_key(f, "url", c->remote_url);
	else
		fputs("# url = wss://relay.example.org:7890/notes\n", f);
	if (c->remote_token)
		write_key(f, "token", c->remote_token);
	if (c->remote_insecure)
		write_key(f, "insecure", "yes");
	if (c->remote_ca)
		write_key(f, "ca", c->remote_ca);
	fputs("# For git remotes: the branch, and seconds between fetches.\n",
	      f);
	if (c->remote_branch)
		write_key(f, "branch", c->remote_branch);
	fprintf(f, "interval = %u\n", c->remote_interval_s);
	if (fflush(f) != 0)
		return -errno;
	return ferror(f) ? -EIO : 0;
}
