/*
 * syncd_local.c - chunks of a put being fetched, found in contents this
 * replica already holds (see content_int.h for the calling sequence).
 *
 * The recipe cache says which contents hold a chunk name, and where; this
 * file finds those contents: an object in .wkfs/objects, else a file in DIR
 * whose nodes row has that hash.  The put's own file (the version it
 * replaces, when this replica has one) is looked at first: if its recipe
 * is not cached yet it is cut into chunks once (and cached, at epoch 0:
 * nothing says the relay has them).
 *
 * DIR is read through the syncd's directory fd, which is the mount's when
 * DIR is mounted in place, so the backing files are read, not the mount.
 * Nothing read here is trusted: local_read() hashes every chunk against
 * its name, and files may change or vanish at any moment (a failed read
 * only means the chunk is fetched).  Only regular files are opened, never
 * following a symlink at the last component, and never blocking (a FIFO
 * where a file was is skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content.h"
#include "content_int.h"
#include "materialize.h"
#include "recipe_cache.h"
#include "wlog.h"

struct local_src {
	struct wk_hash hash; /* a content */
	int fd;		     /* a file holding it, or -1: none here */
};

void local_init(struct local *lc, struct syncd *s, const struct wk_op *op)
{
	memset(lc, 0, sizeof(*lc));
	lc->s = s;
	lc->op = op;
}

void local_release(struct local *lc)
{
	for (size_t i = 0; i < lc->n; i++)
		if (lc->v[i].fd >= 0)
			close(lc->v[i].fd);
	free(lc->v);
	memset(lc, 0, sizeof(*lc));
}

/* A regular file beneath DIR, opened for reading: fd or -1. */
static int open_regular(struct syncd *s, const char *path)
{
	struct stat st;
	int fd = openat(s->dirfd, path,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	return fd;
}

struct node_match {
	struct wk_hash hash;
	struct wk_id id;
	bool found;
};

static int match_node(void *arg, const struct db_node *n)
{
	struct node_match *m = arg;

	if (n->kind != WK_KIND_FILE || !n->has_hash ||
	    memcmp(&n->hash, &m->hash, sizeof(m->hash)) != 0)
		return 0;
	m->id = n->id;
	m->found = true;
	return 1;
}

/* A file in DIR that the nodes table says has content h: fd or -1.  One
 * walk of the nodes table per content, and few contents per put. */
static int open_node_file(struct syncd *s, const struct wk_hash *h)
{
	struct node_match m = {.hash = *h};
	struct wk_hash nh;
	char path[4096];
	bool has_hash;

	if (db_nodes_foreach(s->db, match_node, &m) != 1 || !m.found)
		return -1;
	if (content_node_path(s, m.id, path, sizeof(path), &has_hash, &nh))
		return -1;
	return open_regular(s, path);
}

static void add_src(struct local *lc, const struct wk_hash *h, int fd)
{
	if (lc->n == lc->alloc) {
		size_t na = lc->alloc ? 2 * lc->alloc : 8;
		struct local_src *v = realloc(lc->v, na * sizeof(*v));

		if (!v) {
			if (fd >= 0)
				close(fd);
			return;
		}
		lc->v = v;
		lc->alloc = na;
	}
	lc->v[lc->n++] = (struct local_src){.hash = *h, .fd = fd};
}

/* A file holding content h (looked for once per put): fd or -1. */
static int src_fd(struct local *lc, const struct wk_hash *h)
{
	int fd;

	for (size_t i = 0; i < lc->n; i++)
		if (!memcmp(&lc->v[i].hash, h, sizeof(*h)))
			return lc->v[i].fd;
	/* The store, including objects put but not yet flushed. */
	fd = mat_object_open(lc->s->mat, h);
	if (fd < 0)
		fd = open_node_file(lc->s, h);
	add_src(lc, h, fd);
	return fd;
}

/*
 * The put's own file: the version this replica holds of what the put
 * replaces.  Its recipe is usually cached (it was shipped or fetched);
 * if not, one read makes it so.
 */
static void look_at_own_file(struct local *lc)
{
	struct syncd *s = lc->s;
	struct recipe r;
	struct wk_hash nh, h;
	char path[4096];
	bool has_hash = false;
	uint64_t epoch, size;
	int fd;

	lc->node_seen = true;
	if (content_node_path(s, lc->op->node, path, sizeof(path), &has_hash,
			      &nh) ||
	    !has_hash)
		return;
	fd = open_regular(s, path);
	if (fd < 0)
		return;
	if (rcache_epoch(s->rcache, &nh, &epoch) == 0) {
		add_src(lc, &nh, fd);
		return;
	}
	if (rcache_chunk_fd(fd, &r, &h, &size)) {
		close(fd);
		return;
	}
	/* Cached under the hash of what was read, whatever the nodes row
	 * says: the file may have changed since it was recorded. */
	if (r.n > 1)
		rcache_put(s->rcache, &h, &r, 0);
	recipe_release(&r);
	add_src(lc, &h, fd);
}

static int has_place(void *arg, const struct wk_hash *content, uint64_t off,
		     uint64_t epoch)
{
	return src_fd(arg, content) >= 0;
}

bool local_has(struct local *lc, const struct recipe_entry *e)
{
	if (!lc->s->rcache)
		return false;
	if (!lc->node_seen)
		look_at_own_file(lc);
	return rcache_find(lc->s->rcache, &e->name, e->len, has_place, lc) == 1;
}

struct reading {
	struct local *lc;
	const struct recipe_entry *e;
	uint8_t *buf;
};

static int read_place(void *arg, const struct wk_hash *content, uint64_t off,
		      uint64_t epoch)
{
	struct reading *rd = arg;
	struct wk_hash h;
	size_t got = 0;
	int fd = src_fd(rd->lc, content);

	if (fd < 0)
		return 0;
	while (got < rd->e->len) {
		ssize_t k = pread(fd, rd->buf + got, rd->e->len - got,
				  (off_t)(off + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return 0;
		got += (size_t)k;
	}
	content_hash_buf(rd->buf, got, &h);
	return !memcmp(&h, &rd->e->name, sizeof(h));
}

int local_read(struct local *lc, const struct recipe_entry *e, uint8_t *buf)
{
	struct reading rd = {.lc = lc, .e = e, .buf = buf};

	if (!lc->s->rcache)
		return -ENOENT;
	return rcache_find(lc->s->rcache, &e->name, e->len, read_place, &rd) ==
			       1
		       ? 0
		       : -ENOENT;
}
