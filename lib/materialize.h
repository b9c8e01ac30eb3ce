/*
 * materialize.h - applying the merge engine's changes to the backing
 * directory, safely and crash-proof.
 *
 * The merge engine (tree.h) says what the synced directory DIR must become
 * as an ordered list of path-level changes.  The materializer carries them
 * out with plain syscalls relative to a directory fd of DIR.  It is pure
 * library code: no FUSE, no SQLite, no network; the mount process calls it
 * and does the rest (see "What the caller does" below).
 *
 * Guarantees:
 *
 *  - Containment.  Every path is checked before use: each component must
 *    pass wk_name_valid() ("", ".", "..", '/', over 255 bytes are refused)
 *    and ".wkfs" at the root is refused, except that a RENAME may take an
 *    entry into or out of TREE_STAGE_DIR "/merge-<x>" (the engine's staging
 *    names).  The parent directory is opened beneath DIR with openat2()
 *    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS (or,
 *    without openat2, a walk of O_NOFOLLOW | O_DIRECTORY opens), so a
 *    symlink anywhere in the path fails the change with -ELOOP or -ENOTDIR;
 *    the last component is acted on with *at() calls that never follow it.
 *    Nothing from a change list can touch anything outside DIR or inside
 *    DIR/.wkfs other than the staging names.
 *
 *  - Atomicity per entry.  A WRITE copies the content into DIR/.wkfs/tmp,
 *    verifies its hash, sets mode and mtime (ns), fsyncs, then renames it
 *    into place: a reader sees the old file or the new one, never a mix.
 *    A symlink at the destination is replaced, never written through; a
 *    directory there makes the WRITE fail.  SYMLINK is created under a
 *    temporary name and renamed into place the same way.
 *
 *  - No clobbering.  RENAME, SYMLINK and MKDIR never replace what they find
 *    (renameat2 RENAME_NOREPLACE): a name taken by something the engine did
 *    not know about fails the change instead of destroying it.  REMOVE acts
 *    only on the kind the change names (a file is unlinked, a directory
 *    rmdir'ed only when empty).  Only WRITE replaces, and only a file or
 *    symlink.
 *
 *  - Crash safety.  Before the first step the (checked) list is written to
 *    DIR/.wkfs/tmp/journal.<n> (temporary file, fsync, rename, fsync of the
 *    directory), with one progress byte per change marked as each step
 *    ends (and made durable at once after a RENAME or REMOVE: run again
 *    after later steps, those could move or delete what took the name
 *    since).  After a crash mat_recover() replays the journal from the
 *    first unmarked step; every step recognises its own completed effect
 *    (a rename whose source is gone and destination present, a write whose
 *    destination has the hash, mkdir finding the directory, remove finding
 *    nothing), so the one step that may have been cut short is finished,
 *    not repeated.  Steps further back are never rerun: a list that reuses
 *    a name (a swap through staging) is not idempotent as a whole.  At the
 *    end every directory the batch touched is fsynced, the marks are made
 *    durable, and the journal deleted.  A journal whose bytes do not check
 *    out (magic, batch number, checksum, every field) is refused with
 *    -EBADMSG, never executed; mat_recover() moves it aside to
 *    journal.<n>.bad.
 *
 *  - Exactly once for the caller.  A batch may carry a tag: a non-zero
 *    number the caller chooses to name what the batch completes (the
 *    mount: the applied_seq it reaches).  The journal of a tagged batch is
 *    not deleted when the batch ends but renamed done.<n>, and stays until
 *    mat_forget().  The caller records the tag in its own store, makes
 *    that durable, then calls mat_forget().  Should it crash in between,
 *    mat_recover() reports the highest tag it found finished (res->tag),
 *    and the caller records it then: the batch is never lost, and never
 *    carried out twice.
 *
 *  - Staging names are made unique per batch: the engine's
 *    TREE_STAGE_DIR/merge-<k> becomes TREE_STAGE_DIR/merge-<n>-<k> for the
 *    batch with journal <n>.  An entry whose move out of staging fails is
 *    put back where it came from when that name is free; otherwise it stays
 *    in staging (counted as stranded, logged), never deleted.
 *
 *  - Content is verified: whatever the store or the source callback hands
 *    over is hashed after copying, and a mismatch fails the WRITE with
 *    -EBADMSG (a local file can change under the caller's feet).
 *
 *  - Directory attributes are applied last.  MKDIR creates the directory
 *    with at least u+rwx so the batch can fill it; the mode and mtime of
 *    every directory the batch created or set attributes on are applied
 *    after all other steps (deepest first), so creating children does not
 *    undo the mtime and a read-only mode does not block the batch.
 *
 *  - setuid and setgid bits are dropped from files (not directories): a
 *    remote replica must not be able to plant a setuid program.
 *
 * Object store.  DIR/.wkfs/objects/<32 hex> holds whole files named by
 * their XXH3-128 (content.h): what the sync layer downloaded for the next
 * batch.  A WRITE takes its content from there, else from the source
 * callback (a file elsewhere in DIR that already has that content), else
 * fails with -ENOENT.  An empty file (size 0) needs no content.
 *
 * Calling sequence:
 *
 *	struct mat *m;
 *	mat_open(dirfd, &m);			// DIR/.wkfs must exist
 *	mat_set_source(m, find_local_copy, arg);	// optional
 *	mat_set_notify(m, invalidate, arg);		// optional
 *	mat_recover(m, &res);			// at mount, first
 *	if (res.tag > my_cursor) ...		// record it, durably
 *	mat_forget(m);
 *	...
 *	mat_object_put(m, fd, &hash);		// content as it arrives
 *	if (mat_ready(m, &changes)) {		// else wait for more content
 *		mat_apply(m, &changes, tag, &res);
 *		... res.failed, res.first_err, res.first_path ...
 *		mat_result_release(&res);
 *		... record tag, durably ...
 *		mat_forget(m);
 *	}
 *	mat_close(m);
 *
 * What the caller does: serialise calls (a struct mat is not locked);
 * keep anything else from changing DIR during mat_apply() (the mount's
 * recorder lock, and no file being written to that a WRITE or REMOVE
 * would replace: that update must wait for close and then conflict);
 * invalidate kernel caches for the paths notified; update its own index.
 */
