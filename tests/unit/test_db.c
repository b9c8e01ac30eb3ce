/*
 * test_db.c - the sidecar database: creation, migration, refusal of what it
 * must not touch, and the rows it stores.  Real files in a temp directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "db.h"

struct fixture {
	char dir[64];
	int dirfd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[128];

	snprintf(f->dir, sizeof(f->dir), "/tmp/wkfs-test-db.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/.wkfs", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	assert_true(f->dirfd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	close(f->dirfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static char *db_path(struct fixture *f)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/.wkfs/wkfs.db", f->dir);
	return p;
}

/* Reads a whole file (for "unchanged" checks). */
static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc(n + 1);
	assert_int_equal(fread(buf, 1, n, fp), (size_t)n);
	fclose(fp);
	*len = n;
	return buf;
}

static int user_version_of(const char *path)
{
	sqlite3 *s;
	sqlite3_stmt *st;
	int v = -1;

	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, "PRAGMA user_version", -1, &st,
					    NULL),
			 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(s);
	return v;
}

static void exec_raw(const char *path, const char *sql)
{
	sqlite3 *s;

	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
}

static void test_create_sets_schema_version(void **state)
{
	struct fixture *f = *state;
	struct wkdb *db;
	char err[256];

	/* Without DB_CREATE a missing database is an error. */
	assert_int_equal(db_open_at(f->dirfd, 0, &db, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "wkfs.db"));
	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err,
				    sizeof(err)),
			 0);
	db_close(db);
	assert_int_equal(user_version_of(db_path(f)), DB_SCHEMA_VERSION);
}

/* An empty database at version 0 is migrated forward on open. */
static void test_migrates_from_version_zero(void **state)
{
	struct fixture *f = *state;
	struct wkdb *db;
	char err[256];
	int64_t total = -1, unshipped = -1;

	exec_raw(db_path(f), "CREATE TABLE unrelated(x)");
	assert_int_equal(user_version_of(db_path(f)), 0);
	assert_int_equal(db_open_at(f->dirfd, 0, &db, err, sizeof(err)), 0);
	assert_int_equal(db_op_counts(db, &total, &unshipped), 0);
	assert_int_equal(total, 0);
	assert_int_equal(unshipped, 0);
	db_close(db);
	assert_int_equal(user_version_of(db_path(f)), DB_SCHEMA_VERSION);
}

static void test_refuses_newer_schema(void **state)
{
	struct fixture *f = *state;
	struct wkdb *db = NULL;
	char err[256];

	exec_raw(db_path(f), "PRAGMA user_version = 99");
	assert_int_equal(db_open_at(f->dirfd, 0, &db, err, sizeof(err)),
			 -EPROTO);
	assert_null(db);
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(user_version_of(db_path(f)), 99);
}

/* A corrupt file is an error naming what to do, and stays byte for byte. */
static void test_corrupt_file_is_refused_and_kept(void **state)
{
	struct fixture *f = *state;
	struct wkdb *db = NULL;
	char err[256], junk[8192];
	size_t n1, n2;
	char *before, *after;
	FILE *fp;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	fp = fopen(db_path(f), "wb");
	assert_non_null(fp);
	fwrite(junk, 1, sizeof(junk), fp);
	fclose(fp);
	before = slurp(db_path(f), &n1);
	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err,
				    sizeof(err)),
			 -EIO);
	assert_null(db);
	assert_non_null(strstr(err, "corrupt"));
	after = slurp(db_path(f), &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	free(before);
	free(after);
}

static void test_ops_round_trip_in_order(void **state)
{
	struct fixture *f = *state;
	struct wk_op *op = calloc(1, sizeof(*op));
	struct wkdb *db;
	char err[256];
	int64_t seq = 0, total, unshipped;

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err,
				    sizeof(err)),
			 0);
	assert_int_equal(db_begin(db), 0);
	for (int i = 1; i <= 3; i++) {
		memset(op, 0, sizeof(*op));
		op->id = (struct wk_id){100 + i, 7};
		op->kind = i == 3 ? WK_OP_PUT : WK_OP_CREATE;
		op->node = (struct wk_id){101, 7};
		op->parent = WK_ID_ROOT;
		snprintf(op->name, sizeof(op->name), "f%d", i);
		op->mode = 0644;
		op->size = 42;
		op->hash.b[0] = 0xab;
		op->base = WK_ID_NONE;
		assert_int_equal(db_op_append(db, op, DB_ORIGIN_LOCAL, &seq),
				 0);
		assert_int_equal(seq, i);
	}
	/* Unique on (hlc, actor): the same op twice is refused. */
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_LOCAL, NULL), -EEXIST);
	assert_int_equal(db_commit(db, true), 0);
	assert_int_equal(db_op_counts(db, &total, &unshipped), 0);
	assert_int_equal(total, 3);
	assert_int_equal(unshipped, 3);
	free(op);
	db_close(db);
}

