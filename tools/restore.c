/*
 * restore.c - `wkfs restore PATH [--at TIME | --version N] [--to NEWPATH]`
 * and `wkfs restore --deleted PATH`: bring a past version back.
 *
 * A restore is an ordinary change, never a rewrite of history: the old
 * bytes are written to the path like any program would write them.  When
 * the folder is mounted that is through the mount, so the recorder makes
 * new ops of it and they sync; when it is not, into the directory itself,
 * and the mount's scan records the change when it next mounts (as for any
 * edit made while unmounted).  Each file is written to a temporary beside
 * it and renamed over its name, as editors save: readers see the old file
 * or the new one, never part of either.
 *
 * Before anything is written every content the restore needs is found
 * (lib/history.h says which, versions.h where): a restore that cannot be
 * carried out whole changes nothing.  Files made since TIME are left as
 * they are: a restore brings things back, it deletes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "content.h"
#include "history.h"
#include "hlc.h"
#include "out.h"
#include "termesc.h"
#include "versions.h"
#include "wlog.h"
#include "xalloc.h"

/* One entry to bring back. */
struct item {
	char *dest; /* relative to the folder */
	enum wk_kind kind;
	struct wk_id version;
	struct wk_hash hash;
	uint64_t size;
	uint32_t mode;
	char *target; /* symlinks */
	char *what;   /* how messages name the version */
};

struct plan {
	struct item *v;
	size_t n, alloc;
	unsigned written, unchanged;
};

struct restore {
	struct versions v;
	const char *arg;   /* PATH as given */
	char to[PATH_MAX]; /* where rel goes: rel itself, or --to */
};

static void plan_add(struct plan *p, const char *dest, enum wk_kind kind,
		     const char *what)
{
	struct item *it;

	if (p->n == p->alloc) {
		p->alloc = p->alloc ? 2 * p->alloc : 16;
		p->v = xrealloc(p->v, p->alloc * sizeof(*p->v));
	}
	it = &p->v[p->n++];
	memset(it, 0, sizeof(*it));
	it->dest = xstrdup(dest);
	it->kind = kind;
	it->what = xstrdup(what);
}

static void plan_release(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].dest);
		free(p->v[i].target);
		free(p->v[i].what);
	}
	free(p->v);
}

/* Where src, at or below from, goes: the same place below r->to.  0, or
 * -ENAMETOOLONG. */
static int dest_of(const struct restore *r, const char *from, const char *src,
		   char *out, size_t len)
{
	size_t l = strlen(from);
	const char *rest = src + l;

	if (l && *rest == '/')
		rest++;
	if ((size_t)snprintf(out, len, "%s%s%s", r->to,
			     r->to[0] && *rest ? "/" : "", rest) < len)
		return 0;
	wk_err("%s/%s: path too long", r->to, rest);
	return -ENAMETOOLONG;
}

static void full_path(const struct restore *r, const char *rel, char *out,
		      size_t len)
{
	snprintf(out, len, "%s%s%s", r->v.root, rel[0] ? "/" : "", rel);
}

/* ---- checking: everything is at hand before anything is written ------ */

/* 1 when the entry at rel already is what it holds, 0 when not, -errno
 * (with err) when it cannot become it. */
static int already(const struct restore *r, const struct item *it, char *err,
		   size_t errlen)
{
	char p[2 * PATH_MAX], tgt[WK_TARGET_MAX + 1];
	struct wk_hash h;
	struct stat st;
	uint64_t size;
	ssize_t n;
	int fd, rc;

	full_path(r, it->dest, p, sizeof(p));
	if (lstat(p, &st) != 0)
		return 0;
	if (S_ISDIR(st.st_mode) != (it->kind == WK_KIND_DIR)) {
		snprintf(err, errlen,
			 "%s is %s now; restore to another path with --to",
			 it->dest[0] ? it->dest : ".",
			 S_ISDIR(st.st_mode) ? "a directory"
					     : "not a directory");
		return -EEXIST;
	}
	if (it->kind == WK_KIND_DIR)
		return 1;
	if (it->kind == WK_KIND_SYMLINK) {
		if (!it->target)
			return 1; /* nothing known to write */
		n = readlink(p, tgt, sizeof(tgt) - 1);
		return n >= 0 && S_ISLNK(st.st_mode) &&
		       (size_t)n == strlen(it->target) &&
		       !memcmp(tgt, it->target, (size_t)n);
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != it->size)
		return 0;
	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	rc = content_hash_fd(fd, &h, &size);
	close(fd);
	return !rc && size == it->size && !memcmp(&h, &it->hash, sizeof(h));
}

