/*
 * inode.c - the FUSE inode table: O_PATH fds keyed by backing (dev, ino).
 *
 * A FUSE inode number is the address of its finode (the root is
 * FUSE_ROOT_ID).  The kernel holds lookup references and returns them with
 * forget; the finode and its fd live until the count reaches zero.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

static size_t bucket(struct wkfs *fs, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev;

	return (size_t)(h >> 20) & (fs->n_buckets - 1);
}

void inode_table_init(struct wkfs *fs)
{
	pthread_rwlockattr_t ra;

	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->nslock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&fs->ilock, NULL);
	pthread_mutex_init(&fs->root.mtime_lock, NULL);
	fs->n_buckets = 4096;
	fs->table = xcalloc(fs->n_buckets, sizeof(*fs->table));
}

void inode_table_free(struct wkfs *fs)
{
	for (size_t i = 0; i < fs->n_buckets; i++) {
		struct finode *in = fs->table[i], *next;

		for (; in; in = next) {
			next = in->next;
			close(in->fd);
			pthread_mutex_destroy(&in->mtime_lock);
			free(in);
		}
	}
	free(fs->table);
	pthread_mutex_destroy(&fs->root.mtime_lock);
	pthread_mutex_destroy(&fs->ilock);
	pthread_rwlock_destroy(&fs->nslock);
}

struct finode *inode_get(struct wkfs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &fs->root;
	return (struct finode *)(uintptr_t)ino;
}

static void grow(struct wkfs *fs)
{
	struct finode **old = fs->table;
	size_t n = fs->n_buckets;

	fs->n_buckets *= 2;
	fs->table = xcalloc(fs->n_buckets, sizeof(*fs->table));
	for (size_t i = 0; i < n; i++) {
		struct finode *in = old[i], *next;

		for (; in; in = next) {
			size_t b = bucket(fs, in->dev, in->ino);

			next = in->next;
			in->next = fs->table[b];
			fs->table[b] = in;
		}
	}
	free(old);
}

/* ilock held. */
static struct finode *find_l(struct wkfs *fs, dev_t dev, ino_t ino)
{
	struct finode *in;

	if (fs->root.dev == dev && fs->root.ino == ino)
		return &fs->root;
	for (in = fs->table[bucket(fs, dev, ino)]; in; in = in->next)
		if (in->dev == dev && in->ino == ino)
			return in;
	return NULL;
}

struct finode *inode_find(struct wkfs *fs, dev_t dev, ino_t ino)
{
	struct finode *in;

	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, dev, ino);
	pthread_mutex_unlock(&fs->ilock);
	return in;
}

int inode_writers(struct wkfs *fs, dev_t dev, ino_t ino)
{
	struct finode *in;
	int n = 0;

	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, dev, ino);
	if (in)
		n = in->nwriters;
	pthread_mutex_unlock(&fs->ilock);
	return n;
}

fuse_ino_t inode_ino_of(struct wkfs *fs, dev_t dev, ino_t ino)
{
	struct finode *in;
	fuse_ino_t r = 0;

	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, dev, ino);
	if (in)
		r = in == &fs->root ? FUSE_ROOT_ID : (uintptr_t)in;
	pthread_mutex_unlock(&fs->ilock);
	return r;
}

void inode_tie(struct wkfs *fs, dev_t dev, ino_t ino, struct wk_id node)
{
	struct finode *in;

	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, dev, ino);
	if (in && in != &fs->root)
		in->node = node;
	pthread_mutex_unlock(&fs->ilock);
}

void inode_retire(struct wkfs *fs, dev_t dev, ino_t ino)
{
	struct finode *in;

	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, dev, ino);
	if (in && in != &fs->root) {
		in->node = WK_ID_NONE;
		in->replaced = true;
	}
	pthread_mutex_unlock(&fs->ilock);
}

struct finode *inode_ref(struct wkfs *fs, int fd, const struct stat *st)
{
	struct finode *in;

	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, st->st_dev, st->st_ino);
	if (in) {
		in->nlookup++;
		pthread_mutex_unlock(&fs->ilock);
		close(fd);
		return in;
	}
	if (fs->count >= fs->n_buckets)
		grow(fs);
	in = xcalloc(1, sizeof(*in));
	in->fd = fd;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->is_dir = S_ISDIR(st->st_mode);
	in->kmtime_ns = st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	in->nlookup = 1;
	in->node = WK_ID_NONE;
	pthread_mutex_init(&in->mtime_lock, NULL);
	{
		size_t b = bucket(fs, in->dev, in->ino);

		in->next = fs->table[b];
		fs->table[b] = in;
	}
	fs->count++;
	pthread_mutex_unlock(&fs->ilock);
	return in;
}

void inode_forget(struct wkfs *fs, struct finode *in, uint64_t n)
{
	struct finode **p;

	if (in == &fs->root)
		return;
	pthread_mutex_lock(&fs->ilock);
	if (in->nlookup > n) {
		in->nlookup -= n;
		pthread_mutex_unlock(&fs->ilock);
		return;
	}
	for (p = &fs->table[bucket(fs, in->dev, in->ino)]; *p; p = &(*p)->next)
		if (*p == in) {
			*p = in->next;
			break;
		}
	fs->count--;
	pthread_mutex_unlock(&fs->ilock);
	close(in->fd);
	pthread_mutex_destroy(&in->mtime_lock);
	free(in);
}

struct nnode *inode_node_l(struct wkfs *fs, struct finode *in)
{
	struct nnode *n;
	struct wk_id id;

	pthread_mutex_lock(&fs->ilock);
	id = in->node;
	pthread_mutex_unlock(&fs->ilock);
	if (wk_id_eq(id, WK_ID_NONE))
		return NULL;
	n = nindex_get(rec_index(fs->rec), id);
	if (n || in->is_dir)
		return n;
	/* Its node went while the inode lives on under another name: a
	 * hard link made before the first name was removed (git writes
	 * objects so).  That name speaks for it now. */
	if (nindex_with_ino(rec_index(fs->rec), in->ino, NULL, &n, 1) == 0)
		n = NULL; /* gone for good: no walk next time */
	pthread_mutex_lock(&fs->ilock);
	in->node = n ? n->id : WK_ID_NONE;
	pthread_mutex_unlock(&fs->ilock);
	return n;
}
