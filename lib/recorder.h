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
 * queue.  A request handler never holds it across a syscall on the backing
 * directory or a FUSE reply: look up, record, unlock.  The one exception is
 * the mount's apply round (fs/apply.c), which holds it across the
 * materializer's syscalls on purpose: nothing may be recorded between its
 * plan and its renames.  A handler that needs the lock then waits for the
 * round (tens of milliseconds); no handler waits for a handler.
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
 * tree's .wkfsignore files, and starts the writer thread.  Every op it
 * records carries the device name rec_device_name() gives for config now
 * (a rename in config.ini applies from the next open).  err gets a
 * one-line reason on failure.
 */
int rec_open(int dirfd, const struct wk_config *cfg, bool create,
	     struct recorder **out, char *err, size_t errlen);

/*
 * The device name this replica stamps on its ops: [device] name of cfg,
 * else the host name up to its first dot, each made plain by
 * wk_device_sanitize(); "" when neither leaves anything (the ops then
 * carry none, and their conflict copies are named by the actor id).
 */
void rec_device_name(const struct wk_config *cfg, char out[WK_DEVICE_MAX + 1]);

/* Flushes the queue durably, stops the writer, closes the database. */
void rec_close(struct recorder *r);

void rec_lock(struct recorder *r);
void rec_unlock(struct recorder *r);

/* The following need the lock held. */
struct nindex *rec_index(struct recorder *r);
uint64_t rec_actor(struct recorder *r);

/*
 * True when a new name under parent would not be synced: .wkfs at the root,
 * or a rule matches the name or a directory above it (parent may be tracked
 * although a rule matches it: rules never untrack).  Callers ask only for
 * names nothing is tracked at; a tracked name stays tracked.
 */
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
/*
 * The same, for a file with hard links: link (a file node other than n,
 * or NULL) had n's backing inode when the content was written, and the put
 * says so (struct wk_op.link), so that other replicas link the two names.
 */
int rec_put_link_l(struct recorder *r, struct nnode *n, int fd,
		   const struct wk_hash *hash, uint64_t size, int64_t mtime_ns,
		   const struct nnode *link);

/* Rename n to parent/name (the name must be free in the index). */
int rec_move_l(struct recorder *r, struct nnode *n, struct nnode *parent,
	       const char *name);

/* Remove n; a directory is removed with everything below it, children
 * first, one op each. */
int rec_remove_l(struct recorder *r, struct nnode *n);

/*
 * Drops n, and everything below it, from the index (and the nodes table)
 * without recording anything: for an entry the index shows where DIR has
 * nothing, whose object nobody saw go.  Recording a remove would delete
 * it on every replica; the oplog keeps it, and the other replicas show
 * it.
 */
void rec_forget_l(struct recorder *r, struct nnode *n);

/*
 * Merged directories (tree.h: tree_dir_members) are several directory
 * nodes the view shows at one place; the index holds one of them.  After a
 * move or remove of that one, these record the same for another member,
 * id, which the index never held: a move from (from, from_name) to
 * (parent, name), or a remove at (from, from_name).  The index is not
 * touched.
 */
int rec_move_member_l(struct recorder *r, struct wk_id id, struct nnode *from,
		      const char *from_name, struct nnode *parent,
		      const char *name);
int rec_remove_member_l(struct recorder *r, struct wk_id id, struct nnode *from,
			const char *from_name);

/* Mode (attrs & WK_ATTR_MODE) and/or mtime (WK_ATTR_MTIME) of n. */
int rec_setattr_l(struct recorder *r, struct nnode *n, uint32_t attrs,
		  uint32_t mode, int64_t mtime_ns);
/* The same for member id of the merged directory at parent/name (whatever
 * its own attributes were: the index does not know them). */
int rec_setattr_member_l(struct recorder *r, struct wk_id id,
			 struct nnode *parent, const char *name, uint32_t attrs,
			 uint32_t mode, int64_t mtime_ns);

/* Waits until every op queued so far is committed (durably: fsynced). */
int rec_flush(struct recorder *r, bool durable);

/* The same with the lock held (it is released while waiting, and held
 * again on return: whatever was queued before is committed, and nothing
 * new can have been queued by others only if the caller keeps the lock). */
int rec_flush_l(struct recorder *r, bool durable);

/*
 * Waits, the lock released meanwhile, for the writer to catch up when more
 * than a few batches of ops wait: for one holder of the lock that records
 * a whole folder (the scan at init or at mount), whose queue would
 * otherwise hold an op of some kilobytes for every file at once.  Only for
 * a caller that knows nobody else changes the index meanwhile.
 */
void rec_throttle_l(struct recorder *r);

/* True when every op queued so far is committed (lock held). */
bool rec_idle_l(const struct recorder *r);

/*
 * Applying remote ops (fs/apply.c).  These need the lock held.
 *
 * rec_observe_l: a remote op stamped hlc is being taken in: moves the clock
 * past it (hlc_update), so every later local op is newer.  -ERANGE when hlc
 * is more than a day ahead of the wall clock (the op must be refused).
 *
 * rec_node_sync_l: queues a write of the row of id as the index holds it
 * (a deletion when the index does not have it, or has a conflict copy
 * there), without recording an op: the caller changed the index to match
 * remote ops, which are in the oplog already.
 *
 * rec_meta_set_l: queues meta key = v, committed in the same transaction
 * as what was queued before it (so a cursor moves with the rows it covers).
 */
int rec_observe_l(struct recorder *r, uint64_t hlc);
void rec_node_sync_l(struct recorder *r, struct wk_id id);
void rec_meta_set_l(struct recorder *r, const char *key, uint64_t v);
/* rec_held_set_l: queues the held row of remote op seq with reason (an
 * enum plan_hold) and path, or its removal when reason is 0, committed
 * with what was queued before it (the applied_seq that passes it). */
void rec_held_set_l(struct recorder *r, int64_t seq, int reason,
		    const char *path);

/*
 * Conflict copies (nnode_is_copy()) are views of a losing version, not
 * nodes.  rec_remove_l() on one records a remove of copy_of with the copy's
 * version as base.  Anything else done to one (new content, a rename, a
 * chmod) first makes it a real file: rec_promote_l() records a create at
 * its place, a put of its content and a remove of its version, replaces the
 * index entry by the new node and stores that in *n; a no-op for a real
 * node.  rec_put_l(), rec_move_l() and rec_setattr_l() refuse a copy with
 * -EPERM: callers promote first (and retie what referred to the copy).
 */
int rec_promote_l(struct recorder *r, struct nnode **n);

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
int rec_load_tree(struct wkdb *db, struct nindex *ix, char *err, size_t errlen);

#endif
