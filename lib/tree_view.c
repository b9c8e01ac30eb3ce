/*
 * tree_view.c - from node state to the view, one directory at a time.
 *
 * The view is a tree of struct vent: what the backing directory shows.  A
 * view directory may stand for several directory nodes (directories made
 * with the same name concurrently merge); a file node may show as several
 * entries (its main entry and one conflict copy per losing head).  Every
 * entry is keyed by (node, version): (file, NONE) is a file's main entry,
 * (file, put id) one of its conflict copies, (dir, NONE) a view directory
 * keyed by its lowest member, (symlink, NONE) a symlink.
 *
 * tview_update() walks down from the root into directories whose nodes were
 * marked dirty, recomputes their entries from scratch (recompute_dir), and
 * claims for each entry the vent of the same key wherever it was before, so
 * that a move stays a move.  Vents of recomputed directories that nobody
 * claimed are gone.  tree_change.c then turns the differences into the
 * change list and commits the new state.
 *
 * Entries of one directory are resolved by rules that only look at the ops:
 * the highest live head of a file keeps its name; entries that share a name
 * are ordered by their name stamp and the highest keeps it, directories of
 * one name merge first; every other entry gets tree_conflict_name() of its
 * own stamp, taking the first free one in order of stamps.
 */
#include "tree_view.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* One entry a directory should show, while it is being recomputed. */
struct dent {
	struct tstr *pname;   /* the node's own name */
	struct wk_id stamp;   /* name stamp, or the conflict version */
	struct tnode *node;   /* file or symlink node, a dir member */
	struct wk_id ver;     /* WK_ID_NONE or the conflict version */
	const struct tver *v; /* version shown (files, symlinks) */
	uint8_t kind;
	bool secondary; /* takes a conflict name */
	bool merged;	/* folded into another dir entry of its name */
	uint32_t next;	/* next entry of the same name, index + 1 */
	uint32_t mnext; /* next dir merged into this one, index + 1 */
	struct tstr *fname;
};

struct nslot {
	struct tstr *s; /* NULL: empty */
	uint32_t idx;
	bool owned; /* a conflict name the table holds a reference to */
};

struct tview_scratch {
	struct dent *d;
	size_t nd, ad;
	struct nslot *tab;
	size_t tabcap;
	uint32_t *sec;
	size_t asec;
	const struct tver **hv;
	size_t ahv;
	struct tnode **mem;
	size_t amem;
};

#define GROW(p, alloc, need)                                                   \
	do {                                                                   \
		if ((need) > (alloc)) {                                        \
			(alloc) = (need) > 2 * (alloc) ? (need) : 2 * (alloc); \
			(p) = xrealloc((p), (alloc) * sizeof(*(p)));           \
		}                                                              \
	} while (0)

/* ---- keys ------------------------------------------------------------- */

struct vkey {
	struct wk_id node, ver;
};

uint64_t tview_key_hash(struct wk_id node, struct wk_id ver)
{
	return tree_hash_id(node) ^ (tree_hash_id(ver) * 31);
}

static bool vkey_eq(const void *item, const void *key)
{
	const struct vent *v = item;
	const struct vkey *k = key;

	return wk_id_eq(v->node->id, k->node) && wk_id_eq(v->ver, k->ver);
}

struct vent *tview_by_key(const struct tree *t, struct wk_id node,
			  struct wk_id ver)
{
	struct vkey k = {node, ver};

	return pmap_find(&t->vkeys, tview_key_hash(node, ver), vkey_eq, &k);
}

struct vname {
	const struct vent *parent;
	const char *s;
	size_t len;
	uint64_t hash;
};

uint64_t tview_name_hash(const struct vent *parent, uint64_t name_hash)
{
	return name_hash ^ tree_hash_bytes(&parent, sizeof(parent));
}

static bool vname_eq(const void *item, const void *key)
{
	const struct vent *v = item;
	const struct vname *k = key;

	return v->parent == k->parent && v->name->len == k->len &&
	       memcmp(v->name->s, k->s, k->len) == 0;
}

