/*
 * inode.c - the FUSE inode table: finodes keyed by backing (dev, ino), each
 * knowing its place (parent finode and name), with O_PATH fds opened on
 * demand and a bounded number of them kept open.
 *
 * A FUSE inode number is the address of its finode (the root is
 * FUSE_ROOT_ID).  The kernel holds lookup references and returns them with
 * forget; a finode lives while the kernel or a child placed in it refers to
 * it.  Holding an fd per inode the kernel knows would cost one descriptor per
 * file a `find` has seen: a folder of a million files cannot work so.
 * Instead an fd is opened from the place when needed (openat of the
 * parent's fd, checked against dev and ino), cached, and closed least
 * recently used first once more than fs->fd_max are open.
 *
 * Places follow every name change: lookups set them, renames and unlinks
 * through the mount update them under placelock (so no lookup reads a name
 * between a rename and its update), and a batch's renames come through
 * inode_moved().  A batch runs without placelock; a resolver that finds a
 * place leading nowhere while a batch runs waits for it and looks again.
 * An inode whose name goes while the kernel knows it (unlinked but open,
 * or replaced by a batch) has no place left: its finode keeps its fd until
 * forgotten, as every finode did before.  A place that leads nowhere
 * otherwise (a directory a batch removed) makes the finode dead: lookups
 * by number pass it by, so that an inode number the file system reuses
 * gets a finode of its own.  Lookups compare birth times as well (statx),
 * so a reused number is told apart even where the old finode never found
 * out, and a dead finode whose very file turns up again is revived rather
 * than doubled: the kernel must never hold two FUSE inodes of one file,
 * or one of another file's (find_born_l).
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "apply.h"
#include "beneath.h"
#include "wlog.h"
#include "xalloc.h"

#define FD_MAX_DEFAULT 512
#define FD_MAX_CAP     65536 /* enough for any working set */
#define FD_OTHERS      96
#define DEPTH_MAX      4096 /* directories above an inode, at most */

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
	pthread_rwlock_init(&fs->placelock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&fs->ilock, NULL);
	pthread_mutex_init(&fs->root.mtime_lock, NULL);
	fs->root.fd = -1;
	fs->root.keep = true;
	fs->lru.lru_next = fs->lru.lru_prev = &fs->lru;
	fs->fd_max = FD_MAX_DEFAULT;
	fs->n_buckets = 4096;
	fs->table = xcalloc(fs->n_buckets, sizeof(*fs->table));
}

static void finode_free(struct finode *in)
{
	if (in->fd >= 0)
		close(in->fd);
	free(in->name);
	pthread_mutex_destroy(&in->mtime_lock);
	free(in);
}

void inode_table_free(struct wkfs *fs)
{
	for (size_t i = 0; i < fs->n_buckets; i++) {
		struct finode *in = fs->table[i], *next;

		for (; in; in = next) {
			next = in->next;
			finode_free(in);
		}
	}
	free(fs->table);
	pthread_mutex_destroy(&fs->root.mtime_lock);
	pthread_mutex_destroy(&fs->ilock);
	pthread_rwlock_destroy(&fs->placelock);
	pthread_rwlock_destroy(&fs->nslock);
}

void inode_table_limit(struct wkfs *fs, size_t nofile)
{
	/* Half for the cache, and at least FD_OTHERS for the rest: open
	 * files, directory streams, the database, libfuse's splice pipes
	 * (two per thread) and the sync connections. */
	size_t n = nofile / 2;

	if (nofile < 2 * FD_OTHERS)
		n = nofile > FD_OTHERS + 16 ? nofile - FD_OTHERS : 16;
	fs->fd_max = n > FD_MAX_CAP ? FD_MAX_CAP : n;
}

struct finode *inode_get(struct wkfs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &fs->root;
	return (struct finode *)(uintptr_t)ino;
}

/* ---- the hash ----------------------------------------------------------- */

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
		if (in->dev == dev && in->ino == ino && !in->dead)
			return in;
	return NULL;
}

static void unhash_l(struct wkfs *fs, struct finode *in)
{
	struct finode **p;

	for (p = &fs->table[bucket(fs, in->dev, in->ino)]; *p; p = &(*p)->next)
		if (*p == in) {
			*p = in->next;
			fs->count--;
			return;
		}
}

