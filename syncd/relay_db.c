/*
 * relay_db.c - wkfs-relay's database (see relay_db.h for the contract).
 *
 * Folders are referred to by an integer id in ops and cursors.  A folder's
 * head (its highest seq) is kept in its row and advanced in the same
 * transaction that inserts ops, so seqs are gap-free without a MAX() scan.
 * 64-bit actors and hlcs are stored as SQLite's signed integers, cast both
 * ways; only equality matters for them here.
 */
#include "relay_db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "xalloc.h"

#define RELAY_SCHEMA_VERSION 2
/* How long a statement waits for another process's lock. */
#define RELAY_DB_BUSY_MS 5000

enum stmt_id {
	ST_FOLDER_GET,
	ST_FOLDER_INSERT,
	ST_FOLDER_SET_TOKEN,
	ST_FOLDER_REVOKE,
	ST_FOLDER_LIST,
	ST_HEAD_GET,
	ST_HEAD_SET,
	ST_OP_INSERT,
	ST_OPS_AFTER,
	ST_CURSOR_SET,
	ST_CURSOR_GET,
	ST_CURSOR_LIST,
	ST_OPS_BEHIND,
	ST_OP_LAST,
	ST_OPS_RANGE,
	ST_META_GET,
	ST_META_SET,
	ST_IMPORT_OP,
	ST_PAYLOAD_BYTES,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_FOLDER_GET] = "SELECT id, name, token_hash, head FROM folders"
			  " WHERE name = ?1",
	[ST_FOLDER_INSERT] = "INSERT INTO folders(name, token_hash, head)"
			     " VALUES (?1, ?2, 0)",
	[ST_FOLDER_SET_TOKEN] = "UPDATE folders SET token_hash = ?2"
				" WHERE name = ?1",
	[ST_FOLDER_REVOKE] = "UPDATE folders SET token_hash = NULL"
			     " WHERE name = ?1",
	[ST_FOLDER_LIST] = "SELECT id, name, token_hash, head FROM folders"
			   " ORDER BY name",
	[ST_HEAD_GET] = "SELECT head FROM folders WHERE id = ?1",
	[ST_HEAD_SET] = "UPDATE folders SET head = ?2 WHERE id = ?1",
	[ST_OP_INSERT] = "INSERT OR IGNORE INTO ops(folder, seq, actor, hlc,"
			 " payload) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_OPS_AFTER] = "SELECT seq, actor, hlc, payload FROM ops"
			 " WHERE folder = ?1 AND seq > ?2 AND actor != ?3"
			 " ORDER BY seq LIMIT ?4",
	[ST_CURSOR_SET] = "INSERT INTO cursors(folder, actor, seq)"
			  " VALUES (?1, ?2, ?3) ON CONFLICT(folder, actor)"
			  " DO UPDATE SET seq = max(seq, excluded.seq)",
	[ST_CURSOR_GET] = "SELECT seq FROM cursors"
			  " WHERE folder = ?1 AND actor = ?2",
	[ST_OPS_BEHIND] = "SELECT count(*) FROM ops WHERE folder = ?1"
			  " AND seq > ?2 AND actor != ?3",
	[ST_OP_LAST] = "SELECT seq, actor, hlc, payload FROM ops"
		       " WHERE folder = ?1 AND actor = ?2"
		       " ORDER BY hlc DESC LIMIT 1",
	[ST_CURSOR_LIST] = "SELECT actor, seq FROM cursors WHERE folder = ?1"
			   " ORDER BY actor",
	[ST_OPS_RANGE] =
		"SELECT seq, actor, hlc, payload FROM ops"
		" WHERE folder = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
	[ST_META_GET] = "SELECT value FROM folder_meta"
			" WHERE folder = ?1 AND key = ?2",
	[ST_META_SET] = "INSERT INTO folder_meta(folder, key, value)"
			" VALUES (?1, ?2, ?3) ON CONFLICT(folder, key)"
			" DO UPDATE SET value = excluded.value",
	[ST_IMPORT_OP] = "INSERT OR IGNORE INTO import_ops(folder, actor, hlc,"
			 " payload) VALUES (?1, ?2, ?3, ?4)",
	[ST_PAYLOAD_BYTES] = "SELECT coalesce(sum(length(payload)), 0)"
			     " FROM ops WHERE folder = ?1",
};

