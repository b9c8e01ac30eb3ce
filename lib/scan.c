/*
 * scan.c - compare the backing directory with the tracked tree (scan.h).
 *
 * Four passes over a flat list of what is on disk, parents before children:
 *   1. walk the disk (skipping .wkfs, and ignored paths nothing tracks)
 *   2. match entries to nodes by path, with the same kind   (mark MATCHED)
 *   3. match the rest to unmatched nodes by inode number    (mark MOVED)
 *      -> everything still unmarked would be removed: the mass-delete check
 *   4. record: moves, creates, content and mode changes, then removals
 */
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "content.h"
#include "wlog.h"
#include "xalloc.h"

enum { MARK_NONE, MARK_MATCHED, MARK_MOVED, MARK_NEW };

/*
 * One entry on disk.  A folder of a million files makes a million of these,
 * so they keep only what the passes compare (not the whole struct stat), and
 * their names sit end to end in one buffer; paths are made when needed.
 */
struct bentry {
	ssize_t parent; /* index in the list, -1 for the top's children */
	size_t name;	/* offset in walk.names */
	uint32_t mode;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
	struct nnode *node; /* the node it becomes */
};

struct walk {
	struct recorder *r;
	const char *top; /* path of the walk's top below the root, "" */
	struct bentry *v;
	size_t n, cap;
	char *names; /* each NUL-terminated */
	size_t nlen, ncap;
	char *path; /* scratch for walk_dir and entry_path */
	size_t pcap;
};

static enum wk_kind kind_of(mode_t m)
{
	if (S_ISDIR(m))
		return WK_KIND_DIR;
	if (S_ISLNK(m))
		return WK_KIND_SYMLINK;
	if (S_ISREG(m))
		return WK_KIND_FILE;
	return 0; /* sockets, fifos, devices: not synced */
}

static int64_t mtime_ns(const struct stat *st)
{
	return st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static const char *bname(const struct walk *w, const struct bentry *b)
{
	return w->names + b->name;
}

static void path_reserve(struct walk *w, size_t len)
{
	if (len <= w->pcap)
		return;
	while (w->pcap < len)
		w->pcap = w->pcap ? 2 * w->pcap : 4096;
	w->path = xrealloc(w->path, w->pcap);
}

/* w->path from offset at on becomes "/name" ("name" at 0); returns the
 * new length. */
static size_t path_append(struct walk *w, size_t at, const char *name)
{
	size_t len = strlen(name);

	path_reserve(w, at + len + 2);
	if (at)
		w->path[at++] = '/';
	memcpy(w->path + at, name, len + 1);
	return at + len;
}

/* The path of entry i below the root, in w->path (valid until the next
 * call). */
static const char *entry_path(struct walk *w, size_t i)
{
	size_t len = strlen(w->top), at;
	ssize_t j;

	for (j = (ssize_t)i; j >= 0; j = w->v[j].parent)
		len += strlen(bname(w, &w->v[j])) + 1;
	if (!w->top[0])
		len--; /* no slash before the first name */
	path_reserve(w, len + 1);
	w->path[len] = '\0';
	at = len;
	for (j = (ssize_t)i; j >= 0; j = w->v[j].parent) {
		const char *name = bname(w, &w->v[j]);
		size_t n = strlen(name);

		at -= n;
		memcpy(w->path + at, name, n);
		if (at)
			w->path[--at] = '/';
	}
	memcpy(w->path, w->top, at);
	return w->path;
}

static void walk_release(struct walk *w)
{
	free(w->v);
	free(w->names);
	free(w->path);
}

static struct bentry *add_entry(struct walk *w, ssize_t parent,
				const char *name, const struct stat *st)
{
	size_t len = strlen(name) + 1;
	struct bentry *b;

	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
	}
	if (w->nlen + len > w->ncap) {
		while (w->nlen + len > w->ncap)
			w->ncap = w->ncap ? 2 * w->ncap : 4096;
		w->names = xrealloc(w->names, w->ncap);
	}
	b = &w->v[w->n++];
	b->parent = parent;
	b->name = w->nlen;
	memcpy(w->names + w->nlen, name, len);
	w->nlen += len;
	b->mode = st->st_mode;
	b->ino = st->st_ino;
	b->size = (uint64_t)st->st_size;
	b->mtime_ns = mtime_ns(st);
	b->node = NULL;
	return b;
}

/*
 * Lists what is below the directory dfd, whose path is the first plen
 * bytes of w->path.  dnode is the node tracked at path (NULL when none is);
 * below_ignored says a rule matches path or a directory above it.  A path
 * a rule matches is listed only when a node is tracked there: rules stop
 * new names from being tracked, and a tracked one left out of the list
 * would look deleted.
 */
