/*
 * tree_change.c - the view's differences as path-level changes, and the
 * read side of the view (lookup, walk, dump, checks).
 *
 * tview_commit() sees the round's touched vents: new ones, gone ones, and
 * claimed ones that moved or changed.  It emits them in the order that
 * tree.h promises (remove and stage deepest first, create and unstage
 * shallowest first, update in place last), then makes the new state the
 * committed one.  It never decides what the view is; tree_view.c does.
 */
#include "tree_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void tree_changes_init(struct tree_changes *c)
{
	c->v = NULL;
	c->n = c->alloc = 0;
}

void tree_change_release(struct tree_change *c)
{
	free(c->path);
	free(c->new_path);
	free(c->target);
	free(c->link_path);
}

void tree_changes_release(struct tree_changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		tree_change_release(&c->v[i]);
	free(c->v);
	tree_changes_init(c);
}

/* ---- paths ------------------------------------------------------------ */

static struct vent *up(const struct vent *v, bool next)
{
	return next ? v->nparent : v->parent;
}

static size_t depth_of(const struct vent *v, bool next)
{
	size_t d = 0;

	for (; up(v, next); v = up(v, next))
		d++;
	return d;
}

/* The path of v, committed (next false) or as this round leaves it. */
static char *path_of(const struct vent *v, bool next)
{
	size_t len = 0;
	char *p, *end;

	for (const struct vent *u = v; up(u, next); u = up(u, next))
		len += (next ? u->nname : u->name)->len + 1;
	p = xmalloc(len ? len : 1);
	end = p + (len ? len - 1 : 0);
	*end = '\0';
	for (const struct vent *u = v; up(u, next); u = up(u, next)) {
		const struct tstr *s = next ? u->nname : u->name;

		end -= s->len;
		memcpy(end, s->s, s->len);
		if (end > p)
			*--end = '/';
	}
	return p;
}

/* ---- emitting --------------------------------------------------------- */

/* The link the put of version named, while it is a head of n. */
static struct wk_id version_link(const struct tnode *n, struct wk_id version)
{
	for (uint32_t i = 0; i < n->nheads; i++)
		if (wk_id_eq(n->heads[i].id, version))
			return n->heads[i].link;
	return WK_ID_NONE;
}

struct tree_change *tree_changes_add(struct tree_changes *out)
{
	struct tree_change *c;

	if (out->n == out->alloc) {
		out->alloc = out->alloc ? 2 * out->alloc : 64;
		out->v = xrealloc(out->v, out->alloc * sizeof(*out->v));
	}
	c = &out->v[out->n++];
	memset(c, 0, sizeof(*c));
	return c;
}

static struct tree_change *change_add(struct tree_changes *out,
				      enum tree_change_kind kind,
				      const struct vent *v,
				      const struct vattr *a, char *path)
{
	struct tree_change *c = tree_changes_add(out);

	c->kind = kind;
	c->type = v->kind;
	c->path = path;
	c->node = v->node->id;
	c->version = a->version;
	c->conflict_copy = v->conflict;
	c->mode = a->mode;
	c->mtime_ns = a->mtime_ns;
	c->size = a->size;
	c->hash = a->hash;
	c->link = WK_ID_NONE;
	if (kind == TREE_CH_WRITE && !v->conflict)
		c->link = version_link(v->node, a->version);
	if (v->kind == WK_KIND_SYMLINK && kind == TREE_CH_SYMLINK)
		c->target = xstrdup(v->node->target);
	return c;
}

static char *stage_path(size_t k)
{
	return xasprintf("%s/merge-%zu", TREE_STAGE_DIR, k);
}

static bool content_changed(const struct vattr *a, const struct vattr *b)
{
	return a->size != b->size ||
	       memcmp(a->hash.b, b->hash.b, sizeof(a->hash.b)) != 0;
}

static bool attrs_changed(const struct vattr *a, const struct vattr *b)
{
	return a->mode != b->mode || a->mtime_ns != b->mtime_ns;
}

/* Brings an entry that exists at its new path up to date. */
static void emit_update(struct tree_changes *out, const struct vent *v)
{
	if (v->kind == WK_KIND_FILE && content_changed(&v->a, &v->na))
		change_add(out, TREE_CH_WRITE, v, &v->na, path_of(v, true));
	else if (attrs_changed(&v->a, &v->na))
		change_add(out, TREE_CH_SETATTR, v, &v->na, path_of(v, true));
}

