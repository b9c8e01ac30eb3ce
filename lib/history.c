/*
 * history.c - the versions of a path, and the tree at a moment (contract:
 * history.h).
 *
 * Ops are replayed into a fresh merge engine one at a time in (hlc, actor)
 * order.  In that order no op ever lands before one already applied, so
 * the engine never undoes anything and each op's effect on the view can be
 * read right after it: where its node is, what content it shows.
 */
#include "history.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "xalloc.h"

const char *hist_kind_name(enum hist_kind kind)
{
	switch (kind) {
	case HIST_CREATE:
		return "create";
	case HIST_SAVE:
		return "save";
	case HIST_CONFLICT:
		return "conflict copy";
	case HIST_MOVE:
		return "move";
	case HIST_DELETE:
		return "delete";
	case HIST_MKDIR:
		return "mkdir";
	case HIST_SYMLINK:
		return "symlink";
	case HIST_ATTR:
		return "attr";
	}
	return "?";
}

void history_init(struct history *h)
{
	h->v = NULL;
	h->n = 0;
}

void history_release(struct history *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].path);
		free(h->v[i].from);
		free(h->v[i].target);
	}
	free(h->v);
	history_init(h);
}

bool history_path_within(const char *p, const char *path)
{
	size_t len = strlen(path);

	if (!len)
		return true;
	return strncmp(p, path, len) == 0 && (p[len] == '\0' || p[len] == '/');
}

/* Reads exactly n digits into *v; the end, or NULL. */
static const char *digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, s++) {
		if (*s < '0' || *s > '9')
			return NULL;
		*v = *v * 10 + (*s - '0');
	}
	return s;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool valid_date(int y, int m, int d)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return y >= 1970 && m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1] &&
	       (m != 2 || d <= 28 + leap);
}

int history_parse_time(const char *s, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	const char *p = s;

	if (*p == '@') {
		char *end;
		long long v;

		if (p[1] < '0' || p[1] > '9')
			return -EINVAL;
		errno = 0;
		v = strtoll(p + 1, &end, 10);
		if (errno || *end || v > INT64_MAX / 1000)
			return -EINVAL;
		*ms = (int64_t)v * 1000;
		return 0;
	}
	if (!(p = digits(p, 4, &y)) || *p++ != '-' ||
	    !(p = digits(p, 2, &mo)) || *p++ != '-' ||
	    !(p = digits(p, 2, &d)) || !valid_date(y, mo, d))
		return -EINVAL;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (!(p = digits(p, 2, &h)) || *p++ != ':' ||
		    !(p = digits(p, 2, &mi)))
			return -EINVAL;
		if (*p == ':' && !(p = digits(p + 1, 2, &sec)))
			return -EINVAL;
		if (*p == '.') {
			int n = 0;

			for (p++; *p >= '0' && *p <= '9'; p++, n++)
				if (n < 3)
					frac = frac * 10 + (*p - '0');
			if (!n)
				return -EINVAL;
			for (; n < 3; n++)
				frac *= 10;
		}
		if (*p == 'Z')
			p++;
		if (h > 23 || mi > 59 || sec > 60)
			return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
	      (int64_t)sec * 1000 + frac;
	return 0;
}

struct wk_id history_id_at_ms(int64_t ms)
{
	if (ms < 0)
		return WK_ID_ROOT;
	return (struct wk_id){hlc_pack((uint64_t)ms, UINT64_MAX), UINT64_MAX};
}

static char *dup_or_null(const char *s)
{
	return s[0] ? xstrdup(s) : NULL;
}

void history_op_set(struct hist_op *h, const struct wk_op *op)
{
	h->id = op->id;
	h->node = op->node;
	h->parent = op->parent;
	h->new_parent = op->new_parent;
	h->base = op->base;
	h->link = op->link;
	h->kind = op->kind;
	h->mode = op->mode;
	h->attrs = op->attrs;
	h->mtime_ns = op->mtime_ns;
	h->size = op->size;
	h->hash = op->hash;
	h->name = dup_or_null(op->name);
	h->new_name = dup_or_null(op->new_name);
	h->target = dup_or_null(op->target);
	memcpy(h->device, op->device, sizeof(h->device));
}

static void copy_str(char *dst, size_t len, const char *s)
{
	snprintf(dst, len, "%s", s ? s : "");
}

