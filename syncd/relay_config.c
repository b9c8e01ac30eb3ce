/*
 * relay_config.c - reading wkfs-relay's config file (relay_config.h).
 *
 * inih cuts the file into sections and "key = value"; the rest is ours.
 * It is driven through ini_parse_stream() with a line reader of our own
 * so that each handler call knows its line (inih only reports the line
 * of its own first error), an indented key is not taken for the
 * continuation of the value above it, and a line too long for inih's
 * buffer is refused instead of being read as two.  The values are
 * checked by the flags' own parsers (relay_parse_addr(),
 * relay_limit_set()), so the file accepts exactly what the flags do.
 * Not here: applying the values, which is relay_main.c's.
 */
#include "relay_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

struct parser {
	FILE *f;
	struct relay_config *c;
	const char *name;
	unsigned line;	   /* lines read so far */
	unsigned err_line; /* the line of our first problem, 0: none */
	char *err;
	size_t errlen;
};

static void problem(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The first problem wins: later ones may follow from it. */
static void problem(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err_line)
		return;
	p->err_line = p->line;
	n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->line);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	char *s;
	size_t len;

	if (!fgets(str, num, p->f))
		return NULL;
	p->line++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(p->f)) {
		problem(p, "line longer than %d bytes: shorten it", num - 2);
		return NULL;
	}
	s = str + strspn(str, " \t");
	if (s != str)
		memmove(str, s, strlen(s) + 1);
	return str;
}

/* *slot = value, once. */
static void set_string(struct parser *p, const char *section, const char *key,
		       char **slot, const char *value)
{
	if (*slot) {
		problem(p, "[%s] %s is given twice: keep one", section, key);
		return;
	}
	if (!value[0]) {
		problem(p, "[%s] %s is empty: give a value or remove the line",
			section, key);
		return;
	}
	*slot = xstrdup(value);
}

static void set_addr(struct parser *p, const char *key, char **slot,
		     const char *value)
{
	char scratch[128];
	const char *host;
	int port = 0;

	snprintf(scratch, sizeof(scratch), "%s", value);
	if (strlen(value) >= sizeof(scratch) ||
	    relay_parse_addr(scratch, &host, &port)) {
		problem(p,
			"bad [relay] %s '%s': use ADDR:PORT or [IPV6]:PORT,"
			" a numeric address",
			key, value);
		return;
	}
	set_string(p, "relay", key, slot, value);
}

static void relay_key(struct parser *p, const char *key, const char *value)
{
	struct relay_config *c = p->c;

	if (!strcmp(key, "bind") || !strcmp(key, "metrics"))
		set_addr(p, key, key[0] == 'b' ? &c->bind : &c->metrics, value);
	else if (!strcmp(key, "admin-token-file"))
		set_string(p, "relay", key, &c->admin_token_file, value);
	else if (!strcmp(key, "status-page") &&
		 (!strcmp(value, "yes") || !strcmp(value, "no")))
		c->status_page = value[0] == 'y';
	else if (!strcmp(key, "status-page"))
		problem(p, "bad [relay] status-page '%s': use yes or no",
			value);
	else
		problem(p,
			"no key '%s' in [relay]: the keys are bind, metrics,"
			" admin-token-file and status-page",
			key);
}

static int handle(void *user, const char *section, const char *key,
		  const char *value)
{
	struct parser *p = user;
	char why[512];

	if (p->err_line)
		return 0;
	if (!strcmp(section, "relay")) {
		relay_key(p, key, value);
	} else if (!strcmp(section, "tls")) {
		if (!strcmp(key, "cert") || !strcmp(key, "key"))
			set_string(p, "tls", key,
				   key[0] == 'c' ? &p->c->tls_cert
						 : &p->c->tls_key,
				   value);
		else
			problem(p,
				"no key '%s' in [tls]: the keys are cert and"
				" key",
				key);
	} else if (!strcmp(section, "limits")) {
		if (relay_limit_set(&p->c->lim, key, value, why, sizeof(why)))
			problem(p, "[limits] %s", why);
		else if (!strcmp(key, "connections"))
			p->c->set_connections = true;
	} else {
		problem(p,
			"no section [%s]: the sections are [relay], [tls] and"
			" [limits]",
			section);
	}
	return !p->err_line;
}

void relay_config_init(struct relay_config *c)
{
	*c = (struct relay_config){0};
	relay_limits_init(&c->lim);
}

void relay_config_release(struct relay_config *c)
{
	free(c->path);
	free(c->bind);
	free(c->metrics);
	free(c->admin_token_file);
	free(c->tls_cert);
	free(c->tls_key);
	relay_config_init(c);
}

int relay_config_parse(FILE *f, const char *name, struct relay_config *c,
		       char *err, size_t errlen)
{
	struct parser p = {
		.f = f, .c = c, .name = name, .err = err, .errlen = errlen};
	int rc = ini_parse_stream(read_line, &p, handle, &p);

	if (!p.err_line && rc > 0) {
		p.line = (unsigned)rc;
		problem(&p, "not a [section] or a key = value line: fix or"
			    " remove it");
	} else if (!p.err_line && rc) {
		snprintf(err, errlen, "%s: cannot read it", name);
		return -EIO;
	}
	if (!p.err_line && !c->tls_cert != !c->tls_key) {
		snprintf(err, errlen,
			 "%s: [tls] needs both cert and key: add the %s", name,
			 c->tls_cert ? "key" : "cert");
		return -EINVAL;
	}
	return p.err_line ? -EINVAL : 0;
}

int relay_config_load(const char *path, struct relay_config *c, char *err,
		      size_t errlen)
{
	FILE *f = fopen(path, "re");
	const char *files[3];
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "cannot read the config file %s: %s",
			 path, strerror(-rc));
		return rc;
	}
	rc = relay_config_parse(f, path, c, err, errlen);
	fclose(f);
	files[0] = c->admin_token_file;
	files[1] = c->tls_cert;
	files[2] = c->tls_key;
	for (size_t i = 0; !rc && i < 3; i++) {
		if (!files[i] || access(files[i], R_OK) == 0)
			continue;
		rc = -errno;
		snprintf(err, errlen,
			 "%s: cannot read %s: %s: fix the path or the file's"
			 " permissions",
			 path, files[i], strerror(-rc));
		if (rc == -ENOENT)
			rc = -EINVAL; /* ENOENT is the config's own */
	}
	if (!rc)
		c->path = xstrdup(path);
	return rc;
}

int relay_parse_addr(char *s, const char **host, int *port)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char *colon, *end;
	long v;

	if (s[0] == '[') {
		char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		*close = '\0';
		*host = s + 1;
		colon = close[1] ? close + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			return -EINVAL; /* bare IPv6: needs brackets */
		if (colon)
			*colon = '\0';
		*host = s;
	}
	if (inet_pton(strchr(*host, ':') ? AF_INET6 : AF_INET, *host, addr) !=
	    1)
		return -EINVAL;
	if (!colon)
		return 0;
	errno = 0;
	v = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || v < 0 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}
