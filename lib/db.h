/*
 * db.h - the sidecar database DIR/.wkfs/wkfs.db.
 *
 * The only module that speaks SQLite; SQLITE_* codes never leave it.  It holds
 * five tables (docs/architecture.md shows the schema):
 *   meta     key/value: actor id, last HLC, cursors
 *   nodes    the current tree: one row per tracked file, directory or symlink
 *   ops      the oplog, in recording order (seq), unique on (hlc, actor)
 *   devices  the device names ops carry, interned (ops.device is an id)
 *   held     remote ops the mount set aside, and why
 *
 * The database is reached through a directory fd of DIR, never through DIR's
 * path: when wkfs is mounted over DIR, DIR/.wkfs is hidden by the mount, but a
 * fd opened before the mount still reaches the real directory.  The path
 * handed to SQLite is /proc/self/fd/N/.wkfs/wkfs.db, and a VFS that keeps that
 * path as written stops SQLite from resolving the /proc link back into the
 * mount.
 *
 * A handle is used by one thread at a time (callers lock).  Functions return
 * 0 or -errno: -ENOENT (no database), -EIO (corrupt or I/O error), -EROFS,
 * -EBUSY (locked past the busy timeout), -EEXIST (duplicate op).
 */
#ifndef WKFS_DB_H
#define WKFS_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"

#define DB_SCHEMA_VERSION 4

enum db_open_flags {
	DB_CREATE = 0x1,   /* create .wkfs/wkfs.db if missing (init) */
	DB_READONLY = 0x2, /* never write (status, log) */
};

/* Where an op came from. */
enum db_origin {
	DB_ORIGIN_LOCAL = 0,
	DB_ORIGIN_REMOTE = 1,
};

struct wkdb;

/* One row of the nodes table. */
struct db_node {
	struct wk_id id;
	struct wk_id parent;
	char name[WK_NAME_MAX + 1];
	enum wk_kind kind;
	uint32_t mode;
	uint64_t size;
	int64_t mtime_ns;
	bool has_hash;
	struct wk_hash hash;
	char *target;	      /* symlinks: malloc'd, freed by the owner */
	struct wk_id version; /* the last op that changed the node */
	struct wk_id content; /* the put (or create) of its current content:
				 the base of its next put */
	uint64_t ino;	      /* backing inode number at the last record */
};

/* One row of the ops table, as read back for the log. */
struct db_oprow {
	int64_t seq;
	struct wk_op op;
	enum db_origin origin;
	bool shipped;
};

/*
 * Opens (or with DB_CREATE creates) the database beneath dirfd, migrating an
 * older schema forward.  A file that is not a wkfs database, or one from a
 * newer wkfs, is an error with a one-line reason in err; it is never
 * recreated.
 */
int db_open_at(int dirfd, int flags, struct wkdb **out, char *err,
	       size_t errlen);
void db_close(struct wkdb *db);

/* The last SQLite error message, for logs. */
const char *db_errmsg(struct wkdb *db);

/* Transactions.  durable: make the commit survive power loss (fsync). */
int db_begin(struct wkdb *db);
int db_commit(struct wkdb *db, bool durable);
void db_rollback(struct wkdb *db);

int db_meta_get_u64(struct wkdb *db, const char *key, uint64_t *v);
int db_meta_set_u64(struct wkdb *db, const char *key, uint64_t v);
/* Copies the value into buf; -ENOENT when absent. */
int db_meta_get_str(struct wkdb *db, const char *key, char *buf, size_t len);
int db_meta_set_str(struct wkdb *db, const char *key, const char *v);

/* Appends an op, with its device name (op->device: empty, or valid by
 * wk_device_valid(), else -EINVAL); *seq (may be NULL) receives its
 * sequence number. */
int db_op_append(struct wkdb *db, const struct wk_op *op, enum db_origin origin,
		 int64_t *seq);

/* Inserts or replaces a node row, or deletes one. */
int db_node_put(struct wkdb *db, const struct db_node *n);
int db_node_delete(struct wkdb *db, struct wk_id id);

/* Calls fn for every node (parents before children is not guaranteed).
 * fn returns 0 to go on; anything else stops the walk and is returned as
 * it is (so use values that cannot be mistaken for -errno, or -errno). */
typedef int (*db_node_fn)(void *arg, const struct db_node *n);
int db_nodes_foreach(struct wkdb *db, db_node_fn fn, void *arg);

/* Calls fn for the ops after seq `after` in order; with last_n > 0 only the
 * newest last_n of them. */
typedef int (*db_op_fn)(void *arg, const struct db_oprow *row);
int db_ops_foreach(struct wkdb *db, int64_t after, int64_t last_n, db_op_fn fn,
		   void *arg);

/*
 * Held remote ops: the mount's record of the ops it set aside
 * (lib/apply_plan.h), with the reason (an enum plan_hold), the path they
 * concern as the mount saw it, and when they were first held (ms since
 * the epoch).  db_held_set() inserts or updates one (keeping since_ms),
 * db_held_clear() drops it once fed.  db_held_foreach() visits them in
 * seq order; fn's return is as for db_ops_foreach.
 */
struct db_held {
	struct db_oprow row;
	int reason;
	const char *path; /* valid during the call; "" when unknown */
	int64_t since_ms;
};
int db_held_set(struct wkdb *db, int64_t seq, int reason, const char *path,
		int64_t since_ms);
int db_held_clear(struct wkdb *db, int64_t seq);
typedef int (*db_held_fn)(void *arg, const struct db_held *h);
int db_held_foreach(struct wkdb *db, db_held_fn fn, void *arg);

/* Counts the remote ops after seq `after` (not applied yet, for the
 * mount's apply cursor). */
int db_ops_remote_after(struct wkdb *db, int64_t after, int64_t *n);

/*
 * Marks every op with seq <= upto as shipped (wkfs-syncd, once the relay
 * acknowledged them; remote ops below upto came from the relay anyway).
 * *marked (may be NULL) gets how many rows changed.
 */
int db_ops_mark_shipped(struct wkdb *db, int64_t upto, int64_t *marked);

/* Marks every local op unshipped again (the remote lost them). */
int db_ops_unship_local(struct wkdb *db);

/* Reads the node row of id into *n (release it with db_node_release()):
 * 0, -ENOENT when there is none, -errno. */
int db_node_get(struct wkdb *db, struct wk_id id, struct db_node *n);

/* Counts: ops in the log, and ops not yet shipped. */
int db_op_counts(struct wkdb *db, int64_t *total, int64_t *unshipped);

/* Local ops not yet shipped, and the bytes of content their puts name. */
int db_pending(struct wkdb *db, int64_t *ops, int64_t *bytes);

/* Of those, the files (nodes) whose content is to be sent, and the puts. */
int db_pending_files(struct wkdb *db, int64_t *files, int64_t *puts);

/* Frees the strings a db_node owns. */
void db_node_release(struct db_node *n);

#endif
