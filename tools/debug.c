/*
 * debug.c - `wkfs debug ...`: test-only helpers that reach internals, so
 * that shell tests stay readable (git's test-tool idea).  Not a user
 * interface: nothing here is stable, and none of it is a transport.
 *
 *   wkfs debug import SRC DST
 *	Stands in for wkfs-syncd: copies SRC's ops that DST lacks (by
 *	(hlc, actor)) into DST's oplog as remote ops, each put's content into
 *	DST/.wkfs/objects (from SRC's objects or any file of SRC with that
 *	hash; a put whose content is nowhere stays deferred in DST), the
 *	device names of their actors into DST's meta, then asks DST's mount
 *	to apply them and prints "imported N applied SEQ pending P".
 *
 *   wkfs debug inject DIR KIND[:MODE] NAME [TARGET]
 *	Inserts one remote op made up on the spot (KIND mkdir, create or
 *	symlink at the root, by a fake actor; MODE in octal, any bits), as a
 *	hostile peer could, and asks the mount to apply it.  For tests of
 *	what a remote may not do.
 *
 *   wkfs debug apply DIR
 *	Asks DIR's mount for a round and prints its reply.
 *
 *   wkfs debug view DIR
 *	Prints the merge engine's view of every op in DIR's oplog (held ones
 *	too), as tree_dump() writes it, read-only and without a mount: what
 *	DIR should show once everything is applied.  Two replicas with the
 *	same ops print the same; a diff against the disk says what the
 *	materializer did not do.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "cmds.h"
#include "config.h"
#include "content.h"
#include "ctl.h"
#include "db.h"
#include "hlc.h"
#include "locate.h"
#include "materialize.h"
#include "rundir.h"
#include "tree.h"
#include "wlog.h"
#include "xalloc.h"

/* Asks the mount of dir for an apply round; prints its reply. */
static int ask_apply(const char *dir, char *reply, size_t len)
{
	char real[PATH_MAX], run[RUNDIR_MAX], err[1024];
	char *sock;
	int rc;

	if (!realpath(dir, real))
		return -ENOENT;
	rc = rundir_for(real, run, sizeof(run), err, sizeof(err));
	if (rc) {
		wk_err("%s", err);
		return rc;
	}
	sock = xasprintf("%s/fs.sock", run);
	rc = ctl_request(sock, "apply", reply, len, NULL);
	free(sock);
	return rc;
}

/* Finds a regular file beneath dirfd (path so far in rel) with content h. */
static int find_content(int dirfd, const char *rel, const struct wk_hash *h,
			uint64_t size, int depth)
{
	/* A fresh open, not a dup: a dup would share (and use up) the
	 * directory offset of dirfd. */
	int dfd = openat(dirfd, rel[0] ? rel : ".",
			 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	int found = -ENOENT;
	DIR *d;

	if (dfd < 0 || depth > 64)
		goto out_close;
	d = fdopendir(dfd);
	if (!d)
		goto out_close;
	dfd = -1;
	while (found < 0 && (de = readdir(d))) {
		char *p;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (!rel[0] && !strcmp(de->d_name, ".wkfs")))
			continue;
		p = rel[0] ? xasprintf("%s/%s", rel, de->d_name)
			   : xstrdup(de->d_name);
		if (fstatat(dirfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode)) {
				found = find_content(dirfd, p, h, size,
						     depth + 1);
			} else if (S_ISREG(st.st_mode) &&
				   (uint64_t)st.st_size == size) {
				int fd = openat(dirfd, p,
						O_RDONLY | O_NOFOLLOW |
							O_CLOEXEC);
				struct wk_hash got;
				uint64_t n;

				if (fd >= 0 &&
				    content_hash_fd(fd, &got, &n) == 0 &&
				    !memcmp(&got, h, sizeof(got)))
					found = fd;
				else if (fd >= 0)
					close(fd);
			}
		}
		free(p);
	}
	closedir(d);
out_close:
	if (dfd >= 0)
		close(dfd);
	return found;
}

struct import {
	int sfd;
	struct wkdb *sdb, *ddb;
	struct mat *dmat;
	uint64_t src_actor, dst_actor;
	char src_device[256];
	uint64_t *actors; /* whose device names were copied */
	size_t nactors;
	unsigned long imported, missing;
};

static void copy_device(struct import *im, uint64_t actor)
{
	char key[64], name[256];

	for (size_t i = 0; i < im->nactors; i++)
		if (im->actors[i] == actor)
			return;
	im->actors =
		xrealloc(im->actors, (im->nactors + 1) * sizeof(*im->actors));
	im->actors[im->nactors++] = actor;
	if (actor == im->dst_actor)
		return;
	snprintf(key, sizeof(key), APPLY_DEVICE_KEY "%016" PRIx64, actor);
	if (actor == im->src_actor)
		snprintf(name, sizeof(name), "%s", im->src_device);
	else if (db_meta_get_str(im->sdb, key, name, sizeof(name)) != 0)
		return;
	db_meta_set_str(im->ddb, key, name);
}

