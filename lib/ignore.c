/*
 * ignore.c - the gitignore-style rules that keep paths out of sync (see
 * ignore.h for the contract).
 *
 * A rule set is an ordered list of groups: the built-in defaults first, then
 * the patterns added one by one (config.ini), then one group per .wkfsignore,
 * shallow directories before deep ones.  The last rule that matches a path
 * decides, so matching walks groups and rules backwards and stops at the
 * first hit; a group whose base is not an ancestor of the path is skipped
 * whole.
 *
 * The glob matcher is our own and works on (pointer, length) text, so that
 * ignore_match() can test every ancestor of a path in place: nothing in the
 * match path allocates.  Plain names and "*.ext" patterns, the common cases,
 * skip the matcher entirely.  It is not a general glob library: matching is
 * case-sensitive and there are no POSIX "[:alpha:]" classes.
 */
#include "ignore.h"

#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A .wkfsignore line longer than this cannot be a sensible pattern. */
#define IGNORE_LINE_MAX 4096

const char *const ignore_defaults[] = {
	".*.sw[a-px]",	/* vim swap files .swp, .swo, ... and its .swx probe */
	".*.sw[a-p]x",	/* vim's probe beside a swap file: .name.swpx */
	"*.swp",	/* vim swap files kept in another directory */
	"4913",		/* vim's probe for a writable directory */
	"\\#*#",	/* emacs auto-save */
	".#*",		/* emacs lock link */
	"*~",		/* backups of emacs, vim and many more */
	"~$*",		/* Microsoft Office owner file */
	".~lock.*#",	/* LibreOffice lock file */
	"*.part",	/* partial downloads (Firefox, KDE) */
	"*.crdownload", /* partial downloads (Chromium) */
	".DS_Store",	/* macOS Finder state */
	"Thumbs.db",	/* Windows thumbnail cache */
	NULL,
};

enum {
	RULE_NEGATE = 1 << 0,	/* "!pattern": re-include */
	RULE_DIR_ONLY = 1 << 1, /* "pattern/": directories only */
	RULE_ANCHORED = 1 << 2, /* a '/' at the start or in the middle */
};

enum rule_kind {
	RULE_GLOB,    /* needs the matcher */
	RULE_LITERAL, /* no wildcard or escape: compare bytes */
	RULE_SUFFIX,  /* unanchored '*' and a plain tail, as in "*.log" */
};

struct ig_rule {
	char *pat;  /* without '!', the leading and the trailing '/' */
	size_t len; /* strlen(pat) */
	unsigned flags;
	enum rule_kind kind;
};

struct ig_group {
	char *base; /* directory the rules are anchored at: "" is the root */
	size_t baselen;
	unsigned depth; /* path components in base */
	bool from_file; /* a .wkfsignore (else defaults or added patterns) */
	struct ig_rule *rules;
	size_t n, alloc;
};

struct ignore {
	struct ig_group *groups; /* groups[0] holds the defaults */
	size_t n, alloc;
};

/* ---- the glob matcher ---- */

/*
 * Besides "match" and "no match", the matcher returns two verdicts that let
 * an enclosing star stop early, as Rich Salz's wildmat did: ABORT_ALL when
 * the text ran out (a star further out can only leave less text), and
 * ABORT_TO_GLOBSTAR when a '*' could not get past a '/' (only a "**" further
 * out can move to the next component).
 */
enum {
	WM_MATCH,
	WM_NOMATCH,
	WM_ABORT_ALL,
	WM_ABORT_TO_GLOBSTAR,
};

/*
 * Scans the bracket expression that starts just after a '['.  Returns the
 * closing ']' or NULL when there is none, and sets *hit when ch is in the
 * set.  A ']' right after the '[' or "[!" is a member, a backslash escapes
 * the next character, and "a-z" is a range unless the '-' comes last.
 */
static const char *class_scan(const char *p, unsigned char ch, bool *hit)
{
	bool negate = false;
	bool found = false;
	bool first = true;

	if (*p == '!' || *p == '^') {
		negate = true;
		p++;
	}
	for (; first || *p != ']'; first = false) {
		unsigned char lo, hi;

		if (*p == '\\')
			p++;
		if (*p == '\0')
			return NULL;
		lo = hi = (unsigned char)*p++;
		if (p[0] == '-' && p[1] != ']' && p[1] != '\0') {
			p++;
			if (*p == '\\')
				p++;
			if (*p == '\0')
				return NULL;
			hi = (unsigned char)*p++;
		}
		if (lo <= ch && ch <= hi)
			found = true;
		if (*p == '\0')
			return NULL;
	}
	*hit = found != negate;
	return p;
}