struct vent *tview_child(const struct tree *t, const struct vent *dir,
			 const char *name, size_t len)
{
	struct vname k = {dir, name, len, tree_hash_bytes(name, len)};

	return pmap_find(&t->vnames, tview_name_hash(dir, k.hash), vname_eq,
			 &k);
}

/* ---- vents ------------------------------------------------------------ */

static struct vent *vent_new(struct tree *t, uint8_t kind, struct tnode *node,
			     struct wk_id ver)
{
	struct vent *v = xcalloc(1, sizeof(*v));

	v->kind = kind;
	v->node = node;
	v->ver = ver;
	v->state = VS_NEW;
	v->full = kind == WK_KIND_DIR;
	pmap_insert(&t->vkeys, tview_key_hash(node->id, ver), v);
	return v;
}

void tview_vent_free(struct vent *v)
{
	tstr_put(v->name);
	tstr_put(v->nname);
	free(v->cg);
	free(v->kids);
	free(v->mem);
	free(v);
}

void tview_init(struct tree *t)
{
	struct vent *r;

	pmap_init(&t->vkeys);
	pmap_init(&t->vnames);
	t->vs = xcalloc(1, sizeof(*t->vs));
	r = vent_new(t, WK_KIND_DIR, t->root, WK_ID_NONE);
	r->state = VS_OLD;
	r->name = tstr_get(t->root->name);
	r->nname = tstr_get(t->root->name);
	r->mem = xmalloc(sizeof(*r->mem));
	r->mem[0] = t->root;
	r->nmem = r->amem = 1;
	r->a.mode = r->na.mode = t->root->mode;
	t->root->vent = r;
	t->vroot = r;
}

static void free_subtree(struct vent *v)
{
	for (uint32_t i = 0; i < v->nkids; i++)
		free_subtree(v->kids[i]);
	tview_vent_free(v);
}

void tview_release(struct tree *t)
{
	struct tview_scratch *s = t->vs;

	free_subtree(t->vroot);
	pmap_release(&t->vkeys);
	pmap_release(&t->vnames);
	free(t->touched);
	free(t->walked);
	free(t->stack);
	free(t->mdrop);
	free(t->emit_a);
	free(t->emit_b);
	free(s->d);
	free(s->tab);
	free(s->sec);
	free(s->hv);
	free(s->mem);
	free(s);
}

static void push_vent(struct vent ***arr, size_t *n, size_t *alloc,
		      struct vent *v)
{
	GROW(*arr, *alloc, *n + 1);
	(*arr)[(*n)++] = v;
}

static bool members_flagged(const struct vent *v)
{
	for (uint32_t i = 0; i < v->nmem; i++)
		if (v->mem[i]->dflags)
			return true;
	return false;
}

/* ---- recomputing one directory ---------------------------------------- */

static bool content_eq(const struct tver *a, const struct tver *b)
{
	if (a->size == 0 && b->size == 0)
		return true;
	return a->size == b->size &&
	       memcmp(a->hash.b, b->hash.b, sizeof(a->hash.b)) == 0;
}

static struct dent *dent_add(struct tview_scratch *s, struct tnode *n,
			     uint8_t kind)
{
	struct dent *d;

	GROW(s->d, s->ad, s->nd + 1);
	d = &s->d[s->nd++];
	memset(d, 0, sizeof(*d));
	d->pname = n->name;
	d->stamp = n->stamp;
	d->node = n;
	d->ver = WK_ID_NONE;
	d->kind = kind;
	return d;
}

static int hv_cmp(const void *a, const void *b)
{
	const struct tver *x = *(const struct tver *const *)a;
	const struct tver *y = *(const struct tver *const *)b;

	return -wk_id_cmp(x->id, y->id);
}

/* A file's entries: the highest head under its name, then every other
 * head whose content no higher head shows already. */