struct held_seen {
	int n;
	int64_t seq[4];
	int reason[4];
	char path[4][32];
	int64_t since[4];
	enum wk_op_kind kind[4];
};

static int see_held(void *arg, const struct db_held *h)
{
	struct held_seen *s = arg;

	s->seq[s->n] = h->row.seq;
	s->reason[s->n] = h->reason;
	snprintf(s->path[s->n], sizeof(s->path[0]), "%s", h->path);
	s->since[s->n] = h->since_ms;
	s->kind[s->n++] = h->row.op.kind;
	return 0;
}

/* Held rows come back with their op, in seq order; an update keeps the
 * time the op was first held; a cleared one is gone. */
static void test_held_rows(void **state)
{
	struct fixture *f = *state;
	struct wk_op *op = calloc(1, sizeof(*op));
	struct held_seen seen = {0};
	struct wkdb *db;
	char err[256];

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err, sizeof(err)),
			 0);
	for (int i = 1; i <= 3; i++) {
		memset(op, 0, sizeof(*op));
		op->id = (struct wk_id){200 + i, 9};
		op->kind = i == 1 ? WK_OP_CREATE : WK_OP_PUT;
		op->node = (struct wk_id){201, 9};
		op->parent = WK_ID_ROOT;
		snprintf(op->name, sizeof(op->name), "f");
		assert_int_equal(db_op_append(db, op, DB_ORIGIN_REMOTE, NULL),
				 0);
	}
	assert_int_equal(db_held_set(db, 3, 2, "f", 1000), 0);
	assert_int_equal(db_held_set(db, 1, 3, "f", 1000), 0);
	assert_int_equal(db_held_set(db, 2, 1, NULL, 1500), 0);
	assert_int_equal(db_held_set(db, 2, 2, "f", 2000), 0);
	assert_int_equal(db_held_clear(db, 3), 0);
	assert_int_equal(db_held_foreach(db, see_held, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.seq[0], 1);
	assert_int_equal(seen.kind[0], WK_OP_CREATE);
	assert_int_equal(seen.reason[0], 3);
	assert_int_equal(seen.seq[1], 2);
	assert_int_equal(seen.kind[1], WK_OP_PUT);
	assert_int_equal(seen.reason[1], 2);
	assert_string_equal(seen.path[1], "f");
	assert_int_equal(seen.since[1], 1500);
	free(op);
	db_close(db);
}

static void test_mark_shipped_up_to_a_seq(void **state)
{
	struct fixture *f = *state;
	struct wk_op *op = calloc(1, sizeof(*op));
	struct wkdb *db;
	char err[256];
	int64_t total, unshipped, marked;

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err, sizeof(err)),
			 0);
	for (int i = 1; i <= 5; i++) {
		memset(op, 0, sizeof(*op));
		op->id = (struct wk_id){200 + i, 9};
		op->kind = WK_OP_MKDIR;
		op->node = op->id;
		snprintf(op->name, sizeof(op->name), "d%d", i);
		assert_int_equal(db_op_append(db, op, DB_ORIGIN_LOCAL, NULL),
				 0);
	}
	assert_int_equal(db_ops_mark_shipped(db, 3, &marked), 0);
	assert_int_equal(marked, 3);
	assert_int_equal(db_op_counts(db, &total, &unshipped), 0);
	assert_int_equal(unshipped, 2);
	/* Again: nothing more below 3; then the rest. */
	assert_int_equal(db_ops_mark_shipped(db, 3, &marked), 0);
	assert_int_equal(marked, 0);
	assert_int_equal(db_ops_mark_shipped(db, 99, NULL), 0);
	assert_int_equal(db_op_counts(db, &total, &unshipped), 0);
	assert_int_equal(total, 5);
	assert_int_equal(unshipped, 0);
	/* A remote op stays shipped when the local ones are unshipped. */
	op->id = (struct wk_id){300, 10};
	op->node = op->id;
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_REMOTE, NULL), 0);
	assert_int_equal(db_ops_mark_shipped(db, 99, NULL), 0);
	assert_int_equal(db_ops_unship_local(db), 0);
	assert_int_equal(db_op_counts(db, &total, &unshipped), 0);
	assert_int_equal(unshipped, 5);
	free(op);
	db_close(db);
}