static int wildmatch(const char *pb, const char *p, const char *s,
		     const char *se);

/*
 * p is at a run of '*'.  A run of two or more that fills a whole path
 * component is a globstar: at the end it takes everything left, otherwise
 * "**" and the '/' after it take zero or more whole components.  Any other
 * run takes characters up to, never across, the next '/'.
 */
static int wildmatch_star(const char *pb, const char *p, const char *s,
			  const char *se)
{
	const char *q = p;
	bool globstar;
	int r;

	while (*q == '*')
		q++;
	globstar = q - p >= 2 && (p == pb || p[-1] == '/') &&
		   (*q == '\0' || *q == '/');
	if (!globstar) {
		if (*q == '\0')
			return memchr(s, '/', se - s) ? WM_ABORT_TO_GLOBSTAR
						      : WM_MATCH;
		for (;; s++) {
			r = wildmatch(pb, q, s, se);
			if (r != WM_NOMATCH)
				return r;
			if (s == se)
				return WM_ABORT_ALL;
			if (*s == '/')
				return WM_ABORT_TO_GLOBSTAR;
		}
	}
	if (*q == '\0')
		return WM_MATCH;
	q++;
	for (;;) {
		const char *slash;

		r = wildmatch(pb, q, s, se);
		if (r == WM_MATCH || r == WM_ABORT_ALL)
			return r;
		slash = memchr(s, '/', se - s);
		if (!slash)
			return WM_ABORT_ALL;
		s = slash + 1;
	}
}

/* Matches the validated pattern p (which began at pb) against s..se. */
static int wildmatch(const char *pb, const char *p, const char *s,
		     const char *se)
{
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		bool hit;

		if (c == '*')
			return wildmatch_star(pb, p, s, se);
		if (s == se)
			return WM_ABORT_ALL;
		switch (c) {
		case '?':
			if (*s == '/')
				return WM_NOMATCH;
			break;
		case '[':
			p = class_scan(p + 1, (unsigned char)*s, &hit);
			if (*s == '/' || !hit)
				return WM_NOMATCH;
			break;
		case '\\':
			c = (unsigned char)*++p;
			/* fall through */
		default:
			if ((unsigned char)*s != c)
				return WM_NOMATCH;
			break;
		}
		s++;
	}
	return s == se ? WM_MATCH : WM_NOMATCH;
}

/* ---- rules ---- */

/* True when the backslashes just before p (not before start) escape it. */
static bool is_escaped(const char *start, const char *p)
{
	size_t n = 0;

	while (p > start && p[-1] == '\\') {
		p--;
		n++;
	}
	return n % 2 == 1;
}

/* Every '\\' escapes something and every '[' is closed. */
static bool pattern_valid(const char *p)
{
	bool hit;

	for (; *p; p++) {
		if (*p == '\\') {
			if (*++p == '\0')
				return false;
		} else if (*p == '[') {
			p = class_scan(p + 1, 0, &hit);
			if (!p)
				return false;
		}
	}
	return true;
}

static enum rule_kind rule_kind_of(const char *pat, unsigned flags)
{
	const char *specials = "*?[\\";

	if (!strpbrk(pat, specials))
		return RULE_LITERAL;
	if (!(flags & RULE_ANCHORED) && pat[0] == '*' &&
	    !strpbrk(pat + 1, specials))
		return RULE_SUFFIX;
	return RULE_GLOB;
}

/*
 * Turns one line into a rule.  Returns 1 for a rule, 0 for a blank line or a
 * comment, -EINVAL for a line that is no pattern.
 */
