/*
 * tree.c - node state and the undo log of the merge engine (see tree.h).
 *
 * Each op is split in two at arrival.  Its commutative part (versions,
 * retirements, mode and mtime registers) is applied at once and never
 * undone.  Its structural part (create-like ops and moves) goes into the
 * undo log, which is kept sorted by op id and replayed in that order: a
 * batch older than the log's tail undoes the tail, then the batch and the
 * tail are applied merged, in order.  Structural decisions (is the parent
 * there, is it a directory, would this make a cycle) look only at
 * structural state, so they are the same on every replica; liveness, which
 * mixes both, is derived and never decides anything here.
 *
 * This file does not compute names or paths; tree_view.c turns the node
 * state into the view and the change list.
 */
#include "tree_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static bool node_eq(const void *item, const void *key)
{
	return wk_id_eq(((const struct tnode *)item)->id,
			*(const struct wk_id *)key);
}

struct tnode *tree_node(const struct tree *t, struct wk_id id)
{
	return pmap_find(&t->nodes, tree_hash_id(id), node_eq, &id);
}

/* The node of id, created as a bare placeholder when first referenced. */
static struct tnode *node_ref(struct tree *t, struct wk_id id)
{
	struct tnode *n = tree_node(t, id);

	if (n)
		return n;
	n = xcalloc(1, sizeof(*n));
	n->id = id;
	n->mode_stamp = WK_ID_ROOT;
	n->mtime_stamp = WK_ID_ROOT;
	pmap_insert(&t->nodes, tree_hash_id(id), n);
	t->st.nodes++;
	return n;
}

static void node_free(struct tnode *n)
{
	tstr_put(n->name);
	free(n->heads);
	free(n->target);
	free(n);
}

/* Retirements are keyed by (version, node) so that a base naming another
 * node's version cannot retire it: the hlc stays as is for pruning. */
static struct wk_id retired_key(const struct tnode *n, struct wk_id v)
{
	return (struct wk_id){v.hlc, v.actor ^ tree_hash_id(n->id)};
}

bool tnode_has_head(const struct tnode *n, struct wk_id id)
{
	for (uint32_t i = 0; i < n->nheads; i++)
		if (wk_id_eq(n->heads[i].id, id))
			return true;
	return false;
}

/* ---- dirty marks and liveness ----------------------------------------- */

/* p's list of entries changed: p and every ancestor get walked again. */
static void mark_dirty(struct tnode *p)
{
	if (!p)
		return;
	p->dflags |= TN_DIRTY;
	for (p = p->parent; p; p = p->parent)
		p->dflags |= TN_SUBDIRTY;
}

/* n's own entry changed (or where it is): its directory is walked again,
 * and the view learns which child to look at (see tview_update). */
static void note_change(struct tree *t, struct tnode *n)
{
	mark_dirty(n->parent);
	if (n->dflags & TN_CHANGED)
		return;
	n->dflags |= TN_CHANGED;
	if (t->nchg == t->achg) {
		t->achg = t->achg ? 2 * t->achg : 256;
		t->chg = xrealloc(t->chg, t->achg * sizeof(*t->chg));
	}
	t->chg[t->nchg++] = n;
}

static bool compute_live(const struct tree *t, const struct tnode *n)
{
	if (!n->created)
		return false;
	if (n == t->root)
		return true;
	if (n->kind == WK_KIND_DIR && n->nlive > 0)
		return true;
	if (n->kind == WK_KIND_FILE)
		return n->nheads > 0;
	return tnode_has_head(n, n->id);
}

/* Recomputes n->live and carries a change up through the parents. */
static void refresh_live(struct tree *t, struct tnode *n)
{
	while (n) {
		bool live = compute_live(t, n);
		struct tnode *p = n->parent;

		if (live == n->live)
			return;
		n->live = live;
		if (!p)
			return;
		note_change(t, n);
		if (live)
			p->nlive++;
		else
			p->nlive--;
		n = p;
	}
}

static void attach(struct tree *t, struct tnode *n, struct tnode *p,
		   struct tstr *name, struct wk_id stamp)
{
	n->parent = p;
	n->prev = NULL;
	n->next = p->first;
	if (p->first)
		p->first->prev = n;
	p->first = n;
	tstr_get(name);
	tstr_put(n->name);
	n->name = name;
	n->stamp = stamp;
	note_change(t, n);
	if (n->live) {
		p->nlive++;
		refresh_live(t, p);
	}
}