/* Says why the content of it cannot be had (why: a failed fetch, or
 * NULL). */
static void missing_content(const struct restore *r, const struct item *it,
			    const char *why, char *err, size_t errlen)
{
	const char *where =
		versions_where_id(&r->v, it->version, &it->hash, it->size);

	if (why)
		snprintf(err, errlen,
			 "content of %s is not on this replica, and fetching "
			 "it from the %s failed: %s",
			 it->what, where, why);
	else if (where && strcmp(where, "gone") != 0)
		snprintf(err, errlen,
			 "content of %s is not on this replica, and fetching "
			 "from the %s is not built yet: restore it on a "
			 "replica that holds it",
			 it->what, where);
	else
		snprintf(err, errlen,
			 "content of %s is not on this replica, and no remote "
			 "was sent it: it is gone",
			 it->what);
}

/* Makes the content of it available here: at hand already, or fetched
 * from the relay into .wkfs/objects.  0, or -ENOENT with err. */
static int get_content(const struct restore *r, const struct item *it,
		       char *err, size_t errlen)
{
	const char *where;
	char why[512];
	int fd = versions_content(&r->v, &it->hash, it->size);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	where = versions_where_id(&r->v, it->version, &it->hash, it->size);
	if (!where || strcmp(where, "relay") != 0) {
		missing_content(r, it, NULL, err, errlen);
		return -ENOENT;
	}
	if (versions_fetch(&r->v, &it->hash, it->size, why, sizeof(why))) {
		missing_content(r, it, why, err, errlen);
		return -ENOENT;
	}
	fd = versions_content(&r->v, &it->hash, it->size);
	if (fd < 0) {
		missing_content(r, it, "it did not arrive", err, errlen);
		return -ENOENT;
	}
	close(fd);
	return 0;
}

static int check_plan(const struct restore *r, struct plan *p, char *err,
		      size_t errlen)
{
	for (size_t i = 0; i < p->n; i++) {
		struct item *it = &p->v[i];
		int rc = already(r, it, err, errlen);

		if (rc < 0)
			return rc;
		if (rc || it->kind != WK_KIND_FILE || it->size == 0)
			continue;
		rc = get_content(r, it, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- writing ---------------------------------------------------------- */

/* Makes the directories above rel that are missing. */
static int make_parents(const struct restore *r, const char *rel, char *err,
			size_t errlen)
{
	char p[2 * PATH_MAX];
	size_t base = strlen(r->v.root) + 1;

	full_path(r, rel, p, sizeof(p));
	for (char *s = p + base; (s = strchr(s, '/')); s++) {
		struct stat st;

		*s = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot make %s: %s", p,
				 strerror(errno));
			return -errno;
		}
		if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen,
				 "%s is not a directory; restore to another "
				 "path with --to",
				 p + base);
			return -ENOTDIR;
		}
		*s = '/';
	}
	return 0;
}

