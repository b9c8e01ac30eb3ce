/*
 * test_materialize.c - the materializer on real directories.
 *
 * Each test gets a fresh base directory (mkdtemp under $TMPDIR or /tmp)
 * holding DIR (the synced directory, with .wkfs/) and "outside", a
 * sentinel directory beside it that no change may ever touch.  Change
 * lists are written by hand for the edge cases and produced by the merge
 * engine (lib/tree.c) for realistic batches, whose result on disk must
 * then equal tree_dump() byte for byte.  Crash tests fork a child that dies
 * at a named fault point and recover in the parent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "content.h"
#include "db.h"
#include "fault.h"
#include "mat_gc.h"
#include "mat_int.h"
#include "materialize.h"
#include "tree.h"
#include "tree_testlib.h"
#include "xalloc.h"

#include <xxhash.h>

#define T0	      UINT64_C(1700000000000)
#define ID(ms, actor) tl_id(T0 + (ms), 0, (actor))
#define MT(s)	      ((int64_t)(s)*1000000000 + 123456789)

struct env {
	char base[1024];
	char dir[1040];
	char out[1040];
	int rootfd;
	struct mat *m;
};

/* ---- files ---- */

static void writef(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
			 (ssize_t)strlen(content));
	close(fd);
}

/* The file's content as a fresh string, NULL if it cannot be read. */
static char *readf(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

/* DIR/rel in one of a ring of static buffers (no frees in the tests). */
static char *pathf(const struct env *e, const char *rel)
{
	static char ring[8][2 * PATH_MAX];
	static unsigned next;
	char *p = ring[next++ % 8];

	snprintf(p, sizeof(ring[0]), "%s/%s", e->dir, rel);
	return p;
}

static void assert_content(const struct env *e, const char *rel,
			   const char *want)
{
	char *got = readf(pathf(e, rel));

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static bool exists(const struct env *e, const char *rel)
{
	char *p = pathf(e, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- a dump of DIR in tree_dump()'s format ---- */

static char **dl;
static size_t dn;
static size_t dskip;

static int dump_one(const char *p, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	const char *rel = p + dskip;
	char hash[WK_HASH_STRLEN] = "-", target[WK_TARGET_MAX + 1] = "-";
	char kind = S_ISDIR(st->st_mode)   ? 'd'
		    : S_ISLNK(st->st_mode) ? 'l'
					   : 'f';

	(void)flag;
	if (ftw->level == 0)
		return FTW_CONTINUE;
	if (strcmp(rel, ".wkfs") == 0)
		return FTW_SKIP_SUBTREE;
	if (kind == 'f') {
		struct wk_hash h = {{0}};
		int fd = open(p, O_RDONLY);

		if (st->st_size > 0)
			content_hash_fd(fd, &h, NULL);
		close(fd);
		wk_hash_str(&h, hash);
	} else if (kind == 'l') {
		ssize_t n = readlink(p, target, sizeof(target) - 1);

		target[n < 0 ? 0 : n] = '\0';
	}
	dl = xrealloc(dl, (dn + 1) * sizeof(*dl));
	dl[dn++] = xasprintf("%s %c %04o %" PRId64 " %s %s\n", rel, kind,
			     (unsigned)(st->st_mode & 07777),
			     (int64_t)st->st_mtim.tv_sec * 1000000000 +
				     st->st_mtim.tv_nsec,
			     hash, target);
	return FTW_CONTINUE;
}

static int line_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t lx = strchr(x, ' ') - x, ly = strchr(y, ' ') - y;
	int c = memcmp(x, y, lx < ly ? lx : ly);

	return c ? c : lx < ly ? -1 : lx > ly;
}

static char *dump_dir(const struct env *e)
{
	char *out = xstrdup("");

	dl = NULL;
	dn = 0;
	dskip = strlen(e->dir) + 1;
	nftw(e->dir, dump_one, 16, FTW_PHYS | FTW_ACTIONRETVAL);
	if (dn > 1)
		qsort(dl, dn, sizeof(*dl), line_cmp);
	for (size_t i = 0; i < dn; i++) {
		char *next = xasprintf("%s%s", out, dl[i]);

		free(out);
		free(dl[i]);
		out = next;
	}
	free(dl);
	return out;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in DIR/.wkfs/tmp, each followed by a space, sorted. */
static char *tmp_names(const struct env *e)
{
	DIR *d = opendir(pathf(e, ".wkfs/tmp"));
	char *names[64], *out = xstrdup("");
	size_t n = 0;
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < 64)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			names[n++] = xstrdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), str_cmp);
	for (size_t i = 0; i < n; i++) {
		char *next = xasprintf("%s%s ", out, names[i]);

		free(out);
		free(names[i]);
		out = next;
	}
	return out;
}

/* ---- setup ---- */

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	struct env *e = xcalloc(1, sizeof(*e));
	char *p;

	snprintf(e->base, sizeof(e->base), "%s/wkmat.XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(e->base))
		return -1;
	snprintf(e->dir, sizeof(e->dir), "%s/d", e->base);
	snprintf(e->out, sizeof(e->out), "%s/outside", e->base);
	mkdir(e->dir, 0755);
	mkdir(e->out, 0755);
	p = xasprintf("%s/.wkfs", e->dir);
	mkdir(p, 0700);
	free(p);
	p = xasprintf("%s/keep", e->out);
	writef(p, "sentinel");
	chmod(p, 0644);
	free(p);
	e->rootfd = open(e->dir, O_RDONLY | O_DIRECTORY);
	if (e->rootfd < 0 || mat_open(e->rootfd, &e->m) < 0)
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	mat_close(e->m);
	close(e->rootfd);
	rm_rf(e->base);
	free(e);
	unsetenv("WKFS_NO_OPENAT2");
	return 0;
}

/* The sentinel beside DIR is exactly as setup left it. */
static void assert_outside_intact(const struct env *e)
{
	char *cmd = xasprintf("cd %s && find . -printf '%%p %%y %%m\\n' | "
			      "sort | tr '\\n' ' '",
			      e->out);
	FILE *f = popen(cmd, "r");
	char buf[1024] = "", *p, *got;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);

	buf[n] = '\0';
	pclose(f);
	free(cmd);
	assert_string_equal(buf, ". d 755 ./keep f 644 ");
	p = xasprintf("%s/keep", e->out);
	got = readf(p);
	assert_string_equal(got, "sentinel");
	free(got);
	free(p);
}

/* ---- building change lists ---- */

