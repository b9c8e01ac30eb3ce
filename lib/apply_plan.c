/*
 * apply_plan.c - what a round of the mount's apply feeds and what it holds
 * back (see apply_plan.h).  Pure: no I/O but through the caller's
 * callbacks, no allocation that outlives a call.
 */
#include "apply_plan.h"

#include <stdlib.h>
#include <string.h>

#include "tree.h"
#include "xalloc.h"

/* A version some op retires: (node, version). */
struct plan_retirement {
	struct wk_id node, version;
};

static int cmp_retirement(const void *a, const void *b)
{
	const struct plan_retirement *x = a, *y = b;
	int c = wk_id_cmp(x->node, y->node);

	return c ? c : wk_id_cmp(x->version, y->version);
}

static bool retires(const struct wk_op *op)
{
	return op->kind == WK_OP_PUT || op->kind == WK_OP_REMOVE;
}

/* What a put or remove retires: its base, WK_ID_NONE meaning the create. */
static struct wk_id retired_version(const struct wk_op *op)
{
	return wk_id_eq(op->base, WK_ID_NONE) ? op->node : op->base;
}

void plan_retired_add(struct plan_retired *r, const struct wk_op *op)
{
	if (!retires(op))
		return;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n].node = op->node;
	r->v[r->n++].version = retired_version(op);
	r->sorted = false;
}

bool plan_retired_has(struct plan_retired *r, const struct wk_op *put)
{
	struct plan_retirement key = {.node = put->node, .version = put->id};

	if (!r->sorted && r->n)
		qsort(r->v, r->n, sizeof(*r->v), cmp_retirement);
	r->sorted = true;
	return r->n && bsearch(&key, r->v, r->n, sizeof(*r->v), cmp_retirement);
}

void plan_retired_release(struct plan_retired *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static bool retired(const struct plan_env *env, struct plan_retired *fed,
		    const struct wk_op *put)
{
	if (env->tree && tree_version_retired(env->tree, put->node, put->id))
		return true;
	return plan_retired_has(fed, put);
}

/* A held put that the fed ops (or the tree) retire is fed after all; each
 * one fed retires its own base, which may free another. */
static void release_retired(struct plan_item *v, size_t n,
			    const struct plan_env *env)
{
	struct plan_retired fed = {0};
	bool changed = true;

	while (changed) {
		fed.n = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i].hold == PLAN_FEED)
				plan_retired_add(&fed, &v[i].op);
		changed = false;
		for (size_t i = 0; i < n; i++) {
			if (v[i].hold != PLAN_HOLD_CONTENT ||
			    !retired(env, &fed, &v[i].op))
				continue;
			v[i].hold = PLAN_FEED;
			changed = true;
		}
	}
	plan_retired_release(&fed);
}

/* Is create c's first content a put held for its content, with nothing
 * else fed to the node?  Then the file would show as an empty stand-in. */
static bool placeholder(const struct plan_item *v, size_t n,
			const struct wk_op *c)
{
	bool held = false;

	for (size_t i = 0; i < n; i++) {
		const struct wk_op *op = &v[i].op;

		if (op->kind != WK_OP_PUT || !wk_id_eq(op->node, c->node))
			continue;
		if (v[i].hold == PLAN_FEED)
			return false;
		if (v[i].hold == PLAN_HOLD_CONTENT &&
		    wk_id_eq(retired_version(op), c->id))
			held = true;
	}
	return held;
}

void plan_decide(struct plan_item *v, size_t n, const struct plan_env *env)
{
	for (size_t i = 0; i < n; i++) {
		const struct wk_op *op = &v[i].op;

		v[i].hold = PLAN_FEED;
		if ((retires(op) || op->kind == WK_OP_MOVE) && env->busy &&
		    env->busy(env->arg, op))
			v[i].hold = PLAN_HOLD_WRITER;
		else if (op->kind == WK_OP_PUT && op->size > 0 &&
			 !env->content_here(env->arg, &v[i]))
			v[i].hold = PLAN_HOLD_CONTENT;
	}
	release_retired(v, n, env);
	for (size_t i = 0; i < n; i++)
		if (v[i].op.kind == WK_OP_CREATE && v[i].hold == PLAN_FEED &&
		    placeholder(v, n, &v[i].op))
			v[i].hold = PLAN_HOLD_CREATE;
}

const char *plan_hold_text(enum plan_hold h)
{
	switch (h) {
	case PLAN_HOLD_WRITER:
		return "waits for the file to be closed";
	case PLAN_HOLD_CONTENT:
		return "its content never arrived (not shipped, refused or "
		       "lost); the file keeps its last good content";
	case PLAN_HOLD_CREATE:
		return "a new file whose content never arrived; it appears "
		       "with its content";
	case PLAN_FEED:
		break;
	}
	return "";
}

bool plan_hold_needs_attention(enum plan_hold h)
{
	return h == PLAN_HOLD_CONTENT || h == PLAN_HOLD_CREATE;
}