static int copy_fd(int in, int out)
{
	char buf[1 << 16];
	ssize_t n;

	while ((n = read(in, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0)
				return -errno;
			off += w;
		}
	return n < 0 ? -errno : 0;
}

/* The temporary beside p: a dot file of the same directory. */
static void temp_beside(const char *p, char *out, size_t len)
{
	const char *slash = strrchr(p, '/');

	snprintf(out, len, "%.*s.%s.wkfs-restore.%ld", (int)(slash - p + 1), p,
		 slash + 1, (long)getpid());
}

static int write_file(const struct restore *r, const struct item *it,
		      const char *p, const char *tmp)
{
	struct stat st;
	mode_t mode = it->mode ? it->mode & 07777 : 0644;
	int in = -1, out, rc = 0;

	/* The mode the file has now wins over the one it had then. */
	if (lstat(p, &st) == 0 && S_ISREG(st.st_mode))
		mode = st.st_mode & 07777;
	if (it->size) {
		in = versions_content(&r->v, &it->hash, it->size);
		if (in < 0)
			return in;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   mode);
	if (out < 0) {
		rc = -errno;
		goto out_close_in;
	}
	if (in >= 0)
		rc = copy_fd(in, out);
	if (!rc && fchmod(out, mode) != 0)
		rc = -errno;
	if (close(out) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, p) != 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
out_close_in:
	if (in >= 0)
		close(in);
	return rc;
}

static int write_item(const struct restore *r, const struct item *it, char *err,
		      size_t errlen)
{
	char p[2 * PATH_MAX], tmp[2 * PATH_MAX + 64];
	int rc;

	full_path(r, it->dest, p, sizeof(p));
	rc = make_parents(r, it->dest, err, errlen);
	if (rc)
		return rc;
	if (it->kind == WK_KIND_DIR) {
		rc = mkdir(p, it->mode ? it->mode & 07777 : 0755) == 0 ||
				     errno == EEXIST
			     ? 0
			     : -errno;
	} else if (it->kind == WK_KIND_SYMLINK) {
		temp_beside(p, tmp, sizeof(tmp));
		rc = symlink(it->target, tmp) == 0 && rename(tmp, p) == 0
			     ? 0
			     : -errno;
		if (rc)
			unlink(tmp);
	} else {
		temp_beside(p, tmp, sizeof(tmp));
		rc = write_file(r, it, p, tmp);
		if (rc == -ENOENT) {
			/* Gone since check_plan() found it. */
			missing_content(r, it, "it went away meanwhile", err,
					errlen);
			return rc;
		}
	}
	if (rc)
		snprintf(err, errlen, "cannot restore %s: %s",
			 it->dest[0] ? it->dest : ".", strerror(-rc));
	return rc;
}

/* Directories first, shallowest first, so each gets its own mode. */
static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	size_t lx = strlen(x->dest), ly = strlen(y->dest);

	if ((x->kind == WK_KIND_DIR) != (y->kind == WK_KIND_DIR))
		return x->kind == WK_KIND_DIR ? -1 : 1;
	return (lx > ly) - (lx < ly);
}

static int run_plan(const struct restore *r, struct plan *p)
{
	char err[2 * PATH_MAX + 512];
	int rc;

	rc = check_plan(r, p, err, sizeof(err));
	if (rc)
		goto fail;
	qsort(p->v, p->n, sizeof(*p->v), cmp_item);
	for (size_t i = 0; i < p->n; i++) {
		rc = already(r, &p->v[i], err, sizeof(err));
		if (rc > 0) {
			p->unchanged++;
			continue;
		}
		rc = rc ? rc : write_item(r, &p->v[i], err, sizeof(err));
		if (rc)
			goto fail;
		p->written++;
	}
	return 0;
fail:
	wk_err("%s", err);
	return rc;
}

/* ---- what to restore -------------------------------------------------- */

static void item_fill(struct item *it, enum wk_kind kind, struct wk_id version,
		      const struct wk_hash *hash, uint64_t size, uint32_t mode,
		      const char *target)
{
	it->kind = kind;
	it->version = version;
	it->hash = *hash;
	it->size = size;
	it->mode = mode;
	if (target)
		it->target = xstrdup(target);
}

struct tree_pick {
	const struct restore *r;
	struct plan *p;
	const char *at; /* the moment, for messages */
	const char *from;
};

static int pick_entry(const char *path, const struct tree_entry *e, void *arg)
{
	struct tree_pick *c = arg;
	char dest[PATH_MAX], what[PATH_MAX + 128];

	/* Conflict copies were shown then, but are no version to bring
	 * back under their own names. */
	if (e->conflict_copy || !history_path_within(path, c->from))
		return 0;
	if (dest_of(c->r, c->from, path, dest, sizeof(dest)))
		return -ENAMETOOLONG;
	snprintf(what, sizeof(what), "%s as at %s", path, c->at);
	plan_add(c->p, dest, e->kind, what);
	item_fill(&c->p->v[c->p->n - 1], e->kind, e->version, &e->hash, e->size,
		  e->mode, e->target);
	return 0;
}

/* Plans path (and, for a directory, what was below it) as tree shows
 * it. */
