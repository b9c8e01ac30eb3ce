/*
 * versions.c - a path's folder, its oplog, and where contents are
 * (contract: versions.h).
 *
 * Contents at hand are the objects in .wkfs/objects (remote versions
 * fetched and not yet dropped) and the files of the folder as the oplog
 * shows it now, conflict copies included; every other version was overwritten
 * here and lives on only where it was sent.  A content found is always hashed
 * before it is trusted: a file may have changed since it was recorded.
 */
#include "versions.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "content.h"
#include "db.h"
#include "hlc.h"
#include "locate.h"
#include "out.h"
#include "syncctl.h"
#include "xalloc.h"

/*
 * The absolute form of path with its existing part resolved (realpath) and
 * the rest, which a deleted file's path has, appended as written.  "." and
 * ".." in the rest are refused: they cannot be resolved without the disk.
 */
static int absolute(const char *path, char *out, size_t len, char *err,
		    size_t errlen)
{
	char *work = xstrdup(path), *slash;
	const char *rest = "";
	char real[PATH_MAX];
	int rc = 0;

	while (!realpath(work[0] ? work : ".", real)) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			rc = -errno;
			goto out;
		}
		slash = strrchr(work, '/');
		if (!slash) {
			rest = path;
			work[0] = '\0';
			break;
		}
		/* "a/b/c" with a missing: rest is "b/c" (path's own bytes). */
		rest = path + (slash - work) + 1;
		*slash = '\0';
		if (slash == work) {
			work[0] = '/';
			work[1] = '\0';
		}
	}
	if (!work[0] && !realpath(".", real)) {
		snprintf(err, errlen, "the current directory: %s",
			 strerror(errno));
		rc = -errno;
		goto out;
	}
	for (const char *p = rest; *p;) {
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && !strncmp(p, "..", 2))) {
			snprintf(err, errlen,
				 "%s: give a path without . or .. past what "
				 "exists",
				 path);
			rc = -EINVAL;
			goto out;
		}
		p += n;
		p += *p == '/';
	}
	if ((size_t)snprintf(out, len, "%s%s%s", real,
			     rest[0] && strcmp(real, "/") ? "/" : "",
			     rest) >= len) {
		snprintf(err, errlen, "%s: path too long", path);
		rc = -ENAMETOOLONG;
	}
	/* A trailing slash names the same entry. */
	for (size_t l = strlen(out); l > 1 && out[l - 1] == '/'; l--)
		out[l - 1] = '\0';
out:
	free(work);
	return rc;
}

/* abs minus the prefix base ("" when equal), or NULL when not below it. */
static const char *below(const char *abs, const char *base)
{
	size_t l = strlen(base);

	if (!l || strncmp(abs, base, l) != 0)
		return NULL;
	if (abs[l] == '\0')
		return abs + l;
	return abs[l] == '/' ? abs + l + 1 : NULL;
}

/* The existing directory at or above abs: where the folder is looked
 * for. */
static void existing_dir(const char *abs, char *out, size_t len)
{
	struct stat st;
	char *slash;

	snprintf(out, len, "%s", abs);
	while (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
		slash = strrchr(out, '/');
		if (!slash || slash == out) {
			snprintf(out, len, "/");
			return;
		}
		*slash = '\0';
	}
}

/* The path of abs relative to v's folder (by the mount point or the
 * backing directory), or NULL when outside it. */
static const char *rel_of(const struct versions *v, const char *abs)
{
	const char *rel = below(abs, v->root);

	if (!rel && v->f.mounted)
		rel = below(abs, v->f.dir);
	return rel;
}

int versions_relpath(const struct versions *v, const char *path, char *out,
		     size_t len, char *err, size_t errlen)
{
	char abs[PATH_MAX];
	const char *rel;
	int rc;

	rc = absolute(path, abs, sizeof(abs), err, errlen);
	if (rc)
		return rc;
	rel = rel_of(v, abs);
	if (!rel) {
		snprintf(err, errlen, "%s is not inside the synced folder %s",
			 path, v->root);
		return -EINVAL;
	}
	if (rel[0] && history_path_within(rel, ".wkfs")) {
		snprintf(err, errlen, "%s is wkfs's own sidecar", path);
		return -EINVAL;
	}
	snprintf(out, len, "%s", rel);
	return 0;
}

static int find_folder(const char *path, struct versions *v, char *err,
		       size_t errlen)
{
	char abs[PATH_MAX], dir[PATH_MAX];
	int rc;

	rc = absolute(path, abs, sizeof(abs), err, errlen);
	if (rc)
		return rc;
	existing_dir(abs, dir, sizeof(dir));
	rc = folder_resolve(dir, &v->f, err, errlen);
	if (rc)
		return rc;
	snprintf(v->root, sizeof(v->root), "%s",
		 v->f.mounted ? v->f.mnt : v->f.dir);
	return versions_relpath(v, path, v->rel, sizeof(v->rel), err, errlen);
}