static struct tree_change *ch_add(struct tree_changes *ch,
				  enum tree_change_kind kind, enum wk_kind type,
				  const char *path)
{
	struct tree_change *c;

	if (ch->n == ch->alloc) {
		ch->alloc = ch->alloc ? 2 * ch->alloc : 8;
		ch->v = xrealloc(ch->v, ch->alloc * sizeof(*ch->v));
	}
	c = &ch->v[ch->n++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->type = type;
	c->path = xstrdup(path);
	c->mode = type == WK_KIND_DIR ? 0755 : 0644;
	c->mtime_ns = MT(1600000000);
	return c;
}

static struct wk_hash hash_of(const char *s)
{
	struct wk_hash h = {{0}};

	if (*s)
		content_hash_buf(s, strlen(s), &h);
	return h;
}

static void ch_write(struct tree_changes *ch, const char *path,
		     const char *content, uint32_t mode, int64_t mtime)
{
	struct tree_change *c = ch_add(ch, TREE_CH_WRITE, WK_KIND_FILE, path);

	c->size = strlen(content);
	c->hash = hash_of(content);
	c->mode = mode;
	c->mtime_ns = mtime;
}

static void ch_rename(struct tree_changes *ch, enum wk_kind type,
		      const char *from, const char *to)
{
	ch_add(ch, TREE_CH_RENAME, type, from)->new_path = xstrdup(to);
}

static void ch_symlink(struct tree_changes *ch, const char *path,
		       const char *target)
{
	struct tree_change *c =
		ch_add(ch, TREE_CH_SYMLINK, WK_KIND_SYMLINK, path);

	c->target = xstrdup(target);
	c->mode = 0777;
}

/* Puts content into the object store. */
static void store(struct env *e, const char *content)
{
	int fd = memfd_create("content", 0);
	struct wk_hash h, want = hash_of(content);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
			 (ssize_t)strlen(content));
	assert_int_equal(mat_object_put(e->m, fd, &h), 0);
	close(fd);
	if (*content)
		assert_memory_equal(h.b, want.b, 16);
}

static void apply_ok(struct env *e, const struct tree_changes *ch)
{
	struct mat_result res;

	assert_int_equal(mat_apply(e->m, ch, 0, &res), 0);
	if (res.failed)
		fail_msg("change on %s failed: %s", res.first_path,
			 strerror(-res.first_err));
	assert_int_equal(res.done, ch->n);
	assert_int_equal(res.stranded, 0);
	mat_result_release(&res);
}

/* Applies ch expecting every change to fail; returns the first error. */
static int apply_all_fail(struct env *e, const struct tree_changes *ch)
{
	struct mat_result res;
	int err;

	assert_int_equal(mat_apply(e->m, ch, 0, &res), 0);
	assert_int_equal(res.done, 0);
	assert_int_equal(res.failed, ch->n);
	err = res.first_err;
	mat_result_release(&res);
	return err;
}

static int64_t mtime_of(const struct env *e, const char *rel)
{
	char *p = pathf(e, rel);
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static unsigned mode_of(const struct env *e, const char *rel)
{
	char *p = pathf(e, rel);
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & 07777;
}

/* ---- every change kind ---- */

static void test_object_store(void **state)
{
	struct env *e = *state;
	struct wk_hash h = hash_of("hello");

	assert_false(mat_object_have(e->m, &h));
	store(e, "hello");
	assert_true(mat_object_have(e->m, &h));
	store(e, "hello"); /* again: a no-op */
	assert_int_equal(mat_object_drop(e->m, &h), 0);
	assert_false(mat_object_have(e->m, &h));
	assert_int_equal(mat_object_drop(e->m, &h), -ENOENT);
	{
		char *names = tmp_names(e);

		assert_string_equal(names, "");
		free(names);
	}
}

static void test_write_creates_with_mode_and_mtime(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;

	tree_changes_init(&ch);
	store(e, "one");
	ch_write(&ch, "a.txt", "one", 0640, MT(1500000000));
	ch_write(&ch, "empty", "", 0600, MT(1400000000));
	apply_ok(e, &ch);
	assert_content(e, "a.txt", "one");
	assert_int_equal(mode_of(e, "a.txt"), 0640);
	assert_int_equal(mtime_of(e, "a.txt"), MT(1500000000));
	assert_content(e, "empty", "");
	assert_int_equal(mtime_of(e, "empty"), MT(1400000000));
	tree_changes_release(&ch);
}

static struct stat stat_of(const struct env *e, const char *rel)
{
	struct stat st;

	assert_int_equal(lstat(pathf(e, rel), &st), 0);
	return st;
}

static bool same_inode(const struct env *e, const char *a, const char *b)
{
	struct stat x = stat_of(e, a), y = stat_of(e, b);

	return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* A WRITE of file node, naming link as the node it was a hard link of. */
static void ch_write_link(struct tree_changes *ch, const char *path,
			  const char *content, uint32_t mode, int64_t mtime,
			  uint64_t node, uint64_t link)
{
	struct tree_change *c;

	ch_write(ch, path, content, mode, mtime);
	c = &ch->v[ch->n - 1];
	c->node = ID(node, 1);
	c->link = link ? ID(link, 1) : WK_ID_NONE;
}

/* Puts that name links land as hard links where every attribute agrees,
 * and as copies otherwise; nothing is left in .wkfs/tmp. */
static void test_writes_that_name_links(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;
	struct stat st;
	char *tmp;

	/* One batch: a and b name each other, c names a but has another
	 * mode, d another mtime; e names a node the batch does not write. */
	tree_changes_init(&ch);
	store(e, "shared\n");
	ch_write_link(&ch, "a", "shared\n", 0644, MT(1500000000), 1, 2);
	ch_write_link(&ch, "b", "shared\n", 0644, MT(1500000000), 2, 1);
	ch_write_link(&ch, "c", "shared\n", 0600, MT(1500000000), 3, 1);
	ch_write_link(&ch, "d", "shared\n", 0644, MT(1500000001), 4, 1);
	ch_write_link(&ch, "e", "shared\n", 0644, MT(1500000000), 5, 9);
	apply_ok(e, &ch);
	tree_changes_release(&ch);
	assert_true(same_inode(e, "a", "b"));
	assert_int_equal(stat_of(e, "a").st_nlink, 2);
	assert_int_equal(stat_of(e, "c").st_nlink, 1);
	assert_int_equal(stat_of(e, "d").st_nlink, 1);
	assert_int_equal(stat_of(e, "e").st_nlink, 1);
	assert_content(e, "b", "shared\n");
	assert_int_equal(mode_of(e, "c"), 0600);
	assert_int_equal(mtime_of(e, "d"), MT(1500000001));

	/* A write through one name: both get new content, linked again,
	 * in a chain (b names a, a names b) listed in any order. */
	tree_changes_init(&ch);
	store(e, "shared\nmore\n");
	ch_write_link(&ch, "b", "shared\nmore\n", 0644, MT(1500000002), 2, 1);
	ch_write_link(&ch, "a", "shared\nmore\n", 0644, MT(1500000002), 1, 2);
	apply_ok(e, &ch);
	tree_changes_release(&ch);
	assert_true(same_inode(e, "a", "b"));
	assert_int_equal(stat_of(e, "a").st_nlink, 2);
	assert_content(e, "a", "shared\nmore\n");

	/* A file the caller found (link_path, link_ino): linked when it is
	 * that inode with that size, copied otherwise.  The caller vouches
	 * for mode and mtime (a SETATTR of a may come later in its batch):
	 * the link sets c's. */
	st = stat_of(e, "a");
	tree_changes_init(&ch);
	ch_write_link(&ch, "f", "shared\nmore\n", 0644, MT(1500000002), 6, 1);
	ch.v[0].link_path = xstrdup("a");
	ch.v[0].link_ino = st.st_ino;
	ch_write_link(&ch, "g", "shared\nmore\n", 0644, MT(1500000002), 7, 1);
	ch.v[1].link_path = xstrdup("a");
	ch.v[1].link_ino = st.st_ino + 1; /* not what is there */
	ch_write_link(&ch, "h", "shared\nmore\n", 0644, MT(1500000003), 8, 1);
	ch.v[2].link_path = xstrdup("a");
	ch.v[2].link_ino = st.st_ino; /* a's mtime is about to change */
	ch_write_link(&ch, "i", "shared\nmore\n", 0644, MT(1500000002), 10, 1);
	ch.v[3].link_path = xstrdup("nowhere");
	ch.v[3].link_ino = st.st_ino;
	apply_ok(e, &ch);
	tree_changes_release(&ch);
	assert_true(same_inode(e, "a", "f"));
	assert_true(same_inode(e, "a", "h"));
	assert_int_equal(stat_of(e, "a").st_nlink, 4);
	assert_int_equal(stat_of(e, "g").st_nlink, 1);
	assert_int_equal(stat_of(e, "i").st_nlink, 1);
	assert_content(e, "g", "shared\nmore\n");
	assert_content(e, "i", "shared\nmore\n");
	assert_int_equal(mtime_of(e, "a"), MT(1500000003));
	assert_int_equal(mtime_of(e, "g"), MT(1500000002));
	tmp = tmp_names(e);
	assert_string_equal(tmp, "");
	free(tmp);
}

static void test_write_replaces_atomically(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;
	struct stat before, after;
	char *p = pathf(e, "f"), buf[16] = "";
	int old;

	writef(p, "old content");
	old = open(p, O_RDONLY);
	fstat(old, &before);
	tree_changes_init(&ch);
	store(e, "new");
	ch_write(&ch, "f", "new", 04755, MT(1234567890));
	apply_ok(e, &ch);
	lstat(p, &after);
	/* A new inode renamed over the name: an open reader keeps the old
	 * file whole. */
	assert_true(before.st_ino != after.st_ino);
	assert_int_equal(pread(old, buf, sizeof(buf) - 1, 0), 11);
	assert_string_equal(buf, "old content");
	close(old);
	assert_content(e, "f", "new");
	/* setuid is dropped from files a change writes */
	assert_int_equal(mode_of(e, "f"), 0755);
	assert_int_equal(mtime_of(e, "f"), MT(1234567890));
	tree_changes_release(&ch);
}

static void test_mkdir_symlink_setattr_remove_rename(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;
	char target[64] = "";
	char *p;

	tree_changes_init(&ch);
	store(e, "x");
	ch_add(&ch, TREE_CH_MKDIR, WK_KIND_DIR, "d")->mode = 0750;
	ch_add(&ch, TREE_CH_MKDIR, WK_KIND_DIR, "d/sub");
	ch_write(&ch, "d/sub/f", "x", 0644, MT(1));
	ch_symlink(&ch, "d/link", "../nowhere/at/all");
	ch_write(&ch, "gone", "x", 0644, MT(1));
	apply_ok(e, &ch);
	tree_changes_release(&ch);
	assert_int_equal(mode_of(e, "d"), 0750);
	assert_int_equal(mtime_of(e, "d"), MT(1600000000));
	p = pathf(e, "d/link");
	assert_int_equal(readlink(p, target, sizeof(target)), 17);
	assert_string_equal(target, "../nowhere/at/all");
	assert_int_equal(mtime_of(e, "d/link"), MT(1600000000));

	tree_changes_init(&ch);
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_FILE, "gone");
	ch_add(&ch, TREE_CH_SETATTR, WK_KIND_FILE, "d/sub/f")->mode = 0600;
	ch_add(&ch, TREE_CH_SETATTR, WK_KIND_SYMLINK, "d/link")->mtime_ns =
		MT(7);
	ch_rename(&ch, WK_KIND_DIR, "d/sub", "moved");
	ch_add(&ch, TREE_CH_SETATTR, WK_KIND_DIR, "d")->mode = 0700;
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_SYMLINK, "d/link");
	apply_ok(e, &ch);
	tree_changes_release(&ch);
	assert_false(exists(e, "gone"));
	assert_false(exists(e, "d/sub"));
	assert_false(exists(e, "d/link"));
	assert_content(e, "moved/f", "x");
	assert_int_equal(mode_of(e, "moved/f"), 0600);
	assert_int_equal(mode_of(e, "d"), 0700);

	tree_changes_init(&ch);
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_FILE, "moved/f");
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_DIR, "moved");
	apply_ok(e, &ch);
	tree_changes_release(&ch);
	assert_false(exists(e, "moved"));
}