static int walk_dir(struct walk *w, int dfd, ssize_t parent, size_t plen,
		    struct nnode *dnode, bool below_ignored)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	while ((de = readdir(d))) {
		struct nnode *tracked;
		struct stat st;
		bool dir, ignored;
		size_t len;
		int cfd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!plen && !strcmp(de->d_name, ".wkfs"))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* vanished meanwhile */
		if (!kind_of(st.st_mode) || !wk_name_valid(de->d_name))
			continue;
		dir = S_ISDIR(st.st_mode);
		len = path_append(w, plen, de->d_name);
		tracked =
			dnode ? nindex_child(rec_index(w->r), dnode, de->d_name)
			      : NULL;
		ignored =
			below_ignored || rec_ignored_path_l(w->r, w->path, dir);
		if (ignored && !tracked)
			continue;
		add_entry(w, parent, de->d_name, &st);
		if (!dir)
			continue;
		cfd = openat(dirfd(d), de->d_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0) {
			wk_warn("cannot read directory %s: %s", w->path,
				strerror(errno));
			continue;
		}
		/* Its own .wkfsignore rules apply to what is below. */
		if (faccessat(cfd, ".wkfsignore", F_OK, AT_SYMLINK_NOFOLLOW) ==
		    0)
			rec_reload_ignore_l(w->r, w->path);
		if (tracked && tracked->kind != WK_KIND_DIR)
			tracked = NULL;
		rc = walk_dir(w, cfd, (ssize_t)w->n - 1, len, tracked, ignored);
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

static struct nnode *parent_node(struct walk *w, struct bentry *b,
				 struct nnode *root)
{
	return b->parent < 0 ? root : w->v[b->parent].node;
}

static void clear_marks(struct nnode *n)
{
	n->scan_mark = MARK_NONE;
	for (struct nnode *c = n->first_child; c; c = c->next_sibling)
		clear_marks(c);
}

struct ino_map {
	struct nnode **slot;
	size_t mask;
};

static void ino_map_fill(struct ino_map *m, struct nnode *n)
{
	for (struct nnode *c = n->first_child; c; c = c->next_sibling) {
		if (c->scan_mark == MARK_NONE && c->ino) {
			size_t i = c->ino & m->mask;

			while (m->slot[i])
				i = (i + 1) & m->mask;
			m->slot[i] = c;
		}
		ino_map_fill(m, c);
	}
}

static struct nnode *ino_map_take(struct ino_map *m, uint64_t ino,
				  enum wk_kind kind)
{
	for (size_t i = ino & m->mask; m->slot[i]; i = (i + 1) & m->mask) {
		struct nnode *n = m->slot[i];

		if (n->ino == ino && n->kind == kind &&
		    n->scan_mark == MARK_NONE) {
			n->scan_mark = MARK_MOVED;
			return n;
		}
	}
	return NULL;
}

/* Pass 3: entries no node matched by path take the unmatched node of their
 * inode number, if any (a rename while unmounted). */
static void match_by_ino(struct recorder *r, struct walk *w)
{
	struct ino_map m;
	size_t slots = 1024;

	while (slots < 2 * nindex_count(rec_index(r)))
		slots *= 2;
	m.slot = xcalloc(slots, sizeof(*m.slot));
	m.mask = slots - 1;
	ino_map_fill(&m, nindex_root(rec_index(r)));
	for (size_t i = 0; i < w->n; i++)
		if (!w->v[i].node)
			w->v[i].node = ino_map_take(&m, w->v[i].ino,
						    kind_of(w->v[i].mode));
	free(m.slot);
}

static void count_unmarked(struct nnode *n, uint64_t *files, uint64_t *all)
{
	for (struct nnode *c = n->first_child; c; c = c->next_sibling) {
		if (c->scan_mark == MARK_NONE) {
			(*all)++;
			if (c->kind != WK_KIND_DIR)
				(*files)++;
		}
		count_unmarked(c, files, all);
	}
}

static void count_files(struct nnode *n, uint64_t *files)
{
	for (struct nnode *c = n->first_child; c; c = c->next_sibling) {
		if (c->kind != WK_KIND_DIR)
			(*files)++;
		count_files(c, files);
	}
}

static int read_target(int dirfd, const char *path, char *buf, size_t len)
{
	ssize_t n = beneath_readlink(dirfd, path, buf, len);

	return n < 0 ? (int)n : 0;
}

/* Hashes a regular file beneath dirfd without following links. */
static int hash_file(int dirfd, const char *path, struct wk_hash *h,
		     uint64_t *size)
{
	int fd = beneath_open(dirfd, path, O_RDONLY, NULL);
	int rc;

	if (fd < 0)
		return fd;
	rc = content_hash_fd(fd, h, size);
	close(fd);
	return rc;
}