struct load_ctx {
	struct versions *v;
	size_t alloc;
};

static int add_op(void *arg, const struct db_oprow *r)
{
	struct load_ctx *c = arg;
	struct versions *v = c->v;

	if (v->n == c->alloc) {
		c->alloc = c->alloc ? 2 * c->alloc : 256;
		v->ops = xrealloc(v->ops, c->alloc * sizeof(*v->ops));
		v->on_remote = xrealloc(v->on_remote, c->alloc);
	}
	history_op_set(&v->ops[v->n], &r->op);
	v->on_remote[v->n++] = r->shipped || r->origin == DB_ORIGIN_REMOTE;
	return 0;
}

static void read_remote(struct versions *v)
{
	struct wk_config cfg;
	char err[256];

	config_init(&cfg);
	/* No config is no remote: history is still worth showing. */
	if (config_load_at(v->dirfd, &cfg, err, sizeof(err)) == 0 &&
	    cfg.remote_url)
		v->remote = strncmp(cfg.remote_url, "git:", 4) == 0 ? "git"
								    : "relay";
	config_release(&cfg);
}

struct held_file {
	struct wk_hash hash;
	uint64_t size;
	char *path; /* relative to the folder */
};

static int cmp_held(const void *a, const void *b)
{
	const struct held_file *x = a, *y = b;
	int c = memcmp(&x->hash, &y->hash, sizeof(x->hash));

	return c ? c : (x->size > y->size) - (x->size < y->size);
}

/* Conflict copies too: each holds a losing version's content. */
static int add_file(const char *path, const struct tree_entry *e, void *arg)
{
	struct versions *v = arg;

	if (e->kind != WK_KIND_FILE)
		return 0;
	if (v->nfiles == v->files_alloc) {
		v->files_alloc = v->files_alloc ? 2 * v->files_alloc : 64;
		v->files =
			xrealloc(v->files, v->files_alloc * sizeof(*v->files));
	}
	v->files[v->nfiles++] = (struct held_file){
		.hash = e->hash, .size = e->size, .path = xstrdup(path)};
	return 0;
}

static const struct hist_op *sort_ops;

static int cmp_by_id(const void *a, const void *b)
{
	return wk_id_cmp(sort_ops[*(const size_t *)a].id,
			 sort_ops[*(const size_t *)b].id);
}

/* v->by_id: the ops' indices in id order, to find a version's put. */
static void index_ops(struct versions *v)
{
	v->by_id = xmalloc((v->n ? v->n : 1) * sizeof(*v->by_id));
	for (size_t i = 0; i < v->n; i++)
		v->by_id[i] = i;
	sort_ops = v->ops;
	qsort(v->by_id, v->n, sizeof(*v->by_id), cmp_by_id);
	sort_ops = NULL;
}

int versions_open(const char *path, struct versions *v, char *err,
		  size_t errlen)
{
	struct load_ctx c = {v, 0};
	struct wkdb *db = NULL;
	int rc;

	memset(v, 0, sizeof(*v));
	v->dirfd = -1;
	rc = find_folder(path, v, err, errlen);
	if (rc)
		return rc;
	v->dirfd = locate_dirfd(v->f.key, err, errlen);
	if (v->dirfd < 0) {
		rc = v->dirfd;
		goto out_fail;
	}
	rc = db_open_at(v->dirfd, DB_READONLY, &db, err, errlen);
	if (rc)
		goto out_fail;
	rc = db_ops_foreach(db, 0, 0, add_op, &c);
	if (rc)
		snprintf(err, errlen, "cannot read the oplog: %s",
			 strerror(-rc));
	db_close(db);
	if (rc)
		goto out_fail;
	index_ops(v);
	v->now = history_tree_at(v->ops, v->n, WK_ID_NONE);
	tree_foreach(v->now, add_file, v);
	if (v->nfiles)
		qsort(v->files, v->nfiles, sizeof(*v->files), cmp_held);
	read_remote(v);
	return 0;
out_fail:
	versions_release(v);
	return rc;
}

void versions_release(struct versions *v)
{
	if (v->dirfd >= 0)
		close(v->dirfd);
	v->dirfd = -1;
	if (v->now)
		tree_free(v->now);
	v->now = NULL;
	for (size_t i = 0; i < v->nfiles; i++)
		free(v->files[i].path);
	history_ops_release(v->ops, v->n);
	free(v->ops);
	free(v->on_remote);
	free(v->by_id);
	v->by_id = NULL;
	free(v->files);
	v->files = NULL;
	v->nfiles = v->files_alloc = 0;
	v->ops = NULL;
	v->on_remote = NULL;
	v->n = 0;
}

/* fd holds exactly that content: rewound to 0 for the caller. */
static bool holds(int fd, const struct wk_hash *hash, uint64_t size)
{
	struct wk_hash h;
	uint64_t got;

	return content_hash_fd(fd, &h, &got) == 0 && got == size &&
	       !memcmp(&h, hash, sizeof(h)) && lseek(fd, 0, SEEK_SET) == 0;
}