void history_op_get(const struct hist_op *h, struct wk_op *op)
{
	op->id = h->id;
	op->node = h->node;
	op->parent = h->parent;
	op->new_parent = h->new_parent;
	op->base = h->base;
	op->link = h->link;
	op->kind = h->kind;
	op->mode = h->mode;
	op->attrs = h->attrs;
	op->mtime_ns = h->mtime_ns;
	op->size = h->size;
	op->hash = h->hash;
	copy_str(op->name, sizeof(op->name), h->name);
	copy_str(op->new_name, sizeof(op->new_name), h->new_name);
	copy_str(op->target, sizeof(op->target), h->target);
	memcpy(op->device, h->device, sizeof(op->device));
}

void history_ops_release(struct hist_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ops[i].name);
		free(ops[i].new_name);
		free(ops[i].target);
	}
}

/* Feeds one op to the engine, in the form it takes. */
static void apply_one(struct tree *t, const struct hist_op *h)
{
	struct wk_op op;

	history_op_get(h, &op);
	tree_apply(t, &op, 1, NULL);
}

/* The ops' indices in (hlc, actor) order. */
static const struct hist_op *sort_base;

static int cmp_op_index(const void *a, const void *b)
{
	const struct hist_op *x = &sort_base[*(const size_t *)a];
	const struct hist_op *y = &sort_base[*(const size_t *)b];

	return wk_id_cmp(x->id, y->id);
}

static size_t *op_order(const struct hist_op *ops, size_t n)
{
	size_t *order = xmalloc((n ? n : 1) * sizeof(*order));

	for (size_t i = 0; i < n; i++)
		order[i] = i;
	/* qsort has no argument for its comparator; history is single
	 * threaded per process (the wkfs command). */
	sort_base = ops;
	qsort(order, n, sizeof(*order), cmp_op_index);
	sort_base = NULL;
	return order;
}

/* The ids of the nodes a query selected, sorted for bsearch. */
struct node_set {
	struct wk_id *ids;
	size_t n, alloc;
};

static int cmp_id(const void *a, const void *b)
{
	return wk_id_cmp(*(const struct wk_id *)a, *(const struct wk_id *)b);
}

static void node_set_add(struct node_set *s, struct wk_id id)
{
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? 2 * s->alloc : 16;
		s->ids = xrealloc(s->ids, s->alloc * sizeof(*s->ids));
	}
	s->ids[s->n++] = id;
}

static void node_set_seal(struct node_set *s)
{
	size_t k = 0;

	if (s->n)
		qsort(s->ids, s->n, sizeof(*s->ids), cmp_id);
	for (size_t i = 0; i < s->n; i++)
		if (!k || !wk_id_eq(s->ids[k - 1], s->ids[i]))
			s->ids[k++] = s->ids[i];
	s->n = k;
}

static bool node_set_has(const struct node_set *s, struct wk_id id)
{
	return s->n && bsearch(&id, s->ids, s->n, sizeof(id), cmp_id);
}

/* The path of node before and after one op, and what it showed. */
struct step {
	char *before, *after;
	struct tree_entry shown; /* valid when has_shown */
	bool has_shown;
};

/* What node shows at path, if path shows node itself (not a conflict copy
 * of it, nor another node that took the name). */
static bool shown_at(const struct tree *t, const char *path, struct wk_id node,
		     struct tree_entry *e)
{
	return path && tree_lookup(t, path, e) == 0 &&
	       wk_id_eq(e->node, node) && !e->conflict_copy;
}

/* Applies op to t and reports where its node was before and after. */
static void replay_one(struct tree *t, const struct hist_op *op, struct step *s)
{
	s->before = op->kind == WK_OP_REMOVE || op->kind == WK_OP_MOVE
			    ? tree_node_path(t, op->node)
			    : NULL;
	s->has_shown = false;
	if (op->kind == WK_OP_REMOVE)
		s->has_shown = shown_at(t, s->before, op->node, &s->shown);
	apply_one(t, op);
	s->after =
		op->kind == WK_OP_REMOVE ? NULL : tree_node_path(t, op->node);
	if (op->kind != WK_OP_REMOVE)
		s->has_shown = shown_at(t, s->after, op->node, &s->shown);
}

static void step_release(struct step *s)
{
	free(s->before);
	free(s->after);
}

