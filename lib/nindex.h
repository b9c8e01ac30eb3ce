/*
 * nindex.h - the tracked tree in memory: nodes by id and by (parent, name).
 *
 * The mount process answers "which node is DIR/a/b?" on every lookup, create
 * and rename; asking SQLite each time would put the database on the hot path.
 * So the nodes table is loaded once into this index, the recorder keeps both
 * in step, and SQLite is only written, in batches, by the recorder's thread.
 *
 * Pure data: no I/O, no locking (the recorder's lock covers it).  Names are
 * owned by the index.  Removing a directory requires it to be empty.
 */
#ifndef WKFS_NINDEX_H
#define WKFS_NINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"

struct nnode {
	struct wk_id id;
	struct nnode *parent; /* NULL for the root */
	char *name;	      /* "" for the root */
	enum wk_kind kind;
	uint32_t mode;
	uint64_t size;
	int64_t mtime_ns;
	bool has_hash;
	struct wk_hash hash;
	char *target;	      /* symlinks */
	struct wk_id version; /* last op that changed the node */
	struct wk_id content; /* op of its current content: base of the next
				 put */
	uint64_t ino;	      /* backing inode number */
	/* A conflict copy (a losing version shown beside its file, see
	 * docs/merge.md) is indexed so the mount can find it by name, but is
	 * no node of its own: id is then the version shown, copy_of the node
	 * it belongs to.  Zero (WK_ID_ROOT) for real nodes. */
	struct wk_id copy_of;

	/* Children of a directory, and the links of the two hash chains. */
	struct nnode *first_child, *next_sibling, *prev_sibling;
	struct nnode *id_next, *name_next;
	size_t n_children;
	unsigned
		scan_mark; /* scratch for the scan, under the recorder's lock */
};

struct nindex;

/* A new index holding only the root directory (id WK_ID_ROOT). */
struct nindex *nindex_new(void);
void nindex_free(struct nindex *ix);

struct nnode *nindex_root(struct nindex *ix);
size_t nindex_count(const struct nindex *ix); /* nodes, root excluded */

struct nnode *nindex_get(const struct nindex *ix, struct wk_id id);
struct nnode *nindex_child(const struct nindex *ix, const struct nnode *dir,
			   const char *name);

/*
 * Adds a node under parent with the given name (copied).  The caller fills
 * the attribute fields of the returned node.  -EEXIST when the id or the
 * name is taken, -ENOTDIR when parent is not a directory.
 */
int nindex_add(struct nindex *ix, struct wk_id id, struct nnode *parent,
	       const char *name, enum wk_kind kind, struct nnode **out);

/* Moves n to parent/name.  -EEXIST when taken, -ELOOP when parent is n or
 * inside it. */
int nindex_move(struct nindex *ix, struct nnode *n, struct nnode *parent,
		const char *name);

/* Removes and frees n; -ENOTEMPTY for a directory with children. */
int nindex_remove(struct nindex *ix, struct nnode *n);

/*
 * The node at the first len bytes of a relative path ("a/b"; len 0: the
 * root), or NULL.
 */
struct nnode *nindex_lookup(struct nindex *ix, const char *path, size_t len);

/*
 * Writes n's path relative to the root ("" for the root, "a/b" below it).
 * -ENAMETOOLONG if it does not fit.
 */
int nindex_path(const struct nnode *n, char *buf, size_t len);

/* True when n is a conflict copy (see copy_of). */
static inline bool nnode_is_copy(const struct nnode *n)
{
	return !wk_id_eq(n->copy_of, WK_ID_ROOT);
}

/*
 * Fills out[] with up to max files other than skip whose backing inode is
 * ino (hard links of one file: each name is a node of its own) and
 * returns how many there are.  A walk of the whole index: for files with
 * more than one link only.
 */
size_t nindex_with_ino(struct nindex *ix, uint64_t ino,
		       const struct nnode *skip, struct nnode **out,
		       size_t max);

/* True when n is a or lies below it. */
bool nindex_is_within(const struct nnode *n, const struct nnode *a);

#endif