/* Directory modes come last: a read-only directory can still be filled,
 * and its mtime is not undone by its children. */
static void test_directory_attrs_come_last(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;

	tree_changes_init(&ch);
	store(e, "c");
	ch_add(&ch, TREE_CH_MKDIR, WK_KIND_DIR, "ro")->mode = 0555;
	ch_add(&ch, TREE_CH_MKDIR, WK_KIND_DIR, "ro/in")->mode = 0500;
	ch_write(&ch, "ro/in/f", "c", 0444, MT(3));
	ch_write(&ch, "ro/g", "c", 0444, MT(3));
	apply_ok(e, &ch);
	assert_int_equal(mode_of(e, "ro"), 0555);
	assert_int_equal(mode_of(e, "ro/in"), 0500);
	assert_int_equal(mtime_of(e, "ro"), MT(1600000000));
	assert_int_equal(mtime_of(e, "ro/in"), MT(1600000000));
	tree_changes_release(&ch);
	chmod(pathf(e, "ro"), 0755); /* so teardown can remove it as a user */
}

/* ---- refusing what must not happen ---- */

static void test_hostile_names_are_refused(void **state)
{
	struct env *e = *state;
	static const char *bad[] = {
		"../x",
		"a/../../x",
		"/abs",
		"",
		"..",
		".",
		"./x",
		"a//b",
		"a/",
		".wkfs",
		".wkfs/config.ini",
		".wkfs/tmp",
		".wkfs/tmp/journal.1",
		".wkfs/tmp/merge-0/x",
		".wkfs/objects/x",
		"../outside/keep",
	};
	struct tree_changes ch;
	char *long_name = xmalloc(300), *long_path = xmalloc(5000), *before;

	memset(long_name, 'n', 256);
	long_name[256] = '\0';
	memset(long_path, 'p', 4999);
	for (int i = 100; i < 4999; i += 101)
		long_path[i] = '/';
	long_path[4999] = '\0';
	store(e, "evil");
	mkdir(pathf(e, "a"), 0755);
	writef(pathf(e, "a/f"), "mine");
	before = dump_dir(e);
	tree_changes_init(&ch);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ch_write(&ch, bad[i], "evil", 0644, MT(1));
		ch_add(&ch, TREE_CH_MKDIR, WK_KIND_DIR, bad[i]);
		ch_symlink(&ch, bad[i], "/etc/passwd");
		ch_add(&ch, TREE_CH_REMOVE, WK_KIND_FILE, bad[i]);
		ch_add(&ch, TREE_CH_SETATTR, WK_KIND_FILE, bad[i]);
		ch_rename(&ch, WK_KIND_FILE, "a/f", bad[i]);
		ch_rename(&ch, WK_KIND_FILE, bad[i], "stolen");
	}
	ch_write(&ch, long_name, "evil", 0644, MT(1));
	ch_write(&ch, long_path, "evil", 0644, MT(1));
	ch_write(&ch, "a/f/x", "evil", 0644, MT(1)); /* parent is a file */
	/* Staging names are for renames only. */
	ch_write(&ch, TREE_STAGE_DIR "/merge-0", "evil", 0644, MT(1));
	ch_add(&ch, TREE_CH_MKDIR, WK_KIND_DIR, TREE_STAGE_DIR "/merge-0");
	ch_symlink(&ch, TREE_STAGE_DIR "/merge-0", "/");
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_FILE, TREE_STAGE_DIR "/merge-0");
	ch_add(&ch, TREE_CH_SETATTR, WK_KIND_FILE, TREE_STAGE_DIR "/merge-0");
	assert_int_not_equal(apply_all_fail(e, &ch), 0);
	tree_changes_release(&ch);
	{
		char *after = dump_dir(e), *names = tmp_names(e);

		assert_string_equal(after, before);
		assert_string_equal(names, "");
		free(after);
		free(names);
	}
	assert_outside_intact(e);
	assert_content(e, "a/f", "mine");
	free(before);
	free(long_name);
	free(long_path);
}