static const char schema_sql[] =
	"CREATE TABLE folders("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" token_hash BLOB,"
	" head INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE ops("
	" folder INTEGER NOT NULL REFERENCES folders(id),"
	" seq INTEGER NOT NULL,"
	" actor INTEGER NOT NULL,"
	" hlc INTEGER NOT NULL,"
	" payload BLOB NOT NULL,"
	" PRIMARY KEY(folder, seq),"
	" UNIQUE(folder, actor, hlc)) WITHOUT ROWID;"
	"CREATE TABLE cursors("
	" folder INTEGER NOT NULL REFERENCES folders(id),"
	" actor INTEGER NOT NULL,"
	" seq INTEGER NOT NULL,"
	" PRIMARY KEY(folder, actor)) WITHOUT ROWID;"
	"PRAGMA user_version = 1;";

/* Version 2: per-folder facts (relay_git.c's last committed seq, whether
 * the folder was rebuilt from git).  Applied on top of version 1. */
static const char schema_v2_sql[] =
	"CREATE TABLE folder_meta("
	" folder INTEGER NOT NULL REFERENCES folders(id),"
	" key TEXT NOT NULL,"
	" value INTEGER NOT NULL,"
	" PRIMARY KEY(folder, key)) WITHOUT ROWID;"
	"PRAGMA user_version = 2;";

/* The rebuild's staging table: one connection's, gone when it closes. */
static const char import_sql[] =
	"CREATE TEMP TABLE IF NOT EXISTS import_ops("
	" folder INTEGER NOT NULL,"
	" actor INTEGER NOT NULL,"
	" hlc INTEGER NOT NULL,"
	" payload BLOB NOT NULL,"
	" PRIMARY KEY(folder, actor, hlc)) WITHOUT ROWID;";

struct relay_db {
	sqlite3 *sql;
	sqlite3_stmt *st[ST_COUNT];
	char failed[256]; /* why the last transaction was rolled back */
};

static int rc_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static int exec(struct relay_db *db, const char *sql)
{
	return rc_errno(sqlite3_exec(db->sql, sql, NULL, NULL, NULL));
}

static int begin(struct relay_db *db)
{
	db->failed[0] = '\0';
	return exec(db, "BEGIN IMMEDIATE");
}

/* ROLLBACK replaces SQLite's message ("not an error"): keep it for
 * relay_db_errmsg(). */
static void rollback(struct relay_db *db)
{
	snprintf(db->failed, sizeof(db->failed), "%s", sqlite3_errmsg(db->sql));
	exec(db, "ROLLBACK");
}

/* Steps a statement that returns no row, then resets it. */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : rc_errno(rc);
}

/* PRAGMA user_version: the schema relay.db holds (0: none yet). */
static int schema_version(struct relay_db *db, int *version)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc_errno(rc);
}

/*
 * Creates or upgrades the tables.  The version is read inside the
 * IMMEDIATE transaction that writes them: `wkfs-relay folder add` and a
 * serving relay started at once on a new DIR both find version 0 before
 * either begins, and the second must see the first's tables, not create
 * them again.
 */
static int set_schema(struct relay_db *db, char *err, size_t errlen)
{
	int version, rc;

	rc = begin(db);
	if (!rc)
		rc = schema_version(db, &version);
	if (rc) {
		snprintf(err, errlen, "cannot read relay.db's schema: %s",
			 sqlite3_errmsg(db->sql));
		rollback(db);
		return rc == -EBUSY ? rc : -EIO;
	}
	if (version > RELAY_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "relay.db has schema %d, newer than this wkfs-relay"
			 " (%d)",
			 version, RELAY_SCHEMA_VERSION);
		rollback(db);
		return -EPROTO;
	}
	if (version < 1)
		rc = exec(db, schema_sql);
	if (!rc && version < 2)
		rc = exec(db, schema_v2_sql);
	if (!rc)
		rc = exec(db, "COMMIT");
	if (rc) {
		/* The message first: ROLLBACK replaces it ("not an error"). */
		snprintf(err, errlen, "cannot create relay.db's tables: %s",
			 sqlite3_errmsg(db->sql));
		rollback(db);
	}
	return rc;
}

/*
 * folder_proto(folder, version): the highest protocol version of a session
 * that stored ops in the folder (docs/protocol.md, "Version 2").  Created
 * when missing, so a relay.db of schema 1 gains it without a migration; a
 * folder without a row is at version 1.
 */
static int proto_table(struct relay_db *db, char *err, size_t errlen)
{
	int rc = exec(db, "CREATE TABLE IF NOT EXISTS folder_proto("
			  " folder INTEGER PRIMARY KEY REFERENCES folders(id),"
			  " version INTEGER NOT NULL)");

	if (rc)
		snprintf(err, errlen, "cannot create folder_proto: %s",
			 sqlite3_errmsg(db->sql));
	return rc;
}