static bool step_within(const struct step *s, const char *path)
{
	return (s->before && history_path_within(s->before, path)) ||
	       (s->after && history_path_within(s->after, path));
}

struct select_ctx {
	const char *path;
	struct node_set *set;
};

/* A conflict copy stands for its file's node: asking about the copy's
 * name shows the file's versions, the copy's among them. */
static int select_shown(const char *p, const struct tree_entry *e, void *arg)
{
	struct select_ctx *c = arg;

	if (history_path_within(p, c->path))
		node_set_add(c->set, e->node);
	return 0;
}

/* Every node shown at or below path at some op, or at the end (a parent's
 * move changes a node's path without an op of its own). */
static void select_nodes(const struct hist_op *ops, const size_t *order,
			 size_t n, const char *path, struct node_set *set)
{
	struct tree *t = tree_new();
	struct select_ctx c = {path, set};
	struct step s;

	for (size_t i = 0; i < n; i++) {
		replay_one(t, &ops[order[i]], &s);
		if (step_within(&s, path))
			node_set_add(set, ops[order[i]].node);
		step_release(&s);
	}
	tree_foreach(t, select_shown, &c);
	tree_free(t);
	node_set_seal(set);
}

static enum hist_kind kind_of(const struct hist_op *op)
{
	switch (op->kind) {
	case WK_OP_MKDIR:
		return HIST_MKDIR;
	case WK_OP_CREATE:
		return HIST_CREATE;
	case WK_OP_PUT:
		return HIST_SAVE;
	case WK_OP_MOVE:
		return HIST_MOVE;
	case WK_OP_REMOVE:
		return HIST_DELETE;
	case WK_OP_SYMLINK:
		return HIST_SYMLINK;
	case WK_OP_SETATTR:
		break;
	}
	return HIST_ATTR;
}

static enum wk_kind node_kind_of(const struct hist_op *op, const struct step *s)
{
	if (s->has_shown)
		return s->shown.kind;
	if (op->kind == WK_OP_MKDIR)
		return WK_KIND_DIR;
	if (op->kind == WK_OP_SYMLINK)
		return WK_KIND_SYMLINK;
	return WK_KIND_FILE;
}

static void entry_fill(struct hist_entry *e, const struct hist_op *op,
		       size_t index, struct step *s)
{
	memset(e, 0, sizeof(*e));
	e->op = index;
	e->kind = kind_of(op);
	e->node = op->node;
	e->node_kind = node_kind_of(op, s);
	e->path =
		xstrdup(op->kind == WK_OP_REMOVE ? (s->before ? s->before : "")
						 : (s->after ? s->after : ""));
	if (op->kind == WK_OP_MOVE)
		e->from = xstrdup(s->before ? s->before : "");
	if (s->has_shown) {
		e->mode = s->shown.mode;
		if (s->shown.kind == WK_KIND_SYMLINK && s->shown.target)
			e->target = xstrdup(s->shown.target);
	}
	if (op->kind == WK_OP_PUT) {
		/* In op order a put is the newest head when applied, so it is
		 * what its file shows; taken from the op all the same, since
		 * the node may be shown nowhere (its directory deleted). */
		e->has_content = true;
		e->version = op->id;
		e->hash = op->hash;
		e->size = op->size;
	} else if (s->has_shown && s->shown.kind != WK_KIND_DIR) {
		e->has_content = true;
		e->version = s->shown.version;
		e->hash = s->shown.hash;
		e->size = s->shown.size;
	}
}

static struct hist_entry *history_push(struct history *h, size_t *alloc)
{
	if (h->n == *alloc) {
		*alloc = *alloc ? 2 * *alloc : 32;
		h->v = xrealloc(h->v, *alloc * sizeof(*h->v));
	}
	return &h->v[h->n++];
}

/* A put's base, with the create spelled as the node's own id: the two
 * spellings tree.h allows for it. */
static struct wk_id put_base(const struct hist_op *op)
{
	return wk_id_eq(op->base, WK_ID_NONE) ? op->node : op->base;
}

static bool same_content(const struct hist_op *a, const struct hist_op *b)
{
	return (a->size == 0 && b->size == 0) ||
	       memcmp(&a->hash, &b->hash, sizeof(a->hash)) == 0;
}

/* Orders saves by node, then base, then id: concurrent ones side by side. */
static const struct hist_op *group_ops;