static void test_node_get_by_id(void **state)
{
	struct fixture *f = *state;
	struct db_node n = {0}, got;
	struct wkdb *db;
	char err[256];

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err, sizeof(err)),
			 0);
	n.id = (struct wk_id){5, 6};
	n.parent = WK_ID_ROOT;
	snprintf(n.name, sizeof(n.name), "a.txt");
	n.kind = WK_KIND_FILE;
	n.mode = 0644;
	n.has_hash = true;
	n.hash.b[3] = 7;
	n.version = n.content = n.id;
	assert_int_equal(db_node_put(db, &n), 0);
	assert_int_equal(db_node_get(db, n.id, &got), 0);
	assert_string_equal(got.name, "a.txt");
	assert_true(got.has_hash);
	assert_int_equal(got.hash.b[3], 7);
	assert_true(wk_id_eq(got.parent, WK_ID_ROOT));
	db_node_release(&got);
	assert_int_equal(db_node_get(db, (struct wk_id){5, 7}, &got), -ENOENT);
	db_close(db);
}

struct collect {
	int64_t seqs[8];
	uint64_t hlcs[8];
	int n;
};

static int collect_op(void *arg, const struct db_oprow *r)
{
	struct collect *c = arg;

	c->seqs[c->n] = r->seq;
	c->hlcs[c->n] = r->op.id.hlc;
	c->n++;
	return 0;
}

static void test_ops_foreach_last_n(void **state)
{
	struct fixture *f = *state;
	struct wk_op *op = calloc(1, sizeof(*op));
	struct collect c = {0};
	struct wkdb *db;
	char err[256];

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err,
				    sizeof(err)),
			 0);
	for (int i = 1; i <= 5; i++) {
		op->id = (struct wk_id){i, 1};
		op->kind = WK_OP_MKDIR;
		op->node = op->id;
		op->parent = WK_ID_ROOT;
		snprintf(op->name, sizeof(op->name), "d%d", i);
		assert_int_equal(db_op_append(db, op, DB_ORIGIN_REMOTE, NULL),
				 0);
	}
	assert_int_equal(db_ops_foreach(db, 0, 2, collect_op, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.seqs[0], 4);
	assert_int_equal(c.seqs[1], 5);
	c.n = 0;
	assert_int_equal(db_ops_foreach(db, 3, 0, collect_op, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.hlcs[0], 4);
	free(op);
	db_close(db);
}

static int find_node(void *arg, const struct db_node *n)
{
	struct db_node *want = arg;

	if (!wk_id_eq(n->id, want->id))
		return 0;
	assert_string_equal(n->name, want->name);
	assert_true(wk_id_eq(n->parent, want->parent));
	assert_int_equal(n->kind, want->kind);
	assert_int_equal(n->mode, want->mode);
	assert_int_equal(n->size, want->size);
	assert_int_equal(n->mtime_ns, want->mtime_ns);
	assert_true(n->has_hash);
	assert_memory_equal(n->hash.b, want->hash.b, 16);
	assert_true(wk_id_eq(n->content, want->content));
	assert_int_equal(n->ino, want->ino);
	return 1;
}

static void test_nodes_put_read_delete(void **state)
{
	struct fixture *f = *state;
	struct db_node n = {
		.id = {0x0102030405060708ULL, 0xfffffffffffffffeULL},
		.parent = WK_ID_ROOT,
		.name = "notes.txt",
		.kind = WK_KIND_FILE,
		.mode = 0640,
		.size = 1234,
		.mtime_ns = 1700000000123456789LL,
		.has_hash = true,
		.version = {9, 9},
		.content = {8, 8},
		.ino = 777,
	};
	struct wkdb *db;
	char err[256];

	n.hash.b[15] = 0x5a;
	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err,
				    sizeof(err)),
			 0);
	assert_int_equal(db_node_put(db, &n), 0);
	/* The id survives the blob encoding, high bits included. */
	assert_int_equal(db_nodes_foreach(db, find_node, &n), 1);
	assert_int_equal(db_node_delete(db, n.id), 0);
	assert_int_equal(db_nodes_foreach(db, find_node, &n), 0);
	db_close(db);
}