/*
 * Switching a new database to WAL takes an exclusive lock, and SQLite
 * answers BUSY at once, without its busy handler, while another
 * connection (a second wkfs-relay starting on the same new DIR) holds
 * any lock: so wait here, as long as the busy timeout would.
 */
static int wal_mode(struct relay_db *db)
{
	int rc;

	for (int waited = 0;; waited += 10) {
		rc = exec(db, "PRAGMA journal_mode = WAL");
		if (rc != -EBUSY || waited >= RELAY_DB_BUSY_MS)
			return rc;
		usleep(10000);
	}
}

int relay_db_open(const char *dir, struct relay_db **out, char *err,
		  size_t errlen)
{
	struct relay_db *db = xcalloc(1, sizeof(*db));
	char *path = xasprintf("%s/relay.db", dir);
	int rc;

	err[0] = '\0';
	rc = sqlite3_open_v2(path, &db->sql,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
		rc = rc_errno(rc);
		goto out_close;
	}
	sqlite3_busy_timeout(db->sql, RELAY_DB_BUSY_MS);
	rc = wal_mode(db);
	if (!rc)
		rc = exec(db, "PRAGMA synchronous = FULL");
	if (rc) {
		snprintf(err, errlen, "%s is unreadable or not a database: %s",
			 path, sqlite3_errmsg(db->sql));
		goto out_close;
	}
	rc = set_schema(db, err, errlen);
	if (!rc)
		rc = exec(db, import_sql);
	if (!rc)
		rc = proto_table(db, err, errlen);
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", path,
				 sqlite3_errmsg(db->sql));
		goto out_close;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(db->sql, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &db->st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", path,
				 sqlite3_errmsg(db->sql));
			rc = -EIO;
			goto out_close;
		}
	}
	free(path);
	*out = db;
	return 0;

out_close:
	free(path);
	relay_db_close(db);
	return rc;
}

void relay_db_close(struct relay_db *db)
{
	if (!db)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close(db->sql);
	free(db);
}

const char *relay_db_errmsg(struct relay_db *db)
{
	return db->failed[0] ? db->failed : sqlite3_errmsg(db->sql);
}

static void read_folder(sqlite3_stmt *st, struct relay_folder *f)
{
	const void *h = sqlite3_column_blob(st, 2);

	memset(f, 0, sizeof(*f));
	f->id = sqlite3_column_int64(st, 0);
	snprintf(f->name, sizeof(f->name), "%s",
		 (const char *)sqlite3_column_text(st, 1));
	f->active = h && sqlite3_column_bytes(st, 2) == RELAY_TOKEN_HASH_LEN;
	if (f->active)
		memcpy(f->token_hash, h, RELAY_TOKEN_HASH_LEN);
	f->head = (uint64_t)sqlite3_column_int64(st, 3);
}

int relay_db_folder_get(struct relay_db *db, const char *name,
			struct relay_folder *f)
{
	sqlite3_stmt *st = db->st[ST_FOLDER_GET];
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_folder(st, f);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : rc_errno(rc);
}

int relay_db_folder_add(struct relay_db *db, const char *name,
			const uint8_t hash[RELAY_TOKEN_HASH_LEN])
{
	struct relay_folder f;
	sqlite3_stmt *st;
	int rc;

	rc = begin(db);
	if (rc)
		return rc;
	rc = relay_db_folder_get(db, name, &f);
	if (rc == 0 && f.active) {
		rc = -EEXIST;
		goto out_rollback;
	}
	if (rc && rc != -ENOENT)
		goto out_rollback;
	st = db->st[rc == 0 ? ST_FOLDER_SET_TOKEN : ST_FOLDER_INSERT];
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (hash) /* else NULL: created revoked */
		sqlite3_bind_blob(st, 2, hash, RELAY_TOKEN_HASH_LEN,
				  SQLITE_STATIC);
	rc = step_done(st);
	if (rc)
		goto out_rollback;
	return exec(db, "COMMIT");

out_rollback:
	rollback(db);
	return rc;
}

int relay_db_folder_revoke(struct relay_db *db, const char *name)
{
	sqlite3_stmt *st = db->st[ST_FOLDER_REVOKE];
	int rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = step_done(st);
	if (rc)
		return rc;
	return sqlite3_changes(db->sql) ? 0 : -ENOENT;
}

int relay_db_folders_foreach(struct relay_db *db, relay_folder_fn fn, void *arg)
{
	sqlite3_stmt *st = db->st[ST_FOLDER_LIST];
	struct relay_folder f;
	int rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_folder(st, &f);
		ret = fn(arg, &f);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = rc_errno(rc);
	sqlite3_reset(st);
	return ret;
}

