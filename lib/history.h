/*
 * history.h - the versions of a path, and the tree at a moment, read from
 * the oplog.
 *
 * The oplog names nodes, not paths, so a path's history is that of every
 * node that was ever shown at the path or below it: the file that is there
 * now, across its moves; the files an editor's save-by-rename put there
 * one after the other; a file deleted from there; the file a conflict
 * copy shown there belongs to.  Where a node was at
 * each op is what the merge engine (lib/tree.h) showed once the ops up to
 * that one, in (hlc, actor) order, were applied: the same rules that made
 * the folder make its past.
 *
 * Pure: no I/O, no SQLite.  The caller reads the ops (any order, as
 * struct hist_op) and says where contents are; this module only orders
 * and replays them.  Every
 * query replays the whole log once or twice, so it costs what a merge of
 * the log costs (lib/tree.h, "Cost"); ops are referred to by their index
 * in the caller's array.
 */
#ifndef WKFS_HISTORY_H
#define WKFS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "tree.h"

/*
 * An op as the queries keep it: struct wk_op without its fixed buffers.
 * A struct wk_op is about 4.8 KB, mostly room for a symlink target and
 * two names, which would make a long oplog gigabytes in memory; this is
 * about 200 bytes and the strings it holds.  history_op_set() copies an op
 * in, history_op_get() writes it back out for the merge engine.
 */
struct hist_op {
	struct wk_id id, node, parent, new_parent, base, link;
	enum wk_op_kind kind;
	uint32_t mode, attrs;
	int64_t mtime_ns;
	uint64_t size;
	struct wk_hash hash;
	char *name, *new_name, *target; /* NULL when empty */
	char device[WK_DEVICE_MAX + 1];
};

void history_op_set(struct hist_op *h, const struct wk_op *op);
void history_op_get(const struct hist_op *h, struct wk_op *op);
/* Frees the strings of n ops (not the array). */
void history_ops_release(struct hist_op *ops, size_t n);

/* What an op did to the node, in the words `wkfs history` uses. */
enum hist_kind {
	HIST_CREATE = 1, /* an empty file */
	HIST_SAVE,	 /* new content */
	HIST_CONFLICT,	 /* new content that lost to a concurrent save: it
			    is shown as a conflict copy */
	HIST_MOVE,
	HIST_DELETE,
	HIST_MKDIR,
	HIST_SYMLINK,
	HIST_ATTR, /* mode or mtime */
};

/* "create", "save", "conflict copy", "move", ... */
const char *hist_kind_name(enum hist_kind kind);

/* One line of a history: one op of one node. */
struct hist_entry {
	unsigned number; /* 1 for the oldest */
	size_t op;	 /* index of the op in the caller's array */
	enum hist_kind kind;
	struct wk_id node;
	enum wk_kind node_kind;
	char *path; /* where the node was shown after the op (a delete:
		       before it); "" when nowhere (its directory gone) */
	char *from; /* moves: where it was before; NULL otherwise */
	/* Files and symlinks: the content the node showed after the op (a
	 * delete: the content it removed).  has_content is false when the
	 * tree showed none (a directory, a node nowhere). */
	bool has_content;
	struct wk_id version; /* the put or create that made it */
	struct wk_hash hash;
	uint64_t size;
	uint32_t mode; /* its permission bits then (0 when not shown) */
	char *target;  /* symlinks: the target then, else NULL */
};

struct history {
	struct hist_entry *v; /* oldest first: (hlc, actor) order */
	size_t n;
};

void history_init(struct history *h);
void history_release(struct history *h);

/*
 * Fills h with the ops of every node ever shown at path or below it
 * ("" is the root: every node), in op order.  An empty history means
 * that no node was ever there.  0 (memory exhaustion aborts).
 */
int history_of_path(const struct hist_op *ops, size_t n, const char *path,
		    struct history *h);

/*
 * Fills h with the deletes of nodes that are gone now and were last shown
 * at path or below it, one per node (its last delete), in op order.
 */
int history_deleted(const struct hist_op *ops, size_t n, const char *path,
		    struct history *h);

/*
 * The tree the ops made up to and including op id `upto` ((hlc, actor)
 * order; WK_ID_NONE: all of them).  The caller tree_free()s it.  An op
 * that arrived after upto's time but is older still counts: the tree is
 * what a replica that had every op would have shown then.
 */
struct tree *history_tree_at(const struct hist_op *ops, size_t n,
			     struct wk_id upto);

/* The id of the newest op at or before ms milliseconds since the epoch,
 * as a bound for history_tree_at(). */
struct wk_id history_id_at_ms(int64_t ms);

/*
 * Reads a moment given by a user, always UTC: "2026-12-08T10:11:12.345Z"
 * (as `wkfs history` prints it; the fraction, the seconds and the Z may be
 * left out, and a space may stand for the T), "2026-12-08" (its start), or
 * "@SECONDS" since the epoch.  0 and *ms, or -EINVAL.
 */
int history_parse_time(const char *s, int64_t *ms);

/* True when p is path or lies below it ("" holds everything). */
bool history_path_within(const char *p, const char *path);

#endif