/* Records new content or mode of matched entry i, if any changed. */
static int refresh(struct recorder *r, int dirfd, struct walk *w, size_t i,
		   struct scan_stats *stats)
{
	struct bentry *b = &w->v[i];
	struct nnode *n = b->node;
	int rc = 0;

	if (n->kind == WK_KIND_FILE &&
	    (!n->has_hash || n->size != b->size || n->mtime_ns != b->mtime_ns ||
	     n->ino != b->ino)) {
		struct wk_hash h;
		uint64_t size;

		rc = hash_file(dirfd, entry_path(w, i), &h, &size);
		if (rc)
			return rc;
		n->ino = b->ino;
		if (!n->has_hash || memcmp(&h, &n->hash, sizeof(h)) ||
		    size != n->size) {
			/* An edited conflict copy becomes a file of its own. */
			rc = rec_promote_l(r, &b->node);
			n = b->node;
			if (!rc)
				rc = rec_put_l(r, n, -1, &h, size, b->mtime_ns);
			stats->changed++;
		} else {
			n->mtime_ns = b->mtime_ns;
		}
	}
	if (!rc && n->kind != WK_KIND_SYMLINK && (b->mode & 07777) != n->mode) {
		rc = rec_promote_l(r, &b->node);
		n = b->node;
		if (!rc)
			rc = rec_setattr_l(r, n, WK_ATTR_MODE, b->mode, 0);
	}
	return rc;
}

/* Records entry i as a new node under parent. */
static int create_new(struct recorder *r, int dirfd, struct walk *w, size_t i,
		      struct nnode *parent, struct scan_stats *stats)
{
	struct bentry *b = &w->v[i];
	enum wk_kind kind = kind_of(b->mode);
	char target[WK_TARGET_MAX + 1];
	int rc;

	if (kind == WK_KIND_SYMLINK) {
		rc = read_target(dirfd, entry_path(w, i), target,
				 sizeof(target));
		if (rc)
			return rc;
	}
	rc = rec_create_l(r, parent, bname(w, b), kind, b->mode, b->ino,
			  kind == WK_KIND_SYMLINK ? target : NULL, &b->node);
	if (rc)
		return rc;
	b->node->scan_mark = MARK_NEW;
	stats->created++;
	if (kind == WK_KIND_FILE && b->size > 0) {
		struct wk_hash h;
		uint64_t size;

		rc = hash_file(dirfd, entry_path(w, i), &h, &size);
		if (!rc)
			rc = rec_put_l(r, b->node, -1, &h, size, b->mtime_ns);
	} else if (kind == WK_KIND_FILE) {
		b->node->mtime_ns = b->mtime_ns;
	}
	return rc;
}

static int record_entry(struct recorder *r, int dirfd, struct walk *w, size_t i,
			struct scan_stats *stats)
{
	struct bentry *b = &w->v[i];
	struct nnode *parent = parent_node(w, b, nindex_root(rec_index(r)));
	enum wk_kind kind = kind_of(b->mode);
	struct nnode *here, *moved = b->node;
	char target[WK_TARGET_MAX + 1];
	int rc;

	if (!parent)
		return 0; /* its directory could not be recorded */
	here = nindex_child(rec_index(r), parent, bname(w, b));
	if (moved && moved->scan_mark == MARK_MOVED && moved == here) {
		/* Inside a renamed directory: it moved with its parent. */
		moved->scan_mark = MARK_MATCHED;
	} else if (moved && moved->scan_mark == MARK_MOVED) {
		if (here && here != moved) {
			/* The name is held by a node of another kind that
			 * is gone from disk. */
			rc = rec_remove_l(r, here);
			if (rc)
				return rc;
		}
		/* A conflict copy that moved becomes a file of its own. */
		rc = rec_promote_l(r, &moved);
		if (!rc)
			rc = rec_move_l(r, moved, parent, bname(w, b));
		if (rc)
			return rc;
		b->node = moved;
		moved->scan_mark = MARK_MATCHED;
		stats->moved++;
	} else if (here && here->kind == kind &&
		   here->scan_mark == MARK_MATCHED) {
		b->node = here;
	} else {
		if (here && here->scan_mark != MARK_NEW) {
			rc = rec_remove_l(r, here);
			if (rc)
				return rc;
		}
		return create_new(r, dirfd, w, i, parent, stats);
	}
	if (kind == WK_KIND_SYMLINK) {
		rc = read_target(dirfd, entry_path(w, i), target,
				 sizeof(target));
		if (rc)
			return rc;
		if (!b->node->target || strcmp(target, b->node->target)) {
			/* A symlink's target is its identity: replace it. */
			rc = rec_remove_l(r, b->node);
			return rc ? rc
				  : create_new(r, dirfd, w, i, parent, stats);
		}
		return 0;
	}
	return refresh(r, dirfd, w, i, stats);
}

