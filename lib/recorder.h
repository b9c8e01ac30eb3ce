/*
 * recorder.h - turns changes to the tree into ops, and ops into SQLite rows.
 *
 * The recorder owns the tracked tree in memory (nindex), the hybrid logical
 * clock, the ignore rules and the database handle.  A caller (a FUSE handler,
 * the startup scan) takes the recorder's lock, looks nodes up, and calls the
 * rec_*_l() functions, which stamp an op, update the index at once and queue
 * the op.  One writer thread drains the queue into the database, many ops per
 * transaction, and hashes the content of puts there, off the request path.
 * So a create costs a hash-table insert, not a SQLite commit; rec_flush()
 * waits for the queue to reach the disk (fsync, `wkfs log`, unmount).
 *
 * Locking: rec_lock() guards the index, the clock, the ignore rules and the
 * queue.  Never hold it across a syscall on the backing directory or a FUSE
 * reply: look up, record, unlock.
 */
#ifndef WKFS_RECORDER_H
#define WKFS_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "nindex.h"
#include "op.h"

struct recorder;

/*
 * Opens the database beneath dirfd (creating it with create, for init),
 * loads the tree and the clock, reads the ignore rules of config and of the
 * tree's .wkfsignore files, and starts the writer thread.  err gets a
 * one-line reason on failure.
 */
int rec_open(int dirfd, const struct wk_config *cfg, bool create,
	     struct recorder **out, char *err, size_t errlen);

/* Flushes the queue durably, stops the writer, closes the database. */
void rec_close(struct recorder *r);

void rec_lock(struct recorder *r);
void rec_unlock(struct recorder *r);

/* The following need the lock held. */
struct nindex *rec_index(struct recorder *r);
uint64_t rec_actor(struct recorder *r);

/* True when name under parent is not synced (ignore rules, or .wkfs at the
 * root). */
bool rec_ignored_l(struct recorder *r, struct nnode *parent, const char *name,
		   bool is_dir);

/* mkdir, create (an empty file) or symlink (target) of name under parent. */
int rec_create_l(struct recorder *r, struct nnode *parent, const char *name,
		 enum wk_kind kind, uint32_t mode, uint64_t ino,
		 const char *target, struct nnode **out);

/*
 * New content for file n.  With fd >= 0 (a readable descriptor of the file,
 * owned by the recorder from now on) the writer hashes it; otherwise hash,
 * size and mtime_ns are taken as given (the scan hashed already).
 */
int rec_put_l(struct recorder *r, struct nnode *n, int fd,
	      const struct wk_hash *hash, uint64_t size, int64_t mtime_ns);

/* Rename n to parent/name (the name must be free in the index). */
int rec_move_l(struct recorder *r, struct nnode *n, struct nnode *parent,
	       const char *name);

/* Remove n; a directory is removed with everything below it, children
 * first, one op each. */
int rec_remove_l(struct recorder *r, struct nnode *n);

/* Mode (attrs & WK_ATTR_MODE) and/or mtime (WK_ATTR_MTIME) of n. */
int rec_setattr_l(struct recorder *r, struct nnode *n, uint32_t attrs,
		  uint32_t mode, int64_t mtime_ns);

/* Waits until every op queued so far is committed (durably: fsynced). */
int rec_flush(struct recorder *r, bool durable);

/* Ops queued since open (a cheap progress count for tests and status). */
uint64_t rec_recorded(struct recorder *r);

/* Reloads the rules of the .wkfsignore file in directory dirpath (relative
 * to the root, "" for the root), read through the root's fd; lock held. */
void rec_reload_ignore_l(struct recorder *r, const char *dirpath);

/* True when path (relative to the root) is ignored by its own rules. */
bool rec_ignored_path_l(struct recorder *r, const char *path, bool is_dir);

struct wkdb;
/* Loads the nodes table into ix (used by the recorder and by readers such
 * as `wkfs log`). */
int rec_load_tree(struct wkdb *db, struct nindex *ix, char *err,
		  size_t errlen);

#endif