static int plan_tree(const struct restore *r, struct tree *t, const char *path,
		     const char *at, struct plan *p)
{
	struct tree_pick c = {r, p, at, path};
	struct tree_entry e;

	if (tree_lookup(t, path, &e) != 0) {
		wk_err("%s did not exist at %s; wkfs history %s lists its "
		       "versions",
		       r->arg, at, r->arg);
		return -ENOENT;
	}
	if (path[0] && !e.conflict_copy && pick_entry(path, &e, &c))
		return -ENAMETOOLONG;
	if (e.kind == WK_KIND_DIR)
		return tree_foreach(t, pick_entry, &c);
	return 0;
}

static int restore_at(struct restore *r, const char *when, struct plan *p)
{
	struct tree *t;
	int64_t ms;
	int rc;

	if (history_parse_time(when, &ms)) {
		wk_err("cannot read the time '%s': give it as "
		       "2026-12-08T10:11:12Z (UTC, as wkfs history shows "
		       "times), 2026-12-08, or @SECONDS",
		       when);
		return -EINVAL;
	}
	t = history_tree_at(r->v.ops, r->v.n, history_id_at_ms(ms));
	rc = plan_tree(r, t, r->v.rel, when, p);
	tree_free(t);
	return rc;
}

/* Where a file version goes without --to: where its node is now when it
 * is still at or below PATH, else where it was then when that is, else
 * PATH. */
static int version_dest(const struct restore *r, const struct hist_entry *e,
			char *out, size_t len)
{
	char *now = tree_node_path(r->v.now, e->node);
	int rc;

	if (now && history_path_within(now, r->v.rel)) {
		rc = dest_of(r, r->v.rel, now, out, len);
		free(now);
		return rc;
	}
	free(now);
	if (history_path_within(e->path, r->v.rel))
		return dest_of(r, r->v.rel, e->path, out, len);
	return dest_of(r, r->v.rel, r->v.rel, out, len);
}

static int restore_version(struct restore *r, const char *arg, struct plan *p)
{
	struct history h;
	struct hist_entry *e;
	char *end, dest[PATH_MAX], what[PATH_MAX + 128];
	unsigned long n;
	int rc = -EINVAL;

	errno = 0;
	n = strtoul(arg, &end, 10);
	history_of_path(r->v.ops, r->v.n, r->v.rel, &h);
	if (!h.n) {
		wk_err("%s: no such file or directory, now or in the "
		       "history of %s",
		       r->arg, r->v.root);
		goto out;
	}
	if (errno || *end || !*arg || n < 1 || n > h.n) {
		wk_err("%s has no version %s: its versions are 1 to %zu "
		       "(wkfs history %s)",
		       r->arg, arg, h.n, r->arg);
		goto out;
	}
	e = &h.v[n - 1];
	versions_name(&r->v, e, what, sizeof(what));
	if (e->node_kind == WK_KIND_DIR) {
		/* A directory's version: its subtree right after that op. */
		struct tree *t =
			history_tree_at(r->v.ops, r->v.n, r->v.ops[e->op].id);
		char at[64];

		out_iso_ms((int64_t)hlc_ms(r->v.ops[e->op].id.hlc), at,
			   sizeof(at));
		if (e->kind == HIST_DELETE) {
			/* It was empty when it went: only itself. */
			plan_add(p, r->to, WK_KIND_DIR, what);
			rc = 0;
		} else {
			rc = plan_tree(r, t, e->path, at, p);
		}
		tree_free(t);
		goto out;
	}
	if (!e->has_content) {
		wk_err("%s has no content to restore (its directory was gone "
		       "then); pick another version",
		       what);
		goto out;
	}
	rc = version_dest(r, e, dest, sizeof(dest));
	if (rc)
		goto out;
	plan_add(p, dest, e->node_kind, what);
	item_fill(&p->v[p->n - 1], e->node_kind, e->version, &e->hash, e->size,
		  e->mode, e->target);
	rc = 0;
out:
	history_release(&h);
	return rc;
}

static void print_deleted(const struct restore *r, const struct history *h)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct hist_entry *e = &h->v[i];
		const struct wk_op *op = &r->v.ops[e->op];
		const char *where = versions_where(&r->v, e);
		char t[64], size[32] = "-", *dev;

		out_iso_ms((int64_t)hlc_ms(op->id.hlc), t, sizeof(t));
		if (where)
			out_bytes(e->size, size, sizeof(size));
		dev = term_escape_dup(op->device[0] ? op->device : "-");
		printf("%s %-8s %9s %-5s ", t, dev, size, where ? where : "-");
		free(dev);
		term_fputs(e->path, stdout);
		puts(e->node_kind == WK_KIND_DIR ? "/" : "");
	}
}

