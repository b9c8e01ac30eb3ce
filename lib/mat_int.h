/*
 * mat_int.h - internals shared by the materializer's files:
 * materialize.c (steps, batches, recovery), mat_path.c (checked path
 * resolution, the object store), mat_journal.c (the journal's encoding).
 * Not a public interface: materialize.h is.
 */
#ifndef WKFS_MAT_INT_H
#define WKFS_MAT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "materialize.h"

/* A deferred object: written to tmp, not yet synced nor in the store. */
struct mat_pending {
	struct wk_hash hash;
	char tmp[64];
};

struct mat {
	int rootfd;	 /* DIR (our dup) */
	int tmpfd;	 /* DIR/.wkfs/tmp, O_RDONLY */
	int objfd;	 /* DIR/.wkfs/objects, O_RDONLY */
	bool no_openat2; /* ENOSYS seen, or WKFS_NO_OPENAT2 set (tests) */
	bool nosync;	 /* WKFS_NOSYNC set: tests of process crashes only */
	bool defer;	 /* mat_object_defer(): objects synced by a flush */
	struct mat_pending *pending; /* objects put since the last flush */
	size_t npending, pending_alloc;
	uint64_t seq;  /* number of the next journal */
	uint64_t tmpn; /* counter for temporary names */
	mat_source_fn source;
	void *source_arg;
	mat_notify_fn notify;
	void *notify_arg;
};

/* Most changes one batch may hold (the journal refuses more). */
#define MAT_MAX_CHANGES (1u << 24)
/* Longest path a change may name, in bytes without the NUL. */
#define MAT_PATH_MAX 4095
/* Longest string the journal holds: longer ones refuse the batch, ones
 * between this and what a change may use fail that change only. */
#define MAT_STR_MAX 65536
/* Where staged entries live, and the prefix of their names. */
#define MAT_STAGE_PREFIX TREE_STAGE_DIR "/merge-"

#define MAT_JOURNAL_PREFIX "journal."
/* A finished tagged batch's journal, until mat_forget(). */
#define MAT_DONE_PREFIX "done."

/* ---- materialize.c ---- */

/*
 * Runs ch from step start on, marking progress in the journal jfd (whose
 * progress bytes start at poff), then finishes the batch (directory
 * attributes, staged leftovers, directory fsyncs) and deletes journal seq,
 * or, with a tag, renames it done.<seq> (kept until mat_forget()).  Adds
 * to res.  0, or -errno when the journal could not be kept up (it stays
 * for mat_recover()).
 */
int mat_run_batch(struct mat *m, const struct tree_changes *ch, uint64_t seq,
		  uint64_t tag, int jfd, size_t poff, size_t start,
		  struct mat_result *res);

/* ---- mat_path.c ---- */

/*
 * Checks path (see materialize.h: every component valid, no ".wkfs" at
 * the root unless stage is true and path is a staging name) and opens its
 * parent beneath DIR without following any symlink.  *dirfd gets an
 * O_PATH fd the caller closes, *name points into path at the last
 * component.  0, -EINVAL (bad name), -EPERM (.wkfs), -ELOOP / -ENOTDIR /
 * -EXDEV (a symlink or non-directory on the way), -ENOENT.
 */
int mat_parent(struct mat *m, const char *path, bool stage, int *dirfd,
	       const char **name);

/* True for TREE_STAGE_DIR "/merge-..." (one component below it). */
bool mat_is_stage(const char *path);

/*
 * Opens the directory at path (relative to DIR, "" for DIR itself) for
 * reading, beneath DIR without following symlinks.  fd or -errno.
 */
int mat_open_dir(struct mat *m, const char *path);

/* Copies everything readable from src (offset 0) to dst at its offset.
 * 0 or -errno. */
int mat_copy_fd(int src, int dst);

/*
 * fsync(fd), and fdatasync(fd) for the journal's progress bytes (they
 * never change its size).  Both do nothing with WKFS_NOSYNC, which the
 * crash tests set: a killed process loses nothing the page cache holds,
 * so they need not pay for the disk.  0 or -1 and errno.
 */
int mat_sync(struct mat *m, int fd);
int mat_datasync(struct mat *m, int fd);
/*
 * Many new files to make durable: one syncfs() when there are at least
 * MAT_SYNCFS_MIN (one disk cache flush; an fsync each would cost a flush
 * each, even when one journal commit covers them all): 0 or -errno.  1:
 * fewer, fsync each yourself (or WKFS_NOSYNC: nothing to do).
 */
#define MAT_SYNCFS_MIN 8
int mat_sync_many(struct mat *m, size_t n);

/* A fresh temporary name "<tag>.<pid>.<n>" into buf (64 bytes). */
void mat_tmpname(struct mat *m, char tag, char buf[64]);

/* ---- mat_journal.c ---- */

/*
 * Encodes ch as journal seq with the caller's tag: header, changes,
 * checksum, then ch->n zero progress bytes.  *out is malloc'ed, *len its
 * length, *progress_off where the progress bytes start.  0, -E2BIG (too
 * many changes or bytes), -EINVAL (a missing string or one over
 * MAT_STR_MAX), -ENOMEM.
 */
int mat_journal_encode(uint64_t seq, uint64_t tag,
		       const struct tree_changes *ch, uint8_t **out,
		       size_t *len, size_t *progress_off);

/*
 * Decodes a journal: fills ch (initialised by the caller), *tag, *start
 * with the number of leading steps marked done and *progress_off.  Every
 * byte is checked: -EBADMSG for anything that is not a journal of seq
 * written by mat_journal_encode().  -ENOMEM.
 */
int mat_journal_decode(uint64_t seq, const uint8_t *p, size_t len,
		       struct tree_changes *ch, uint64_t *tag, size_t *start,
		       size_t *progress_off);

/* Largest journal file mat_recover() reads. */
#define MAT_JOURNAL_MAX ((size_t)1 << 30)

#endif
