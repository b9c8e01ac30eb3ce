/*
 * db.c - the sidecar database (see db.h for the contract).
 *
 * Ids are stored as 16-byte big-endian blobs (hlc then actor), so that blob
 * order is (hlc, actor) order and sqlite3's shell shows them compactly.
 * Statements used on hot paths are prepared once per handle.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "xalloc.h"

#define VFS_NAME "wkfs-verbatim"

enum stmt_id {
	ST_OP_INSERT,
	ST_NODE_PUT,
	ST_NODE_DEL,
	ST_META_GET,
	ST_META_SET,
	ST_DEV_GET,
	ST_DEV_ADD,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_OP_INSERT] =
		"INSERT INTO ops(hlc, actor, kind, node, parent, name,"
		" new_parent, new_name, mode, attrs, mtime_ns, size, hash,"
		" base, target, origin, device, link) VALUES"
		" (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
		" ?14, ?15, ?16, ?17, ?18)",
	[ST_NODE_PUT] =
		"INSERT OR REPLACE INTO nodes(id, parent, name, kind, mode,"
		" size, mtime_ns, hash, target, version, content, ino)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[ST_NODE_DEL] = "DELETE FROM nodes WHERE id = ?1",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(key, value)"
			" VALUES (?1, ?2)",
	[ST_DEV_GET] = "SELECT id FROM devices WHERE name = ?1",
	[ST_DEV_ADD] = "INSERT INTO devices(name) VALUES (?1)",
};

struct wkdb {
	sqlite3 *sql;
	sqlite3_stmt *st[ST_COUNT];
	bool readonly;
};

/* Each migration takes the schema from version i to i + 1. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE nodes("
	" id BLOB PRIMARY KEY,"
	" parent BLOB NOT NULL,"
	" name TEXT NOT NULL,"
	" kind INTEGER NOT NULL,"
	" mode INTEGER NOT NULL,"
	" size INTEGER NOT NULL DEFAULT 0,"
	" mtime_ns INTEGER NOT NULL DEFAULT 0,"
	" hash BLOB,"
	" target TEXT,"
	" version BLOB NOT NULL,"
	" content BLOB NOT NULL,"
	" ino INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE INDEX nodes_by_parent ON nodes(parent, name);"
	"CREATE TABLE ops("
	" seq INTEGER PRIMARY KEY,"
	" hlc INTEGER NOT NULL,"
	" actor INTEGER NOT NULL,"
	" kind INTEGER NOT NULL,"
	" node BLOB NOT NULL,"
	" parent BLOB, name TEXT,"
	" new_parent BLOB, new_name TEXT,"
	" mode INTEGER, attrs INTEGER, mtime_ns INTEGER, size INTEGER,"
	" hash BLOB, base BLOB, target TEXT,"
	" origin INTEGER NOT NULL DEFAULT 0,"
	" shipped INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(hlc, actor));"
	"CREATE INDEX ops_unshipped ON ops(shipped, seq);",
	/* 1 -> 2: ops carry the device name of their maker.  Names are
	 * interned (a handful per folder), so an op row grows by a byte or
	 * two, not by the name.  Ops of version 1 keep NULL: they travelled
	 * without a device, so every replica names their conflict copies by
	 * the actor id, and so must this one. */
	"CREATE TABLE devices("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE);"
	"ALTER TABLE ops ADD COLUMN device INTEGER;",
	/* 2 -> 3: remote ops the mount holds back (lib/apply_plan.h): they
	 * are below applied_seq but not in the tree, and say why. */
	"CREATE TABLE held("
	" seq INTEGER PRIMARY KEY,"
	" reason INTEGER NOT NULL,"
	" path TEXT,"
	" since_ms INTEGER NOT NULL DEFAULT 0);",
	/* 3 -> 4: a put names the node it shared its inode with (a hard
	 * link, struct wk_op.link).  Older rows keep NULL, read as none: they
	 * were made before anyone recorded links. */
	"ALTER TABLE ops ADD COLUMN link BLOB;",
};