static void add_file(struct tview_scratch *s, struct tnode *n)
{
	const struct tver **hv;
	uint32_t nh = n->nheads;

	GROW(s->hv, s->ahv, nh);
	hv = s->hv;
	for (uint32_t i = 0; i < nh; i++)
		hv[i] = &n->heads[i];
	if (nh > 1)
		qsort(hv, nh, sizeof(*hv), hv_cmp);
	dent_add(s, n, WK_KIND_FILE)->v = hv[0];
	for (uint32_t i = 1; i < nh; i++) {
		struct dent *d;
		uint32_t j;

		for (j = 0; j < i; j++)
			if (content_eq(hv[i], hv[j]))
				break;
		if (j < i)
			continue;
		d = dent_add(s, n, WK_KIND_FILE);
		d->v = hv[i];
		d->ver = hv[i]->id;
		d->stamp = hv[i]->id;
		d->secondary = true;
	}
}

static void gather(struct tview_scratch *s, const struct vent *dir)
{
	s->nd = 0;
	for (uint32_t m = 0; m < dir->nmem; m++) {
		for (struct tnode *c = dir->mem[m]->first; c; c = c->next) {
			struct dent *d;

			if (!c->live)
				continue;
			if (c->kind == WK_KIND_FILE) {
				add_file(s, c);
				continue;
			}
			d = dent_add(s, c, c->kind);
			for (uint32_t i = 0; i < c->nheads; i++)
				if (wk_id_eq(c->heads[i].id, c->id))
					d->v = &c->heads[i];
		}
	}
}

/* Finds name in the name table: the slot holding it or the empty one. */
static struct nslot *tab_slot(struct tview_scratch *s, const struct tstr *name)
{
	size_t mask = s->tabcap - 1, i = name->hash & mask;

	while (s->tab[i].s && !tstr_eq(s->tab[i].s, name))
		i = (i + 1) & mask;
	return &s->tab[i];
}

static void tab_reset(struct tview_scratch *s, size_t entries)
{
	size_t cap = 16;

	while (cap < 2 * entries + 2)
		cap *= 2;
	if (cap > s->tabcap) {
		free(s->tab);
		s->tab = xmalloc(cap * sizeof(*s->tab));
		s->tabcap = cap;
	}
	memset(s->tab, 0, s->tabcap * sizeof(*s->tab));
}

/* Entries sharing a name: dirs merge into the highest-stamped one, then
 * the highest stamp keeps the name and the others become secondary. */
static void resolve_group(struct tview_scratch *s, uint32_t head)
{
	struct dent *d = s->d;
	uint32_t top = UINT32_MAX, dir = UINT32_MAX;

	for (uint32_t i = head + 1; i; i = d[i - 1].next) {
		if (d[i - 1].kind != WK_KIND_DIR)
			continue;
		if (dir == UINT32_MAX ||
		    wk_id_cmp(d[i - 1].stamp, d[dir].stamp) > 0)
			dir = i - 1;
	}
	for (uint32_t i = head + 1; i; i = d[i - 1].next) {
		uint32_t k = i - 1;

		if (d[k].kind == WK_KIND_DIR && k != dir) {
			d[k].merged = true;
			d[k].mnext = d[dir].mnext;
			d[dir].mnext = k + 1;
			continue;
		}
		if (top == UINT32_MAX ||
		    wk_id_cmp(d[k].stamp, d[top].stamp) > 0)
			top = k;
	}
	for (uint32_t i = head + 1; i; i = d[i - 1].next)
		if (!d[i - 1].merged && i - 1 != top)
			d[i - 1].secondary = true;
}

static int sec_cmp(const void *a, const void *b, void *arg)
{
	const struct dent *d = arg;

	return wk_id_cmp(d[*(const uint32_t *)a].stamp,
			 d[*(const uint32_t *)b].stamp);
}