#ifndef WKFS_MATERIALIZE_H
#define WKFS_MATERIALIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "tree.h"

struct mat;

/* Relative to DIR. */
#define MAT_OBJECTS_DIR ".wkfs/objects"

/*
 * Returns a readable fd (the callee's to give: the materializer closes it)
 * whose content should be c->hash (c->size bytes), or -ENOENT (or another
 * -errno) when the caller has none.  c is the WRITE that needs it; its
 * node and version say where the caller may find that content first (a
 * local version that becomes a conflict copy is the node's own file).
 * The content is verified after copying, so a guess that turned out wrong
 * only fails that WRITE.
 */
typedef int (*mat_source_fn)(void *arg, const struct tree_change *c);

/*
 * Called after each change that was carried out (or found already done),
 * with the paths as executed (a move through staging shows up as two
 * renames, one side in TREE_STAGE_DIR).  For invalidating kernel caches.
 * The strings are valid during the call only.
 */
typedef void (*mat_notify_fn)(void *arg, enum tree_change_kind kind,
			      const char *path, const char *new_path);

struct mat_result {
	size_t done;	  /* changes carried out or found done */
	size_t failed;	  /* changes that could not be carried out */
	size_t stranded;  /* entries left in staging (see above) */
	int first_err;	  /* -errno of the first failure, 0 if none */
	char *first_path; /* its path (fresh string) or NULL */
	uint64_t tag;	  /* the highest tag of a batch that finished */
};

/*
 * Opens the materializer on rootfd, a directory fd of DIR (dup'ed; the
 * caller keeps its own).  DIR/.wkfs must exist (and not be a symlink);
 * .wkfs/tmp and .wkfs/objects are created (0700) when missing.
 * 0 or -errno.
 */
int mat_open(int rootfd, struct mat **out);
void mat_close(struct mat *m);

void mat_set_source(struct mat *m, mat_source_fn fn, void *arg);
void mat_set_notify(struct mat *m, mat_notify_fn fn, void *arg);

/*
 * Adds the content of srcfd (read from offset 0) to the object store and
 * returns its hash in *out (may be NULL).  Written to a temporary, hashed
 * there (so a source changing under us stores what was actually copied),
 * fsynced and renamed into place.  Storing what is already there is a
 * no-op.  0 or -errno.
 */
int mat_object_put(struct mat *m, int srcfd, struct wk_hash *out);
/*
 * Batching: after mat_object_defer(m, true), mat_object_put() syncs
 * nothing and leaves the object in a temporary; mat_object_flush() syncs
 * them all and moves them into the store.  Meanwhile mat_object_have()
 * and mat_object_open() find them (in this process).  A caller
 * that records anything that needs the objects (ops in wkfs.db) flushes
 * first; a crash before the flush leaves temporaries only, and the ops
 * that needed them were not recorded, so they are fetched again.
 */
void mat_object_defer(struct mat *m, bool on);
int mat_object_flush(struct mat *m);
bool mat_object_have(struct mat *m, const struct wk_hash *h);
/* Object h, opened for reading (deferred ones too): fd or -errno. */
int mat_object_open(struct mat *m, const struct wk_hash *h);
/* Deletes an object once no batch needs it.  0 or -errno (-ENOENT). */
int mat_object_drop(struct mat *m, const struct wk_hash *h);
/* The hashes of every object in the store: *out (malloc'ed, the caller
 * frees it) and *n.  0 or -errno. */
int mat_object_list(struct mat *m, struct wk_hash **out, size_t *n);

/*
 * True when every WRITE in ch has its content at hand (empty, in the
 * store, or offered by the source callback), so mat_apply() will not fail
 * for want of content.  A caller defers a batch that is not ready rather
 * than apply part of it.
 */
bool mat_ready(struct mat *m, const struct tree_changes *ch);

/*
 * Carries out ch in order (see the guarantees above), journaled, as a
 * batch tagged tag (0: untagged, its journal is deleted at the end).  A
 * change
 * that fails is counted and reported and the batch goes on: later changes
 * do not depend on an earlier one succeeding more than the kernel checks
 * anyway (a missing parent fails them too).  res is filled (initialise
 * nothing; release it with mat_result_release()).  Returns 0 when the
 * batch ran (even with failed changes), or -errno when it could not start
 * (journal not writable, list refused as a whole: -EINVAL for an unknown
 * kind or a missing string).  Hostile paths fail their change only.
 */
int mat_apply(struct mat *m, const struct tree_changes *ch, uint64_t tag,
	      struct mat_result *res);

/*
 * Finishes every batch left behind by a crash, oldest first, and removes
 * stale temporaries from .wkfs/tmp.  res sums over them; res->tag is the
 * highest tag of any batch finished now or before and not forgotten yet.
 * 0, or the first error: -EBADMSG for a corrupt journal (moved aside to
 * journal.<n>.bad or done.<n>.bad; the others are still replayed).
 */
int mat_recover(struct mat *m, struct mat_result *res);

/*
 * Deletes the records of finished tagged batches, once the caller has
 * recorded their tags durably.  0 or -errno.
 */
int mat_forget(struct mat *m);

void mat_result_release(struct mat_result *res);

#endif