#define N_MIGRATIONS (int)(sizeof(migrations) / sizeof(migrations[0]))

/*
 * SQLite resolves symbolic links in a database path (so that two paths to one
 * file share locks).  Ours goes through /proc/self/fd/N, a link whose text is
 * DIR's path, which under an in-place mount leads into the mount, where
 * .wkfs is hidden.  This VFS is the default one with the path kept as given;
 * the kernel then follows the fd link to the real directory.
 */
static sqlite3_vfs verbatim_vfs;
static sqlite3_vfs *base_vfs;

static int verbatim_full_pathname(sqlite3_vfs *vfs, const char *path, int n_out,
				  char *out)
{
	if (path[0] != '/')
		return base_vfs->xFullPathname(base_vfs, path, n_out, out);
	if ((int)strlen(path) >= n_out)
		return SQLITE_CANTOPEN;
	strcpy(out, path);
	return SQLITE_OK;
}

static int register_vfs(void)
{
	static int registered;

	/* Called before any thread exists: under the caller's control. */
	if (registered)
		return 0;
	base_vfs = sqlite3_vfs_find(NULL);
	if (!base_vfs)
		return -EIO;
	verbatim_vfs = *base_vfs;
	verbatim_vfs.zName = VFS_NAME;
	verbatim_vfs.xFullPathname = verbatim_full_pathname;
	if (sqlite3_vfs_register(&verbatim_vfs, 0) != SQLITE_OK)
		return -EIO;
	registered = 1;
	return 0;
}

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
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static void put_id(uint8_t b[16], struct wk_id id)
{
	for (int i = 0; i < 8; i++) {
		b[i] = id.hlc >> (56 - 8 * i);
		b[8 + i] = id.actor >> (56 - 8 * i);
	}
}

static struct wk_id get_id(sqlite3_stmt *st, int col)
{
	struct wk_id id = WK_ID_NONE;
	const uint8_t *b = sqlite3_column_blob(st, col);

	if (!b || sqlite3_column_bytes(st, col) != 16)
		return id;
	id.hlc = id.actor = 0;
	for (int i = 0; i < 8; i++) {
		id.hlc = id.hlc << 8 | b[i];
		id.actor = id.actor << 8 | b[8 + i];
	}
	return id;
}

static int bind_id(sqlite3_stmt *st, int i, struct wk_id id)
{
	uint8_t b[16];

	put_id(b, id);
	return sqlite3_bind_blob(st, i, b, 16, SQLITE_TRANSIENT);
}

/* Binds id, or NULL when it is WK_ID_NONE. */
static int bind_id_opt(sqlite3_stmt *st, int i, struct wk_id id)
{
	if (wk_id_eq(id, WK_ID_NONE))
		return sqlite3_bind_null(st, i);
	return bind_id(st, i, id);
}

static int exec(struct wkdb *db, const char *sql)
{
	return rc_errno(sqlite3_exec(db->sql, sql, NULL, NULL, NULL));
}

static int user_version(struct wkdb *db, int *v)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st,
				    NULL);

	if (rc != SQLITE_OK)
		return rc_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc_errno(rc);
}

static int migrate(struct wkdb *db, char *err, size_t errlen)
{
	int v = 0, rc;

	rc = user_version(db, &v);
	if (rc)
		return rc;
	if (v > N_MIGRATIONS) {
		snprintf(err, errlen,
			 "database schema %d is newer than this wkfs knows"
			 " (%d): upgrade wkfs",
			 v, N_MIGRATIONS);
		return -EPROTO;
	}
	if (v == N_MIGRATIONS)
		return 0;
	if (db->readonly) {
		snprintf(err, errlen,
			 "database schema %d is older than this wkfs (%d):"
			 " mount it once to upgrade",
			 v, N_MIGRATIONS);
		return -EPROTO;
	}
	rc = exec(db, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	for (; v < N_MIGRATIONS; v++) {
		char pragma[64];

		rc = exec(db, migrations[v]);
		if (rc)
			goto out_rollback;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
			 v + 1);
		rc = exec(db, pragma);
		if (rc)
			goto out_rollback;
	}
	return exec(db, "COMMIT");

out_rollback:
	snprintf(err, errlen, "cannot upgrade the database: %s",
		 sqlite3_errmsg(db->sql));
	exec(db, "ROLLBACK");
	return rc;
}

