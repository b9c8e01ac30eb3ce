/*
 * apply_index.c - keeping the recorder's index in line with the merge
 * engine's view after remote ops (contract: apply_index.h).
 *
 * reconcile_one() is the unit of both ways: it puts one view entry into
 * the index at its path (adding it, or moving the node there by id,
 * parking whatever held the name under a temporary one) and copies its
 * attributes.  index_sync_all() runs it over the whole view and sweeps
 * what the view no longer shows; index_sync_batch() runs it over the
 * paths a batch changed and removes what its REMOVEs took away.  A
 * .wkfsignore the batch added, changed, moved or removed has its rules
 * reloaded at once: they judge names created from then on, as a local
 * edit's would (a rule never untracks what is tracked already).
 */
#include "fs.h"
#include "apply_index.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "beneath.h"
#include "content.h"
#include "wlog.h"
#include "xalloc.h"

/* Names of parked entries: no real name starts with a control byte that
 * the index would ever be given by the tree (tree_op_valid). */
#define PARKED "\x01parked-"

struct reconcile {
	struct index_sync *s;
	struct nindex *ix;
	size_t changed;
	struct nnode **parked; /* entries moved out of the way */
	size_t nparked, aparked;
};

#define RULES_FILE ".wkfsignore"

static bool is_rules(const struct nnode *n)
{
	return n->kind == WK_KIND_FILE && strcmp(n->name, RULES_FILE) == 0;
}

/* Reads the rules of dir's .wkfsignore again, as it is on disk now. */
static void reload_rules(struct reconcile *rc, struct nnode *dir)
{
	char path[4096];

	if (dir && nindex_path(dir, path, sizeof(path)) == 0)
		rec_reload_ignore_l(rc->s->fs->rec, path);
}

static void clear_marks(struct nnode *n)
{
	n->scan_mark = 0;
	for (struct nnode *c = n->first_child; c; c = c->next_sibling)
		clear_marks(c);
}

static struct nnode *resolve_dir(struct nindex *ix, const char *path,
				 size_t len)
{
	struct nnode *n = nindex_lookup(ix, path, len);

	return n && n->kind == WK_KIND_DIR ? n : NULL;
}

/* Moves whatever holds parent/name out of the way (it is placed, or
 * removed, when its own entry comes or at the end). */
static void park(struct reconcile *rc, struct nnode *parent, const char *name,
		 struct nnode *keep)
{
	struct nnode *o = nindex_child(rc->ix, parent, name);
	char tmp[64];

	if (!o || o == keep)
		return;
	snprintf(tmp, sizeof(tmp), PARKED "%p", (void *)o);
	nindex_move(rc->ix, o, o->parent, tmp);
	if (rc->nparked == rc->aparked) {
		rc->aparked = rc->aparked ? 2 * rc->aparked : 8;
		rc->parked =
			xrealloc(rc->parked, rc->aparked * sizeof(*rc->parked));
	}
	rc->parked[rc->nparked++] = o;
}

/* The id the index uses for e: the version for a conflict copy; for a
 * merged directory the member the index already has. */
static struct wk_id index_id(struct reconcile *rc, const char *path,
			     const struct tree_entry *e)
{
	struct wk_id ids[16];
	int n;

	if (e->conflict_copy)
		return e->version;
	if (e->kind != WK_KIND_DIR || e->nmembers < 2)
		return e->node;
	n = tree_dir_members(rc->s->tree, path, ids, 16);
	for (int i = 0; i < n && i < 16; i++)
		if (nindex_get(rc->ix, ids[i]))
			return ids[i];
	return e->node;
}

static bool attrs_differ(const struct nnode *n, const struct tree_entry *e)
{
	if (e->kind != WK_KIND_SYMLINK && n->mode != (e->mode & 07777))
		return true;
	if (e->kind == WK_KIND_SYMLINK)
		return !n->target || !e->target || strcmp(n->target, e->target);
	if (e->kind != WK_KIND_FILE)
		return false;
	if (n->size != e->size || n->mtime_ns != e->mtime_ns ||
	    !wk_id_eq(n->content, e->version))
		return true;
	return e->size &&
	       (!n->has_hash || memcmp(&n->hash, &e->hash, sizeof(e->hash)));
}

static void set_attrs(struct nnode *n, const struct tree_entry *e)
{
	if (e->kind != WK_KIND_SYMLINK)
		n->mode = e->mode & 07777;
	if (e->kind == WK_KIND_SYMLINK && e->target &&
	    (!n->target || strcmp(n->target, e->target))) {
		free(n->target);
		n->target = xstrdup(e->target);
		n->size = strlen(e->target);
	}
	if (e->kind == WK_KIND_FILE) {
		n->size = e->size;
		n->mtime_ns = e->mtime_ns;
		n->content = n->version = e->version;
		n->has_hash = true;
		if (e->size)
			n->hash = e->hash;
		else
			content_hash_buf("", 0, &n->hash);
	}
	if (e->kind == WK_KIND_DIR && e->mtime_ns)
		n->mtime_ns = e->mtime_ns;
}