static void planted_symlinks(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;
	char *before;

	assert_int_equal(symlink(e->out, pathf(e, "evil")), 0);
	mkdir(pathf(e, "sub"), 0755);
	assert_int_equal(symlink("/", pathf(e, "sub/root")), 0);
	assert_int_equal(symlink("../../outside", pathf(e, "sub/up")), 0);
	writef(pathf(e, "mine"), "mine");
	store(e, "evil");
	before = dump_dir(e);
	tree_changes_init(&ch);
	ch_write(&ch, "evil/file", "evil", 0644, MT(1));
	ch_write(&ch, "evil/keep", "evil", 0644, MT(1));
	ch_add(&ch, TREE_CH_MKDIR, WK_KIND_DIR, "evil/d");
	ch_symlink(&ch, "evil/l", "x");
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_FILE, "evil/keep");
	ch_add(&ch, TREE_CH_SETATTR, WK_KIND_FILE, "evil/keep")->mode = 0777;
	ch_rename(&ch, WK_KIND_FILE, "evil/keep", "stolen");
	ch_rename(&ch, WK_KIND_FILE, "mine", "evil/mine");
	ch_rename(&ch, WK_KIND_FILE, "mine", "sub/up/mine");
	ch_write(&ch, "sub/root/tmp/wkmat-evil", "evil", 0644, MT(1));
	ch_write(&ch, "sub/up/keep", "evil", 0644, MT(1));
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_FILE, "sub/up/keep");
	assert_int_not_equal(apply_all_fail(e, &ch), 0);
	tree_changes_release(&ch);
	assert_outside_intact(e);
	{
		char *after = dump_dir(e);

		assert_string_equal(after, before);
		free(after);
	}
	assert_false(access("/tmp/wkmat-evil", F_OK) == 0);
	free(before);
}

static void test_planted_symlinks_are_not_followed(void **state)
{
	planted_symlinks(state);
}

/* The same without openat2: the O_NOFOLLOW walk. */
static void test_planted_symlinks_without_openat2(void **state)
{
	struct env *e = *state;

	mat_close(e->m);
	setenv("WKFS_NO_OPENAT2", "1", 1);
	assert_int_equal(mat_open(e->rootfd, &e->m), 0);
	assert_true(e->m->no_openat2);
	planted_symlinks(state);
}