/* A new finode for st (born at btime_ns, 0 if unknown) with no place and
 * no fd, in the hash.  ilock held. */
static struct finode *add_l(struct wkfs *fs, const struct stat *st,
			    int64_t btime_ns)
{
	struct finode *in = xcalloc(1, sizeof(*in));
	size_t b;

	if (fs->count >= fs->n_buckets)
		grow(fs);
	in->fd = -1;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->is_dir = S_ISDIR(st->st_mode);
	in->btime_ns = btime_ns;
	in->kmtime_ns = st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	in->node = WK_ID_NONE;
	pthread_mutex_init(&in->mtime_lock, NULL);
	b = bucket(fs, in->dev, in->ino);
	/* Two FUSE inodes of one file part the kernel's size from the
	 * file's (the writeback cache): worth a line when looking for it. */
	for (struct finode *o = fs->table[b]; o && wlog_debug_enabled();
	     o = o->next)
		if (o->dev == in->dev && o->ino == in->ino && o->nlookup)
			wk_debug(
				"inode %llu: another finode (nlookup %llu%s%s, "
				"born %lld, now %lld)",
				(unsigned long long)in->ino,
				(unsigned long long)o->nlookup,
				o->dead ? ", dead" : "",
				o->keep ? ", kept" : "", (long long)o->btime_ns,
				(long long)btime_ns);
	in->next = fs->table[b];
	fs->table[b] = in;
	fs->count++;
	return in;
}

/* ---- open fds ----------------------------------------------------------- */

static void lru_unlink(struct finode *in)
{
	if (!in->lru_next)
		return;
	in->lru_prev->lru_next = in->lru_next;
	in->lru_next->lru_prev = in->lru_prev;
	in->lru_next = in->lru_prev = NULL;
}

/* Puts in's fd on the list of closable ones if it is that.  ilock held. */
static void lru_push(struct wkfs *fs, struct finode *in)
{
	if (in->lru_next || in->fd < 0 || in->users || in->keep)
		return;
	in->lru_next = fs->lru.lru_next;
	in->lru_prev = &fs->lru;
	fs->lru.lru_next->lru_prev = in;
	fs->lru.lru_next = in;
}

/* Closes the least recently used fds beyond fd_max.  ilock held. */
static void evict_l(struct wkfs *fs)
{
	while (fs->nfds > fs->fd_max && fs->lru.lru_prev != &fs->lru) {
		struct finode *in = fs->lru.lru_prev;

		lru_unlink(in);
		close(in->fd);
		in->fd = -1;
		fs->nfds--;
	}
}

/* Gives in the fd fd (closed instead when it has one).  ilock held. */
static void set_fd_l(struct wkfs *fs, struct finode *in, int fd)
{
	if (in->fd >= 0) {
		close(fd);
		return;
	}
	in->fd = fd;
	fs->nfds++;
	lru_push(fs, in);
}

static void pin_l(struct finode *in)
{
	if (in->users++ == 0)
		lru_unlink(in);
}

/* Frees in, and then its parent and so on, while nothing refers to them.
 * ilock held. */
static void release_l(struct wkfs *fs, struct finode *in)
{
	while (in && in != &fs->root && in->nlookup == 0 && in->refs == 0 &&
	       in->users == 0) {
		struct finode *p = in->parent;

		unhash_l(fs, in);
		lru_unlink(in);
		if (in->fd >= 0)
			fs->nfds--;
		finode_free(in);
		if (p)
			p->refs--;
		in = p;
	}
}

/* ---- places ------------------------------------------------------------- */

/* Places in at name in parent.  ilock held. */
static void set_place_l(struct wkfs *fs, struct finode *in,
			struct finode *parent, const char *name)
{
	struct finode *old = in->parent;

	if (in == &fs->root)
		return;
	if (old == parent && in->name && strcmp(in->name, name) == 0)
		return;
	parent->refs++;
	free(in->name);
	in->name = xstrdup(name);
	in->parent = parent;
	if (in->keep) {
		in->keep = false;
		lru_push(fs, in);
	}
	if (old) {
		old->refs--;
		release_l(fs, old);
	}
}

/* in's name went: it keeps its fd (if it has one) until forgotten, else it
 * is dead.  ilock held. */