static void assign_names(struct tree *t, struct tview_scratch *s)
{
	char buf[WK_NAME_MAX + 1];
	size_t nsec = 0;

	GROW(s->sec, s->asec, s->nd);
	for (uint32_t i = 0; i < s->nd; i++) {
		if (s->d[i].merged)
			continue;
		if (s->d[i].secondary)
			s->sec[nsec++] = i;
		else
			s->d[i].fname = tstr_get(s->d[i].pname);
	}
	if (nsec > 1)
		qsort_r(s->sec, nsec, sizeof(*s->sec), sec_cmp, s->d);
	for (size_t k = 0; k < nsec; k++) {
		struct dent *d = &s->d[s->sec[k]];

		for (unsigned n = 0;; n++) {
			struct tstr *c;
			struct nslot *slot;

			tree_conflict_name(buf, d->pname->s, d->stamp,
					   tree_op_device(t, d->stamp), n);
			c = tstr_new(buf, strlen(buf));
			slot = tab_slot(s, c);
			if (!slot->s) {
				slot->s = c;
				slot->idx = s->sec[k];
				slot->owned = true;
				d->fname = tstr_get(c);
				break;
			}
			tstr_put(c);
		}
	}
}

static int mem_cmp(const void *a, const void *b)
{
	return wk_id_cmp((*(struct tnode *const *)a)->id,
			 (*(struct tnode *const *)b)->id);
}

/* Sets the members of dir vent v; true when they changed. */
static bool set_members(struct vent *v, struct tnode **m, uint32_t n)
{
	bool same = n == v->nmem;

	qsort(m, n, sizeof(*m), mem_cmp);
	for (uint32_t i = 0; same && i < n; i++)
		same = v->mem[i] == m[i];
	if (same)
		return false;
	/* Members that leave must not point here any more. */
	for (uint32_t i = 0; i < v->nmem; i++)
		if (v->mem[i]->vent == v)
			v->mem[i]->vent = NULL;
	GROW(v->mem, v->amem, n);
	memcpy(v->mem, m, n * sizeof(*m));
	v->nmem = n;
	return true;
}

static void file_attrs(struct vattr *a, const struct tnode *n,
		       const struct tver *v)
{
	a->mode = n->mode;
	a->mtime_ns = wk_id_cmp(n->mtime_stamp, v->id) > 0 ? n->mtime_ns
							   : v->mtime_ns;
	a->size = v->size;
	a->hash = v->hash;
	a->version = v->id;
}

/* Claims the vent for entry k of directory dir. */
static struct vent *claim(struct tree *t, struct tview_scratch *s,
			  struct vent *dir, uint32_t k, bool push)
{
	struct dent *d = &s->d[k];
	struct tnode *key = d->node, *win = d->node;
	struct vent *v;
	uint32_t nm = 0;

	if (d->kind == WK_KIND_DIR) {
		for (uint32_t i = k + 1; i; i = s->d[i - 1].mnext) {
			struct tnode *m = s->d[i - 1].node;

			GROW(s->mem, s->amem, nm + 1);
			s->mem[nm++] = m;
			if (wk_id_cmp(m->id, key->id) < 0)
				key = m;
		}
	}
	v = tview_by_key(t, key->id, d->ver);
	if (!v)
		v = vent_new(t, d->kind, key, d->ver);
	if (v->round != t->round) {
		v->round = t->round;
		push_vent(&t->touched, &t->ntouched, &t->atouched, v);
	}
	v->nparent = dir;
	if (v->name && tstr_eq(d->fname, v->name)) {
		/* Same text: share it, so "unchanged" is a pointer test. */
		tstr_put(d->fname);
		d->fname = tstr_get(v->name);
	}
	tstr_put(v->nname);
	v->nname = d->fname;
	d->fname = NULL;
	v->conflict = !wk_id_eq(d->ver, WK_ID_NONE);
	memset(&v->na, 0, sizeof(v->na));
	if (d->kind != WK_KIND_DIR) {
		file_attrs(&v->na, d->node, d->v);
		if (!v->conflict)
			d->node->vent = v;
		return v;
	}
	if (set_members(v, s->mem, nm))
		v->full = true;
	for (uint32_t i = 0; i < nm; i++)
		v->mem[i]->vent = v;
	v->na.mode = win->mode;
	v->na.mtime_ns = win->mtime_ns;
	v->na.version = WK_ID_NONE;
	/* Without push, the caller walks the committed kids itself. */
	if ((push || v->parent != dir) &&
	    (v->state == VS_NEW || v->full || members_flagged(v)))
		push_vent(&t->stack, &t->nstack, &t->astack, v);
	return v;
}