/* The first recorded file with that content, or NULL. */
static const struct held_file *find_file(const struct versions *v,
					 const struct wk_hash *hash,
					 uint64_t size, size_t *at)
{
	size_t lo = 0, hi = v->nfiles;
	struct held_file key = {.hash = *hash, .size = size};

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_held(&v->files[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return lo < v->nfiles && !cmp_held(&v->files[lo], &key) ? &v->files[lo]
								: NULL;
}

static int open_file(const struct versions *v, const struct held_file *f)
{
	char p[2 * PATH_MAX + 2];

	snprintf(p, sizeof(p), "%s/%s", v->root, f->path);
	return open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

static int open_object(const struct versions *v, const struct wk_hash *hash)
{
	char hex[WK_HASH_STRLEN], p[64 + WK_HASH_STRLEN];

	snprintf(p, sizeof(p), ".wkfs/objects/%s", wk_hash_str(hash, hex));
	return openat(v->dirfd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

int versions_content(const struct versions *v, const struct wk_hash *hash,
		     uint64_t size)
{
	int fd = open_object(v, hash);
	size_t at;

	if (fd >= 0) {
		if (holds(fd, hash, size))
			return fd;
		close(fd);
	}
	if (!find_file(v, hash, size, &at))
		return -ENOENT;
	for (; at < v->nfiles &&
	       !memcmp(&v->files[at].hash, hash, sizeof(*hash)) &&
	       v->files[at].size == size;
	     at++) {
		fd = open_file(v, &v->files[at]);
		if (fd < 0)
			continue;
		if (holds(fd, hash, size))
			return fd;
		close(fd);
	}
	return -ENOENT;
}

/* The index of op id in v->ops, or v->n. */
static size_t op_by_id(const struct versions *v, struct wk_id id)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = wk_id_cmp(v->ops[v->by_id[mid]].id, id);

		if (!c)
			return v->by_id[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return v->n;
}

const char *versions_where_id(const struct versions *v, struct wk_id version,
			      const struct wk_hash *hash, uint64_t size)
{
	char hex[WK_HASH_STRLEN], p[64 + WK_HASH_STRLEN];
	size_t at, i;

	/* Said from what is recorded, without reading every file: restore
	 * checks the bytes it takes. */
	snprintf(p, sizeof(p), ".wkfs/objects/%s", wk_hash_str(hash, hex));
	if (size == 0 || find_file(v, hash, size, &at) ||
	    faccessat(v->dirfd, p, R_OK, 0) == 0)
		return "here";
	/* The put that made it, sent or received: the remote has had it. */
	i = op_by_id(v, version);
	return v->remote && i < v->n && v->on_remote[i] ? v->remote : "gone";
}

const char *versions_where(const struct versions *v, const struct hist_entry *e)
{
	if (!e->has_content || e->node_kind != WK_KIND_FILE)
		return NULL;
	return versions_where_id(v, e->version, &e->hash, e->size);
}

void versions_name(const struct versions *v, const struct hist_entry *e,
		   char *buf, size_t len)
{
	const struct hist_op *op = &v->ops[e->op];
	char t[64];

	out_iso_ms((int64_t)hlc_ms(op->id.hlc), t, sizeof(t));
	snprintf(buf, len, "%s version %u (%s, %s)", e->path[0] ? e->path : ".",
		 e->number, t, op->device[0] ? op->device : "-");
}

int versions_fetch(const struct versions *v, const struct wk_hash *hash,
		   uint64_t size, char *err, size_t errlen)
{
	char req[64 + WK_HASH_STRLEN], reply[512], hex[WK_HASH_STRLEN];
	char sock[RUNDIR_MAX + 16];
	int rc;

	if (!v->remote || !v->f.run[0]) {
		snprintf(err, errlen, "the folder has no remote");
		return -ENOENT;
	}
	/* The daemon holds the relay connection; start it if need be, as
	 * wkfs sync does. */
	rc = syncctl_ensure(v->f.key, v->f.run, NULL);
	if (rc) {
		snprintf(err, errlen, "cannot start wkfs-syncd: %s",
			 rc == -ECHILD ? "it said why above" : strerror(-rc));
		return rc;
	}
	snprintf(sock, sizeof(sock), "%s/syncd.sock", v->f.run);
	snprintf(req, sizeof(req), "fetch %s %" PRIu64, wk_hash_str(hash, hex),
		 size);
	rc = ctl_request(sock, req, reply, sizeof(reply), NULL);
	if (rc) {
		snprintf(err, errlen, "wkfs-syncd did not answer: %s",
			 strerror(-rc));
		return rc;
	}
	if (strcmp(reply, "ok") == 0)
		return 0;
	snprintf(err, errlen, "%s",
		 strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
	return -ENOENT;
}