static void unplace_l(struct wkfs *fs, struct finode *in)
{
	struct finode *old = in->parent;

	if (in == &fs->root)
		return;
	if (in->fd >= 0) {
		in->keep = true;
		lru_unlink(in);
	} else {
		in->dead = true;
	}
	free(in->name);
	in->name = NULL;
	in->parent = NULL;
	if (old) {
		old->refs--;
		release_l(fs, old);
	}
}

/*
 * in's fd, opened from its place (and its parent's from its own, and so
 * on) when not open, and pinned (inode_unfd).  depth: how many ancestors
 * this walk may still open (places that a lookup set while a batch moved
 * names could, at worst, form a loop).  placelock held shared.
 */
static int resolve(struct wkfs *fs, struct finode *in, int depth)
{
	struct finode *p;
	struct stat st;
	char *name;
	int pfd, fd;

	pthread_mutex_lock(&fs->ilock);
	if (in->fd >= 0) {
		pin_l(in);
		pthread_mutex_unlock(&fs->ilock);
		return in->fd;
	}
	p = in->parent;
	if (!p || depth == 0) {
		pthread_mutex_unlock(&fs->ilock);
		return p ? -ELOOP : -ESTALE;
	}
	p->refs++; /* a batch may move in meanwhile */
	name = xstrdup(in->name);
	pthread_mutex_unlock(&fs->ilock);

	pfd = resolve(fs, p, depth - 1);
	if (pfd < 0) {
		fd = pfd;
	} else {
		fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
		inode_unfd(fs, p);
	}
	free(name);
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != in->dev ||
			st.st_ino != in->ino)) {
		close(fd);
		fd = -ESTALE; /* another inode has the name now */
	}
	pthread_mutex_lock(&fs->ilock);
	p->refs--;
	release_l(fs, p);
	if (fd >= 0) {
		set_fd_l(fs, in, fd);
		pin_l(in);
		fd = in->fd;
		evict_l(fs);
	}
	pthread_mutex_unlock(&fs->ilock);
	return fd;
}

int inode_fd(struct wkfs *fs, struct finode *in)
{
	int fd;

	pthread_mutex_lock(&fs->ilock);
	if (in->fd >= 0) {
		pin_l(in);
		pthread_mutex_unlock(&fs->ilock);
		return in->fd;
	}
	pthread_mutex_unlock(&fs->ilock);
	for (int tries = 0;; tries++) {
		uint64_t gen = apply_batch_gen(fs);

		pthread_rwlock_rdlock(&fs->placelock);
		fd = resolve(fs, in, DEPTH_MAX);
		pthread_rwlock_unlock(&fs->placelock);
		if (fd >= 0 || (fd != -ENOENT && fd != -ESTALE))
			return fd;
		/* A batch moving names ran meanwhile: its places are right
		 * once it ends (a batch per try: a few tries are plenty). */
		if (tries == 8 ||
		    (!(gen & 1) && apply_writer_ticket(fs) == gen))
			break;
	}
	pthread_mutex_lock(&fs->ilock);
	if (in->fd < 0 && !in->keep) {
		wk_debug("inode %llu: its place leads nowhere (%s): dead",
			 (unsigned long long)in->ino, strerror(-fd));
		in->dead = true;
	}
	pthread_mutex_unlock(&fs->ilock);
	return fd;
}

void inode_unfd(struct wkfs *fs, struct finode *in)
{
	pthread_mutex_lock(&fs->ilock);
	if (--in->users == 0) {
		lru_push(fs, in);
		evict_l(fs);
		release_l(fs, in);
	}
	pthread_mutex_unlock(&fs->ilock);
}

/*
 * fstatat(AT_SYMLINK_NOFOLLOW) that also gives the birth time (0 when the
 * file system keeps none).  Inode numbers are reused: a finode found by
 * number whose file was removed behind the kernel's back (a batch, a place
 * that led nowhere) would hand the kernel the FUSE inode of the old file,
 * whose cached pages and size it keeps with the writeback cache.  The
 * birth time tells the two apart at no extra syscall.
 */