/* Steps a bound one-row, one-integer query: 0 and *out, -ENOENT when
 * there is no row, or -errno. */
static int step_u64(sqlite3_stmt *st, uint64_t *out)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : rc_errno(rc);
}

int relay_db_head(struct relay_db *db, int64_t folder, uint64_t *head)
{
	sqlite3_stmt *st = db->st[ST_HEAD_GET];

	sqlite3_bind_int64(st, 1, folder);
	return step_u64(st, head);
}

int relay_db_push(struct relay_db *db, int64_t folder,
		  const struct wire_msg *push, uint64_t budget, uint64_t *head,
		  uint32_t *added, uint64_t *added_bytes)
{
	sqlite3_stmt *st = db->st[ST_OP_INSERT];
	struct wire_iter it;
	struct wire_opent e;
	uint64_t h, bytes = 0;
	uint32_t n = 0;
	int rc;

	rc = begin(db);
	if (rc)
		return rc;
	rc = relay_db_head(db, folder, &h);
	if (rc)
		goto out_rollback;
	wire_iter_init(&it, push);
	while (wire_iter_next(&it, &e)) {
		sqlite3_bind_int64(st, 1, folder);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(h + 1));
		sqlite3_bind_int64(st, 3, (sqlite3_int64)e.actor);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)e.hlc);
		/* A zero-length blob must still be a blob, not NULL. */
		sqlite3_bind_blob(st, 5, e.len ? (const void *)e.payload : "",
				  (int)e.len, SQLITE_STATIC);
		rc = step_done(st);
		if (rc)
			goto out_rollback;
		if (sqlite3_changes(db->sql)) {
			h++;
			n++;
			bytes += e.len;
		}
	}
	*added_bytes = bytes;
	if (bytes > budget) {
		rc = -EDQUOT;
		goto out_rollback;
	}
	if (n) {
		st = db->st[ST_HEAD_SET];
		sqlite3_bind_int64(st, 1, folder);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)h);
		rc = step_done(st);
		if (rc)
			goto out_rollback;
	}
	rc = exec(db, "COMMIT");
	if (rc)
		goto out_rollback;
	*head = h;
	*added = n;
	return 0;

out_rollback:
	rollback(db);
	return rc;
}

/* Steps a bound statement of (seq, actor, hlc, payload) rows into fn. */
static int ops_rows(sqlite3_stmt *st, relay_op_fn fn, void *arg, unsigned *rows)
{
	struct wire_opent e;
	unsigned n = 0;
	int rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e.seq = (uint64_t)sqlite3_column_int64(st, 0);
		e.actor = (uint64_t)sqlite3_column_int64(st, 1);
		e.hlc = (uint64_t)sqlite3_column_int64(st, 2);
		e.payload = sqlite3_column_blob(st, 3);
		e.len = (uint32_t)sqlite3_column_bytes(st, 3);
		ret = fn(arg, &e);
		if (ret)
			break;
		n++;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = rc_errno(rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	*rows = n;
	return ret < 0 ? ret : 0;
}

int relay_db_ops_after(struct relay_db *db, int64_t folder, uint64_t after,
		       uint64_t skip_actor, unsigned limit, relay_op_fn fn,
		       void *arg, unsigned *rows)
{
	sqlite3_stmt *st = db->st[ST_OPS_AFTER];

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)skip_actor);
	sqlite3_bind_int64(st, 4, limit);
	return ops_rows(st, fn, arg, rows);
}

int relay_db_cursor_set(struct relay_db *db, int64_t folder, uint64_t actor,
			uint64_t seq)
{
	sqlite3_stmt *st = db->st[ST_CURSOR_SET];

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)actor);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)seq);
	return step_done(st);
}

int relay_db_cursor_get(struct relay_db *db, int64_t folder, uint64_t actor,
			uint64_t *seq)
{
	sqlite3_stmt *st = db->st[ST_CURSOR_GET];

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)actor);
	return step_u64(st, seq);
}

int relay_db_cursors_foreach(struct relay_db *db, int64_t folder,
			     relay_cursor_fn fn, void *arg)
{
	sqlite3_stmt *st = db->st[ST_CURSOR_LIST];
	int rc, ret = 0;

	sqlite3_bind_int64(st, 1, folder);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = fn(arg, (uint64_t)sqlite3_column_int64(st, 0),
			 (uint64_t)sqlite3_column_int64(st, 1));
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = rc_errno(rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

int relay_db_ops_behind(struct relay_db *db, int64_t folder, uint64_t after,
			uint64_t actor, uint64_t *count)
{
	sqlite3_stmt *st = db->st[ST_OPS_BEHIND];

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)actor);
	return step_u64(st, count);
}