static void detach(struct tree *t, struct tnode *n)
{
	struct tnode *p = n->parent;

	note_change(t, n);
	if (n->prev)
		n->prev->next = n->next;
	else
		p->first = n->next;
	if (n->next)
		n->next->prev = n->prev;
	n->parent = n->next = n->prev = NULL;
	if (n->live) {
		p->nlive--;
		refresh_live(t, p);
	}
}

/* ---- the commutative part --------------------------------------------- */

static void add_version(struct tree *t, struct tnode *n, const struct tver *v)
{
	if (idset_get(&t->retired, retired_key(n, v->id)) & OPF_RETIRED)
		return;
	if (n->nheads == n->aheads) {
		n->aheads = n->aheads ? 2 * n->aheads : 1;
		n->heads = xrealloc(n->heads, n->aheads * sizeof(*n->heads));
	}
	n->heads[n->nheads++] = *v;
	note_change(t, n);
	refresh_live(t, n);
}

bool tree_version_retired(const struct tree *t, struct wk_id node,
			  struct wk_id version)
{
	const struct tnode *n = tree_node(t, node);

	return n &&
	       (idset_get(&t->retired, retired_key(n, version)) & OPF_RETIRED);
}

static void retire(struct tree *t, struct tnode *n, struct wk_id v)
{
	idset_set(&t->retired, retired_key(n, v), OPF_RETIRED);
	for (uint32_t i = 0; i < n->nheads; i++) {
		if (!wk_id_eq(n->heads[i].id, v))
			continue;
		n->heads[i] = n->heads[--n->nheads];
		note_change(t, n);
		refresh_live(t, n);
		return;
	}
}

static void set_mode(struct tree *t, struct tnode *n, uint32_t mode,
		     struct wk_id stamp)
{
	if (wk_id_cmp(stamp, n->mode_stamp) <= 0)
		return;
	n->mode = mode;
	n->mode_stamp = stamp;
	note_change(t, n);
}

static void set_mtime(struct tree *t, struct tnode *n, int64_t mtime,
		      struct wk_id stamp)
{
	if (wk_id_cmp(stamp, n->mtime_stamp) <= 0)
		return;
	n->mtime_ns = mtime;
	n->mtime_stamp = stamp;
	note_change(t, n);
}

static void batch_push(struct tree *t, uint8_t kind, const struct wk_op *op,
		       struct tnode *n, struct tnode *p, const char *name)
{
	struct slog *e;

	if (t->nbatch == t->abatch) {
		t->abatch = t->abatch ? 2 * t->abatch : 64;
		t->batch = xrealloc(t->batch, t->abatch * sizeof(*t->batch));
	}
	e = &t->batch[t->nbatch++];
	memset(e, 0, sizeof(*e));
	e->id = op->id;
	e->kind = kind;
	e->node = n;
	e->parent = p;
	e->name = tstr_new(name, strlen(name));
}

static uint8_t kind_of(enum wk_op_kind k)
{
	if (k == WK_OP_MKDIR)
		return WK_KIND_DIR;
	return k == WK_OP_SYMLINK ? WK_KIND_SYMLINK : WK_KIND_FILE;
}