static int stat_born(int dirfd, const char *name, struct stat *st,
		     int64_t *btime_ns)
{
	struct statx x;

	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW,
		  STATX_BASIC_STATS | STATX_BTIME, &x) < 0)
		return -errno;
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(x.stx_dev_major, x.stx_dev_minor);
	st->st_ino = x.stx_ino;
	st->st_mode = x.stx_mode;
	st->st_nlink = x.stx_nlink;
	st->st_uid = x.stx_uid;
	st->st_gid = x.stx_gid;
	st->st_rdev = makedev(x.stx_rdev_major, x.stx_rdev_minor);
	st->st_size = (off_t)x.stx_size;
	st->st_blksize = x.stx_blksize;
	st->st_blocks = (blkcnt_t)x.stx_blocks;
	st->st_atim.tv_sec = x.stx_atime.tv_sec;
	st->st_atim.tv_nsec = x.stx_atime.tv_nsec;
	st->st_mtim.tv_sec = x.stx_mtime.tv_sec;
	st->st_mtim.tv_nsec = x.stx_mtime.tv_nsec;
	st->st_ctim.tv_sec = x.stx_ctime.tv_sec;
	st->st_ctim.tv_nsec = x.stx_ctime.tv_nsec;
	*btime_ns = x.stx_mask & STATX_BTIME
			    ? x.stx_btime.tv_sec * 1000000000LL +
				      x.stx_btime.tv_nsec
			    : 0;
	return 0;
}

/* Is in another inode than the one born at btime_ns with its number? */
static bool born_other(const struct finode *in, int64_t btime_ns)
{
	return in->btime_ns && btime_ns && in->btime_ns != btime_ns;
}

/*
 * The finode of the file st describes (born at btime_ns): the live one
 * with its number, unless that is another file whose number went to this
 * one (made dead now); else a dead one that is this very file, revived.
 * A finode dies when its place leads nowhere for a while (a batch moved
 * or removed its name); the kernel still has its FUSE inode, and a second
 * one for the same file would keep its own size and pages (the writeback
 * cache trusts the kernel's size), so a file that comes back gets its old
 * finode.  ilock held.
 */
static struct finode *find_born_l(struct wkfs *fs, const struct stat *st,
				  int64_t btime_ns)
{
	bool is_dir = S_ISDIR(st->st_mode);
	struct finode *in, *dead = NULL;

	if (fs->root.dev == st->st_dev && fs->root.ino == st->st_ino)
		return &fs->root;
	for (in = fs->table[bucket(fs, st->st_dev, st->st_ino)]; in;
	     in = in->next) {
		if (in->dev != st->st_dev || in->ino != st->st_ino)
			continue;
		if (in->dead) {
			if (btime_ns && in->btime_ns == btime_ns &&
			    in->is_dir == is_dir)
				dead = in;
			continue;
		}
		if (born_other(in, btime_ns) ||
		    (in->fd < 0 && in->is_dir != is_dir)) {
			wk_debug("inode %llu: a new file took the number",
				 (unsigned long long)st->st_ino);
			in->dead = true;
			continue;
		}
		return in;
	}
	if (dead) {
		/* The lookup ties it to its node again (fs/ops_ns.c). */
		dead->dead = false;
		dead->node = WK_ID_NONE;
	}
	return dead;
}

int inode_lookup(struct wkfs *fs, struct finode *parent, const char *name,
		 struct stat *st, struct finode **out)
{
	int64_t btime_ns;
	struct finode *in;
	int pfd = inode_fd(fs, parent), rc = 0;

	if (pfd < 0)
		return pfd;
	/* No fd yet: most inodes a lookup finds are never opened (find,
	 * ls); the place is what opens one when needed.  Under placelock,
	 * no rename through the mount moves the name before the finode has
	 * that place. */
	pthread_rwlock_rdlock(&fs->placelock);
	rc = stat_born(pfd, name, st, &btime_ns);
	if (rc)
		goto out;
	pthread_mutex_lock(&fs->ilock);
	in = find_born_l(fs, st, btime_ns);
	if (!in) {
		in = add_l(fs, st, btime_ns);
	} else if (in->fd < 0 && in->parent &&
		   (in->parent != parent || strcmp(in->name, name) != 0)) {
		/* Found by number at another name than its own: perhaps a
		 * new inode with the number of one gone.  The lookup ties it
		 * to a node again (fs/ops_ns.c). */
		in->node = WK_ID_NONE;
	}
	in->nlookup++;
	if (!in->btime_ns)
		in->btime_ns = btime_ns;
	set_place_l(fs, in, parent, name);
	*out = in;
	pthread_mutex_unlock(&fs->ilock);
out:
	pthread_rwlock_unlock(&fs->placelock);
	inode_unfd(fs, parent);
	return rc;
}

