/*
 * restore.c - `wkfs restore PATH [--at TIME | --version N] [--to NEWPATH]`
 * and `wkfs restore --deleted PATH`: bring a past version back.
 *
 * A restore is an ordinary change, never a rewrite of history: the old
 * bytes are written to the path like any program would write them.  When
 * the folder is mounted that is through the mount, so the recorder makes
 * new ops of it and they sync; when it is not, into the directory itself,
 * and the mount's scan records the change when it next mounts (as for any
 * edit made while unmounted).  A file that exists is written to a
 * temporary beside it and renamed over its name, as editors save: readers
 * see the old file or the new one, never part of either; one that does
 * not is written in place (removed again if that fails).
 *
 * Paths are walked beneath the folder's root one directory at a time,
 * never through a symlink (open_parent()).
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
	int rootfd;	   /* v.root: every write is beneath it */
};

/* A new item of p, to dest, named what in messages; the caller fills the
 * rest. */
static struct item *plan_add(struct plan *p, const char *dest,
			     enum wk_kind kind, const char *what)
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
	return it;
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

/*
 * The directory holding rel, opened beneath the folder one component at a
 * time without following symlinks, so that a name another replica turned
 * into a symlink cannot lead a restore outside the folder; *name is rel's
 * last component.  With create, missing directories are made.  The fd,
 * or -errno (with err; -ENOENT without create: not there, no message).
 */
static int open_parent(const struct restore *r, const char *rel, bool create,
		       const char **name, char *err, size_t errlen)
{
	const char *p = rel, *slash;
	int fd = openat(r->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	for (; fd >= 0 && (slash = strchr(p, '/')); p = slash + 1) {
		char comp[WK_NAME_MAX + 1];
		size_t len = (size_t)(slash - p);
		int next, e;

		if (len > WK_NAME_MAX) {
			close(fd);
			snprintf(err, errlen, "%s: name too long", rel);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		if (create && mkdirat(fd, comp, 0777) != 0 && errno != EEXIST)
			next = -1;
		else
			next = openat(fd, comp,
				      O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					      O_CLOEXEC);
		e = errno;
		close(fd);
		if (next >= 0) {
			fd = next;
			continue;
		}
		if (e == ENOENT && !create)
			return -ENOENT;
		if (e == ENOTDIR || e == ELOOP)
			snprintf(err, errlen,
				 "%.*s is not a directory now; restore to "
				 "another path with --to",
				 (int)(slash - rel), rel);
		else
			snprintf(err, errlen, "cannot open %.*s: %s",
				 (int)(slash - rel), rel, strerror(e));
		return -e;
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", r->v.root,
			 strerror(errno));
		return -errno;
	}
	*name = p;
	return fd;
}

/* ---- checking: everything is at hand before anything is written ------ */

/* Whether the entry name in dir fd already is what it holds. */
static bool holds_item(int fd, const char *name, const struct stat *st,
		       const struct item *it)
{
	char tgt[WK_TARGET_MAX + 1];
	struct wk_hash h;
	uint64_t size;
	ssize_t n;
	int f, rc;

	if (it->kind == WK_KIND_DIR)
		return true;
	if (it->kind == WK_KIND_SYMLINK) {
		if (!it->target)
			return true; /* nothing known to write */
		n = readlinkat(fd, name, tgt, sizeof(tgt) - 1);
		return n >= 0 && S_ISLNK(st->st_mode) &&
		       (size_t)n == strlen(it->target) &&
		       !memcmp(tgt, it->target, (size_t)n);
	}
	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size != it->size)
		return false;
	f = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0)
		return false;
	rc = content_hash_fd(f, &h, &size);
	close(f);
	return !rc && size == it->size && !memcmp(&h, &it->hash, sizeof(h));
}

/* 1 when the entry at it->dest already is what it holds, 0 when not,
 * -errno (with err) when it cannot become it. */
static int already(const struct restore *r, const struct item *it, char *err,
		   size_t errlen)
{
	const char *name;
	struct stat st;
	int fd, rc;

	if (!it->dest[0]) /* the folder itself */
		return it->kind == WK_KIND_DIR ? 1 : -EISDIR;
	fd = open_parent(r, it->dest, false, &name, err, errlen);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		close(fd);
		return 0;
	}
	rc = holds_item(fd, name, &st, it);
	close(fd);
	if (S_ISDIR(st.st_mode) != (it->kind == WK_KIND_DIR)) {
		snprintf(err, errlen,
			 "%s is %s now; restore to another path with --to",
			 it->dest,
			 S_ISDIR(st.st_mode) ? "a directory"
					     : "not a directory");
		return -EEXIST;
	}
	return rc;
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