static void test_meta_values(void **state)
{
	struct fixture *f = *state;
	struct wkdb *db;
	char err[256], buf[32];
	uint64_t v = 0;

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err,
				    sizeof(err)),
			 0);
	assert_int_equal(db_meta_get_u64(db, "actor", &v), -ENOENT);
	assert_int_equal(db_meta_set_u64(db, "actor", UINT64_MAX - 1), 0);
	assert_int_equal(db_meta_get_u64(db, "actor", &v), 0);
	assert_true(v == UINT64_MAX - 1);
	assert_int_equal(db_meta_set_str(db, "device", "laptop"), 0);
	assert_int_equal(db_meta_get_str(db, "device", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "laptop");
	db_close(db);
}

/* A read-only handle never writes: not even the schema of a fresh file. */
static void test_readonly_does_not_migrate(void **state)
{
	struct fixture *f = *state;
	struct wkdb *db = NULL;
	char err[256];

	exec_raw(db_path(f), "CREATE TABLE unrelated(x)");
	assert_int_equal(db_open_at(f->dirfd, DB_READONLY, &db, err,
				    sizeof(err)),
			 -EPROTO);
	assert_non_null(strstr(err, "older"));
	assert_int_equal(user_version_of(db_path(f)), 0);
}

static int grab_first(void *arg, const struct db_oprow *r)
{
	memcpy(arg, &r->op, sizeof(r->op));
	return 1;
}

/* A remove keeps the version it saw: the merge lets unseen edits win. */
static void test_remove_keeps_its_base(void **state)
{
	struct fixture *f = *state;
	struct wk_op *op = calloc(1, sizeof(*op));
	struct wk_op *back = calloc(1, sizeof(*back));
	struct wkdb *db;
	char err[256];

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err,
				    sizeof(err)),
			 0);
	op->id = (struct wk_id){50, 2};
	op->kind = WK_OP_REMOVE;
	op->node = (struct wk_id){10, 2};
	op->parent = WK_ID_ROOT;
	snprintf(op->name, sizeof(op->name), "gone.txt");
	op->base = (struct wk_id){40, 3};
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_LOCAL, NULL), 0);
	assert_int_equal(db_ops_foreach(db, 0, 0, grab_first, back), 1);
	assert_int_equal(back->kind, WK_OP_REMOVE);
	assert_true(wk_id_eq(back->base, op->base));
	assert_string_equal(back->name, "gone.txt");
	free(op);
	free(back);
	db_close(db);
}