static void recompute_dir(struct tree *t, struct vent *dir)
{
	struct tview_scratch *s = t->vs;
	bool groups = false;

	gather(s, dir);
	tab_reset(s, s->nd);
	for (uint32_t i = 0; i < s->nd; i++) {
		struct nslot *slot;

		if (s->d[i].secondary)
			continue;
		slot = tab_slot(s, s->d[i].pname);
		if (!slot->s) {
			slot->s = s->d[i].pname;
			slot->idx = i;
			continue;
		}
		s->d[i].next = s->d[slot->idx].next;
		s->d[slot->idx].next = i + 1;
		groups = true;
	}
	if (groups)
		for (size_t j = 0; j < s->tabcap; j++)
			if (s->tab[j].s && s->d[s->tab[j].idx].next)
				resolve_group(s, s->tab[j].idx);
	assign_names(t, s);
	for (size_t j = 0; j < s->tabcap; j++)
		if (s->tab[j].owned)
			tstr_put(s->tab[j].s);
	dir->nsec = 0;
	for (uint32_t i = 0; i < s->nd; i++) {
		if (s->d[i].merged)
			continue;
		dir->nsec += s->d[i].secondary;
		claim(t, s, dir, i, true);
	}
	push_vent(&t->walked, &t->nwalked, &t->awalked, dir);
}

/* ---- the fast path ---------------------------------------------------- */

/*
 * Most rounds change a few children of a directory whose entries have no
 * conflict names at all.  Then the entries of the other children cannot
 * change, and each changed child's entry can be claimed alone, as long as
 * it is a single entry (no conflict copy) under a name nobody else holds.
 * Anything else goes the full way; both give the same view.
 */

static void bucket(struct tree *t, struct vent *dir, struct tnode *c)
{
	if (dir->cg_round != t->round) {
		dir->cg_round = t->round;
		dir->ncg = 0;
	}
	GROW(dir->cg, dir->acg, dir->ncg + 1);
	dir->cg[dir->ncg].c = c;
	dir->cg[dir->ncg++].old = c->vent;
}

/* Files out of t->chg into the directories they were or are shown in. */
static void sort_changes(struct tree *t)
{
	for (size_t i = 0; i < t->nchg; i++) {
		struct tnode *c = t->chg[i];
		struct vent *now = NULL, *was = NULL;

		c->dflags &= (uint8_t)~TN_CHANGED;
		if (c->live && c->parent && c->parent->vent)
			now = c->parent->vent;
		if (c->vent && c->vent->state != VS_NEW)
			was = c->vent->parent;
		/* A merged directory's members change: not for the fast
		 * path, and it must be judged now, before claims change it. */
		if (c->kind == WK_KIND_DIR && c->vent && c->vent->nmem > 1) {
			if (was)
				was->full = true;
			if (now)
				now->full = true;
		}
		if (now)
			bucket(t, now, c);
		if (was && was != now)
			bucket(t, was, c);
	}
	t->nchg = 0;
}

static bool own_entry(const struct vent *v, const struct tnode *c)
{
	if (v->kind == WK_KIND_DIR)
		return v->nmem == 1 && v->mem[0] == c;
	return v->node == c && !v->conflict;
}

static bool shown_in(const struct tnode *c, const struct vent *dir)
{
	return c->live && c->parent && c->parent->vent == dir;
}