/* Removes, children first, every node nothing on disk matched. */
static int remove_unmatched(struct recorder *r, struct nnode *n,
			    struct scan_stats *stats)
{
	struct nnode *c = n->first_child, *next;
	int rc;

	for (; c; c = next) {
		next = c->next_sibling;
		if (c->scan_mark == MARK_NONE) {
			rc = rec_remove_l(r, c);
			stats->removed++;
		} else {
			rc = remove_unmatched(r, c, stats);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int scan_tree(struct recorder *r, int dirfd, bool accept_deletions,
	      struct scan_stats *stats, char *err, size_t errlen)
{
	struct walk w = {.r = r, .top = ""};
	struct nnode *root;
	uint64_t gone_files = 0, gone_all = 0, files = 0;
	size_t unmatched = 0;
	int rc, dfd;

	memset(stats, 0, sizeof(*stats));
	dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	rec_lock(r);
	root = nindex_root(rec_index(r));
	clear_marks(root);
	rec_reload_ignore_l(r, "");
	path_reserve(&w, 1);
	w.path[0] = '\0';
	rc = walk_dir(&w, dfd, -1, 0, root, false);
	if (rc) {
		snprintf(err, errlen, "cannot read the directory: %s",
			 strerror(-rc));
		goto out;
	}
	stats->entries = w.n;

	/* 2: by path. */
	for (size_t i = 0; i < w.n; i++) {
		struct bentry *b = &w.v[i];
		struct nnode *p = parent_node(&w, b, root), *n;

		n = p ? nindex_child(rec_index(r), p, bname(&w, b)) : NULL;
		if (n && n->kind == kind_of(b->mode)) {
			n->scan_mark = MARK_MATCHED;
			b->node = n;
		} else {
			unmatched++;
		}
	}
	/* 3: by inode number (nothing to do when every entry matched). */
	if (unmatched)
		match_by_ino(r, &w);

	count_unmarked(root, &gone_files, &gone_all);
	count_files(root, &files);
	if (!accept_deletions && gone_all > 0 &&
	    ((w.n == 0) || (gone_files >= 10 && 2 * gone_files > files))) {
		snprintf(err, errlen,
			 "%llu of %llu tracked files are missing from the"
			 " directory (is it the right path, is the drive"
			 " there?); nothing was recorded. If you deleted them"
			 " on purpose, mount with --accept-deletions",
			 (unsigned long long)gone_files,
			 (unsigned long long)files);
		rc = -ECANCELED;
		goto out;
	}

	/* 4: record, a bounded queue of ops at a time (the lock is let go
	 * while the writer catches up: nothing else runs yet). */
	for (size_t i = 0; i < w.n && !rc; i++) {
		rc = record_entry(r, dirfd, &w, i, stats);
		rec_throttle_l(r);
	}
	if (!rc)
		rc = remove_unmatched(r, root, stats);
	if (rc)
		snprintf(err, errlen, "cannot record the scan: %s",
			 strerror(-rc));
out:
	clear_marks(root);
	rec_unlock(r);
	walk_release(&w);
	return rc;
}

int scan_import_l(struct recorder *r, int dirfd, struct nnode *parent,
		  const char *name, struct nnode **out)
{
	struct scan_stats stats = {0};
	struct walk w = {.r = r};
	char ppath[4096], *top;
	struct stat st;
	int rc, cfd;

	rc = nindex_path(parent, ppath, sizeof(ppath));
	if (rc)
		return rc;
	top = ppath[0] ? xasprintf("%s/%s", ppath, name) : xstrdup(name);
	rc = beneath_lstat(dirfd, top, &st);
	free(top);
	if (!rc && !kind_of(st.st_mode))
		rc = -EINVAL;
	if (rc)
		goto out;
	/* The top is entry 0, below parent; what is below it follows. */
	w.top = ppath;
	add_entry(&w, -1, name, &st);
	rc = create_new(r, dirfd, &w, 0, parent, &stats);
	if (rc || !S_ISDIR(st.st_mode))
		goto out;
	cfd = beneath_open(dirfd, entry_path(&w, 0), O_RDONLY | O_DIRECTORY,
			   NULL);
	if (cfd < 0) {
		rc = cfd;
		goto out;
	}
	/* Nothing below a new directory is tracked yet. */
	rc = walk_dir(&w, cfd, 0, strlen(w.path), NULL, false);
	for (size_t i = 1; i < w.n && !rc; i++) {
		struct nnode *p = w.v[w.v[i].parent].node;

		if (p)
			rc = create_new(r, dirfd, &w, i, p, &stats);
	}
out:
	if (!rc && out)
		*out = w.v[0].node;
	walk_release(&w);
	return rc;
}