int relay_db_last_op(struct relay_db *db, int64_t folder, uint64_t actor,
		     relay_op_fn fn, void *arg)
{
	sqlite3_stmt *st = db->st[ST_OP_LAST];
	unsigned rows;

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)actor);
	return ops_rows(st, fn, arg, &rows);
}

int relay_db_ops_range(struct relay_db *db, int64_t folder, uint64_t after,
		       unsigned limit, relay_op_fn fn, void *arg,
		       unsigned *rows)
{
	sqlite3_stmt *st = db->st[ST_OPS_RANGE];

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
	sqlite3_bind_int64(st, 3, limit);
	return ops_rows(st, fn, arg, rows);
}

int relay_db_meta_get(struct relay_db *db, int64_t folder, const char *key,
		      uint64_t *value)
{
	sqlite3_stmt *st = db->st[ST_META_GET];

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	return step_u64(st, value);
}

int relay_db_meta_set(struct relay_db *db, int64_t folder, const char *key,
		      uint64_t value)
{
	sqlite3_stmt *st = db->st[ST_META_SET];

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)value);
	return step_done(st);
}

int relay_db_hello_cursor(struct relay_db *db, int64_t folder, uint64_t actor,
			  uint64_t cursor)
{
	uint64_t rebuilt = 0, seq;

	/*
	 * A rebuilt folder's seqs are not the old relay's: a cursor from an
	 * actor this relay never saw was given by the old one.
	 */
	if (cursor && relay_db_meta_get(db, folder, "rebuilt", &rebuilt) == 0 &&
	    rebuilt && relay_db_cursor_get(db, folder, actor, &seq) == -ENOENT)
		return -ESTALE;
	return relay_db_cursor_set(db, folder, actor, cursor);
}

int relay_db_import_op(struct relay_db *db, int64_t folder, uint64_t actor,
		       uint64_t hlc, const uint8_t *payload, uint32_t len)
{
	sqlite3_stmt *st = db->st[ST_IMPORT_OP];

	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)actor);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)hlc);
	sqlite3_bind_blob(st, 4, len ? (const void *)payload : "", (int)len,
			  SQLITE_STATIC);
	return step_done(st);
}

int relay_db_import_finish(struct relay_db *db, int64_t folder, uint64_t *head)
{
	char sql[512];
	uint64_t h = 0;
	int rc;

	rc = begin(db);
	if (rc)
		return rc;
	snprintf(sql, sizeof(sql),
		 "INSERT INTO ops(folder, seq, actor, hlc, payload)"
		 " SELECT folder, row_number() OVER (ORDER BY hlc, actor),"
		 " actor, hlc, payload FROM import_ops WHERE folder = %lld;"
		 "UPDATE folders SET head = (SELECT count(*) FROM ops"
		 " WHERE folder = %lld) WHERE id = %lld;"
		 "DELETE FROM import_ops WHERE folder = %lld;",
		 (long long)folder, (long long)folder, (long long)folder,
		 (long long)folder);
	rc = exec(db, sql);
	if (!rc)
		rc = relay_db_head(db, folder, &h);
	if (!rc)
		rc = relay_db_meta_set(db, folder, "rebuilt", 1);
	if (!rc)
		rc = relay_db_meta_set(db, folder, "git_seq", h);
	if (!rc)
		rc = exec(db, "COMMIT");
	if (rc) {
		rollback(db);
		return rc;
	}
	*head = h;
	return 0;
}

int relay_db_empty(struct relay_db *db, bool *empty)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM folders", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*empty = sqlite3_column_int64(st, 0) == 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc_errno(rc);
}

int relay_db_proto_get(struct relay_db *db, int64_t folder, uint32_t *version)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql,
				"SELECT version FROM folder_proto"
				" WHERE folder = ?1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	sqlite3_bind_int64(st, 1, folder);
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(st, 0) : 1;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc_errno(rc);
}

int relay_db_proto_raise(struct relay_db *db, int64_t folder, uint32_t version)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql,
				"INSERT INTO folder_proto(folder, version)"
				" VALUES(?1, ?2) ON CONFLICT(folder) DO UPDATE"
				" SET version = max(version, excluded.version)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	sqlite3_bind_int64(st, 1, folder);
	sqlite3_bind_int64(st, 2, version);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : rc_errno(rc);
}

int relay_db_payload_bytes(struct relay_db *db, int64_t folder, uint64_t *bytes)
{
	sqlite3_stmt *st = db->st[ST_PAYLOAD_BYTES];

	sqlite3_bind_int64(st, 1, folder);
	return step_u64(st, bytes);
}
