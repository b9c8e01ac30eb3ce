/*
 * tree_testlib.c - op builders and a strict fake backing directory for the
 * merge engine's tests (see tree_testlib.h).  Test code: simple, linear
 * scans, no attempt at speed.
 */
#include "tree_testlib.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "xalloc.h"

struct wk_id tl_id(uint64_t ms, uint64_t logical, uint64_t actor)
{
	return (struct wk_id){hlc_pack(ms, logical), actor};
}

struct wk_hash tl_hash(uint8_t b)
{
	struct wk_hash h;

	memset(h.b, b, sizeof(h.b));
	return h;
}

static void tl_base(struct wk_op *op, enum wk_op_kind kind, struct wk_id id)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->id = id;
	op->node = id;
	op->base = WK_ID_NONE;
}

static void tl_named(struct wk_op *op, enum wk_op_kind kind, struct wk_id id,
		     struct wk_id parent, const char *name, uint32_t mode)
{
	tl_base(op, kind, id);
	op->parent = parent;
	snprintf(op->name, sizeof(op->name), "%s", name);
	op->mode = mode;
}

void tl_mkdir(struct wk_op *op, struct wk_id id, struct wk_id parent,
	      const char *name)
{
	tl_named(op, WK_OP_MKDIR, id, parent, name, 0755);
}

void tl_create(struct wk_op *op, struct wk_id id, struct wk_id parent,
	       const char *name)
{
	tl_named(op, WK_OP_CREATE, id, parent, name, 0644);
}

void tl_symlink(struct wk_op *op, struct wk_id id, struct wk_id parent,
		const char *name, const char *target)
{
	tl_named(op, WK_OP_SYMLINK, id, parent, name, 0777);
	snprintf(op->target, sizeof(op->target), "%s", target);
}

void tl_put(struct wk_op *op, struct wk_id id, struct wk_id node,
	    struct wk_id base, uint8_t content)
{
	tl_base(op, WK_OP_PUT, id);
	op->node = node;
	op->base = base;
	op->hash = tl_hash(content);
	op->size = content;
}

void tl_move(struct wk_op *op, struct wk_id id, struct wk_id node,
	     struct wk_id new_parent, const char *new_name)
{
	tl_base(op, WK_OP_MOVE, id);
	op->node = node;
	op->new_parent = new_parent;
	snprintf(op->new_name, sizeof(op->new_name), "%s", new_name);
}

void tl_remove(struct wk_op *op, struct wk_id id, struct wk_id node,
	       struct wk_id base)
{
	tl_base(op, WK_OP_REMOVE, id);
	op->node = node;
	op->base = base;
}

void tl_chmod(struct wk_op *op, struct wk_id id, struct wk_id node,
	      uint32_t mode)
{
	tl_base(op, WK_OP_SETATTR, id);
	op->node = node;
	op->attrs = WK_ATTR_MODE;
	op->mode = mode;
}

/* ---- the fake directory ----------------------------------------------- */

struct fent {
	char *path;
	enum wk_kind kind;
	uint32_t mode;
	int64_t mtime_ns;
	struct wk_hash hash;
	char *target;
};

struct fakefs {
	struct fent *v;
	size_t n, alloc;
};

struct fakefs *fakefs_new(void)
{
	return xcalloc(1, sizeof(struct fakefs));
}

void fakefs_free(struct fakefs *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].path);
		free(f->v[i].target);
	}
	free(f->v);
	free(f);
}

static long find(const struct fakefs *f, const char *path)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i].path, path) == 0)
			return (long)i;
	return -1;
}

static bool under(const char *path, const char *dir)
{
	size_t l = strlen(dir);

	return strncmp(path, dir, l) == 0 && path[l] == '/';
}

static bool parent_ok(const struct fakefs *f, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	long i;

	if (!slash)
		return true;
	dir = xstrndup(path, (size_t)(slash - path));
	i = strcmp(dir, TREE_STAGE_DIR) == 0 ? 0 : find(f, dir);
	if (strcmp(dir, TREE_STAGE_DIR) != 0 && i >= 0 &&
	    f->v[i].kind != WK_KIND_DIR)
		i = -1;
	free(dir);
	return i >= 0;
}

static void drop_at(struct fakefs *f, size_t i)
{
	free(f->v[i].path);
	free(f->v[i].target);
	f->v[i] = f->v[--f->n];
}

