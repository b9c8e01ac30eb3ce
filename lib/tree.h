/*
 * tree.h - the merge engine: the synced tree as a pure function of its ops.
 *
 * A struct tree takes ops (local or remote, in any order, any number of
 * times) and keeps the tree they describe.  Replicas that have taken the same
 * set of ops hold byte-identical trees, whatever the order of arrival.  The
 * engine does no I/O: no SQLite, no FUSE, no filesystem.  It tells its caller
 * what to change in the backing directory as a list of path-level changes
 * (struct tree_changes) that the caller executes in order.
 *
 * How the state is derived (docs/architecture.md, "The merge", explains it
 * with examples):
 *
 *  - Structure (which node sits in which directory under which name) is the
 *    result of replaying the create-like ops (mkdir, create, symlink) and the
 *    moves in (hlc, actor) order, as in Kleppmann et al., "A highly-available
 *    move operation for replicated trees" (IEEE TPDS 2021).  The engine keeps
 *    these structural ops in an undo log; one that arrives older than ops
 *    already applied is placed by undoing the newer ones, applying it, and
 *    redoing them.  A move is skipped when its node or its destination does
 *    not exist (yet) at that point, when the destination is not a directory,
 *    or when it would put a node inside its own subtree.
 *
 *  - Content and attributes commute and never need undo.  Every node has a
 *    set of versions: the create op is the first version (an empty file, the
 *    directory itself, the symlink's target), each put adds one.  A put
 *    retires its base, a remove retires its base; the versions never retired
 *    are the node's "heads".  Mode and mtime are last-writer-wins registers
 *    ordered by op id.
 *
 *  - A file is alive while it has a head, a symlink or directory while its
 *    own version is not retired; a directory also stays alive while anything
 *    inside it is alive (edit beats delete; adds beat rmdir).
 *
 *  - The view (what the backing directory shows) is computed per directory
 *    from the above, deterministically: the highest live head of a file
 *    keeps its name, other heads with different content appear as conflict
 *    copies; children of one directory sharing a name are resolved by their
 *    "name stamp" (the id of the op that gave them the name: the highest
 *    keeps it), except that directories sharing a name merge into one.
 *
 * Bases.  A put's base is the id of the version it replaced: the put (or
 * the create) whose content the writer had.  WK_ID_NONE means the create, so
 * the first put of a file may carry either.  A remove's base is the version
 * the remover saw, so a remove only retires what it saw: a put concurrent
 * with it survives.  WK_ID_NONE means the node's own id, the create version:
 * what a remove of a directory or a symlink carries (they have no other
 * version).  Two puts with the same base conflict unless their content is
 * equal (same hash, or both empty).
 *
 * Calling sequence:
 *
 *	struct tree *t = tree_new();
 *	struct tree_changes ch;
 *	tree_changes_init(&ch);
 *	tree_apply(t, ops, n, &ch);	// any batch, any order, duplicates ok
 *	for (i = 0; i < ch.n; i++)
 *		execute(&ch.v[i]);	// in order, see struct tree_change
 *	tree_changes_release(&ch);
 *	...
 *	tree_compact(t, stable_hlc);	// now and then
 *	tree_free(t);
 *
 * The struct tree is not locked; callers serialise access.
 */
#ifndef WKFS_TREE_H
#define WKFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"

struct tree;

/*
 * Where moved entries wait during one batch of changes, relative to the
 * synced directory (see struct tree_change).  The caller creates it.
 */
#define TREE_STAGE_DIR ".wkfs/tmp"

enum tree_change_kind {
	TREE_CH_REMOVE = 1, /* unlink path, or rmdir it (empty by then) */
	TREE_CH_RENAME,	    /* rename path to new_path */
	TREE_CH_MKDIR,	    /* mkdir path with mode */
	TREE_CH_WRITE,	    /* create or atomically replace the file at path
			       with content hash (size bytes), mode, mtime */
	TREE_CH_SYMLINK,    /* create a symlink at path pointing to target */
	TREE_CH_SETATTR,    /* set mode and mtime of path */
};

