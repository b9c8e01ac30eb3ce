/*
 * view_repair.h - what DIR lacks of the view, as changes that give it
 * back (the apply thread's repair pass, fs/apply.c).
 *
 * The view (the merge engine's tree of every op) is what DIR must show;
 * the index is what DIR holds.  Every batch keeps them equal, but a batch
 * whose changes were judged already shown, or carried out over a tree a
 * local program changed meanwhile, can leave DIR without an entry the
 * view has (a conflict copy, most often) or with another mode: then both
 * replicas agree on the view and one of them shows something else, for
 * good.  The pass runs when nothing waits and every local op is in the
 * view, and only ever adds: an entry the view has at a path where DIR has
 * nothing, and the mode of a file the index holds as the view's version.
 * It never removes nor replaces what DIR has.
 */
#ifndef WKFS_VIEW_REPAIR_H
#define WKFS_VIEW_REPAIR_H

#include <stdbool.h>
#include <stddef.h>

#include "nindex.h"
#include "tree.h"

/* Can the materializer get c's content now (store or a file here)? */
typedef bool (*view_repair_have_fn)(void *arg, const struct tree_change *c);

/*
 * Appends to out a change for each view entry that DIR (rootfd; the index
 * ix says what it holds) lacks, where the index has nothing at the path or
 * holds what the view shows there (the same version of a file):
 * - MKDIR, WRITE (content by the view's hash, only when have says it is
 *   at hand) or SYMLINK where the file system has nothing at the path and
 *   the parent is a directory (or made by an earlier change of out);
 * - SETATTR where a file's or directory's mode is another.
 * Without check_disk the index is taken for what DIR holds (one stat only
 * where the index has nothing); with it, every entry is looked at on disk
 * (after a batch some of whose steps failed: the index then follows the
 * view, not the disk).  Returns how many changes it appended.
 */
size_t view_repair_collect(const struct tree *view, struct nindex *ix,
			   int rootfd, bool check_disk,
			   view_repair_have_fn have, void *arg,
			   struct tree_changes *out);

#endif
