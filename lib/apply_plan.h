/*
 * apply_plan.h - which remote ops a round of the mount's apply feeds to the
 * merge engine now, which it holds back, and why.
 *
 * The one home of the rule "no remote op waits forever on another"
 * (invariant 7).  An op that cannot be applied yet is not a wall in the
 * queue: it is held, as if it had not arrived, and everything after it
 * goes on.  The merge engine takes ops in any order, so feeding a held op
 * later (its content came, the file was closed, a later op superseded it)
 * gives the tree it would have had.  What is held, and why:
 *
 *  - PLAN_HOLD_WRITER: a put, remove or move of a file open for writing
 *    through the mount.  It waits for the close, whose local put then
 *    conflicts with it (invariant 1).
 *  - PLAN_HOLD_CONTENT: a put whose content is neither in the object store
 *    nor in a local file: never shipped (its sender no longer had it),
 *    refused (hash mismatch, a chunk the remote lacks) or lost.  The node
 *    keeps its last good content.  As soon as any op fed (or in the tree)
 *    retires the put (a later put or a remove based on it) the put is fed
 *    too: it is then no head, its content is never shown, and it retires
 *    its own base, as it must (a remove of a file whose only put never
 *    came would otherwise leave the empty create standing).
 *  - PLAN_HOLD_CREATE: the create of a file whose first content is held
 *    for content.  Placeholders are never materialized: the file appears
 *    with its content or not at all, so no editor can open an empty
 *    stand-in and save it back over the real thing.
 *
 * Everything else (mkdir, symlink, move, setattr, empty puts, puts whose
 * content is here) is fed at once.  The planner does no I/O: the caller
 * answers "is the content here" and "is this file open for writing" by
 * callbacks, and the tree answers "is this version retired".
 *
 * Calling sequence, once per round (the caller holds the tree's lock):
 *
 *	struct plan_item v[] = { held ops from earlier rounds, new ops };
 *	plan_decide(v, n, &env);
 *	feed every v[i] with v[i].hold == PLAN_FEED; record the others.
 */
#ifndef WKFS_APPLY_PLAN_H
#define WKFS_APPLY_PLAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"

struct tree;

enum plan_hold {
	PLAN_FEED = 0,
	PLAN_HOLD_WRITER = 1,
	PLAN_HOLD_CONTENT = 2,
	PLAN_HOLD_CREATE = 3,
};

/* One remote op of the round. */
struct plan_item {
	struct wk_op op;
	int64_t seq;	     /* its row in the oplog */
	enum plan_hold hold; /* out: the decision */
};

struct plan_env {
	const struct tree *tree; /* retirements of ops fed earlier */
	void *arg;
	/* The content of put it->op is at hand (store or a local file). */
	bool (*content_here)(void *arg, const struct plan_item *it);
	/* The file op (a put, remove or move) acts on is open for writing:
	 * a writer's file keeps its content and its name until the close,
	 * so what it replaces or removes there is what it saw. */
	bool (*busy)(void *arg, const struct wk_op *op);
};

/*
 * The versions a set of ops retire (a later put or a remove named them as
 * its base): such a version is never shown, so nobody needs its content.
 * The sync layer builds one per batch of ops it receives and skips
 * fetching what the batch itself supersedes (a fresh replica fetches only
 * the versions that count).  Add ops, then ask; released with _release.
 */
struct plan_retired {
	struct plan_retirement *v;
	size_t n, cap;
	bool sorted;
};
void plan_retired_add(struct plan_retired *r, const struct wk_op *op);
bool plan_retired_has(struct plan_retired *r, const struct wk_op *put);
void plan_retired_release(struct plan_retired *r);

/* Decides v[i].hold for every item (any order; duplicates are fine). */
void plan_decide(struct plan_item *v, size_t n, const struct plan_env *env);

/* The reason in a few words, for status, sync and the log ("" for
 * PLAN_FEED and unknown values). */
const char *plan_hold_text(enum plan_hold h);

/* Reasons that only time resolves on their own (a close) are not a
 * problem to show; the others need a later op or the content. */
bool plan_hold_needs_attention(enum plan_hold h);
#endif
