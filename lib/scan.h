/*
 * scan.h - records what changed in DIR while nobody was watching.
 *
 * At `wkfs init` and at every mount, the backing directory is compared with
 * the tracked tree: a file whose size, mtime or inode number differ is hashed
 * and, if its content changed, gets a put; a name the tree does not know is
 * a rename when an unmatched node has its inode number, a create otherwise;
 * a node nothing on disk matches is removed.  That covers edits made while
 * unmounted and ops lost in a crash of the mount.  Ignore rules keep new
 * names out of the walk only: a path where a node is tracked is walked even
 * when a rule matches it, so a rule never makes the scan record a remove.
 *
 * Before recording anything the scan checks for the classic mass delete: if
 * DIR is empty, or most tracked files are gone, it refuses (a drive not
 * plugged in, a wrong path) unless deletions are accepted explicitly.
 */
#ifndef WKFS_SCAN_H
#define WKFS_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recorder.h"

struct scan_stats {
	uint64_t entries; /* on disk, tracked or not ignored */
	uint64_t created, changed, moved, removed;
};

/*
 * Scans the whole tree beneath dirfd.  Returns 0, -ECANCELED when it refused
 * a mass delete (err says why and names --accept-deletions), or -errno.
 * Takes the recorder's lock itself.
 */
int scan_tree(struct recorder *r, int dirfd, bool accept_deletions,
	      struct scan_stats *stats, char *err, size_t errlen);

/*
 * Records parent/name, which exists on disk but is not tracked (it was
 * renamed from an ignored name), and everything below it, as new.  Lock
 * held.  *out gets the new node.
 */
int scan_import_l(struct recorder *r, int dirfd, struct nnode *parent,
		  const char *name, struct nnode **out);

#endif
