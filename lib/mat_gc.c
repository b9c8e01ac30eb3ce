/*
 * mat_gc.c - dropping objects nothing needs any more (contract: mat_gc.h).
 *
 * Both entry points sort their candidate hashes, read the oplog once and
 * mark each candidate kept (a remote put after applied_seq names it) and,
 * for the sweep, referenced (an applied remote put names it); then drop
 * what is not kept.  This file reads the oplog through db.h and touches
 * the store through materialize.h only.
 */
#include "mat_gc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wlog.h"
#include "xalloc.h"

void mat_gc_init(struct mat_gc *g)
{
	memset(g, 0, sizeof(*g));
}

void mat_gc_release(struct mat_gc *g)
{
	free(g->v);
	mat_gc_init(g);
}

static bool is_content_put(const struct wk_op *op)
{
	return op->kind == WK_OP_PUT && op->size > 0;
}

void mat_gc_note(struct mat_gc *g, const struct wk_op *ops, size_t n)
{
	for (size_t i = 0; i < n && g->n < MAT_GC_NOTE_MAX; i++) {
		if (!is_content_put(&ops[i]))
			continue;
		if (g->n == g->alloc) {
			g->alloc = g->alloc ? 2 * g->alloc : 64;
			g->v = xrealloc(g->v, g->alloc * sizeof(*g->v));
		}
		g->v[g->n++] = ops[i].hash;
	}
}

static int cmp_hash(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct wk_hash));
}

/* Sorts v and removes duplicates; the new count. */
static size_t sort_unique(struct wk_hash *v, size_t n)
{
	size_t k = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_hash);
	for (size_t i = 1; i < n; i++)
		if (cmp_hash(&v[i], &v[k]) != 0)
			v[++k] = v[i];
	return k + 1;
}

struct scan {
	const struct wk_hash *v;
	size_t n;
	bool *kept, *referenced;
	int64_t applied_seq;
	size_t rows, max_rows; /* max_rows 0: no limit */
	bool gave_up;
};

static int scan_row(void *arg, const struct db_oprow *row)
{
	struct scan *s = arg;
	const struct wk_hash *h;

	if (s->max_rows && ++s->rows > s->max_rows) {
		s->gave_up = true;
		return 1;
	}
	if (row->origin == DB_ORIGIN_LOCAL || !is_content_put(&row->op))
		return 0;
	h = bsearch(&row->op.hash, s->v, s->n, sizeof(*s->v), cmp_hash);
	if (!h)
		return 0;
	if (row->seq > s->applied_seq)
		s->kept[h - s->v] = true;
	else if (s->referenced)
		s->referenced[h - s->v] = true;
	return 0;
}

/* A held put (below applied_seq, not applied) still needs its content. */
static int scan_held(void *arg, const struct db_held *h)
{
	struct scan *s = arg;
	const struct wk_hash *found;

	if (!is_content_put(&h->row.op))
		return 0;
	found = bsearch(&h->row.op.hash, s->v, s->n, sizeof(*s->v), cmp_hash);
	if (found)
		s->kept[found - s->v] = true;
	return 0;
}

/* Drops v[i] unless kept (or, with referenced, unless referenced). */
static void drop(struct mat *m, const struct scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		int rc;

		if (s->kept[i] || (s->referenced && !s->referenced[i]))
			continue;
		rc = mat_object_drop(m, &s->v[i]);
		if (rc && rc != -ENOENT) {
			char hex[WK_HASH_STRLEN];

			wk_warn("cannot drop object %s: %s",
				wk_hash_str(&s->v[i], hex), strerror(-rc));
		}
	}
}

int mat_gc_run(struct mat_gc *g, struct mat *m, struct wkdb *db,
	       int64_t applied_seq)
{
	struct scan s = {.applied_seq = applied_seq,
			 .max_rows = MAT_GC_SCAN_MAX};
	int rc;

	if (g->n == 0)
		return 0;
	g->n = sort_unique(g->v, g->n);
	s.v = g->v;
	s.n = g->n;
	s.kept = xcalloc(g->n, sizeof(*s.kept));
	rc = db_ops_foreach(db, applied_seq, 0, scan_row, &s);
	if (rc >= 0 && !s.gave_up)
		rc = db_held_foreach(db, scan_held, &s);
	if (rc >= 0 && !s.gave_up) {
		drop(m, &s);
		g->n = 0;
	}
	free(s.kept);
	return rc < 0 ? rc : 0;
}

int mat_gc_sweep(struct mat *m, struct wkdb *db, int64_t applied_seq)
{
	struct scan s = {.applied_seq = applied_seq};
	struct wk_hash *v;
	size_t n;
	int rc;

	rc = mat_object_list(m, &v, &n);
	if (rc || n == 0) {
		free(v);
		return rc;
	}
	s.n = sort_unique(v, n);
	s.v = v;
	s.kept = xcalloc(s.n, sizeof(*s.kept));
	s.referenced = xcalloc(s.n, sizeof(*s.referenced));
	rc = db_ops_foreach(db, 0, 0, scan_row, &s);
	if (rc >= 0)
		rc = db_held_foreach(db, scan_held, &s);
	if (rc >= 0)
		drop(m, &s);
	free(s.kept);
	free(s.referenced);
	free(v);
	return rc < 0 ? rc : 0;
}
