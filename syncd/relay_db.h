/*
 * relay_db.h - wkfs-relay's database, DATA/relay.db.
 *
 * The relay's only SQLite user (lib/db.c is the sidecar's; this is the one
 * other file that includes sqlite3.h, so all relay SQL lives here and
 * SQLITE_* codes never leave it).  Tables:
 *
 *   folders(id, name, token_hash, head)   token_hash NULL: revoked
 *   ops(folder, seq, actor, hlc, payload) seq 1, 2, 3... per folder, no
 *                                         gaps; UNIQUE(folder, actor, hlc)
 *   cursors(folder, actor, seq)           the last seq each replica applied
 *   folder_meta(folder, key, value)       "git_seq": the last seq
 *                                         relay_git.c committed; "git_id":
 *                                         names this relay in commits;
 *                                         "rebuilt": made from git
 *   folder_proto(folder, version)         protocol of its newest pusher
 *
 * WAL with synchronous=FULL: a committed push survives power loss, so the
 * relay may acknowledge it.  Not thread-safe: the relay uses one handle from
 * its service loop, its git thread another (relay_git.c), and `wkfs-relay
 * folder ...` opens its own (SQLite's locking makes them safe together).
 * Functions return 0 or -errno: -ENOENT, -EEXIST, -EBUSY, -ENOSPC, -EIO.
 */
#ifndef WKFS_RELAY_DB_H
#define WKFS_RELAY_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define RELAY_TOKEN_HASH_LEN 32 /* SHA-256 */

struct relay_db;

struct relay_folder {
	int64_t id;
	char name[WIRE_FOLDER_MAX + 1];
	bool active; /* false: its token was revoked */
	uint8_t token_hash[RELAY_TOKEN_HASH_LEN];
	uint64_t head; /* highest seq */
};

/* Opens (creating if needed) DIR/relay.db; err gets a one-line reason. */
int relay_db_open(const char *dir, struct relay_db **out, char *err,
		  size_t errlen);
void relay_db_close(struct relay_db *db);

/* -ENOENT for an unknown folder. */
int relay_db_folder_get(struct relay_db *db, const char *name,
			struct relay_folder *f);

/*
 * Creates folder `name` with a token hash (NULL: created revoked, as
 * --rebuild-from-git does); a revoked folder gets the new token and keeps
 * its history.  -EEXIST when it is active.
 */
int relay_db_folder_add(struct relay_db *db, const char *name,
			const uint8_t hash[RELAY_TOKEN_HASH_LEN]);

/* Forgets the folder's token (its history stays).  -ENOENT if unknown. */
int relay_db_folder_revoke(struct relay_db *db, const char *name);

/* Calls fn for every folder by name; a nonzero return stops and is
 * returned. */
typedef int (*relay_folder_fn)(void *arg, const struct relay_folder *f);
int relay_db_folders_foreach(struct relay_db *db, relay_folder_fn fn,
			     void *arg);

/*
 * Stores the ops of a decoded PUSH in one durable transaction; duplicates
 * on (folder, actor, hlc) are skipped.  *head gets the folder's head after
 * the commit, *added how many ops were new, *added_bytes their payloads'
 * bytes; when those are more than budget, nothing is stored and the
 * answer is -EDQUOT (with *added_bytes set).  On error nothing is stored.
 */
int relay_db_push(struct relay_db *db, int64_t folder,
		  const struct wire_msg *push, uint64_t budget, uint64_t *head,
		  uint32_t *added, uint64_t *added_bytes);

/* The bytes of all the folder's op payloads (its share of the
 * folder-bytes limit; one scan of its ops). */
int relay_db_payload_bytes(struct relay_db *db, int64_t folder,
			   uint64_t *bytes);

int relay_db_head(struct relay_db *db, int64_t folder, uint64_t *head);

/*
 * Calls fn with the ops of seq > after, in seq order, at most `limit` of
 * them, leaving out those of actor skip_actor.  The payload pointer is valid
 * only during the call.  fn returns 0 to go on, 1 to stop (the op was not
 * taken), or -errno.  *rows gets the number of ops fn took.
 */
typedef int (*relay_op_fn)(void *arg, const struct wire_opent *e);
int relay_db_ops_after(struct relay_db *db, int64_t folder, uint64_t after,
		       uint64_t skip_actor, unsigned limit, relay_op_fn fn,
		       void *arg, unsigned *rows);

/* Raises (never lowers) the cursor of (folder, actor) to seq. */
int relay_db_cursor_set(struct relay_db *db, int64_t folder, uint64_t actor,
			uint64_t seq);

/* The cursor of (folder, actor); -ENOENT if none was stored. */
int relay_db_cursor_get(struct relay_db *db, int64_t folder, uint64_t actor,
			uint64_t *seq);

/* Calls fn with every cursor of the folder (the replicas it knows), by
 * actor; a nonzero return stops and is returned. */
typedef int (*relay_cursor_fn)(void *arg, uint64_t actor, uint64_t seq);
int relay_db_cursors_foreach(struct relay_db *db, int64_t folder,
			     relay_cursor_fn fn, void *arg);

/* How many ops of other actors than `actor` come after seq `after`: what
 * that replica has yet to apply (one scan of them). */
int relay_db_ops_behind(struct relay_db *db, int64_t folder, uint64_t after,
			uint64_t actor, uint64_t *count);

/* Calls fn with the newest op (by clock) of actor in the folder, if it
 * has one (the status page reads its device name from it). */
int relay_db_last_op(struct relay_db *db, int64_t folder, uint64_t actor,
		     relay_op_fn fn, void *arg);

/*
 * The cursor a HELLO names: stored (a row even at 0, which marks the actor
 * as known to this relay), or -ESTALE when the folder was rebuilt from git
 * and an actor it never saw names a cursor: one the old relay gave out,
 * meaningless for the new seqs (the caller answers `cursor`).
 */
int relay_db_hello_cursor(struct relay_db *db, int64_t folder, uint64_t actor,
			  uint64_t cursor);

/* As relay_db_ops_after(), without leaving any actor out (relay_git.c). */
int relay_db_ops_range(struct relay_db *db, int64_t folder, uint64_t after,
		       unsigned limit, relay_op_fn fn, void *arg,
		       unsigned *rows);

/* A folder's meta value; -ENOENT when it was never set. */
int relay_db_meta_get(struct relay_db *db, int64_t folder, const char *key,
		      uint64_t *value);
int relay_db_meta_set(struct relay_db *db, int64_t folder, const char *key,
		      uint64_t value);

/*
 * The rebuild (relay_git.c): ops are staged with relay_db_import_op()
 * (duplicates on (actor, hlc) dropped), then relay_db_import_finish()
 * numbers them 1, 2, 3... in (hlc, actor) order in one transaction, sets
 * the head, and marks the folder rebuilt with everything committed to git.
 */
int relay_db_import_op(struct relay_db *db, int64_t folder, uint64_t actor,
		       uint64_t hlc, const uint8_t *payload, uint32_t len);
int relay_db_import_finish(struct relay_db *db, int64_t folder, uint64_t *head);

/* *empty: no folder at all. */
int relay_db_empty(struct relay_db *db, bool *empty);

/*
 * The protocol version of a folder: the highest version of a session that
 * stored ops in it (1 when none did).  raise() never lowers it and is
 * durable before it returns, so calling it before relay_db_push() means a
 * folder never holds ops its version does not tell.
 */
int relay_db_proto_get(struct relay_db *db, int64_t folder, uint32_t *version);
int relay_db_proto_raise(struct relay_db *db, int64_t folder, uint32_t version);

const char *relay_db_errmsg(struct relay_db *db);

#endif