/* Remote ops dedupe on (hlc, actor) and are counted past a cursor. */
static void test_remote_ops_dedupe_and_count(void **state)
{
	struct fixture *f = *state;
	struct wk_op *op = calloc(1, sizeof(*op));
	struct wkdb *db;
	int64_t seq = 0, n = -1;
	char err[256];

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err,
				    sizeof(err)),
			 0);
	op->kind = WK_OP_CREATE;
	op->parent = WK_ID_ROOT;
	for (int i = 1; i <= 3; i++) {
		op->id = op->node = (struct wk_id){10 * i, 7};
		snprintf(op->name, sizeof(op->name), "f%d", i);
		assert_int_equal(db_op_append(db, op, i == 2 ? DB_ORIGIN_LOCAL
							     : DB_ORIGIN_REMOTE,
					      &seq),
				 0);
	}
	op->id = op->node = (struct wk_id){30, 7};
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_REMOTE, NULL),
			 -EEXIST);
	assert_int_equal(db_ops_remote_after(db, 0, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(db_ops_remote_after(db, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(db_ops_remote_after(db, seq, &n), 0);
	assert_int_equal(n, 0);
	free(op);
	db_close(db);
}

/* ---- device names, and the migration from version 1 ---- */

/* Runs tests/unit/data/NAME (found next to this file) on the db file. */
static void exec_data(const char *path, const char *name)
{
	const char *dir_end = strrchr(__FILE__, '/');
	char file[512], *sql;
	size_t len;

	snprintf(file, sizeof(file), "%.*s/data/%s",
		 dir_end ? (int)(dir_end - __FILE__) : 1,
		 dir_end ? __FILE__ : ".", name);
	sql = slurp(file, &len);
	sql[len] = '\0';
	exec_raw(path, sql);
	free(sql);
}

static int64_t count_rows(const char *path, const char *sql)
{
	sqlite3 *s;
	sqlite3_stmt *st;
	int64_t n = -1;

	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(s);
	return n;
}

struct oplist {
	struct db_oprow *v;
	size_t n;
};

static int keep_op(void *arg, const struct db_oprow *r)
{
	struct oplist *l = arg;

	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = *r;
	return 0;
}

/* Ops keep the device they were appended with; names are stored once. */
static void test_ops_keep_their_device(void **state)
{
	struct fixture *f = *state;
	static const char *const dev[] = {"laptop", "", "desk", "laptop"};
	struct wk_op *op = calloc(1, sizeof(*op));
	struct oplist l = {0};
	struct wkdb *db;
	char err[256];

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err, sizeof(err)),
			 0);
	assert_int_equal(db_begin(db), 0);
	op->kind = WK_OP_MKDIR;
	op->parent = WK_ID_ROOT;
	for (int i = 0; i < 4; i++) {
		op->id = op->node = (struct wk_id){i + 1, 7};
		snprintf(op->name, sizeof(op->name), "d%d", i);
		strcpy(op->device, dev[i]);
		assert_int_equal(db_op_append(db, op, DB_ORIGIN_LOCAL, NULL),
				 0);
	}
	/* Not a device name: refused, nothing stored. */
	op->id = op->node = (struct wk_id){9, 7};
	strcpy(op->device, "my laptop");
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_LOCAL, NULL), -EINVAL);
	assert_int_equal(db_commit(db, false), 0);
	/* A rolled-back transaction takes its new name with it, and the next
	 * op of that name does not point at the vanished row. */
	assert_int_equal(db_begin(db), 0);
	strcpy(op->device, "tablet");
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_REMOTE, NULL), 0);
	db_rollback(db);
	assert_int_equal(db_begin(db), 0);
	op->id = op->node = (struct wk_id){10, 7};
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_REMOTE, NULL), 0);
	assert_int_equal(db_commit(db, false), 0);
	assert_int_equal(db_ops_foreach(db, 0, 0, keep_op, &l), 0);
	db_close(db);
	assert_int_equal(l.n, 5);
	for (int i = 0; i < 4; i++)
		assert_string_equal(l.v[i].op.device, dev[i]);
	assert_string_equal(l.v[4].op.device, "tablet");
	assert_int_equal(count_rows(db_path(f), "SELECT count(*) FROM devices"),
			 3);
	free(l.v);
	free(op);
}

/* A database made by wkfs with schema 1 (before device names) opens, is
 * migrated in place, keeps every row, and takes ops with devices. */