/*
 * What was deleted at or below PATH: listed when PATH is there now (a
 * directory, say), brought back when it is not.
 */
static int restore_deleted(struct restore *r, struct plan *p, bool *listed)
{
	struct history h;
	char dest[PATH_MAX], what[PATH_MAX + 128];
	bool present = tree_lookup(r->v.now, r->v.rel, NULL) == 0;
	int rc = 0;

	history_deleted(r->v.ops, r->v.n, r->v.rel, &h);
	*listed = present;
	if (present) {
		print_deleted(r, &h);
		goto out;
	}
	if (!h.n) {
		wk_err("%s: nothing was deleted there; wkfs restore --deleted "
		       "DIR lists what was deleted in DIR",
		       r->arg);
		rc = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < h.n; i++) {
		const struct hist_entry *e = &h.v[i];

		if (e->node_kind != WK_KIND_DIR && !e->has_content)
			continue;
		versions_name(&r->v, e, what, sizeof(what));
		rc = dest_of(r, r->v.rel, e->path, dest, sizeof(dest));
		if (rc)
			goto out;
		plan_add(p, dest, e->node_kind, what);
		item_fill(&p->v[p->n - 1], e->node_kind, e->version, &e->hash,
			  e->size, e->mode, e->target);
	}
out:
	history_release(&h);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: wkfs restore PATH [--at TIME | --version N] "
			"[--to NEWPATH]\n"
			"       wkfs restore --deleted PATH\n");
	return 2;
}

static void report(const struct restore *r, const struct plan *p)
{
	printf("restored %u entr%s to ", p->written,
	       p->written == 1 ? "y" : "ies");
	term_fputs(r->to[0] ? r->to : ".", stdout);
	if (p->unchanged)
		printf(" (%u already as they were)", p->unchanged);
	putchar('\n');
	if (!r->v.f.mounted && p->written)
		printf("%s is not mounted: the change is recorded when it is "
		       "mounted next\n",
		       r->v.root);
}

int cmd_restore(int argc, char **argv)
{
	static const struct option longs[] = {
		{"at", required_argument, NULL, 'a'},
		{"version", required_argument, NULL, 'v'},
		{"to", required_argument, NULL, 't'},
		{"deleted", no_argument, NULL, 'd'},
		{0},
	};
	const char *at = NULL, *version = NULL, *to = NULL;
	char err[2 * PATH_MAX];
	struct restore r;
	struct plan p = {0};
	bool deleted = false, listed = false;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (opt == 'a')
			at = optarg;
		else if (opt == 'v')
			version = optarg;
		else if (opt == 't')
			to = optarg;
		else if (opt == 'd')
			deleted = true;
		else
			return usage();
	}
	if (optind != argc - 1 || (at && version) ||
	    (deleted && (at || version)))
		return usage();
	r.arg = argv[optind];
	if (versions_open(r.arg, &r.v, err, sizeof(err))) {
		wk_err("%s", err);
		return 1;
	}
	rc = to ? versions_relpath(&r.v, to, r.to, sizeof(r.to), err,
				   sizeof(err))
		: (snprintf(r.to, sizeof(r.to), "%s", r.v.rel), 0);
	if (rc) {
		wk_err("%s", err);
		goto out;
	}
	if (at)
		rc = restore_at(&r, at, &p);
	else if (version)
		rc = restore_version(&r, version, &p);
	else if (deleted || tree_lookup(r.v.now, r.v.rel, NULL) != 0)
		rc = restore_deleted(&r, &p, &listed);
	else {
		wk_err("%s is there now: say which version to bring back, "
		       "--version N or --at TIME (wkfs history %s lists them)",
		       r.arg, r.arg);
		rc = -EINVAL;
	}
	if (!rc && !listed)
		rc = run_plan(&r, &p);
	if (!rc && !listed)
		report(&r, &p);
out:
	plan_release(&p);
	versions_release(&r.v);
	return rc ? 1 : 0;
}