static int prepare_all(struct wkdb *db)
{
	for (int i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(db->sql, stmt_sql[i], -1,
					    SQLITE_PREPARE_PERSISTENT,
					    &db->st[i], NULL);
		if (rc != SQLITE_OK)
			return rc_errno(rc);
	}
	return 0;
}

int db_open_at(int dirfd, int flags, struct wkdb **out, char *err,
	       size_t errlen)
{
	struct wkdb *db;
	char path[64];
	struct stat st;
	int oflags, rc;

	err[0] = '\0';
	rc = register_vfs();
	if (rc)
		return rc;
	if (fstatat(dirfd, ".wkfs/wkfs.db", &st, 0) < 0) {
		if (errno != ENOENT || !(flags & DB_CREATE)) {
			rc = -errno;
			snprintf(err, errlen, "cannot open .wkfs/wkfs.db: %s",
				 strerror(errno));
			return rc;
		}
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, ".wkfs/wkfs.db is not a regular file");
		return -EINVAL;
	} else if (st.st_size == 0) {
		/* SQLite would take an empty file for a new database; ours are
		 * never empty, so this one was truncated. */
		snprintf(err, errlen,
			 ".wkfs/wkfs.db is empty (truncated?): restore it from"
			 " a backup or move it away and run 'wkfs init' again");
		return -EIO;
	}

	snprintf(path, sizeof(path), "/proc/self/fd/%d/.wkfs/wkfs.db", dirfd);
	oflags = SQLITE_OPEN_NOMUTEX;
	if (flags & DB_READONLY)
		oflags |= SQLITE_OPEN_READONLY;
	else
		oflags |= SQLITE_OPEN_READWRITE;
	if (flags & DB_CREATE)
		oflags |= SQLITE_OPEN_CREATE;

	db = xcalloc(1, sizeof(*db));
	db->readonly = flags & DB_READONLY;
	rc = sqlite3_open_v2(path, &db->sql, oflags, VFS_NAME);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open .wkfs/wkfs.db: %s",
			 db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
		rc = rc_errno(rc);
		goto out_close;
	}
	sqlite3_busy_timeout(db->sql, 5000);
	sqlite3_extended_result_codes(db->sql, 0);

	/* Reading the schema is what reveals a file that is not a database. */
	rc = exec(db, "SELECT count(*) FROM sqlite_schema");
	if (rc) {
		snprintf(err, errlen,
			 ".wkfs/wkfs.db is unreadable or corrupt (%s):"
			 " restore it from a backup or move it away and run"
			 " 'wkfs init' again",
			 sqlite3_errmsg(db->sql));
		rc = -EIO;
		goto out_close;
	}
	if (!db->readonly) {
		rc = exec(db, "PRAGMA journal_mode = WAL");
		if (!rc)
			rc = exec(db, "PRAGMA synchronous = NORMAL");
		if (rc) {
			snprintf(err, errlen, "cannot set up .wkfs/wkfs.db: %s",
				 sqlite3_errmsg(db->sql));
			goto out_close;
		}
	}
	rc = migrate(db, err, errlen);
	if (rc) {
		if (!err[0])
			snprintf(err, errlen,
				 ".wkfs/wkfs.db is unreadable or corrupt (%s)",
				 sqlite3_errmsg(db->sql));
		goto out_close;
	}
	rc = prepare_all(db);
	if (rc) {
		snprintf(err, errlen,
			 ".wkfs/wkfs.db does not have wkfs's tables (%s):"
			 " is it a wkfs database?",
			 sqlite3_errmsg(db->sql));
		goto out_close;
	}
	*out = db;
	return 0;