bool inode_placed(struct wkfs *fs, struct finode *in)
{
	struct finode *p;
	struct stat st;
	bool ok = false;
	char *name;
	int pfd;

	pthread_rwlock_rdlock(&fs->placelock);
	pthread_mutex_lock(&fs->ilock);
	p = in->parent;
	if (!p) {
		pthread_mutex_unlock(&fs->ilock);
		pthread_rwlock_unlock(&fs->placelock);
		return false;
	}
	p->refs++;
	name = xstrdup(in->name);
	pthread_mutex_unlock(&fs->ilock);
	pfd = resolve(fs, p, DEPTH_MAX);
	if (pfd >= 0) {
		ok = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		     st.st_dev == in->dev && st.st_ino == in->ino;
		inode_unfd(fs, p);
	}
	free(name);
	pthread_mutex_lock(&fs->ilock);
	p->refs--;
	release_l(fs, p);
	pthread_mutex_unlock(&fs->ilock);
	pthread_rwlock_unlock(&fs->placelock);
	return ok;
}

/*
 * The finode whose place is name in parent (fd pfd), pinned with its fd
 * open (the name is about to go), or NULL.  placelock held exclusively.
 */
static struct finode *hold_named(struct wkfs *fs, struct finode *parent,
				 int pfd, const char *name)
{
	struct finode *in;
	struct stat st;
	int fd;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return NULL;
	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, st.st_dev, st.st_ino);
	if (!in || in == &fs->root || in->parent != parent ||
	    strcmp(in->name, name) != 0) {
		pthread_mutex_unlock(&fs->ilock);
		return NULL;
	}
	pin_l(in);
	if (in->fd < 0) {
		pthread_mutex_unlock(&fs->ilock);
		fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		pthread_mutex_lock(&fs->ilock);
		if (fd >= 0)
			set_fd_l(fs, in, fd);
	}
	pthread_mutex_unlock(&fs->ilock);
	return in;
}

int inode_unlinkat(struct wkfs *fs, struct finode *parent, int pfd,
		   const char *name, int flags)
{
	struct finode *in;
	int rc;

	pthread_rwlock_wrlock(&fs->placelock);
	in = hold_named(fs, parent, pfd, name);
	rc = unlinkat(pfd, name, flags) < 0 ? -errno : 0;
	if (!rc && in) {
		pthread_mutex_lock(&fs->ilock);
		unplace_l(fs, in);
		pthread_mutex_unlock(&fs->ilock);
	}
	pthread_rwlock_unlock(&fs->placelock);
	if (in)
		inode_unfd(fs, in);
	return rc;
}

/* The finode of name in the directory pfd, pinned, or NULL.  placelock
 * held exclusively. */
static struct finode *hold_at(struct wkfs *fs, int pfd, const char *name)
{
	struct finode *in;
	struct stat st;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return NULL;
	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, st.st_dev, st.st_ino);
	if (in == &fs->root)
		in = NULL;
	if (in)
		pin_l(in);
	pthread_mutex_unlock(&fs->ilock);
	return in;
}

int inode_renameat(struct wkfs *fs, struct finode *parent, int pfd,
		   const char *name, struct finode *newparent, int npfd,
		   const char *newname, unsigned int flags)
{
	struct finode *a, *b;
	int rc;

	pthread_rwlock_wrlock(&fs->placelock);
	a = hold_at(fs, pfd, name);
	/* What the rename replaces keeps its fd; exchanged, it moves. */
	b = flags & RENAME_EXCHANGE ? hold_at(fs, npfd, newname)
				    : hold_named(fs, newparent, npfd, newname);
	rc = renameat2(pfd, name, npfd, newname, flags) < 0 ? -errno : 0;
	/* Two names of one inode: rename(2) does nothing. */
	if (!rc && a != b) {
		pthread_mutex_lock(&fs->ilock);
		if (b && (flags & RENAME_EXCHANGE))
			set_place_l(fs, b, parent, name);
		else if (b)
			unplace_l(fs, b);
		if (a)
			set_place_l(fs, a, newparent, newname);
		pthread_mutex_unlock(&fs->ilock);
	}
	pthread_rwlock_unlock(&fs->placelock);
	if (a)
		inode_unfd(fs, a);
	if (b)
		inode_unfd(fs, b);
	return rc;
}