static void take_op(struct tree *t, const struct wk_op *op)
{
	struct tnode *n;
	struct tver v;

	memset(&v, 0, sizeof(v));
	v.id = op->id;
	v.link = WK_ID_NONE;
	switch (op->kind) {
	case WK_OP_MKDIR:
	case WK_OP_CREATE:
	case WK_OP_SYMLINK:
		n = node_ref(t, op->id);
		n->kind = kind_of(op->kind);
		if (op->kind == WK_OP_SYMLINK) {
			n->target = xstrndup(op->target, WK_TARGET_MAX);
			v.hash = op->hash;
			v.size = strlen(n->target);
		}
		v.mtime_ns = op->mtime_ns;
		set_mode(t, n, op->mode, op->id);
		add_version(t, n, &v);
		batch_push(t, SL_CREATE, op, n, node_ref(t, op->parent),
			   op->name);
		break;
	case WK_OP_MOVE:
		batch_push(t, SL_MOVE, op, node_ref(t, op->node),
			   node_ref(t, op->new_parent), op->new_name);
		break;
	case WK_OP_PUT:
		n = node_ref(t, op->node);
		retire(t, n, wk_id_eq(op->base, WK_ID_NONE) ? n->id : op->base);
		v.hash = op->hash;
		v.size = op->size;
		v.mtime_ns = op->mtime_ns;
		if (wk_op_has_link(op) && !wk_id_eq(op->link, op->node))
			v.link = op->link;
		add_version(t, n, &v);
		break;
	case WK_OP_REMOVE:
		n = node_ref(t, op->node);
		retire(t, n, wk_id_eq(op->base, WK_ID_NONE) ? n->id : op->base);
		break;
	case WK_OP_SETATTR:
		n = node_ref(t, op->node);
		if (op->attrs & WK_ATTR_MODE)
			set_mode(t, n, op->mode, op->id);
		if (op->attrs & WK_ATTR_MTIME)
			set_mtime(t, n, op->mtime_ns, op->id);
		break;
	}
}

/* ---- the structural part: undo log ------------------------------------ */

static bool is_self_or_below(const struct tnode *n, const struct tnode *p)
{
	for (; p; p = p->parent)
		if (p == n)
			return true;
	return false;
}

static void do_entry(struct tree *t, struct slog *e)
{
	struct tnode *n = e->node, *p = e->parent;

	e->applied = false;
	if (!p->created || p->kind != WK_KIND_DIR)
		return;
	if (e->kind == SL_CREATE) {
		if (n->created)
			return;
		n->created = true;
		attach(t, n, p, e->name, e->id);
		refresh_live(t, n);
		e->applied = true;
		return;
	}
	if (!n->created || is_self_or_below(n, p))
		return;
	e->old_parent = n->parent;
	e->old_name = tstr_get(n->name);
	e->old_stamp = n->stamp;
	detach(t, n);
	attach(t, n, p, e->name, e->id);
	e->applied = true;
}

static void undo_entry(struct tree *t, struct slog *e)
{
	struct tnode *n = e->node;

	if (!e->applied)
		return;
	detach(t, n);
	if (e->kind == SL_CREATE) {
		n->created = false;
		refresh_live(t, n);
	} else {
		attach(t, n, e->old_parent, e->old_name, e->old_stamp);
		tstr_put(e->old_name);
		e->old_name = NULL;
	}
	e->applied = false;
}

static void slog_release(struct slog *e)
{
	tstr_put(e->name);
	if (e->applied && e->kind == SL_MOVE)
		tstr_put(e->old_name);
}

static int slog_cmp(const void *a, const void *b)
{
	return wk_id_cmp(((const struct slog *)a)->id,
			 ((const struct slog *)b)->id);
}

static void log_append(struct tree *t, const struct slog *e)
{
	if (t->nlog == t->alog) {
		t->alog = t->alog ? 2 * t->alog : 256;
		t->log = xrealloc(t->log, t->alog * sizeof(*t->log));
	}
	t->log[t->nlog++] = *e;
}

static void take_batch(struct tree *t)
{
	struct slog *tail = NULL;
	size_t k = t->nlog, ntail, i = 0, j = 0;

	qsort(t->batch, t->nbatch, sizeof(*t->batch), slog_cmp);
	while (k > 0 && wk_id_cmp(t->log[k - 1].id, t->batch[0].id) > 0)
		k--;
	ntail = t->nlog - k;
	if (ntail) {
		tail = xmalloc(ntail * sizeof(*tail));
		for (size_t u = t->nlog; u-- > k;)
			undo_entry(t, &t->log[u]);
		memcpy(tail, &t->log[k], ntail * sizeof(*tail));
		t->nlog = k;
		t->st.redone += ntail;
	}
	while (i < t->nbatch || j < ntail) {
		struct slog *e;

		if (j == ntail || (i < t->nbatch &&
				   wk_id_cmp(t->batch[i].id, tail[j].id) < 0))
			e = &t->batch[i++];
		else
			e = &tail[j++];
		do_entry(t, e);
		log_append(t, e);
	}
	free(tail);
	t->nbatch = 0;
}