out_close:
	db_close(db);
	return rc;
}

void db_close(struct wkdb *db)
{
	if (!db)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close(db->sql);
	free(db);
}

const char *db_errmsg(struct wkdb *db)
{
	return sqlite3_errmsg(db->sql);
}

int db_begin(struct wkdb *db)
{
	return exec(db, "BEGIN IMMEDIATE");
}

int db_commit(struct wkdb *db, bool durable)
{
	int rc;

	/* In WAL mode NORMAL syncs only at checkpoints; FULL syncs this
	 * commit's WAL frames before COMMIT returns. */
	if (durable)
		exec(db, "PRAGMA synchronous = FULL");
	rc = exec(db, "COMMIT");
	if (durable)
		exec(db, "PRAGMA synchronous = NORMAL");
	return rc;
}

void db_rollback(struct wkdb *db)
{
	exec(db, "ROLLBACK");
}

/* Runs a prepared statement that returns no rows, then resets it. */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : rc_errno(rc);
}

int db_meta_get_u64(struct wkdb *db, const char *key, uint64_t *v)
{
	sqlite3_stmt *st = db->st[ST_META_GET];
	int rc;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : rc_errno(rc);
}

int db_meta_set_u64(struct wkdb *db, const char *key, uint64_t v)
{
	sqlite3_stmt *st = db->st[ST_META_SET];

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)v);
	return step_done(st);
}

int db_meta_get_str(struct wkdb *db, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *st = db->st[ST_META_GET];
	int rc;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		snprintf(buf, len, "%s", s ? s : "");
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : rc_errno(rc);
}

int db_meta_set_str(struct wkdb *db, const char *key, const char *v)
{
	sqlite3_stmt *st = db->st[ST_META_SET];

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
	return step_done(st);
}

/*
 * The id of device name dev in the devices table, added if new.  Looked up
 * for every op rather than cached: a cached id could name a row that a
 * rolled-back transaction took away.
 */
static int device_id(struct wkdb *db, const char *dev, int64_t *id)
{
	sqlite3_stmt *st = db->st[ST_DEV_GET];
	int rc;

	sqlite3_bind_text(st, 1, dev, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return rc_errno(rc);
	st = db->st[ST_DEV_ADD];
	sqlite3_bind_text(st, 1, dev, -1, SQLITE_STATIC);
	rc = step_done(st);
	if (!rc)
		*id = sqlite3_last_insert_rowid(db->sql);
	return rc;
}

int db_op_append(struct wkdb *db, const struct wk_op *op, enum db_origin origin,
		 int64_t *seq)
{
	sqlite3_stmt *st = db->st[ST_OP_INSERT];
	/* Every op records where it happened (for puts and setattrs only
	 * informative: the log shows the path at the time of the op). */
	bool placed = op->name[0] != '\0';
	int64_t dev = 0;
	int rc;

	if (op->device[0]) {
		if (!wk_device_valid(op->device))
			return -EINVAL;
		rc = device_id(db, op->device, &dev);
		if (rc)
			return rc;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)op->id.hlc);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)op->id.actor);
	sqlite3_bind_int(st, 3, op->kind);
	bind_id(st, 4, op->node);
	if (placed) {
		bind_id(st, 5, op->parent);
		sqlite3_bind_text(st, 6, op->name, -1, SQLITE_STATIC);
	}
	if (op->kind == WK_OP_MOVE) {
		bind_id(st, 7, op->new_parent);
		sqlite3_bind_text(st, 8, op->new_name, -1, SQLITE_STATIC);
	}
	if (op->kind == WK_OP_MKDIR || op->kind == WK_OP_CREATE ||
	    (op->kind == WK_OP_SETATTR && (op->attrs & WK_ATTR_MODE)))
		sqlite3_bind_int(st, 9, (int)op->mode);
	if (op->kind == WK_OP_SETATTR)
		sqlite3_bind_int(st, 10, (int)op->attrs);
	if (op->kind == WK_OP_PUT ||
	    (op->kind == WK_OP_SETATTR && (op->attrs & WK_ATTR_MTIME)))
		sqlite3_bind_int64(st, 11, op->mtime_ns);
	if (op->kind == WK_OP_PUT) {
		sqlite3_bind_int64(st, 12, (sqlite3_int64)op->size);
		sqlite3_bind_blob(st, 13, op->hash.b, 16, SQLITE_STATIC);
	}
	/* A put's base is what it replaced, a remove's what it saw: the
	 * merge keeps edits a remove did not see. */
	if (op->kind == WK_OP_PUT || op->kind == WK_OP_REMOVE)
		bind_id_opt(st, 14, op->base);
	if (op->kind == WK_OP_SYMLINK)
		sqlite3_bind_text(st, 15, op->target, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 16, origin);
	if (op->device[0])
		sqlite3_bind_int64(st, 17, dev);
	if (wk_op_has_link(op))
		bind_id(st, 18, op->link);
	rc = step_done(st);
	if (!rc && seq)
		*seq = sqlite3_last_insert_rowid(db->sql);
	return rc;
}