/*
 * The finode of directory path (relative to DIR), with a reference the
 * caller drops; finodes the kernel does not know are added on the way
 * (they live while something is placed in them).  NULL when path is not
 * there.  The apply thread, during a batch.
 */
static struct finode *path_node(struct wkfs *fs, const char *path)
{
	struct finode *cur = &fs->root;
	char *buf = xstrdup(path), *slash = buf;

	pthread_mutex_lock(&fs->ilock);
	cur->refs++;
	pthread_mutex_unlock(&fs->ilock);
	while (cur && *slash) {
		char *comp = slash;
		struct finode *n;
		struct stat st;
		int rc;

		slash = strchr(comp, '/');
		if (slash)
			*slash = '\0';
		rc = beneath_lstat(fs->rootfd, buf, &st);
		pthread_mutex_lock(&fs->ilock);
		n = rc == 0 ? find_l(fs, st.st_dev, st.st_ino) : NULL;
		if (rc == 0 && !n)
			n = add_l(fs, &st, 0);
		if (n) {
			set_place_l(fs, n, cur, comp);
			n->refs++;
		}
		cur->refs--;
		release_l(fs, cur);
		cur = n;
		pthread_mutex_unlock(&fs->ilock);
		if (slash)
			*slash++ = '/';
		else
			slash = comp + strlen(comp);
	}
	free(buf);
	return cur;
}

void inode_moved(struct wkfs *fs, const char *path, const char *new_path)
{
	const char *slash = strrchr(new_path, '/');
	char *dir = xstrndup(new_path, slash ? (size_t)(slash - new_path) : 0);
	struct finode *in, *p;
	struct stat st;

	(void)path;
	if (beneath_lstat(fs->rootfd, new_path, &st) < 0)
		goto out;
	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, st.st_dev, st.st_ino);
	pthread_mutex_unlock(&fs->ilock);
	if (!in)
		goto out; /* the kernel never asked: nothing to keep right */
	p = path_node(fs, dir);
	if (!p)
		goto out;
	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, st.st_dev, st.st_ino);
	if (in)
		set_place_l(fs, in, p, slash ? slash + 1 : new_path);
	p->refs--;
	release_l(fs, p);
	pthread_mutex_unlock(&fs->ilock);
out:
	free(dir);
}

/* ---- lookups by number, for the apply thread ---------------------------- */

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
	if (in == &fs->root)
		r = FUSE_ROOT_ID;
	else if (in && in->nlookup) /* not one only a place needs */
		r = (uintptr_t)in;
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

void inode_retire(struct wkfs *fs, int fd)
{
	struct finode *in;
	struct stat st;
	int copy;

	if (fstat(fd, &st) < 0)
		return;
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_lock(&fs->ilock);
	in = find_l(fs, st.st_dev, st.st_ino);
	if (in && in != &fs->root) {
		if (copy >= 0) {
			set_fd_l(fs, in, copy);
			copy = -1;
		}
		unplace_l(fs, in);
		if (st.st_nlink == 0) {
			in->node = WK_ID_NONE;
			in->replaced = true;
		}
	}
	pthread_mutex_unlock(&fs->ilock);
	if (copy >= 0)
		close(copy);
}

void inode_forget(struct wkfs *fs, struct finode *in, uint64_t n)
{
	if (in == &fs->root)
		return;
	pthread_mutex_lock(&fs->ilock);
	in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
	release_l(fs, in);
	pthread_mutex_unlock(&fs->ilock);
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
	 * objects so).  That name speaks for it now; with none, it is gone
	 * for good (no walk next time). */
	return inode_retie_l(fs, in);
}

struct nnode *inode_retie_l(struct wkfs *fs, struct finode *in)
{
	struct nnode *n;

	if (nindex_with_ino(rec_index(fs->rec), in->ino, NULL, &n, 1) == 0)
		n = NULL;
	pthread_mutex_lock(&fs->ilock);
	in->node = n ? n->id : WK_ID_NONE;
	pthread_mutex_unlock(&fs->ilock);
	return n;
}