static void test_migrates_version_1_in_place(void **state)
{
	struct fixture *f = *state;
	struct wk_op *op = calloc(1, sizeof(*op));
	struct oplist l = {0};
	struct wkdb *db;
	char err[256], buf[64];
	uint64_t actor = 0;
	struct db_node n;

	exec_data(db_path(f), "wkfs-db-v1.sql");
	assert_int_equal(user_version_of(db_path(f)), 1);
	/* Read-only users (wkfs log) do not migrate: they ask for a mount. */
	assert_int_equal(
		db_open_at(f->dirfd, DB_READONLY, &db, err, sizeof(err)),
		-EPROTO);
	assert_non_null(strstr(err, "older"));
	assert_int_equal(user_version_of(db_path(f)), 1);

	assert_int_equal(db_open_at(f->dirfd, 0, &db, err, sizeof(err)), 0);
	assert_int_equal(user_version_of(db_path(f)), DB_SCHEMA_VERSION);
	assert_int_equal(db_meta_get_u64(db, "actor", &actor), 0);
	assert_int_equal(actor, 0xf5e0d1851d7f83b5ULL);
	assert_int_equal(db_meta_get_str(db, "device:8b70f6d3a0a95da4", buf,
					 sizeof(buf)),
			 0);
	assert_string_equal(buf, "laptop");
	assert_int_equal(db_ops_foreach(db, 0, 0, keep_op, &l), 0);
	assert_int_equal(l.n, 13);
	for (size_t i = 0; i < l.n; i++) {
		assert_int_equal(l.v[i].seq, (int64_t)i + 1);
		/* They travelled without a device: they keep none. */
		assert_string_equal(l.v[i].op.device, "");
		assert_int_equal(l.v[i].origin,
				 i < 11 ? DB_ORIGIN_REMOTE : DB_ORIGIN_LOCAL);
	}
	assert_int_equal(l.v[7].op.kind, WK_OP_MOVE);
	assert_string_equal(l.v[7].op.name, "readme.md");
	assert_string_equal(l.v[7].op.new_name, "README.md");
	assert_int_equal(l.v[12].op.kind, WK_OP_PUT);
	assert_int_equal(l.v[12].op.size, 2);
	assert_true(wk_id_eq(l.v[12].op.base, l.v[11].op.node));
	assert_int_equal(db_node_get(db, l.v[7].op.node, &n), 0);
	assert_string_equal(n.name, "README.md");
	db_node_release(&n);

	/* New ops carry a device. */
	*op = l.v[12].op;
	op->id.hlc++;
	strcpy(op->device, "desk");
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_LOCAL, NULL), 0);
	free(l.v);
	l = (struct oplist){0};
	assert_int_equal(db_ops_foreach(db, 13, 0, keep_op, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].op.device, "desk");
	db_close(db);

	/* Once migrated, it opens read-only too. */
	assert_int_equal(
		db_open_at(f->dirfd, DB_READONLY, &db, err, sizeof(err)), 0);
	db_close(db);
	free(l.v);
	free(op);
}

/* Puts keep the link they name (a hard link on their maker's replica);
 * other ops and puts without one read as naming none. */
static void test_ops_keep_their_link(void **state)
{
	struct fixture *f = *state;
	struct wk_id link = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
	struct wk_op *op = calloc(1, sizeof(*op));
	struct oplist l = {0};
	struct wkdb *db;
	char err[256];

	assert_int_equal(db_open_at(f->dirfd, DB_CREATE, &db, err, sizeof(err)),
			 0);
	assert_int_equal(db_begin(db), 0);
	for (int i = 0; i < 4; i++) {
		memset(op, 0, sizeof(*op));
		op->id = (struct wk_id){i + 1, 7};
		op->node = (struct wk_id){1, 7};
		op->kind = i < 3 ? WK_OP_PUT : WK_OP_SETATTR;
		op->attrs = WK_ATTR_MODE;
		op->base = WK_ID_NONE;
		op->link = i == 1 ? WK_ID_NONE : link;
		strcpy(op->device, "desk");
		assert_int_equal(db_op_append(db, op, DB_ORIGIN_LOCAL, NULL),
				 0);
	}
	assert_int_equal(db_commit(db, false), 0);
	assert_int_equal(db_ops_foreach(db, 0, 0, keep_op, &l), 0);
	db_close(db);
	assert_int_equal(l.n, 4);
	assert_true(wk_id_eq(l.v[0].op.link, link));
	assert_true(wk_id_eq(l.v[1].op.link, WK_ID_NONE));
	assert_true(wk_id_eq(l.v[2].op.link, link));
	assert_true(wk_id_eq(l.v[3].op.link, WK_ID_NONE)); /* not a put */
	assert_int_equal(count_rows(db_path(f), "SELECT count(*) FROM ops"
						" WHERE link IS NULL"),
			 2);
	free(l.v);
	free(op);
}

/* A database of schema 3 (before links) is migrated in place: its rows
 * stay and read as naming no link; new puts keep theirs. */