static int rule_parse(const char *line, size_t len, struct ig_rule *r)
{
	unsigned flags = 0;

	if (len == 0 || line[0] == '#')
		return 0;
	if (memchr(line, '\0', len) || len > IGNORE_LINE_MAX)
		return -EINVAL;
	while (len > 0 && line[len - 1] == ' ' &&
	       !is_escaped(line, line + len - 1))
		len--;
	if (len == 0)
		return 0;
	if (line[0] == '!') {
		flags |= RULE_NEGATE;
		line++;
		len--;
	}
	while (len > 0 && line[len - 1] == '/') {
		flags |= RULE_DIR_ONLY;
		len--;
	}
	if (memchr(line, '/', len)) {
		flags |= RULE_ANCHORED;
		if (line[0] == '/') {
			line++;
			len--;
		}
	}
	if (len == 0)
		return -EINVAL;
	r->pat = xstrndup(line, len);
	if (!pattern_valid(r->pat)) {
		free(r->pat);
		return -EINVAL;
	}
	r->len = len;
	r->flags = flags;
	r->kind = rule_kind_of(r->pat, flags);
	return 1;
}

/* name..name+nlen is the last component of rel..rel+rlen. */
static bool rule_match(const struct ig_rule *r, const char *rel, size_t rlen,
		       const char *name, size_t nlen, bool is_dir)
{
	const char *s = name;
	size_t n = nlen;

	if ((r->flags & RULE_DIR_ONLY) && !is_dir)
		return false;
	if (r->flags & RULE_ANCHORED) {
		s = rel;
		n = rlen;
	}
	switch (r->kind) {
	case RULE_LITERAL:
		return n == r->len && memcmp(s, r->pat, n) == 0;
	case RULE_SUFFIX:
		return n >= r->len - 1 && memcmp(s + n - (r->len - 1),
						 r->pat + 1, r->len - 1) == 0;
	case RULE_GLOB:
		break;
	}
	return wildmatch(r->pat, r->pat, s, s + n) == WM_MATCH;
}

/* ---- groups ---- */

static void group_clear(struct ig_group *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->rules[i].pat);
	free(g->rules);
	g->rules = NULL;
	g->n = g->alloc = 0;
}

static void group_push(struct ig_group *g, const struct ig_rule *r)
{
	if (g->n == g->alloc) {
		g->alloc = g->alloc ? 2 * g->alloc : 8;
		g->rules = xrealloc(g->rules, g->alloc * sizeof(*g->rules));
	}
	g->rules[g->n++] = *r;
}

/* Opens a hole at index at and fills it with an empty group for base. */
static struct ig_group *group_insert(struct ignore *ig, size_t at,
				     const char *base, size_t baselen,
				     bool from_file)
{
	struct ig_group *g;

	if (ig->n == ig->alloc) {
		ig->alloc = ig->alloc ? 2 * ig->alloc : 8;
		ig->groups =
			xrealloc(ig->groups, ig->alloc * sizeof(*ig->groups));
	}
	memmove(ig->groups + at + 1, ig->groups + at,
		(ig->n - at) * sizeof(*ig->groups));
	ig->n++;
	g = &ig->groups[at];
	memset(g, 0, sizeof(*g));
	g->base = xstrndup(base, baselen);
	g->baselen = baselen;
	g->from_file = from_file;
	if (baselen > 0) {
		g->depth = 1;
		for (size_t i = 0; i < baselen; i++)
			g->depth += base[i] == '/';
	}
	return g;
}

static void group_delete(struct ignore *ig, size_t at)
{
	group_clear(&ig->groups[at]);
	free(ig->groups[at].base);
	memmove(ig->groups + at, ig->groups + at + 1,
		(ig->n - at - 1) * sizeof(*ig->groups));
	ig->n--;
}

/* Drops the slashes around base: "/notes/" and "notes" are the same. */
static const char *base_trim(const char *base, size_t *len)
{
	size_t n;

	while (*base == '/')
		base++;
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	*len = n;
	return base;
}

static size_t first_file_group(const struct ignore *ig)
{
	size_t i = 0;

	while (i < ig->n && !ig->groups[i].from_file)
		i++;
	return i;
}

static bool group_has_base(const struct ig_group *g, const char *base,
			   size_t len)
{
	return g->baselen == len && memcmp(g->base, base, len) == 0;
}

/* ---- the API ---- */

struct ignore *ignore_new(void)
{
	struct ignore *ig = xcalloc(1, sizeof(*ig));

