/*
 * mat_gc.h - dropping objects from DIR/.wkfs/objects once nothing needs
 * them.
 *
 * The store holds whole files that the sync layer downloaded for remote
 * puts (materialize.h).  Once a put is applied its content is in DIR (or,
 * retired by a later put in the same batch, needed nowhere), and the
 * materializer's source callback finds a file of DIR by hash whenever a
 * later change needs that content again, exactly as for local versions.
 * So an object can go once the puts that name it are applied and no
 * pending remote put names it: one above applied_seq (not taken yet), or
 * one the mount holds back (the held table: waiting for a close, say).
 *
 * Only hashes of puts that were applied are ever dropped: an object the
 * sync layer stored for ops it has not inserted yet (it stores content
 * first, then the ops) is never touched.
 *
 * Calling sequence (fs/apply.c, under the recorder's lock, which guards
 * the read connection):
 *
 *	struct mat_gc g;
 *	mat_gc_init(&g);
 *	mat_gc_sweep(m, db, applied_seq);	// at open: what a past run
 *						// left behind
 *	... after each batch is committed durably:
 *	mat_gc_note(&g, ops, n);		// the batch's remote ops
 *	mat_gc_run(&g, m, db, applied_seq);	// drops, or waits for later
 *	...
 *	mat_gc_release(&g);
 */
#ifndef WKFS_MAT_GC_H
#define WKFS_MAT_GC_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "materialize.h"
#include "op.h"

struct mat_gc {
	struct wk_hash *v; /* contents of applied remote puts */
	size_t n, alloc;
};

void mat_gc_init(struct mat_gc *g);
void mat_gc_release(struct mat_gc *g);

/* Notes the contents of the puts among ops (applied, committed). */
void mat_gc_note(struct mat_gc *g, const struct wk_op *ops, size_t n);

/*
 * Drops the noted objects that no remote put after applied_seq names, and
 * forgets them.  With a long backlog after applied_seq (more than
 * MAT_GC_SCAN_MAX rows) it does nothing and keeps them for a later call.
 * 0 or -errno (a database error; nothing dropped).
 */
int mat_gc_run(struct mat_gc *g, struct mat *m, struct wkdb *db,
	       int64_t applied_seq);

/*
 * Drops every object in the store that an applied remote put (seq at or
 * below applied_seq) names and no later remote put does: one pass over
 * the oplog, only when the store is not empty.  0 or -errno.
 */
int mat_gc_sweep(struct mat *m, struct wkdb *db, int64_t applied_seq);

/* Rows after applied_seq mat_gc_run() reads before it gives up. */
#define MAT_GC_SCAN_MAX 65536
/* Noted hashes kept at most (the next sweep finds the rest). */
#define MAT_GC_NOTE_MAX (1u << 20)

#endif
