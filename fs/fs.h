/*
 * fs.h - the wkfs FUSE filesystem's shared state (fs/ only).
 *
 * fs/ is the only directory that includes fuse_lowlevel.h.  The filesystem is
 * a passthrough over a directory fd of DIR taken before mounting (so it works
 * when mounted over DIR itself), with an inode table keyed by the backing
 * (dev, ino) that knows where each inode is (its parent and name) and opens
 * O_PATH fds on demand, keeping a bounded number open (inode.c).  Every
 * namespace change and every close of a written file is handed to the
 * recorder (lib/recorder.h).
 */
#ifndef WKFS_FS_H
#define WKFS_FS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "op.h"
#include "recorder.h"

struct finode {
	dev_t dev;
	ino_t ino;
	bool is_dir;
	/* Under fs.ilock: */
	uint64_t nlookup;
	/*
	 * Where the inode is: name in the directory parent (which this
	 * finode holds a reference on).  NULL for the root and for an inode
	 * whose place went (unlinked through the mount or by a batch): such
	 * a finode keeps its fd open until it is forgotten (keep).
	 */
	struct finode *parent;
	char *name;
	uint32_t refs;	/* children placed in it, and resolvers at work */
	uint32_t users; /* callers using fd now (inode_fd) */
	int fd;		/* O_PATH to the backing inode, or -1 */
	bool keep;	/* never close fd: the root, or no place */
	bool dead;	/* its place leads nowhere: not found by number */
	struct finode *lru_prev, *lru_next; /* fd open and unused */
	struct wk_id node;  /* the tracked node, WK_ID_NONE if untracked */
	int nwriters;       /* open handles that may write */
	bool dirty;         /* content changed since its last put */
	bool wrote;         /* ... by a write or truncate, not only by an
			       O_TRUNC open (see wkfs_flush) */
	bool kernel_mtime;  /* written: the kernel owes us its mtime (with the
			       writeback cache it sends one late setattr) */
	int64_t btime_ns;   /* birth time, 0 if the file system keeps none:
			       tells a new inode that took the number of
			       one gone from the one the kernel knows */
	int64_t kmtime_ns;  /* the mtime the kernel shows: the one it got when
			       it first looked the inode up, or the last it
			       sent; with the writeback cache it takes no
			       other from us (regular files) */
	bool replaced;      /* a remote batch unlinked it: no new writer
			       (fs/apply.h), lookups look again */
	/*
	 * Held by a put (from reading kmtime_ns to recording the op) and by
	 * a setattr (from its syscall to recording its op), so that neither
	 * undoes the other: a put never sets the file back to a time a
	 * concurrent setattr has replaced, nor is recorded after it with
	 * the older time.  Taken before the recorder's lock, never after.
	 */
	pthread_mutex_t mtime_lock;
	struct finode *next;
};

struct apply;

struct wkfs {
	int rootfd;               /* DIR, opened before the mount */
	struct apply *apply;      /* remote ops (fs/apply.h) */
	struct refetch *refetch;  /* missing contents (fs/refetch.h) */
	struct finode root;
	struct recorder *rec;
	struct fuse_session *se;
	double timeout;           /* entry and attribute cache, seconds */
	bool writeback;
	/*
	 * Under the recorder's lock: where a tracked file that rules match
	 * was last renamed away from (an empty name: nowhere).  An editor
	 * that saves by renaming the file to a backup name and writing a new
	 * one (vim's writebackup) creates that name next; it stays tracked
	 * rather than the edit turning into a delete.
	 */
	struct wk_id vacated_parent;
	char vacated_name[WK_NAME_MAX + 1];

	/*
	 * Held shared by the handlers that change names (create, mkdir,
	 * mknod, symlink, link, unlink, rmdir, rename) from before their
	 * syscall until it is recorded, and exclusively by the apply thread
	 * for a whole round (fs/apply.c).  A round's change lists are made
	 * of paths: a local rename done on disk but not yet recorded would
	 * move what they name from under them, and the index would show
	 * them done where DIR does not.  Taken before the recorder's lock;
	 * writers first, so a busy folder cannot starve the round.  Nothing
	 * that waits for the kernel (invalidations) runs under it.
	 */
	pthread_rwlock_t nslock;
	pthread_mutex_t ilock;    /* the inode table and finode fields */
	struct finode **table;
	size_t n_buckets, count;
	/*
	 * Open O_PATH fds of finodes (under ilock): at most fd_max stay open
	 * unused, the least recently used closed first; fd_max comes from
	 * RLIMIT_NOFILE (mount.c).
	 */
	struct finode lru; /* list head: lru.lru_next is the newest */
	size_t nfds, fd_max;
	/*
	 * Held exclusively by a rename or unlink through the mount, from its
	 * syscall until the table shows the new places, and shared while a
	 * place is read and followed (inode.c): no lookup sees a name move
	 * between the two.  After nslock and the recorder's lock, before
	 * ilock.
	 */
	pthread_rwlock_t placelock;
};