static void emit_create(struct tree_changes *out, const struct vent *v)
{
	static const enum tree_change_kind how[] = {
		[WK_KIND_FILE] = TREE_CH_WRITE,
		[WK_KIND_DIR] = TREE_CH_MKDIR,
		[WK_KIND_SYMLINK] = TREE_CH_SYMLINK,
	};

	change_add(out, how[v->kind], v, &v->na, path_of(v, true));
}

struct dv {
	size_t depth;
	struct vent *v;
};

static int dv_desc(const void *a, const void *b)
{
	const struct dv *x = a, *y = b;

	return x->depth < y->depth ? 1 : x->depth > y->depth ? -1 : 0;
}

static int dv_asc(const void *a, const void *b)
{
	return -dv_desc(a, b);
}

static bool moved(const struct vent *v)
{
	return v->state == VS_OLD &&
	       (v->nparent != v->parent || !tstr_eq(v->nname, v->name));
}

static void emit(struct tree *t, struct tree_changes *out)
{
	struct dv *a = xmalloc((t->ntouched + 1) * sizeof(*a));
	struct dv *b = xmalloc((t->ntouched + 1) * sizeof(*b));
	size_t na = 0, nb = 0, nstage = 0;

	for (size_t i = 0; i < t->ntouched; i++) {
		struct vent *v = t->touched[i];

		if (v->state == VS_GONE || moved(v))
			a[na++] = (struct dv){depth_of(v, false), v};
		if (v->state == VS_NEW || moved(v))
			b[nb++] = (struct dv){depth_of(v, true), v};
	}
	qsort(a, na, sizeof(*a), dv_desc);
	qsort(b, nb, sizeof(*b), dv_asc);
	for (size_t i = 0; i < na; i++) {
		struct vent *v = a[i].v;
		struct tree_change *c;

		if (v->state == VS_GONE) {
			change_add(out, TREE_CH_REMOVE, v, &v->a,
				   path_of(v, false));
			continue;
		}
		v->stage = nstage++;
		c = change_add(out, TREE_CH_RENAME, v, &v->a,
			       path_of(v, false));
		c->new_path = stage_path(v->stage);
	}
	for (size_t i = 0; i < nb; i++) {
		struct vent *v = b[i].v;
		struct tree_change *c;

		if (v->state == VS_NEW) {
			emit_create(out, v);
			continue;
		}
		c = change_add(out, TREE_CH_RENAME, v, &v->a,
			       stage_path(v->stage));
		c->new_path = path_of(v, true);
		emit_update(out, v);
	}
	for (size_t i = 0; i < t->ntouched; i++) {
		struct vent *v = t->touched[i];

		if (v->state == VS_OLD && !moved(v))
			emit_update(out, v);
	}
	free(a);
	free(b);
}

/* ---- committing ------------------------------------------------------- */

static void kid_put(struct vent *p, uint32_t i, struct vent *v)
{
	p->kids[i] = v;
	v->idx = i;
}

/* Directories come first in kids, [0, ndirs), so the walk scans only
 * them; order is otherwise free, so both add and delete are swaps. */
static void kid_add(struct vent *p, struct vent *v)
{
	if (p->nkids == p->akids) {
		p->akids = p->akids ? 2 * p->akids : 4;
		p->kids = xrealloc(p->kids, p->akids * sizeof(*p->kids));
	}
	if (v->kind != WK_KIND_DIR) {
		kid_put(p, p->nkids++, v);
		return;
	}
	if (p->ndirs < p->nkids)
		kid_put(p, p->nkids, p->kids[p->ndirs]);
	p->nkids++;
	kid_put(p, p->ndirs++, v);
}

static void kid_del(struct vent *p, struct vent *v)
{
	uint32_t i = v->idx;

	if (v->kind == WK_KIND_DIR) {
		kid_put(p, i, p->kids[--p->ndirs]);
		i = p->ndirs;
	}
	if (i < --p->nkids)
		kid_put(p, i, p->kids[p->nkids]);
}

static uint64_t vname_hash(const struct vent *v)
{
	return tview_name_hash(v->parent, v->name->hash);
}

static void unhook(struct tree *t, struct vent *v)
{
	pmap_remove(&t->vnames, vname_hash(v), v);
	kid_del(v->parent, v);
}