int db_node_put(struct wkdb *db, const struct db_node *n)
{
	sqlite3_stmt *st = db->st[ST_NODE_PUT];

	bind_id(st, 1, n->id);
	bind_id(st, 2, n->parent);
	sqlite3_bind_text(st, 3, n->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, n->kind);
	sqlite3_bind_int(st, 5, (int)n->mode);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)n->size);
	sqlite3_bind_int64(st, 7, n->mtime_ns);
	if (n->has_hash)
		sqlite3_bind_blob(st, 8, n->hash.b, 16, SQLITE_STATIC);
	if (n->target)
		sqlite3_bind_text(st, 9, n->target, -1, SQLITE_STATIC);
	bind_id(st, 10, n->version);
	bind_id(st, 11, n->content);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)n->ino);
	return step_done(st);
}

int db_node_delete(struct wkdb *db, struct wk_id id)
{
	sqlite3_stmt *st = db->st[ST_NODE_DEL];

	bind_id(st, 1, id);
	return step_done(st);
}

static void copy_text(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	snprintf(dst, len, "%s", s ? s : "");
}

#define NODE_COLS                                                            \
	"SELECT id, parent, name, kind, mode, size, mtime_ns, hash, target," \
	" version, content, ino FROM nodes"

static void read_node(sqlite3_stmt *st, struct db_node *n)
{
	const void *h = sqlite3_column_blob(st, 7);
	const char *t = (const char *)sqlite3_column_text(st, 8);

	memset(n, 0, sizeof(*n));
	n->id = get_id(st, 0);
	n->parent = get_id(st, 1);
	copy_text(n->name, sizeof(n->name), st, 2);
	n->kind = sqlite3_column_int(st, 3);
	n->mode = (uint32_t)sqlite3_column_int(st, 4);
	n->size = (uint64_t)sqlite3_column_int64(st, 5);
	n->mtime_ns = sqlite3_column_int64(st, 6);
	if (h && sqlite3_column_bytes(st, 7) == 16) {
		n->has_hash = true;
		memcpy(n->hash.b, h, 16);
	}
	n->target = t ? xstrdup(t) : NULL;
	n->version = get_id(st, 9);
	n->content = get_id(st, 10);
	n->ino = (uint64_t)sqlite3_column_int64(st, 11);
}

int db_node_get(struct wkdb *db, struct wk_id id, struct db_node *n)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql, NODE_COLS " WHERE id = ?1", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	bind_id(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_node(st, n);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : rc_errno(rc);
}