/* Brings op's content into DST's store; false when it is nowhere. */
static bool copy_content(struct import *im, const struct wk_op *op)
{
	char hex[WK_HASH_STRLEN], *obj;
	struct wk_hash got;
	int fd;

	bool ok = true;

	if (op->kind != WK_OP_PUT || op->size == 0 ||
	    mat_object_have(im->dmat, &op->hash))
		return true;
	obj = xasprintf(MAT_OBJECTS_DIR "/%s", wk_hash_str(&op->hash, hex));
	fd = openat(im->sfd, obj, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(obj);
	if (fd < 0)
		fd = find_content(im->sfd, "", &op->hash, op->size, 0);
	if (fd < 0 || mat_object_put(im->dmat, fd, &got) != 0 ||
	    memcmp(&got, &op->hash, sizeof(got))) {
		if (fd >= 0 && memcmp(&got, &op->hash, sizeof(got)))
			mat_object_drop(im->dmat, &got);
		ok = false;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

static int import_row(void *arg, const struct db_oprow *row)
{
	struct import *im = arg;
	int rc;

	if (row->op.id.actor == im->dst_actor)
		return 0; /* its own ops: there already */
	rc = db_op_append(im->ddb, &row->op, DB_ORIGIN_REMOTE, NULL);
	if (rc && rc != -EEXIST)
		return rc;
	/* Also for ops imported before: their content may have been
	 * missing then (a put waiting for it is deferred, not lost). */
	if (!copy_content(im, &row->op) && rc == 0)
		im->missing++;
	if (rc == 0) {
		im->imported++;
		copy_device(im, row->op.id.actor);
	}
	return 0;
}

static int open_db(const char *dir, int flags, int *fd, struct wkdb **db)
{
	char err[512];
	int rc;

	*fd = locate_dirfd(dir, err, sizeof(err));
	if (*fd < 0) {
		wk_err("%s", err);
		return *fd;
	}
	rc = db_open_at(*fd, flags, db, err, sizeof(err));
	if (rc)
		wk_err("%s: %s", dir, err);
	return rc;
}

static int cmd_import(const char *src, const char *dst)
{
	struct import im = {.sfd = -1};
	struct wk_config cfg;
	char reply[CTL_LINE_MAX], err[512];
	long long seq, pending, held;
	int dfd = -1, rc, ret = 1;

	config_init(&cfg);
	if (open_db(src, DB_READONLY, &im.sfd, &im.sdb) ||
	    open_db(dst, 0, &dfd, &im.ddb))
		goto out;
	rc = mat_open(dfd, &im.dmat);
	if (rc) {
		wk_err("%s: cannot open its object store: %s", dst,
		       strerror(-rc));
		goto out;
	}
	db_meta_get_u64(im.sdb, "actor", &im.src_actor);
	db_meta_get_u64(im.ddb, "actor", &im.dst_actor);
	if (config_load_at(im.sfd, &cfg, err, sizeof(err)) == 0 &&
	    cfg.device_name)
		snprintf(im.src_device, sizeof(im.src_device), "%s",
			 cfg.device_name);
	else if (gethostname(im.src_device, sizeof(im.src_device)) != 0)
		im.src_device[0] = '\0';
	rc = db_begin(im.ddb);
	if (!rc)
		rc = db_ops_foreach(im.sdb, 0, 0, import_row, &im);
	if (!rc)
		rc = db_commit(im.ddb, true);
	else
		db_rollback(im.ddb);
	if (rc) {
		wk_err("%s: cannot import: %s", dst, strerror(-rc));
		goto out;
	}
	if (im.missing)
		wk_warn("content of %lu puts not found; they stay deferred",
			im.missing);
	rc = ask_apply(dst, reply, sizeof(reply));
	if (rc)
		printf("imported %lu (%s not mounted)\n", im.imported, dst);
	else if (sscanf(reply, "ok %lld %lld %lld", &seq, &pending, &held) == 3)
		printf("imported %lu applied %lld %lld\n", im.imported, seq,
		       pending + held);
	else
		printf("imported %lu apply: %s\n", im.imported, reply);
	ret = 0;
out:
	config_release(&cfg);
	free(im.actors);
	mat_close(im.dmat);
	db_close(im.sdb);
	db_close(im.ddb);
	if (im.sfd >= 0)
		close(im.sfd);
	if (dfd >= 0)
		close(dfd);
	return ret;
}

static int cmd_inject(const char *dir, const char *kind, const char *name,
		      const char *target)
{
	struct wk_op *op = xcalloc(1, sizeof(*op));
	char reply[CTL_LINE_MAX];
	struct wkdb *db = NULL;
	struct timespec now;
	const char *colon = strchr(kind, ':');
	char kname[16];
	long mode = -1;
	int fd = -1, rc, ret = 1;

	if (colon) {
		char *end;

		mode = strtol(colon + 1, &end, 8);
		if (*end || end == colon + 1 || mode < 0 || mode > 07777) {
			fprintf(stderr, "wkfs debug inject: bad mode %s\n",
				colon + 1);
			goto out;
		}
	}
	snprintf(kname, sizeof(kname), "%.*s",
		 colon ? (int)(colon - kind) : (int)strlen(kind), kind);
	kind = kname;
	clock_gettime(CLOCK_REALTIME, &now);
	op->id.hlc = hlc_pack(
		(uint64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, 0);
	op->id.actor = 0x6861636b65720001ULL; /* a made-up replica */
	op->node = op->id;
	op->parent = WK_ID_ROOT;
	op->mode = 0644;
	op->base = WK_ID_NONE;
	/* Raw bytes, unchecked: what a hostile peer could send. */
	memcpy(op->name, name, strnlen(name, WK_NAME_MAX));
	if (!strcmp(kind, "mkdir")) {
		op->kind = WK_OP_MKDIR;
		op->mode = 0755;
	} else if (!strcmp(kind, "create")) {
		op->kind = WK_OP_CREATE;
	} else if (!strcmp(kind, "symlink")) {
		op->kind = WK_OP_SYMLINK;
		snprintf(op->target, sizeof(op->target), "%s",
			 target ? target : "/");
	} else {
		fprintf(stderr, "wkfs debug inject: unknown kind %s\n", kind);
		goto out;
	}
	if (mode >= 0)
		op->mode = (uint32_t)mode;
	if (open_db(dir, 0, &fd, &db))
		goto out;
	rc = db_op_append(db, op, DB_ORIGIN_REMOTE, NULL);
	if (rc) {
		wk_err("%s: cannot insert: %s", dir, strerror(-rc));
		goto out;
	}
	rc = ask_apply(dir, reply, sizeof(reply));
	printf("%s\n", rc ? "not mounted" : reply);
	ret = 0;
out:
	db_close(db);
	if (fd >= 0)
		close(fd);
	free(op);
	return ret;
}

struct view {
	struct tree *t;
	bool world_writable;
};

static int view_row(void *arg, const struct db_oprow *row)
{
	struct view *v = arg;
	struct wk_op op = row->op;

	/* As the mount feeds them (fs/apply.c): remote modes masked. */
	if (row->origin != DB_ORIGIN_LOCAL)
		wk_op_mask_remote(&op, v->world_writable);
	tree_apply(v->t, &op, 1, NULL);
	return 0;
}

static int cmd_view(const char *dir)
{
	struct wkdb *db = NULL;
	struct view v = {.t = tree_new()};
	struct wk_config cfg;
	char *dump = NULL, err[512];
	int fd = -1, ret = 1;

	config_init(&cfg);
	if (open_db(dir, DB_READONLY, &fd, &db))
		goto out;
	if (config_load_at(fd, &cfg, err, sizeof(err)) == 0)
		v.world_writable = cfg.world_writable;
	if (db_ops_foreach(db, 0, 0, view_row, &v)) {
		wk_err("%s: cannot read its oplog", dir);
		goto out;
	}
	dump = tree_dump(v.t);
	fputs(dump, stdout);
	ret = 0;
out:
	config_release(&cfg);
	free(dump);
	tree_free(v.t);
	db_close(db);
	if (fd >= 0)
		close(fd);
	return ret;
}

int cmd_debug(int argc, char **argv)
{
	char reply[CTL_LINE_MAX];

	if (argc == 4 && !strcmp(argv[1], "import"))
		return cmd_import(argv[2], argv[3]);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "inject"))
		return cmd_inject(argv[2], argv[3], argv[4],
				  argc == 6 ? argv[5] : NULL);
	if (argc == 3 && !strcmp(argv[1], "apply")) {
		if (ask_apply(argv[2], reply, sizeof(reply)) != 0) {
			wk_err("%s: not mounted", argv[2]);
			return 1;
		}
		printf("%s\n", reply);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "view"))
		return cmd_view(argv[2]);
	fprintf(stderr, "usage (test-only): wkfs debug import SRC DST\n"
			"       wkfs debug inject DIR mkdir|create|symlink "
			"NAME [TARGET]\n"
			"       wkfs debug apply DIR\n"
			"       wkfs debug view DIR\n");
	return 2;
}