/* ---- the contract ----------------------------------------------------- */

struct tree *tree_new(void)
{
	struct tree *t = xcalloc(1, sizeof(*t));

	pmap_init(&t->nodes);
	idset_init(&t->ops);
	idset_init(&t->retired);
	t->root = node_ref(t, WK_ID_ROOT);
	t->root->kind = WK_KIND_DIR;
	t->root->created = true;
	t->root->live = true;
	t->root->mode = 0755;
	t->root->name = tstr_new("", 0);
	tview_init(t);
	tdev_init(t);
	return t;
}

void tree_free(struct tree *t)
{
	if (!t)
		return;
	tview_release(t);
	for (size_t i = 0; i < t->nlog; i++)
		slog_release(&t->log[i]);
	free(t->log);
	free(t->batch);
	free(t->chg);
	for (size_t i = 0; i <= t->nodes.mask; i++)
		if (t->nodes.v[i].p)
			node_free(t->nodes.v[i].p);
	pmap_release(&t->nodes);
	idset_release(&t->ops);
	idset_release(&t->retired);
	tdev_release(t);
	free(t);
}

int tree_apply(struct tree *t, const struct wk_op *ops, size_t n,
	       struct tree_changes *out)
{
	for (size_t i = 0; i < n; i++) {
		const struct wk_op *op = &ops[i];

		if (!tree_op_valid(op)) {
			t->st.rejected++;
			continue;
		}
		if (op->id.hlc <= t->floor ||
		    (idset_set(&t->ops, op->id, OPF_SEEN) & OPF_SEEN)) {
			t->st.duplicates++;
			continue;
		}
		t->st.applied++;
		tdev_note(t, op);
		take_op(t, op);
	}
	if (t->nbatch)
		take_batch(t);
	tview_update(t, out);
	return 0;
}

void tree_compact(struct tree *t, uint64_t stable_hlc)
{
	size_t k = 0;

	if (stable_hlc <= t->floor)
		return;
	t->floor = stable_hlc;
	while (k < t->nlog && t->log[k].id.hlc <= stable_hlc)
		slog_release(&t->log[k++]);
	if (k) {
		memmove(t->log, t->log + k, (t->nlog - k) * sizeof(*t->log));
		t->nlog -= k;
	}
	idset_prune(&t->ops, stable_hlc);
	idset_prune(&t->retired, stable_hlc);
}

void tree_get_stats(const struct tree *t, struct tree_stats *s)
{
	*s = t->st;
	s->log_len = t->nlog;
	s->floor = t->floor;
	s->device_runs = tdev_runs(t);
}

static int check_node(const struct tree *t, const struct tnode *n, char *why,
		      size_t whylen)
{
	char id[WK_ID_STRLEN];
	uint32_t nlive = 0;
	size_t depth = 0;

	for (const struct tnode *p = n; p->parent; p = p->parent)
		if (++depth > t->st.nodes) {
			snprintf(why, whylen, "cycle through %s",
				 wk_id_str(n->id, id));
			return -EUCLEAN;
		}
	if (n->created && n != t->root && !n->parent) {
		snprintf(why, whylen, "created node %s detached",
			 wk_id_str(n->id, id));
		return -EUCLEAN;
	}
	for (const struct tnode *c = n->first; c; c = c->next) {
		if (c->parent != n) {
			snprintf(why, whylen, "bad parent link at %s",
				 wk_id_str(c->id, id));
			return -EUCLEAN;
		}
		nlive += c->live;
	}
	if (nlive != n->nlive || n->live != compute_live(t, n)) {
		snprintf(why, whylen, "live count wrong at %s",
			 wk_id_str(n->id, id));
		return -EUCLEAN;
	}
	return 0;
}

int tree_check(const struct tree *t, char *why, size_t whylen)
{
	char scratch[8];
	int rc;

	if (!why) {
		why = scratch;
		whylen = sizeof(scratch);
	}
	for (size_t i = 0; i <= t->nodes.mask; i++) {
		if (!t->nodes.v[i].p)
			continue;
		rc = check_node(t, t->nodes.v[i].p, why, whylen);
		if (rc)
			return rc;
	}
	return tview_check(t, why, whylen);
}