int db_nodes_foreach(struct wkdb *db, db_node_fn fn, void *arg)
{
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = sqlite3_prepare_v2(db->sql, NODE_COLS, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_node n;

		read_node(st, &n);
		stop = fn(arg, &n);
		db_node_release(&n);
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : rc_errno(rc);
}

static void read_op(sqlite3_stmt *st, struct db_oprow *r)
{
	struct wk_op *op = &r->op;
	const void *h;

	memset(r, 0, sizeof(*r));
	r->seq = sqlite3_column_int64(st, 0);
	op->id.hlc = (uint64_t)sqlite3_column_int64(st, 1);
	op->id.actor = (uint64_t)sqlite3_column_int64(st, 2);
	op->kind = sqlite3_column_int(st, 3);
	op->node = get_id(st, 4);
	op->parent = get_id(st, 5);
	copy_text(op->name, sizeof(op->name), st, 6);
	op->new_parent = get_id(st, 7);
	copy_text(op->new_name, sizeof(op->new_name), st, 8);
	op->mode = (uint32_t)sqlite3_column_int(st, 9);
	op->attrs = (uint32_t)sqlite3_column_int(st, 10);
	op->mtime_ns = sqlite3_column_int64(st, 11);
	op->size = (uint64_t)sqlite3_column_int64(st, 12);
	h = sqlite3_column_blob(st, 13);
	if (h && sqlite3_column_bytes(st, 13) == 16)
		memcpy(op->hash.b, h, 16);
	op->base = get_id(st, 14);
	copy_text(op->target, sizeof(op->target), st, 15);
	r->origin = sqlite3_column_int(st, 16);
	r->shipped = sqlite3_column_int(st, 17);
	copy_text(op->device, sizeof(op->device), st, 18);
	op->link = op->kind == WK_OP_PUT ? get_id(st, 19) : WK_ID_NONE;
}

/*
 * Steps st to its end, handing each row to emit, and finalizes it.  emit
 * returns 0 to go on; anything else stops the walk and is returned as it
 * is (the foreach contract in db.h).
 */
static int each_row(sqlite3_stmt *st, int (*emit)(void *ctx, sqlite3_stmt *st),
		    void *ctx)
{
	int rc, stop = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((stop = emit(ctx, st)) != 0)
			break;
	sqlite3_finalize(st);
	if (stop)
		return stop;
	return rc == SQLITE_DONE ? 0 : rc_errno(rc);
}

struct op_visit {
	db_op_fn fn;
	void *arg;
};

static int emit_op(void *ctx, sqlite3_stmt *st)
{
	struct op_visit *v = ctx;
	struct db_oprow *r = xmalloc(sizeof(*r));
	int stop;

	read_op(st, r);
	stop = v->fn(v->arg, r);
	free(r);
	return stop;
}

/* The columns read_op() reads, in its order. */
#define OP_COLS                                                       \
	"ops.seq, hlc, actor, kind, node, parent, name, new_parent,"  \
	" new_name, mode, attrs, mtime_ns, size, hash, base, target," \
	" origin, shipped,"                                           \
	" (SELECT name FROM devices WHERE id = ops.device), link"
#define OP_NCOLS 20

int db_ops_foreach(struct wkdb *db, int64_t after, int64_t last_n, db_op_fn fn,
		   void *arg)
{
	static const char cols[] = "SELECT " OP_COLS " FROM ops";
	sqlite3_stmt *st;
	char *sql;
	int rc;

	if (last_n > 0)
		sql = xasprintf("SELECT * FROM (%s WHERE seq > ?1 ORDER BY seq"
				" DESC LIMIT ?2) ORDER BY seq",
				cols);
	else
		sql = xasprintf("%s WHERE seq > ?1 ORDER BY seq", cols);
	rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	sqlite3_bind_int64(st, 1, after);
	if (last_n > 0)
		sqlite3_bind_int64(st, 2, last_n);
	return each_row(st, emit_op, &(struct op_visit){fn, arg});
}

int db_held_set(struct wkdb *db, int64_t seq, int reason, const char *path,
		int64_t since_ms)
{
	sqlite3_stmt *st;
	int rc;

	/* The first time it was held stays: that is how long it waits. */
	rc = sqlite3_prepare_v2(db->sql,
				"INSERT INTO held(seq, reason, path, since_ms)"
				" VALUES (?1, ?2, ?3, ?4) ON CONFLICT(seq) DO"
				" UPDATE SET reason = excluded.reason,"
				" path = excluded.path",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int(st, 2, reason);
	if (path)
		sqlite3_bind_text(st, 3, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, since_ms);
	rc = step_done(st);
	sqlite3_finalize(st);
	return rc;
}

int db_held_clear(struct wkdb *db, int64_t seq)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql, "DELETE FROM held WHERE seq = ?1", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	sqlite3_bind_int64(st, 1, seq);
	rc = step_done(st);
	sqlite3_finalize(st);
	return rc;
}

struct held_visit {
	db_held_fn fn;
	void *arg;
};

static int emit_held(void *ctx, sqlite3_stmt *st)
{
	struct held_visit *v = ctx;
	struct db_held *h = xmalloc(sizeof(*h));
	const unsigned char *path;
	int stop;

	read_op(st, &h->row);
	h->reason = sqlite3_column_int(st, OP_NCOLS);
	path = sqlite3_column_text(st, OP_NCOLS + 1);
	h->path = path ? (const char *)path : "";
	h->since_ms = sqlite3_column_int64(st, OP_NCOLS + 2);
	stop = v->fn(v->arg, h);
	free(h);
	return stop;
}

int db_held_foreach(struct wkdb *db, db_held_fn fn, void *arg)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql,
				"SELECT " OP_COLS ", held.reason, held.path,"
				" held.since_ms FROM held JOIN ops"
				" ON ops.seq = held.seq ORDER BY held.seq",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	return each_row(st, emit_held, &(struct held_visit){fn, arg});
}