static int reconcile_one(const char *path, const struct tree_entry *e,
			 void *arg)
{
	struct reconcile *rc = arg;
	const struct index_sync *s = rc->s;
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	struct nnode *parent = resolve_dir(rc->ix, path, plen), *n;
	struct nnode *rules_was_in = NULL; /* dir it held rules for */
	struct wk_id id = index_id(rc, path, e);
	bool touched = false;
	struct stat st;

	if (!parent)
		return 0; /* under something the index cannot hold */
	n = nindex_get(rc->ix, id);
	if (n && n->kind != e->kind) {
		wk_warn("%s: index and tree disagree on its kind", path);
		return 0;
	}
	if (!n) {
		park(rc, parent, e->name, NULL);
		if (nindex_add(rc->ix, id, parent, e->name, e->kind, &n))
			return 0;
		touched = true;
	} else if (n->parent != parent || strcmp(n->name, e->name)) {
		if (is_rules(n))
			rules_was_in = n->parent;
		park(rc, parent, e->name, n);
		if (nindex_move(rc->ix, n, parent, e->name)) {
			wk_warn("%s: cannot place it in the index", path);
			return 0;
		}
		touched = true;
	}
	n->scan_mark = 1;
	n->copy_of = e->conflict_copy ? e->node : WK_ID_ROOT;
	if (attrs_differ(n, e)) {
		set_attrs(n, e);
		touched = true;
	}
	if (!touched)
		return 0;
	rc->changed++;
	if (rules_was_in)
		reload_rules(rc, rules_was_in);
	if (is_rules(n))
		reload_rules(rc, parent);
	if (beneath_lstat(s->fs->rootfd, path, &st) == 0) {
		n->ino = st.st_ino;
		/* At open (a recovered batch) no finode exists yet. */
		if (s->inodes)
			inode_tie(s->fs, st.st_dev, st.st_ino, n->id);
	}
	if (!nnode_is_copy(n))
		rec_node_sync_l(s->fs->rec, n->id);
	return 0;
}

/* Removes what the view no longer shows, children first. */
static void sweep(struct reconcile *rc, struct nnode *dir)
{
	struct nnode *c = dir->first_child, *next;

	for (; c; c = next) {
		next = c->next_sibling;
		sweep(rc, c);
		if (!c->scan_mark && !c->first_child) {
			struct wk_id id = c->id;
			bool copy = nnode_is_copy(c), rules = is_rules(c);

			nindex_remove(rc->ix, c);
			if (rules)
				reload_rules(rc, dir);
			if (!copy)
				rec_node_sync_l(rc->s->fs->rec, id);
			rc->changed++;
		}
	}
}

/* Removes n and everything below it from the index, children first. */
static void remove_subtree(struct reconcile *rc, struct nnode *n)
{
	struct wk_id id = n->id;
	bool copy = nnode_is_copy(n);
	struct nnode *rules_of = is_rules(n) ? n->parent : NULL;

	while (n->first_child)
		remove_subtree(rc, n->first_child);
	nindex_remove(rc->ix, n);
	reload_rules(rc, rules_of);
	if (!copy)
		rec_node_sync_l(rc->s->fs->rec, id);
	rc->changed++;
}

size_t index_sync_all(struct index_sync *s)
{
	struct reconcile rc = {.s = s, .ix = rec_index(s->fs->rec)};
	struct nnode *root = nindex_root(rc.ix);

	clear_marks(root);
	tree_foreach(s->tree, reconcile_one, &rc);
	sweep(&rc, root);
	free(rc.parked);
	return rc.changed;
}

/* The path a change leaves an entry at, or NULL (a REMOVE, a move into
 * staging). */
static const char *final_path(const struct tree_change *c)
{
	const char *p = c->kind == TREE_CH_RENAME ? c->new_path : c->path;

	if (c->kind == TREE_CH_REMOVE ||
	    strncmp(p, TREE_STAGE_DIR "/", strlen(TREE_STAGE_DIR) + 1) == 0)
		return NULL;
	return p;
}

/* Puts the view's entry at path (if any) into the index. */
static void sync_path(struct reconcile *rc, const char *path)
{
	struct tree_entry e;

	if (tree_lookup(rc->s->tree, path, &e) == 0)
		reconcile_one(path, &e, rc);
}

/* True when an entry parked this round is still parked (nothing was
 * removed from the index since, so the pointers are good). */
static bool still_parked(const struct reconcile *rc)
{
	for (size_t i = 0; i < rc->nparked; i++)
		if (strncmp(rc->parked[i]->name, PARKED, strlen(PARKED)) == 0)
			return true;
	return false;
}

/* What the index holds at path, unless the view shows that very node
 * there: it goes, with what is below it. */
static void drop_stale(struct reconcile *rc, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	struct nnode *parent = resolve_dir(rc->ix, path, plen), *n;
	struct tree_entry e;

	n = parent ? nindex_child(rc->ix, parent, slash ? slash + 1 : path)
		   : NULL;
	if (!n)
		return;
	if (tree_lookup(rc->s->tree, path, &e) == 0 && e.kind == n->kind &&
	    wk_id_eq(index_id(rc, path, &e), n->id))
		return;
	remove_subtree(rc, n);
}

size_t index_sync_batch(struct index_sync *s, const struct tree_changes *ch,
			const struct wk_op *ops, size_t n)
{
	struct reconcile rc = {.s = s, .ix = rec_index(s->fs->rec)};

	s->full = false;
	/* Where entries end up, in the list's order: parents first. */
	for (size_t i = 0; i < ch->n; i++) {
		const char *p = final_path(&ch->v[i]);

		if (p)
			sync_path(&rc, p);
	}
	/* A put can change the version shown (the next local put's base)
	 * without a WRITE: two heads with one content show once. */
	for (size_t i = 0; i < n; i++) {
		char *p = tree_node_path(s->tree, ops[i].node);

		if (p) {
			sync_path(&rc, p);
			free(p);
		}
	}
	/* A name one node took from another whose own entry did not come
	 * (or the parked node's place was elsewhere): the full walk
	 * settles it.  Rare: swaps and collisions. */
	s->full = still_parked(&rc);
	free(rc.parked);
	if (s->full)
		return rc.changed + index_sync_all(s);
	for (size_t i = 0; i < ch->n; i++)
		if (ch->v[i].kind == TREE_CH_REMOVE)
			drop_stale(&rc, ch->v[i].path);
	return rc.changed;
}