/* Pass 1: can every changed child of dir be claimed alone? */
static bool fast_ok(struct tree *t, struct tview_scratch *s, struct vent *dir)
{
	tab_reset(s, dir->ncg);
	for (uint32_t i = 0; i < dir->ncg; i++) {
		struct tnode *c = dir->cg[i].c;
		const struct vent *x;
		struct nslot *slot;

		if (!shown_in(c, dir))
			continue;
		if (c->kind == WK_KIND_FILE && c->nheads > 1) {
			s->nd = 0;
			add_file(s, c);
			if (s->nd > 1)
				return false;
		}
		x = tview_child(t, dir, c->name->s, c->name->len);
		if (x && !own_entry(x, c))
			return false;
		slot = tab_slot(s, c->name);
		if (slot->s)
			return false;
		slot->s = c->name;
	}
	return true;
}

static bool fast_update(struct tree *t, struct vent *dir)
{
	struct tview_scratch *s = t->vs;

	if (dir->full || dir->nsec)
		return false;
	if (dir->cg_round != t->round)
		return true; /* dirty, but no entry of its own changed */
	if (!fast_ok(t, s, dir))
		return false;
	for (uint32_t i = 0; i < dir->ncg; i++) {
		struct tnode *c = dir->cg[i].c;
		struct vent *old = dir->cg[i].old, *v = NULL;

		if (shown_in(c, dir)) {
			s->nd = 0;
			if (c->kind == WK_KIND_FILE) {
				add_file(s, c);
			} else {
				struct dent *d = dent_add(s, c, c->kind);

				for (uint32_t j = 0; j < c->nheads; j++)
					if (wk_id_eq(c->heads[j].id, c->id))
						d->v = &c->heads[j];
			}
			s->d[0].fname = tstr_get(s->d[0].pname);
			v = claim(t, s, dir, 0, false);
		}
		if (old && old != v && old->parent == dir) {
			/* Not ours to walk: claimed elsewhere or dropped. */
			old->left_round = t->round;
			push_vent(&t->mdrop, &t->nmdrop, &t->amdrop, old);
		}
	}
	return true;
}

/* ---- the walk --------------------------------------------------------- */

static void clear_flags(struct vent *v)
{
	for (uint32_t i = 0; i < v->nmem; i++)
		v->mem[i]->dflags = 0;
}

/* Drops v and whatever below it nobody claimed this round. */
static void drop(struct tree *t, struct vent *v)
{
	if (v->state == VS_GONE)
		return;
	v->state = VS_GONE;
	push_vent(&t->touched, &t->ntouched, &t->atouched, v);
	for (uint32_t i = 0; i < v->nkids; i++)
		if (v->kids[i]->round != t->round)
			drop(t, v->kids[i]);
}

void tview_update(struct tree *t, struct tree_changes *out)
{
	t->round++;
	t->ntouched = t->nwalked = t->nstack = t->nmdrop = 0;
	sort_changes(t);
	push_vent(&t->stack, &t->nstack, &t->astack, t->vroot);
	while (t->nstack) {
		struct vent *v = t->stack[--t->nstack];

		bool dirty = v->full;

		for (uint32_t i = 0; !dirty && i < v->nmem; i++)
			dirty = v->mem[i]->dflags & TN_DIRTY;
		if (dirty && !fast_update(t, v)) {
			clear_flags(v);
			v->full = false;
			recompute_dir(t, v);
			continue;
		}
		for (uint32_t i = 0; i < v->ndirs; i++) {
			struct vent *k = v->kids[i];

			if (k->left_round != t->round &&
			    (k->full || members_flagged(k)))
				push_vent(&t->stack, &t->nstack, &t->astack, k);
		}
		clear_flags(v);
	}
	for (size_t i = 0; i < t->nmdrop; i++)
		if (t->mdrop[i]->round != t->round)
			drop(t, t->mdrop[i]);
	for (size_t i = 0; i < t->nwalked; i++) {
		struct vent *dir = t->walked[i];

		for (uint32_t j = 0; j < dir->nkids; j++)
			if (dir->kids[j]->round != t->round)
				drop(t, dir->kids[j]);
	}
	tview_commit(t, out);
}