static void forget(struct tree *t, struct vent *v)
{
	pmap_remove(&t->vkeys, tview_key_hash(v->node->id, v->ver), v);
	if (v->kind == WK_KIND_DIR) {
		for (uint32_t i = 0; i < v->nmem; i++)
			if (v->mem[i]->vent == v)
				v->mem[i]->vent = NULL;
	} else if (!v->conflict && v->node->vent == v) {
		v->node->vent = NULL;
	}
}

void tview_commit(struct tree *t, struct tree_changes *out)
{
	if (out)
		emit(t, out);
	for (size_t i = 0; i < t->ntouched; i++) {
		struct vent *v = t->touched[i];

		if (v->state == VS_GONE || moved(v))
			unhook(t, v);
		if (v->state == VS_GONE)
			forget(t, v);
	}
	for (size_t i = 0; i < t->ntouched; i++) {
		struct vent *v = t->touched[i];

		if (v->state == VS_GONE)
			continue;
		if (v->state == VS_NEW || moved(v)) {
			v->parent = v->nparent;
			tstr_get(v->nname);
			tstr_put(v->name);
			v->name = v->nname;
			kid_add(v->parent, v);
			pmap_insert(&t->vnames, vname_hash(v), v);
		}
		v->a = v->na;
		v->state = VS_OLD;
	}
	for (size_t i = 0; i < t->ntouched; i++)
		if (t->touched[i]->state == VS_GONE)
			tview_vent_free(t->touched[i]);
	t->ntouched = 0;
}

/* ---- reading ---------------------------------------------------------- */

static void fill_entry(const struct vent *v, struct tree_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->name = v->name->s;
	e->kind = v->kind;
	e->node = v->node->id;
	e->version = v->a.version;
	e->conflict_copy = v->conflict;
	e->nmembers = v->kind == WK_KIND_DIR ? v->nmem : 0;
	e->mode = v->a.mode;
	e->mtime_ns = v->a.mtime_ns;
	e->size = v->a.size;
	e->hash = v->a.hash;
	if (v->kind == WK_KIND_SYMLINK)
		e->target = v->node->target;
}

static const struct vent *resolve(const struct tree *t, const char *path)
{
	const struct vent *v = t->vroot;

	while (v && *path) {
		size_t len = strcspn(path, "/");

		if (len)
			v = tview_child(t, v, path, len);
		path += len;
		path += *path == '/';
	}
	return v;
}

int tree_lookup(const struct tree *t, const char *path, struct tree_entry *e)
{
	const struct vent *v = resolve(t, path);

	if (!v)
		return -ENOENT;
	if (e)
		fill_entry(v, e);
	return 0;
}

int tree_dir_members(const struct tree *t, const char *path, struct wk_id *ids,
		     size_t max)
{
	const struct vent *v = resolve(t, path);

	if (!v)
		return -ENOENT;
	if (v->kind != WK_KIND_DIR)
		return -ENOTDIR;
	for (uint32_t i = 0; i < v->nmem && i < max; i++)
		ids[i] = v->mem[i]->id;
	return (int)v->nmem;
}

char *tree_node_path(const struct tree *t, struct wk_id node)
{
	const struct tnode *n = tree_node(t, node);

	if (!n || !n->live || !n->vent)
		return NULL;
	return path_of(n->vent, false);
}

static int visit(const struct vent *dir, char **buf, size_t *alloc, size_t len,
		 tree_visit_fn fn, void *arg)
{
	struct tree_entry e;
	int rc;

	for (uint32_t i = 0; i < dir->nkids; i++) {
		const struct vent *v = dir->kids[i];
		size_t l = len + (len ? 1 : 0) + v->name->len;

		if (l + 1 > *alloc) {
			*alloc = 2 * (l + 1);
			*buf = xrealloc(*buf, *alloc);
		}
		if (len)
			(*buf)[len] = '/';
		memcpy(*buf + l - v->name->len, v->name->s, v->name->len);
		(*buf)[l] = '\0';
		fill_entry(v, &e);
		rc = fn(*buf, &e, arg);
		if (!rc && v->kind == WK_KIND_DIR)
			rc = visit(v, buf, alloc, l, fn, arg);
		if (rc)
			return rc;
		(*buf)[len] = '\0';
	}
	return 0;
}

int tree_foreach(const struct tree *t, tree_visit_fn fn, void *arg)
{
	size_t alloc = 256;
	char *buf = xmalloc(alloc);
	int rc;

	buf[0] = '\0';
	rc = visit(t->vroot, &buf, &alloc, 0, fn, arg);
	free(buf);
	return rc;
}