static int cmp_save(const void *a, const void *b)
{
	const struct hist_op *x =
		&group_ops[((const struct hist_entry *)a)->op];
	const struct hist_op *y =
		&group_ops[((const struct hist_entry *)b)->op];
	int c = wk_id_cmp(x->node, y->node);

	if (!c)
		c = wk_id_cmp(put_base(x), put_base(y));
	return c ? c : wk_id_cmp(x->id, y->id);
}

/*
 * Marks the saves that lost to a concurrent one: puts of one node with the
 * same base did not see each other, and the newest (hlc, actor) keeps the
 * name (tree.h), so the others are shown as conflict copies unless their
 * content is the newest's.  Groups are walked from their newest put.
 */
static void mark_conflicts(const struct hist_op *ops, struct history *h)
{
	struct hist_entry *saves = xmalloc((h->n ? h->n : 1) * sizeof(*saves));
	size_t n = 0;

	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].kind == HIST_SAVE) {
			saves[n] = h->v[i];
			saves[n++].number =
				(unsigned)i; /* where it goes back */
		}
	group_ops = ops;
	qsort(saves, n, sizeof(*saves), cmp_save);
	group_ops = NULL;
	for (size_t end = n; end > 0;) {
		const struct hist_op *newest = &ops[saves[end - 1].op];
		size_t i = end - 1;

		while (i > 0) {
			const struct hist_op *p = &ops[saves[i - 1].op];

			if (!wk_id_eq(p->node, newest->node) ||
			    !wk_id_eq(put_base(p), put_base(newest)))
				break;
			i--;
			if (!same_content(p, newest))
				h->v[saves[i].number].kind = HIST_CONFLICT;
		}
		end = i;
	}
	free(saves);
}

static void number(struct history *h)
{
	for (size_t i = 0; i < h->n; i++)
		h->v[i].number = (unsigned)(i + 1);
}

int history_of_path(const struct hist_op *ops, size_t n, const char *path,
		    struct history *h)
{
	size_t *order = op_order(ops, n);
	struct node_set set = {0};
	struct tree *t;
	size_t alloc = 0;
	struct step s;

	history_init(h);
	select_nodes(ops, order, n, path, &set);
	t = tree_new();
	for (size_t i = 0; i < n; i++) {
		const struct hist_op *op = &ops[order[i]];

		replay_one(t, op, &s);
		if (node_set_has(&set, op->node))
			entry_fill(history_push(h, &alloc), op, order[i], &s);
		step_release(&s);
	}
	tree_free(t);
	mark_conflicts(ops, h);
	number(h);
	free(set.ids);
	free(order);
	return 0;
}

int history_deleted(const struct hist_op *ops, size_t n, const char *path,
		    struct history *h)
{
	size_t *order = op_order(ops, n);
	struct tree *t = tree_new();
	struct history all;
	size_t alloc = 0, kept = 0;
	struct step s;

	history_init(h);
	history_init(&all);
	for (size_t i = 0; i < n; i++) {
		const struct hist_op *op = &ops[order[i]];

		replay_one(t, op, &s);
		if (op->kind == WK_OP_REMOVE && s.before &&
		    history_path_within(s.before, path))
			entry_fill(history_push(&all, &alloc), op, order[i],
				   &s);
		step_release(&s);
	}
	/* Keep each gone node's last delete: a node shown again (a remote
	 * edit beat the delete) or deleted twice is not listed twice. */
	for (size_t i = 0; i < all.n; i++) {
		struct hist_entry *e = &all.v[i];
		char *now = tree_node_path(t, e->node);
		bool last = true;

		for (size_t j = i + 1; j < all.n && last; j++)
			last = !wk_id_eq(all.v[j].node, e->node);
		if (!now && last) {
			all.v[kept++] = *e;
		} else {
			free(e->path);
			free(e->from);
			free(e->target);
		}
		free(now);
	}
	all.n = kept;
	*h = all;
	number(h);
	tree_free(t);
	free(order);
	return 0;
}

struct tree *history_tree_at(const struct hist_op *ops, size_t n,
			     struct wk_id upto)
{
	size_t *order = op_order(ops, n);
	struct tree *t = tree_new();

	/* In op order, so that the engine never undoes. */
	for (size_t i = 0; i < n && wk_id_cmp(ops[order[i]].id, upto) <= 0; i++)
		apply_one(t, &ops[order[i]]);
	free(order);
	return t;
}