	group_insert(ig, 0, "", 0, false);
	for (size_t i = 0; ignore_defaults[i]; i++) {
		struct ig_rule r;

		if (rule_parse(ignore_defaults[i], strlen(ignore_defaults[i]),
			       &r) == 1)
			group_push(&ig->groups[0], &r);
	}
	return ig;
}

void ignore_free(struct ignore *ig)
{
	if (!ig)
		return;
	while (ig->n > 0)
		group_delete(ig, ig->n - 1);
	free(ig->groups);
	free(ig);
}

int ignore_add_pattern(struct ignore *ig, const char *base, const char *pattern)
{
	struct ig_group *g;
	struct ig_rule r;
	size_t baselen, at;
	int rc;

	rc = rule_parse(pattern, strlen(pattern), &r);
	if (rc <= 0)
		return rc;
	base = base_trim(base, &baselen);
	/* Added patterns go after the defaults and the earlier additions but
	 * before every .wkfsignore. */
	at = first_file_group(ig);
	g = &ig->groups[at - 1];
	if (at == 1 || !group_has_base(g, base, baselen))
		g = group_insert(ig, at, base, baselen, false);
	group_push(g, &r);
	return 0;
}

void ignore_set_file(struct ignore *ig, const char *base, const char *text,
		     size_t len)
{
	const char *end = text + len;
	struct ig_group *g = NULL;
	size_t baselen, at;

	base = base_trim(base, &baselen);
	for (at = first_file_group(ig); at < ig->n; at++) {
		if (group_has_base(&ig->groups[at], base, baselen)) {
			g = &ig->groups[at];
			group_clear(g);
			break;
		}
	}
	if (!g) {
		g = group_insert(ig, ig->n, base, baselen, true);
		/* Keep the file groups ordered shallow to deep. */
		for (at = ig->n - 1; at > 0; at--) {
			struct ig_group *prev = &ig->groups[at - 1];
			struct ig_group tmp;

			if (!prev->from_file || prev->depth <= g->depth)
				break;
			tmp = *prev;
			*prev = *g;
			*g = tmp;
			g = prev;
		}
	}
	while (text < end) {
		const char *nl = memchr(text, '\n', end - text);
		const char *eol = nl ? nl : end;
		size_t n = eol - text;
		struct ig_rule r;

		if (n > 0 && text[n - 1] == '\r')
			n--;
		if (rule_parse(text, n, &r) == 1)
			group_push(g, &r);
		text = nl ? nl + 1 : end;
	}
	if (g->n == 0)
		group_delete(ig, g - ig->groups);
}

void ignore_remove_file(struct ignore *ig, const char *base)
{
	size_t baselen;

	base = base_trim(base, &baselen);
	for (size_t at = first_file_group(ig); at < ig->n; at++) {
		if (group_has_base(&ig->groups[at], base, baselen)) {
			group_delete(ig, at);
			return;
		}
	}
}

/* Decides path..path+len by its own rules alone. */
static bool match_leaf(const struct ignore *ig, const char *path, size_t len,
		       bool is_dir)
{
	const char *name = path + len;

	if (len == 0)
		return false;
	while (name > path && name[-1] != '/')
		name--;
	for (size_t i = ig->n; i-- > 0;) {
		const struct ig_group *g = &ig->groups[i];
		const char *rel = path;
		size_t rlen = len;

		if (g->baselen > 0) {
			if (len <= g->baselen || path[g->baselen] != '/' ||
			    memcmp(path, g->base, g->baselen) != 0)
				continue;
			rel = path + g->baselen + 1;
			rlen = len - g->baselen - 1;
		}
		for (size_t j = g->n; j-- > 0;) {
			const struct ig_rule *r = &g->rules[j];

			if (rule_match(r, rel, rlen, name, path + len - name,
				       is_dir))
				return !(r->flags & RULE_NEGATE);
		}
	}
	return false;
}

bool ignore_match_leaf(const struct ignore *ig, const char *path, bool is_dir)
{
	return match_leaf(ig, path, strlen(path), is_dir);
}

bool ignore_match(const struct ignore *ig, const char *path, bool is_dir)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < len; i++)
		if (path[i] == '/' && match_leaf(ig, path, i, true))
			return true;
	return match_leaf(ig, path, len, is_dir);
}