int db_ops_remote_after(struct wkdb *db, int64_t after, int64_t *n)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql,
				"SELECT count(*) FROM ops WHERE seq > ?1"
				" AND origin = 1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	sqlite3_bind_int64(st, 1, after);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc_errno(rc);
}

int db_ops_mark_shipped(struct wkdb *db, int64_t upto, int64_t *marked)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql,
				"UPDATE ops SET shipped = 1"
				" WHERE shipped = 0 AND seq <= ?1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	sqlite3_bind_int64(st, 1, upto);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return rc_errno(rc);
	if (marked)
		*marked = sqlite3_changes(db->sql);
	return 0;
}

int db_ops_unship_local(struct wkdb *db)
{
	return exec(db, "UPDATE ops SET shipped = 0 WHERE origin = 0");
}

/* Runs a query that returns one row of two integers. */
static int two_counts(struct wkdb *db, const char *sql, int64_t *a, int64_t *b)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*a = sqlite3_column_int64(st, 0);
		*b = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc_errno(rc);
}

int db_op_counts(struct wkdb *db, int64_t *total, int64_t *unshipped)
{
	return two_counts(db,
			  "SELECT count(*), count(*) FILTER"
			  " (WHERE shipped = 0) FROM ops",
			  total, unshipped);
}

int db_pending(struct wkdb *db, int64_t *ops, int64_t *bytes)
{
	return two_counts(db,
			  "SELECT count(*), coalesce(sum(size) FILTER"
			  " (WHERE kind = 3), 0) FROM ops"
			  " WHERE shipped = 0 AND origin = 0",
			  ops, bytes);
}

int db_pending_files(struct wkdb *db, int64_t *files, int64_t *puts)
{
	return two_counts(db,
			  "SELECT count(DISTINCT node), count(*) FROM ops"
			  " WHERE shipped = 0 AND origin = 0 AND kind = 3",
			  files, puts);
}

void db_node_release(struct db_node *n)
{
	free(n->target);
	n->target = NULL;
}