struct dump {
	char **lines;
	size_t n, alloc, bytes;
};

static int dump_one(const char *path, const struct tree_entry *e, void *arg)
{
	static const char kinds[] = "?fdl";
	struct dump *d = arg;
	char hash[WK_HASH_STRLEN] = "-";

	if (e->kind == WK_KIND_FILE)
		wk_hash_str(&e->hash, hash);
	if (d->n == d->alloc) {
		d->alloc = d->alloc ? 2 * d->alloc : 64;
		d->lines = xrealloc(d->lines, d->alloc * sizeof(*d->lines));
	}
	d->lines[d->n] = xasprintf("%s %c %04o %" PRId64 " %s %s\n", path,
				   kinds[e->kind], e->mode, e->mtime_ns, hash,
				   e->target ? e->target : "-");
	d->bytes += strlen(d->lines[d->n++]);
	return 0;
}

/* Orders lines by their path, the text before the first space, bytewise
 * (comparing whole lines would put "a b" before "a/b" by the space). */
static int line_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t lx = strchr(x, ' ') - x, ly = strchr(y, ' ') - y;
	int c = memcmp(x, y, lx < ly ? lx : ly);

	if (c)
		return c;
	return lx < ly ? -1 : lx > ly;
}

char *tree_dump(const struct tree *t)
{
	struct dump d = {0};
	char *out, *p;

	tree_foreach(t, dump_one, &d);
	if (d.n > 1)
		qsort(d.lines, d.n, sizeof(*d.lines), line_cmp);
	p = out = xmalloc(d.bytes + 1);
	for (size_t i = 0; i < d.n; i++) {
		size_t l = strlen(d.lines[i]);

		memcpy(p, d.lines[i], l);
		p += l;
		free(d.lines[i]);
	}
	*p = '\0';
	free(d.lines);
	return out;
}

/* ---- checking --------------------------------------------------------- */

static int check_vent(const struct tree *t, const struct vent *v, size_t *count,
		      char *why, size_t whylen)
{
	(*count)++;
	if (v->nparent != v->parent || v->nname != v->name ||
	    v->state != VS_OLD) {
		snprintf(why, whylen, "vent %s left mid-round", v->name->s);
		return -EUCLEAN;
	}
	if (v != t->vroot &&
	    tview_child(t, v->parent, v->name->s, v->name->len) != v) {
		snprintf(why, whylen, "vent %s not found by name", v->name->s);
		return -EUCLEAN;
	}
	if (tview_by_key(t, v->node->id, v->ver) != v) {
		snprintf(why, whylen, "vent %s not found by key", v->name->s);
		return -EUCLEAN;
	}
	for (uint32_t i = 0; i < v->nmem; i++) {
		const struct tnode *m = v->mem[i];

		if (m->vent != v || !m->live) {
			snprintf(why, whylen, "member of %s stale", v->name->s);
			return -EUCLEAN;
		}
		for (const struct tnode *c = m->first; c; c = c->next) {
			if (c->live && (!c->vent || c->vent->parent != v)) {
				snprintf(why, whylen,
					 "%s/%s not shown (%s in %s)",
					 v->name->s, c->name->s,
					 c->vent ? c->vent->name->s : "-",
					 c->vent && c->vent->parent
						 ? c->vent->parent->name->s
						 : "-");
				return -EUCLEAN;
			}
		}
	}
	for (uint32_t i = 0; i < v->nkids; i++) {
		int rc;

		if (v->kids[i]->parent != v || v->kids[i]->idx != i ||
		    (v->kids[i]->kind == WK_KIND_DIR) != (i < v->ndirs)) {
			snprintf(why, whylen, "bad kid link in %s", v->name->s);
			return -EUCLEAN;
		}
		rc = check_vent(t, v->kids[i], count, why, whylen);
		if (rc)
			return rc;
	}
	return 0;
}

int tview_check(const struct tree *t, char *why, size_t whylen)
{
	size_t count = 0;
	int rc = check_vent(t, t->vroot, &count, why, whylen);

	if (rc)
		return rc;
	if (count != t->vkeys.n || count != t->vnames.n + 1) {
		snprintf(why, whylen, "%zu vents, %zu keys, %zu names", count,
			 t->vkeys.n, t->vnames.n);
		return -EUCLEAN;
	}
	return 0;
}