static void test_write_replaces_a_symlink_not_its_target(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;
	char *keep = xasprintf("%s/keep", e->out);
	struct stat st;

	assert_int_equal(symlink(keep, pathf(e, "link")), 0);
	assert_int_equal(symlink(keep, pathf(e, "link2")), 0);
	tree_changes_init(&ch);
	store(e, "replaced");
	ch_write(&ch, "link", "replaced", 0600, MT(2));
	ch_add(&ch, TREE_CH_SETATTR, WK_KIND_SYMLINK, "link2")->mode = 0600;
	apply_ok(e, &ch);
	tree_changes_release(&ch);
	assert_int_equal(lstat(pathf(e, "link"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_content(e, "link", "replaced");
	assert_int_equal(lstat(pathf(e, "link2"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_outside_intact(e);
	free(keep);
}

static void test_nothing_is_clobbered(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;
	struct mat_result res;
	char *before;

	writef(pathf(e, "a"), "a");
	writef(pathf(e, "b"), "b");
	mkdir(pathf(e, "dir"), 0755);
	writef(pathf(e, "dir/x"), "x");
	store(e, "new");
	before = dump_dir(e);
	tree_changes_init(&ch);
	ch_rename(&ch, WK_KIND_FILE, "a", "b");
	ch_add(&ch, TREE_CH_MKDIR, WK_KIND_DIR, "a");
	ch_symlink(&ch, "a", "t");
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_DIR, "a");
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_FILE, "dir");
	ch_add(&ch, TREE_CH_REMOVE, WK_KIND_DIR, "dir");
	ch_write(&ch, "dir", "new", 0644, MT(1));
	ch_rename(&ch, WK_KIND_FILE, "missing", "c");
	ch_add(&ch, TREE_CH_SETATTR, WK_KIND_FILE, "missing");
	assert_int_equal(mat_apply(e->m, &ch, 0, &res), 0);
	assert_int_equal(res.failed, ch.n);
	assert_int_equal(res.first_err, -EEXIST);
	assert_string_equal(res.first_path, "a");
	mat_result_release(&res);
	tree_changes_release(&ch);
	{
		char *after = dump_dir(e);

		assert_string_equal(after, before);
		free(after);
	}
	free(before);
}

/* ---- content ---- */

struct src {
	const char *path;
	int calls;
};

static int source_file(void *arg, const struct tree_change *c)
{
	struct src *s = arg;
	int fd;

	(void)c;
	s->calls++;
	if (!s->path)
		return -ENOENT;
	fd = open(s->path, O_RDONLY);
	return fd < 0 ? -errno : fd;
}

static void test_ready_defers_missing_content(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;
	struct mat_result res;
	struct src s = {NULL, 0};
	char *local = pathf(e, "local");

	tree_changes_init(&ch);
	store(e, "here");
	ch_write(&ch, "a", "here", 0644, MT(1));
	ch_write(&ch, "b", "elsewhere", 0644, MT(1));
	ch_write(&ch, "c", "", 0644, MT(1));
	assert_false(mat_ready(e->m, &ch));
	mat_set_source(e->m, source_file, &s);
	assert_false(mat_ready(e->m, &ch));
	assert_int_equal(s.calls, 1);

	/* Applied anyway: that one change fails, no partial file. */
	assert_int_equal(mat_apply(e->m, &ch, 0, &res), 0);
	assert_int_equal(res.done, 2);
	assert_int_equal(res.failed, 1);
	assert_int_equal(res.first_err, -ENOENT);
	assert_string_equal(res.first_path, "b");
	mat_result_release(&res);
	assert_false(exists(e, "b"));

	/* A local copy offered by the caller. */
	writef(local, "elsewhere");
	s.path = local;
	assert_true(mat_ready(e->m, &ch));
	apply_ok(e, &ch);
	assert_content(e, "b", "elsewhere");

	/* A local copy that changed meanwhile is caught. */
	tree_changes_release(&ch);
	tree_changes_init(&ch);
	writef(local, "edited!!!");
	ch_write(&ch, "d", "elsewhere", 0644, MT(1));
	assert_int_equal(mat_apply(e->m, &ch, 0, &res), 0);
	assert_int_equal(res.first_err, -EBADMSG);
	mat_result_release(&res);
	assert_false(exists(e, "d"));
	{
		char *names = tmp_names(e);

		assert_string_equal(names, "");
		free(names);
	}
	tree_changes_release(&ch);
}

/* ---- staging ---- */

static void test_failed_unstage_puts_entry_back(void **state)
{
	struct env *e = *state;
	struct tree_changes ch;
	struct mat_result res;
	char *names;

	writef(pathf(e, "a"), "a");
	writef(pathf(e, "b"), "b");
	store(e, "new");
	tree_changes_init(&ch);
	ch_rename(&ch, WK_KIND_FILE, "a", TREE_STAGE_DIR "/merge-0");
	ch_rename(&ch, WK_KIND_FILE, "b", TREE_STAGE_DIR "/merge-1");
	ch_write(&ch, "b", "new", 0644, MT(1)); /* b's place is retaken */
	ch_rename(&ch, WK_KIND_FILE, TREE_STAGE_DIR "/merge-0", "no/where");
	ch_rename(&ch, WK_KIND_FILE, TREE_STAGE_DIR "/merge-1", "no/where");
	assert_int_equal(mat_apply(e->m, &ch, 0, &res), 0);
	assert_int_equal(res.failed, 2);
	assert_int_equal(res.stranded, 1);
	mat_result_release(&res);
	tree_changes_release(&ch);
	assert_content(e, "a", "a"); /* put back */
	assert_content(e, "b", "new");
	names = tmp_names(e);
	/* b's old content is kept in staging under the batch's name */
	assert_string_equal(names, "merge-1-1 ");
	free(names);
}

/* ---- batches from the merge engine ---- */

static void put_op(struct wk_op *op, struct wk_id id, struct wk_id node,
		   struct wk_id base, const char *content)
{
	tl_put(op, id, node, base, 0);
	op->hash = hash_of(content);
	op->size = strlen(content);
	op->mtime_ns = MT(1700000000) + (int64_t)id.hlc % 1000;
}

static const char *contents[] = {"alpha", "beta",    "gamma",
				 "delta", "epsilon", "zeta"};

/* Round 1: a tree with files, a directory, a symlink. */
static size_t round1(struct wk_op *o)
{
	size_t n = 0;

	tl_mkdir(&o[n++], ID(1, 1), WK_ID_ROOT, "docs");
	tl_mkdir(&o[n++], ID(2, 1), ID(1, 1), "deep");
	tl_create(&o[n++], ID(3, 1), WK_ID_ROOT, "a.txt");
	put_op(&o[n++], ID(4, 1), ID(3, 1), WK_ID_NONE, "alpha");
	tl_create(&o[n++], ID(5, 1), WK_ID_ROOT, "b.txt");
	put_op(&o[n++], ID(6, 1), ID(5, 1), WK_ID_NONE, "beta");
	tl_create(&o[n++], ID(7, 1), ID(2, 1), "c.txt");
	put_op(&o[n++], ID(8, 1), ID(7, 1), WK_ID_NONE, "gamma");
	tl_symlink(&o[n++], ID(9, 1), ID(1, 1), "ln", "../a.txt");
	tl_create(&o[n++], ID(10, 1), WK_ID_ROOT, "old");
	put_op(&o[n++], ID(11, 1), ID(10, 1), WK_ID_NONE, "delta");
	tl_create(&o[n++], ID(12, 1), ID(1, 1), "empty");
	return n;
}

/* Round 2: a swap, a directory move, an edit, a remove, new entries. */
static size_t round2(struct wk_op *o)
{
	size_t n = 0;

	tl_move(&o[n++], ID(20, 2), ID(3, 1), WK_ID_ROOT, "tmp-swap");
	tl_move(&o[n++], ID(21, 2), ID(5, 1), WK_ID_ROOT, "a.txt");
	tl_move(&o[n++], ID(22, 2), ID(3, 1), WK_ID_ROOT, "b.txt");
	tl_move(&o[n++], ID(23, 2), ID(2, 1), WK_ID_ROOT, "deep");
	put_op(&o[n++], ID(24, 2), ID(7, 1), ID(8, 1), "epsilon");
	tl_remove(&o[n++], ID(25, 2), ID(10, 1), ID(11, 1));
	tl_mkdir(&o[n++], ID(26, 2), ID(1, 1), "new");
	tl_create(&o[n++], ID(27, 2), ID(26, 2), "n.txt");
	put_op(&o[n++], ID(28, 2), ID(27, 2), WK_ID_NONE, "zeta");
	tl_chmod(&o[n++], ID(29, 2), ID(5, 1), 0600);
	tl_symlink(&o[n++], ID(30, 2), ID(26, 2), "up", "..");
	tl_move(&o[n++], ID(31, 2), ID(12, 1), ID(2, 1), "empty-moved");
	return n;
}

struct batches {
	struct tree *t;
	struct tree_changes r1, r2;
	char *dump1, *dump2;
};

static void batches_make(struct batches *b)
{
	struct wk_op *ops = xcalloc(32, sizeof(*ops));
	size_t n;

	b->t = tree_new();
	tree_changes_init(&b->r1);
	tree_changes_init(&b->r2);
	n = round1(ops);
	tree_apply(b->t, ops, n, &b->r1);
	b->dump1 = tree_dump(b->t);
	n = round2(ops);
	tree_apply(b->t, ops, n, &b->r2);
	b->dump2 = tree_dump(b->t);
	free(ops);
}

static void batches_free(struct batches *b)
{
	tree_changes_release(&b->r1);
	tree_changes_release(&b->r2);
	free(b->dump1);
	free(b->dump2);
	tree_free(b->t);
}

static void store_all(struct env *e)
{
	for (size_t i = 0; i < sizeof(contents) / sizeof(*contents); i++)
		store(e, contents[i]);
}

/*
 * A directory's mtime changes whenever its entries do, and the engine
 * only carries the mtimes of directories it creates or sets attributes
 * on, so the comparison leaves directory mtimes out.
 */
static char *mask_dir_mtimes(const char *dump)
{
	char *out = xstrdup(""), *copy = xstrdup(dump), *save = NULL;

	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char path[PATH_MAX], kind, rest[PATH_MAX];
		unsigned mode;
		long long mt;
		char *next;

		if (sscanf(l, "%s %c %o %lld %[^\n]", path, &kind, &mode, &mt,
			   rest) != 5)
			fail_msg("bad dump line %s", l);
		if (kind == 'd')
			next = xasprintf("%s%s d %04o * %s\n", out, path, mode,
					 rest);
		else
			next = xasprintf("%s%s\n", out, l);
		free(out);
		out = next;
	}
	free(copy);
	return out;
}

static void assert_dump(struct env *e, const char *want)
{
	char *got = dump_dir(e), *mg = mask_dir_mtimes(got),
	     *mw = mask_dir_mtimes(want);

	assert_string_equal(mg, mw);
	free(got);
	free(mg);
	free(mw);
}

static void test_engine_batches_match_the_tree(void **state)
{
	struct env *e = *state;
	struct batches b;
	char *names;

	batches_make(&b);
	store_all(e);
	assert_true(mat_ready(e->m, &b.r1));
	apply_ok(e, &b.r1);
	assert_dump(e, b.dump1);
	assert_true(mat_ready(e->m, &b.r2));
	apply_ok(e, &b.r2);
	assert_dump(e, b.dump2);
	names = tmp_names(e);
	assert_string_equal(names, "");
	free(names);
	batches_free(&b);
}

/*
 * A list without reused paths can run again as a whole: every step finds
 * its effect and does nothing.  (A list that reuses a path, such as a
 * swap through staging, cannot: run again it would swap back.  Resuming
 * after a crash relies on the journal's progress marks for that, and on
 * the step in flight being idempotent: test_every_step_can_run_twice.)
 */
static void test_reexecution_is_idempotent(void **state)
{
	struct env *e = *state;
	struct batches b;

	batches_make(&b);
	store_all(e);
	apply_ok(e, &b.r1);
	apply_ok(e, &b.r1);
	assert_dump(e, b.dump1);
	batches_free(&b);
}

static int notified;

static void count_notify(void *arg, enum tree_change_kind kind,
			 const char *path, const char *new_path)
{
	(void)arg;
	assert_true(kind >= TREE_CH_REMOVE && kind <= TREE_CH_SETATTR);
	assert_non_null(path);
	assert_true((kind == TREE_CH_RENAME) == (new_path != NULL));
	notified++;
}

static void test_notify_names_each_change(void **state)
{
	struct env *e = *state;
	struct batches b;

	batches_make(&b);
	store_all(e);
	mat_set_notify(e->m, count_notify, NULL);
	notified = 0;
	apply_ok(e, &b.r1);
	assert_int_equal(notified, b.r1.n);
	batches_free(&b);
}

/* ---- crashes ---- */

/* Every regular file in DIR holds one of the known contents, whole. */
static int torn_one(const char *p, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	char *got;
	bool known = false;

	(void)ftw;
	if (strstr(p, "/.wkfs"))
		return FTW_SKIP_SUBTREE;
	if (flag != FTW_F || !S_ISREG(st->st_mode))
		return FTW_CONTINUE;
	got = readf(p);
	if (!got)
		return 1;
	known = *got == '\0';
	for (size_t i = 0; i < sizeof(contents) / sizeof(*contents); i++)
		if (strcmp(got, contents[i]) == 0)
			known = true;
	free(got);
	return known ? FTW_CONTINUE : 1;
}

static void assert_no_torn_file(const struct env *e)
{
	assert_int_equal(
		nftw(e->dir, torn_one, 16, FTW_PHYS | FTW_ACTIONRETVAL), 0);
}

/* Runs mat_apply of a batch tagged tag (recover when ch is NULL) in a
 * child armed with fault at hit k; returns its exit status (FAULT_EXIT:
 * it died there). */
static int crash_child_tagged(struct env *e, const struct tree_changes *ch,
			      uint64_t tag, const char *fault, int k)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct mat_result res;
		struct mat *m;
		char at[16];

		snprintf(at, sizeof(at), "%d", k);
		setenv("WKFS_FAULT", fault, 1);
		setenv("WKFS_FAULT_AT", at, 1);
		if (mat_open(e->rootfd, &m) < 0)
			_exit(2);
		if ((ch ? mat_apply(m, ch, tag, &res) : mat_recover(m, &res)) <
			    0 ||
		    res.failed)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int crash_child(struct env *e, const struct tree_changes *ch,
		       const char *fault, int k)
{
	return crash_child_tagged(e, ch, 0, fault, k);
}

/* Round 1 applied once, with every content stored: the template each
 * crash starts from (copied, so the crash tests pay for its fsyncs once). */
static char template_dir[1100];

static void reopen(struct env *e)
{
	mat_close(e->m);
	close(e->rootfd);
	e->rootfd = open(e->dir, O_RDONLY | O_DIRECTORY);
	assert_true(e->rootfd >= 0);
	assert_int_equal(mat_open(e->rootfd, &e->m), 0);
}

/* A fresh DIR at round 1, with every content stored. */
static void fresh_round1(struct env *e, struct batches *b)
{
	char *cmd;

	snprintf(template_dir, sizeof(template_dir), "%s/template", e->base);
	if (access(template_dir, F_OK) != 0) {
		store_all(e);
		apply_ok(e, &b->r1);
		cmd = xasprintf("cp -a %s %s", e->dir, template_dir);
		assert_int_equal(system(cmd), 0);
		free(cmd);
	}
	rm_rf(e->dir);
	cmd = xasprintf("cp -a %s %s", template_dir, e->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	reopen(e);
}

static void recover_ok(struct env *e, const char *want)
{
	struct mat_result res;
	char *names;

	reopen(e);
	assert_int_equal(mat_recover(e->m, &res), 0);
	assert_int_equal(res.failed, 0);
	assert_int_equal(res.stranded, 0);
	mat_result_release(&res);
	assert_dump(e, want);
	names = tmp_names(e);
	assert_string_equal(names, "");
	free(names);
}

/* Crashes batch 2 at hit k of fault; false once k is past the last hit. */
static bool crash_and_recover(struct env *e, struct batches *b,
			      const char *fault, int k)
{
	int st;

	fresh_round1(e, b);
	st = crash_child(e, &b->r2, fault, k);
	if (st == 0) {
		assert_dump(e, b->dump2);
		return false;
	}
	assert_int_equal(st, FAULT_EXIT);
	assert_no_torn_file(e);
	recover_ok(e, b->dump2);
	return true;
}

/*
 * The crash tests kill a process, never the machine: what the page cache
 * holds survives, so they run with WKFS_NOSYNC (no fsync) to stay fast.
 * The other tests run with every fsync.
 */
static int setup_nosync(void **state)
{
	setenv("WKFS_NOSYNC", "1", 1);
	return setup(state);
}

static int teardown_nosync(void **state)
{
	unsetenv("WKFS_NOSYNC");
	return teardown(state);
}

static void test_crash_at_every_fault_point(void **state)
{
	static const char *points[] = {"mat.after_journal", "mat.before_rename",
				       "mat.after_rename", "mat.mid_batch",
				       "mat.before_finish"};
	struct env *e = *state;
	struct batches b;
	int crashes = 0;

	batches_make(&b);
	for (size_t i = 0; i < sizeof(points) / sizeof(*points); i++) {
		int k = 1;

		while (crash_and_recover(e, &b, points[i], k))
			k++, crashes++;
		assert_true(k > 1); /* the point was reached at least once */
	}
	/* every mid_batch position, and then some */
	assert_true(crashes > (int)b.r2.n);
	batches_free(&b);
}

/* Recovers and expects tag reported, then nothing once forgotten. */
static void recover_tag(struct env *e, uint64_t tag, const char *want)
{
	struct mat_result res;
	char *names;

	reopen(e);
	assert_int_equal(mat_recover(e->m, &res), 0);
	assert_int_equal(res.failed, 0);
	assert_int_equal(res.tag, tag);
	mat_result_release(&res);
	assert_dump(e, want);
	/* Until forgotten, every start hears of it again. */
	reopen(e);
	assert_int_equal(mat_recover(e->m, &res), 0);
	assert_int_equal(res.tag, tag);
	assert_int_equal(res.done, 0);
	mat_result_release(&res);
	assert_int_equal(mat_forget(e->m), 0);
	names = tmp_names(e);
	assert_string_equal(names, "");
	free(names);
	reopen(e);
	assert_int_equal(mat_recover(e->m, &res), 0);
	assert_int_equal(res.tag, 0);
	mat_result_release(&res);
	assert_dump(e, want);
}

/*
 * A tagged batch (the mount tags each with the applied_seq it reaches)
 * is reported by mat_recover() until mat_forget(), whether it finished or
 * a crash cut it short anywhere: a caller that dies before recording the
 * tag learns it at the next start instead of applying the batch again.
 */
static void test_tagged_batch_is_reported_until_forgotten(void **state)
{
	static const char *points[] = {"mat.after_journal", "mat.before_rename",
				       "mat.after_rename", "mat.mid_batch",
				       "mat.before_finish"};
	struct env *e = *state;
	struct mat_result res;
	struct batches b;
	char *names;

	batches_make(&b);
	fresh_round1(e, &b);
	assert_int_equal(mat_apply(e->m, &b.r2, 42, &res), 0);
	assert_int_equal(res.failed, 0);
	assert_int_equal(res.tag, 42);
	mat_result_release(&res);
	names = tmp_names(e);
	assert_string_equal(names, "done.1 ");
	free(names);
	recover_tag(e, 42, b.dump2);

	for (size_t i = 0; i < sizeof(points) / sizeof(*points); i++) {
		fresh_round1(e, &b);
		assert_int_equal(
			crash_child_tagged(e, &b.r2, 7 + i, points[i], 1),
			FAULT_EXIT);
		assert_no_torn_file(e);
		recover_tag(e, 7 + i, b.dump2);
	}
	batches_free(&b);
}

static char *journal_path(const struct env *e);

/* A crash after step k's effect but before its progress mark: recovery
 * runs step k again, for every k (every kind of step). */
static void test_every_step_can_run_twice(void **state)
{
	struct env *e = *state;
	struct batches b;

	batches_make(&b);
	for (size_t k = 1; k <= b.r2.n; k++) {
		struct tree_changes ch;
		size_t start, poff;
		uint64_t tag;
		uint8_t *buf = xmalloc(1 << 16);
		char *jp;
		ssize_t len;
		int fd;

		fresh_round1(e, &b);
		assert_int_equal(crash_child(e, &b.r2, "mat.mid_batch", (int)k),
				 FAULT_EXIT);
		jp = journal_path(e);
		fd = open(jp, O_RDWR);
		len = read(fd, buf, 1 << 16);
		tree_changes_init(&ch);
		assert_int_equal(mat_journal_decode(1, buf, (size_t)len, &ch,
						    &tag, &start, &poff),
				 0);
		assert_int_equal(start, k);
		assert_int_equal(pwrite(fd, "", 1, (off_t)(poff + k - 1)), 1);
		close(fd);
		tree_changes_release(&ch);
		free(buf);
		free(jp);
		recover_ok(e, b.dump2);
	}
	batches_free(&b);
}

/* A crash while recovering from a crash. */
static void test_crash_during_recovery(void **state)
{
	struct env *e = *state;
	struct batches b;

	batches_make(&b);
	fresh_round1(e, &b);
	assert_int_equal(crash_child(e, &b.r2, "mat.mid_batch", 3), FAULT_EXIT);
	assert_int_equal(crash_child(e, NULL, "mat.before_rename", 2),
			 FAULT_EXIT);
	assert_no_torn_file(e);
	assert_int_equal(crash_child(e, NULL, "mat.mid_batch", 2), FAULT_EXIT);
	assert_no_torn_file(e);
	recover_ok(e, b.dump2);
	batches_free(&b);
}

/* ---- corrupt journals ---- */

static char *journal_path(const struct env *e)
{
	char *cmd = xasprintf("ls %s/.wkfs/tmp/journal.* 2>/dev/null", e->dir);
	FILE *f = popen(cmd, "r");
	char buf[PATH_MAX] = "";

	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	pclose(f);
	free(cmd);
	buf[strcspn(buf, "\n")] = '\0';
	return xstrdup(buf);
}

static void test_corrupt_journal_is_refused(void **state)
{
	struct env *e = *state;
	struct mat_result res;
	struct batches b;
	char *jp, *names, *bad;
	int fd;

	batches_make(&b);
	fresh_round1(e, &b);
	assert_int_equal(crash_child(e, &b.r2, "mat.after_journal", 1),
			 FAULT_EXIT);
	jp = journal_path(e);
	assert_true(*jp);
	/* One flipped byte in the middle of the list. */
	fd = open(jp, O_RDWR);
	{
		uint8_t c;

		assert_int_equal(pread(fd, &c, 1, 40), 1);
		c ^= 0x10;
		assert_int_equal(pwrite(fd, &c, 1, 40), 1);
	}
	close(fd);
	mat_close(e->m);
	assert_int_equal(mat_open(e->rootfd, &e->m), 0);
	assert_int_equal(mat_recover(e->m, &res), -EBADMSG);
	assert_int_equal(res.done, 0);
	mat_result_release(&res);
	assert_dump(e, b.dump1); /* nothing was executed */
	bad = xasprintf("%s.bad", strrchr(jp, '/') + 1);
	names = tmp_names(e);
	assert_non_null(strstr(names, bad));
	free(names);
	free(bad);

	/* Garbage, an empty file, a symlink: refused, set aside. */
	writef(pathf(e, ".wkfs/tmp/journal.900"), "not a journal at all");
	writef(pathf(e, ".wkfs/tmp/journal.901"), "");
	assert_int_equal(
		symlink("/etc/passwd", pathf(e, ".wkfs/tmp/journal.902")), 0);
	assert_int_equal(mat_recover(e->m, &res), -EBADMSG);
	mat_result_release(&res);
	assert_false(exists(e, ".wkfs/tmp/journal.900"));
	assert_true(exists(e, ".wkfs/tmp/journal.901.bad"));
	assert_true(exists(e, ".wkfs/tmp/journal.902.bad"));
	assert_dump(e, b.dump1);
	assert_outside_intact(e);
	/* New batches are numbered past the bad ones. */
	assert_true(e->m->seq > 902);
	free(jp);
	batches_free(&b);
}

/* Every truncation and many mutations of a real journal decode to a
 * list or -EBADMSG, never a crash (run under ASan in SAN=1). */
static void test_journal_decoder_survives_garbage(void **state)
{
	struct batches b;
	uint8_t *buf, *copy;
	size_t len, poff, start, p2;
	uint64_t rng = 7, tag;
	int ok = 0;

	(void)state;
	batches_make(&b);
	assert_int_equal(mat_journal_encode(5, 77, &b.r2, &buf, &len, &poff),
			 0);
	copy = xmalloc(len);
	for (size_t cut = 0; cut <= len; cut++) {
		struct tree_changes ch;
		int rc;

		tree_changes_init(&ch);
		memcpy(copy, buf, cut);
		rc = mat_journal_decode(5, copy, cut, &ch, &tag, &start, &p2);
		assert_true(rc == -EBADMSG || (rc == 0 && cut == len));
		ok += rc == 0;
		tree_changes_release(&ch);
	}
	assert_int_equal(ok, 1);
	for (int i = 0; i < 20000; i++) {
		struct tree_changes ch;
		int rc;

		memcpy(copy, buf, len);
		for (int k = 0; k < 1 + i % 4; k++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			copy[rng % len] ^= (uint8_t)(1u << (rng >> 32) % 8);
		}
		/* Half the time with a checksum that fits, so the parser
		 * itself meets the damage. */
		if (i % 2) {
			uint64_t h = XXH3_64bits(copy, poff - 8);

			for (int k = 0; k < 8; k++)
				copy[poff - 8 + k] =
					(uint8_t)(h >> (56 - 8 * k));
		}
		tree_changes_init(&ch);
		rc = mat_journal_decode(5, copy, len, &ch, &tag, &start, &p2);
		assert_true(rc == 0 || rc == -EBADMSG);
		if (rc == 0)
			assert_int_equal(ch.n, b.r2.n);
		ok += rc == 0;
		tree_changes_release(&ch);
	}
	{
		/* A huge count allocates nothing. */
		static const uint8_t huge[] = {'W',  'K',  'F',	 'S', 'J',
					       'N',  'L',  '2',	 5,   0,
					       0xff, 0xff, 0xff, 0x07};
		struct tree_changes ch;

		tree_changes_init(&ch);
		assert_int_equal(mat_journal_decode(5, huge, sizeof(huge), &ch,
						    &tag, &start, &p2),
				 -EBADMSG);
		/* wrong batch number */
		assert_int_equal(
			mat_journal_decode(6, buf, len, &ch, &tag, &start, &p2),
			-EBADMSG);
		/* a progress byte that is neither 0 nor 1 */
		memcpy(copy, buf, len);
		copy[poff + 1] = 2;
		assert_int_equal(mat_journal_decode(5, copy, len, &ch, &tag,
						    &start, &p2),
				 -EBADMSG);
		/* done steps must be a prefix */
		copy[poff + 1] = 1;
		assert_int_equal(mat_journal_decode(5, copy, len, &ch, &tag,
						    &start, &p2),
				 -EBADMSG);
		copy[poff] = 1;
		assert_int_equal(mat_journal_decode(5, copy, len, &ch, &tag,
						    &start, &p2),
				 0);
		assert_int_equal(start, 2);
		assert_int_equal(tag, 77);
		tree_changes_release(&ch);
	}
	{
		/* A journal of the first format (no tag) reads as tag 0: the
		 * same bytes without the tag, checksummed again. */
		struct tree_changes ch;
		uint64_t h;

		tree_changes_init(&ch);
		memcpy(copy, buf, 9);
		copy[7] = '1';
		memcpy(copy + 9, buf + 10, len - 10);
		h = XXH3_64bits(copy, poff - 9);
		for (int k = 0; k < 8; k++)
			copy[poff - 9 + k] = (uint8_t)(h >> (56 - 8 * k));
		assert_int_equal(mat_journal_decode(5, copy, len - 1, &ch, &tag,
						    &start, &p2),
				 0);
		assert_int_equal(tag, 0);
		assert_int_equal(ch.n, b.r2.n);
		assert_int_equal(p2, poff - 1);
		tree_changes_release(&ch);
	}
	free(copy);
	free(buf);
	batches_free(&b);
}

static void test_recover_removes_stale_temporaries(void **state)
{
	struct env *e = *state;
	struct mat_result res;
	char *names;

	writef(pathf(e, ".wkfs/tmp/w.1.2"), "half a file");
	writef(pathf(e, ".wkfs/tmp/j.1.3"), "half a journal");
	assert_int_equal(mat_recover(e->m, &res), 0);
	mat_result_release(&res);
	names = tmp_names(e);
	assert_string_equal(names, "");
	free(names);
}

/* ---- dropping objects (mat_gc) ---- */

/* Appends a put of content (origin as given) as op number k. */
static void gc_put(struct wkdb *db, uint64_t k, const char *content,
		   enum db_origin origin, struct wk_op *out)
{
	struct wk_op op;

	memset(&op, 0, sizeof(op));
	op.id = (struct wk_id){1000 + k, 7};
	op.kind = WK_OP_PUT;
	op.node = (struct wk_id){1, 7};
	op.hash = hash_of(content);
	op.size = strlen(content);
	assert_int_equal(db_op_append(db, &op, origin, NULL), 0);
	if (out)
		*out = op;
}

static bool have(struct env *e, const char *content)
{
	struct wk_hash h = hash_of(content);

	return mat_object_have(e->m, &h);
}

/*
 * Only objects that applied remote puts name, and no pending remote put
 * does, are dropped: a stray object (content stored before its ops) and
 * one only a local put names stay.
 */
static void test_gc_drops_only_what_applied_puts_left(void **state)
{
	static const char *all[] = {"applied", "pending", "both", "stray",
				    "local"};
	struct env *e = *state;
	struct wk_op late[2];
	struct mat_gc g;
	struct wkdb *db;
	char err[256];

	for (size_t i = 0; i < 5; i++)
		store(e, all[i]);
	assert_int_equal(
		db_open_at(e->rootfd, DB_CREATE, &db, err, sizeof(err)), 0);
	gc_put(db, 1, "applied", DB_ORIGIN_REMOTE, NULL);
	gc_put(db, 2, "both", DB_ORIGIN_REMOTE, NULL);
	gc_put(db, 3, "local", DB_ORIGIN_LOCAL, NULL);
	/* applied_seq 3; these two are pending: */
	gc_put(db, 4, "pending", DB_ORIGIN_REMOTE, &late[0]);
	gc_put(db, 5, "both", DB_ORIGIN_REMOTE, &late[1]);

	assert_int_equal(mat_gc_sweep(e->m, db, 3), 0);
	assert_false(have(e, "applied"));
	for (size_t i = 1; i < 5; i++)
		assert_true(have(e, all[i]));

	/* The pending two get applied: their objects go, nothing else. */
	mat_gc_init(&g);
	mat_gc_note(&g, late, 2);
	assert_int_equal(mat_gc_run(&g, e->m, db, 5), 0);
	assert_int_equal(g.n, 0);
	assert_false(have(e, "pending"));
	assert_false(have(e, "both"));
	assert_true(have(e, "stray"));
	assert_true(have(e, "local"));
	/* Noted while a later put still needs it: kept. */
	gc_put(db, 6, "stray", DB_ORIGIN_REMOTE, &late[0]);
	mat_gc_note(&g, late, 1);
	assert_int_equal(mat_gc_run(&g, e->m, db, 5), 0);
	assert_true(have(e, "stray"));
	mat_gc_release(&g);
	db_close(db);
}

#define T(f)  cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TN(f) cmocka_unit_test_setup_teardown(f, setup_nosync, teardown_nosync)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_object_store),
		T(test_write_creates_with_mode_and_mtime),
		T(test_write_replaces_atomically),
		T(test_mkdir_symlink_setattr_remove_rename),
		T(test_directory_attrs_come_last),
		T(test_hostile_names_are_refused),
		T(test_planted_symlinks_are_not_followed),
		T(test_planted_symlinks_without_openat2),
		T(test_write_replaces_a_symlink_not_its_target),
		T(test_nothing_is_clobbered),
		T(test_ready_defers_missing_content),
		T(test_failed_unstage_puts_entry_back),
		T(test_writes_that_name_links),
		T(test_engine_batches_match_the_tree),
		T(test_reexecution_is_idempotent),
		T(test_notify_names_each_change),
		TN(test_crash_at_every_fault_point),
		TN(test_every_step_can_run_twice),
		T(test_crash_during_recovery),
		T(test_corrupt_journal_is_refused),
		T(test_journal_decoder_survives_garbage),
		T(test_recover_removes_stale_temporaries),
		TN(test_tagged_batch_is_reported_until_forgotten),
		T(test_gc_drops_only_what_applied_puts_left),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
