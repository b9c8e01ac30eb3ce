/*
 * apply_index.h - keeping the recorder's index in line with the merge
 * engine's view after remote ops (a helper of fs/apply.c).
 *
 * The index (lib/nindex.h) is where the mount's handlers look nodes up;
 * after a batch it must show what the tree shows.  Remote ops add, move,
 * change and remove nodes; a conflict copy gets an entry of its own
 * (nnode_is_copy(): the shown version as id, copy_of its node); a merged
 * directory keeps the member the index already had.  No op is recorded:
 * every changed node gets a row write queued (rec_node_sync_l).  Touched
 * entries are stat'ed for their inode number and, once the inode table
 * exists (inodes), the finode the kernel knows for it is tied to the node.
 *
 * Two ways, both with the recorder's lock held:
 *
 *  - index_sync_all(): the whole view, then a sweep of what it no longer
 *    shows.  O(nodes).  At mount, and as the fallback below.
 *  - index_sync_batch(): only what one batch changed: the entries at the
 *    paths its change list leaves things at (in the list's order, parents
 *    first), the main entries of the nodes its ops name (a put can change
 *    the version shown, the next local put's base, without a WRITE), and
 *    the removal of what its REMOVEs took away.  O(changes) lookups.  When
 *    an entry had to be parked (its name taken by another node whose own
 *    place did not free it: a swap, a collision) and is still parked, it
 *    runs index_sync_all() and sets full.
 *
 * Both return how many index entries changed.
 */
#ifndef WKFS_APPLY_INDEX_H
#define WKFS_APPLY_INDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "tree.h"

struct wkfs;

struct index_sync {
	struct wkfs *fs;
	const struct tree *tree;
	bool inodes; /* tie finodes (the inode table exists) */
	bool full;   /* out: index_sync_batch() fell back to the walk */
};

size_t index_sync_all(struct index_sync *s);
size_t index_sync_batch(struct index_sync *s, const struct tree_changes *ch,
			const struct wk_op *ops, size_t n);

#endif