/*
 * One step for the backing directory.  Paths are relative to the synced
 * directory, without a leading slash.  Executed in list order they are
 * always valid: first every entry that goes away is removed and every entry
 * that moves is renamed into TREE_STAGE_DIR/merge-<n> (deepest first), then
 * new entries are created and staged ones renamed to their places
 * (shallowest first), then attributes and contents of entries that stayed
 * put are updated.  So no step ever finds its target taken, its parent
 * missing, or a directory to remove still full.  Directory modes are final
 * values: a caller that runs without CAP_DAC_OVERRIDE should create
 * directories writable and apply their modes after the batch.
 */
struct tree_change {
	enum tree_change_kind kind;
	enum wk_kind type; /* what is at path: file, dir or symlink */
	char *path;
	char *new_path;	      /* RENAME only */
	struct wk_id node;    /* the node shown (a merged dir: its lowest id) */
	struct wk_id version; /* files: the content version written */
	bool conflict_copy;   /* a losing version beside its file */
	uint32_t mode;	      /* MKDIR, WRITE, SYMLINK, SETATTR */
	int64_t mtime_ns;     /* same */
	uint64_t size;	      /* WRITE */
	struct wk_hash hash;  /* WRITE; all zero with size 0: empty file */
	char *target;	      /* SYMLINK */
	/* WRITE of a file's own version (not a conflict copy): the link its
	 * put named (struct wk_op.link), else WK_ID_NONE.  A hint: the
	 * materializer makes path a hard link of the WRITE of that node in
	 * the same list, or of link_path (below), where both hold exactly
	 * this content, mode and mtime, and writes a copy otherwise. */
	struct wk_id link;
	/* Set by the caller, not the engine (NULL, 0): the file of node link
	 * as DIR holds it when this WRITE runs, and its inode number, when
	 * the caller's records say it holds this content.  Freed with the
	 * list. */
	char *link_path;
	uint64_t link_ino;
};

struct tree_changes {
	struct tree_change *v;
	size_t n, alloc;
};

void tree_changes_init(struct tree_changes *c);
/* A new zeroed change at the end of c (a caller's own list). */
struct tree_change *tree_changes_add(struct tree_changes *c);
/* Frees the strings of one change (one a caller takes out of its list). */
void tree_change_release(struct tree_change *c);
/* Frees every change and its strings; c can be reused after init. */
void tree_changes_release(struct tree_changes *c);

struct tree_stats {
	uint64_t applied;    /* ops taken into the tree */
	uint64_t duplicates; /* ops seen before, or at or below the floor */
	uint64_t rejected;   /* invalid ops: bad name, kind or id; never used */
	uint64_t redone;     /* structural ops undone and redone for late ops */
	uint64_t log_len;    /* structural ops held for undo */
	uint64_t nodes;	     /* nodes known, live or not */
	uint64_t floor;	     /* ops with hlc <= floor are treated as seen */
	uint64_t device_runs; /* runs of one actor's ops with one device */
};

struct tree *tree_new(void);
void tree_free(struct tree *t);

/*
 * Takes n ops into the tree.  Ops already seen are ignored; invalid ones
 * (see tree_op_valid) are counted and ignored.  When out is not NULL the
 * changes that bring the backing directory from the previous view to the
 * new one are appended to it; with NULL the view is still updated (as when
 * rebuilding a tree from a stored oplog whose effects are already on disk).
 *
 * Ops made locally are applied the same way; their changes are normally
 * already done on disk, so the caller skips them.  Returns 0 (ops are data:
 * nothing in them can make this fail; memory exhaustion aborts).
 */
int tree_apply(struct tree *t, const struct wk_op *ops, size_t n,
	       struct tree_changes *out);

/*
 * Folds history at or below stable_hlc: drops the undo log and the record
 * of which ops were seen there.  stable_hlc must be causally stable: every
 * replica has every op with hlc <= stable_hlc, so every op still to come
 * was made by a replica that saw them all.  (The sync layer knows it: the
 * least, over all known replicas, of the hlc up to which it has received
 * everything.)  After this, ops with hlc <= stable_hlc are ignored as
 * duplicates and the tree can no longer be rebuilt from the log it keeps;
 * the view and every later merge are unchanged.
 */