/* The temporary a restore writes beside an entry, in the same directory
 * (one at a time per process). */
static void temp_name(char *out, size_t len)
{
	snprintf(out, len, ".wkfs-restore.%ld", (long)getpid());
}

static int write_file(const struct restore *r, const struct item *it, int dir,
		      const char *name, const char *tmp)
{
	struct stat st;
	mode_t mode = it->mode ? it->mode & 07777 : 0644;
	bool fresh = false; /* nothing at name: written there directly */
	int in = -1, out, rc = 0;

	/* The mode the file has now wins over the one it had then. */
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(st.st_mode))
			mode = st.st_mode & 07777;
	} else if (errno == ENOENT) {
		/* No reader to protect, and no temporary name to show up
		 * in the history. */
		fresh = true;
		tmp = name;
	}
	if (it->size) {
		in = versions_content(&r->v, &it->hash, it->size);
		if (in < 0)
			return in;
	}
	out = openat(dir, tmp,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
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
	if (!rc && !fresh && renameat(dir, tmp, dir, name) != 0)
		rc = -errno;
	if (rc)
		unlinkat(dir, tmp, 0);
out_close_in:
	if (in >= 0)
		close(in);
	return rc;
}

static int write_item(const struct restore *r, const struct item *it, char *err,
		      size_t errlen)
{
	char tmp[64];
	const char *name;
	int dir, rc;

	dir = open_parent(r, it->dest, true, &name, err, errlen);
	if (dir < 0)
		return dir;
	temp_name(tmp, sizeof(tmp));
	if (it->kind == WK_KIND_DIR) {
		rc = mkdirat(dir, name, it->mode ? it->mode & 07777 : 0755) ==
					     0 ||
				     errno == EEXIST
			     ? 0
			     : -errno;
	} else if (it->kind == WK_KIND_SYMLINK) {
		rc = symlinkat(it->target, dir, tmp) == 0 &&
				     renameat(dir, tmp, dir, name) == 0
			     ? 0
			     : -errno;
		if (rc)
			unlinkat(dir, tmp, 0);
	} else {
		rc = write_file(r, it, dir, name, tmp);
		if (rc == -ENOENT) {
			/* Gone since check_plan() found it. */
			missing_content(r, it, "it went away meanwhile", err,
					errlen);
			goto out_close_dir;
		}
	}
	if (rc)
		snprintf(err, errlen, "cannot restore %s: %s", it->dest,
			 strerror(-rc));
out_close_dir:
	close(dir);
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

static void item_fill(struct item *it, struct wk_id version,
		      const struct wk_hash *hash, uint64_t size, uint32_t mode,
		      const char *target)
{
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
	item_fill(plan_add(c->p, dest, e->kind, what), e->version, &e->hash,
		  e->size, e->mode, e->target);
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
	/* A directory's walk visits the directory itself too, but never
	 * the root. */
	if (e.kind == WK_KIND_DIR)
		return tree_foreach(t, pick_entry, &c);
	if (!e.conflict_copy && pick_entry(path, &e, &c))
		return -ENAMETOOLONG;
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
	item_fill(plan_add(p, dest, e->node_kind, what), e->version, &e->hash,
		  e->size, e->mode, e->target);
	rc = 0;
out:
	history_release(&h);
	return rc;
}

static void print_deleted(const struct restore *r, const struct history *h)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct hist_entry *e = &h->v[i];
		const struct hist_op *op = &r->v.ops[e->op];
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
		item_fill(plan_add(p, dest, e->node_kind, what), e->version,
			  &e->hash, e->size, e->mode, e->target);
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
	if (!r->v.f.mounted && p->written) {
		term_fputs(r->v.root, stdout);
		puts(" is not mounted: the change is recorded when it is "
		     "mounted next");
	}
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
	r.rootfd = open(r.v.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r.rootfd < 0) {
		wk_err("%s: %s", r.v.root, strerror(errno));
		versions_release(&r.v);
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
	close(r.rootfd);
	versions_release(&r.v);
	return rc ? 1 : 0;
}