void wkfs_ops_fill(struct fuse_lowlevel_ops *o);

/* The control socket's `conflicts` request (ctl_conflicts.c): writes the
 * reply to the client fd. */
void ctl_conflicts(struct wkfs *fs, int fd);

/*
 * Inode table (inode.c).
 *
 * A finode does not hold its inode open: inode_fd() opens it from its place
 * (parent fd + name, checked against dev and ino) when no fd is cached, and
 * the caller gives it back with inode_unfd() when done with the fd:
 *
 *	int fd = inode_fd(fs, in);
 *	if (fd < 0)
 *		return fd;		// -errno: the inode is gone
 *	... fstatat(fd, "", ...), openat(fd, name, ...) ...
 *	inode_unfd(fs, in);
 *
 * Places change only through inode_lookup (a lookup found the inode at a
 * name), inode_unlinkat and inode_renameat (names changed through the
 * mount) and inode_moved (a batch renamed a path).  A caller of inode_fd
 * may hold nslock or the recorder's lock, never placelock or ilock.
 */
void inode_table_init(struct wkfs *fs);
void inode_table_free(struct wkfs *fs);
/* Caps the open fds from the process's RLIMIT_NOFILE. */
void inode_table_limit(struct wkfs *fs, size_t nofile);
struct finode *inode_get(struct wkfs *fs, fuse_ino_t ino);
int inode_fd(struct wkfs *fs, struct finode *in);
void inode_unfd(struct wkfs *fs, struct finode *in);
/*
 * Looks name up in the directory parent (fstatat: no fd is opened) and
 * finds or adds its finode, taking a lookup reference; fills *st.  The
 * place of the finode becomes parent/name.  0 or -errno.
 */
int inode_lookup(struct wkfs *fs, struct finode *parent, const char *name,
		 struct stat *st, struct finode **out);
struct finode *inode_find(struct wkfs *fs, dev_t dev, ino_t ino);
void inode_forget(struct wkfs *fs, struct finode *in, uint64_t n);
/* True when in's place still leads to it (a lookup that a batch ran
 * across checks). */
bool inode_placed(struct wkfs *fs, struct finode *in);
/*
 * unlinkat(2) and renameat2(2) in directories parent (fd pfd) and
 * newparent (npfd), with the places of the finodes concerned made to
 * follow: one whose name goes keeps its fd.  0 or -errno.
 */
int inode_unlinkat(struct wkfs *fs, struct finode *parent, int pfd,
		   const char *name, int flags);
int inode_renameat(struct wkfs *fs, struct finode *parent, int pfd,
		   const char *name, struct finode *newparent, int npfd,
		   const char *newname, unsigned int flags);
/* A batch renamed path to new_path (relative to DIR). */
void inode_moved(struct wkfs *fs, const char *path, const char *new_path);

/*
 * For the apply thread, which holds no finode reference: each looks the
 * backing inode (dev, ino) up under the table's lock.  inode_writers gives
 * its open handles that may write (0 when the kernel does not know it),
 * inode_ino_of its FUSE inode number (0 when unknown), inode_tie sets the
 * node it speaks for.
 */
int inode_writers(struct wkfs *fs, dev_t dev, ino_t ino);
fuse_ino_t inode_ino_of(struct wkfs *fs, dev_t dev, ino_t ino);
void inode_tie(struct wkfs *fs, dev_t dev, ino_t ino, struct wk_id node);
/* A remote batch replaced or removed the file fd is (O_PATH, not consumed):
 * its finode keeps a copy of fd (its place holds another inode now), and if
 * the batch unlinked it, speaks for no node and is marked replaced. */
void inode_retire(struct wkfs *fs, int fd);

/* The tracked node of in, or NULL (recorder lock held). */
struct nnode *inode_node_l(struct wkfs *fs, struct finode *in);

/* Ties in to a node the index has with its inode number (another name of
 * the file), or to none; returns that node.  Recorder lock held. */
struct nnode *inode_retie_l(struct wkfs *fs, struct finode *in);

#endif