static void test_migrates_version_3_in_place(void **state)
{
	struct fixture *f = *state;
	struct wk_id link = {5, 6};
	struct wk_op *op = calloc(1, sizeof(*op));
	struct oplist l = {0};
	struct wkdb *db;
	char err[256];

	/* Version 1 made by the old code, taken to 3 the way wkfs 3 did,
	 * then checked to be exactly schema 3 (no link column). */
	exec_data(db_path(f), "wkfs-db-v1.sql");
	exec_raw(db_path(f), "BEGIN;"
			     "CREATE TABLE devices(id INTEGER PRIMARY KEY,"
			     " name TEXT NOT NULL UNIQUE);"
			     "ALTER TABLE ops ADD COLUMN device INTEGER;"
			     "CREATE TABLE held(seq INTEGER PRIMARY KEY,"
			     " reason INTEGER NOT NULL, path TEXT,"
			     " since_ms INTEGER NOT NULL DEFAULT 0);"
			     "PRAGMA user_version = 3; COMMIT;");
	assert_int_equal(count_rows(db_path(f),
				    "SELECT count(*) FROM pragma_table_info"
				    "('ops') WHERE name = 'link'"),
			 0);
	assert_int_equal(db_open_at(f->dirfd, 0, &db, err, sizeof(err)), 0);
	assert_int_equal(user_version_of(db_path(f)), DB_SCHEMA_VERSION);
	assert_int_equal(DB_SCHEMA_VERSION, 4);
	assert_int_equal(db_ops_foreach(db, 0, 0, keep_op, &l), 0);
	assert_int_equal(l.n, 13);
	for (size_t i = 0; i < l.n; i++)
		assert_true(wk_id_eq(l.v[i].op.link, WK_ID_NONE));
	*op = l.v[12].op;
	assert_int_equal(op->kind, WK_OP_PUT);
	op->id.hlc++;
	op->link = link;
	assert_int_equal(db_op_append(db, op, DB_ORIGIN_REMOTE, NULL), 0);
	free(l.v);
	l = (struct oplist){0};
	assert_int_equal(db_ops_foreach(db, 13, 0, keep_op, &l), 0);
	assert_int_equal(l.n, 1);
	assert_true(wk_id_eq(l.v[0].op.link, link));
	db_close(db);
	free(l.v);
	free(op);
}

/* A migration that fails leaves version 1 exactly as it was. */
static void test_failed_migration_rolls_back(void **state)
{
	struct fixture *f = *state;
	struct wkdb *db = NULL;
	char err[256];

	exec_data(db_path(f), "wkfs-db-v1.sql");
	/* Something in the way of the new table. */
	exec_raw(db_path(f), "CREATE TABLE devices(x)");
	assert_int_equal(db_open_at(f->dirfd, 0, &db, err, sizeof(err)) < 0, 1);
	assert_null(db);
	assert_non_null(strstr(err, "upgrade"));
	assert_int_equal(user_version_of(db_path(f)), 1);
	/* The ops table did not get its column. */
	assert_int_equal(count_rows(db_path(f),
				    "SELECT count(*) FROM pragma_table_info"
				    "('ops') WHERE name = 'device'"),
			 0);
	assert_int_equal(count_rows(db_path(f), "SELECT count(*) FROM ops"),
			 13);
}

/* A database one version newer than this code is refused, untouched. */
static void test_refuses_next_schema(void **state)
{
	struct fixture *f = *state;
	struct wkdb *db = NULL;
	char err[256], sql[64];

	exec_data(db_path(f), "wkfs-db-v1.sql");
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 DB_SCHEMA_VERSION + 1);
	exec_raw(db_path(f), sql);
	assert_int_equal(db_open_at(f->dirfd, 0, &db, err, sizeof(err)),
			 -EPROTO);
	assert_null(db);
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(user_version_of(db_path(f)), DB_SCHEMA_VERSION + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_sets_schema_version,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrates_from_version_zero,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_newer_schema,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_corrupt_file_is_refused_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ops_round_trip_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_shipped_up_to_a_seq,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_rows, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_node_get_by_id, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ops_foreach_last_n, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nodes_put_read_delete,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readonly_does_not_migrate,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_keeps_its_base,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_remote_ops_dedupe_and_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ops_keep_their_device,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_migrates_version_1_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ops_keep_their_link, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_migrates_version_3_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_failed_migration_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_next_schema, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