static struct fent *add(struct fakefs *f, const struct tree_change *c)
{
	struct fent *e;

	if (f->n == f->alloc) {
		f->alloc = f->alloc ? 2 * f->alloc : 32;
		f->v = xrealloc(f->v, f->alloc * sizeof(*f->v));
	}
	e = &f->v[f->n++];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(c->path);
	e->kind = c->type;
	e->mode = c->mode;
	e->mtime_ns = c->mtime_ns;
	e->hash = c->hash;
	if (c->target)
		e->target = xstrdup(c->target);
	return e;
}

static int fail(char *why, size_t whylen, const struct tree_change *c,
		const char *what)
{
	snprintf(why, whylen, "change %d %s -> %s: %s", c->kind, c->path,
		 c->new_path ? c->new_path : "", what);
	return -EINVAL;
}

static int apply_one(struct fakefs *f, const struct tree_change *c, char *why,
		     size_t whylen)
{
	long i = find(f, c->path);

	switch (c->kind) {
	case TREE_CH_REMOVE:
		if (i < 0 || f->v[i].kind != c->type)
			return fail(why, whylen, c, "nothing to remove");
		for (size_t j = 0; j < f->n; j++)
			if (under(f->v[j].path, c->path))
				return fail(why, whylen, c, "dir not empty");
		drop_at(f, (size_t)i);
		return 0;
	case TREE_CH_RENAME: {
		size_t l = strlen(c->path);

		if (i < 0)
			return fail(why, whylen, c, "no source");
		if (find(f, c->new_path) >= 0 || !parent_ok(f, c->new_path))
			return fail(why, whylen, c, "bad target");
		for (size_t j = 0; j < f->n; j++) {
			char *p = f->v[j].path;

			if (j != (size_t)i && !under(p, c->path))
				continue;
			f->v[j].path = xasprintf("%s%s", c->new_path, p + l);
			free(p);
		}
		return 0;
	}
	case TREE_CH_MKDIR:
	case TREE_CH_SYMLINK:
		if (i >= 0 || !parent_ok(f, c->path))
			return fail(why, whylen, c, "cannot create");
		add(f, c);
		return 0;
	case TREE_CH_WRITE:
		if (!parent_ok(f, c->path) ||
		    (i >= 0 && f->v[i].kind != WK_KIND_FILE))
			return fail(why, whylen, c, "cannot write");
		if (i >= 0)
			drop_at(f, (size_t)i);
		add(f, c);
		return 0;
	case TREE_CH_SETATTR:
		if (i < 0)
			return fail(why, whylen, c, "nothing to chmod");
		f->v[i].mode = c->mode;
		f->v[i].mtime_ns = c->mtime_ns;
		return 0;
	}
	return fail(why, whylen, c, "unknown change");
}

int fakefs_apply(struct fakefs *f, const struct tree_changes *ch, char *why,
		 size_t whylen)
{
	for (size_t i = 0; i < ch->n; i++) {
		int rc = apply_one(f, &ch->v[i], why, whylen);

		if (rc)
			return rc;
	}
	for (size_t i = 0; i < f->n; i++)
		if (under(f->v[i].path, TREE_STAGE_DIR)) {
			snprintf(why, whylen, "%s left in staging",
				 f->v[i].path);
			return -EINVAL;
		}
	return 0;
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fent *)a)->path,
		      ((const struct fent *)b)->path);
}

char *fakefs_dump(const struct fakefs *f)
{
	static const char kinds[] = "?fdl";
	struct fent *v = xmalloc((f->n + 1) * sizeof(*v));
	char *out = xstrdup("");

	if (f->n) {
		memcpy(v, f->v, f->n * sizeof(*v));
		qsort(v, f->n, sizeof(*v), path_cmp);
	}
	for (size_t i = 0; i < f->n; i++) {
		char hash[WK_HASH_STRLEN] = "-";
		char *next;

		if (v[i].kind == WK_KIND_FILE)
			wk_hash_str(&v[i].hash, hash);
		next = xasprintf("%s%s %c %04o %" PRId64 " %s %s\n", out,
				 v[i].path, kinds[v[i].kind], v[i].mode,
				 v[i].mtime_ns, hash,
				 v[i].target ? v[i].target : "-");
		free(out);
		out = next;
	}
	free(v);
	return out;
}