void tree_compact(struct tree *t, uint64_t stable_hlc);

void tree_get_stats(const struct tree *t, struct tree_stats *s);

/* What the view shows at one path. */
struct tree_entry {
	const char *name; /* display name (valid until the next apply) */
	enum wk_kind kind;
	struct wk_id node;    /* file/symlink node; dir: lowest member id */
	struct wk_id version; /* files: the content version shown */
	bool conflict_copy;   /* a losing version of node, not node itself */
	size_t nmembers;      /* dirs: directory nodes merged here (>= 1) */
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t size;
	struct wk_hash hash;
	const char *target; /* symlinks */
};

/* Looks up a relative path ("" is the root).  0 or -ENOENT. */
int tree_lookup(const struct tree *t, const char *path, struct tree_entry *e);

/*
 * The directory nodes merged at path: fills up to max ids (lowest first)
 * and returns how many there are, or -ENOENT / -ENOTDIR.  A caller that
 * removes or renames a merged directory acts on every member.
 */
int tree_dir_members(const struct tree *t, const char *path, struct wk_id *ids,
		     size_t max);

/* Where node is shown (its main entry), as a fresh string; NULL if hidden. */
char *tree_node_path(const struct tree *t, struct wk_id node);

/* Visits every entry but the root, parents before children.  Stops at and
 * returns the first non-zero value fn returns. */
typedef int (*tree_visit_fn)(const char *path, const struct tree_entry *e,
			     void *arg);
int tree_foreach(const struct tree *t, tree_visit_fn fn, void *arg);

/*
 * The view as text, one line per entry sorted by path (bytewise):
 *	"<path> <f|d|l> <mode %04o> <mtime_ns> <hash or -> <target or ->\n"
 * A fresh string the caller frees.  Two replicas converged when their dumps
 * are equal.
 */
char *tree_dump(const struct tree *t);

/*
 * Checks internal invariants (no cycle, live counts, view consistent with
 * structure).  0, or -EUCLEAN naming the first problem in why (if not NULL).
 */
int tree_check(const struct tree *t, char *why, size_t whylen);

/*
 * True when op may be applied: known kind, hlc > 0, creating ops carry
 * node == id, no op acts on the root, names pass wk_name_valid() and are
 * not ".wkfs" in the root, symlink targets are non-empty and NUL-terminated
 * within WK_TARGET_MAX, modes fit 07777.
 */
bool tree_op_valid(const struct wk_op *op);

/*
 * True when an op taken so far retired version (a put or create id) of
 * node: a later put or a remove named it as its base.  Such a version is
 * never shown again, whatever else arrives.
 */
bool tree_version_retired(const struct tree *t, struct wk_id node,
			  struct wk_id version);

/*
 * The device name op carried (struct wk_op.device) when the tree took it;
 * NULL when it carried none (or no valid one), or the tree never took it.
 * What conflict copies of op are named by.  Valid until tree_free().
 */
const char *tree_op_device(const struct tree *t, struct wk_id op);

/*
 * Writes the conflict name of name for the version or naming op loser
 * into buf (WK_NAME_MAX + 1 bytes): "<stem>.conflict-<YYYYMMDD-HHMMSS>-
 * <device>[-<n+1>].<ext>", the time being loser's hlc milliseconds in UTC
 * and device the device name loser carried (tree_op_device()), or its
 * actor in 16 hex digits when that is NULL or not wk_device_valid().  So
 * the name depends on the losing op alone: every replica spells it alike,
 * and renaming a device later renames no existing copy.  The extension
 * follows the last dot unless that dot starts or ends the name.  n > 0
 * tells apart losers that would share a name.  The stem is shortened (on
 * a UTF-8 boundary) to keep within WK_NAME_MAX.
 */
void tree_conflict_name(char *buf, const char *name, struct wk_id loser,
			const char *device, unsigned n);

#endif
