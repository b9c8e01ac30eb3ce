/*
 * view_repair.c - the changes that give DIR what it lacks of the view
 * (see view_repair.h for when and why).
 */
#include "view_repair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "beneath.h"
#include "xalloc.h"

struct repair {
	struct nindex *ix;
	int rootfd;
	view_repair_have_fn have;
	void *arg;
	bool check_disk; /* the file system, not only the index, says */
	struct tree_changes *out;
	size_t added;
};

/* Is the parent of path a directory in the index, or one an earlier
 * change of the pass makes? */
static bool parent_ready(const struct repair *r, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len;
	struct nnode *p;

	if (!slash)
		return true;
	len = (size_t)(slash - path);
	for (size_t i = 0; i < r->out->n; i++) {
		const struct tree_change *c = &r->out->v[i];

		if (c->kind == TREE_CH_MKDIR && strlen(c->path) == len &&
		    memcmp(c->path, path, len) == 0)
			return true;
	}
	if (r->check_disk) {
		char *dir = xstrndup(path, len);
		struct stat st;
		bool ok = beneath_lstat(r->rootfd, dir, &st) == 0 &&
			  S_ISDIR(st.st_mode);

		free(dir);
		return ok;
	}
	p = nindex_lookup(r->ix, path, len);
	return p && p->kind == WK_KIND_DIR;
}

/* Does index entry e hold the very version te shows? */
static bool same_version(const struct nnode *e, const struct tree_entry *te)
{
	if (te->conflict_copy)
		return nnode_is_copy(e) && wk_id_eq(e->id, te->version) &&
		       wk_id_eq(e->copy_of, te->node);
	return !nnode_is_copy(e) && wk_id_eq(e->id, te->node) &&
	       wk_id_eq(e->content, te->version);
}

static struct tree_change *add(struct repair *r, enum tree_change_kind kind,
			       const char *path, const struct tree_entry *te)
{
	struct tree_change *c = tree_changes_add(r->out);

	c->kind = kind;
	c->type = te->kind;
	c->path = xstrdup(path);
	c->node = te->node;
	c->version = te->version;
	c->conflict_copy = te->conflict_copy;
	c->mode = te->mode;
	c->mtime_ns = te->mtime_ns;
	c->link = WK_ID_NONE;
	r->added++;
	return c;
}

/* A WRITE of te at path, when its content is at hand. */
static void add_write(struct repair *r, const char *path,
		      const struct tree_entry *te)
{
	struct tree_change want = {.kind = TREE_CH_WRITE,
				   .type = te->kind,
				   .path = (char *)path,
				   .node = te->node,
				   .version = te->version,
				   .conflict_copy = te->conflict_copy,
				   .size = te->size,
				   .hash = te->hash,
				   .link = WK_ID_NONE};
	struct tree_change *c;

	if (want.size && !r->have(r->arg, &want))
		return; /* not now: a later pass, once it came */
	c = add(r, TREE_CH_WRITE, path, te);
	c->size = te->size;
	c->hash = te->hash;
}

/* Is index entry e what te shows (for a directory: a directory)? */
static bool same_entry(const struct nnode *e, const struct tree_entry *te)
{
	if (e->kind != te->kind)
		return false;
	return te->kind != WK_KIND_FILE || same_version(e, te);
}

/* An entry of the view where DIR has nothing (checked). */
static void add_missing(struct repair *r, const char *path,
			const struct tree_entry *te)
{
	struct tree_change *c;

	if (!parent_ready(r, path))
		return;
	switch (te->kind) {
	case WK_KIND_DIR:
		add(r, TREE_CH_MKDIR, path, te);
		break;
	case WK_KIND_FILE:
		add_write(r, path, te);
		break;
	case WK_KIND_SYMLINK:
		c = add(r, TREE_CH_SYMLINK, path, te);
		c->target = xstrdup(te->target ? te->target : "");
		break;
	default:
		break;
	}
}

static int visit(const char *path, const struct tree_entry *te, void *arg)
{
	struct repair *r = arg;
	struct nnode *e;
	struct stat st;
	uint32_t mode;
	int rc;

	if (!*path)
		return 0;
	e = nindex_lookup(r->ix, path, strlen(path));
	if (e && te->kind == WK_KIND_FILE && !te->conflict_copy &&
	    e->kind == WK_KIND_FILE && !nnode_is_copy(e) &&
	    wk_id_eq(e->id, te->node) && !wk_id_eq(e->content, te->version)) {
		/* The file, at an older version than the view's (a batch
		 * went on without its content): the view's, once at hand. */
		add_write(r, path, te);
		return 0;
	}
	if (e && !same_entry(e, te))
		return 0; /* something else is there: not ours to replace */
	if (!e || r->check_disk) {
		rc = beneath_lstat(r->rootfd, path, &st);
		if (rc == -ENOENT)
			add_missing(r, path, te);
		if (rc < 0 || !e ||
		    (S_ISDIR(st.st_mode) != (te->kind == WK_KIND_DIR)))
			return 0;
		mode = st.st_mode;
	} else {
		mode = e->mode;
	}
	if (te->kind != WK_KIND_SYMLINK && (mode & 07777) != (te->mode & 07777))
		add(r, TREE_CH_SETATTR, path, te);
	return 0;
}

size_t view_repair_collect(const struct tree *view, struct nindex *ix,
			   int rootfd, bool check_disk,
			   view_repair_have_fn have, void *arg,
			   struct tree_changes *out)
{
	struct repair r = {.ix = ix,
			   .rootfd = rootfd,
			   .have = have,
			   .arg = arg,
			   .check_disk = check_disk,
			   .out = out};

	tree_foreach(view, visit, &r);
	return r.added;
}
